package share

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// enter starts Enter in a goroutine and returns a channel that yields its
// release once admitted.
func enter(ctx context.Context, g *Gate, t string) <-chan func() {
	ch := make(chan func(), 1)
	go func() {
		if err := g.Enter(ctx, t); err != nil {
			close(ch)
			return
		}
		ch <- func() { g.Leave(t) }
	}()
	return ch
}

// admitted reports whether the Enter behind ch has returned by the time
// every goroutine of the bubble is blocked, and its release if so.
func admitted(t *testing.T, ch <-chan func()) (func(), bool) {
	t.Helper()
	synctest.Wait()
	select {
	case rel, ok := <-ch:
		if !ok {
			t.Fatal("Enter failed")
		}
		return rel, true
	default:
		return nil, false
	}
}

// heavyBesideB makes b active (one request, already over), runs a's first
// request for 10 ms, so a has run more than b, and returns its release.
func heavyBesideB(t *testing.T, g *Gate) func() {
	t.Helper()
	relB, _ := admitted(t, enter(t.Context(), g, "b"))
	relB()
	a1, _ := admitted(t, enter(t.Context(), g, "a"))
	time.Sleep(10 * time.Millisecond)
	return a1
}

func TestLoneTenantUnlimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := New(2, time.Second)
		var rels []func()
		for range 16 {
			rel, ok := admitted(t, enter(t.Context(), g, "a"))
			if !ok {
				t.Fatalf("request %d of a lone tenant waited", len(rels)+1)
			}
			rels = append(rels, rel)
		}
		if n := g.Running("a"); n != 16 {
			t.Fatalf("running %d, want 16", n)
		}
		for _, r := range rels {
			r()
		}
		if n := g.Running("a"); n != 0 {
			t.Fatalf("running %d after all released", n)
		}
	})
}

func TestShareWhileAnotherTenantIsActive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := New(2, time.Second)
		ctx := t.Context()
		// b is active: one request, already over.
		relB, _ := admitted(t, enter(ctx, g, "b"))
		relB()
		a1, ok := admitted(t, enter(ctx, g, "a"))
		if !ok {
			t.Fatal("a's first request waited")
		}
		time.Sleep(10 * time.Millisecond) // a has run more than b now
		// a has one running; a second would leave no processor for b.
		a2ch := enter(ctx, g, "a")
		if _, ok := admitted(t, a2ch); ok {
			t.Fatal("a's second request ran while b is active with nothing running")
		}
		// b, with nothing running, is admitted at once, also behind a's
		// waiting request.
		b2, ok := admitted(t, enter(ctx, g, "b"))
		if !ok {
			t.Fatal("b waited behind a")
		}
		// Both processors are taken (a 1, b 1): a's waiter still waits
		// when b ends, since b stays active for the window...
		b2()
		if _, ok := admitted(t, a2ch); ok {
			t.Fatal("a's second request ran with b still active")
		}
		// ...and runs when a's first ends.
		a1()
		a2, ok := admitted(t, a2ch)
		if !ok {
			t.Fatal("a's waiting request not admitted after a's release")
		}
		a2()
		if g.Running("a") != 0 || g.Running("b") != 0 || g.Waiting() != 0 {
			t.Fatalf("left: a %d b %d waiting %d", g.Running("a"), g.Running("b"), g.Waiting())
		}
	})
}

func TestWindowLapses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := New(2, time.Second)
		ctx := t.Context()
		a1 := heavyBesideB(t, g)
		a2ch := enter(ctx, g, "a")
		time.Sleep(500 * time.Millisecond)
		if _, ok := admitted(t, a2ch); ok {
			t.Fatal("admitted within b's window")
		}
		// Nobody releases anything: the lapse of b's window alone must
		// let a's request run.
		time.Sleep(2 * time.Second)
		a2, ok := admitted(t, a2ch)
		if !ok {
			t.Fatal("a's request still waits after b's window lapsed")
		}
		a1()
		a2()
		// b, idle past the window, is forgotten at the next scan.
		time.Sleep(2 * time.Second)
		r, _ := admitted(t, enter(ctx, g, "a"))
		r()
		g.mu.Lock()
		_, kept := g.tenants["b"]
		g.mu.Unlock()
		if kept {
			t.Fatal("an idle tenant is kept past its window")
		}
	})
}

func TestThreeTenantsOnFourSlots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := New(4, time.Second)
		ctx := t.Context()
		for _, n := range []string{"b", "c"} {
			r, _ := admitted(t, enter(ctx, g, n))
			r()
		}
		// Two slots stay free for b and c: a runs two.
		var rels []func()
		for i := range 3 {
			time.Sleep(10 * time.Millisecond) // a has run more than b and c
			r, ok := admitted(t, enter(ctx, g, "a"))
			if i < 2 && !ok {
				t.Fatalf("a's request %d waited", i+1)
			}
			if i == 2 {
				if ok {
					t.Fatal("a ran a third request with b and c active")
				}
				break
			}
			rels = append(rels, r)
		}
		// b runs one: c still needs its slot, so a stays at two.
		rb, _ := admitted(t, enter(ctx, g, "b"))
		if g.Running("a") != 2 {
			t.Fatalf("a runs %d", g.Running("a"))
		}
		rb()
		for _, r := range rels {
			r()
		}
		synctest.Wait()
		if g.Running("a") != 1 {
			t.Fatalf("a's waiter not admitted: a runs %d", g.Running("a"))
		}
	})
}

func TestCancelWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := New(2, time.Second)
		a1 := heavyBesideB(t, g)
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		err := g.Enter(ctx, "a")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Enter past its deadline: %v", err)
		}
		if g.Waiting() != 0 || g.Running("a") != 1 {
			t.Fatalf("after a cancelled wait: waiting %d, a runs %d", g.Waiting(), g.Running("a"))
		}
		a1()
		synctest.Wait()
		if g.Running("a") != 0 {
			t.Fatalf("the cancelled waiter was admitted: a runs %d", g.Running("a"))
		}
	})
}

func TestPauseLetsTheTenantsNextRequestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := New(2, time.Second)
		ctx := t.Context()
		a1 := heavyBesideB(t, g)
		a2ch := enter(ctx, g, "a")
		if _, ok := admitted(t, a2ch); ok {
			t.Fatal("admitted before the pause")
		}
		resume := g.Pause("a")
		a2, ok := admitted(t, a2ch)
		if !ok {
			t.Fatal("a's request still waits while a's other request is paused")
		}
		// Resuming, a1 waits for a's turn: a2 runs on a's share.
		resumed := make(chan struct{})
		go func() { resume(); close(resumed) }()
		synctest.Wait()
		select {
		case <-resumed:
			t.Fatal("resume did not wait for a's share")
		default:
		}
		a2()
		<-resumed
		if g.Running("a") != 1 {
			t.Fatalf("a runs %d after resume", g.Running("a"))
		}
		a1()
		if g.Running("a") != 0 {
			t.Fatalf("a runs %d", g.Running("a"))
		}
	})
}

// TestResumeWaitsAtMostResumeWait: a paused request whose tenant's share
// stays full resumes after ResumeWait anyway, over the share (the request
// holding the share might be waiting for it).
func TestResumeWaitsAtMostResumeWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := New(2, time.Minute)
		ctx := t.Context()
		a1 := heavyBesideB(t, g)
		a2ch := enter(ctx, g, "a")
		resume := g.Pause("a")
		a2, ok := admitted(t, a2ch)
		if !ok {
			t.Fatal("a's request still waits while a's other request is paused")
		}
		t0 := time.Now()
		resume()
		if waited := time.Since(t0); waited != ResumeWait {
			t.Fatalf("resume waited %v, want ResumeWait (%v)", waited, ResumeWait)
		}
		if g.Running("a") != 2 {
			t.Fatalf("a runs %d after resume", g.Running("a"))
		}
		a1()
		a2()
		if g.Running("a") != 0 || g.Waiting() != 0 {
			t.Fatalf("a runs %d, %d waiting", g.Running("a"), g.Waiting())
		}
	})
}

func TestNilGate(t *testing.T) {
	var g *Gate = New(2, 0)
	if g != nil {
		t.Fatal("a zero window makes a gate")
	}
	if err := g.Enter(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	g.Leave("a")
	g.Pause("a")()
	if g.Running("a") != 0 || g.Waiting() != 0 {
		t.Fatal("a nil gate counts")
	}
}

// TestConcurrentUse runs many tenants' requests at once under -race: every
// request ends admitted or cancelled, and nothing stays held.
func TestConcurrentUse(t *testing.T) {
	g := New(2, 5*time.Millisecond)
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			tn := string(rune('a' + i%4))
			for j := range 200 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(j%3)*time.Millisecond)
				err := g.Enter(ctx, tn)
				cancel()
				if err != nil {
					continue
				}
				if j%5 == 0 {
					g.Pause(tn)()
				}
				g.Leave(tn)
			}
		})
	}
	wg.Wait()
	for _, tn := range []string{"a", "b", "c", "d"} {
		if n := g.Running(tn); n != 0 {
			t.Errorf("%s runs %d after all ended", tn, n)
		}
	}
	if g.Waiting() != 0 || g.held != 0 {
		t.Errorf("waiting %d, held %d", g.Waiting(), g.held)
	}
}

func TestAwaitPausesOnlySlowWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := New(2, time.Second)
		ctx := t.Context()
		a1 := heavyBesideB(t, g)
		a2ch := enter(ctx, g, "a")
		// A quick wait does not step aside.
		g.Await("a", 2*time.Millisecond, func() {})
		if _, ok := admitted(t, a2ch); ok {
			t.Fatal("a quick wait let a's next request run")
		}
		// A slow one does, for as long as it lasts.
		release := make(chan struct{})
		awaited := make(chan struct{})
		go func() {
			g.Await("a", 2*time.Millisecond, func() { <-release })
			close(awaited)
		}()
		time.Sleep(5 * time.Millisecond)
		a2, ok := admitted(t, a2ch)
		if !ok {
			t.Fatal("a slow wait held back a's next request")
		}
		close(release)
		synctest.Wait()
		a2() // the slow wait's request resumes on a's share
		<-awaited
		if g.Running("a") != 1 {
			t.Fatalf("a runs %d after the slow wait", g.Running("a"))
		}
		a1()
		if g.Running("a") != 0 {
			t.Fatalf("a runs %d", g.Running("a"))
		}
	})
}

// TestLightTenantNotHeldBack: while a heavy tenant takes turns, a light
// one runs its requests side by side (its inference beside its upload).
func TestLightTenantNotHeldBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := New(2, time.Second)
		ctx := t.Context()
		a1, _ := admitted(t, enter(ctx, g, "a"))
		time.Sleep(time.Second) // a has run for a second
		b1, _ := admitted(t, enter(ctx, g, "b"))
		time.Sleep(10 * time.Millisecond)
		b2, ok := admitted(t, enter(ctx, g, "b"))
		if !ok {
			t.Fatal("the light tenant's second request waited")
		}
		// Three run on two processors: a's next waits, whatever b does.
		if _, ok := admitted(t, enter(ctx, g, "a")); ok {
			t.Fatal("the heavy tenant ran a second request with every processor taken")
		}
		b1()
		b2()
		a1()
	})
}

func TestEnterAllocatesNothing(t *testing.T) {
	g := New(2, time.Second)
	ctx := context.Background()
	g.Enter(ctx, "a") // the tenant's entry exists from here on
	g.Leave("a")
	if n := testing.AllocsPerRun(100, func() {
		if err := g.Enter(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		g.Leave("a")
	}); n != 0 {
		t.Fatalf("Enter and Leave allocate %v times", n)
	}
}

// TestActive counts tenants running or seen within the window, except the
// one named.
func TestActive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := New(2, time.Second)
		relA, _ := admitted(t, enter(t.Context(), g, "a"))
		relB, _ := admitted(t, enter(t.Context(), g, "b"))
		relB()
		relP, _ := admitted(t, enter(t.Context(), g, "probe"))
		relP()
		if n := g.Active("probe"); n != 2 {
			t.Fatalf("a running, b just done: %d active, want 2", n)
		}
		time.Sleep(2 * time.Second)
		if n := g.Active("probe"); n != 1 {
			t.Fatalf("b past the window, a still running: %d active, want 1", n)
		}
		relA()
		time.Sleep(2 * time.Second)
		if n := g.Active(""); n != 0 {
			t.Fatalf("everyone past the window: %d active, want 0", n)
		}
		if n := (*Gate)(nil).Active(""); n != 0 {
			t.Fatalf("a nil gate: %d", n)
		}
	})
}

// fakePressure is a Pressure whose stall grows at rate (0: calm, 1: some
// task always waiting) of the bubble's time.
type fakePressure struct {
	mu      sync.Mutex
	rate    float64
	at      time.Time
	stalled time.Duration
	down    bool
}

func (f *fakePressure) set(rate float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.advance()
	f.rate = rate
}

func (f *fakePressure) advance() {
	now := time.Now()
	if !f.at.IsZero() {
		f.stalled += time.Duration(f.rate * float64(now.Sub(f.at)))
	}
	f.at = now
}

func (f *fakePressure) read() (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.advance()
	return f.stalled, !f.down
}

// lightLoad runs b's request every 10 ms for d, each for 1 ms, and
// fails the test if one of them waits.
func lightLoad(t *testing.T, g *Gate, d time.Duration) { t.Helper(); loadB(t, g, d, time.Millisecond) }

// loadB runs b's request every 10 ms for d, each for busy, and fails the
// test if one of them waits.
func loadB(t *testing.T, g *Gate, d, busy time.Duration) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); {
		rel, ok := admitted(t, enter(t.Context(), g, "b"))
		if !ok {
			t.Fatalf("the light tenant waited (limit %.2f)", g.Limit())
		}
		time.Sleep(busy)
		rel()
		time.Sleep(10*time.Millisecond - busy)
	}
}

func TestPressureHoldsBackTheHeavyTenant(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &fakePressure{}
		g := New(2, time.Second).UsePressure(p.read)
		// a has kept one processor busy for a second beside light b.
		a1, _ := admitted(t, enter(t.Context(), g, "a"))
		lightLoad(t, g, time.Second)
		a1()
		if l := g.Limit(); l != 2 {
			t.Fatalf("limit %.2f without pressure, want 2 (none)", l)
		}
		// Without pressure a, with nothing running, is admitted at once.
		a2, ok := admitted(t, enter(t.Context(), g, "a"))
		if !ok {
			t.Fatal("the heavy tenant waited with the CPU not contended")
		}
		a2()
		// The CPU is contended: the limit falls to its floor while b keeps
		// being admitted at once.
		p.set(1)
		lightLoad(t, g, 300*time.Millisecond)
		if l := g.Limit(); l != limitFloor {
			t.Fatalf("limit %.2f after 300 ms of pressure, want %.2f", l, limitFloor)
		}
		// a, over the limit and over 1.5 times b, waits even with nothing
		// running...
		ach := enter(t.Context(), g, "a")
		if _, ok := admitted(t, ach); ok {
			t.Fatal("the heavy tenant ran over the limit while the CPU is contended")
		}
		// ...until its running time has decayed below the limit (b
		// keeps coming: it is never held).
		start := time.Now()
		lightLoad(t, g, 50*time.Millisecond)
		var rel func()
		for rel == nil {
			if time.Since(start) > 5*time.Second {
				t.Fatal("the heavy tenant's request still waits after 5 s")
			}
			time.Sleep(5 * time.Millisecond)
			rel, _ = admitted(t, ach)
		}
		if waited := time.Since(start); waited < time.Second {
			t.Errorf("the heavy tenant waited %v; its use (~0.47) takes ~1.1 s to decay below 1.5 times b's", waited)
		}
		rel()
		// The contention ends: the limit grows back to no limit.
		p.set(0)
		lightLoad(t, g, time.Second)
		if l := g.Limit(); l != 2 {
			t.Fatalf("limit %.2f a second after the pressure ended, want 2", l)
		}
	})
}

// The heavy tenant held back never falls below the light one, so the light
// one never becomes the tenant above the average that the limit holds.
func TestPressureNeverTradesPlaces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &fakePressure{rate: 1}
		g := New(2, time.Second).UsePressure(p.read)
		// a loops requests of 5 ms from two goroutines for 3 s.
		done := make(chan struct{})
		for range 2 {
			go func() {
				for {
					select {
					case <-done:
						return
					default:
					}
					if g.Enter(t.Context(), "a") != nil {
						return
					}
					time.Sleep(5 * time.Millisecond)
					g.Leave("a")
				}
			}()
		}
		// b, busy 3 ms in every 10 (well above the limit's floor), is
		// never held.
		loadB(t, g, 3*time.Second, 3*time.Millisecond)
		if l := g.Limit(); l != limitFloor {
			t.Errorf("limit %.2f after 3 s of pressure, want %.2f", l, limitFloor)
		}
		close(done)
	})
}

func TestPressureAloneOrUnreadable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &fakePressure{rate: 1}
		g := New(2, time.Second).UsePressure(p.read)
		// A lone tenant is never sampled nor held, whatever the pressure.
		for range 200 {
			rel, ok := admitted(t, enter(t.Context(), g, "a"))
			if !ok {
				t.Fatal("a lone tenant waited")
			}
			time.Sleep(10 * time.Millisecond)
			rel()
		}
		if l := g.Limit(); l != 2 {
			t.Fatalf("limit %.2f for a lone tenant", l)
		}
		// With b, the limit falls; once the source cannot be read, it is
		// lifted.
		a1, _ := admitted(t, enter(t.Context(), g, "a"))
		lightLoad(t, g, 300*time.Millisecond)
		if l := g.Limit(); l >= 2 {
			t.Fatalf("limit %.2f under pressure beside b", l)
		}
		p.mu.Lock()
		p.down = true
		p.mu.Unlock()
		lightLoad(t, g, 20*time.Millisecond)
		if l := g.Limit(); l != 2 {
			t.Fatalf("limit %.2f with the source unreadable, want 2", l)
		}
		a1()
	})
}

func TestParsePressure(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"some avg10=4.81 avg60=12.83 avg300=12.57 total=17552743758\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", 17552743758 * time.Microsecond, true},
		{"some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", 0, true},
		{"full avg10=0.00 avg60=0.00 avg300=0.00 total=5\n", 0, false},
		{"some avg10=0.00 total=x\n", 0, false},
		{"some avg10=0.00\n", 0, false},
		{"some total=99999999999999999999\n", 0, false},
		{"", 0, false},
	} {
		got, ok := parsePressure([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("parsePressure(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	// This machine's, when it has one.
	if p := CPUPressure(); p != nil {
		if _, ok := p(); !ok {
			t.Error("CPUPressure returned a source it cannot read")
		}
	}
}

// The platform's probes (the background tenant) are shared like a tenant
// but never make another back off under pressure: a lone customer beside
// a readiness probe keeps its throughput on a busy machine.
func TestPressureIgnoresBackground(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &fakePressure{rate: 1}
		g := New(2, time.Second).UsePressure(p.read).Background("probe")
		for range 100 { // a second of a's requests of 10 ms, a probe each
			probe, ok := admitted(t, enter(t.Context(), g, "probe"))
			if !ok {
				t.Fatal("the probe waited")
			}
			probe()
			rel, ok := admitted(t, enter(t.Context(), g, "a"))
			if !ok {
				t.Fatalf("a waited beside the probe alone (limit %.2f)", g.Limit())
			}
			time.Sleep(10 * time.Millisecond)
			rel()
		}
		if l := g.Limit(); l != 2 {
			t.Errorf("limit %.2f: the gate sampled with one tenant beside the probe", l)
		}
		// With a second tenant it does.
		a1, _ := admitted(t, enter(t.Context(), g, "a"))
		lightLoad(t, g, 300*time.Millisecond)
		if l := g.Limit(); l >= 2 {
			t.Errorf("limit %.2f beside b under pressure", l)
		}
		a1()
	})
}

// A request admitted by the release of its tenant's previous one does
// not run ahead of work that was already waiting for the processor: the
// wake-up put it in the processor's next slot, and a chain of those (the
// heavy tenant's requests taking turns through the gate) kept the light
// tenant's request, woken by the network meanwhile, waiting. One
// processor makes the order observable: the light goroutine readied
// before the release runs first.
func TestAdmittedWaiterGoesBehindQueuedWork(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	synctest.Test(t, func(t *testing.T) {
		g := New(1, time.Second)
		a1 := heavyBesideB(t, g)
		order := make(chan string, 2)
		go func() {
			if err := g.Enter(t.Context(), "a"); err != nil {
				t.Error(err)
			}
			order <- "heavy, admitted"
			g.Leave("a")
		}()
		light := make(chan struct{})
		go func() {
			<-light
			order <- "light, queued first"
		}()
		synctest.Wait() // both blocked: the heavy one in Enter
		close(light)    // the light one is runnable...
		a1()            // ...before the release admits the heavy one
		if first := <-order; first != "light, queued first" {
			t.Errorf("ran first: %s", first)
		}
		<-order
	})
}

// A request admitted at once, though behind another tenant's waiting
// ones, does not yield: only a wake-up by another goroutine's release
// inherits a time slice (TestAdmittedWaiterGoesBehindQueuedWork). The
// light tenant's requests, which find the heavy tenant's queued beside
// them, used to go to the back of the run queue every time.
func TestAdmittedAtOnceBehindWaitersDoesNotYield(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	synctest.Test(t, func(t *testing.T) {
		g := New(1, time.Second)
		a1 := heavyBesideB(t, g)
		a2 := enter(t.Context(), g, "a")
		if _, ok := admitted(t, a2); ok {
			t.Fatal("a's second request ran beside its first on one slot")
		}
		ran := make(chan struct{}, 1)
		light := make(chan struct{})
		go func() {
			<-light
			ran <- struct{}{}
		}()
		synctest.Wait()
		close(light) // runnable, on the only processor's queue
		if err := g.Enter(t.Context(), "b"); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ran:
			t.Error("b's Enter, admitted at once behind a's waiter, yielded its processor")
		default:
		}
		if g.Waiting() != 1 {
			t.Errorf("waiting: %d; want a's one", g.Waiting())
		}
		g.Leave("b")
		a1()
		rel, ok := admitted(t, a2)
		if !ok {
			t.Fatal("a's waiter not admitted after a's release")
		}
		rel()
	})
}
