package platform_test

import (
	"testing"

	"github.com/aiaas/aiaas/platform/config"
)

// TestJobShares: one tenant's submissions fill its own share of the
// training queue (8 queued or running), not the queue another tenant
// needs.
func TestJobShares(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.TrainWorkers = 0 }) // jobs stay queued
	a, b := e.tenant("a"), e.tenant("b")
	job := map[string]any{"model": "m", "dataset": "mnist", "epochs": 1}
	for i := range 8 {
		if r := e.do("POST", "/v1/training-jobs", a, job); r.status != 202 {
			t.Fatalf("a's job %d: %d %s", i, r.status, r.body)
		}
	}
	r := e.do("POST", "/v1/training-jobs", a, job)
	if r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Fatalf("a's 9th job: %d %s, want 429 with Retry-After", r.status, r.body)
	}
	if r := e.do("POST", "/v1/training-jobs", b, job); r.status != 202 {
		t.Fatalf("b's job beside a's eight: %d %s", r.status, r.body)
	}
}
