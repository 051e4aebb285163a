package tokenizer

import (
	"fmt"
	"unsafe"
)

// vocab maps token strings to ids and back without a Go map: every token's
// bytes live in one arena, and an open-addressing table of ids indexes
// them. The whole structure is a handful of pointer-free slices, so
// loading 50,000 tokens is a few allocations and the garbage collector
// never scans it (a map[string]int32 would hold 50,000 string pointers,
// scanned on every cycle of a plugin's collector).
type vocab struct {
	arena []byte
	start []uint32 // by id: offset in arena
	size  []uint32 // by id: length, or absent
	table []int32  // id, or -1 for an empty slot; len is a power of two
	n     int      // tokens present
	// maxLen is the longest token, in bytes.
	maxLen int
}

const absent = ^uint32(0)

// vocabBuilder collects (token, id) pairs as the JSON streams by.
type vocabBuilder struct {
	arena []byte
	ents  []vent
	maxID int32
}

type vent struct {
	off, n uint32
	id     int32
}

func (b *vocabBuilder) add(tok []byte, id int32) {
	b.ents = append(b.ents, vent{uint32(len(b.arena)), uint32(len(tok)), id})
	b.arena = append(b.arena, tok...)
	b.maxID = max(b.maxID, id)
}

func (b *vocabBuilder) build() (*vocab, error) {
	if len(b.ents) == 0 {
		return nil, fmt.Errorf("tokenizer: empty vocabulary")
	}
	n := int(b.maxID) + 1
	v := &vocab{arena: b.arena, start: make([]uint32, n), size: make([]uint32, n)}
	for i := range v.size {
		v.size[i] = absent
	}
	tsize := 1
	for tsize < 2*len(b.ents) {
		tsize <<= 1
	}
	v.table = make([]int32, tsize)
	for i := range v.table {
		v.table[i] = -1
	}
	mask := uint32(tsize - 1)
	for _, e := range b.ents {
		tok := b.arena[e.off : e.off+e.n]
		h := hash(tok) & mask
		for {
			id := v.table[h]
			if id < 0 {
				v.table[h] = e.id
				break
			}
			if string(v.token(id)) == string(tok) { // duplicate key: the last one wins
				v.table[h] = e.id
				break
			}
			h = (h + 1) & mask
		}
		v.start[e.id], v.size[e.id] = e.off, e.n
		v.maxLen = max(v.maxLen, int(e.n))
	}
	for _, s := range v.size {
		if s != absent {
			v.n++
		}
	}
	return v, nil
}

func (v *vocab) token(id int32) []byte {
	if !v.has(id) {
		return nil
	}
	return v.arena[v.start[id] : v.start[id]+v.size[id]]
}

// has reports whether id names a token. It also checks the token's
// bytes are in the arena, so that tables read by LoadBinary need no
// pass over every entry (inside the sandbox such a pass costs more than
// the copy).
func (v *vocab) has(id int32) bool {
	return id >= 0 && int(id) < len(v.size) && int(id) < len(v.start) && v.size[id] != absent &&
		uint64(v.start[id])+uint64(v.size[id]) <= uint64(len(v.arena))
}

// lookup returns the id of tok, or -1.
func lookup[T ~string | ~[]byte](v *vocab, tok T) int32 {
	if s, ok := any(tok).(string); ok {
		return v.find(unsafe.Slice(unsafe.StringData(s), len(s)))
	}
	return v.find([]byte(tok))
}

// find is lookup, not generic (generic code is slower inside a plugin,
// where it is not inlined).
func (v *vocab) find(tok []byte) int32 {
	if len(tok) > v.maxLen {
		return -1
	}
	mask := uint32(len(v.table) - 1)
	h := hash(tok) & mask
	for range v.table { // at most every slot: a table read by LoadBinary may have no empty one
		id := v.table[h]
		if id < 0 {
			return -1
		}
		if v.has(id) && int(v.size[id]) == len(tok) && string(v.arena[v.start[id]:v.start[id]+v.size[id]]) == string(tok) {
			return id
		}
		h = (h + 1) & mask
	}
	return -1
}

// hash mixes eight bytes at a time (a loop iteration costs tens of
// nanoseconds inside the sandbox, where every loop header checks the
// deadline), then finishes so that the low bits (the table index) depend
// on every byte.
func hash(b []byte) uint32 {
	h := uint64(len(b)) * 0x9E3779B97F4A7C15
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := uint64(b[i]) | uint64(b[i+1])<<8 | uint64(b[i+2])<<16 | uint64(b[i+3])<<24 |
			uint64(b[i+4])<<32 | uint64(b[i+5])<<40 | uint64(b[i+6])<<48 | uint64(b[i+7])<<56
		h = (h ^ x) * 0xff51afd7ed558ccd
		h ^= h >> 32
	}
	var x uint64
	for k := 0; i < len(b); i, k = i+1, k+8 {
		x |= uint64(b[i]) << k
	}
	h = (h ^ x) * 0xc4ceb9fe1a85ec53
	h ^= h >> 29
	h *= 0xff51afd7ed558ccd
	h ^= h >> 32
	return uint32(h)
}
