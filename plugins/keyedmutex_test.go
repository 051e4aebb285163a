package plugins

import (
	"sync"
	"testing"
	"time"
)

// TestKeyedMutex: one key excludes, other keys never wait on it (a striped
// lock made a tenant's small module wait behind another tenant's slow
// compile), and nothing stays in the map after the last unlock.
func TestKeyedMutex(t *testing.T) {
	var k keyedMutex
	a, b := [32]byte{1}, [32]byte{1 + 32} // the same stripe of the old [32] lock
	unlockA := k.lock(a)
	done := make(chan struct{})
	go func() { k.lock(b)(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("another key waited for a held one")
	}
	var got []int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			u := k.lock(a)
			mu.Lock()
			got = append(got, i)
			mu.Unlock()
			u()
		})
	}
	time.Sleep(10 * time.Millisecond) // let them queue; holds either way
	mu.Lock()
	if len(got) != 0 {
		t.Errorf("%d entered while the key was held", len(got))
	}
	mu.Unlock()
	unlockA()
	wg.Wait()
	if len(got) != 3 {
		t.Errorf("%d of 3 got the key after it was released", len(got))
	}
	if n := len(k.keys); n != 0 {
		t.Errorf("%d keys left after every unlock", n)
	}
}
