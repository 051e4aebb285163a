package plugins

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// resident counts b's pages that are backed by memory (mincore).
func resident(t *testing.T, b []byte) int {
	t.Helper()
	vec := make([]byte, (len(b)+pageSize-1)/pageSize)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// The pages a guest's growth opens are backed before the guest runs on,
// at instantiation and at every memory.grow, so no guest code takes a
// page fault on them: by MADV_POPULATE_WRITE and a touch, or by the touch
// alone on kernels before 5.14 (Lambda's among them). Without
// prefaultGrowth none would be.
func TestGrowthIsBacked(t *testing.T) {
	defer func(old bool) { prefaultGrowth = old }(prefaultGrowth)
	defer func(old bool) { noPopulate.Store(old) }(noPopulate.Load())
	for _, c := range []struct{ pf, noPopulate bool }{{true, false}, {true, true}, {false, false}} {
		pf := c.pf
		prefaultGrowth = pf
		noPopulate.Store(c.noPopulate)
		m := mappedAllocator(0, 0).Allocate(0, 64<<20)
		const first, second = 3 << 20, 9<<20 + 100
		b := m.Reallocate(first)
		if got := resident(t, b); pf && got != first/pageSize || !pf && got != 0 {
			t.Errorf("%+v: %d of %d pages backed after the first growth", c, got, first/pageSize)
		}
		b = m.Reallocate(second)
		want := int(roundPage(second)) / pageSize
		if got := resident(t, m.(*mappedMemory).region[:roundPage(second)]); pf && got != want || !pf && got != 0 {
			t.Errorf("%+v: %d of %d pages backed after the second growth", c, got, want)
		}
		for i := range b { // backing wrote nothing the guest could see
			if b[i] != 0 {
				t.Fatalf("%+v: byte %d is %d", c, i, b[i])
			}
		}
		m.Free()
	}
}

// A kernel that refuses MADV_POPULATE_WRITE for any reason but memory
// (a sandbox's EPERM, an old kernel's EINVAL) leaves the pages to the
// touch, from then on; ENOMEM fails the growth.
func TestPopulateRefused(t *testing.T) {
	defer func(old func([]byte) error) { madvisePopulate = old }(madvisePopulate)
	defer func(old bool) { noPopulate.Store(old) }(noPopulate.Load())
	calls := 0
	for _, c := range []struct {
		err     error
		wantErr bool
	}{{unix.EPERM, false}, {unix.EINVAL, false}, {unix.ENOMEM, true}} {
		noPopulate.Store(false)
		madvisePopulate = func([]byte) error { calls++; return c.err }
		m := mappedAllocator(0, 0).Allocate(0, 1<<20)
		b := m.Reallocate(8 * uint64(pageSize))
		switch {
		case c.wantErr && b != nil:
			t.Errorf("%v: growth succeeded", c.err)
		case c.wantErr && m.(*mappedMemory).committed != 0:
			t.Errorf("%v: the failed growth left %d bytes open", c.err, m.(*mappedMemory).committed)
		case !c.wantErr && b == nil:
			t.Errorf("%v: growth failed", c.err)
		case !c.wantErr:
			if got := resident(t, b); got != 8 {
				t.Errorf("%v: %d of 8 pages backed", c.err, got)
			}
			if !noPopulate.Load() {
				t.Errorf("%v: MADV_POPULATE_WRITE would be tried again", c.err)
			}
		}
		m.Free()
	}
	if calls != 3 {
		t.Errorf("madvise called %d times, want once per case", calls)
	}
}
