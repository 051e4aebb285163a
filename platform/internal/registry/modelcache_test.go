package registry_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aiaas/aiaas/platform/internal/registry"
)

// TestModelCache: the first lookup misses and loads, later ones hit, a
// failed load is reported and not kept, many concurrent misses load once,
// and the byte bound evicts.
func TestModelCache(t *testing.T) {
	ctx := context.Background()
	c := registry.NewModelCache[string](100)
	var loads atomic.Int32
	load := func(v string, size int64) registry.Loader[string] {
		return func(context.Context) (string, int64, error) {
			loads.Add(1)
			return v, size, nil
		}
	}
	if m, l, err := c.Get(ctx, "t", "m", 1, load("v1", 40)); m != "v1" || l != registry.Miss || err != nil {
		t.Fatalf("first: %q %q %v", m, l, err)
	}
	if m, l, err := c.Get(ctx, "t", "m", 1, load("other", 40)); m != "v1" || l != registry.Hit || err != nil {
		t.Fatalf("second: %q %q %v", m, l, err)
	}
	if c.Bytes() != 40 {
		t.Errorf("bytes %d", c.Bytes())
	}
	boom := errors.New("boom")
	fail := func(context.Context) (string, int64, error) { return "", 0, boom }
	if _, l, err := c.Get(ctx, "t", "m", 2, fail); l != registry.Failed || !errors.Is(err, boom) {
		t.Fatalf("failed load: %q %v", l, err)
	}
	if _, l, _ := c.Get(ctx, "t", "m", 2, load("v2", 40)); l != registry.Miss {
		t.Errorf("a failed load was kept: %q", l)
	}

	loads.Store(0)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if m, _, err := c.Get(ctx, "t", "m", 3, load("v3", 10)); m != "v3" || err != nil {
				t.Errorf("concurrent: %q %v", m, err)
			}
		}()
	}
	wg.Wait()
	if n := loads.Load(); n != 1 {
		t.Errorf("%d loads for one version", n)
	}

	// 40 + 40 + 10 held; another 40 must evict the least recently used.
	c.Get(ctx, "t", "m", 4, load("v4", 40))
	if c.Bytes() > 100 {
		t.Errorf("bytes %d over the bound", c.Bytes())
	}
	if _, l, _ := c.Get(ctx, "t", "m", 1, load("v1", 40)); l != registry.Miss {
		t.Errorf("the least recently used version was kept: %q", l)
	}
}
