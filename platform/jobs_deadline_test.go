package platform_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aiaas/aiaas/platform"
	"github.com/aiaas/aiaas/platform/config"
)

func TestJobReserve(t *testing.T) {
	for i, tc := range []struct{ left, want time.Duration }{
		{0, 5 * time.Second},
		{3 * time.Second, 5 * time.Second},
		{50 * time.Second, 5 * time.Second},
		{15 * time.Minute, 90 * time.Second},
	} {
		if got := platform.JobReserve(tc.left); got != tc.want {
			t.Errorf("case %d: JobReserve(%v) = %v, want %v", i, tc.left, got, tc.want)
		}
	}
}

// deadlineJob sets up a tenant with a dataset (3200 training rows after the
// test split, 400 batches of 8) big enough that its job
// cannot finish in a few seconds, queues a job that no local worker takes,
// and returns what RunJob needs.
func deadlineJob(t *testing.T) (e *env, tenant, key, id string) {
	e = newEnv(t, func(c *config.Config) { c.TrainWorkers = 0 })
	r := e.do("POST", "/v1/tenants", adminKey, map[string]string{"name": "acme"})
	if r.status != 201 {
		t.Fatalf("create tenant: %d %s", r.status, r.body)
	}
	m := r.json(t)
	tenant, key = m["id"].(string), m["api_key"].(string)
	if r := e.do("PUT", "/v1/datasets/sums", key, sumsCSV(4000), "Content-Type", "text/csv"); r.status != 201 {
		t.Fatalf("dataset: %d %s", r.status, r.body)
	}
	r = e.do("POST", "/v1/training-jobs", key, map[string]any{"model": "sums", "dataset": "sums",
		"layers": []int{64, 64}, "batch_size": 8, "epochs": 1000, "seed": 3})
	if r.status != 202 {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}
	return e, tenant, key, r.json(t)["id"].(string)
}

// A deadline that trips mid-training: the job stops between batches with
// the reserve left, publishes what it trained, marked as stopped at the
// deadline, and records where it stopped.
func TestJobStopsBeforeDeadline(t *testing.T) {
	e, tenant, key, id := deadlineJob(t)
	const budget = 6500 * time.Millisecond // reserve 5 s → about 1.5 s of training
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	start := time.Now()
	if err := e.srv.RunJob(ctx, tenant, id); err != nil {
		t.Fatalf("RunJob: %v", err)
	}
	took := time.Since(start)
	if took >= budget-4*time.Second {
		t.Errorf("RunJob took %v of a %v budget: it did not keep its 5 s reserve", took, budget)
	}
	var job platform.Job
	r := e.do("GET", "/v1/training-jobs/"+id, key, nil)
	if err := json.Unmarshal(r.body, &job); err != nil || r.status != 200 {
		t.Fatalf("get job: %d %s", r.status, r.body)
	}
	if job.Status != "succeeded" || job.Result == nil || job.Result.Stopped != "deadline" || job.Result.StoppedAt == nil {
		t.Fatalf("job: %s", r.body)
	}
	sa := job.Result.StoppedAt
	if sa.Epochs < 1 || sa.Epochs >= 1000 || sa.Epoch != sa.Epochs+1 || sa.BatchesPerEpoch != 400 || sa.Batch >= sa.BatchesPerEpoch {
		t.Errorf("stopped_at: %+v", sa)
	}
	if sa.ReserveSeconds != 5 || sa.TimeLeftSeconds < 3 || sa.TimeLeftSeconds > 5 || !strings.Contains(sa.Note, "raise the function timeout") {
		t.Errorf("stopped_at: %+v", sa)
	}
	if len(job.Epochs) != sa.Epochs || job.Finished == nil {
		t.Errorf("job epochs %d, stopped_at.epochs %d, finished %v", len(job.Epochs), sa.Epochs, job.Finished)
	}
	// The published version is the model trained so far, and says so.
	if job.Result.Version != 1 {
		t.Fatalf("version %d", job.Result.Version)
	}
	r = e.do("GET", "/v1/models/sums", key, nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"stopped":"deadline: `) {
		t.Errorf("model metadata does not say it stopped at the deadline: %d %s", r.status, r.body)
	}
	body := map[string]any{"inputs": []map[string]any{{"name": "input", "shape": []int{1, 2}, "datatype": "FP32", "data": []float32{0.9, 0.8}}}}
	if r := e.do("POST", "/v2/models/sums/infer", key, body); r.status != 200 {
		t.Fatalf("infer the stopped model: %d %s", r.status, r.body)
	}
}

// A deadline too close for even one epoch: nothing is published and the job
// fails with a reason that says what to change.
func TestJobDeadlineBeforeFirstEpoch(t *testing.T) {
	e, tenant, key, id := deadlineJob(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second) // less than the 5 s reserve
	defer cancel()
	err := e.srv.RunJob(ctx, tenant, id)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("RunJob: err %v, ctx %v: want an error before the deadline", err, ctx.Err())
	}
	var job platform.Job
	r := e.do("GET", "/v1/training-jobs/"+id, key, nil)
	if err := json.Unmarshal(r.body, &job); err != nil || r.status != 200 {
		t.Fatalf("get job: %d %s", r.status, r.body)
	}
	if job.Status != "failed" || job.Result != nil || !strings.Contains(job.Error, "before the first epoch finished") ||
		!strings.Contains(job.Error, "raise the function timeout") {
		t.Fatalf("job: %s", r.body)
	}
	if r := e.do("GET", "/v1/models/sums", key, nil); r.status != 404 {
		t.Errorf("a model was published: %d %s", r.status, r.body)
	}
}
