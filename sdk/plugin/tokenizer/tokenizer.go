package tokenizer

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Limits of Load. Real vocabularies have 30,000–260,000 tokens of at most
// a few hundred bytes.
const (
	MaxJSONBytes  = 64 << 20 // tokenizer.json, encoder.json, vocab.bpe
	maxVocab      = 1 << 21  // tokens, ids and merges
	maxTokenBytes = 1 << 16
	maxAdded      = 1 << 16 // added tokens
)

// DefaultMaxTextBytes is Tokenizer.MaxTextBytes unless changed.
const DefaultMaxTextBytes = 4 << 20

// ErrTooLong is returned (wrapped) when a text needs more than
// Tokenizer.MaxTextBytes bytes of processing.
var ErrTooLong = errors.New("tokenizer: text too long")

// Tokenizer turns text into token ids and back. It is safe for concurrent
// use once loaded (MaxTextBytes and PadID excepted: set them first).
type Tokenizer struct {
	// MaxTextBytes bounds the bytes of one text (one sequence) that an
	// encode processes; more is an ErrTooLong error. With truncation on
	// the right of a single text only the bytes needed for MaxLength
	// tokens are processed, so a longer text is fine then.
	MaxTextBytes int
	// PadID is the id of padding tokens: from tokenizer.json's padding
	// section, else the vocabulary's [PAD] or <pad>, else -1 (padding is
	// then an error until it is set).
	PadID int64

	kind  modelKind
	vocab *vocab

	// WordPiece
	unk      int32
	prefix   string
	maxChars int

	// byte-level BPE
	byteID       [256]int32
	merges       mergeTable
	ignoreMerges bool

	norm      []normStep
	normCodes []normCode
	normNames []string // normalizers that matter to chunking
	// The ASCII fast path: allowed (no normalizer but clean-up, lowercase
	// and identities on ASCII), and what it must do.
	asciiOK, asciiClean, asciiLower bool
	pre                             preKind
	addPrefix                       bool // ByteLevel add_prefix_space
	useRegex                        bool // ByteLevel use_regex
	chunkable                       bool // see chunkEnd
	added                           []addedToken
	addedFirst                      [256]bool // first bytes of added tokens
	maxAdded                        int       // longest added token, bytes
	addedOne                        int       // the first byte of every added token if they share it, else -1

	single, pair []tmplItem
	dec          decoderKind
	decPrefix    string
	decCleanup   bool

	// MaxLength is tokenizer.json's truncation max_length (0 if none):
	// the length the model was exported for, for callers to use as a
	// default. Encode does not apply it by itself.
	MaxLength int
}

type modelKind uint8

const (
	modelWordPiece modelKind = iota + 1
	modelBPE
)

type preKind uint8

const (
	preNone preKind = iota
	preBert
	preByteLevel
	preWhitespaceSplit
)

type decoderKind uint8

const (
	decNone decoderKind = iota
	decWordPiece
	decByteLevel
)

type addedToken struct {
	content                                 string
	id                                      int32
	special, lstrip, rstrip, single, normal bool
}

// tmplItem is one piece of a post-processing template: special token ids,
// or the tokens of sequence A (seq 0) or B (seq 1).
type tmplItem struct {
	ids    []int32 // special token ids; nil for a sequence
	seq    int
	typeID int64
}

// TruncationStrategy says which sequence of a pair loses tokens.
type TruncationStrategy uint8

const (
	// LongestFirst removes tokens from the longer sequence (Hugging
	// Face's algorithm: the shorter keeps its length if it can, else each
	// gets half).
	LongestFirst TruncationStrategy = iota
	// OnlyFirst truncates only the first sequence (an error if it is too
	// short).
	OnlyFirst
	// OnlySecond truncates only the pair (an error without one).
	OnlySecond
)

// PaddingStrategy says to what length encodings are padded.
type PaddingStrategy uint8

const (
	NoPadding PaddingStrategy = iota
	// PadLongest pads every encoding of EncodeBatch to the longest
	// (after truncation); it does nothing to a single encoding.
	PadLongest
	// PadFixed pads to EncodeOptions.PadLength, or MaxLength if that is
	// 0. A longer encoding is left as is (truncate with MaxLength).
	PadFixed
)

// EncodeOptions are the knobs of Hugging Face's encode. The zero value
// (or nil) adds special tokens and neither truncates nor pads.
type EncodeOptions struct {
	// NoSpecialTokens leaves out [CLS], [SEP] and the like
	// (add_special_tokens=False).
	NoSpecialTokens bool
	// SplitSpecialTokens treats special tokens written in the text (such
	// as "[SEP]" or "<|endoftext|>") as ordinary text instead of
	// matching them (split_special_tokens=True).
	SplitSpecialTokens bool
	// MaxLength > 0 truncates to at most that many ids, special tokens
	// included.
	MaxLength    int
	Truncation   TruncationStrategy
	TruncateLeft bool // drop tokens from the start instead of the end
	Padding      PaddingStrategy
	PadLength    int // PadFixed's length; 0 means MaxLength
	// PadToMultipleOf rounds the padded length up to a multiple.
	PadToMultipleOf int
	PadLeft         bool
}

// Encoding is one encoded text (or pair of texts).
type Encoding struct {
	IDs           []int64
	TypeIDs       []int64 // 0 for the first sequence, 1 for the pair (as the template says)
	AttentionMask []int64 // 1 for tokens, 0 for padding
	// SpecialTokensMask is 1 for tokens added by the template and for
	// padding.
	SpecialTokensMask []int64
	// Offsets are the byte ranges [start, end) of every token in the text
	// it came from (the first text, or the pair for the pair's tokens);
	// [0, 0] for template tokens and padding. A token may cover part of a
	// character (byte-level BPE), or a character it shares with the next
	// token (a character that normalizes to several).
	Offsets [][2]int
}

// Len is the number of ids.
func (e *Encoding) Len() int { return len(e.IDs) }

// VocabSize is the number of ids: the largest id + 1.
func (t *Tokenizer) VocabSize() int {
	n := len(t.vocab.size)
	for _, a := range t.added {
		n = max(n, int(a.id)+1)
	}
	return n
}

// TokenToID returns the id of a token of the vocabulary or an added token.
func (t *Tokenizer) TokenToID(tok string) (int64, bool) {
	for _, a := range t.added {
		if a.content == tok {
			return int64(a.id), true
		}
	}
	if id := lookup(t.vocab, tok); id >= 0 {
		return int64(id), true
	}
	return 0, false
}

// IDToToken returns the token string of an id, as the vocabulary spells
// it (byte-level BPE tokens in their printable form, e.g. "Ġthe").
func (t *Tokenizer) IDToToken(id int64) (string, bool) {
	for _, a := range t.added {
		if int64(a.id) == id {
			return a.content, true
		}
	}
	if id < 0 || id > 1<<31-1 || !t.vocab.has(int32(id)) {
		return "", false
	}
	return string(t.vocab.token(int32(id))), true
}

// seqOut is the model's output for one sequence.
type seqOut struct {
	ids  []int32
	offs [][2]int32
}

func (o *seqOut) add(id int32, start, end int) {
	o.ids = append(o.ids, id)
	o.offs = append(o.offs, [2]int32{int32(start), int32(end)})
}

// work is per-call scratch.
type work struct {
	runes, spare []nrune
	word         []byte
	pos          []int32
	roffs        [][2]int32
	cand         []byte
	syms         []sym
	heap         []mergeCand
}

// chunkSize is how many bytes of plain text are normalized and
// tokenized at a time (a variable for tests): about 250 tokens of
// English, so that a text truncated to 128 tokens is read no further
// than it must.
var chunkSize = 1024

// works recycles per-call scratch; buffers grown past maxPooled runes
// (a chunk with no space for megabytes) are left to the collector.
var works = sync.Pool{New: func() any { return new(work) }}

const maxPooled = 1 << 16

// Encode encodes one text.
func (t *Tokenizer) Encode(text string, opts *EncodeOptions) (Encoding, error) {
	return t.encode(text, "", false, opts)
}

// EncodePair encodes a text and its pair (text_pair), as BERT's sentence
// pairs: [CLS] text [SEP] pair [SEP] with type ids 0…0 1…1.
func (t *Tokenizer) EncodePair(text, pair string, opts *EncodeOptions) (Encoding, error) {
	return t.encode(text, pair, true, opts)
}

// EncodeBatch encodes texts; with PadLongest all come out as long as the
// longest.
func (t *Tokenizer) EncodeBatch(texts []string, opts *EncodeOptions) ([]Encoding, error) {
	return t.encodeBatch(texts, nil, opts)
}

// EncodePairBatch encodes texts[i] with pairs[i].
func (t *Tokenizer) EncodePairBatch(texts, pairs []string, opts *EncodeOptions) ([]Encoding, error) {
	if len(pairs) != len(texts) {
		return nil, fmt.Errorf("tokenizer: %d texts and %d pairs", len(texts), len(pairs))
	}
	return t.encodeBatch(texts, pairs, opts)
}

func (t *Tokenizer) encodeBatch(texts, pairs []string, opts *EncodeOptions) ([]Encoding, error) {
	if opts == nil {
		opts = &EncodeOptions{}
	}
	one := *opts
	if one.Padding == PadLongest {
		one.Padding = NoPadding
	}
	out := make([]Encoding, len(texts))
	longest := 0
	for i, s := range texts {
		var err error
		if pairs != nil {
			out[i], err = t.encode(s, pairs[i], true, &one)
		} else {
			out[i], err = t.encode(s, "", false, &one)
		}
		if err != nil {
			return nil, fmt.Errorf("text %d: %w", i, err)
		}
		longest = max(longest, out[i].Len())
	}
	if opts.Padding == PadLongest {
		n := roundUp(longest, opts.PadToMultipleOf)
		for i := range out {
			if err := t.pad(&out[i], n, opts.PadLeft); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func roundUp(n, m int) int {
	if m > 1 && n%m != 0 {
		n += m - n%m
	}
	return n
}

func (t *Tokenizer) encode(text, pair string, hasPair bool, opts *EncodeOptions) (Encoding, error) {
	if opts == nil {
		opts = &EncodeOptions{}
	}
	if opts.MaxLength < 0 || opts.PadLength < 0 || opts.PadToMultipleOf < 0 {
		return Encoding{}, errors.New("tokenizer: negative MaxLength, PadLength or PadToMultipleOf")
	}
	tmpl := t.single
	if hasPair {
		tmpl = t.pair
	}
	nSpecial := 0
	for _, it := range tmpl {
		if !opts.NoSpecialTokens {
			nSpecial += len(it.ids)
		}
	}
	budget := -1
	if opts.MaxLength > 0 {
		if opts.MaxLength < nSpecial {
			return Encoding{}, fmt.Errorf("tokenizer: MaxLength %d leaves no room beside %d special tokens", opts.MaxLength, nSpecial)
		}
		budget = opts.MaxLength - nSpecial
	}
	w := works.Get().(*work)
	defer func() {
		if cap(w.runes) <= maxPooled && cap(w.spare) <= maxPooled && cap(w.syms) <= maxPooled {
			works.Put(w)
		}
	}()
	var a, b seqOut
	// One text truncated at its end: stop tokenizing once the budget is
	// met, so the cost is bounded by MaxLength, not by the text.
	limitA := -1
	if budget >= 0 && !hasPair && !opts.TruncateLeft && opts.Truncation != OnlySecond {
		limitA = budget
	}
	if err := t.tokenize(text, limitA, opts.SplitSpecialTokens, &a, w); err != nil {
		return Encoding{}, err
	}
	if hasPair {
		if err := t.tokenize(pair, -1, opts.SplitSpecialTokens, &b, w); err != nil {
			return Encoding{}, err
		}
	}
	if budget >= 0 {
		if err := truncate(&a, &b, hasPair, budget, opts); err != nil {
			return Encoding{}, err
		}
	}
	e := assemble(tmpl, !opts.NoSpecialTokens, &a, &b, hasPair)
	if opts.Padding == PadFixed {
		n := opts.PadLength
		if n == 0 {
			n = opts.MaxLength
		}
		if err := t.pad(&e, roundUp(n, opts.PadToMultipleOf), opts.PadLeft); err != nil {
			return Encoding{}, err
		}
	} else if opts.Padding == NoPadding && opts.PadToMultipleOf > 1 {
		if err := t.pad(&e, roundUp(e.Len(), opts.PadToMultipleOf), opts.PadLeft); err != nil {
			return Encoding{}, err
		}
	}
	return e, nil
}

// truncate is Hugging Face's truncate_encodings (stride 0).
func truncate(a, b *seqOut, hasPair bool, budget int, opts *EncodeOptions) error {
	n1, n2 := len(a.ids), len(b.ids)
	if n1+n2 <= budget {
		return nil
	}
	left := opts.TruncateLeft
	switch opts.Truncation {
	case LongestFirst:
		if !hasPair {
			a.cut(budget, left)
			return nil
		}
		swap := n1 > n2
		if swap {
			n1, n2 = n2, n1
		}
		if n1 > budget {
			n2 = n1
		} else {
			n2 = max(n1, budget-n1)
		}
		if n1+n2 > budget {
			n1 = budget / 2
			n2 = n1 + budget%2
		}
		if swap {
			n1, n2 = n2, n1
		}
		a.cut(n1, left)
		b.cut(n2, left)
	case OnlyFirst, OnlySecond:
		target := a
		if opts.Truncation == OnlySecond {
			if !hasPair {
				return errors.New("tokenizer: truncation OnlySecond needs a pair")
			}
			target = b
		}
		remove := n1 + n2 - budget
		if len(target.ids) <= remove {
			return fmt.Errorf("tokenizer: the sequence to truncate has %d tokens; %d must go", len(target.ids), remove)
		}
		target.cut(len(target.ids)-remove, left)
	default:
		return fmt.Errorf("tokenizer: unknown truncation strategy %d", opts.Truncation)
	}
	return nil
}

func (o *seqOut) cut(n int, left bool) {
	if n >= len(o.ids) {
		return
	}
	if left {
		o.ids = o.ids[len(o.ids)-n:]
		o.offs = o.offs[len(o.offs)-n:]
		return
	}
	o.ids, o.offs = o.ids[:n], o.offs[:n]
}

// assemble lays out the sequences as the template says, with its special
// tokens if special (without a template: A then B, type ids 0 and 1).
func assemble(tmpl []tmplItem, special bool, a, b *seqOut, hasPair bool) Encoding {
	if tmpl == nil {
		tmpl = []tmplItem{{seq: 0}, {seq: 1, typeID: 1}}
		if !hasPair {
			tmpl = tmpl[:1]
		}
	}
	n := len(a.ids) + len(b.ids)
	for _, it := range tmpl {
		if special {
			n += len(it.ids)
		}
	}
	buf := make([]int64, 4*n)
	e := Encoding{IDs: buf[:0:n], TypeIDs: buf[n : n : 2*n], AttentionMask: buf[2*n : 2*n : 3*n],
		SpecialTokensMask: buf[3*n : 3*n : 4*n], Offsets: make([][2]int, 0, n)}
	for _, it := range tmpl {
		if it.ids == nil {
			o := a
			if it.seq == 1 {
				o = b
			}
			for i, id := range o.ids {
				e.IDs = append(e.IDs, int64(id))
				e.TypeIDs = append(e.TypeIDs, it.typeID)
				e.AttentionMask = append(e.AttentionMask, 1)
				e.SpecialTokensMask = append(e.SpecialTokensMask, 0)
				e.Offsets = append(e.Offsets, [2]int{int(o.offs[i][0]), int(o.offs[i][1])})
			}
			continue
		}
		if !special {
			continue
		}
		for _, id := range it.ids {
			e.IDs = append(e.IDs, int64(id))
			e.TypeIDs = append(e.TypeIDs, it.typeID)
			e.AttentionMask = append(e.AttentionMask, 1)
			e.SpecialTokensMask = append(e.SpecialTokensMask, 1)
			e.Offsets = append(e.Offsets, [2]int{})
		}
	}
	return e
}

// pad pads e to n ids (nothing if it is as long already).
func (t *Tokenizer) pad(e *Encoding, n int, left bool) error {
	k := n - e.Len()
	if k <= 0 {
		return nil
	}
	if t.PadID < 0 {
		return errors.New("tokenizer: this vocabulary has no padding token: set Tokenizer.PadID")
	}
	grow := func(s []int64, v int64) []int64 {
		out := make([]int64, n)
		if left {
			copy(out[k:], s)
			for i := range k {
				out[i] = v
			}
		} else {
			copy(out, s)
			for i := len(s); i < n; i++ {
				out[i] = v
			}
		}
		return out
	}
	e.IDs = grow(e.IDs, t.PadID)
	e.TypeIDs = grow(e.TypeIDs, 0)
	e.AttentionMask = grow(e.AttentionMask, 0)
	e.SpecialTokensMask = grow(e.SpecialTokensMask, 1)
	offs := make([][2]int, n)
	if left {
		copy(offs[k:], e.Offsets)
	} else {
		copy(offs, e.Offsets)
	}
	e.Offsets = offs
	return nil
}

// tokenize runs added-token matching, normalization, pre-tokenization and
// the model over text, appending to o; it stops once o holds limit ids
// (limit < 0: never) and the ids are then cut to limit.
func (t *Tokenizer) tokenize(text string, limit int, splitSpecial bool, o *seqOut, w *work) error {
	// About four bytes a token in English: one allocation, usually.
	n := len(text)/3 + 8
	if limit >= 0 {
		n = min(n, limit+1)
	}
	o.ids, o.offs = make([]int32, 0, n), make([][2]int32, 0, n)
	p := 0
	split := true // the next plain text starts a split (ByteLevel's add_prefix_space)
	for p < len(text) {
		if limit >= 0 && len(o.ids) >= limit {
			break
		}
		end := len(text)
		if t.chunkable {
			end = p + t.chunkEnd(text[p:])
		}
		if end > t.MaxTextBytes {
			return fmt.Errorf("%w: more than %d bytes", ErrTooLong, t.MaxTextBytes)
		}
		// An added token that starts in this chunk ends it.
		if ms, me, id, ok := t.findAdded(text, p, end, splitSpecial); ok {
			if ms > p {
				t.plain(text[p:ms], p, split, o, w)
			}
			o.add(id, ms, me)
			p, split = me, true
			continue
		}
		t.plain(text[p:end], p, split, o, w)
		p, split = end, false
	}
	if limit >= 0 && len(o.ids) > limit {
		o.ids, o.offs = o.ids[:limit], o.offs[:limit]
	}
	return nil
}

// chunkEnd returns where the chunk starting s ends: the first safe
// boundary at or after chunkSize, or len(s). A boundary is a ' ' before
// which no token of the pre-tokenizer can end in the middle: for BERT's
// pre-tokenizer any space; for byte-level BPE a space that follows a
// character that is not white space (a run of white space stays whole).
func (t *Tokenizer) chunkEnd(s string) int {
	if len(s) <= chunkSize {
		return len(s)
	}
	for i := chunkSize; i < len(s); i++ {
		if s[i] != ' ' {
			continue
		}
		if t.pre == preByteLevel {
			r, _ := utf8.DecodeLastRuneInString(s[:i])
			if unicode.IsSpace(r) {
				continue
			}
		}
		return i
	}
	return len(s)
}

// plain tokenizes text with no added tokens in it; base is its offset in
// the caller's text and first whether it starts a split (for
// add_prefix_space).
func (t *Tokenizer) plain(s string, base int, first bool, o *seqOut, w *work) {
	switch t.kind {
	case modelWordPiece:
		if t.asciiOK && t.asciiWords(s, base, o, w) {
			return
		}
		if cap(w.runes) < len(s) {
			w.runes, w.spare = make([]nrune, 0, len(s)+len(s)/4), make([]nrune, 0, len(s)+len(s)/4)
		}
		w.runes = toRunes(w.runes[:0], s, base)
		w.runes, w.spare = normalize(t.norm, w.runes, w.spare)
		t.preWords(w.runes, func(word []nrune) { t.wordpiece(word, o, w) })
	case modelBPE:
		// Byte-level BPE works on bytes: a normalizer would have to keep
		// the offsets of every byte. Load accepts none.
		t.byteLevel(s, base, first, o, w)
	}
}

// preWords splits normalized text into words for WordPiece.
func (t *Tokenizer) preWords(rs []nrune, f func([]nrune)) {
	switch t.pre {
	case preBert, preWhitespaceSplit:
		start := -1
		for i, c := range rs {
			switch {
			case unicode.IsSpace(c.r):
				if start >= 0 {
					f(rs[start:i])
					start = -1
				}
			case t.pre == preBert && isBertPunct(c.r):
				if start >= 0 {
					f(rs[start:i])
					start = -1
				}
				f(rs[i : i+1])
			default:
				if start < 0 {
					start = i
				}
			}
		}
		if start >= 0 {
			f(rs[start:])
		}
	default:
		if len(rs) > 0 {
			f(rs)
		}
	}
}

// isBertPunct: ASCII punctuation (which includes symbols such as $ + < =
// > ^ ` | ~) or any Unicode punctuation (category P).
func isBertPunct(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= 33 && r <= 47 || r >= 58 && r <= 64 || r >= 91 && r <= 96 || r >= 123 && r <= 126
	}
	return unicode.IsPunct(r)
}

// wordpiece appends the WordPiece tokens of one word: greedy longest
// match from the left, "##" for continuations, the whole word [UNK] if
// any piece is missing or it is longer than max_input_chars_per_word.
func (t *Tokenizer) wordpiece(word []nrune, o *seqOut, w *work) {
	if len(word) == 0 {
		return
	}
	if len(word) > t.maxChars {
		o.add(t.unk, int(word[0].start), int(word[len(word)-1].end))
		return
	}
	w.word, w.pos, w.roffs = w.word[:0], w.pos[:0], w.roffs[:0]
	for _, c := range word {
		w.pos = append(w.pos, int32(len(w.word)))
		w.roffs = append(w.roffs, [2]int32{c.start, c.end})
		w.word = utf8.AppendRune(w.word, c.r)
	}
	w.pos = append(w.pos, int32(len(w.word)))
	t.wordpieceWord(o, w)
}

// wordpieceWord tokenizes the word in w.word, whose characters start at
// w.pos (one more entry: the end) and come from w.roffs of the input.
func (t *Tokenizer) wordpieceWord(o *seqOut, w *work) {
	nr := len(w.roffs)
	if nr == 0 {
		return
	}
	whole := func() { o.add(t.unk, int(w.roffs[0][0]), int(w.roffs[nr-1][1])) }
	if nr > t.maxChars {
		whole()
		return
	}
	mark := len(o.ids)
	for start := 0; start < nr; {
		maxBytes := t.vocab.maxLen
		if start > 0 {
			maxBytes -= len(t.prefix)
		}
		found := -1
		var id int32
		end := nr
		for end > start && int(w.pos[end]-w.pos[start]) > maxBytes {
			end--
		}
		for ; end > start; end-- {
			piece := w.word[w.pos[start]:w.pos[end]]
			if start > 0 {
				w.cand = append(append(w.cand[:0], t.prefix...), piece...)
				piece = w.cand
			}
			if id = lookup(t.vocab, piece); id >= 0 {
				found = end
				break
			}
		}
		if found < 0 {
			o.ids, o.offs = o.ids[:mark], o.offs[:mark]
			whole()
			return
		}
		o.add(id, int(w.roffs[start][0]), int(w.roffs[found-1][1]))
		start = found
	}
}

// asciiWords is plain() for WordPiece on ASCII text when the normalizer
// is BERT's (or NFD, StripAccents, Lowercase): those only clean and
// lowercase ASCII, so normalization, pre-tokenization and the word
// buffers are one pass over the bytes. Several times faster than the
// general path inside a plugin, where every loop pays a deadline check.
// It gives up, having added nothing, at the first byte that is not ASCII.
func (t *Tokenizer) asciiWords(s string, base int, o *seqOut, w *work) bool {
	w.word, w.pos, w.roffs = w.word[:0], w.pos[:0], w.roffs[:0]
	mark := len(o.ids)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			o.ids, o.offs = o.ids[:mark], o.offs[:mark]
			return false
		}
		switch asciiClass[c] {
		case acSpace:
			t.flushWord(o, w)
			continue
		case acControl:
			if t.asciiClean {
				continue // removed: the word goes on
			}
		case acPunct:
			if t.pre == preBert {
				t.flushWord(o, w)
				w.pos = append(w.pos, 0)
				w.word = append(w.word, c)
				w.roffs = append(w.roffs, [2]int32{int32(base + i), int32(base + i + 1)})
				t.flushWord(o, w)
				continue
			}
		case acUpper:
			if t.asciiLower {
				c += 'a' - 'A'
			}
		}
		w.pos = append(w.pos, int32(len(w.word)))
		w.word = append(w.word, c)
		w.roffs = append(w.roffs, [2]int32{int32(base + i), int32(base + i + 1)})
	}
	t.flushWord(o, w)
	return true
}

func (t *Tokenizer) flushWord(o *seqOut, w *work) {
	if len(w.roffs) > 0 {
		w.pos = append(w.pos, int32(len(w.word)))
		t.wordpieceWord(o, w)
	}
	w.word, w.pos, w.roffs = w.word[:0], w.pos[:0], w.roffs[:0]
}

const (
	acOther = iota
	acSpace
	acControl
	acPunct
	acUpper
)

// asciiClass classifies the ASCII bytes for asciiWords.
var asciiClass = func() (c [128]uint8) {
	for b := range c {
		switch r := rune(b); {
		case r == ' ' || r >= '\t' && r <= '\r':
			c[b] = acSpace
		case r < 0x20 || r == 0x7f:
			c[b] = acControl
		case isBertPunct(r):
			c[b] = acPunct
		case r >= 'A' && r <= 'Z':
			c[b] = acUpper
		}
	}
	return
}()

// Decode turns ids back into text; ids it does not know are skipped, and
// so are special tokens if skipSpecial. Byte-level BPE returns the exact
// bytes the ids stand for, which may be invalid UTF-8 when the ids end
// in the middle of a character (strings.ToValidUTF8 cleans that up).
func (t *Tokenizer) Decode(ids []int64, skipSpecial bool) string {
	var sb strings.Builder
	n := 0
	for _, id := range ids {
		tok, special, ok := t.idToken(id)
		if !ok || (skipSpecial && special) {
			continue
		}
		switch t.dec {
		case decByteLevel:
			appendByteDecoded(&sb, tok)
		case decWordPiece:
			if n > 0 {
				if rest, ok := strings.CutPrefix(tok, t.decPrefix); ok {
					tok = rest
				} else {
					tok = " " + tok
				}
			}
			if t.decCleanup {
				tok = cleanup(tok)
			}
			sb.WriteString(tok)
		default:
			if n > 0 {
				sb.WriteByte(' ')
			}
			sb.WriteString(tok)
		}
		n++
	}
	return sb.String()
}

func (t *Tokenizer) idToken(id int64) (tok string, special, ok bool) {
	for i := range t.added {
		if int64(t.added[i].id) == id {
			return t.added[i].content, t.added[i].special || t.isTemplateID(id), true
		}
	}
	if id < 0 || id > 1<<31-1 || !t.vocab.has(int32(id)) {
		return "", false, false
	}
	return string(t.vocab.token(int32(id))), t.isTemplateID(id), true
}

// isTemplateID reports whether id is a special token of the
// post-processor's templates ([CLS], [SEP]): special in Decode even when
// tokenizer.json does not list it among the added tokens.
func (t *Tokenizer) isTemplateID(id int64) bool {
	for _, tm := range [2][]tmplItem{t.single, t.pair} {
		for _, it := range tm {
			for _, x := range it.ids {
				if int64(x) == id {
					return true
				}
			}
		}
	}
	return false
}

// cleanup is the WordPiece decoder's clean-up of spaces before
// punctuation and in English contractions (per token, as Hugging Face's
// decoder does it).
func cleanup(s string) string {
	if !strings.Contains(s, " ") {
		return s
	}
	for _, r := range [...][2]string{{" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
		{" n't", "n't"}, {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}} {
		s = strings.ReplaceAll(s, r[0], r[1])
	}
	return s
}

// findAdded finds the leftmost-longest added token that starts in
// text[p:end]; ms, me include the white space lstrip and rstrip take.
func (t *Tokenizer) findAdded(text string, p, end int, splitSpecial bool) (ms, me int, id int32, ok bool) {
	if len(t.added) == 0 {
		return
	}
	for i := p; i < end; i++ {
		if t.addedOne >= 0 { // one first byte, as BERT's [CLS] [SEP] …: jump
			k := strings.IndexByte(text[i:end], byte(t.addedOne))
			if k < 0 {
				return
			}
			i += k
		} else if !t.addedFirst[text[i]] {
			continue
		}
		for k := range t.added { // sorted longest first
			a := &t.added[k]
			if (splitSpecial && a.special) || !strings.HasPrefix(text[i:], a.content) {
				continue
			}
			s, e := i, i+len(a.content)
			if a.single && (isWordBefore(text[:s]) || isWordAfter(text[e:])) {
				continue
			}
			if a.lstrip {
				for s > p {
					r, n := utf8.DecodeLastRuneInString(text[p:s])
					if !unicode.IsSpace(r) {
						break
					}
					s -= n
				}
			}
			if a.rstrip {
				for e < len(text) {
					r, n := utf8.DecodeRuneInString(text[e:])
					if !unicode.IsSpace(r) {
						break
					}
					e += n
				}
			}
			return s, e, a.id, true
		}
	}
	return
}

func isWordRune(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

func isWordBefore(s string) bool {
	r, n := utf8.DecodeLastRuneInString(s)
	return n > 0 && isWordRune(r)
}

func isWordAfter(s string) bool {
	r, n := utf8.DecodeRuneInString(s)
	return n > 0 && isWordRune(r)
}

// setAdded installs the added tokens, longest first (so that the first
// match at a position is the longest).
func (t *Tokenizer) setAdded(added []addedToken) {
	added = slices.DeleteFunc(added, func(a addedToken) bool { return a.content == "" })
	slices.SortStableFunc(added, func(a, b addedToken) int { return len(b.content) - len(a.content) })
	t.added = added
	t.addedOne = -1
	for _, a := range added {
		t.addedFirst[a.content[0]] = true
		t.maxAdded = max(t.maxAdded, len(a.content))
		if t.addedOne == -1 || t.addedOne == int(a.content[0]) {
			t.addedOne = int(a.content[0])
		} else {
			t.addedOne = -2
		}
	}
	t.addedOne = max(t.addedOne, -1)
}
