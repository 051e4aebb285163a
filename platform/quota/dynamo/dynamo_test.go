package dynamo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aiaas/aiaas/internal/dynamodb"
	"github.com/aiaas/aiaas/internal/sigv4"
	"github.com/aiaas/aiaas/platform/quota"
)

// client returns a client of the dynalite that scripts/dynalite.sh started
// (AIAAS_TEST_DYNAMODB_ENDPOINT) and a fresh table on it. Without one the
// test skips, or fails when AIAAS_REQUIRE_DYNAMODB=1 (make test).
func client(t testing.TB) (*dynamodb.Client, string) {
	t.Helper()
	ep := os.Getenv("AIAAS_TEST_DYNAMODB_ENDPOINT")
	if ep == "" {
		if os.Getenv("AIAAS_REQUIRE_DYNAMODB") == "1" {
			t.Fatal("AIAAS_REQUIRE_DYNAMODB=1 but AIAAS_TEST_DYNAMODB_ENDPOINT is not set: eval \"$(scripts/dynalite.sh start)\"")
		}
		t.Skip("no DynamoDB: eval \"$(scripts/dynalite.sh start)\" sets AIAAS_TEST_DYNAMODB_ENDPOINT")
	}
	db := &dynamodb.Client{Endpoint: ep, Region: "us-east-1",
		Creds: func() sigv4.Credentials { return sigv4.Credentials{AccessKey: "test", SecretKey: "test"} }}
	var b [6]byte
	_, _ = rand.Read(b[:])
	table := "quota-" + hex.EncodeToString(b[:])
	if err := db.CreateTable(context.Background(), table, HashKey); err != nil {
		t.Fatal(err)
	}
	return db, table
}

// newLimiter is New for a test: its warnings go to the test log, and a
// DynamoDB call may take 10 s (dynalite on a loaded machine is slow; a
// timeout would fall back, and the test would see per-process quotas).
// Unless the test wants fallbacks, it fails if any happened.
func newLimiter(t testing.TB, db *dynamodb.Client, table string, o Options) *Limiter {
	t.Helper()
	if o.CallTimeout == 0 {
		o.CallTimeout = 10 * time.Second
	}
	o.Logger = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	l, err := New(db, table, &o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func noFallbacks(t testing.TB, ls ...*Limiter) {
	t.Helper()
	for i, l := range ls {
		if n := l.Fallbacks(); n != 0 {
			t.Fatalf("environment %d decided %d times in process: DynamoDB failed (see the log above)", i, n)
		}
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// Two Limiters on one table are two Lambda environments: together they
// admit one burst, not one each.
func TestEnvironmentsShareRate(t *testing.T) {
	db, table := client(t)
	ctx := context.Background()
	q := quota.Options{RPS: 10, Burst: 10}
	a, b := newLimiter(t, db, table, Options{Quota: q}), newLimiter(t, db, table, Options{Quota: q})
	now := time.Unix(1_700_000_000, 0)
	for i := range 10 {
		l := a
		if i%2 == 1 {
			l = b
		}
		d, rel := l.Acquire(ctx, "acme", now)
		if !d.OK || d.Limit != 10 || d.Remaining != 9-i {
			t.Fatalf("request %d: %+v", i, d)
		}
		rel()
	}
	for i, l := range []*Limiter{a, b} {
		d, _ := l.Acquire(ctx, "acme", now)
		if d.OK || d.Reason != "rate" || d.RetryAfter <= 0 || d.RetryAfter > 100*time.Millisecond {
			noFallbacks(t, a, b)
			t.Fatalf("environment %d, 11th request: %+v", i, d)
		}
	}
	// Another tenant has a bucket of its own.
	if d, _ := b.Acquire(ctx, "globex", now); !d.OK || d.Remaining != 9 {
		t.Fatalf("tenant globex: %+v", d)
	}
	// 100 ms later one token is back — for either environment, once.
	later := now.Add(100 * time.Millisecond)
	if d, _ := b.Acquire(ctx, "acme", later); !d.OK {
		t.Fatalf("refused after refill: %+v", d)
	}
	if d, _ := a.Acquire(ctx, "acme", later); d.OK {
		t.Fatalf("two admitted for one refilled token: %+v", d)
	}
	// After a full second the bucket is full again (the "full" branch).
	d, _ := a.Acquire(ctx, "acme", now.Add(2*time.Second))
	if !d.OK || d.Remaining != 9 {
		t.Fatalf("after the bucket refilled: %+v", d)
	}
	noFallbacks(t, a, b)
}

func TestEnvironmentsShareConcurrency(t *testing.T) {
	db, table := client(t)
	ctx := context.Background()
	q := quota.Options{Concurrency: 3}
	a, b := newLimiter(t, db, table, Options{Quota: q}), newLimiter(t, db, table, Options{Quota: q})
	now := time.Unix(1_700_000_000, 0)
	_, r1 := a.Acquire(ctx, "acme", now)
	_, r2 := b.Acquire(ctx, "acme", now)
	d, r3 := a.Acquire(ctx, "acme", now)
	if !d.OK {
		t.Fatalf("third: %+v", d)
	}
	if d, _ := b.Acquire(ctx, "acme", now); d.OK || d.Reason != "concurrency" || d.RetryAfter <= 0 {
		noFallbacks(t, a, b)
		t.Fatalf("fourth in flight across environments admitted: %+v", d)
	}
	if d, rel := b.Acquire(ctx, "globex", now); !d.OK {
		t.Fatalf("other tenant: %+v", d)
	} else {
		rel()
	}
	r1()
	r1() // a second release must not free a second slot
	d, r4 := b.Acquire(ctx, "acme", now)
	if !d.OK {
		t.Fatalf("after a release: %+v", d)
	}
	if d, _ := a.Acquire(ctx, "acme", now); d.OK {
		t.Fatalf("double release freed two slots: %+v", d)
	}
	r2()
	r3()
	r4()
	for range 3 {
		if d, _ := a.Acquire(ctx, "acme", now); !d.OK {
			t.Fatalf("after every release: %+v", d)
		}
	}
	noFallbacks(t, a, b)
}

// An environment that dies mid-request never releases: its lease stops
// counting at its expiry, and only then.
func TestCrashedEnvironmentLeaseExpires(t *testing.T) {
	db, table := client(t)
	ctx := context.Background()
	o := Options{Quota: quota.Options{Concurrency: 2}, Lease: 30 * time.Second}
	crashed, live := newLimiter(t, db, table, o), newLimiter(t, db, table, o)
	now := time.Unix(1_700_000_000, 0)
	for range 2 {
		if d, _ := crashed.Acquire(ctx, "acme", now); !d.OK { // never released
			t.Fatalf("%+v", d)
		}
	}
	if d, _ := live.Acquire(ctx, "acme", now.Add(29*time.Second)); d.OK {
		noFallbacks(t, crashed, live)
		t.Fatalf("admitted while the dead environment's leases are live: %+v", d)
	}
	at := now.Add(31 * time.Second)
	d, rel := live.Acquire(ctx, "acme", at)
	if !d.OK {
		t.Fatalf("expired leases still count: %+v", d)
	}
	d2, rel2 := live.Acquire(ctx, "acme", at)
	if !d2.OK {
		t.Fatalf("only one expired lease reaped: %+v", d2)
	}
	if d, _ := live.Acquire(ctx, "acme", at); d.OK || d.Reason != "concurrency" {
		t.Fatalf("third admitted: %+v", d)
	}
	rel()
	rel2()
	item, err := db.GetItem(ctx, table, dynamodb.Item{HashKey: dynamodb.S("acme")}, true)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := item["n"].Int(); n != 0 || len(item) != 3 { // tenant, n, expires
		t.Fatalf("item after every lease ended: %v", item)
	}
	noFallbacks(t, crashed, live)
}

// Many goroutines of several environments race on one tenant: the
// conditional writes never admit more than the burst, or more at once than
// the concurrency quota.
func TestRacesNeverOveradmit(t *testing.T) {
	db, table := client(t)
	ctx := context.Background()
	const burst, conc = 40, 4
	var envs []*Limiter
	for range 3 {
		envs = append(envs, newLimiter(t, db, table, Options{Quota: quota.Options{RPS: 0.001, Burst: burst, Concurrency: conc}}))
	}
	now := time.Unix(1_700_000_000, 0)
	var admitted, inflight, peak atomic.Int64
	var wg sync.WaitGroup
	for g := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := envs[g%len(envs)]
			for range 6 {
				d, rel := l.Acquire(ctx, "acme", now)
				if !d.OK {
					continue
				}
				admitted.Add(1)
				v := inflight.Add(1)
				for p := peak.Load(); v > p && !peak.CompareAndSwap(p, v); p = peak.Load() {
				}
				time.Sleep(2 * time.Millisecond)
				inflight.Add(-1)
				rel()
			}
		}()
	}
	wg.Wait()
	if got := admitted.Load(); got > burst || got == 0 {
		t.Fatalf("admitted %d with a burst of %d", got, burst)
	}
	// Each request held its lease from before it counted itself in
	// flight until after it counted itself out.
	if p := peak.Load(); p > conc {
		t.Fatalf("%d in flight at once with a concurrency quota of %d", p, conc)
	}
	item, err := db.GetItem(ctx, table, dynamodb.Item{HashKey: dynamodb.S("acme")}, true)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := item["n"].Int(); n != 0 {
		t.Fatalf("n = %d after every release: %v", n, item)
	}
	noFallbacks(t, envs...)
	t.Logf("admitted %d of %d, at most %d at once", admitted.Load(), 12*6, peak.Load())
}

// DynamoDB down: the Limiter fails open to the in-process quota (each
// environment alone), counts it, and does not ask again during the
// cooldown.
func TestStoreDownFallsBackInProcess(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"__type":"com.amazonaws.dynamodb.v20120810#ServiceUnavailable","message":"down"}`))
	}))
	defer srv.Close()
	// And one that does not answer at all.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, ep := range []string{srv.URL, "http://" + ln.Addr().String()} {
		db := &dynamodb.Client{Endpoint: ep, Region: "us-east-1"}
		l := newLimiter(t, db, "quota", Options{Quota: quota.Options{RPS: 1, Burst: 3}, CallTimeout: 50 * time.Millisecond, Cooldown: 10 * time.Second})
		now := time.Unix(1_700_000_000, 0)
		calls.Store(0)
		for i := range 3 {
			if d, _ := l.Acquire(context.Background(), "acme", now); !d.OK {
				t.Fatalf("%s: request %d refused with the store down: %+v", ep, i, d)
			}
		}
		if d, _ := l.Acquire(context.Background(), "acme", now); d.OK {
			t.Fatalf("%s: the in-process quota does not hold while down", ep)
		}
		if l.Fallbacks() != 4 {
			t.Fatalf("%s: fallbacks = %d, want 4", ep, l.Fallbacks())
		}
		if ep == srv.URL && calls.Load() != 1 {
			t.Fatalf("asked DynamoDB %d times during the cooldown", calls.Load())
		}
	}
}

func TestCanceledRequestIsNotAnOutage(t *testing.T) {
	db := &dynamodb.Client{Endpoint: "http://127.0.0.1:1", Region: "us-east-1"}
	l := newLimiter(t, db, "quota", Options{Quota: quota.Options{RPS: 1, Burst: 3}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if d, _ := l.Acquire(ctx, "acme", time.Now()); d.OK {
		t.Fatalf("a canceled request admitted: %+v", d)
	}
	if l.Fallbacks() != 0 || l.down.Load() != 0 {
		t.Fatal("a canceled request started the cooldown")
	}
}

func TestNew(t *testing.T) {
	db := &dynamodb.Client{}
	for i, o := range []*Options{{Quota: quota.Options{Concurrency: maxLeases + 1}}, {Quota: quota.Options{RPS: -1}}} {
		if _, err := New(db, "t", o); err == nil {
			t.Errorf("case %d: %+v accepted", i, o)
		}
	}
	if _, err := New(nil, "t", nil); err == nil {
		t.Error("nil client accepted")
	}
	l, err := New(db, "t", nil) // no quota: never calls DynamoDB
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := l.Acquire(context.Background(), "acme", time.Now()); !d.OK {
		t.Fatal("refused with no quota")
	}
}
