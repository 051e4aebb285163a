package plugins

import "github.com/tetratelabs/wazero/experimental"

// Linear memory placement.
//
// By default wazero keeps a module's linear memory in a Go []byte and
// grows it with append: every memory.grow copies the whole memory, the old
// copies are garbage, and the Go heap goal (and RSS) follow the largest
// guest. Worse for a multi-tenant host, a discarded instance's memory goes
// back to the OS only when the Go runtime's scavenger gets to it, seconds
// to minutes later: one tenant's memory bomb left the server hundreds of
// MiB larger.
//
// On Unix each instance's memory is instead its own anonymous mapping,
// reserved at the cap without access (no commit charge), made readable and
// writable page-range by page-range as the guest grows it (no copies, the
// address never moves), and unmapped when the instance is closed, so its
// pages return to the OS at once. A few closed memories up to the host's
// high-water mark are zeroed and kept for the next instance instead,
// within a byte bound (mapPool): a fresh mapping costs a page fault for
// every page the guest touches (a Go-built plugin's 3 MiB of data
// segments made instantiation twice as slow; in a microVM a fault costs
// far more). Elsewhere, or when a mapping cannot be made, the memory lives
// on the Go heap as wazero would keep it.
//
// The invariant that makes unmapping safe: an instance is closed only when
// no call is running in it. The pool closes instances that are checked in
// or whose call has returned; Host.Close waits for calls in flight; and
// when a deadline stops a guest, wazero releases the memory from the
// guest's own goroutine after it has left the guest's code.

// heapMemory is the fallback: a Go slice grown by copying.
type heapMemory struct{ buf []byte }

func (m *heapMemory) Reallocate(size uint64) []byte {
	if size > uint64(cap(m.buf)) {
		b := make([]byte, size, max(size, 2*uint64(cap(m.buf))))
		copy(b, m.buf)
		m.buf = b
	}
	m.buf = m.buf[:size]
	return m.buf
}

func (m *heapMemory) Free() { m.buf = nil }

// linearMemory returns the allocator instances use, by platform; closed
// memories of at most keepMax bytes are reused, keepTotal of them at most.
func linearMemory(keepMax, keepTotal int) experimental.MemoryAllocator {
	if a := mappedAllocator(keepMax, keepTotal); a != nil {
		return a
	}
	return heapAllocator
}

// heapAllocator keeps linear memory on the Go heap.
var heapAllocator = experimental.MemoryAllocatorFunc(func(capacity, _ uint64) experimental.LinearMemory {
	return &heapMemory{buf: make([]byte, 0, capacity)}
})
