//go:build unix

package plugins

import (
	"os"
	"slices"
	"sync"

	"github.com/tetratelabs/wazero/experimental"
	"golang.org/x/sys/unix"

	"github.com/aiaas/aiaas/internal/yield"
)

// keepCount bounds how many closed memories are kept for reuse; their
// bytes are bounded by the pool's keepTotal.
const keepCount = 8

// mapPool hands out mappings and keeps a few closed ones for reuse:
// those whose committed bytes are at most keepMax, while all kept come to
// at most keepTotal. A fresh mapping costs a page fault for every page the
// guest touches, and in a microVM (Firecracker, as on Lambda) a fault on
// memory the guest kernel had handed back costs the host too: a new
// instance that writes 60 MiB took 300–400 ms on the project's machine
// against 3 ms in a recycled memory. A memory bomb's (past keepMax, which
// the host sets to its high-water mark) is unmapped at once.
type mapPool struct {
	keepMax, keepTotal int

	mu   sync.Mutex
	free []*mappedMemory
	kept int // committed bytes of free
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

func mappedAllocator(keepMax, keepTotal int) experimental.MemoryAllocator {
	p := &mapPool{keepMax: keepMax, keepTotal: keepTotal}
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
			p.kept -= m.committed
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
		grown := m.region[m.committed:need]
		if err := unix.Mprotect(grown, unix.PROT_READ|unix.PROT_WRITE); err != nil {
			return nil
		}
		if prefaultGrowth && populate(grown) != nil {
			// Closed again, so that a later growth tries the range anew.
			_ = unix.Madvise(grown, unix.MADV_DONTNEED)
			_ = unix.Mprotect(grown, unix.PROT_NONE)
			return nil
		}
		m.committed = need
	}
	return m.region[:size:size]
}

// prefaultGrowth says whether Reallocate backs the pages it opens before
// the guest runs on (populate). Only BenchmarkFreshMemoryStall turns it
// off, to measure what it prevents.
var prefaultGrowth = true

// populate backs b's pages with memory now, memChunk at a time,
// yielding between chunks (a yield.Point).
//
// A guest that grows its memory and writes it would otherwise take a
// page fault for every page it touches, inside its own machine code,
// which Go cannot pre-empt: a fresh 60 MiB memory.fill held its processor
// for 175 ms in a server trace (on a microVM, where a fault also costs
// the host), two such calls held both, and every other tenant's request
// waited (BENCHMARKS.md, "Fresh memories"). The charge a bulk instruction
// pays before it runs (docs/plugins.md) bounds its work, not its faults.
// Backed here, from Go, the faults happen in this loop, which yields every
// yield.Every, and the guest's own writes then cost what they cost in a
// recycled memory.
//
// The cost: the process's memory follows what the guest has grown, not
// only what it has touched; the host's limits (the instance cap, the
// high-water mark, the idle budgets) count grown bytes already. It fails
// (and the guest's memory.grow with it) if the kernel cannot back the
// pages, rather than leaving a fault in guest code for the OOM killer.
func populate(b []byte) error {
	var y yield.Point
	return inChunks(b, backPages, y.Maybe)
}

// touchPages backs b's pages by writing a zero to each: b is freshly
// opened, so every page is zero already.
func touchPages(b []byte) {
	for i := 0; i < len(b); i += pageSize {
		b[i] = 0
	}
}

// Free zeroes and keeps the memory for the next instance when the pool
// has room for it, or unmaps it: its pages go back to the OS now.
func (m *mappedMemory) Free() {
	if m.region == nil {
		return
	}
	region, committed := m.region, m.committed
	m.region, m.committed = nil, 0 // a second Free is a no-op
	if p := m.pool; p != nil && p.room(committed) {
		var y yield.Point
		zero(region[:committed], y.Maybe)
		if p.keep(&mappedMemory{pool: p, region: region, committed: committed}) {
			return
		}
	}
	_ = unix.Munmap(region)
}

// zero clears b a chunk at a time and calls maybe between chunks. One
// clear of a guest's 60 MiB took 1–2.6 ms on the project's machine: an
// assembly memclr, which Go cannot pre-empt, so another tenant's request
// runnable on the same processor, and any collection's stop of the
// world, waited for it. With maybe a yield.Point's Maybe, it yields every
// yield.Every like any other long loop.
func zero(b []byte, maybe func()) {
	_ = inChunks(b, func(c []byte) error { clear(c); return nil }, maybe)
}

// inChunks calls f on b memChunk at a time, and maybe after each chunk;
// it stops at f's first error.
func inChunks(b []byte, f func([]byte) error, maybe func()) error {
	for len(b) > 0 {
		n := min(len(b), memChunk)
		if err := f(b[:n]); err != nil {
			return err
		}
		b = b[n:]
		maybe()
	}
	return nil
}

// memChunk is how much zero clears or populate backs between two calls
// of maybe: 64 pages, tens of microseconds of work (about a millisecond
// of faults on a microVM whose faults the host serves).
const memChunk = 256 << 10

// room reports whether a memory of committed bytes would be kept.
func (p *mapPool) room(committed int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return committed <= p.keepMax && len(p.free) < keepCount && p.kept+committed <= p.keepTotal
}

func (p *mapPool) keep(m *mappedMemory) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m.committed > p.keepMax || len(p.free) >= keepCount || p.kept+m.committed > p.keepTotal {
		return false
	}
	p.free = append(p.free, m)
	p.kept += m.committed
	return true
}
