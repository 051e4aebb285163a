//go:build unix

package plugins

import (
	"bytes"
	"testing"

	"github.com/tetratelabs/wazero/experimental"
)

// Small closed memories are kept (zeroed) up to keepCount; a large one
// is never kept.
func TestMappedMemoryRecycling(t *testing.T) {
	a := mappedAllocator()
	if a == nil {
		t.Skip("no mapped memory on this platform")
	}
	pool := func(m experimental.LinearMemory) *mapPool { return m.(*mappedMemory).pool }
	const small = 1 << 20
	big := a.Allocate(0, 64<<20)
	p := pool(big)
	big.Reallocate(keepBytes + 1<<16)
	big.Free()
	if n := len(p.free); n != 0 {
		t.Fatalf("a %d-byte memory was kept", keepBytes+1<<16)
	}
	var ms []experimental.LinearMemory
	for range keepCount + 2 {
		m := a.Allocate(0, small)
		copy(m.Reallocate(small), "secret")
		ms = append(ms, m)
	}
	for _, m := range ms {
		m.Free()
	}
	if n := len(p.free); n != keepCount {
		t.Fatalf("%d memories kept, want %d", n, keepCount)
	}
	for range keepCount {
		m := a.Allocate(0, small)
		if b := m.Reallocate(small); !bytes.Equal(b, make([]byte, small)) {
			t.Fatal("a recycled memory still holds its last contents")
		}
	}
	if n := len(p.free); n != 0 {
		t.Fatalf("%d memories left after reusing all", n)
	}
}
