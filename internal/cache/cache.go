// Package cache is the in-memory cache of the platform's small records —
// API keys, model refs, plugin and endpoint records, per-address limiters:
// entries that expire, a bound on their number, one load per key at a
// time, and forgetting that wins against loads in flight.
//
// # Forgetting
//
// A record changes (a key is revoked, an alias moves) and the process that
// changed it calls [Cache.Forget]: from then on no caller of this process
// gets the old value. That includes a load that read the store before the
// change and finishes after it: Forget advances the cache's generation, a
// load that started under an older one is not stored, and [Cache.Load]
// runs it again (twice at most) so its caller sees the new state. Other
// processes see the change when their entry expires (Options.TTL).
//
// # Bounds
//
// At most Options.MaxEntries entries are kept. When a new entry finds the
// cache full, the expired entries are dropped, and if none had expired,
// all of them: the store holds the truth, and a flood of distinct keys
// costs loads, never memory. Callers whose keys an outsider chooses (a
// guessed API key) keep those in a cache of their own, so a flood cannot
// push out the entries that matter.
//
// A Cache is safe for concurrent use.
package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// DefaultMaxEntries is the bound when Options.MaxEntries is 0.
const DefaultMaxEntries = 100_000

// Options configure a Cache.
type Options struct {
	// TTL is how long an entry is served; 0 means until forgotten or
	// evicted.
	TTL time.Duration
	// MaxEntries bounds the entries kept; 0 means DefaultMaxEntries.
	MaxEntries int
	// Stale, when it returns true for a load's error, lets Load answer
	// with the key's expired entry instead (stale-if-error: a store
	// outage keeps what was known working). nil: never.
	Stale func(error) bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Cache maps keys to values that expire.
type Cache[K comparable, V any] struct {
	o Options

	mu    sync.Mutex
	m     map[K]entry[V]
	gen   uint64 // Forgets so far
	calls map[K]*call[V]
}

type entry[V any] struct {
	v       V
	expires time.Time // zero: never
}

type call[V any] struct {
	done chan struct{}
	v    V
	err  error
}

// New returns an empty cache.
func New[K comparable, V any](o Options) *Cache[K, V] {
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Cache[K, V]{o: o, m: map[K]entry[V]{}, calls: map[K]*call[V]{}}
}

func (c *Cache[K, V]) fresh(e entry[V], now time.Time) bool {
	return e.expires.IsZero() || now.Before(e.expires)
}

// Get returns the key's value if it is cached and has not expired.
func (c *Cache[K, V]) Get(key K) (V, bool) {
	now := c.o.Now()
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if !ok || !c.fresh(e, now) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Generation is read before a load whose result goes to PutIf.
func (c *Cache[K, V]) Generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// Put caches v under key for the TTL.
func (c *Cache[K, V]) Put(key K, v V) {
	c.mu.Lock()
	c.put(key, v)
	c.mu.Unlock()
}

// PutIf caches v, read after Generation returned gen, unless a key was
// forgotten since; it reports whether it stored v.
func (c *Cache[K, V]) PutIf(key K, v V, gen uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return false
	}
	c.put(key, v)
	return true
}

// put stores under c.mu, making room first.
func (c *Cache[K, V]) put(key K, v V) {
	if _, ok := c.m[key]; !ok && len(c.m) >= c.o.MaxEntries {
		now := c.o.Now()
		for k, e := range c.m {
			if !c.fresh(e, now) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= c.o.MaxEntries {
			clear(c.m)
		}
	}
	e := entry[V]{v: v}
	if c.o.TTL > 0 {
		e.expires = c.o.Now().Add(c.o.TTL)
	}
	c.m[key] = e
}

// Forget drops key; a load of any key in flight is not stored (see the
// package doc).
func (c *Cache[K, V]) Forget(key K) {
	c.mu.Lock()
	delete(c.m, key)
	c.gen++
	c.mu.Unlock()
}

// Len is the number of entries held, expired ones included.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// Load returns the key's value, calling load on a miss and caching what
// it returns; an error is not cached (a load that wants a negative answer
// cached returns it as a value). Concurrent misses of one key share one
// load; a caller whose ctx ends stops waiting with ctx's error. A load
// that raced a Forget is run again, twice at most, and its last result is
// returned uncached.
func (c *Cache[K, V]) Load(ctx context.Context, key K, load func(context.Context) (V, error)) (V, error) {
	if v, ok := c.Get(key); ok {
		return v, nil
	}
	for {
		c.mu.Lock()
		if e, ok := c.m[key]; ok && c.fresh(e, c.o.Now()) { // stored while we waited
			c.mu.Unlock()
			return e.v, nil
		}
		cl, running := c.calls[key]
		if !running {
			cl = &call[V]{done: make(chan struct{})}
			c.calls[key] = cl
		}
		c.mu.Unlock()
		if !running {
			c.run(ctx, key, cl, load)
			return cl.v, cl.err
		}
		select {
		case <-cl.done:
		case <-ctx.Done():
			var zero V
			return zero, ctx.Err()
		}
		// The leader's own cancellation is not this caller's failure:
		// load again as the next leader.
		if cl.err != nil && ctx.Err() == nil && (errors.Is(cl.err, context.Canceled) || errors.Is(cl.err, context.DeadlineExceeded)) {
			continue
		}
		return cl.v, cl.err
	}
}

// run performs one shared load for key and publishes it to the waiters.
func (c *Cache[K, V]) run(ctx context.Context, key K, cl *call[V], load func(context.Context) (V, error)) {
	defer func() {
		c.mu.Lock()
		delete(c.calls, key)
		c.mu.Unlock()
		close(cl.done)
	}()
	for try := 0; ; try++ {
		gen := c.Generation()
		v, err := safe(ctx, load)
		if err != nil {
			if c.o.Stale != nil && c.o.Stale(err) {
				c.mu.Lock()
				e, ok := c.m[key]
				c.mu.Unlock()
				if ok {
					cl.v, cl.err = e.v, nil
					return
				}
			}
			cl.err = err
			return
		}
		cl.v = v
		if c.PutIf(key, v, gen) || try == 2 {
			return
		}
	}
}

// safe runs load, turning a panic into an error so that the waiters of a
// shared load are always released.
func safe[V any](ctx context.Context, load func(context.Context) (V, error)) (v V, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("cache: load panicked: %v", p)
		}
	}()
	return load(ctx)
}
