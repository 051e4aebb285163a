// Package gcfloor keeps Go's garbage collector from running more often
// than a small heap calls for.
//
// The collector starts a cycle when the heap has grown by GOGC percent
// (100) of what the last cycle found live. A server whose live heap is
// small (aiaas serving an MNIST model holds ~15 MB) but which allocates
// quickly (a few KB a request, tens of thousands of requests a second)
// then collects over ten times a second, and each cycle has a cost beyond
// its marking: stopping the world twice, scanning every goroutine's
// stack, the write barrier on while it runs. On the serving benchmark the
// floor below cut the cycles fivefold and the server's CPU per request by
// 3–8 % (BENCHMARKS.md, "Serving").
//
// [Start] starts a floor that raises the percent after each cycle so that
// the next one starts no sooner than headroom bytes after the live heap:
// the goal is live + max(live × GOGC/100, headroom), up to [MaxPercent].
// A heap live above headroom ÷ (GOGC/100) gets GOGC's behaviour
// unchanged, so the extra memory is bounded by headroom, never a multiple
// of a large live heap. This is what a "ballast" did before Go had memory
// limits, without its allocation or the confusion in heap profiles.
//
// The percent is set again after every cycle from a cleanup attached to a
// sentinel object, which runs once the cycle has found the sentinel
// unreachable; setting it makes the runtime recompute its heap goal from
// the live heap at once, so a live heap that grew within one cycle gets a
// smaller percent before the heap grows much further.
package gcfloor

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"

	"github.com/aiaas/aiaas/internal/cgroup"
)

// MaxPercent bounds the percent a floor sets. The runtime applies the
// percent to the live heap each cycle finds, and the floor only sets it
// again once the cycle has ended: a live heap that grew tenfold within a
// cycle meets, for that moment, a percent meant for the smaller one. The
// bound keeps that goal within 11 times the live heap (a heap that small
// is cheap to collect anyway: 64 MiB of headroom reaches the bound below
// 6.4 MiB live).
const MaxPercent = 1000

// A floor keeps the collector's heap goal at least headroom bytes above
// the live heap. [Start] starts the process's.
type floor struct {
	headroom int64
	base     int // GOGC's percent when the floor started

	mu      sync.Mutex // orders adjust and halt
	stopped bool
	percent int // last percent set
	samples []metrics.Sample
}

// sentinel is the object whose collection marks the end of a cycle. It
// holds a pointer so it is never combined with other objects by the tiny
// allocator (whose objects are freed, and cleaned up, together).
type sentinel struct {
	_ *int
	_ [2]int
}

// The process has one floor at most: the collector's percent is the
// process's. Start calls while it runs share it.
var (
	procMu    sync.Mutex
	procFloor *floor
	procUsers int
)

// Start starts the process's floor of headroom bytes, or joins the one
// running (whose headroom grows to headroom if that is larger), and
// returns the function that leaves it: the last to leave stops it and
// restores the percent it found. It does nothing when headroom is not
// positive or the collector is off (GOGC=off).
func Start(headroom int64) (stop func()) {
	procMu.Lock()
	defer procMu.Unlock()
	if headroom <= 0 {
		return func() {}
	}
	if procFloor == nil {
		if procFloor = newFloor(headroom); procFloor == nil {
			return func() {}
		}
	} else {
		procFloor.mu.Lock()
		procFloor.headroom = max(procFloor.headroom, headroom)
		procFloor.mu.Unlock()
		procFloor.adjust()
	}
	procUsers++
	var once sync.Once
	return func() {
		once.Do(func() {
			procMu.Lock()
			defer procMu.Unlock()
			if procUsers--; procUsers == 0 {
				procFloor.halt()
				procFloor = nil
			}
		})
	}
}

// newFloor starts a floor, or returns nil when the collector is off.
func newFloor(headroom int64) *floor {
	f := &floor{headroom: headroom, samples: []metrics.Sample{
		{Name: "/gc/gogc:percent"},
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/scan/stack:bytes"},
		{Name: "/gc/scan/globals:bytes"},
		{Name: "/gc/cycles/total:gc-cycles"},
	}}
	metrics.Read(f.samples[:1])
	f.base = int(int64(f.samples[0].Value.Uint64())) // GOGC=off reads as -1
	f.percent = f.base
	if f.base <= 0 {
		return nil
	}
	f.arm()
	f.adjust()
	return f
}

// arm attaches the cleanup to a new sentinel: the next cycle finds it
// unreachable, and the cleanup then adjusts the percent and arms again.
func (f *floor) arm() {
	runtime.AddCleanup(new(sentinel), func(f *floor) {
		if f.adjust() {
			f.arm()
		}
	}, f)
}

// adjust sets the percent for the live heap the last cycle found, and
// reports whether the floor still runs. The floor calls it after every
// cycle; calling it otherwise is harmless.
func (f *floor) adjust() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return false
	}
	metrics.Read(f.samples)
	if f.samples[4].Value.Uint64() == 0 {
		// No cycle has measured the live heap yet: the runtime's first
		// goal is a fixed 4 MiB times the percent, which no percent
		// derived from a live heap of 0 would bound.
		return true
	}
	// The runtime's goal is live + (live + stacks + globals) × percent/100.
	scan := f.samples[1].Value.Uint64() + f.samples[2].Value.Uint64() + f.samples[3].Value.Uint64()
	p := Percent(f.base, f.headroom, scan)
	// A change of a few percent is not worth the runtime's recomputation.
	if p != f.percent && (p == f.base || math.Abs(float64(p-f.percent)) > float64(f.percent)/16) {
		debug.SetGCPercent(p)
		f.percent = p
	}
	return true
}

// Percent returns the percent that puts the next cycle's start headroom
// bytes past a heap whose scannable part is scan bytes, never below base
// nor above [MaxPercent].
func Percent(base int, headroom int64, scan uint64) int {
	if scan == 0 {
		scan = 1
	}
	p := (uint64(headroom)*100 + scan - 1) / scan
	if p > MaxPercent {
		p = MaxPercent
	}
	return max(base, int(p))
}

// halt stops adjusting and restores the percent the floor found.
func (f *floor) halt() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return
	}
	f.stopped = true
	if f.percent != f.base {
		debug.SetGCPercent(f.base)
		f.percent = f.base
	}
}

// Headroom returns the headroom to use given the one configured and the
// process's memory limit (0: unknown): a quarter of the limit at most, so
// a small container or Lambda function keeps most of its memory for its
// live data.
func Headroom(configured, limit int64) int64 {
	if limit > 0 {
		return min(configured, limit/4)
	}
	return configured
}

// MemoryLimit returns the smallest of the limits the runtime knows
// (GOMEMLIMIT), the process's cgroup's and the others given (0: none;
// a Lambda function's memory size): the limit Headroom sizes the
// headroom against.
func MemoryLimit(others ...int64) int64 {
	lim := debug.SetMemoryLimit(-1)
	if lim == math.MaxInt64 {
		lim = 0
	}
	for _, o := range others {
		lim = smaller(lim, o)
	}
	return smaller(lim, cgroup.MemoryLimit())
}

// smaller returns the smaller of two limits, 0 meaning none.
func smaller(a, b int64) int64 {
	if b > 0 && (a == 0 || b < a) {
		return b
	}
	return a
}
