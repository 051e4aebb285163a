package modelstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aiaas/aiaas/modelstore"
)

func TestCacheLRUBytes(t *testing.T) {
	c := modelstore.NewCache[string](&modelstore.CacheOptions{MaxBytes: 100})
	ctx := context.Background()
	loads := map[string]int{}
	get := func(key string, size int64) string {
		v, err := c.Get(ctx, key, func(context.Context) (string, int64, string, error) {
			loads[key]++
			return "v" + key, size, "", nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	get("a", 40)
	get("b", 40)
	get("a", 40) // a is now most recent
	get("c", 40) // evicts b
	if c.Bytes() != 80 || c.Len() != 2 {
		t.Errorf("bytes %d len %d, want 80 and 2", c.Bytes(), c.Len())
	}
	get("a", 40)
	get("b", 40)
	for i, tc := range []struct {
		key  string
		want int
	}{{"a", 1}, {"b", 2}, {"c", 1}} {
		if loads[tc.key] != tc.want {
			t.Errorf("case %d: %s loaded %d times, want %d", i, tc.key, loads[tc.key], tc.want)
		}
	}
	// Bigger than the whole cache: served, not kept.
	if v := get("huge", 1000); v != "vhuge" || c.Bytes() > 100 {
		t.Errorf("huge: %q, bytes %d", v, c.Bytes())
	}
	c.Remove("b")
	if c.Bytes() != 40 {
		t.Errorf("after Remove bytes %d, want 40", c.Bytes())
	}
}

func TestCacheSingleflight(t *testing.T) {
	c := modelstore.NewCache[int](nil)
	var loads atomic.Int32
	release := make(chan struct{})
	var wg sync.WaitGroup
	const n = 64
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := c.Get(context.Background(), "k", func(context.Context) (int, int64, string, error) {
				loads.Add(1)
				<-release
				return 7, 1, "", nil
			})
			if err != nil || v != 7 {
				t.Errorf("got %d, %v", v, err)
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	wg.Wait()
	if loads.Load() != 1 {
		t.Errorf("%d loads for %d concurrent misses, want 1", loads.Load(), n)
	}
}

func TestCacheErrorsAndPanics(t *testing.T) {
	c := modelstore.NewCache[int](nil)
	ctx := context.Background()
	boom := errors.New("boom")
	if _, err := c.Get(ctx, "k", func(context.Context) (int, int64, string, error) { return 0, 0, "", boom }); !errors.Is(err, boom) {
		t.Errorf("load error: %v", err)
	}
	if c.Len() != 0 {
		t.Error("an error was cached")
	}
	if _, err := c.Get(ctx, "k", func(context.Context) (int, int64, string, error) { panic("bad model") }); err == nil {
		t.Error("panicking loader gave no error")
	}
	// A waiter whose context ends stops waiting.
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	block := make(chan struct{})
	defer close(block)
	if _, err := c.Get(cctx, "slow", func(context.Context) (int, int64, string, error) { <-block; return 1, 1, "", nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled waiter: %v", err)
	}
}

func TestCacheRevalidate(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	var current atomic.Value
	current.Store("e1")
	var revals atomic.Int32
	c := modelstore.NewCache[string](&modelstore.CacheOptions{
		TTL: time.Second,
		Now: func() time.Time { return time.Unix(0, now.Load()) },
		Revalidate: func(ctx context.Context, key string) (string, error) {
			revals.Add(1)
			return current.Load().(string), nil
		},
	})
	ctx := context.Background()
	loads := 0
	get := func() string {
		v, err := c.Get(ctx, "alias", func(context.Context) (string, int64, string, error) {
			loads++
			e := current.Load().(string)
			return "value@" + e, 1, e, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for i, step := range []struct {
		advance time.Duration
		etag    string
		want    string
		loads   int
		revals  int32
	}{
		{0, "e1", "value@e1", 1, 0},
		{500 * time.Millisecond, "e1", "value@e1", 1, 0},  // fresh: no stat
		{time.Second, "e1", "value@e1", 1, 1},             // stale, unchanged: one stat, no load
		{1500 * time.Millisecond, "e2", "value@e2", 2, 2}, // moved: reload
		{100 * time.Millisecond, "e3", "value@e2", 2, 2},  // within TTL: not yet seen
	} {
		now.Add(int64(step.advance))
		current.Store(step.etag)
		if v := get(); v != step.want || loads != step.loads || revals.Load() != step.revals {
			t.Errorf("case %d: %q loads %d revals %d; want %q %d %d", i, v, loads, revals.Load(), step.want, step.loads, step.revals)
		}
	}
}

// TestCacheHammer runs many goroutines over few keys with a small bound,
// so hits, misses, evictions and shared loads interleave under -race.
func TestCacheHammer(t *testing.T) {
	c := modelstore.NewCache[[]byte](&modelstore.CacheOptions{MaxBytes: 10 << 10, TTL: time.Millisecond})
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for i := 0; i < 2000; i++ {
				k := r.IntN(32)
				key := fmt.Sprintf("k%d", k)
				v, err := c.Get(context.Background(), key, func(context.Context) ([]byte, int64, string, error) {
					return []byte(key), int64(512 + k*16), key, nil
				})
				if err != nil || string(v) != key {
					t.Errorf("goroutine %d: %q, %v", g, v, err)
					return
				}
				if c.Bytes() > 10<<10 {
					t.Errorf("over budget: %d", c.Bytes())
					return
				}
			}
		}(g)
	}
	wg.Wait()
}

type model struct{ w []float32 }

var loadModel modelstore.Loader[*model] = func(context.Context) (*model, int64, string, error) {
	return &model{w: make([]float32, 10)}, 40, "", nil
}

// BenchmarkCacheHit is the warm-invocation lookup: one key, always hit.
func BenchmarkCacheHit(b *testing.B) {
	c := modelstore.NewCache[*model](nil)
	ctx := context.Background()
	key := "acme\x00mnist\x003"
	if _, err := c.Get(ctx, key, loadModel); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Get(ctx, key, loadModel); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCacheHitTTL adds the clock read of revalidating caches.
func BenchmarkCacheHitTTL(b *testing.B) {
	c := modelstore.NewCache[*model](&modelstore.CacheOptions{TTL: time.Hour})
	ctx := context.Background()
	key := "acme\x00mnist\x00prod"
	c.Get(ctx, key, loadModel)
	b.ReportAllocs()
	for b.Loop() {
		c.Get(ctx, key, loadModel)
	}
}

// BenchmarkCacheHitParallel: hits from all cores on a 1000-entry cache.
func BenchmarkCacheHitParallel(b *testing.B) {
	c := modelstore.NewCache[*model](nil)
	ctx := context.Background()
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("t\x00m\x00%d", i)
		c.Get(ctx, keys[i], loadModel)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			c.Get(ctx, keys[i%len(keys)], loadModel)
			i++
		}
	})
}
