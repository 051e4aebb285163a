package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// The worker pool behind GemmPacked and DepthwiseConv2D: goroutines
// started once (lazily, one per extra P) that take jobs from a channel,
// so a parallel call creates no goroutine and no closure.
//
// A job is split into chunks that the caller and any helper that picks
// the job up claim one by one with an atomic counter, so the split
// balances itself when a core is busy with something else. The caller
// always works too; it only hands the job to helpers through a buffered
// channel without blocking, and waits only for the chunks (a WaitGroup
// per job), never for a helper that is still busy elsewhere: a helper
// that arrives late finds no chunk left and lets go. The job object is
// reference-counted (the caller and each helper it was handed to) and
// goes back to its free list when the last one lets go, so a late helper
// never sees it reused.

// parJob is the work of one parallel call.
type parJob interface {
	// runChunk does chunk i with the calling goroutine's workspace.
	runChunk(ws *workspace, i int)
	// free returns the job to its free list once nobody refers to it.
	free()
}

// parCtl is the shared state of one parallel call: embedded in each job.
type parCtl struct {
	wg   sync.WaitGroup // chunks not yet done
	next atomic.Int32   // next chunk to claim
	n    int32          // chunks
	refs atomic.Int32   // the caller and the helpers handed the job
	job  parJob
}

// task is what goes through the pool's channel, by value.
type task struct{ ctl *parCtl }

var pool struct {
	mu      sync.Mutex
	started atomic.Int32
	ch      chan task
}

// poolQueue bounds the jobs waiting for a helper; a caller that finds the
// queue full does its job alone.
const poolQueue = 64

// helpers returns how many helpers a call may hand its job to (GOMAXPROCS
// − 1, or the SetMaxHelpers limit if lower), starting the goroutines the
// first time they are needed.
func helpers() int {
	want := runtime.GOMAXPROCS(0) - 1
	if want <= 0 {
		return 0
	}
	if c := int(maxHelpers.Load()) - 1; c >= 0 {
		want = min(want, c)
	}
	if int(pool.started.Load()) < want {
		pool.mu.Lock()
		if pool.ch == nil {
			pool.ch = make(chan task, poolQueue)
		}
		for int(pool.started.Load()) < want {
			go poolWorker(pool.ch)
			pool.started.Add(1)
		}
		pool.mu.Unlock()
	}
	return want
}

// maxHelpers is SetMaxHelpers' limit plus one (0: none).
var maxHelpers atomic.Int32

// SetMaxHelpers limits, process-wide, how many pool goroutines a parallel
// call may use besides its caller; n < 0 removes the limit. The server
// lowers it while several tenants are active, so that one tenant's large
// product, which would otherwise fill every core, leaves the others'
// share of them free; the caller always works, so a limit of 0 only makes
// products serial. Cheap when the limit does not change.
func SetMaxHelpers(n int) {
	v := int32(max(n, -1) + 1)
	if maxHelpers.Load() != v {
		maxHelpers.Store(v)
	}
}

// poolSpin is how long a pool goroutine keeps polling for the next job
// after one, before it blocks on the channel: the layers of a network
// come back to back, and waking a parked goroutine (a futex wake, more
// in a VM) cost tens of µs, as much as splitting a small layer saves.
// While it polls it yields its P, so it only uses a core that would
// otherwise idle.
var poolSpin = 100 * time.Microsecond

func poolWorker(ch chan task) {
	ws := new(workspace)
	for {
		var t task
		select {
		case t = <-ch:
		default:
			t = pollTask(ch)
		}
		t.ctl.work(ws, 1)
		t.ctl.release()
	}
}

// pollTask polls ch for poolSpin, then waits for it.
func pollTask(ch chan task) task {
	deadline := time.Now().Add(poolSpin)
	for i := 0; ; i++ {
		select {
		case t := <-ch:
			return t
		default:
		}
		if i%64 == 63 && time.Now().After(deadline) {
			return <-ch
		}
		runtime.Gosched()
	}
}

// poolChunks counts the chunks run by the caller (0) and by the pool
// (1), for the benchmarks' report of how much the pool takes.
var poolChunks [2]atomic.Int64

// work claims and runs chunks until none is left; helper says whether
// the calling goroutine is one of the pool's.
func (c *parCtl) work(ws *workspace, helper int) {
	for {
		i := c.next.Add(1) - 1
		if i >= c.n {
			return
		}
		c.job.runChunk(ws, int(i))
		poolChunks[helper].Add(1)
		c.wg.Done()
	}
}

func (c *parCtl) release() {
	if c.refs.Add(-1) == 0 {
		c.job.free()
	}
}

// run does the job's chunks on the calling goroutine and up to maxHelp
// helpers, returns when every chunk is done, and then releases the job
// (which must not be touched after).
func (c *parCtl) run(chunks, maxHelp int) {
	c.n = int32(chunks)
	c.next.Store(0)
	c.wg.Add(chunks)
	c.refs.Store(1)
	h := min(chunks-1, maxHelp)
	if h > 0 {
		ch := pool.ch
		for range h {
			c.refs.Add(1)
			select {
			case ch <- task{c}:
				continue
			default:
			}
			c.refs.Add(-1)
			break
		}
	}
	ws := getWorkspace(0, 0, 0)
	c.work(ws, 0)
	putWorkspace(ws)
	c.wg.Wait()
	c.release()
}

// freeList is a bounded list of reusable job objects: unlike a
// sync.Pool it is not emptied by the garbage collector, so a served
// model's steady state allocates nothing.
type freeList[T any] struct{ ch chan *T }

func newFreeList[T any]() freeList[T] { return freeList[T]{ch: make(chan *T, 32)} }

func (f freeList[T]) get() *T {
	select {
	case v := <-f.ch:
		return v
	default:
		return new(T)
	}
}

func (f freeList[T]) put(v *T) {
	select {
	case f.ch <- v:
	default:
	}
}
