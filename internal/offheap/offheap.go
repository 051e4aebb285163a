// Package offheap allocates large, long-lived, pointer-free buffers
// outside the Go heap: a served model's packed weights and activation
// arenas.
//
// # Why
//
// The garbage collector sizes its heap goal from the live heap (GOGC=100:
// the heap may grow to twice what is live before a collection). A model
// whose 45 MiB of weights lived on the heap let each request's few
// hundred KiB of garbage pile up to another 45 MiB before anything was
// collected, so a process serving it settled at about twice its weights.
// Memory mapped here is not part of the heap goal: the heap then holds
// only what requests allocate, and resident memory is the weights, the
// arenas and a small heap.
//
// # Rules
//
// A Block owns its bytes: they are unmapped when the Block becomes
// unreachable (runtime.AddCleanup). Whoever uses the bytes keeps the
// Block in the object that uses them, and never keeps a slice of them in
// a place that may outlive that object. Small requests (under MinBytes),
// and every request on systems other than Linux, get ordinary heap
// memory, with the same API. Blocks are safe for concurrent reads; the
// package's functions are safe for concurrent use.
package offheap

import (
	"runtime"
	"unsafe"
)

// MinBytes is the smallest allocation worth a mapping of its own: below
// it, the page granularity and the system call cost more than the heap.
const MinBytes = 64 << 10

// Block is a zeroed byte buffer, mapped outside the heap when large.
type Block struct {
	b       []byte
	mapped  bool
	cleanup runtime.Cleanup
}

// Alloc returns a Block of n zeroed bytes aligned to at least 64 bytes.
// It panics if n is negative, and if the system refuses the memory, as
// make does.
func Alloc(n int) *Block {
	if n < 0 {
		panic("offheap: negative size")
	}
	if n >= MinBytes {
		if b, err := mmap(n); err == nil {
			blk := &Block{b: b, mapped: true}
			blk.cleanup = runtime.AddCleanup(blk, func(b []byte) { munmap(b) }, b)
			return blk
		}
	}
	// The heap: over-allocate so the slice can start on a 64-byte line.
	w := make([]uint64, (n+64+7)/8)
	raw := unsafe.Slice((*byte)(unsafe.Pointer(&w[0])), len(w)*8)
	off := 0
	if r := int(uintptr(unsafe.Pointer(&raw[0])) % 64); r != 0 {
		off = 64 - r
	}
	return &Block{b: raw[off : off+n : off+n]}
}

// Bytes returns the block's bytes. They stay valid while the Block is
// reachable.
func (b *Block) Bytes() []byte { return b.b }

// Float32s returns the block's bytes as float32s.
func (b *Block) Float32s() []float32 {
	if len(b.b) < 4 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b.b[0])), len(b.b)/4)
}

// Free releases the block's memory now rather than when the Block
// becomes unreachable: for an owner that knows nothing refers to the
// bytes any more (an arena dropped from a pool), so that resident memory
// does not wait for a garbage collection, which a process allocating
// little on the heap may not run for a long time. The Block is empty
// afterwards; Free is idempotent. Not safe for use concurrent with any
// other use of the Block.
func (b *Block) Free() {
	if b.mapped {
		b.cleanup.Stop()
		munmap(b.b)
		b.mapped = false
	}
	b.b = nil
}

// Mapped reports whether the block lives outside the heap.
func (b *Block) Mapped() bool { return b.mapped }
