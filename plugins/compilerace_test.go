package plugins

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// Tenants whose first calls to one plugin arrive together, on a host whose
// compilation cache already holds the module (a restarted server), must
// all succeed. wazero v1.12 publishes a module loaded from its file cache
// to the runtimes sharing the cache before it has built the module's entry
// preambles; a second runtime instantiating it in that window panicked
// ("index out of range" in moduleEngine.NewFunction, seen once in the
// plugins tests; this test hit it within 120 rounds), which in a prewarm
// goroutine takes the process down. The host now compiles a module once
// at a time.
func TestConcurrentFirstCompileFromCache(t *testing.T) {
	dir := t.TempDir()
	m := mod(t, "png-to-tensor")
	ctx := context.Background()
	png, err := os.ReadFile("../examples/plugins/testdata/seven.png")
	if err != nil {
		t.Fatal(err)
	}
	warm := newHost(t, &Options{CacheDir: dir, Prewarm: -1})
	if err := warm.Warm(ctx, "seed", m); err != nil {
		t.Fatal(err)
	}
	for round := range 25 {
		// Generous deadlines: the test is about a crash, not latency, and
		// eight first calls at once under -race on a busy machine took
		// over the default 2 s.
		h := newHost(t, &Options{CacheDir: dir, Prewarm: -1, CallTimeout: time.Minute, InitTimeout: time.Minute})
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := h.Preprocess(ctx, fmt.Sprintf("t%d-%d", round, i), m, "image/png", png)
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		h.Close(ctx)
	}
}
