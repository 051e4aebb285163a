package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

func tokens(t *testing.T, tok *Tokenizer, ids []int64) []string {
	t.Helper()
	out := make([]string, len(ids))
	for i, id := range ids {
		s, ok := tok.IDToToken(id)
		if !ok {
			t.Fatalf("id %d has no token", id)
		}
		out[i] = s
	}
	return out
}

// Where tokenizers.js and the Rust tokenizers disagree, we follow Rust
// (what sentence-transformers and transformers' fast tokenizers run).
func TestRustSemantics(t *testing.T) {
	tok := miniLM(t)
	cases := []struct {
		text, pair string
		hasPair    bool
		want       []string
	}{
		// char::to_lowercase has no final-sigma rule: Σ → σ everywhere
		// (JavaScript's toLowerCase gives ς at the end of a word).
		{text: "ΟΔΟΣ", want: []string{"[CLS]", "ο", "##δ", "##ο", "##σ", "[SEP]"}},
		// Ideographs beyond the BMP get spaces too (tokenizers.js looks at
		// UTF-16 code units, so it misses them): two words, two [UNK]s.
		{text: "𠀀𠀁", want: []string{"[CLS]", "[UNK]", "[UNK]", "[SEP]"}},
		// An empty pair is a pair (tokenizers.js drops it).
		{text: "only the first", pair: "", hasPair: true, want: []string{"[CLS]", "only", "the", "first", "[SEP]", "[SEP]"}},
		// Accents are stripped before lowercasing: İ → I → i.
		{text: "İ", want: []string{"[CLS]", "i", "[SEP]"}},
		// Everything of category Mn goes, not only U+0300–U+036F (the
		// dakuten of が, the virama of Devanagari, Hebrew points).
		{text: "が", want: []string{"[CLS]", "か", "[SEP]"}},
	}
	for _, c := range cases {
		var e Encoding
		var err error
		if c.hasPair {
			e, err = tok.EncodePair(c.text, c.pair, nil)
		} else {
			e, err = tok.Encode(c.text, nil)
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := tokens(t, tok, e.IDs); !slices.Equal(got, c.want) {
			t.Errorf("%q: %q, want %q", c.text, got, c.want)
		}
	}
	e, _ := tok.EncodePair("only the first", "", nil)
	if !slices.Equal(e.TypeIDs, []int64{0, 0, 0, 0, 0, 1}) {
		t.Errorf("empty pair: type ids %v", e.TypeIDs)
	}
}

// TestNaive is the example: a common Go tokenizer turns these
// into [UNK]s.
func TestNaive(t *testing.T) {
	tok := miniLM(t)
	e, err := tok.Encode("naïve façade café déjà", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"[CLS]", "naive", "facade", "cafe", "de", "##ja", "[SEP]"}
	if got := tokens(t, tok, e.IDs); !slices.Equal(got, want) {
		t.Fatalf("%q, want %q", got, want)
	}
	text := "naïve façade café déjà"
	for i, w := range []string{"", "naïve", "façade", "café", "dé", "jà", ""} {
		if o := e.Offsets[i]; text[o[0]:o[1]] != w {
			t.Errorf("token %d: offsets %v = %q, want %q", i, o, text[o[0]:o[1]], w)
		}
	}
}

func TestGPT2PreTokenizer(t *testing.T) {
	cases := []struct {
		text string
		want []string
	}{
		{"Hello world", []string{"Hello", " world"}},
		{"  a", []string{" ", " a"}},
		{"a  ", []string{"a", "  "}},
		{"\n\na", []string{"\n", "\n", "a"}},
		{" \na", []string{" ", "\n", "a"}},
		{"x's y'll z'LL", []string{"x", "'s", " y", "'ll", " z", "'", "LL"}},
		{"'''s", []string{"'''", "s"}},
		{"1.5 km", []string{"1", ".", "5", " km"}},
		{" !!x", []string{" !!", "x"}},
		{"a\u0085b", []string{"a", "\u0085", "b"}}, // NEL is Unicode white space (not to JavaScript)
		{"a\ufeffb", []string{"a", "\ufeff", "b"}}, // BOM is not (JavaScript says it is)
		{"\xff\xfeab", []string{"\xff\xfe", "ab"}},
		{"日本語 テキスト", []string{"日本語", " テキスト"}},
		{"", nil},
	}
	for _, c := range cases {
		var got []string
		for i := 0; i < len(c.text); {
			j := gpt2Next(c.text, i)
			got = append(got, c.text[i:j])
			i = j
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%+q: %+q, want %+q", c.text, got, c.want)
		}
	}
}

func TestNFD(t *testing.T) {
	cases := map[string]string{
		"é":             "e\u0301",
		"ᾂ":             "α\u0313\u0300\u0345",
		"한":             "\u1112\u1161\u11ab",
		"가":             "\u1100\u1161",
		"\u212b":        "A\u030a",       // ANGSTROM SIGN → Å → A + ring
		"a\u0301\u0328": "a\u0328\u0301", // ogonek (202) before acute (230)
		"ǖ":             "u\u0308\u0304",
		"ﬁ":             "ﬁ", // a compatibility decomposition: NFD keeps it
	}
	for in, want := range cases {
		rs := nfd(nil, toRunes(nil, in, 0))
		var got []rune
		for _, c := range rs {
			got = append(got, c.r)
		}
		if string(got) != want {
			t.Errorf("NFD(%+q) = %+q, want %+q", in, string(got), want)
		}
	}
	if unicodeVersion != "15.0.0" {
		t.Logf("tables are Unicode %s", unicodeVersion)
	}
}

// TestTablesUpToDate regenerates unicode_tables.go from x/text and
// compares (gen_tables.go also checks every code point against x/text).
func TestTablesUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	out, err := exec.Command("go", "run", "gen_tables.go", "-check").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// words is a tokenizer whose every word of a…z is one token.
func words(n int) string {
	var sb strings.Builder
	for i := range n {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteByte(byte('a' + i%26))
	}
	return sb.String()
}

func TestTruncation(t *testing.T) {
	tok := miniLM(t)
	lens := func(e Encoding) (a, b int) {
		for i, ty := range e.TypeIDs {
			if e.SpecialTokensMask[i] == 1 {
				continue
			}
			if ty == 0 {
				a++
			} else {
				b++
			}
		}
		return
	}
	cases := []struct {
		a, b     int // words
		pair     bool
		opts     EncodeOptions
		wa, wb   int // tokens kept
		errorMsg string
	}{
		{a: 10, opts: EncodeOptions{MaxLength: 5}, wa: 3},
		{a: 2, opts: EncodeOptions{MaxLength: 5}, wa: 2},
		{a: 10, opts: EncodeOptions{MaxLength: 5, NoSpecialTokens: true}, wa: 5},
		{a: 10, opts: EncodeOptions{MaxLength: 2}, wa: 0},
		{a: 10, opts: EncodeOptions{MaxLength: 1}, errorMsg: "no room"},
		// LongestFirst on pairs (Hugging Face's three cases), budget 5.
		{a: 5, b: 2, pair: true, opts: EncodeOptions{MaxLength: 8}, wa: 3, wb: 2},
		{a: 2, b: 5, pair: true, opts: EncodeOptions{MaxLength: 8}, wa: 2, wb: 3},
		{a: 6, b: 6, pair: true, opts: EncodeOptions{MaxLength: 8}, wa: 2, wb: 3},
		{a: 7, b: 6, pair: true, opts: EncodeOptions{MaxLength: 8}, wa: 3, wb: 2},
		{a: 1, b: 1, pair: true, opts: EncodeOptions{MaxLength: 8}, wa: 1, wb: 1},
		{a: 5, b: 2, pair: true, opts: EncodeOptions{MaxLength: 8, Truncation: OnlyFirst}, wa: 3, wb: 2},
		{a: 2, b: 5, pair: true, opts: EncodeOptions{MaxLength: 8, Truncation: OnlySecond}, wa: 2, wb: 3},
		{a: 5, b: 2, pair: true, opts: EncodeOptions{MaxLength: 8, Truncation: OnlySecond}, errorMsg: "must go"},
		{a: 5, opts: EncodeOptions{MaxLength: 3, Truncation: OnlySecond}, errorMsg: "needs a pair"},
	}
	for i, c := range cases {
		var e Encoding
		var err error
		if c.pair {
			e, err = tok.EncodePair(words(c.a), words(c.b), &c.opts)
		} else {
			e, err = tok.Encode(words(c.a), &c.opts)
		}
		if c.errorMsg != "" {
			if err == nil || !strings.Contains(err.Error(), c.errorMsg) {
				t.Errorf("%d: err %v, want %q", i, err, c.errorMsg)
			}
			continue
		}
		if err != nil {
			t.Errorf("%d: %v", i, err)
			continue
		}
		if a, b := lens(e); a != c.wa || b != c.wb {
			t.Errorf("%d: kept %d+%d, want %d+%d (%v)", i, a, b, c.wa, c.wb, e.IDs)
		}
	}
	// Left truncation keeps the end.
	e, _ := tok.Encode("a b c d e", &EncodeOptions{MaxLength: 5, TruncateLeft: true})
	if got := tokens(t, tok, e.IDs); !slices.Equal(got, []string{"[CLS]", "c", "d", "e", "[SEP]"}) {
		t.Errorf("left truncation: %q", got)
	}
}

// Stopping early (one text truncated on the right) gives the same ids as
// encoding everything and cutting, for every chunk size.
func TestEarlyStop(t *testing.T) {
	tok := miniLM(t)
	g := gpt2Tok(t)
	defer func(n int) { chunkSize = n }(chunkSize)
	var texts []string
	for _, c := range readGolden(t, "wordpiece.json") {
		texts = append(texts, c.Text)
	}
	texts = append(texts, strings.Repeat("word  ", 3000), strings.Repeat("é ", 5000)+"end")
	for _, tk := range []*Tokenizer{tok, g} {
		for _, text := range texts {
			chunkSize = 1 << 30
			full, err := tk.Encode(text, &EncodeOptions{NoSpecialTokens: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, cs := range []int{1, 3, 7, 64} {
				chunkSize = cs
				all, err := tk.Encode(text, &EncodeOptions{NoSpecialTokens: true})
				if err != nil || !slices.Equal(all.IDs, full.IDs) || !slices.Equal(all.Offsets, full.Offsets) {
					t.Fatalf("chunk %d: %+q: %v\n%v\nwant %v", cs, text, err, all.IDs, full.IDs)
				}
				for _, n := range []int{1, 2, 5, 50} {
					cut, err := tk.Encode(text, &EncodeOptions{NoSpecialTokens: true, MaxLength: n})
					if err != nil || !slices.Equal(cut.IDs, full.IDs[:min(n, len(full.IDs))]) {
						t.Fatalf("chunk %d, max %d: %+q: %v %v", cs, n, text, err, cut.IDs)
					}
				}
			}
		}
	}
}

func TestPadding(t *testing.T) {
	tok := miniLM(t)
	e, err := tok.Encode("hello world", &EncodeOptions{MaxLength: 8, Padding: PadFixed})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(e.IDs, []int64{101, 7592, 2088, 102, 0, 0, 0, 0}) || !slices.Equal(e.AttentionMask, []int64{1, 1, 1, 1, 0, 0, 0, 0}) ||
		!slices.Equal(e.SpecialTokensMask, []int64{1, 0, 0, 1, 1, 1, 1, 1}) || len(e.Offsets) != 8 || len(e.TypeIDs) != 8 {
		t.Errorf("fixed: %+v", e)
	}
	e, _ = tok.Encode("hello world", &EncodeOptions{Padding: PadFixed, PadLength: 6, PadLeft: true})
	if !slices.Equal(e.IDs, []int64{0, 0, 101, 7592, 2088, 102}) || !slices.Equal(e.AttentionMask, []int64{0, 0, 1, 1, 1, 1}) || e.Offsets[3] != [2]int{0, 5} {
		t.Errorf("left: %+v", e)
	}
	e, _ = tok.Encode("hello world", &EncodeOptions{PadToMultipleOf: 8})
	if e.Len() != 8 {
		t.Errorf("multiple of 8: %d", e.Len())
	}
	batch, err := tok.EncodeBatch([]string{"a", "a b c d", ""}, &EncodeOptions{Padding: PadLongest})
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range batch {
		if b.Len() != 6 || len(b.AttentionMask) != 6 {
			t.Errorf("batch %d: %v", i, b.IDs)
		}
	}
	if !slices.Equal(batch[2].AttentionMask, []int64{1, 1, 0, 0, 0, 0}) {
		t.Errorf("batch 2 mask %v", batch[2].AttentionMask)
	}
	pb, err := tok.EncodePairBatch([]string{"a", "b c"}, []string{"d e f", "g"}, &EncodeOptions{Padding: PadLongest, PadToMultipleOf: 4})
	if err != nil || pb[0].Len() != 8 || pb[1].Len() != 8 || !slices.Equal(pb[0].TypeIDs, []int64{0, 0, 0, 1, 1, 1, 1, 0}) {
		t.Errorf("pair batch: %v %+v", err, pb)
	}
	// GPT-2 has no padding token until one is set.
	g := gpt2Tok(t)
	if _, err := g.Encode("hi", &EncodeOptions{Padding: PadFixed, PadLength: 4}); err == nil {
		t.Error("GPT-2 padded without a pad token")
	}
}

func TestLimits(t *testing.T) {
	tok := *miniLM(t) // a copy, to lower its limit
	tok.MaxTextBytes = 1 << 20
	huge := strings.Repeat("lorem ipsum ", 1<<17) // 1.5 MiB
	if _, err := tok.Encode(huge, nil); !errors.Is(err, ErrTooLong) {
		t.Errorf("1.5 MiB untruncated: %v", err)
	}
	e, err := tok.Encode(huge, &EncodeOptions{MaxLength: 16})
	if err != nil || e.Len() != 16 {
		t.Errorf("1.5 MiB truncated: %v, %d ids", err, e.Len())
	}
	if _, err := tok.EncodePair(huge, "x", &EncodeOptions{MaxLength: 16}); !errors.Is(err, ErrTooLong) {
		t.Errorf("1.5 MiB pair: %v", err)
	}
	if _, err := tok.Encode("x", &EncodeOptions{MaxLength: -1}); err == nil {
		t.Error("negative MaxLength accepted")
	}
	// A word of 200,000 letters is one BPE piece: merged in n log n.
	g := gpt2Tok(t)
	word := strings.Repeat("abcdefghij", 20000)
	e, err = g.Encode(word, nil)
	if err != nil || g.Decode(e.IDs, false) != word {
		t.Errorf("a 200 KB word: %v", err)
	}
}

// syntheticWordPiece is a small tokenizer.json exercising added tokens.
func syntheticWordPiece(t testing.TB, added string) []byte {
	t.Helper()
	vocab := map[string]int{"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "hello": 4, "world": 5, "##s": 6, "<mask>": 7, "x": 8}
	v, _ := json.Marshal(vocab)
	return fmt.Appendf(nil, `{"version":"1.0","truncation":null,"padding":null,
	"added_tokens":[%s],
	"normalizer":{"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":true,"strip_accents":null,"lowercase":true},
	"pre_tokenizer":{"type":"BertPreTokenizer"},
	"post_processor":{"type":"BertProcessing","sep":["[SEP]",3],"cls":["[CLS]",2]},
	"decoder":{"type":"WordPiece","prefix":"##","cleanup":true},
	"model":{"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##","max_input_chars_per_word":100,"vocab":%s}}`, added, v)
}

func TestAddedTokens(t *testing.T) {
	mk := func(content string, id int, lstrip, rstrip, single bool) string {
		return fmt.Sprintf(`{"id":%d,"content":%q,"single_word":%v,"lstrip":%v,"rstrip":%v,"normalized":false,"special":true}`, id, content, single, lstrip, rstrip)
	}
	cases := []struct {
		added, text string
		want        []int64
		offsets     [][2]int
	}{
		{mk("<mask>", 7, false, false, false), "hello <mask> worlds", []int64{2, 4, 7, 5, 6, 3}, [][2]int{{}, {0, 5}, {6, 12}, {13, 18}, {18, 19}, {}}},
		{mk("<mask>", 7, true, false, false), "hello  <mask>world", []int64{2, 4, 7, 5, 3}, [][2]int{{}, {0, 5}, {5, 13}, {13, 18}, {}}},
		{mk("<mask>", 7, false, true, false), "x<mask>  x", []int64{2, 8, 7, 8, 3}, [][2]int{{}, {0, 1}, {1, 9}, {9, 10}, {}}},
		// single_word: not inside a word.
		{mk("x", 8, false, false, true), "hello x worldx", []int64{2, 4, 8, 1, 3}, nil},
		// Longest first: "<mask>x" wins over "<mask>".
		{mk("<mask>", 7, false, false, false) + "," + mk("<mask>x", 9, false, false, false), "<mask>x<mask>", []int64{2, 9, 7, 3}, nil},
	}
	for i, c := range cases {
		tok, err := Load(syntheticWordPiece(t, c.added))
		if err != nil {
			t.Fatal(err)
		}
		e, err := tok.Encode(c.text, nil)
		if err != nil || !slices.Equal(e.IDs, c.want) || (c.offsets != nil && !slices.Equal(e.Offsets, c.offsets)) {
			t.Errorf("%d: %q: %v %v %v, want %v %v", i, c.text, err, e.IDs, e.Offsets, c.want, c.offsets)
		}
	}
	tok, _ := Load(syntheticWordPiece(t, mk("<mask>", 7, false, false, false)))
	e, _ := tok.Encode("hello <mask>", &EncodeOptions{SplitSpecialTokens: true})
	if slices.Contains(e.IDs, 7) {
		t.Errorf("SplitSpecialTokens: %v", e.IDs)
	}
	if got := tok.Decode([]int64{2, 4, 7, 5, 6, 3, 999}, false); got != "[CLS] hello <mask> worlds [SEP]" {
		t.Errorf("Decode: %q", got)
	}
	if got := tok.Decode([]int64{2, 4, 7, 5, 6, 3}, true); got != "hello worlds" {
		t.Errorf("Decode skipping special: %q", got)
	}
}

// gpt2JSON writes GPT-2 as a tokenizer.json, the form Hugging Face's hub
// has it in, from OpenAI's files.
func gpt2JSON(t testing.TB, addPrefix bool, arrays bool) []byte {
	t.Helper()
	enc := vocabFile(t, "gpt2/encoder.json")
	var merges []any
	for i, line := range strings.Split(string(vocabFile(t, "gpt2/vocab.bpe")), "\n") {
		if i == 0 || line == "" {
			continue
		}
		if arrays {
			a, b, _ := strings.Cut(line, " ")
			merges = append(merges, []string{a, b})
		} else {
			merges = append(merges, line)
		}
	}
	m, _ := json.Marshal(merges)
	return fmt.Appendf(nil, `{"version":"1.0","truncation":null,"padding":null,
	"added_tokens":[{"id":50256,"content":"<|endoftext|>","single_word":false,"lstrip":false,"rstrip":false,"normalized":true,"special":true}],
	"normalizer":null,
	"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":%v,"trim_offsets":true,"use_regex":true},
	"post_processor":{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":false,"use_regex":true},
	"decoder":{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true},
	"model":{"type":"BPE","dropout":null,"unk_token":null,"continuing_subword_prefix":"","end_of_word_suffix":"","fuse_unk":false,"byte_fallback":false,"merges":%s,"vocab":%s}}`,
		addPrefix, m, enc)
}

func TestBPETokenizerJSON(t *testing.T) {
	g := gpt2Tok(t)
	for _, arrays := range []bool{false, true} {
		tok, err := Load(gpt2JSON(t, false, arrays))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range readGolden(t, "gpt2.json") {
			a, _ := g.Encode(c.Text, nil)
			b, err := tok.Encode(c.Text, nil)
			if err != nil || !slices.Equal(a.IDs, b.IDs) {
				t.Errorf("%s: %v %v, want %v", c.Name, err, b.IDs, a.IDs)
			}
		}
		// tokenizer.json's added token is matched; OpenAI's files know none.
		a, _ := g.Encode("a<|endoftext|>b", nil)
		b, _ := tok.Encode("a<|endoftext|>b", nil)
		if !slices.Equal(b.IDs, []int64{64, 50256, 65}) || slices.Contains(a.IDs, 50256) {
			t.Errorf("<|endoftext|>: %v and %v", b.IDs, a.IDs)
		}
		if tok.Decode(b.IDs, true) != "ab" || tok.Decode(b.IDs, false) != "a<|endoftext|>b" {
			t.Errorf("decode %q", tok.Decode(b.IDs, false))
		}
	}
	// add_prefix_space: "Hello" is encoded as " Hello", offsets on the text.
	tok, err := Load(gpt2JSON(t, true, false))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := g.Encode(" Hello world", nil)
	b, _ := tok.Encode("Hello world", nil)
	if !slices.Equal(a.IDs, b.IDs) || !slices.Equal(b.Offsets, [][2]int{{0, 5}, {5, 11}}) {
		t.Errorf("add_prefix_space: %v %v, want %v", b.IDs, b.Offsets, a.IDs)
	}
}

func TestLoadErrors(t *testing.T) {
	good := string(syntheticWordPiece(t, ""))
	cases := map[string]string{
		"not json":   "{",
		"unigram":    strings.Replace(good, `"vocab":{`, `"vocab":[["a",0]],"x":{`, 1),
		"no unk":     strings.Replace(good, `"unk_token":"[UNK]"`, `"unk_token":"<nope>"`, 1),
		"model type": strings.Replace(good, `"type":"WordPiece","unk`, `"type":"WordLevel","unk`, 1),
		"normalizer": strings.Replace(good, `"type":"BertNormalizer"`, `"type":"NFKC"`, 1),
		"pre":        strings.Replace(good, `"type":"BertPreTokenizer"`, `"type":"Metaspace"`, 1),
		"trailing":   good + "x",
		"deep":       strings.Repeat("[", 100) + strings.Repeat("]", 100),
		"bad id":     strings.Replace(good, `"x":8`, `"x":-8`, 1),
		"empty":      "",
	}
	for name, js := range cases {
		if _, err := Load([]byte(js)); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
	if _, err := Load([]byte(good)); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadGPT2([]byte(`{"a":0,"b":1}`), []byte("#version: 0.2\na b\n")); err == nil {
		t.Error("a merge whose result is not in the vocabulary was accepted")
	}
}

// TestLoadSpeed keeps loading fast: a plugin instance loads its
// vocabulary when it starts.
func TestLoadSpeed(t *testing.T) {
	b := vocabFile(t, "all-minilm-l6-v2/tokenizer.json")
	allocs := testing.AllocsPerRun(3, func() {
		if _, err := Load(b); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 2000 {
		t.Errorf("Load makes %.0f allocations; want a few hundred", allocs)
	}
	if os.Getenv("AIAAS_VERBOSE") != "" {
		t.Logf("Load: %.0f allocations", allocs)
	}
}

// TestConcurrent: one tokenizer, many goroutines (go test -race).
func TestConcurrent(t *testing.T) {
	tok := miniLM(t)
	want, _ := tok.Encode("naïve façade café déjà, hello world", nil)
	done := make(chan bool)
	for range 8 {
		go func() {
			defer func() { done <- true }()
			for range 200 {
				e, err := tok.Encode("naïve façade café déjà, hello world", nil)
				if err != nil || !slices.Equal(e.IDs, want.IDs) {
					t.Error("concurrent encodes differ")
					return
				}
			}
		}()
	}
	for range 8 {
		<-done
	}
}
