package auth

import (
	"fmt"
	"time"

	"golang.org/x/time/rate"

	"github.com/aiaas/aiaas/internal/cache"
)

// Guard bounds, per client address, the store reads spent on keys that
// turn out not to exist. Every unknown key costs one read (S3: a GET, paid
// for) before it is cached as unknown; a client guessing keys, or a
// deployment with a wrong key behind a retry loop, would otherwise turn
// each request into one. Past the budget the address is refused for keys
// not already cached, without a read; keys it used before keep working.
//
// A Guard is safe for concurrent use.
type Guard struct {
	addrs *cache.Cache[string, *rate.Limiter]
}

const (
	badKeyRate  = 5  // unknown keys per second per address, sustained
	badKeyBurst = 50 // and at once
	guardAddrs  = 10_000
)

// NewGuard returns a guard with an empty budget book: every address
// starts with the full burst.
func NewGuard() *Guard {
	// An address's limiter is dropped once its bucket would be full again:
	// a new one is the same.
	return &Guard{addrs: cache.New[string, *rate.Limiter](cache.Options{
		TTL: badKeyBurst / badKeyRate * time.Second, MaxEntries: guardAddrs})}
}

// Wait reports how long addr must wait before its next unknown-key
// lookup; 0 means it may look up now. It charges nothing.
func (g *Guard) Wait(addr string, now time.Time) time.Duration {
	l, ok := g.addrs.Get(addr)
	if !ok {
		return 0
	}
	if tok := l.TokensAt(now); tok < 1 {
		return time.Duration((1 - tok) / badKeyRate * float64(time.Second))
	}
	return 0
}

// Failed charges addr for one lookup that found no key.
func (g *Guard) Failed(addr string, now time.Time) {
	l, ok := g.addrs.Get(addr)
	if !ok {
		l = rate.NewLimiter(badKeyRate, badKeyBurst)
	}
	l.AllowN(now, 1)
	g.addrs.Put(addr, l) // and its time to live starts again
}

// ThrottledError refuses a lookup from an address past its unknown-key
// budget. It wraps ErrThrottled; Wait is how long the address must wait,
// for the client's Retry-After.
type ThrottledError struct {
	Wait time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many invalid API keys from this address; retry after %s", e.Wait.Round(time.Millisecond))
}

// Unwrap makes the error match ErrThrottled.
func (e *ThrottledError) Unwrap() error { return ErrThrottled }
