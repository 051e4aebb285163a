package quota

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRateQuotaPerTenant(t *testing.T) {
	l := New(&Options{RPS: 10, Burst: 5})
	now := time.Unix(1000, 0)
	for i := 0; i < 5; i++ {
		d, rel := l.Acquire("a", now)
		if !d.OK || d.Limit != 5 || d.Remaining != 4-i {
			t.Fatalf("request %d: %+v", i, d)
		}
		rel()
	}
	d, _ := l.Acquire("a", now)
	if d.OK || d.Reason != "rate" || d.RetryAfter <= 0 || d.RetryAfter > 100*time.Millisecond {
		t.Fatalf("6th request: %+v", d)
	}
	// Another tenant is unaffected.
	if d, _ := l.Acquire("b", now); !d.OK {
		t.Fatalf("tenant b refused: %+v", d)
	}
	// After 100 ms one token is back.
	if d, _ := l.Acquire("a", now.Add(100*time.Millisecond)); !d.OK {
		t.Fatalf("refused after refill: %+v", d)
	}
}

func TestConcurrencyQuota(t *testing.T) {
	l := New(&Options{Concurrency: 2})
	now := time.Now()
	_, r1 := l.Acquire("a", now)
	_, r2 := l.Acquire("a", now)
	if d, _ := l.Acquire("a", now); d.OK || d.Reason != "concurrency" {
		t.Fatalf("third in-flight admitted: %+v", d)
	}
	r1()
	r1() // releasing twice must not free two slots
	_, r3 := l.Acquire("a", now)
	if d, _ := l.Acquire("a", now); d.OK {
		t.Fatalf("double release freed two slots: %+v", d)
	}
	r2()
	r3()
}

func TestNilOptionsAdmitEverything(t *testing.T) {
	l := New(nil)
	for i := 0; i < 10000; i++ {
		d, rel := l.Acquire("a", time.Now())
		if !d.OK {
			t.Fatal("refused with no quota")
		}
		rel()
	}
}

func TestHammer(t *testing.T) {
	l := New(&Options{Concurrency: 4, RPS: 1e9, Burst: 1 << 20})
	var inflight, peak atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				d, rel := l.Acquire("t", time.Now())
				if !d.OK {
					continue
				}
				n := inflight.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				inflight.Add(-1)
				rel()
			}
		}()
	}
	wg.Wait()
	if peak.Load() > 4 {
		t.Fatalf("peak in-flight %d > 4", peak.Load())
	}
}
