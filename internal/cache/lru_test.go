package cache_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aiaas/aiaas/internal/cache"
)

func TestLRULRUBytes(t *testing.T) {
	c := cache.NewLRU[string, string](&cache.LRUOptions{MaxBytes: 100})
	ctx := context.Background()
	loads := map[string]int{}
	get := func(key string, size int64) string {
		v, err := c.Get(ctx, key, func(context.Context) (string, int64, error) {
			loads[key]++
			return "v" + key, size, nil
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

func TestLRUSingleflight(t *testing.T) {
	c := cache.NewLRU[string, int](nil)
	var loads atomic.Int32
	release := make(chan struct{})
	var wg sync.WaitGroup
	const n = 64
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := c.Get(context.Background(), "k", func(context.Context) (int, int64, error) {
				loads.Add(1)
				<-release
				return 7, 1, nil
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

func TestLRUErrorsAndPanics(t *testing.T) {
	c := cache.NewLRU[string, int](nil)
	ctx := context.Background()
	boom := errors.New("boom")
	if _, err := c.Get(ctx, "k", func(context.Context) (int, int64, error) { return 0, 0, boom }); !errors.Is(err, boom) {
		t.Errorf("load error: %v", err)
	}
	if c.Len() != 0 {
		t.Error("an error was cached")
	}
	if _, err := c.Get(ctx, "k", func(context.Context) (int, int64, error) { panic("bad model") }); err == nil {
		t.Error("panicking loader gave no error")
	}
	// A waiter whose context ends stops waiting.
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	block := make(chan struct{})
	defer close(block)
	if _, err := c.Get(cctx, "slow", func(context.Context) (int, int64, error) { <-block; return 1, 1, nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled waiter: %v", err)
	}
}

// TestLRUHammer runs many goroutines over few keys with a small bound,
// so hits, misses, evictions and shared loads interleave under -race.
func TestLRUHammer(t *testing.T) {
	c := cache.NewLRU[string, []byte](&cache.LRUOptions{MaxBytes: 10 << 10})
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for i := 0; i < 2000; i++ {
				k := r.IntN(32)
				key := fmt.Sprintf("k%d", k)
				v, err := c.Get(context.Background(), key, func(context.Context) ([]byte, int64, error) {
					return []byte(key), int64(512 + k*16), nil
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

var loadModel cache.Loader[*model] = func(context.Context) (*model, int64, error) {
	return &model{w: make([]float32, 10)}, 40, nil
}

// BenchmarkLRUHit is the warm-invocation lookup: one key, always hit.
func BenchmarkLRUHit(b *testing.B) {
	c := cache.NewLRU[string, *model](nil)
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

// BenchmarkLRUHitParallel: hits from all cores on a 1000-entry cache.
func BenchmarkLRUHitParallel(b *testing.B) {
	c := cache.NewLRU[string, *model](nil)
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
