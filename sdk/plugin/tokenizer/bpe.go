package tokenizer

import (
	"bytes"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// GPT-2's byte-level alphabet: every byte is spelled as a printable
// character (bytes_to_unicode in OpenAI's encoder.py): the printable
// Latin-1 bytes as themselves, the other 68 as U+0100 onwards in order.
var byteRune, runeByte = func() (br [256]rune, rb [324]int16) {
	for i := range rb {
		rb[i] = -1
	}
	n := rune(0)
	for b := 0; b < 256; b++ {
		if b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE {
			br[b] = rune(b)
		} else {
			br[b] = 256 + n
			n++
		}
		rb[br[b]] = int16(b)
	}
	return
}()

// appendByteDecoded writes the bytes a byte-level token stands for; a
// token with a character outside the alphabet (an added token such as
// "<｜end｜>") is written as it is, as Hugging Face's decoder does.
func appendByteDecoded(sb *strings.Builder, tok string) {
	for _, r := range tok {
		if r >= rune(len(runeByte)) || runeByte[r] < 0 {
			sb.WriteString(tok)
			return
		}
	}
	for _, r := range tok {
		sb.WriteByte(byte(runeByte[r]))
	}
}

// mergeTable maps a pair of ids to the rank of their merge and the id of
// the merged token: open addressing over pointer-free slices.
type mergeTable struct {
	keys []uint64 // a<<32 | b, or emptyKey
	vals []uint64 // rank<<32 | merged id
}

const emptyKey = ^uint64(0)

func (m *mergeTable) init(n int) {
	size := 1
	for size < 2*n {
		size <<= 1
	}
	m.keys = make([]uint64, size)
	m.vals = make([]uint64, size)
	for i := range m.keys {
		m.keys[i] = emptyKey
	}
}

func mix64(k uint64) uint32 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	return uint32(k)
}

// put adds a merge unless the pair has one already (the first, lowest
// rank wins, as in Hugging Face's builder).
func (m *mergeTable) put(a, b int32, rank uint32, merged int32) {
	k := uint64(uint32(a))<<32 | uint64(uint32(b))
	mask := uint32(len(m.keys) - 1)
	for h := mix64(k) & mask; ; h = (h + 1) & mask {
		switch m.keys[h] {
		case emptyKey:
			m.keys[h], m.vals[h] = k, uint64(rank)<<32|uint64(uint32(merged))
			return
		case k:
			return
		}
	}
}

// get returns the rank and merged id of the pair (a, b).
func (m *mergeTable) get(a, b int32) (rank uint32, merged int32, ok bool) {
	if len(m.keys) == 0 {
		return 0, 0, false
	}
	k := uint64(uint32(a))<<32 | uint64(uint32(b))
	mask := uint32(len(m.keys) - 1)
	h := mix64(k) & mask
	for range m.keys { // bounded: a table read by LoadBinary may be full
		switch m.keys[h] {
		case emptyKey:
			return 0, 0, false
		case k:
			v := m.vals[h]
			return uint32(v >> 32), int32(uint32(v)), true
		}
		h = (h + 1) & mask
	}
	return 0, 0, false
}

// byteLevel is the ByteLevel pre-tokenizer (GPT-2's regular expression,
// add_prefix_space) followed by BPE on each piece.
func (t *Tokenizer) byteLevel(s string, base int, first bool, o *seqOut, w *work) {
	if first && t.addPrefix && s != "" && s[0] != ' ' {
		// The first piece gets a space in front, which maps to no input
		// byte: its offsets start at base.
		p := " " + s
		cut := len(p)
		if t.useRegex {
			cut = gpt2Next(p, 0)
		}
		mark := len(o.offs)
		t.bpe([]byte(p[:cut]), base-1, o, w)
		for i := mark; i < len(o.offs); i++ {
			o.offs[i][0] = max(o.offs[i][0], int32(base))
			o.offs[i][1] = max(o.offs[i][1], int32(base))
		}
		s, base = s[cut-1:], base+cut-1
	}
	if !t.useRegex {
		t.bpe([]byte(s), base, o, w)
		return
	}
	for i := 0; i < len(s); {
		j := gpt2Next(s, i)
		t.bpe([]byte(s[i:j]), base+i, o, w)
		i = j
	}
}

// gpt2Next returns the end of the piece that starts at i, by GPT-2's
// pattern
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// written out by hand (Go's regexp has no look-ahead). \s is Unicode
// White_Space (unicode.IsSpace); an invalid byte is a character of its
// own of the third class.
func gpt2Next(s string, i int) int {
	if s[i] == '\'' && i+1 < len(s) {
		switch s[i+1] {
		case 's', 't', 'm', 'd':
			return i + 2
		case 'r', 'v':
			if i+2 < len(s) && s[i+2] == 'e' {
				return i + 3
			}
		case 'l':
			if i+2 < len(s) && s[i+2] == 'l' {
				return i + 3
			}
		}
	}
	j := i
	if s[i] == ' ' && i+1 < len(s) {
		if c, _ := classAt(s, i+1); c != clSpace {
			j = i + 1
		}
	}
	c, n := classAt(s, j)
	if c != clSpace {
		j += n
		for j < len(s) {
			c2, n2 := classAt(s, j)
			if c2 != c {
				break
			}
			j += n2
		}
		return j
	}
	// White space: all of it if it ends the text or is one character,
	// else all but its last character (which goes with the next piece).
	j, last := i, i
	for j < len(s) {
		c2, n2 := classAt(s, j)
		if c2 != clSpace {
			break
		}
		last = j
		j += n2
	}
	if j == len(s) || last == i {
		return j
	}
	return last
}

type class uint8

const (
	clSpace class = iota
	clLetter
	clNumber
	clOther
)

func classAt(s string, i int) (class, int) {
	r, n := rune(s[i]), 1
	if r >= utf8.RuneSelf {
		r, n = utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			return clOther, 1
		}
	}
	switch {
	case r < utf8.RuneSelf:
		switch {
		case r == ' ' || r >= '\t' && r <= '\r':
			return clSpace, 1
		case r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
			return clLetter, 1
		case r >= '0' && r <= '9':
			return clNumber, 1
		}
		return clOther, 1
	case unicode.IsSpace(r):
		return clSpace, n
	case unicode.IsLetter(r):
		return clLetter, n
	case unicode.IsNumber(r):
		return clNumber, n
	}
	return clOther, n
}

type sym struct {
	id         int32
	start, end int32 // bytes of the piece
	prev, next int32
}

type mergeCand struct {
	rank uint32
	pos  int32
}

// bpe appends the BPE tokens of one pre-tokenized piece; base is the
// offset of piece[0] in the caller's text.
func (t *Tokenizer) bpe(piece []byte, base int, o *seqOut, w *work) {
	if len(piece) == 0 {
		return
	}
	if t.ignoreMerges {
		w.cand = w.cand[:0]
		for _, b := range piece {
			w.cand = utf8.AppendRune(w.cand, byteRune[b])
		}
		if id := lookup(t.vocab, w.cand); id >= 0 {
			o.add(id, base, base+len(piece))
			return
		}
	}
	syms := w.syms[:0]
	for i, b := range piece {
		id := t.byteID[b]
		if id < 0 {
			continue // no token for this byte and no unknown token: dropped, as Hugging Face does
		}
		syms = append(syms, sym{id: id, start: int32(i), end: int32(i + 1), prev: int32(len(syms) - 1), next: int32(len(syms) + 1)})
	}
	if len(syms) == 0 {
		return
	}
	syms[len(syms)-1].next = -1
	if len(syms) <= 48 {
		t.mergeSmall(syms)
	} else {
		w.heap = t.mergeHeap(syms, w.heap[:0])
	}
	w.syms = syms
	for i := int32(0); i >= 0; i = syms[i].next {
		o.add(syms[i].id, base+int(syms[i].start), base+int(syms[i].end))
	}
}

// mergeSmall applies merges lowest rank first, leftmost first among
// equals, by scanning: quadratic, and the fastest for short pieces.
func (t *Tokenizer) mergeSmall(syms []sym) {
	for {
		best, bestRank, bestID := int32(-1), uint32(0), int32(0)
		for i := int32(0); i >= 0 && syms[i].next >= 0; i = syms[i].next {
			r, id, ok := t.merges.get(syms[i].id, syms[syms[i].next].id)
			if ok && (best < 0 || r < bestRank) {
				best, bestRank, bestID = i, r, id
			}
		}
		if best < 0 {
			return
		}
		mergeAt(syms, best, bestID)
	}
}

func mergeAt(syms []sym, i, id int32) {
	j := syms[i].next
	syms[i].id, syms[i].end, syms[i].next = id, syms[j].end, syms[j].next
	if syms[j].next >= 0 {
		syms[syms[j].next].prev = i
	}
	syms[j].id = -1 // dead
}

// mergeHeap is mergeSmall with a priority queue: O(n log n) for long
// pieces (a word of a million letters is one piece).
func (t *Tokenizer) mergeHeap(syms []sym, h []mergeCand) []mergeCand {
	less := func(a, b mergeCand) bool { return a.rank < b.rank || a.rank == b.rank && a.pos < b.pos }
	push := func(c mergeCand) {
		h = append(h, c)
		for i := len(h) - 1; i > 0; {
			p := (i - 1) / 2
			if !less(h[i], h[p]) {
				break
			}
			h[i], h[p] = h[p], h[i]
			i = p
		}
	}
	pop := func() mergeCand {
		top := h[0]
		h[0] = h[len(h)-1]
		h = h[:len(h)-1]
		for i := 0; ; {
			l, r, m := 2*i+1, 2*i+2, i
			if l < len(h) && less(h[l], h[m]) {
				m = l
			}
			if r < len(h) && less(h[r], h[m]) {
				m = r
			}
			if m == i {
				break
			}
			h[i], h[m] = h[m], h[i]
			i = m
		}
		return top
	}
	cand := func(i int32) {
		if i < 0 || syms[i].next < 0 {
			return
		}
		if r, _, ok := t.merges.get(syms[i].id, syms[syms[i].next].id); ok {
			push(mergeCand{r, i})
		}
	}
	for i := int32(0); i >= 0; i = syms[i].next {
		cand(i)
	}
	for len(h) > 0 {
		c := pop()
		s := &syms[c.pos]
		if s.id < 0 || s.next < 0 {
			continue
		}
		r, id, ok := t.merges.get(s.id, syms[s.next].id)
		if !ok || r != c.rank {
			continue // stale: one side merged since
		}
		mergeAt(syms, c.pos, id)
		cand(syms[c.pos].prev)
		cand(c.pos)
	}
	return h
}

// LoadGPT2 loads OpenAI's GPT-2 files: encoder.json (token → id) and
// vocab.bpe (the merges, one "a b" per line after a "#version" line). The
// result is byte-level BPE with GPT-2's pre-tokenizer, no special tokens
// added and none matched in the text (as OpenAI's encoder: <|endoftext|>
// in a text is encoded as ordinary characters), and no padding token.
func LoadGPT2(encoderJSON, vocabBPE []byte) (*Tokenizer, error) {
	if len(encoderJSON) > MaxJSONBytes || len(vocabBPE) > MaxJSONBytes {
		return nil, fmt.Errorf("tokenizer: files over %d bytes", MaxJSONBytes)
	}
	s := &scanner{b: encoderJSON}
	var vb vocabBuilder
	if err := readVocab(s, &vb); err != nil {
		return nil, err
	}
	if err := s.end(); err != nil {
		return nil, err
	}
	var mb mergesBuilder
	for line := range bytes.SplitSeq(vocabBPE, []byte{'\n'}) {
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 || bytes.HasPrefix(line, []byte("#version")) {
			continue
		}
		if err := mb.addLine(line); err != nil {
			return nil, err
		}
	}
	t := newTokenizer()
	t.kind, t.pre, t.dec, t.useRegex, t.chunkable = modelBPE, preByteLevel, decByteLevel, true, true
	if err := t.finishBPE(&vb, &mb, nil); err != nil {
		return nil, err
	}
	return t, nil
}

// mergesBuilder keeps merges as byte ranges until the vocabulary is
// known (tokenizer.json may list the merges first).
type mergesBuilder struct {
	arena []byte
	pairs [][4]uint32 // a offset, a length, b offset, b length
}

func (m *mergesBuilder) add(a, b []byte) error {
	if len(m.pairs) >= maxVocab {
		return fmt.Errorf("tokenizer: more than %d merges", maxVocab)
	}
	m.pairs = append(m.pairs, [4]uint32{uint32(len(m.arena)), uint32(len(a)), uint32(len(m.arena) + len(a)), uint32(len(b))})
	m.arena = append(append(m.arena, a...), b...)
	return nil
}

// addLine adds a merge written "a b".
func (m *mergesBuilder) addLine(line []byte) error {
	a, b, ok := bytes.Cut(line, []byte{' '})
	if !ok || len(a) == 0 || len(b) == 0 || bytes.IndexByte(b, ' ') >= 0 {
		return fmt.Errorf("tokenizer: merge %q is not two tokens", line)
	}
	return m.add(a, b)
}

// finishBPE builds the vocabulary, resolves the merges and the byte
// alphabet.
func (t *Tokenizer) finishBPE(vb *vocabBuilder, mb *mergesBuilder, unk *string) error {
	v, err := vb.build()
	if err != nil {
		return err
	}
	t.vocab = v
	t.merges.init(len(mb.pairs))
	var ab []byte
	for rank, p := range mb.pairs {
		a, b := mb.arena[p[0]:p[0]+p[1]], mb.arena[p[2]:p[2]+p[3]]
		ia, ib := lookup(v, a), lookup(v, b)
		ab = append(append(ab[:0], a...), b...)
		iab := lookup(v, ab)
		if ia < 0 || ib < 0 || iab < 0 {
			return fmt.Errorf("tokenizer: merge %d (%q %q) uses a token missing from the vocabulary", rank, a, b)
		}
		t.merges.put(ia, ib, uint32(rank), iab)
	}
	unkID := int32(-1)
	if unk != nil {
		unkID = lookup(v, *unk)
	}
	var buf [4]byte
	for b := range 256 {
		n := utf8.EncodeRune(buf[:], byteRune[b])
		t.byteID[b] = lookup(v, buf[:n])
		if t.byteID[b] < 0 {
			t.byteID[b] = unkID
		}
	}
	return nil
}
