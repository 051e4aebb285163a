package platform_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aiaas/aiaas/internal/dynamodb"
	"github.com/aiaas/aiaas/internal/sigv4"
	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/platform"
	"github.com/aiaas/aiaas/platform/config"
	"github.com/aiaas/aiaas/platform/quota"
	"github.com/aiaas/aiaas/platform/quota/dynamo"
)

// countingQuota admits `allow` requests, then refuses, and counts releases.
type countingQuota struct {
	allow           int64
	acquired, freed atomic.Int64
	ctxSeen         atomic.Bool
}

func (q *countingQuota) Acquire(ctx context.Context, tenant string, now time.Time) (quota.Decision, func()) {
	if ctx != nil && ctx.Err() == nil {
		q.ctxSeen.Store(true)
	}
	if q.acquired.Add(1) > q.allow {
		return quota.Decision{Reason: "rate", RetryAfter: 2 * time.Second, Limit: 7}, func() {}
	}
	return quota.Decision{OK: true, Limit: 7, Remaining: 1}, func() { q.freed.Add(1) }
}

// Options.Quota replaces the in-process limiter: its decisions are the
// server's, and every admitted request is released.
func TestQuotaFromOptions(t *testing.T) {
	q := &countingQuota{allow: 2}
	e := newEnvWith(t, nil, func(o *platform.Options) { o.Quota = q })
	key := e.tenant("acme")
	for i, want := range []int{200, 200, 429} {
		r := e.do("GET", "/v1/models", key, nil)
		if r.status != want {
			t.Fatalf("request %d: %d %s", i, r.status, r.body)
		}
		if want == 429 && (r.header.Get("Retry-After") != "2" || r.header.Get("X-RateLimit-Limit") != "7") {
			t.Fatalf("429 headers: %v", r.header)
		}
	}
	if q.freed.Load() != 2 || !q.ctxSeen.Load() {
		t.Fatalf("released %d of 2 admitted; context passed: %v", q.freed.Load(), q.ctxSeen.Load())
	}
}

// Two servers — two Lambda environments — on one store and one DynamoDB
// table: one tenant's burst holds across both.
func TestQuotaSharedAcrossServers(t *testing.T) {
	ep := os.Getenv("AIAAS_TEST_DYNAMODB_ENDPOINT")
	if ep == "" {
		if os.Getenv("AIAAS_REQUIRE_DYNAMODB") == "1" {
			t.Fatal("AIAAS_REQUIRE_DYNAMODB=1 but AIAAS_TEST_DYNAMODB_ENDPOINT is unset: eval \"$(scripts/dynalite.sh start)\"")
		}
		t.Skip("no DynamoDB: eval \"$(scripts/dynalite.sh start)\"")
	}
	db := &dynamodb.Client{Endpoint: ep, Region: "us-east-1",
		Creds: func() sigv4.Credentials { return sigv4.Credentials{AccessKey: "test", SecretKey: "test"} }}
	var b [6]byte
	_, _ = rand.Read(b[:])
	table := "platform-" + hex.EncodeToString(b[:])
	if err := db.CreateTable(context.Background(), table, dynamo.HashKey); err != nil {
		t.Fatal(err)
	}
	dir := "file://" + t.TempDir()
	var envs []*env
	var limiters []*dynamo.Limiter
	for range 2 {
		l, err := dynamo.New(db, table, &dynamo.Options{Quota: quota.Options{RPS: 0.01, Burst: 3, Concurrency: 2},
			CallTimeout: 10 * time.Second}) // dynalite on a loaded machine can be slow
		if err != nil {
			t.Fatal(err)
		}
		limiters = append(limiters, l)
		envs = append(envs, newEnvWith(t, &dir, func(o *platform.Options) { o.Quota = l }))
	}
	key := envs[0].tenant("acme")
	for i, want := range []int{200, 200, 200, 429, 429} {
		r := envs[i%2].do("GET", "/v1/models", key, nil)
		if r.status != want {
			t.Fatalf("request %d (server %d): %d %s", i, i%2, r.status, r.body)
		}
		if want == 429 && (r.header.Get("Retry-After") == "" || r.header.Get("X-RateLimit-Limit") != "3") {
			t.Fatalf("429 headers: %v", r.header)
		}
	}
	for i, l := range limiters {
		if l.Fallbacks() != 0 {
			t.Errorf("server %d decided in process: DynamoDB failed", i)
		}
	}
	other := envs[1].tenant("globex")
	if r := envs[1].do("GET", "/v1/models", other, nil); r.status != 200 {
		t.Fatalf("another tenant throttled: %d %s", r.status, r.body)
	}
}

// newEnvWith is newEnvOn with the platform options adjusted; store nil
// means memory.
func newEnvWith(t *testing.T, store *string, opts func(*platform.Options)) *env {
	t.Helper()
	ctx := context.Background()
	cfg := config.Default()
	cfg.AdminKey = adminKey
	cfg.MasterKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	url := "mem://"
	if store != nil {
		url = *store
	}
	key, _ := cfg.MasterKeyBytes()
	ms, err := modelstore.Open(ctx, url, &modelstore.Options{MasterKey: key})
	if err != nil {
		t.Fatal(err)
	}
	o := platform.Options{Config: cfg, Store: platform.StoreFrom(ms)}
	opts(&o)
	srv, err := platform.New(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	return newEnvFor(t, srv, ms)
}
