package platform_test

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/platform"
	"github.com/aiaas/aiaas/platform/config"
)

// TestDispatchedJobShare: where jobs go to another worker (Lambda), a
// tenant still has a share of 8 queued or running jobs, held across every
// process on the store (two "environments" here, submitting at once); an
// ended job frees its place; other tenants are unaffected.
func TestDispatchedJobShare(t *testing.T) {
	ctx := context.Background()
	cfg := config.Default()
	cfg.AdminKey = adminKey
	cfg.MasterKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	cfg.TenantRPS, cfg.TenantConcurrency = 0, 0
	key, _ := cfg.MasterKeyBytes()
	ms, err := modelstore.Open(ctx, "file://"+t.TempDir(), &modelstore.Options{MasterKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close() })
	var envs []*env
	for range 2 {
		srv, err := platform.New(ctx, platform.Options{Config: cfg, Store: platform.StoreFrom(ms),
			Dispatch: func(context.Context, string, string) error { return nil }}) // jobs stay queued
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(srv)
		t.Cleanup(func() { ts.Close(); srv.Close(ctx) })
		envs = append(envs, &env{t: t, srv: srv, ts: ts, store: ms})
	}
	r := envs[0].do("POST", "/v1/tenants", adminKey, map[string]string{"name": "acme"})
	tenant, acme := r.json(t)["id"].(string), r.json(t)["api_key"].(string)
	other := envs[0].tenant("other")
	for _, k := range []string{acme, other} {
		if r := envs[0].do("PUT", "/v1/datasets/sums", k, sumsCSV(50), "Content-Type", "text/csv"); r.status != 201 {
			t.Fatalf("dataset: %d %s", r.status, r.body)
		}
	}
	job := map[string]any{"model": "m", "dataset": "sums", "layers": []int{4}, "epochs": 1}
	var mu sync.Mutex
	accepted := []string{}
	refused := 0
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := envs[i%2].do("POST", "/v1/training-jobs", acme, job)
			mu.Lock()
			defer mu.Unlock()
			switch r.status {
			case 202:
				accepted = append(accepted, r.json(t)["id"].(string))
			case 429:
				refused++
				if r.header.Get("Retry-After") == "" {
					t.Errorf("429 without Retry-After")
				}
			default:
				t.Errorf("submit: %d %s", r.status, r.body)
			}
		}()
	}
	wg.Wait()
	if len(accepted) != 8 || refused != 12 {
		t.Fatalf("accepted %d, refused %d; want 8 and 12", len(accepted), refused)
	}
	// Evaluations count in the same share.
	envs[0].publish(acme, "clf", 1)
	if r := envs[1].do("POST", "/v1/evaluations", acme, map[string]any{"candidates": []map[string]string{{"model": "clf"}}, "dataset": "sums"}); r.status != 429 {
		t.Errorf("evaluation past the share: %d %s", r.status, r.body)
	}
	if r := envs[1].do("POST", "/v1/training-jobs", other, job); r.status != 202 {
		t.Errorf("another tenant: %d %s", r.status, r.body)
	}
	// A job that ended gives its place back.
	if err := envs[0].srv.FailJob(ctx, tenant, accepted[0], "the train function failed: test"); err != nil {
		t.Fatal(err)
	}
	if r := envs[1].do("POST", "/v1/training-jobs", acme, job); r.status != 202 {
		t.Errorf("after a job ended: %d %s", r.status, r.body)
	}
	if r := envs[0].do("POST", "/v1/training-jobs", acme, job); r.status != 429 {
		t.Errorf("share used again: %d %s", r.status, r.body)
	}
}
