package tokenizer

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func fuzzSeeds(f *testing.F) {
	for _, c := range readGolden(f, "wordpiece.json") {
		f.Add(c.Text, uint8(0))
	}
	f.Add("\xff\xfe\xc3", uint8(7))
	f.Add("hello [SEP] <|endoftext|> [MASK]x", uint8(3))
	f.Add(strings.Repeat("é", 120), uint8(9))
	f.Add("a\u0301\u0328\u0345 ᾂ 한 \u212b", uint8(1))
}

// FuzzEncode: no input panics; the arrays agree in length; offsets lie
// in the text; truncation keeps a prefix; byte-level BPE round-trips any
// bytes, valid UTF-8 or not; both merge algorithms agree.
func FuzzEncode(f *testing.F) {
	fuzzSeeds(f)
	wp, g := miniLM(f), gpt2Tok(f)
	f.Fuzz(func(t *testing.T, text string, knobs uint8) {
		if len(text) > 1<<16 {
			return
		}
		opts := &EncodeOptions{NoSpecialTokens: knobs&1 != 0, SplitSpecialTokens: knobs&2 != 0}
		for _, tok := range []*Tokenizer{wp, g} {
			full, err := tok.Encode(text, opts)
			if err != nil {
				t.Fatal(err)
			}
			check(t, full, len(text))
			if tok == g && g.Decode(full.IDs, false) != text {
				t.Fatalf("GPT-2: Decode(Encode(%+q)) = %+q", text, g.Decode(full.IDs, false))
			}
			_ = tok.Decode(full.IDs, knobs&4 != 0)
			max := int(knobs>>3) + 2
			cut, err := tok.Encode(text, &EncodeOptions{NoSpecialTokens: opts.NoSpecialTokens, SplitSpecialTokens: opts.SplitSpecialTokens, MaxLength: max, Padding: PadFixed})
			if tok == g && cut.Len() < max {
				// no pad token: padding is an error, as promised
				if err == nil {
					t.Fatal("GPT-2 padded without a pad token")
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			check(t, cut, len(text))
			if cut.Len() != max {
				t.Fatalf("MaxLength %d, padded: %d ids", max, cut.Len())
			}
			n := 0
			for _, m := range cut.AttentionMask {
				n += int(m)
			}
			if n > full.Len() || !opts.NoSpecialTokens && n >= 2 && !slices.Equal(cut.IDs[1:n-1], full.IDs[1:n-1]) ||
				opts.NoSpecialTokens && !slices.Equal(cut.IDs[:n], full.IDs[:n]) {
				t.Fatalf("MaxLength %d: %v is not a truncation of %v", max, cut.IDs, full.IDs)
			}
			pair, err := tok.EncodePair(text, text[len(text)/2:], &EncodeOptions{MaxLength: max + 3})
			if err != nil {
				t.Fatal(err)
			}
			check(t, pair, len(text))
		}
		// The heap merge (long pieces) and the scan (short ones) agree.
		var w work
		for i := 0; i < len(text); {
			j := gpt2Next(text, i)
			piece := []byte(text[i:j])
			i = j
			var a, b []sym
			for k, c := range piece {
				a = append(a, sym{id: g.byteID[c], start: int32(k), end: int32(k + 1), prev: int32(k - 1), next: int32(k + 1)})
			}
			a[len(a)-1].next = -1
			b = slices.Clone(a)
			g.mergeSmall(a)
			w.heap = g.mergeHeap(b, w.heap[:0])
			if !slices.Equal(a, b) {
				t.Fatalf("%+q: scan and heap merges differ", piece)
			}
		}
		_ = utf8.ValidString(text)
	})
}

func check(t *testing.T, e Encoding, n int) {
	t.Helper()
	if len(e.TypeIDs) != e.Len() || len(e.AttentionMask) != e.Len() || len(e.SpecialTokensMask) != e.Len() || len(e.Offsets) != e.Len() {
		t.Fatalf("lengths %d %d %d %d %d", e.Len(), len(e.TypeIDs), len(e.AttentionMask), len(e.SpecialTokensMask), len(e.Offsets))
	}
	for _, o := range e.Offsets {
		if o[0] < 0 || o[0] > o[1] || o[1] > n {
			t.Fatalf("offsets %v outside [0, %d]", o, n)
		}
	}
}

// FuzzLoad: no tokenizer.json panics Load, and what loads encodes.
func FuzzLoad(f *testing.F) {
	f.Add(syntheticWordPiece(f, `{"id":7,"content":"<mask>","single_word":true,"lstrip":true,"rstrip":true,"normalized":false,"special":true}`))
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]},"pre_tokenizer":{"type":"ByteLevel"},"post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"a","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],"pair":[],"special_tokens":{"a":{"id":"a","ids":[0],"tokens":["a"]}}}}`))
	f.Add([]byte(`{"model":{"type":"WordPiece","vocab":{"[UNK]":0,"x":1}},"normalizer":{"type":"Sequence","normalizers":[{"type":"NFD"},{"type":"Lowercase"},{"type":"StripAccents"},{"type":"Strip"}]}}`))
	f.Fuzz(func(t *testing.T, js []byte) {
		tok, err := Load(js)
		if err != nil {
			return
		}
		for _, s := range []string{"", "Hello, wörld! ab", "\xff a b [SEP]"} {
			e, err := tok.Encode(s, &EncodeOptions{MaxLength: 8})
			if err == nil {
				check(t, e, len(s))
				tok.Decode(e.IDs, true)
			}
		}
	})
}
