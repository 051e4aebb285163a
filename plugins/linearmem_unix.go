//go:build unix

package plugins

import (
	"os"
	"slices"
	"sync"

	"github.com/tetratelabs/wazero/experimental"
	"golang.org/x/sys/unix"
)

// Recycling bounds: closed memories of at most keepBytes are zeroed and
// kept, keepCount of them at most (so at most 64 MiB stays resident for
// reuse); anything larger, a memory bomb's above all, is unmapped.
const (
	keepBytes = 8 << 20
	keepCount = 8
)

// mapPool hands out mappings and keeps a few closed ones for reuse.
type mapPool struct {
	mu   sync.Mutex
	free []*mappedMemory
}

// mappedMemory is one instance's linear memory in its own mapping.
// Reallocate and Free are called by the one goroutine that owns the
// instance at that moment (see linearmem.go).
type mappedMemory struct {
	pool      *mapPool
	region    []byte // the whole reservation: the memory's maximum, rounded to pages
	committed int    // bytes of region that are readable and writable
}

var pageSize = os.Getpagesize()

func roundPage(n uint64) uint64 {
	p := uint64(pageSize)
	return (n + p - 1) / p * p
}

func mappedAllocator() experimental.MemoryAllocator {
	p := &mapPool{}
	return experimental.MemoryAllocatorFunc(func(capacity, maxBytes uint64) experimental.LinearMemory {
		if m := p.get(maxBytes); m != nil {
			return m
		}
		return heapAllocator.Allocate(capacity, maxBytes)
	})
}

// get returns a zeroed mapping reserving maxBytes: a kept one, or a new
// one reserved without access; nil if the kernel refuses.
func (p *mapPool) get(maxBytes uint64) *mappedMemory {
	size := roundPage(maxBytes)
	if size == 0 || size > 1<<32 { // wasm32: 4 GiB at most
		return nil
	}
	p.mu.Lock()
	for i := len(p.free) - 1; i >= 0; i-- {
		if m := p.free[i]; uint64(len(m.region)) == size {
			p.free = slices.Delete(p.free, i, i+1) // clears the vacated slot
			p.mu.Unlock()
			return m
		}
	}
	p.mu.Unlock()
	return mapMemory(p, size)
}

// mapMemory reserves size bytes of address space without access.
func mapMemory(p *mapPool, size uint64) *mappedMemory {
	region, err := unix.Mmap(-1, 0, int(size), unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANON|unix.MAP_NORESERVE)
	if err != nil {
		return nil
	}
	return &mappedMemory{pool: p, region: region}
}

// Reallocate makes the first size bytes usable; the address never moves.
// It returns nil (memory.grow fails in the guest) past the reservation or
// if the kernel refuses the pages.
func (m *mappedMemory) Reallocate(size uint64) []byte {
	if m.region == nil || size > uint64(len(m.region)) {
		return nil
	}
	if need := int(roundPage(size)); need > m.committed {
		if err := unix.Mprotect(m.region[m.committed:need], unix.PROT_READ|unix.PROT_WRITE); err != nil {
			return nil
		}
		m.committed = need
	}
	return m.region[:size:size]
}

// Free zeroes and keeps a small memory for the next instance, or unmaps
// it: its pages go back to the OS now.
func (m *mappedMemory) Free() {
	if m.region == nil {
		return
	}
	region, committed := m.region, m.committed
	m.region, m.committed = nil, 0 // a second Free is a no-op
	if p := m.pool; p != nil && committed <= keepBytes && p.room() {
		clear(region[:committed])
		if p.keep(&mappedMemory{pool: p, region: region, committed: committed}) {
			return
		}
	}
	_ = unix.Munmap(region)
}

func (p *mapPool) room() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.free) < keepCount
}

func (p *mapPool) keep(m *mappedMemory) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.free) >= keepCount {
		return false
	}
	p.free = append(p.free, m)
	return true
}
