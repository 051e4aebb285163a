package tokenizer

import (
	"bytes"
	"slices"
	"testing"
)

// The binary form encodes exactly as the tokenizer it was made from.
func TestBinaryRoundTrip(t *testing.T) {
	gj, err := Load(gpt2JSON(t, true, false))
	if err != nil {
		t.Fatal(err)
	}
	syn, err := Load(syntheticWordPiece(t, `{"id":7,"content":"<mask>","single_word":false,"lstrip":true,"rstrip":false,"normalized":false,"special":true}`))
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{"hello <mask> worlds", "  <mask>x"}
	for _, c := range readGolden(t, "wordpiece.json") {
		texts = append(texts, c.Text)
	}
	for _, tok := range []*Tokenizer{miniLM(t), gpt2Tok(t), gj, syn} {
		b, err := tok.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		back, err := LoadBinary(b)
		if err != nil {
			t.Fatal(err)
		}
		b2, _ := back.MarshalBinary()
		if !bytes.Equal(b, b2) {
			t.Error("MarshalBinary(LoadBinary(b)) != b")
		}
		for _, s := range texts {
			for _, o := range []*EncodeOptions{nil, {MaxLength: 9, NoSpecialTokens: true}} {
				x, err1 := tok.Encode(s, o)
				y, err2 := back.Encode(s, o)
				if err1 != nil || err2 != nil || !slices.Equal(x.IDs, y.IDs) || !slices.Equal(x.Offsets, y.Offsets) || !slices.Equal(x.TypeIDs, y.TypeIDs) {
					t.Fatalf("%+q: %v %v\n%v\n%v", s, err1, err2, x, y)
				}
				if tok.Decode(x.IDs, true) != back.Decode(y.IDs, true) {
					t.Fatalf("%+q: decodes differ", s)
				}
			}
			p1, _ := tok.EncodePair(s, "x y", nil)
			p2, _ := back.EncodePair(s, "x y", nil)
			if !slices.Equal(p1.IDs, p2.IDs) || !slices.Equal(p1.TypeIDs, p2.TypeIDs) {
				t.Fatalf("%+q: pairs differ", s)
			}
		}
		if tok.PadID != back.PadID || tok.MaxLength != back.MaxLength || tok.VocabSize() != back.VocabSize() {
			t.Error("settings differ")
		}
	}
	// Corrupt inputs are errors, not panics (FuzzLoadBinary goes on).
	b, _ := syn.MarshalBinary()
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0xff
		LoadBinary(c)
		LoadBinary(b[:i])
	}
}

func FuzzLoadBinary(f *testing.F) {
	syn, err := Load(syntheticWordPiece(f, `{"id":7,"content":"<mask>","single_word":true,"lstrip":true,"rstrip":true,"normalized":false,"special":true}`))
	if err != nil {
		f.Fatal(err)
	}
	b, _ := syn.MarshalBinary()
	f.Add(b)
	bpe, err := Load([]byte(`{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]},"pre_tokenizer":{"type":"ByteLevel"}}`))
	if err != nil {
		f.Fatal(err)
	}
	b, _ = bpe.MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, err := LoadBinary(b)
		if err != nil {
			return
		}
		for _, s := range []string{"", "Hello, wörld! ab <mask> x", "\xff a b [SEP]"} {
			for _, o := range []*EncodeOptions{nil, {MaxLength: 5}} {
				if e, err := tok.Encode(s, o); err == nil {
					check(t, e, len(s))
					tok.Decode(e.IDs, true)
					tok.Decode(e.IDs, false)
				}
				tok.EncodePair(s, s, o)
			}
		}
	})
}
