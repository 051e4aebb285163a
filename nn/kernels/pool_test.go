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
