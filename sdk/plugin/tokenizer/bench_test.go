package tokenizer

import (
	"strings"
	"testing"
)

// benchText is English prose with some accents and punctuation: the
// paragraph of the golden cases, four times (about 340 WordPiece tokens).
func benchText(b *testing.B) string {
	for _, c := range readGolden(b, "wordpiece.json") {
		if c.Name == "paragraph" {
			return strings.Repeat(c.Text+" Déjà vu, naïve café! ", 4)
		}
	}
	b.Fatal("no paragraph case")
	return ""
}

func BenchmarkLoad(b *testing.B) {
	b.Run("all-MiniLM-L6-v2", func(b *testing.B) {
		js := vocabFile(b, "all-minilm-l6-v2/tokenizer.json")
		b.SetBytes(int64(len(js)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Load(js); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, tk := range []func(testing.TB) *Tokenizer{miniLM, gpt2Tok} {
		tok := tk(b)
		bin, err := tok.MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		b.Run(map[bool]string{true: "all-MiniLM-L6-v2/binary", false: "GPT-2/binary"}[tok.kind == modelWordPiece], func(b *testing.B) {
			b.SetBytes(int64(len(bin)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := LoadBinary(bin); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("GPT-2", func(b *testing.B) {
		enc, bpe := vocabFile(b, "gpt2/encoder.json"), vocabFile(b, "gpt2/vocab.bpe")
		b.SetBytes(int64(len(enc) + len(bpe)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := LoadGPT2(enc, bpe); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkEncode reports tokens per second natively; the plugins'
// benchmarks measure the same inside the sandbox.
func BenchmarkEncode(b *testing.B) {
	text := benchText(b)
	for _, c := range []struct {
		name string
		tok  func(testing.TB) *Tokenizer
		opts *EncodeOptions
	}{
		{"WordPiece", miniLM, nil},
		{"WordPiece/max128", miniLM, &EncodeOptions{MaxLength: 128}},
		{"GPT-2", gpt2Tok, nil},
	} {
		b.Run(c.name, func(b *testing.B) {
			tok := c.tok(b)
			e, err := tok.Encode(text, c.opts)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tok.Encode(text, c.opts); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(e.Len()*b.N)/b.Elapsed().Seconds(), "tokens/s")
			b.ReportMetric(float64(e.Len()), "tokens")
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	text := benchText(b)
	for _, tk := range []func(testing.TB) *Tokenizer{miniLM, gpt2Tok} {
		tok := tk(b)
		e, _ := tok.Encode(text, nil)
		b.Run(map[bool]string{true: "WordPiece", false: "GPT-2"}[tok.kind == modelWordPiece], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tok.Decode(e.IDs, true)
			}
			b.ReportMetric(float64(e.Len()*b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}
