package tokenizer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"
)

// The binary form of a loaded tokenizer: its tables as they are in memory,
// so that loading is a few bulk copies and one pass of bounds checks.
// Parsing tokenizer.json reads every byte in a loop, and inside a plugin
// every loop iteration pays the sandbox's deadline check: GPT-2's files
// take about a second to load there, its binary form milliseconds. Build
// the binary form once, at build time (cmd/tokenizer-compile), and embed
// it. It is specific to this package's version (binaryVersion).

const (
	binaryMagic   = "AIAASTOK"
	binaryVersion = 1
)

// MarshalBinary returns the tokenizer in the form LoadBinary reads.
func (t *Tokenizer) MarshalBinary() ([]byte, error) {
	var w bwriter
	w.b = append(w.b, binaryMagic...)
	w.u32(binaryVersion)
	w.u32(uint32(t.kind))
	w.u32(uint32(t.pre))
	w.u32(uint32(t.dec))
	var flags uint32
	for i, f := range []bool{t.addPrefix, t.useRegex, t.chunkable, t.asciiOK, t.asciiClean, t.asciiLower, t.ignoreMerges, t.decCleanup} {
		if f {
			flags |= 1 << i
		}
	}
	w.u32(flags)
	w.u64(uint64(t.PadID))
	w.u64(uint64(t.MaxLength))
	w.u64(uint64(t.maxChars))
	w.u32(uint32(t.unk))
	w.str(t.prefix)
	w.str(t.decPrefix)
	w.u32(uint32(len(t.normCodes)))
	for _, c := range t.normCodes {
		w.u32(uint32(c))
	}
	w.u32(uint32(len(t.added)))
	for _, a := range t.added {
		w.u32(uint32(a.id))
		var f uint32
		for i, x := range []bool{a.special, a.lstrip, a.rstrip, a.single, a.normal} {
			if x {
				f |= 1 << i
			}
		}
		w.u32(f)
		w.str(a.content)
	}
	for _, tm := range [2][]tmplItem{t.single, t.pair} {
		w.u32(uint32(len(tm)))
		for _, it := range tm {
			w.u32(uint32(it.seq))
			w.u64(uint64(it.typeID))
			w.u32(uint32(len(it.ids)))
			for _, id := range it.ids {
				w.u32(uint32(id))
			}
		}
	}
	for _, id := range t.byteID {
		w.u32(uint32(id))
	}
	v := t.vocab
	w.u32(uint32(v.maxLen))
	w.u32(uint32(v.n))
	w.str(string(v.arena))
	w.u32s(v.start)
	w.u32s(v.size)
	w.u32s(*(*[]uint32)(unsafe.Pointer(&v.table)))
	w.u64s(t.merges.keys)
	w.u64s(t.merges.vals)
	return w.b, nil
}

// LoadBinary reads what MarshalBinary wrote. Every count, offset and id
// is checked: a corrupt or hostile input is an error, never a panic.
func LoadBinary(b []byte) (*Tokenizer, error) {
	if len(b) > 4*MaxJSONBytes {
		return nil, fmt.Errorf("tokenizer: binary form of %d bytes", len(b))
	}
	r := breader{b: b}
	if len(b) < len(binaryMagic) || string(b[:len(binaryMagic)]) != binaryMagic {
		return nil, errors.New("tokenizer: not a binary tokenizer")
	}
	r.i = len(binaryMagic)
	if v := r.u32(); v != binaryVersion {
		return nil, fmt.Errorf("tokenizer: binary tokenizer version %d; this package reads %d (compile it again)", v, binaryVersion)
	}
	t := newTokenizer()
	t.kind, t.pre, t.dec = modelKind(r.u32()), preKind(r.u32()), decoderKind(r.u32())
	flags := r.u32()
	f := func(i int) bool { return flags&(1<<i) != 0 }
	t.addPrefix, t.useRegex, t.chunkable, t.asciiOK, t.asciiClean, t.asciiLower, t.ignoreMerges, t.decCleanup = f(0), f(1), f(2), f(3), f(4), f(5), f(6), f(7)
	t.PadID, t.MaxLength, t.maxChars = int64(r.u64()), int(r.u64()), int(r.u64())
	t.unk = int32(r.u32())
	t.prefix, t.decPrefix = r.str(), r.str()
	n := r.count(4)
	for range n {
		c := normCode(r.u32())
		if c == 0 || c >= ncEnd {
			return nil, errors.New("tokenizer: binary tokenizer: bad normalizer")
		}
		t.addNorm(c)
	}
	var added []addedToken
	n = r.count(12)
	for range n {
		a := addedToken{id: int32(r.u32())}
		fl := r.u32()
		a.special, a.lstrip, a.rstrip, a.single, a.normal = fl&1 != 0, fl&2 != 0, fl&4 != 0, fl&8 != 0, fl&16 != 0
		a.content = r.str()
		added = append(added, a)
	}
	for k := range 2 {
		var tm []tmplItem
		n = r.count(16)
		for range n {
			it := tmplItem{seq: int(r.u32()), typeID: int64(r.u64())}
			ids := r.count(4)
			for range ids {
				it.ids = append(it.ids, int32(r.u32()))
			}
			tm = append(tm, it)
		}
		if k == 0 {
			t.single = tm
		} else {
			t.pair = tm
		}
	}
	for i := range t.byteID {
		t.byteID[i] = int32(r.u32())
	}
	v := &vocab{maxLen: int(r.u32()), n: int(r.u32())}
	v.arena = append([]byte(nil), r.take(r.count(1))...)
	v.start, v.size = r.u32s(), r.u32s()
	table := r.u32s()
	v.table = *(*[]int32)(unsafe.Pointer(&table))
	t.vocab = v
	t.merges.keys, t.merges.vals = r.u64s(), r.u64s()
	if r.err != nil {
		return nil, r.err
	}
	if r.i != len(b) {
		return nil, errors.New("tokenizer: binary tokenizer: trailing bytes")
	}
	if err := t.validate(added); err != nil {
		return nil, err
	}
	t.setAdded(added)
	return t, nil
}

// validate checks what LoadBinary read, so that no index can go out of
// range later.
func (t *Tokenizer) validate(added []addedToken) error {
	bad := func(what string) error { return fmt.Errorf("tokenizer: binary tokenizer: bad %s", what) }
	v := t.vocab
	nid := len(v.size)
	if t.kind != modelWordPiece && t.kind != modelBPE || t.pre > preWhitespaceSplit || t.dec > decByteLevel {
		return bad("kind")
	}
	if len(v.start) != nid || nid > maxVocab || t.maxChars < 1 || t.MaxLength < 0 || t.PadID < -1 || t.PadID >= maxVocab {
		return bad("header")
	}
	if len(v.table) == 0 || len(v.table)&(len(v.table)-1) != 0 || len(v.table) > 4*maxVocab {
		return bad("table size")
	}
	// Token offsets and table entries are checked where they are used
	// (vocab.has, bounded probes), not here: a pass over 100,000 entries
	// would cost more inside the sandbox than the whole copy.
	if v.maxLen < 0 || v.maxLen > maxTokenBytes {
		return bad("token lengths")
	}
	if t.kind == modelWordPiece && !v.has(t.unk) {
		return bad("unknown token")
	}
	for _, id := range t.byteID {
		if id < -1 || id >= 0 && !v.has(id) {
			return bad("byte alphabet")
		}
	}
	mk := t.merges.keys
	if len(mk) != len(t.merges.vals) || len(mk)&(len(mk)-1) != 0 {
		return bad("merges")
	}
	for _, a := range added {
		if a.id < 0 || a.id >= maxVocab || len(a.content) > maxTokenBytes {
			return bad("added tokens")
		}
	}
	for _, tm := range [2][]tmplItem{t.single, t.pair} {
		for _, it := range tm {
			if it.seq != 0 && it.seq != 1 {
				return bad("template")
			}
			for _, id := range it.ids {
				if id < 0 || id >= maxVocab {
					return bad("template")
				}
			}
		}
	}
	return nil
}

type bwriter struct{ b []byte }

func (w *bwriter) u32(x uint32) { w.b = binary.LittleEndian.AppendUint32(w.b, x) }
func (w *bwriter) u64(x uint64) { w.b = binary.LittleEndian.AppendUint64(w.b, x) }
func (w *bwriter) str(s string) { w.u32(uint32(len(s))); w.b = append(w.b, s...) }
func (w *bwriter) u32s(v []uint32) {
	w.u32(uint32(len(v)))
	for _, x := range v {
		w.u32(x)
	}
}
func (w *bwriter) u64s(v []uint64) {
	w.u32(uint32(len(v)))
	for _, x := range v {
		w.u64(x)
	}
}

// breader reads little-endian values; past the end it records an error
// and returns zeros.
type breader struct {
	b   []byte
	i   int
	err error
}

func (r *breader) take(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b)-r.i {
		if r.err == nil {
			r.err = errors.New("tokenizer: binary tokenizer: truncated")
		}
		return nil
	}
	p := r.b[r.i : r.i+n]
	r.i += n
	return p
}

func (r *breader) u32() uint32 {
	if p := r.take(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (r *breader) u64() uint64 {
	if p := r.take(8); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

func (r *breader) str() string { return string(r.take(int(r.count(1)))) }

// count reads a count of items of at least size bytes each, which must
// fit in what is left.
func (r *breader) count(size int) int {
	n := int(r.u32())
	if r.err == nil && n > (len(r.b)-r.i)/size {
		r.err = errors.New("tokenizer: binary tokenizer: a count past the end")
		return 0
	}
	return n
}

// littleEndian is whether this machine stores integers as the format
// does (wasm, amd64, arm64 do): then arrays are one copy.
var littleEndian = func() bool { x := uint16(1); return *(*byte)(unsafe.Pointer(&x)) == 1 }()

func (r *breader) u32s() []uint32 {
	n := r.count(4)
	p := r.take(4 * n)
	out := make([]uint32, n)
	if p == nil || n == 0 {
		return out
	}
	if littleEndian {
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), 4*n), p)
		return out
	}
	for i := range out {
		out[i] = binary.LittleEndian.Uint32(p[4*i:])
	}
	return out
}

func (r *breader) u64s() []uint64 {
	n := r.count(8)
	p := r.take(8 * n)
	out := make([]uint64, n)
	if p == nil || n == 0 {
		return out
	}
	if littleEndian {
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), 8*n), p)
		return out
	}
	for i := range out {
		out[i] = binary.LittleEndian.Uint64(p[8*i:])
	}
	return out
}
