package modelstore

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// DefaultCacheBytes is the cache bound when CacheOptions.MaxBytes is 0;
// the platform sets it from AIAAS_MODEL_CACHE_MB.
const DefaultCacheBytes = 256 << 20

// CacheOptions configure a Cache. The zero value (or nil) means defaults.
type CacheOptions struct {
	// MaxBytes bounds the sum of the sizes loaders report; 0 means
	// DefaultCacheBytes. Entries are evicted least recently used first; a
	// value larger than MaxBytes is returned but not kept.
	MaxBytes int64
	// TTL is how long an entry is served without asking whether it is
	// still current; 0 means forever (right for immutable versions).
	TTL time.Duration
	// Revalidate, called for an entry older than TTL, returns the key's
	// current etag cheaply (a stat). The same etag keeps the entry for
	// another TTL; a different one, or an error, reloads it. nil means
	// always reload after TTL.
	Revalidate func(ctx context.Context, key string) (etag string, err error)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Loader produces the value of a key on a miss: the value, its size in
// bytes (what it costs to keep), and an etag identifying what was loaded.
type Loader[V any] func(ctx context.Context) (v V, size int64, etag string, err error)

type entry[V any] struct {
	key        string
	val        V
	size       int64
	etag       string
	expires    time.Time
	prev, next *entry[V]
}

type call[V any] struct {
	done chan struct{}
	val  V
	err  error
}

// Cache is a byte-bounded LRU cache with one load per key at a time
// (concurrent misses wait for the first) and optional revalidation. It is
// safe for concurrent use. A hit takes one mutex, one map lookup and a list
// move: no allocation.
type Cache[V any] struct {
	opts CacheOptions

	mu    sync.Mutex
	items map[string]*entry[V]
	lru   entry[V] // sentinel: lru.next is the most recent
	bytes int64
	calls map[string]*call[V]
}

// NewCache returns an empty cache.
func NewCache[V any](opts *CacheOptions) *Cache[V] {
	var o CacheOptions
	if opts != nil {
		o = *opts
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultCacheBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Cache[V]{opts: o, items: map[string]*entry[V]{}, calls: map[string]*call[V]{}}
	c.lru.next, c.lru.prev = &c.lru, &c.lru
	return c
}

func (c *Cache[V]) unlink(e *entry[V]) {
	e.prev.next, e.next.prev = e.next, e.prev
}

func (c *Cache[V]) pushFront(e *entry[V]) {
	e.prev, e.next = &c.lru, c.lru.next
	c.lru.next.prev = e
	c.lru.next = e
}

// Get returns the value of key, calling load on a miss. Concurrent misses
// of one key share a single load. The load runs detached from the
// caller's cancellation (others may be waiting on it), so it must bound
// itself, as Store calls do; a caller whose ctx ends stops waiting with
// ctx's error. A panic in load becomes an error. It is goroutine-safe.
func (c *Cache[V]) Get(ctx context.Context, key string, load Loader[V]) (V, error) {
	c.mu.Lock()
	e := c.items[key]
	if e != nil && (c.opts.TTL == 0 || c.opts.Now().Before(e.expires)) {
		if c.lru.next != e {
			c.unlink(e)
			c.pushFront(e)
		}
		v := e.val
		c.mu.Unlock()
		return v, nil
	}
	cl := c.calls[key]
	if cl == nil {
		cl = &call[V]{done: make(chan struct{})}
		c.calls[key] = cl
		var stale *entry[V]
		if e != nil {
			stale = &entry[V]{val: e.val, size: e.size, etag: e.etag}
		}
		c.mu.Unlock()
		go c.run(context.WithoutCancel(ctx), key, cl, stale, load)
	} else {
		c.mu.Unlock()
	}
	select {
	case <-cl.done:
		return cl.val, cl.err
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}

func (c *Cache[V]) run(ctx context.Context, key string, cl *call[V], stale *entry[V], load Loader[V]) {
	var (
		v    V
		size int64
		etag string
		err  error
	)
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("modelstore: cache load of %q panicked: %v", key, r)
			}
		}()
		if stale != nil && c.opts.Revalidate != nil {
			if cur, rerr := c.opts.Revalidate(ctx, key); rerr == nil && cur == stale.etag {
				v, size, etag = stale.val, stale.size, stale.etag
				return
			}
		}
		v, size, etag, err = load(ctx)
	}()
	c.mu.Lock()
	delete(c.calls, key)
	if old := c.items[key]; old != nil {
		c.unlink(old)
		delete(c.items, key)
		c.bytes -= old.size
	}
	if err == nil && size <= c.opts.MaxBytes {
		if size < 0 {
			size = 0
		}
		e := &entry[V]{key: key, val: v, size: size, etag: etag}
		if c.opts.TTL > 0 {
			e.expires = c.opts.Now().Add(c.opts.TTL)
		}
		c.items[key] = e
		c.pushFront(e)
		c.bytes += size
		for c.bytes > c.opts.MaxBytes {
			last := c.lru.prev
			c.unlink(last)
			delete(c.items, last.key)
			c.bytes -= last.size
		}
	}
	c.mu.Unlock()
	cl.val, cl.err = v, err
	close(cl.done)
}

// Remove drops key. It is goroutine-safe.
func (c *Cache[V]) Remove(key string) {
	c.mu.Lock()
	if e := c.items[key]; e != nil {
		c.unlink(e)
		delete(c.items, key)
		c.bytes -= e.size
	}
	c.mu.Unlock()
}

// Bytes is the sum of the sizes of the cached entries. It is
// goroutine-safe.
func (c *Cache[V]) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// Len is the number of cached entries. It is goroutine-safe.
func (c *Cache[V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}
