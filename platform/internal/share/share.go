// Package share holds each tenant to its share of the process's CPUs while
// other tenants are active.
//
// Go's scheduler is fair to goroutines, not to tenants: a tenant with
// sixteen requests in flight has sixteen runnable goroutines and another
// tenant's one request waits behind them for a processor, up to the
// scheduler's 10 ms time slice each. A Gate counts each tenant's requests
// that are running (inside their handler) and, while other tenants have
// been active within the window, admits the next request of a tenant that
// has recently run more than the active tenants' average only if that
// leaves a processor free for every other active tenant that has nothing
// running. A tenant at or below the average is not held back: the light
// tenant's upload and its inferences run side by side, the heavy tenant's
// requests take turns. Requests past a tenant's share wait, first come first
// served, until one of the tenant's own requests ends or the window of the
// others lapses; they never wait on another tenant's requests, so a tenant
// with nothing running is always admitted at once.
//
// # CPU pressure
//
// Holding the heavy tenant to its share of the process's processors is not
// enough when the machine itself is short of CPU (other processes, the
// heavy tenant's own clients on the same host, a container's CPU limit):
// the light tenant's request is admitted at once, then waits for the
// kernel to give its thread a core. A Gate given a [Pressure] (Linux's
// pressure stall information: the share of time some task waited for a
// CPU) samples it every 10 ms while several tenants are active. While the
// stall share (averaged over the last few samples) is above 20 %, the
// number of processors a tenant above the average may keep busy is cut by
// 15 % per sample, down to a tenth of one; below 5 % it grows back by 5 %
// of the slots per sample. A tenant over that limit waits before its next
// request until its running time has decayed below it. The limit holds
// back only a tenant that has run more than 1.5 times the busiest other
// active tenant: the light tenant is never limited, and the heavy one is
// never held below it, so the two cannot trade places; the background
// tenant (the platform's probes) holds nobody back. Without pressure
// (or without a Pressure source: other systems, Lambda) the gate is
// work-conserving as above.
//
// A tenant alone (nobody else active within the window) is not limited:
// the gate costs a lone tenant nothing, batching included. A request that
// blocks on its client (reading a slow body, streaming to a slow reader)
// can step aside with Pause, so its tenant's other requests are not held
// behind a network wait. When it resumes it waits for its tenant's turn
// like a new request, but at most ResumeWait: a request of the same
// tenant that it holds up (a lock it took before its pause) could
// otherwise never leave, and the two would wait for each other.
package share

import (
	"bytes"
	"context"
	"math"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aiaas/aiaas/internal/cgroup"
)

// Gate admits requests by tenant. The zero value is not usable; use New.
// A nil *Gate admits everything at once.
type Gate struct {
	slots  int
	window time.Duration
	now    func() time.Time

	mu      sync.Mutex
	held    int // requests running, all tenants
	tenants map[string]*tenant
	waiters []*waiter // FIFO
	seen    time.Time // when tenants was last swept of idle entries

	// CPU pressure (see the package doc). limit is how many processors a
	// tenant above the average may keep busy while others are active
	// (float64(slots): no limit); sampled and stalled are the last
	// sample, under mu. due (Unix ns) is when the next sample is due;
	// sampling holds smu; several is set while more than one tenant is
	// known.
	pressure Pressure
	limit    float64
	sampled  time.Time
	stalled  time.Duration
	stall    float64 // moving average of the stall share
	smu      sync.Mutex
	due      atomic.Int64
	several  atomic.Bool
	// background names the tenant whose activity never holds another
	// back under pressure (see Background).
	background string
}

// Pressure reports the total time, from some fixed point, in which at
// least one runnable task waited for a CPU; ok is false when it cannot be
// read.
type Pressure func() (stalled time.Duration, ok bool)

// Pressure control (package doc, "CPU pressure").
const (
	sampleEvery  = 10 * time.Millisecond
	pressureHigh = 0.20 // stall share over which the limit is cut
	pressureLow  = 0.05 // stall share under which it grows back
	limitCut     = 0.85
	limitGrow    = 0.05 // of the slots, per calm sample
	limitFloor   = 0.1  // processors
	limitedTick  = 5 * time.Millisecond
	stallWeight  = 0.25 // of the newest sample in the average
	// heavier: the limit holds back only a tenant that has run more than
	// this many times the busiest other active tenant, so the tenants it
	// holds back never fall below the ones it protects and never trade
	// places with them.
	heavier = 1.5
)

// CPUPressure returns the Pressure of this process's cgroup (cgroup v2:
// cpu.pressure in its folder under /sys/fs/cgroup, as /proc/self/cgroup
// names it) or else of the whole system (/proc/pressure/cpu), or nil
// where neither can be read (systems other than Linux, kernels without
// pressure stall information, AWS Lambda).
func CPUPressure() Pressure {
	files := []string{"/proc/pressure/cpu"}
	if dir, ok := cgroup.Dir(); ok {
		files = append([]string{cgroup.Root + dir + "/cpu.pressure"}, files...)
	}
	for _, f := range files {
		p := func() (time.Duration, bool) { return readPressure(f) }
		if _, ok := p(); ok {
			return p
		}
	}
	return nil
}

// readPressure reads the "some" line's total (microseconds) of a PSI file.
func readPressure(name string) (time.Duration, bool) {
	var buf [256]byte
	f, err := os.Open(name)
	if err != nil {
		return 0, false
	}
	n, _ := f.Read(buf[:])
	f.Close()
	return parsePressure(buf[:n])
}

// parsePressure reads "some avg10=… avg60=… avg300=… total=N" from the
// first line of b.
func parsePressure(b []byte) (time.Duration, bool) {
	line, _, _ := bytes.Cut(b, []byte{'\n'})
	rest, ok := bytes.CutPrefix(line, []byte("some "))
	if !ok {
		return 0, false
	}
	_, total, ok := bytes.Cut(rest, []byte("total="))
	if !ok {
		return 0, false
	}
	us, err := strconv.ParseUint(string(bytes.TrimSpace(total)), 10, 63)
	if err != nil || us > math.MaxInt64/1000 {
		return 0, false
	}
	return time.Duration(us) * time.Microsecond, true
}

// UsePressure makes g hold back tenants above the average while p says
// the CPU is contended (see the package doc); nil turns it off. Call it
// before the gate is used. It returns g.
func (g *Gate) UsePressure(p Pressure) *Gate {
	if g != nil {
		g.pressure = p
	}
	return g
}

// Background names a tenant (the platform's requests of no tenant:
// probes, metadata) whose requests are shared like any tenant's but whose
// activity never holds another back under CPU pressure: a readiness probe
// every few seconds must not cut a lone customer's throughput. Call it
// before the gate is used. It returns g.
func (g *Gate) Background(t string) *Gate {
	if g != nil {
		g.background = t
	}
	return g
}

// Limit reports how many processors a tenant above the average may keep
// busy now while others are active: the number of slots when the CPU is
// not contended.
func (g *Gate) Limit() float64 {
	if g == nil {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.limit
}

// sample starts a read of the pressure when a sample is due and several
// tenants are known; the read moves the limit. Called without g.mu.
//
// The read is a file read (open, read, close), tens of microseconds and
// now and then milliseconds when the thread is descheduled; it runs on a
// goroutine of its own, not on the request that found it due: sampled
// inline, every 10 ms while tenants share the process, it fell most
// often on the light tenant's requests (those that arrive while the
// heavy one's wait), and added its slowest reads to their tail.
func (g *Gate) sample(now time.Time) {
	if g.pressure == nil || !g.several.Load() || now.UnixNano() < g.due.Load() || !g.smu.TryLock() {
		return
	}
	if now.UnixNano() < g.due.Load() {
		g.smu.Unlock()
		return // another sampler just did
	}
	g.due.Store(now.Add(sampleEvery).UnixNano())
	go func() {
		defer g.smu.Unlock()
		g.read()
	}()
}

// read takes one pressure sample and moves the limit. Called with g.smu
// held and without g.mu.
func (g *Gate) read() {
	stalled, ok := g.pressure()
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if !ok {
		g.sampled = time.Time{}
		g.raise(float64(g.slots), now)
		return
	}
	dt, prev, fresh := now.Sub(g.sampled), g.stalled, g.sampled.IsZero()
	g.sampled, g.stalled = now, stalled
	if fresh || dt > 10*sampleEvery {
		// The first sample, or the first after a time alone: what
		// happened since the last says nothing about now.
		g.stall = 0
		g.raise(float64(g.slots), now)
		return
	}
	if dt <= 0 || stalled < prev {
		return
	}
	// A sample of 10 ms often reads no stall at all between two that read
	// much: the limit follows the average of the last few.
	g.stall = (1-stallWeight)*g.stall + stallWeight*min(1, float64(stalled-prev)/float64(dt))
	switch share := g.stall; {
	case share > pressureHigh:
		g.limit = max(limitFloor, g.limit*limitCut)
	case share < pressureLow:
		g.raise(g.limit+limitGrow*float64(g.slots), now)
	}
}

// raise sets the limit to l (at most the slots) and admits the waiters it
// lets in. Called with g.mu held.
func (g *Gate) raise(l float64, now time.Time) {
	l = min(l, float64(g.slots))
	if l <= g.limit {
		return
	}
	g.limit = l
	g.scan(now)
}

// tick is how long a waiter sleeps before it looks again without being
// woken: the window, or less while the limit is engaged (nobody's release
// says when a tenant's running time has decayed below it). Called with
// g.mu held.
func (g *Gate) tick() time.Duration {
	if g.limit < float64(g.slots) {
		return min(g.window, limitedTick)
	}
	return g.window
}

type tenant struct {
	held int       // requests running
	last time.Time // when its last request arrived
	// use is the tenant's recent running time: request-seconds, each
	// second weighted e^(-age/usageDecay); at is when it was last brought
	// up to date.
	use float64
	at  time.Time
}

// usageDecay is the time constant of a tenant's running-time average:
// what it ran a few seconds ago hardly counts any more.
const usageDecay = time.Second

// account brings ts.use up to now: held requests ran since ts.at, the
// time before that decays. Call it before held changes.
func (ts *tenant) account(now time.Time) {
	dt := now.Sub(ts.at)
	if ts.at.IsZero() {
		ts.at = now
		return
	}
	if dt <= 0 {
		return
	}
	tau := usageDecay.Seconds()
	decay := math.Exp(-dt.Seconds() / tau)
	ts.use = ts.use*decay + float64(ts.held)*tau*(1-decay)
	ts.at = now
}

type waiter struct {
	tenant string
	ready  chan struct{} // closed when admitted
	gone   bool          // gave up (context done); skipped
}

// New returns a gate over slots processors (at least 1) in which a tenant
// counts as active for window after its last request. A window of 0 or
// less returns nil: every request admitted at once.
func New(slots int, window time.Duration) *Gate {
	if window <= 0 {
		return nil
	}
	slots = max(1, slots)
	return &Gate{slots: slots, window: window, now: time.Now, tenants: map[string]*tenant{}, limit: float64(slots)}
}

// Enter waits until the gate admits a request of tenant t, or ctx is done
// (then it returns ctx's error and nothing is held). After a nil error,
// Leave(t) must be called once when the request ends. Admission at once
// allocates nothing.
func (g *Gate) Enter(ctx context.Context, t string) error {
	if g == nil {
		return nil
	}
	if g.pressure != nil && g.several.Load() {
		g.sample(g.now())
	}
	g.mu.Lock()
	now := g.now()
	ts := g.tenants[t]
	if ts == nil {
		ts = &tenant{}
		g.tenants[t] = ts
		g.several.Store(g.foreground() > 1)
	}
	ts.last = now
	if len(g.waiters) == 0 && g.admits(t, ts, now) {
		g.take(ts, now)
		g.mu.Unlock()
		return nil
	}
	w := &waiter{tenant: t, ready: make(chan struct{})}
	g.waiters = append(g.waiters, w)
	// A new waiter may be admissible at once behind others that are not
	// (another tenant's): let the scan decide, in order.
	g.scan(now)
	select {
	case <-w.ready:
		// Admitted by its own scan (behind another tenant's waiters
		// that are not): nobody's wake-up ran it, so it inherited no
		// time slice and has no reason to yield (below).
		g.mu.Unlock()
		return nil
	default:
	}
	tick := g.tick()
	g.mu.Unlock()

	timer := time.NewTimer(tick)
	defer timer.Stop()
	for {
		select {
		case <-w.ready:
			// Admitted by the release of the tenant's previous request:
			// that goroutine's wake-up put this one in its processor's
			// next slot, where it runs before anything already queued and
			// inherits the time slice. Chained so, request after request
			// of the heavy tenant ran ahead of the light tenant's that the
			// network had woken, for up to the scheduler's 10 ms slice.
			// Going to the back of the queue once lets those run first.
			runtime.Gosched()
			return nil
		case <-ctx.Done():
			g.mu.Lock()
			select {
			case <-w.ready:
				// Admitted just as the context ended: give it back.
				g.mu.Unlock()
				g.Leave(t)
			default:
				w.gone = true
				g.mu.Unlock()
			}
			return ctx.Err()
		case <-timer.C:
			// Another tenant's window may have lapsed, or this tenant's
			// running time decayed below the limit: nobody's release
			// would say so.
			if g.pressure != nil {
				g.sample(g.now())
			}
			g.mu.Lock()
			g.scan(g.now())
			tick := g.tick()
			g.mu.Unlock()
			timer.Reset(tick)
		}
	}
}

// ResumeWait is the longest a paused request waits for its tenant's share
// when it resumes (see Pause).
const ResumeWait = 20 * time.Millisecond

// Pause steps a running request of tenant t aside while it blocks on
// something other than the CPU (its client), so the tenant's next request
// may run meanwhile. resume must be called once before the request works
// again. It waits, as Enter does, until the tenant's share admits the
// request again, but at most ResumeWait; then the request runs over the
// share. Without the wait a tenant's uploads, each pausing on its client
// between reads, came back side by side past the share and processed at
// once what they had read.
func (g *Gate) Pause(t string) (resume func()) {
	if g == nil {
		return func() {}
	}
	g.mu.Lock()
	ts := g.tenants[t]
	if ts == nil || ts.held == 0 {
		g.mu.Unlock()
		return func() {}
	}
	now := g.now()
	g.drop(ts, now)
	g.scan(now)
	g.mu.Unlock()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), ResumeWait)
		err := g.Enter(ctx, t)
		cancel()
		if err == nil {
			return
		}
		g.mu.Lock()
		// Looked up again: a tenant idle past the window while paused
		// may have been swept.
		now := g.now()
		ts := g.tenants[t]
		if ts == nil {
			ts = &tenant{last: now}
			g.tenants[t] = ts
		}
		g.take(ts, now)
		g.mu.Unlock()
	}
}

// Await runs fn, a wait on something other than the CPU (a client's
// body, a client reading a stream), for a running request of tenant t:
// if fn takes longer than after, the request steps aside (Pause) until fn
// returns, so a slow client holds back none of its tenant's other
// requests. A wait shorter than after costs a timer and nothing else.
func (g *Gate) Await(t string, after time.Duration, fn func()) {
	if g == nil {
		fn()
		return
	}
	var (
		mu     sync.Mutex
		done   bool
		resume func()
	)
	timer := time.AfterFunc(after, func() {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			resume = g.Pause(t)
		}
	})
	fn()
	timer.Stop()
	mu.Lock()
	done = true
	r := resume
	mu.Unlock()
	if r != nil {
		r()
	}
}

// Running reports how many requests of tenant t are running.
func (g *Gate) Running(t string) int {
	if g == nil {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if ts := g.tenants[t]; ts != nil {
		return ts.held
	}
	return 0
}

// Active reports how many tenants other than ignore are active: running a
// request, or arrived within the window.
func (g *Gate) Active(ignore string) int {
	if g == nil {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	now, n := g.now(), 0
	for name, ts := range g.tenants {
		if name != ignore && (ts.held > 0 || now.Sub(ts.last) < g.window) {
			n++
		}
	}
	return n
}

// Waiting reports how many requests wait for their tenant's share.
func (g *Gate) Waiting() int {
	if g == nil {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, w := range g.waiters {
		if !w.gone {
			n++
		}
	}
	return n
}

// Leave ends a request of tenant t that Enter admitted.
func (g *Gate) Leave(t string) {
	if g == nil {
		return
	}
	g.mu.Lock()
	if ts := g.tenants[t]; ts != nil && ts.held > 0 {
		now := g.now()
		g.drop(ts, now)
		g.scan(now)
	}
	g.mu.Unlock()
}

// take and drop count a request of ts in or out at now (one clock read
// per admission, shared with the caller's checks).
func (g *Gate) take(ts *tenant, now time.Time) { ts.account(now); ts.held++; g.held++ }
func (g *Gate) drop(ts *tenant, now time.Time) { ts.account(now); ts.held--; g.held-- }

// admits reports whether a request of t may run now: always when t has
// nothing running, and always when t has recently run no more than the
// average of the active tenants (a lone tenant's, or a light tenant's
// second request does not wait for its first). A tenant above the
// average runs its next request only if, after it, the requests running
// leave a processor free for each other tenant active within the window
// with nothing running; and while the CPU is contended, only if it has
// recently kept no more processors busy than the limit or than 1.5 times
// the busiest other active tenant.
// Called with g.mu held.
func (g *Gate) admits(t string, ts *tenant, now time.Time) bool {
	if ts.held == 0 && g.limit >= float64(g.slots) {
		return true
	}
	ts.account(now)
	reserve, active, sum, most, others := 0, 1, ts.use, 0.0, false
	for name, o := range g.tenants {
		if name == t || (o.held == 0 && now.Sub(o.last) >= g.window) {
			continue
		}
		o.account(now)
		active++
		sum += o.use
		if name != g.background || g.background == "" {
			most, others = max(most, o.use), true
		}
		if o.held == 0 {
			reserve++
		}
	}
	if ts.use*float64(active) <= sum { // alone, or not above the average
		return true
	}
	if others && ts.use > max(g.limit, heavier*most) {
		return false // the CPU is contended: the heavy tenant backs off
	}
	if ts.held == 0 {
		return true
	}
	return g.held+reserve < g.slots
}

// scan admits waiters in arrival order, each if the gate admits it now,
// and forgets tenants idle past the window with nothing running or
// waiting. Called with g.mu held.
func (g *Gate) scan(now time.Time) {
	kept := g.waiters[:0]
	for _, w := range g.waiters {
		switch {
		case w.gone:
		case g.admits(w.tenant, g.tenants[w.tenant], now):
			g.take(g.tenants[w.tenant], now)
			close(w.ready)
		default:
			kept = append(kept, w)
		}
	}
	clear(g.waiters[len(kept):])
	g.waiters = kept
	if now.Sub(g.seen) >= g.window {
		g.seen = now
		waiting := map[string]bool{}
		for _, w := range g.waiters {
			waiting[w.tenant] = true
		}
		for name, ts := range g.tenants {
			if ts.held == 0 && !waiting[name] && now.Sub(ts.last) >= g.window {
				delete(g.tenants, name)
			}
		}
		g.several.Store(g.foreground() > 1)
	}
}

// foreground counts the known tenants but the background one. Called
// with g.mu held.
func (g *Gate) foreground() int {
	n := len(g.tenants)
	if _, ok := g.tenants[g.background]; ok && g.background != "" {
		n--
	}
	return n
}
