package offheap

import (
	"runtime"
	"testing"
	"time"
	"unsafe"
)

func TestAlloc(t *testing.T) {
	for _, n := range []int{0, 1, 100, MinBytes - 1, MinBytes, 3 << 20} {
		b := Alloc(n)
		bs := b.Bytes()
		if len(bs) != n {
			t.Fatalf("%d: %d bytes", n, len(bs))
		}
		if n > 0 && uintptr(unsafe.Pointer(&bs[0]))%64 != 0 {
			t.Errorf("%d: not aligned to 64", n)
		}
		for i, c := range bs {
			if c != 0 {
				t.Fatalf("%d: byte %d is %d", n, i, c)
			}
		}
		for i := range bs {
			bs[i] = byte(i)
		}
		if runtime.GOOS == "linux" && (n >= MinBytes) != b.Mapped() {
			t.Errorf("%d bytes: mapped %v", n, b.Mapped())
		}
		if n >= 8 && len(b.Float32s()) != n/4 {
			t.Errorf("%d: %d float32s", n, len(b.Float32s()))
		}
		runtime.KeepAlive(b)
	}
}

// TestMappedNotInHeap: a mapped block does not raise the heap the
// collector paces itself on, and is unmapped once unreachable.
func TestMappedNotInHeap(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("mappings are Linux-only")
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rss0 := rssAnon()
	b := Alloc(testBlock)
	bs := b.Bytes()
	for i := 0; i < len(bs); i += 4096 {
		bs[i] = 1 // make every page resident
	}
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 1<<20 {
		t.Errorf("heap grew by %d bytes for a mapped block", grew)
	}
	rss1 := rssAnon()
	if rss1-rss0 < testBlock*3/4 {
		t.Fatalf("RssAnon grew by %d bytes for a %d-byte block: cannot see the mapping", rss1-rss0, testBlock)
	}
	runtime.KeepAlive(b)
	b, bs = nil, nil
	// The cleanup runs after a collection finds the block unreachable.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
		if rssAnon() < rss1-testBlock/2 {
			return
		}
	}
	t.Errorf("the mapping was not released: RssAnon %d after, %d with the block", rssAnon(), rss1)
}

// TestFree: Free releases a mapped block at once, without a collection,
// and a second Free (or the cleanup, later) does nothing more.
func TestFree(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("mappings are Linux-only")
	}
	rss0 := rssAnon()
	b := Alloc(testBlock)
	bs := b.Bytes()
	for i := 0; i < len(bs); i += 4096 {
		bs[i] = 1
	}
	rss1 := rssAnon()
	if rss1-rss0 < testBlock*3/4 {
		t.Fatalf("RssAnon grew by %d bytes for a %d-byte block: cannot see the mapping", rss1-rss0, testBlock)
	}
	bs = nil
	b.Free()
	if rss := rssAnon(); rss > rss1-testBlock/2 {
		t.Errorf("RssAnon %d after Free, %d with the block", rss, rss1)
	}
	if b.Bytes() != nil || b.Mapped() {
		t.Error("a freed block still has bytes")
	}
	b.Free()
	runtime.GC() // the stopped cleanup must not unmap the range again
	heap := Alloc(100)
	heap.Free()
	if heap.Bytes() != nil {
		t.Error("a freed heap block still has bytes")
	}
}
