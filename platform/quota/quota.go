// Package quota enforces each tenant's request rate and concurrency, so one
// tenant's burst cannot take the server from the others.
//
// # Overview
//
// A [Limiter] keeps, per tenant, a token bucket (golang.org/x/time/rate)
// and a counting semaphore. [Limiter.Acquire] either admits a request —
// the caller must call the returned release func — or says how long to wait
// before retrying, which the HTTP layer turns into 429 with Retry-After and
// X-RateLimit-* headers. It never blocks: waiting in the server would hold
// a connection and a goroutine for a client that is over its quota.
//
// A Limiter counts what one process sees. Where many processes serve one
// deployment (Lambda), platform/quota/dynamo shares the same quotas
// through DynamoDB, and falls back to a Limiter when DynamoDB fails.
//
// All methods are safe for concurrent use.
package quota

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Options configures a Limiter; zero fields disable that quota.
type Options struct {
	RPS         float64 // sustained requests per second per tenant
	Burst       int     // bucket size
	Concurrency int     // in-flight requests per tenant
}

// Limiter holds every tenant's quota state.
type Limiter struct {
	opts    Options
	mu      sync.Mutex
	tenants map[string]*tenant
}

type tenant struct {
	rate     *rate.Limiter
	inflight chan struct{}
}

// New returns a Limiter; nil options disable every quota.
func New(opts *Options) *Limiter {
	l := &Limiter{tenants: map[string]*tenant{}}
	if opts != nil {
		l.opts = *opts
	}
	return l
}

// Decision is the outcome of Acquire.
type Decision struct {
	OK         bool
	Reason     string        // "rate" or "concurrency" when !OK
	RetryAfter time.Duration // when !OK
	Limit      int           // the bucket size (X-RateLimit-Limit), 0 if no rate quota
	Remaining  int           // tokens left (X-RateLimit-Remaining)
	Reset      time.Duration // until the bucket is full again (X-RateLimit-Reset)
}

func (l *Limiter) get(id string) *tenant {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.tenants[id]
	if t == nil {
		t = &tenant{}
		if l.opts.RPS > 0 {
			t.rate = rate.NewLimiter(rate.Limit(l.opts.RPS), max(1, l.opts.Burst))
		}
		if l.opts.Concurrency > 0 {
			t.inflight = make(chan struct{}, l.opts.Concurrency)
		}
		l.tenants[id] = t
	}
	return t
}

// Acquire admits one request of tenant id at now. When d.OK the caller must
// call release exactly once when the request ends.
func (l *Limiter) Acquire(id string, now time.Time) (d Decision, release func()) {
	t := l.get(id)
	release = func() {}
	if t.inflight != nil {
		select {
		case t.inflight <- struct{}{}:
			var once sync.Once
			release = func() { once.Do(func() { <-t.inflight }) }
		default:
			return Decision{Reason: "concurrency", RetryAfter: time.Second}, func() {}
		}
	}
	if t.rate != nil {
		d.Limit = t.rate.Burst()
		r := t.rate.ReserveN(now, 1)
		if delay := r.DelayFrom(now); delay > 0 {
			r.CancelAt(now)
			release()
			d.Reason, d.RetryAfter = "rate", delay
			return d, func() {}
		}
		tokens := t.rate.TokensAt(now)
		d.Remaining = int(math.Max(0, math.Floor(tokens)))
		missing := float64(d.Limit) - tokens
		d.Reset = time.Duration(missing / float64(t.rate.Limit()) * float64(time.Second))
	}
	d.OK = true
	return d, release
}
