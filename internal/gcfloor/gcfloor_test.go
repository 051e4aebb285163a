package gcfloor

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	for _, tc := range []struct {
		base     int
		headroom int64
		scan     uint64
		want     int
	}{
		{100, 64 << 20, 16 << 20, 400},      // small heap: the floor decides
		{100, 64 << 20, 15 << 20, 427},      // rounded up, never short of it
		{100, 64 << 20, 64 << 20, 100},      // at the crossover
		{100, 64 << 20, 1 << 30, 100},       // large heap: GOGC's
		{200, 64 << 20, 64 << 20, 200},      // a user's larger GOGC wins
		{100, 64 << 20, 0, MaxPercent},      // nothing live yet
		{100, 1 << 30, 1 << 20, MaxPercent}, // capped
		{100, 0, 1 << 20, 100},              // no headroom
		{50, 64 << 20, 256 << 20, 50},       // a user's smaller GOGC kept too
		{100, 64 << 20, 48 << 20, 134},      // 48 MiB + 64.3 MiB ≥ 48 + 64
		{100, 1, math.MaxUint64 / 200, 100}, // no overflow on huge heaps
	} {
		if got := Percent(tc.base, tc.headroom, tc.scan); got != tc.want {
			t.Errorf("Percent(%d, %d, %d) = %d, want %d", tc.base, tc.headroom, tc.scan, got, tc.want)
		}
	}
}

func TestHeadroom(t *testing.T) {
	if got := Headroom(64<<20, 0); got != 64<<20 {
		t.Errorf("no limit: %d", got)
	}
	if got := Headroom(64<<20, 128<<20); got != 32<<20 {
		t.Errorf("a 128 MiB function: %d, want a quarter of it", got)
	}
	if got := Headroom(64<<20, 8<<30); got != 64<<20 {
		t.Errorf("a large limit: %d", got)
	}
	old := debug.SetMemoryLimit(512 << 20)
	defer debug.SetMemoryLimit(old)
	if got := MemoryLimit(); got != 512<<20 {
		t.Errorf("MemoryLimit() under GOMEMLIMIT=512MiB = %d", got)
	}
	if got := MemoryLimit(0, 256<<20, 1<<30); got != 256<<20 {
		t.Errorf("MemoryLimit(0, 256 MiB, 1 GiB) = %d, want the smallest", got)
	}
	debug.SetMemoryLimit(math.MaxInt64)
	if got := MemoryLimit(); got != 0 {
		t.Errorf("MemoryLimit() with no limit = %d", got)
	}
}

// read returns the runtime's GC percent, heap goal and live heap.
func read() (percent int, goal, live uint64) {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/heap/goal:bytes"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return int(int64(s[0].Value.Uint64())), s[1].Value.Uint64(), s[2].Value.Uint64()
}

// waitFor runs collections until cond holds: the floor adjusts from a
// cleanup, which runs on its own goroutine some time after a cycle.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); {
		runtime.GC()
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	p, goal, live := read()
	t.Fatalf("%s: never (percent %d, goal %d, live %d)", what, p, goal, live)
}

// liveHeap returns n bytes of live, pointer-free heap, touched.
func liveHeap(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func TestFloorRaisesTheGoalOfASmallHeap(t *testing.T) {
	base, _, _ := read()
	if base <= 0 {
		t.Skip("GOGC=off")
	}
	live := liveHeap(16 << 20) // the floor's percent for it: 400 %, under the cap
	const headroom = 64 << 20
	stop := Start(headroom)
	t.Cleanup(stop)
	waitFor(t, "goal ≥ live + headroom", func() bool {
		p, goal, live := read()
		return p > base && goal >= live+headroom
	})
	runtime.KeepAlive(live)
	stop()
	if p, _, _ := read(); p != base {
		t.Errorf("percent %d after stop, want the %d it found", p, base)
	}
	// A cycle after the stop leaves the restored percent alone.
	runtime.GC()
	runtime.GC()
	time.Sleep(10 * time.Millisecond)
	if p, _, _ := read(); p != base {
		t.Errorf("percent %d after a cycle past stop, want %d", p, base)
	}
}

// A heap live well above the headroom keeps GOGC's goal: the floor adds
// at most headroom bytes, never a multiple of the heap.
func TestFloorLeavesALargeHeapAlone(t *testing.T) {
	base, _, _ := read()
	if base <= 0 {
		t.Skip("GOGC=off")
	}
	stop := Start(4 << 20)
	t.Cleanup(stop)
	big := liveHeap(128 << 20)
	waitFor(t, "percent back to GOGC's under a 128 MiB live heap", func() bool {
		p, _, _ := read()
		return p == base
	})
	runtime.KeepAlive(big)
	// And raised again once it is gone.
	big = nil
	waitFor(t, "percent raised again when the heap shrinks", func() bool {
		p, _, _ := read()
		return p > base
	})
}

func TestFloorSharedAndOff(t *testing.T) {
	base, _, _ := read()
	if base <= 0 {
		t.Skip("GOGC=off")
	}
	live := liveHeap(16 << 20)
	stop1 := Start(32 << 20)
	stop2 := Start(64 << 20) // the larger headroom wins
	t.Cleanup(stop1)
	t.Cleanup(stop2)
	waitFor(t, "goal ≥ live + the larger headroom", func() bool {
		_, goal, live := read()
		return goal >= live+64<<20
	})
	runtime.KeepAlive(live)
	stop1()
	stop1() // twice is once
	if p, _, _ := read(); p == base {
		t.Fatal("the first stop ended the floor the second Start still holds")
	}
	stop2()
	if p, _, _ := read(); p != base {
		t.Fatalf("percent %d after the last stop, want %d", p, base)
	}

	// With the collector off, nothing is changed.
	debug.SetGCPercent(-1)
	defer debug.SetGCPercent(base)
	stop := Start(64 << 20)
	runtime.GC()
	if p, _, _ := read(); p != -1 {
		t.Errorf("percent %d under GOGC=off", p)
	}
	stop()
	if p, _, _ := read(); p != -1 {
		t.Errorf("percent %d under GOGC=off after stop", p)
	}
	// A headroom of 0 is no floor.
	debug.SetGCPercent(base)
	Start(0)()
	if p, _, _ := read(); p != base {
		t.Errorf("Start(0) changed the percent to %d", p)
	}
}
