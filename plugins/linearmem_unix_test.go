//go:build unix

package plugins

import (
	"bytes"
	"testing"

	"github.com/tetratelabs/wazero/experimental"
)

// Closed memories up to keepMax are kept (zeroed) up to keepCount and
// keepTotal bytes; a larger one (a memory bomb's) is never kept.
func TestMappedMemoryRecycling(t *testing.T) {
	const keepMax, keepTotal = 4 << 20, 10 << 20
	a := mappedAllocator(keepMax, keepTotal)
	if a == nil {
		t.Skip("no mapped memory on this platform")
	}
	pool := func(m experimental.LinearMemory) *mapPool { return m.(*mappedMemory).pool }
	big := a.Allocate(0, 64<<20)
	p := pool(big)
	big.Reallocate(keepMax + 1<<16)
	big.Free()
	if n := len(p.free); n != 0 {
		t.Fatalf("a %d-byte memory was kept", keepMax+1<<16)
	}
	// Small ones: up to keepCount.
	const small = 1 << 20
	var ms []experimental.LinearMemory
	for range keepCount + 2 {
		m := a.Allocate(0, small)
		copy(m.Reallocate(small), "secret")
		ms = append(ms, m)
	}
	for _, m := range ms {
		m.Free()
	}
	if n := len(p.free); n != keepCount || p.kept != keepCount*small {
		t.Fatalf("%d memories of %d bytes kept, want %d of %d", n, p.kept, keepCount, keepCount*small)
	}
	for range keepCount {
		m := a.Allocate(0, small)
		if b := m.Reallocate(small); !bytes.Equal(b, make([]byte, small)) {
			t.Fatal("a recycled memory still holds its last contents")
		}
	}
	if n := len(p.free); n != 0 || p.kept != 0 {
		t.Fatalf("%d memories (%d bytes) left after reusing all", n, p.kept)
	}
	// Large ones within keepMax: up to keepTotal bytes (two of 4 MiB in 10).
	ms = ms[:0]
	for range 3 {
		m := a.Allocate(0, 64<<20)
		b := m.Reallocate(keepMax)
		b[len(b)-1] = 1
		ms = append(ms, m)
	}
	for _, m := range ms {
		m.Free()
	}
	if n := len(p.free); n != 2 || p.kept != 2*keepMax {
		t.Fatalf("%d memories of %d bytes kept, want 2 of %d", n, p.kept, 2*keepMax)
	}
	m := a.Allocate(0, 64<<20)
	if b := m.Reallocate(keepMax); b[len(b)-1] != 0 {
		t.Fatal("a recycled large memory still holds its last contents")
	}
}

// A kept memory is zeroed a chunk at a time with a chance to yield
// between chunks (a 60 MiB clear in one go held its processor for up to
// 2.6 ms): every byte cleared, maybe called after each chunk.
func TestZeroInChunks(t *testing.T) {
	b := bytes.Repeat([]byte{0xff}, 5*memChunk+123)
	calls := 0
	zero(b, func() { calls++ })
	if !bytes.Equal(b, make([]byte, len(b))) {
		t.Fatal("zero left bytes set")
	}
	if calls != 6 {
		t.Fatalf("maybe called %d times for 6 chunks", calls)
	}
}
