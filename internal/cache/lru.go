package cache

import (
	"context"
	"fmt"
	"sync"
)

// DefaultLRUBytes is the bound when LRUOptions.MaxBytes is 0; the
// platform sets it from AIAAS_MODEL_CACHE_MB.
const DefaultLRUBytes = 256 << 20

// LRUOptions configure an LRU. The zero value (or nil) means defaults.
type LRUOptions struct {
	// MaxBytes bounds the sum of the sizes loaders report; 0 means
	// DefaultLRUBytes. Entries are evicted least recently used first; a
	// value larger than MaxBytes is returned but not kept.
	MaxBytes int64
}

// Loader produces the value of a key on a miss: the value and its size in
// bytes (what it costs to keep).
type Loader[V any] func(ctx context.Context) (v V, size int64, err error)

type lruEntry[K comparable, V any] struct {
	key        K
	val        V
	size       int64
	prev, next *lruEntry[K, V]
}

type lruCall[V any] struct {
	done chan struct{}
	val  V
	err  error
}

// LRU is a byte-bounded cache of immutable values (decoded model
// versions): least recently used first out, one load per key at a time
// (concurrent misses wait for the first). Values never change under a key,
// so there is no expiry and nothing to forget but Remove. It is safe for
// concurrent use. A hit takes one mutex, one map lookup and a list move:
// no allocation.
type LRU[K comparable, V any] struct {
	opts LRUOptions

	mu    sync.Mutex
	items map[K]*lruEntry[K, V]
	lru   lruEntry[K, V] // sentinel: lru.next is the most recent
	bytes int64
	calls map[K]*lruCall[V]
}

// NewLRU returns an empty cache.
func NewLRU[K comparable, V any](opts *LRUOptions) *LRU[K, V] {
	var o LRUOptions
	if opts != nil {
		o = *opts
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultLRUBytes
	}
	c := &LRU[K, V]{opts: o, items: map[K]*lruEntry[K, V]{}, calls: map[K]*lruCall[V]{}}
	c.lru.next, c.lru.prev = &c.lru, &c.lru
	return c
}

func (c *LRU[K, V]) unlink(e *lruEntry[K, V]) {
	e.prev.next, e.next.prev = e.next, e.prev
}

func (c *LRU[K, V]) pushFront(e *lruEntry[K, V]) {
	e.prev, e.next = &c.lru, c.lru.next
	c.lru.next.prev = e
	c.lru.next = e
}

// Get returns the value of key, calling load on a miss. Concurrent misses
// of one key share a single load. The load runs detached from the
// caller's cancellation (others may be waiting on it), so it must bound
// itself, as Store calls do; a caller whose ctx ends stops waiting with
// ctx's error. A panic in load becomes an error. It is goroutine-safe.
func (c *LRU[K, V]) Get(ctx context.Context, key K, load Loader[V]) (V, error) {
	c.mu.Lock()
	if e := c.items[key]; e != nil {
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
		cl = &lruCall[V]{done: make(chan struct{})}
		c.calls[key] = cl
		c.mu.Unlock()
		go c.run(context.WithoutCancel(ctx), key, cl, load)
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

func (c *LRU[K, V]) run(ctx context.Context, key K, cl *lruCall[V], load Loader[V]) {
	var (
		v    V
		size int64
		err  error
	)
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("cache: load of %v panicked: %v", key, r)
			}
		}()
		v, size, err = load(ctx)
	}()
	c.mu.Lock()
	delete(c.calls, key)
	if old := c.items[key]; old != nil { // never, unless a caller bypassed the singleflight
		c.unlink(old)
		delete(c.items, key)
		c.bytes -= old.size
	}
	if err == nil && size <= c.opts.MaxBytes {
		if size < 0 {
			size = 0
		}
		e := &lruEntry[K, V]{key: key, val: v, size: size}
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
func (c *LRU[K, V]) Remove(key K) {
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
func (c *LRU[K, V]) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// Len is the number of cached entries. It is goroutine-safe.
func (c *LRU[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}
