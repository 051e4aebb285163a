package kernels

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// barrierJob's chunks each wait until all of them have started: it only
// finishes if the pool runs them at the same time as the caller.
type barrierJob struct {
	parCtl
	wg      sync.WaitGroup
	started chan struct{}
	ok      chan bool
	freed   chan struct{}
}

func (j *barrierJob) runChunk(ws *workspace, i int) {
	j.wg.Done()
	done := make(chan struct{})
	go func() { j.wg.Wait(); close(done) }()
	select {
	case <-done:
		j.ok <- true
	case <-time.After(5 * time.Second):
		j.ok <- false
	}
}

func (j *barrierJob) free() { close(j.freed) }

// TestPoolRunsChunksConcurrently: with GOMAXPROCS 2 a job of two chunks
// runs one on the caller and one on a pool goroutine at the same time,
// and the job is released exactly once after both.
func TestPoolRunsChunksConcurrently(t *testing.T) {
	old := runtime.GOMAXPROCS(2)
	defer runtime.GOMAXPROCS(old)
	for range 20 {
		j := &barrierJob{ok: make(chan bool, 2), freed: make(chan struct{})}
		j.job = j
		j.wg.Add(2)
		j.run(2, helpers())
		for range 2 {
			if !<-j.ok {
				t.Fatal("the two chunks did not run at the same time")
			}
		}
		select {
		case <-j.freed:
		case <-time.After(5 * time.Second):
			t.Fatal("job never released")
		}
	}
}

// TestSetMaxHelpers: the limit lowers helpers() and never raises it, and
// a product's result does not depend on how many goroutines computed it.
func TestSetMaxHelpers(t *testing.T) {
	old := runtime.GOMAXPROCS(4)
	defer runtime.GOMAXPROCS(old)
	defer SetMaxHelpers(-1)
	for _, c := range []struct{ limit, want int }{{-1, 3}, {0, 0}, {1, 1}, {2, 2}, {9, 3}, {-1, 3}} {
		SetMaxHelpers(c.limit)
		if got := helpers(); got != c.want {
			t.Errorf("SetMaxHelpers(%d): helpers() = %d, want %d", c.limit, got, c.want)
		}
	}

	const m, k, n = 96, 512, 640 // above the parallel threshold
	a, b, bias := make([]float32, m*k), make([]float32, k*n), make([]float32, n)
	for i := range a {
		a[i] = float32(i%13) - 6
	}
	for i := range b {
		b[i] = float32(i%7) / 7
	}
	p := Pack(b, k, n, bias)
	par, ser := make([]float32, m*n), make([]float32, m*n)
	SetMaxHelpers(-1)
	Dense(par, a, m, p, ReLU)
	SetMaxHelpers(0)
	Dense(ser, a, m, p, ReLU)
	for i := range par {
		if par[i] != ser[i] {
			t.Fatalf("element %d: %v with helpers, %v without", i, par[i], ser[i])
		}
	}
}
