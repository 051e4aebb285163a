package plugins

import (
	"bytes"
	"testing"
	"unsafe"

	"github.com/tetratelabs/wazero/experimental"
)

// Both placements keep the contents across growth, refuse growth past the
// maximum, and survive a double Free. A mapping never moves.
func TestLinearMemory(t *testing.T) {
	const maxBytes = 8 << 16
	mems := map[string]experimental.MemoryAllocator{"heap": heapAllocator}
	if a := mappedAllocator(64<<20, 128<<20); a != nil {
		mems["mapped"] = a
	}
	for name, a := range mems {
		t.Run(name, func(t *testing.T) {
			m := a.Allocate(0, maxBytes)
			b := m.Reallocate(1 << 16)
			if len(b) != 1<<16 || b[100] != 0 {
				t.Fatalf("first allocation: len %d", len(b))
			}
			copy(b, "hello")
			b2 := m.Reallocate(5 << 16)
			if len(b2) != 5<<16 || !bytes.HasPrefix(b2, []byte("hello")) || b2[len(b2)-1] != 0 {
				t.Fatalf("after growth: len %d, prefix %q", len(b2), b2[:5])
			}
			b2[len(b2)-1] = 7 // the new pages are writable
			if name == "mapped" && unsafe.SliceData(b) != unsafe.SliceData(b2) {
				t.Error("the mapping moved")
			}
			if m.Reallocate(maxBytes) == nil {
				t.Error("growth to the maximum refused")
			}
			if name == "mapped" && m.Reallocate(maxBytes+1) != nil {
				t.Error("growth past the maximum allowed")
			}
			m.Free()
			m.Free()

			// The next memory starts zeroed, whether recycled or new.
			n := a.Allocate(0, maxBytes)
			defer n.Free()
			nb := n.Reallocate(maxBytes)
			if nb == nil || !bytes.Equal(nb, make([]byte, maxBytes)) {
				t.Fatal("a new memory is not all zeros")
			}
		})
	}
}
