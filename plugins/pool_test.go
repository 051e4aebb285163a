package plugins

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetratelabs/wazero/experimental"

	"github.com/aiaas/aiaas/internal/safetensors"
	"github.com/aiaas/aiaas/internal/wasmasm"
)

// The Go reactor GC trap: without the SDK's yield at the end of every
// export, a plugin that allocates per call grows its memory until the cap.
// 10,000 calls that each leave 16 KiB of garbage (156 MiB in total, 5×
// the cap) must keep the same instance and a flat memory.
func TestGuestHeapFlat(t *testing.T) {
	h := newHost(t, &Options{PoolSize: 1, MemoryLimitPages: 512, HighWaterBytes: 32 << 20})
	ctx := context.Background()
	m := mod(t, "hostile")
	call := func() {
		if _, err := h.Preprocess(ctx, "acme", m, "garbage;16", nil); err != nil {
			t.Fatal(err)
		}
	}
	for range 200 {
		call()
	}
	p, _ := h.mustPool(ctx, "acme", m)
	p.quiesce(t)
	memAt := func() int { return p.idle[0].memBytes() }
	first, created := memAt(), p.stats().created
	for range 10_000 - 200 {
		call()
	}
	p.quiesce(t)
	last := memAt()
	t.Logf("guest memory after 200 calls: %d KiB; after 10,000: %d KiB", first>>10, last>>10)
	if p.stats().created != created {
		t.Fatalf("the instance was replaced (%d → %d creations): memory was not flat", created, p.stats().created)
	}
	if last > first+4<<20 {
		t.Fatalf("guest memory grew from %d to %d bytes", first, last)
	}
}

func TestTenantIsolation(t *testing.T) {
	h := newHost(t, &Options{PoolSize: 1, Prewarm: -1})
	ctx := context.Background()
	m := mod(t, "hostile")
	count := func(tenant string) float32 {
		ts, err := h.Preprocess(ctx, tenant, m, "count", nil)
		if err != nil {
			t.Fatal(err)
		}
		return f32s(t, ts, "count")[0]
	}
	for i := 1; i <= 3; i++ {
		if got := count("a"); got != float32(i) {
			t.Fatalf("tenant a call %d: counter %v", i, got)
		}
	}
	if got := count("b"); got != 1 {
		t.Fatalf("tenant b sees tenant a's instance: counter %v", got)
	}
	ta, _ := h.tenant(ctx, "a")
	tb, _ := h.tenant(ctx, "b")
	if ta.rt.rt == tb.rt.rt {
		t.Fatal("tenants share a runtime")
	}
}

func TestBusy(t *testing.T) {
	h := newHost(t, &Options{PoolSize: 1, QueueTimeout: 50 * time.Millisecond, CallTimeout: time.Second})
	ctx := context.Background()
	m := mod(t, "hostile")
	if _, err := h.Preprocess(ctx, "acme", m, "ok", nil); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		_, err := h.Preprocess(ctx, "acme", m, "loop", nil)
		done <- err
	}()
	p, _ := h.mustPool(ctx, "acme", m)
	waitFor(t, func() bool { return len(p.slots) == 1 }) // the loop holds the only instance
	if _, err := h.Preprocess(ctx, "acme", m, "ok", nil); !errors.Is(err, ErrBusy) {
		t.Errorf("pool exhausted: %v", err)
	}
	// A cancelled caller gets its context's error, not ErrBusy.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := h.Preprocess(cctx, "acme", m, "ok", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if err := <-done; !errors.Is(err, ErrTimeout) {
		t.Errorf("loop: %v", err)
	}

	// The global bound: one guest at a time across tenants.
	h2 := newHost(t, &Options{MaxConcurrency: 1, Prewarm: -1, QueueTimeout: 50 * time.Millisecond, CallTimeout: time.Second})
	for _, tenant := range []string{"a", "b"} {
		if _, err := h2.Preprocess(ctx, tenant, m, "ok", nil); err != nil {
			t.Fatal(err)
		}
	}
	go func() {
		_, err := h2.Preprocess(ctx, "a", m, "loop", nil)
		done <- err
	}()
	waitFor(t, func() bool { return len(h2.sem) == 1 })
	if _, err := h2.Preprocess(ctx, "b", m, "ok", nil); !errors.Is(err, ErrBusy) {
		t.Errorf("concurrency exhausted: %v", err)
	}
	<-done
}

func TestIdleReclaim(t *testing.T) {
	h := newHost(t, &Options{IdleTimeout: 50 * time.Millisecond, Prewarm: -1})
	ctx := context.Background()
	m := mod(t, "identity")
	if _, err := h.Preprocess(ctx, "acme", m, "", nil); err != nil {
		t.Fatal(err)
	}
	p, _ := h.mustPool(ctx, "acme", m)
	if s := p.stats(); s.idle != 1 {
		t.Fatalf("after a call: %+v", s)
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.stats().total != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("idle instance not reclaimed: %+v", p.stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// And the pool still works.
	if _, err := h.Preprocess(ctx, "acme", m, "", nil); err != nil {
		t.Fatal(err)
	}
}

func TestModuleErrors(t *testing.T) {
	h := newHost(t, &Options{InitTimeout: 100 * time.Millisecond})
	ctx := context.Background()
	good := mod(t, "identity")
	cases := []struct {
		mod Module
		err error
	}{
		{Module{SHA256: "abc", Load: good.Load}, ErrInvalidModule},
		{Module{SHA256: mod(t, "top-k").SHA256, Load: good.Load}, ErrInvalidModule}, // bytes do not match the hash
		{Module{SHA256: good.SHA256}, ErrInvalidModule},                             // no loader
		{Module{SHA256: moduleOf([]byte("junk")).SHA256, Load: func(context.Context) ([]byte, error) { return []byte("junk"), nil }}, ErrInvalidModule},
		{Module{SHA256: good.SHA256, Load: func(context.Context) ([]byte, error) { return nil, errStore }}, errStore},
	}
	for i, c := range cases {
		if _, err := h.Preprocess(ctx, "acme", c.mod, "", nil); !errors.Is(err, c.err) {
			t.Errorf("%d: got %v, want %v", i, err, c.err)
		}
	}
	// A module whose start function never returns.
	loop := wasmasm.Echo()
	start := uint32(4)
	loop.Start = &start
	if _, err := h.Preprocess(ctx, "acme", moduleOf(loop.Bytes()), "", nil); !errors.Is(err, ErrTimeout) {
		t.Errorf("start loops: %v", err)
	}
	// A closed host.
	h.Close(ctx)
	if _, err := h.Preprocess(ctx, "acme", good, "", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("closed: %v", err)
	}
}

var errStore = errors.New("store down")

// The pool's hammer test: many goroutines, three tenants, small pools,
// correct results, hostile calls mixed in. Run under -race.
func TestHammer(t *testing.T) {
	h := newHost(t, &Options{PoolSize: 2, MaxConcurrency: 3, QueueTimeout: 5 * time.Second, CallTimeout: time.Second, IdleTimeout: 20 * time.Millisecond})
	ctx := context.Background()
	id, hostile := mod(t, "identity"), mod(t, "hostile")
	var wg sync.WaitGroup
	var ok, traps atomic.Int64
	for g := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tenant := fmt.Sprintf("t%d", g%3)
			for i := range 25 {
				if i%10 == 9 {
					if _, err := h.Preprocess(ctx, tenant, hostile, "panic", nil); !errors.Is(err, ErrTrap) {
						t.Errorf("%s: panic call: %v", tenant, err)
					}
					traps.Add(1)
					continue
				}
				v := []float32{float32(g), float32(i)}
				ts, err := h.Preprocess(ctx, tenant, id, "", rawF32(v))
				if err != nil {
					t.Errorf("%s: %v", tenant, err)
					return
				}
				got, _ := ts[0].Float32s(nil)
				if len(got) != 2 || got[0] != v[0] || got[1] != v[1] {
					t.Errorf("%s: got %v want %v", tenant, got, v)
				}
				body, _, err := h.Postprocess(ctx, tenant, id, &safetensors.File{Tensors: ts})
				if err != nil || len(body) == 0 {
					t.Errorf("%s: postprocess: %v", tenant, err)
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	t.Logf("%d good calls, %d traps", ok.Load(), traps.Load())
	for _, name := range []string{"t0", "t1", "t2"} {
		tt, _ := h.tenant(ctx, name)
		for _, p := range tt.pools {
			p.quiesce(t)
			if s := p.stats(); s.total > 2 {
				t.Errorf("%s: pool above its size: %+v", name, s)
			}
		}
	}
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
	}
}

// A discarded instance's memory must go back: after a memory bomb meets
// the cap, the Go heap and the process's RSS return to their level before.
// (They did not: the pool's idle slice kept the popped instance in its
// backing array, so every bomb left 128 MiB of dead linear memory
// reachable; and memory on the Go heap goes back to the OS only when the
// scavenger gets to it.)
func TestDiscardedInstanceMemoryIsFreed(t *testing.T) {
	for _, c := range placements {
		t.Run(c.name, func(t *testing.T) {
			h := newHost(t, &Options{CallTimeout: 30 * time.Second, MemoryLimitPages: 1024, PoolSize: 2}) // 64 MiB cap
			if c.memory != nil {
				h.memory = c.memory
			}
			ctx := context.Background()
			m := mod(t, "hostile")
			if _, err := h.Preprocess(ctx, "acme", m, "ok", nil); err != nil {
				t.Fatal(err)
			}
			live := func() uint64 {
				var ms runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&ms)
				return ms.HeapAlloc
			}
			p, err := h.mustPool(ctx, "acme", m)
			if err != nil {
				t.Fatal(err)
			}
			p.quiesce(t)
			before, rss0 := live(), selfRSS(t)
			for i := range 3 {
				if _, err := h.Preprocess(ctx, "acme", m, "bomb", nil); !errors.Is(err, ErrLimit) {
					t.Fatalf("bomb %d: %v, want ErrLimit", i, err)
				}
				p.quiesce(t) // the replacement instance is in place
				// A goroutine of wazero's that watched the call's deadline
				// may hold the module for a moment: judge what stays.
				after := live()
				for deadline := time.Now().Add(5 * time.Second); after > before+16<<20 && time.Now().Before(deadline); {
					time.Sleep(50 * time.Millisecond)
					after = live()
				}
				t.Logf("bomb %d: live heap %d → %d MiB, RSS %d → %d MiB", i, before>>20, after>>20, rss0>>20, selfRSS(t)>>20)
				// One fresh instance is a few MiB; a retained bomb is the whole cap.
				if after > before+16<<20 {
					t.Fatalf("bomb %d: live heap grew from %d MiB to %d MiB: the discarded instance's memory is still reachable", i, before>>20, after>>20)
				}
			}
			// Unmapped memory leaves RSS at once; heap memory only when the
			// scavenger runs, so the fallback is not held to it.
			if rss := selfRSS(t); c.memory == nil && runtime.GOOS == "linux" && rss > rss0+16<<20 {
				t.Errorf("RSS grew from %d MiB to %d MiB after the bombs", rss0>>20, rss>>20)
			}
		})
	}
}

// selfRSS is this process's resident set in bytes (0 where /proc is not).
func selfRSS(t *testing.T) uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, rss uint64
	fmt.Sscan(string(b), &size, &rss)
	return rss * uint64(os.Getpagesize())
}

// placements are the two homes of linear memory the tests compare: the
// platform's (mapped on Unix; nil leaves the Host's default) and the heap.
var placements = []struct {
	name   string
	memory experimental.MemoryAllocator
}{{"mapped", nil}, {"heap", heapAllocator}}

// Deep recursion grows wazero's native call stack on the Go heap until the
// deadline stops it; once the instance is discarded, the scavenger hands
// that memory back, so the process's RSS returns close to its level before.
func TestDeepRecursionMemoryReturns(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads RSS from /proc")
	}
	h := newHost(t, &Options{CallTimeout: 2 * time.Second, PoolSize: 2})
	ctx := context.Background()
	m := mod(t, "hostile")
	if _, err := h.Preprocess(ctx, "acme", m, "ok", nil); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	rss0 := selfRSS(t)
	_, err := h.Preprocess(ctx, "acme", m, "recurse", nil)
	if !errors.Is(err, ErrTimeout) && !errors.Is(err, ErrTrap) && !errors.Is(err, ErrLimit) {
		t.Fatalf("recurse: %v", err)
	}
	peak := selfRSS(t)
	rss := peak
	for deadline := time.Now().Add(10 * time.Second); rss > rss0+32<<20 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		rss = selfRSS(t)
	}
	t.Logf("RSS %d MiB before, %d MiB right after the call, %d MiB settled (%v)", rss0>>20, peak>>20, rss>>20, err)
	if rss > rss0+32<<20 {
		t.Errorf("RSS stayed at %d MiB after the recursion (from %d MiB)", rss>>20, rss0>>20)
	}
}

// Stats counts each tenant's instances and their memory, follows an
// instance's growth at its next check-in, and drops what is discarded.
func TestStats(t *testing.T) {
	h := newHost(t, &Options{Prewarm: -1, HighWaterBytes: 64 << 20})
	ctx := context.Background()
	m := mod(t, "hostile")
	if got := h.Stats(); len(got) != 0 {
		t.Fatalf("before any call: %+v", got)
	}
	for _, tenant := range []string{"b", "a"} {
		if _, err := h.Preprocess(ctx, tenant, m, "ok", nil); err != nil {
			t.Fatal(err)
		}
	}
	got := h.Stats()
	if len(got) != 2 || got[0].Tenant != "a" || got[1].Tenant != "b" {
		t.Fatalf("want tenants a, b in order: %+v", got)
	}
	p, _ := h.mustPool(ctx, "b", m)
	base := p.idle[0].memBytes()
	for _, s := range got {
		if s.Idle != 1 || s.Busy != 0 || s.MemoryBytes != int64(base) {
			t.Errorf("after one call: %+v, want 1 idle instance of %d bytes", s, base)
		}
	}
	// Keep 8 MiB in b's instance: its memory grows, and Stats sees it.
	if _, err := h.Preprocess(ctx, "b", m, "keep;8192", nil); err != nil {
		t.Fatal(err)
	}
	grown := p.idle[0].memBytes()
	if grown < base+8<<20 {
		t.Fatalf("keep;8192 grew memory from %d to only %d bytes", base, grown)
	}
	if s := h.Stats()[1]; s.MemoryBytes != int64(grown) {
		t.Errorf("after growth: %+v, want %d bytes", s, grown)
	}
	// A trap discards the instance: nothing is left counted.
	if _, err := h.Preprocess(ctx, "b", m, "panic", nil); err == nil {
		t.Fatal("panic mode did not fail")
	}
	if s := h.Stats()[1]; s.Idle != 0 || s.Busy != 0 || s.MemoryBytes != 0 {
		t.Errorf("after the discard: %+v, want nothing", s)
	}
	if s := h.Stats()[0]; s.MemoryBytes != int64(base) {
		t.Errorf("tenant a changed with b: %+v", s)
	}
}

// TestIdleMemoryCaps: an instance is kept warm only while the tenant's
// and the process's idle instances stay within their memory caps;
// otherwise it is closed after its call (which succeeds) and the next call
// starts a fresh one. Concurrent calls of several tenants never leave more
// idle memory than the caps.
func TestIdleMemoryCaps(t *testing.T) {
	ctx := context.Background()
	m := mod(t, "hostile")
	call := func(h *Host, tenant string) {
		if _, err := h.Preprocess(ctx, tenant, m, "keep;1024", nil); err != nil {
			t.Fatal(err)
		}
	}
	// A tenant cap below one instance's memory (a Go guest starts at ~4 MiB):
	// nothing stays warm.
	h := newHost(t, &Options{PoolSize: 1, Prewarm: -1, MaxTenantIdleMemory: 1 << 20})
	for range 3 {
		call(h, "a")
	}
	p, _ := h.mustPool(ctx, "a", m)
	if s := p.stats(); s.idle != 0 || s.created != 3 {
		t.Fatalf("under a 1 MiB tenant cap: %+v, want no idle instance and one creation a call", s)
	}
	ta, _ := h.tenant(ctx, "a")
	if ta.idleBytes.Load() != 0 || h.idleBytes.Load() != 0 {
		t.Fatalf("idle bytes %d (tenant), %d (host), want 0", ta.idleBytes.Load(), h.idleBytes.Load())
	}
	// Room for it: the instance stays warm and is reused.
	h = newHost(t, &Options{PoolSize: 1, Prewarm: -1})
	for range 3 {
		call(h, "a")
	}
	p, _ = h.mustPool(ctx, "a", m)
	ta, _ = h.tenant(ctx, "a")
	if s := p.stats(); s.idle != 1 || s.created != 1 || ta.idleBytes.Load() != int64(s.memBytes) || h.idleBytes.Load() != int64(s.memBytes) {
		t.Fatalf("with room: %+v, idle bytes %d / %d", s, ta.idleBytes.Load(), h.idleBytes.Load())
	}
	// Many tenants and instances at once against small caps.
	const tenantCap, hostCap = 24 << 20, 40 << 20
	h = newHost(t, &Options{PoolSize: 4, Prewarm: -1, MaxTenantIdleMemory: tenantCap, MaxIdleMemory: hostCap})
	var wg sync.WaitGroup
	for i := range 12 {
		tenant := fmt.Sprint("t", i%3)
		wg.Go(func() {
			for range 5 {
				call(h, tenant)
			}
		})
	}
	wg.Wait()
	var total int64
	for i := range 3 {
		tt, _ := h.tenant(ctx, fmt.Sprint("t", i))
		pp, _ := h.mustPool(ctx, tt.name, m)
		pp.quiesce(t)
		if b := tt.idleBytes.Load(); b > tenantCap || b != int64(pp.stats().memBytes) {
			t.Errorf("tenant %s: %d idle bytes (pool counts %d), cap %d", tt.name, b, pp.stats().memBytes, tenantCap)
		}
		total += tt.idleBytes.Load()
	}
	if got := h.idleBytes.Load(); got > hostCap || got != total {
		t.Errorf("host: %d idle bytes (tenants' sum %d), cap %d", got, total, hostCap)
	}
}
