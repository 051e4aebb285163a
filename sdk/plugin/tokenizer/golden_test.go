package tokenizer

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
)

// The golden files come from independent implementations run on the same
// vocabularies (scripts/tokenizer-golden.sh): tokenizers.js for WordPiece,
// gpt-3-encoder (OpenAI's encoder.py in JavaScript) for GPT-2.

type goldenCase struct {
	Name         string   `json:"name"`
	Text         string   `json:"text"`
	Pair         *string  `json:"pair"`
	IDs          []int64  `json:"ids"`
	TypeIDs      []int64  `json:"type_ids"`
	Tokens       []string `json:"tokens"`
	IDsNoSpecial []int64  `json:"ids_no_special"`
	Decoded      *string  `json:"decoded"`
}

func readGolden(t testing.TB, name string) []goldenCase {
	t.Helper()
	b, err := os.ReadFile("testdata/golden/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Source string       `json:"source"`
		Cases  []goldenCase `json:"cases"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Cases) < 50 {
		t.Fatalf("%s: only %d cases", name, len(f.Cases))
	}
	return f.Cases
}

func TestGoldenWordPiece(t *testing.T) {
	tok := miniLM(t)
	for _, c := range readGolden(t, "wordpiece.json") {
		var e Encoding
		var err error
		if c.Pair != nil {
			e, err = tok.EncodePair(c.Text, *c.Pair, nil)
		} else {
			e, err = tok.Encode(c.Text, nil)
		}
		if err != nil {
			t.Errorf("%s: %v", c.Name, err)
			continue
		}
		if !slices.Equal(e.IDs, c.IDs) || !slices.Equal(e.TypeIDs, c.TypeIDs) {
			t.Errorf("%s %+q:\n ids  %v %v\n want %v %v (%q)", c.Name, c.Text, e.IDs, e.TypeIDs, c.IDs, c.TypeIDs, c.Tokens)
			continue
		}
		for i, m := range e.AttentionMask {
			// Template tokens are special; a [SEP] written in the text is
			// matched as an added token but is not a template token.
			if m != 1 || e.SpecialTokensMask[i] == 1 && e.IDs[i] != 101 && e.IDs[i] != 102 ||
				(i == 0 || i == len(e.IDs)-1) && e.SpecialTokensMask[i] != 1 {
				t.Errorf("%s: token %d: mask %d special %d offsets %v", c.Name, i, m, e.SpecialTokensMask[i], e.Offsets[i])
			}
		}
		if c.Pair != nil {
			continue
		}
		bare, err := tok.Encode(c.Text, &EncodeOptions{NoSpecialTokens: true})
		if err != nil || !slices.Equal(bare.IDs, c.IDsNoSpecial) {
			t.Errorf("%s: without special tokens %v, %v; want %v", c.Name, bare.IDs, err, c.IDsNoSpecial)
		}
		if got := tok.Decode(e.IDs, true); c.Decoded != nil && got != *c.Decoded {
			t.Errorf("%s: Decode %q, want %q", c.Name, got, *c.Decoded)
		}
	}
}

func TestGoldenGPT2(t *testing.T) {
	tok := gpt2Tok(t)
	for _, c := range readGolden(t, "gpt2.json") {
		e, err := tok.Encode(c.Text, nil)
		if err != nil {
			t.Errorf("%s: %v", c.Name, err)
			continue
		}
		if !slices.Equal(e.IDs, c.IDs) {
			t.Errorf("%s %+q:\n ids  %v\n want %v", c.Name, c.Text, e.IDs, c.IDs)
		}
		if got := tok.Decode(e.IDs, false); got != c.Text || (c.Decoded != nil && got != *c.Decoded) {
			t.Errorf("%s: Decode(Encode(%+q)) = %+q", c.Name, c.Text, got)
		}
	}
}
