package platform_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/platform"
	"github.com/aiaas/aiaas/platform/config"
)

// TestJobContinuesAfterDeadline: a job whose worker's deadline comes
// first is checkpointed, put back in the queue and dispatched again (as
// the Lambda train function re-invokes itself); the next invocation
// continues it and ends exactly as an uninterrupted run of the same job.
func TestJobContinuesAfterDeadline(t *testing.T) {
	ctx := context.Background()
	cfg := config.Default()
	cfg.AdminKey, cfg.MasterKey = adminKey, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	cfg.TenantRPS, cfg.TenantConcurrency, cfg.TrainWorkers = 0, 0, 0
	mk, _ := cfg.MasterKeyBytes()
	ms, err := modelstore.Open(ctx, "mem://", &modelstore.Options{MasterKey: mk})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var dispatched []string
	srv, err := platform.New(ctx, platform.Options{Config: cfg, Store: platform.StoreFrom(ms),
		Dispatch: func(_ context.Context, tenant, id string) error {
			mu.Lock()
			defer mu.Unlock()
			dispatched = append(dispatched, id)
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvFor(t, srv, ms)
	r := e.do("POST", "/v1/tenants", adminKey, map[string]string{"name": "acme"})
	tenant, key := r.json(t)["id"].(string), r.json(t)["api_key"].(string)
	if r := e.do("PUT", "/v1/datasets/bars", key, barsCSV(400), "Content-Type", "text/csv"); r.status != 201 {
		t.Fatalf("dataset: %d %s", r.status, r.body)
	}
	job := func(model string) map[string]any {
		return map[string]any{"model": model, "dataset": "bars", "epochs": 4, "batch_size": 8, "seed": 5,
			"network": map[string]any{"input_shape": []int{1, 6, 6}, "layers": []map[string]any{
				{"type": "conv2d", "filters": 4, "kernel_size": 3, "activation": "relu"},
				{"type": "batchnorm"},
				{"type": "flatten"},
				{"type": "dropout", "rate": 0.2},
				{"type": "dense", "units": 2, "activation": "softmax"}}}}
	}
	get := func(id string) platform.Job {
		var j platform.Job
		if err := json.Unmarshal(e.do("GET", "/v1/training-jobs/"+id, key, nil).body, &j); err != nil {
			t.Fatal(err)
		}
		return j
	}
	submit := func(model string) string {
		r := e.do("POST", "/v1/training-jobs", key, job(model))
		if r.status != 202 {
			t.Fatalf("submit: %d %s", r.status, r.body)
		}
		mu.Lock()
		dispatched = nil
		mu.Unlock()
		return r.json(t)["id"].(string)
	}

	// The reference: one invocation without a deadline.
	ref := submit("whole")
	if err := srv.RunJob(ctx, tenant, ref); err != nil {
		t.Fatal(err)
	}
	want := get(ref)

	// A deadline 5 s away is all reserve: the job stops before its first
	// batch, is checkpointed, queued and dispatched again. (Where in the
	// run a stop falls does not matter: nn's TestResumeIsBitIdentical
	// stops mid-epoch and at epoch boundaries.)
	id := submit("continued")
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if err := srv.RunJob(dctx, tenant, id); err != nil {
		t.Fatalf("first invocation: %v", err)
	}
	cancel()
	first := get(id)
	mu.Lock()
	got := append([]string(nil), dispatched...)
	mu.Unlock()
	if first.Status != "queued" || first.Continuations != 1 || len(got) != 1 || got[0] != id || first.Result != nil {
		t.Fatalf("after the deadline: status %q, continuations %d, dispatched %v, result %+v", first.Status, first.Continuations, got, first.Result)
	}
	// The next invocation continues and finishes.
	if err := srv.RunJob(ctx, tenant, id); err != nil {
		t.Fatalf("second invocation: %v", err)
	}
	done := get(id)
	if done.Status != "succeeded" || done.Result == nil || done.Result.Stopped != "" || done.Continuations != 1 {
		t.Fatalf("continued job: %+v", done)
	}
	if done.Result.TestAccuracy != want.Result.TestAccuracy || done.Result.TestLoss != want.Result.TestLoss || len(done.Epochs) != len(want.Epochs) {
		t.Fatalf("continued job ends with %v/%v over %d epochs, the uninterrupted one with %v/%v over %d",
			done.Result.TestAccuracy, done.Result.TestLoss, len(done.Epochs), want.Result.TestAccuracy, want.Result.TestLoss, len(want.Epochs))
	}
	for i := range done.Epochs {
		if done.Epochs[i].Loss != want.Epochs[i].Loss || done.Epochs[i].Accuracy != want.Epochs[i].Accuracy {
			t.Errorf("epoch %d: %+v, uninterrupted %+v", i+1, done.Epochs[i], want.Epochs[i])
		}
	}
	// A job already finished is not run again.
	if err := srv.RunJob(ctx, tenant, id); err == nil {
		t.Error("a finished job ran again")
	}
}
