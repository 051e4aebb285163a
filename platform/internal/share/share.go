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
// A tenant alone (nobody else active within the window) is not limited:
// the gate costs a lone tenant nothing, batching included. A request that
// blocks on its client (reading a slow body, streaming to a slow reader)
// can step aside with Pause, so its tenant's other requests are not held
// behind a network wait; Pause's resume never blocks, so it cannot
// deadlock against the tenant's own requests.
package share

import (
	"context"
	"math"
	"sync"
	"time"
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
	return &Gate{slots: max(1, slots), window: window, now: time.Now, tenants: map[string]*tenant{}}
}

// Enter waits until the gate admits a request of tenant t, or ctx is done
// (then it returns ctx's error and nothing is held). After a nil error,
// Leave(t) must be called once when the request ends. Admission at once
// allocates nothing.
func (g *Gate) Enter(ctx context.Context, t string) error {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	now := g.now()
	ts := g.tenants[t]
	if ts == nil {
		ts = &tenant{}
		g.tenants[t] = ts
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
	g.mu.Unlock()

	timer := time.NewTimer(g.window)
	defer timer.Stop()
	for {
		select {
		case <-w.ready:
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
			// Another tenant's window may have lapsed: nobody's release
			// would say so.
			g.mu.Lock()
			g.scan(g.now())
			g.mu.Unlock()
			timer.Reset(g.window)
		}
	}
}

// Pause steps a running request of tenant t aside while it blocks on
// something other than the CPU (its client), so the tenant's next request
// may run meanwhile. resume must be called once before the request works
// again; it never waits.
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
// with nothing running.
// Called with g.mu held.
func (g *Gate) admits(t string, ts *tenant, now time.Time) bool {
	if ts.held == 0 {
		return true
	}
	ts.account(now)
	reserve, active, sum := 0, 1, ts.use
	for name, o := range g.tenants {
		if name == t || (o.held == 0 && now.Sub(o.last) >= g.window) {
			continue
		}
		o.account(now)
		active++
		sum += o.use
		if o.held == 0 {
			reserve++
		}
	}
	if ts.use*float64(active) <= sum { // alone, or not above the average
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
	}
}
