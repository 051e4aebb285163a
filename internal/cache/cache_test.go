package cache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestExpiryAndForget(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	c := New[string, int](Options{TTL: time.Second, Now: clk.now})
	c.Put("a", 1)
	if v, ok := c.Get("a"); !ok || v != 1 {
		t.Fatalf("Get = %v %v", v, ok)
	}
	clk.t = clk.t.Add(time.Second)
	if _, ok := c.Get("a"); ok {
		t.Fatal("an entry is served at its TTL")
	}
	c.Put("b", 2)
	c.Forget("b")
	if _, ok := c.Get("b"); ok {
		t.Fatal("a forgotten entry is served")
	}
	gen := c.Generation()
	c.Forget("unrelated")
	if c.PutIf("b", 3, gen) {
		t.Fatal("PutIf stored a value read before a Forget")
	}
	if !c.PutIf("b", 4, c.Generation()) {
		t.Fatal("PutIf refused a current value")
	}
}

func TestBound(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	c := New[int, int](Options{TTL: time.Minute, MaxEntries: 4, Now: clk.now})
	c.Put(1, 1)
	c.Put(2, 2)
	clk.t = clk.t.Add(2 * time.Minute) // 1 and 2 expire
	c.Put(3, 3)
	c.Put(4, 4)
	c.Put(5, 5) // full: the expired go
	if n := c.Len(); n != 3 {
		t.Fatalf("%d entries after dropping the expired ones, want 3", n)
	}
	c.Put(6, 6)
	c.Put(7, 7) // full of fresh entries: all go
	if n := c.Len(); n != 1 {
		t.Fatalf("%d entries after a reset, want 1", n)
	}
	c.Put(7, 8) // replacing never evicts
	if v, _ := c.Get(7); v != 8 || c.Len() != 1 {
		t.Fatalf("replace: %v, %d entries", v, c.Len())
	}
}

// TestLoadShared: concurrent misses of one key run one load.
func TestLoadShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New[string, int](Options{})
		var calls atomic.Int32
		release := make(chan struct{})
		load := func(context.Context) (int, error) {
			calls.Add(1)
			<-release
			return 7, nil
		}
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				if v, err := c.Load(context.Background(), "k", load); v != 7 || err != nil {
					t.Errorf("Load = %v %v", v, err)
				}
			})
		}
		synctest.Wait()
		close(release)
		wg.Wait()
		if n := calls.Load(); n != 1 {
			t.Fatalf("%d loads for 10 concurrent misses, want 1", n)
		}
		if v, ok := c.Get("k"); !ok || v != 7 {
			t.Fatal("the shared load was not cached")
		}
	})
}

// TestLoadRacingForget: a load that read before a Forget is neither
// cached nor returned; the load runs again and its caller sees the
// new state.
func TestLoadRacingForget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New[string, string](Options{})
		state := "valid"
		var mu sync.Mutex
		read := make(chan struct{})
		proceed := make(chan struct{})
		first := true
		load := func(context.Context) (string, error) {
			mu.Lock()
			v := state
			wait := first
			first = false
			mu.Unlock()
			if wait {
				close(read)
				<-proceed
			}
			return v, nil
		}
		got := make(chan string)
		go func() { v, _ := c.Load(context.Background(), "key", load); got <- v }()
		<-read // the load has read "valid"
		mu.Lock()
		state = "revoked"
		mu.Unlock()
		c.Forget("key")
		close(proceed)
		if v := <-got; v != "revoked" {
			t.Fatalf("a load that read before the Forget returned %q", v)
		}
		if v, _ := c.Get("key"); v != "revoked" {
			t.Fatalf("cached %q after the Forget", v)
		}
	})
}

func TestLoadErrorsAndStale(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	outage := errors.New("store down")
	c := New[string, int](Options{TTL: time.Second, Now: clk.now, Stale: func(err error) bool { return errors.Is(err, outage) }})
	ctx := context.Background()
	if _, err := c.Load(ctx, "k", func(context.Context) (int, error) { return 0, outage }); !errors.Is(err, outage) {
		t.Fatalf("no entry to fall back on: %v", err)
	}
	if c.Len() != 0 {
		t.Fatal("an error was cached")
	}
	c.Put("k", 5)
	clk.t = clk.t.Add(time.Hour)
	if v, err := c.Load(ctx, "k", func(context.Context) (int, error) { return 0, outage }); v != 5 || err != nil {
		t.Fatalf("stale-if-error: %v %v", v, err)
	}
	other := errors.New("bad record")
	if _, err := c.Load(ctx, "k", func(context.Context) (int, error) { return 0, other }); !errors.Is(err, other) {
		t.Fatalf("an error Stale does not accept: %v", err)
	}
	if _, err := c.Load(ctx, "p", func(context.Context) (int, error) { panic("boom") }); err == nil {
		t.Fatal("a panicking load returned no error")
	}
}

// TestLoadCancellation: a waiter whose ctx ends stops waiting; a leader's
// cancellation does not fail the waiters, who load again.
func TestLoadCancellation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New[string, int](Options{})
		leaderCtx, cancelLeader := context.WithCancel(context.Background())
		started := make(chan struct{})
		var loads atomic.Int32
		load := func(ctx context.Context) (int, error) {
			if loads.Add(1) == 1 {
				close(started)
				<-ctx.Done()
				return 0, ctx.Err()
			}
			return 9, nil
		}
		leader := make(chan error)
		go func() { _, err := c.Load(leaderCtx, "k", load); leader <- err }()
		<-started
		waiterCtx, cancelWaiter := context.WithCancel(context.Background())
		waiterErr := make(chan error)
		go func() { _, err := c.Load(waiterCtx, "k", load); waiterErr <- err }()
		follower := make(chan int)
		go func() { v, _ := c.Load(context.Background(), "k", load); follower <- v }()
		synctest.Wait()
		cancelWaiter()
		if err := <-waiterErr; !errors.Is(err, context.Canceled) {
			t.Fatalf("a cancelled waiter: %v", err)
		}
		cancelLeader()
		if err := <-leader; !errors.Is(err, context.Canceled) {
			t.Fatalf("the cancelled leader: %v", err)
		}
		if v := <-follower; v != 9 {
			t.Fatalf("the follower of a cancelled leader got %d, want a load of its own", v)
		}
	})
}
