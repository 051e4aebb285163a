package platform_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/platform/config"
)

// TestJobsNeverHang: a job whose worker died is reported failed once its
// last sign of life is older than AIAAS_JOB_STALE; a heartbeat keeps a long
// job alive; FailJob (the Lambda failure destination's path) records a
// reason once and leaves an ended job alone; a running job beats.
func TestJobsNeverHang(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.JobStale = time.Second })
	ctx := context.Background()
	r := e.do("POST", "/v1/tenants", adminKey, map[string]string{"name": "acme"})
	tenant, key := r.json(t)["id"].(string), r.json(t)["api_key"].(string)
	plant := func(id, status string, updated time.Time) {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"id": id, "status": status, "model": "m", "created": updated, "updated": updated, "epochs": []any{}})
		if err := e.store.Put(ctx, tenant, "jobs", id, b); err != nil {
			t.Fatal(err)
		}
	}
	get := func(id string) map[string]any {
		t.Helper()
		r := e.do("GET", "/v1/training-jobs/"+id, key, nil)
		if r.status != 200 {
			t.Fatalf("get %s: %d %s", id, r.status, r.body)
		}
		return r.json(t)
	}
	old := time.Now().Add(-5 * time.Second).UTC()
	plant("jdead", "running", old)
	if j := get("jdead"); j["status"] != "failed" || !strings.Contains(j["error"].(string), "no heartbeat") {
		t.Errorf("dead worker: %v", j)
	}
	plant("jalive", "running", old)
	if err := e.store.Put(ctx, tenant, "job-heartbeats", "jalive", []byte(time.Now().UTC().Format(time.RFC3339Nano))); err != nil {
		t.Fatal(err)
	}
	if j := get("jalive"); j["status"] != "running" {
		t.Errorf("a job with a fresh heartbeat: %v", j)
	}
	if err := e.srv.FailJob(ctx, tenant, "jalive", "the train function failed: Runtime.OutOfMemory: out of memory; submit it again"); err != nil {
		t.Fatal(err)
	}
	if j := get("jalive"); j["status"] != "failed" || !strings.Contains(j["error"].(string), "OutOfMemory") || j["finished"] == nil {
		t.Errorf("after FailJob: %v", j)
	}
	plant("jdone", "succeeded", old)
	if err := e.srv.FailJob(ctx, tenant, "jdone", "late"); err != nil {
		t.Fatal(err)
	}
	if j := get("jdone"); j["status"] != "succeeded" {
		t.Errorf("FailJob changed an ended job: %v", j)
	}
	if err := e.srv.FailJob(ctx, tenant, "jnone", "x"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("FailJob of no job: %v", err)
	}

	// A real job beats while it runs (every JobStale/5) and removes its
	// heartbeat when it ends.
	if r := e.do("PUT", "/v1/datasets/sums", key, sumsCSV(4000), "Content-Type", "text/csv"); r.status != 201 {
		t.Fatalf("dataset: %d %s", r.status, r.body)
	}
	r = e.do("POST", "/v1/training-jobs", key, map[string]any{"model": "sums", "dataset": "sums", "layers": []int{64, 64}, "batch_size": 8, "epochs": 200, "seed": 3})
	if r.status != 202 {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}
	id := r.json(t)["id"].(string)
	beat := false
	var job map[string]any
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := e.store.Get(ctx, tenant, "job-heartbeats", id); err == nil {
			beat = true
		}
		job = get(id)
		if s := job["status"]; s != "queued" && s != "running" {
			break
		}
	}
	if job["status"] != "succeeded" {
		t.Fatalf("job: %v", job)
	}
	if !beat {
		t.Errorf("no heartbeat was seen while the job ran")
	}
	if _, err := e.store.Get(ctx, tenant, "job-heartbeats", id); !errors.Is(err, modelstore.ErrNotFound) {
		t.Errorf("heartbeat left after the job ended: %v", err)
	}
}
