package platform_test

import (
	"testing"
	"time"
)

// TestThousandEpochJobPublishes: the longest job a request may ask for
// publishes its model (its curves used to overflow the version's metadata
// and fail the job at the very end), with the curves thinned in the
// version and whole in the job.
func TestThousandEpochJobPublishes(t *testing.T) {
	e := newEnv(t, nil)
	key := e.tenant("acme")
	if r := e.do("PUT", "/v1/datasets/sums", key, sumsCSV(100), "Content-Type", "text/csv"); r.status != 201 {
		t.Fatalf("dataset: %d %s", r.status, r.body)
	}
	r := e.do("POST", "/v1/training-jobs", key, map[string]any{"model": "long", "dataset": "sums", "layers": []int{4}, "batch_size": 80, "epochs": 1000, "seed": 1})
	if r.status != 202 {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}
	id := r.json(t)["id"].(string)
	var job map[string]any
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		job = e.do("GET", "/v1/training-jobs/"+id, key, nil).json(t)
		if s := job["status"]; s != "queued" && s != "running" {
			break
		}
	}
	if job["status"] != "succeeded" || len(job["epochs"].([]any)) != 1000 {
		t.Fatalf("job: status %v, error %v", job["status"], job["error"])
	}
	m := e.do("GET", "/v1/models/long", key, nil).json(t)
	v := m["versions"].([]any)[0].(map[string]any)
	h := v["metrics"].(map[string]any)["history"].(map[string]any)
	if h["epochs_recorded"].(float64) != 1000 || len(h["epochs"].([]any)) >= 1000 {
		t.Errorf("version history: %v recorded, %d kept", h["epochs_recorded"], len(h["epochs"].([]any)))
	}
}
