// Package yield lets a long CPU-bound loop give its processor to the
// goroutines and network input waiting for one, every half millisecond of
// its work.
//
// Go preempts a running goroutine only after 10 ms. A request whose loop
// never blocks — a large matrix product, a CSV being parsed as it
// inflates, an upload hashed and sealed as it arrives from a fast client —
// keeps every goroutine that became runnable on its processor meanwhile
// waiting that long: another request's, maybe another tenant's, whose
// whole answer takes a millisecond. runtime.Gosched alone is not enough
// when every processor runs such a loop: the scheduler looks at the
// network only when it has no runnable goroutine (or from its monitor
// thread, every 10 ms), and a goroutine that called Gosched is runnable.
// So a new request's bytes sat unread for 5 ms on average behind two
// yielding loops on two processors (golang/go#51651). Now parks the
// caller until a wake-up that arrives through the network poller itself,
// so the processor polls the network on its way back to the caller.
package yield

import (
	"os"
	"runtime"
	"sync"
	"time"
)

// Every is how long a loop runs between yields; every PollEvery the yield
// also has the scheduler poll the network (Now). A plain yield
// (runtime.Gosched) costs a tenth of a microsecond; Now a few (two
// system calls and two goroutine switches; 10 µs on the project's VM,
// where system calls are slow), so polling every 2 ms costs at most 0.5 %
// of a loop's time and bounds how long new network input waits for a
// busy scheduler to 2 ms instead of 10.
const (
	Every     = 500 * time.Microsecond
	PollEvery = 2 * time.Millisecond
)

// A Point yields its goroutine's processor once per Every of the loop
// that calls Maybe, and has the scheduler poll the network once per
// PollEvery. The zero value is ready; a Point belongs to one goroutine.
type Point struct {
	start    time.Time     // first Maybe; its monotonic reading is the base
	next     time.Duration // since start, when the next yield is due
	nextPoll time.Duration // since start, when the next Now is due
}

// Maybe yields if Every has passed since the last yield (or the first
// call). It reads the monotonic clock once, so call it between blocks of
// work of a microsecond or more, not per element.
func (p *Point) Maybe() {
	if p.start.IsZero() {
		p.start = time.Now()
		p.next, p.nextPoll = Every, PollEvery
		return
	}
	d := time.Since(p.start)
	if d < p.next {
		return
	}
	if d < p.nextPoll {
		runtime.Gosched()
	} else {
		Now()
		p.nextPoll = time.Since(p.start) + PollEvery
	}
	p.next = time.Since(p.start) + Every
}

// Now gives the caller's processor to the goroutines waiting for one and
// has the scheduler poll the network before the caller runs again. It
// allocates nothing once there is a wake-up channel for each caller that
// parks at once (the zero-allocation tests of the kernels and the graph
// runtime call it through Maybe).
func Now() {
	var c chan struct{}
	select {
	case c = <-wakes:
	default:
		c = make(chan struct{}, 1)
	}
	park(c)
	select {
	case wakes <- c:
	default: // more callers parked at once than the list keeps
	}
}

// wakes is the free list of wake-up channels. Not a sync.Pool: a pool
// keeps an item in the private slot of the processor that put it, where
// a caller on another processor cannot take it, and every collection
// empties it, so a run of tens of milliseconds on a busy machine made new
// ones (TestNetworks counted them as the model's allocations).
var wakes = make(chan chan struct{}, 256)

// poller is the goroutine that wakes parked callers: they queue their
// wake-up channel and write a byte to its pipe, whose read end it waits
// on through the network poller.
var poller struct {
	once  sync.Once
	w     *os.File // nil if the platform has no pollable pipe: Gosched
	queue chan chan struct{}
}

// oneByte is what a parked caller writes to the poller's pipe.
var oneByte = [1]byte{}

// park waits until the poller sends on c (buffered, capacity 1).
func park(c chan struct{}) {
	poller.once.Do(startPoller)
	if poller.w == nil {
		runtime.Gosched()
		return
	}
	poller.queue <- c
	if _, err := poller.w.Write(oneByte[:]); err != nil {
		// Cannot happen while the process runs (the pipe is never
		// closed); if it did, the wake-up may never come.
		select {
		case <-c:
		case <-time.After(time.Millisecond):
		}
		return
	}
	<-c
}

func startPoller() {
	r, w, err := os.Pipe()
	if err != nil {
		return // wasip1, for one: plain Gosched
	}
	poller.w = w
	poller.queue = make(chan chan struct{}, 4096)
	go func() {
		var buf [512]byte
		for {
			// Every byte follows its caller's queued channel, so after a
			// read the queue holds at least the callers whose bytes were
			// read (and maybe some whose bytes a later read will find).
			if _, err := r.Read(buf[:]); err != nil {
				return
			}
			// A wake-up puts its caller first in line on this
			// processor: step behind whatever else waits for it (the
			// network input just polled among them) before sending.
			runtime.Gosched()
			for drained := false; !drained; {
				select {
				case c := <-poller.queue:
					c <- struct{}{}
				default:
					drained = true
				}
			}
		}
	}()
}
