// Package lowprio runs long computations on operating-system threads of
// lower priority than the rest of the process.
//
// Go schedules goroutines on threads, and the kernel schedules threads.
// When the machine's cores are all busy — one tenant's large forward pass
// on one, a load generator or another process on the other — a thread
// that the network just woke for another tenant's short request waits for
// the kernel to preempt someone: up to its time slice, milliseconds. Go
// cannot help with that (its scheduler sees only its own threads), and a
// short request's whole answer takes a fraction of a millisecond. A long
// computation run through Do runs on a thread of niceness Nice instead,
// which the kernel preempts first and weighs less while anything else of
// normal priority wants the core; on an idle core it runs as fast as
// before.
//
// The priority belongs to the thread, and an unprivileged process can
// lower a thread's priority but never raise it again, so Do hands the
// work to a goroutine locked to a thread kept at Nice for that purpose,
// from a small pool. Go itself starts new threads from a clean template
// thread when the current one is locked, so the priority never spreads to
// threads running other goroutines.
package lowprio

import (
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// Nice is the niceness of the threads Do runs work on. Five steps: a
// thread's CPU weight under contention falls to a third of a normal one's
// (Linux's weights: 1024 at 0, 335 at 5). It is not idle priority: the
// garbage collector's stop-the-world has to wait for such a thread to
// reach a safe point, and with SCHED_IDLE that took tens of milliseconds
// under load (docs/RATIONALE.md).
const Nice = 5

// MinWork is how long a computation must be expected to take for Run to
// hand it to Do. The hand-off costs tens of microseconds (BenchmarkDo:
// the worker's locked thread and then the caller's are woken), a few per
// cent of a millisecond.
const MinWork = time.Millisecond

// maxWorkers bounds the threads kept at Nice; a call that finds all of
// them busy runs its work on its own thread, at normal priority.
func maxWorkers() int { return min(4*runtime.GOMAXPROCS(0), cap(idle)) }

type job struct {
	fn   func()
	done chan any // the panic value, or nil
}

type worker struct{ jobs chan job }

var (
	idle    = make(chan *worker, 1024) // workers waiting for a job
	started atomic.Int32
	handed  atomic.Uint64
	// usable turns false when the priority cannot be set on this
	// platform or in this sandbox: Do then runs work in place.
	usable atomic.Bool
)

func init() { usable.Store(supported) }

// Do runs fn on a thread of niceness Nice and returns when it returns. A
// panic in fn is raised again in the caller, as a *Panic carrying fn's
// stack. Do allocates a little per call: it is for work of MinFLOPs or
// more.
func Do(fn func()) {
	if !usable.Load() {
		fn()
		return
	}
	var w *worker
	select {
	case w = <-idle:
	default:
		if n := started.Add(1); int(n) > maxWorkers() {
			started.Add(-1)
			fn()
			return
		}
		w = &worker{jobs: make(chan job)}
		ok := make(chan bool)
		go w.run(ok)
		if !<-ok {
			started.Add(-1)
			fn()
			return
		}
	}
	handed.Add(1)
	j := job{fn: fn, done: make(chan any, 1)}
	w.jobs <- j
	if p := <-j.done; p != nil {
		panic(p)
	}
}

// Handed returns how many calls of Do have run their work on a lowered
// thread since the process started.
func Handed() uint64 { return handed.Load() }

// run is a worker: it locks its goroutine to a thread, lowers the
// thread's priority and runs jobs until the process ends. The thread is
// never unlocked, so it never runs other goroutines.
func (w *worker) run(ok chan<- bool) {
	runtime.LockOSThread()
	if err := setNice(Nice); err != nil {
		usable.Store(false)
		ok <- false
		return // the locked thread ends with the goroutine
	}
	ok <- true
	for j := range w.jobs {
		j.done <- w.do(j.fn)
	}
}

// do runs fn, puts the worker back in the idle list and returns what fn
// panicked with, if anything.
func (w *worker) do(fn func()) (p any) {
	defer func() {
		if v := recover(); v != nil {
			p = &Panic{Value: v, Stack: debug.Stack()}
		}
		idle <- w // never blocks: idle holds more than maxWorkers
	}()
	fn()
	return nil
}

// Panic is what Do panics with when its work panicked: the value and the
// stack of the goroutine that ran it.
type Panic struct {
	Value any
	Stack []byte
}

func (p *Panic) Error() string { return fmt.Sprintf("%v\n\n%s", p.Value, p.Stack) }

// A Rate learns how long one unit of a computation takes (a FLOP of a
// model's forward pass, say) from the runs it has seen, so that Run can
// tell long work from short before starting it. Work of the same count
// can differ tenfold (a matrix-vector product waits on memory, a product
// of matrices does not), so the estimate is a moving average of recent
// runs rather than a constant. The zero value knows nothing: Run runs the
// first computation in place and learns from it. A Rate is safe for
// concurrent use; concurrent updates may lose one another, which only
// slows the averaging.
type Rate struct {
	nsPerUnit atomic.Uint64 // float64 bits; 0 before the first run
}

// Estimate returns how long work of units is expected to take (0 before
// the first run).
func (r *Rate) Estimate(units float64) time.Duration {
	return time.Duration(math.Float64frombits(r.nsPerUnit.Load()) * units)
}

// observe folds a run of units that took d into the average, weighing it
// a quarter.
func (r *Rate) observe(units float64, d time.Duration) {
	if units <= 0 {
		return
	}
	x := float64(d) / units
	if old := math.Float64frombits(r.nsPerUnit.Load()); old > 0 {
		x = old + (x-old)/4
	}
	r.nsPerUnit.Store(math.Float64bits(x))
}

// Run runs fn, work of units, through Do when r expects it to take
// MinWork or more, and in place otherwise; either way it learns how long
// fn took.
func Run(r *Rate, units float64, fn func()) {
	start := time.Now()
	if r.Estimate(units) >= MinWork {
		Do(fn)
	} else {
		fn()
	}
	r.observe(units, time.Since(start))
}
