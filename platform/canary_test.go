package platform_test

import (
	"fmt"
	"strings"
	"testing"
)

// TestCanaryAnalysis: a split alias's two sides compared from what they
// served, with a verdict; refusals for an alias that does not split, a
// missing one, bad criteria and another tenant.
func TestCanaryAnalysis(t *testing.T) {
	e := newEnv(t, nil)
	key := e.tenant("acme")
	e.publish(key, "clf", 1)
	e.publish(key, "clf", 2)
	if r := e.do("PUT", "/v1/models/clf/aliases/prod", key, map[string]int{"version": 1}); r.status != 200 {
		t.Fatalf("alias: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/v1/models/clf/aliases/prod/canary", key, nil); r.status != 409 || !strings.Contains(string(r.body), "does not split") {
		t.Errorf("unsplit alias: %d %s", r.status, r.body)
	}
	if r := e.do("PUT", "/v1/models/clf/aliases/prod", key, map[string]int{"version": 1, "canary_version": 2, "canary_weight": 50}); r.status != 200 {
		t.Fatalf("canary alias: %d %s", r.status, r.body)
	}
	served := map[string]int{}
	for i := 0; i < 300; i++ {
		b := inferBody(1)
		b["id"] = fmt.Sprint("r", i)
		r := e.do("POST", "/v2/models/clf/versions/prod/infer", key, b)
		if r.status != 200 {
			t.Fatalf("infer: %d %s", r.status, r.body)
		}
		served[r.json(t)["model_version"].(string)]++
	}
	// Latency is noise between two equal models on a busy machine, so
	// the promote case allows any ratio; the verdict rules have their own
	// unit test.
	r := e.do("GET", "/v1/models/clf/aliases/prod/canary?min_requests=20&max_latency_ratio=100", key, nil)
	if r.status != 200 {
		t.Fatalf("canary: %d %s", r.status, r.body)
	}
	m := r.json(t)
	pri, can := m["primary"].(map[string]any), m["canary"].(map[string]any)
	if m["verdict"] != "promote" || pri["version"].(float64) != 1 || can["version"].(float64) != 2 ||
		int(pri["requests"].(float64)) != served["1"] || int(can["requests"].(float64)) != served["2"] ||
		pri["errors"].(float64) != 0 || pri["p99_ms"] == nil || can["p50_ms"] == nil || can["accuracy"] != nil {
		t.Errorf("report: %s (served %v)", r.body, served)
	}
	if m := e.do("GET", "/v1/models/clf/aliases/prod/canary?min_requests=100000", key, nil).json(t); m["verdict"] != "insufficient data" {
		t.Errorf("too few requests: %v", m)
	}
	for _, q := range []string{"min_requests=0", "min_requests=x", "max_latency_ratio=0.5", "max_latency_ratio=NaN"} {
		if r := e.do("GET", "/v1/models/clf/aliases/prod/canary?"+q, key, nil); r.status != 400 {
			t.Errorf("%s: %d %s", q, r.status, r.body)
		}
	}
	if r := e.do("GET", "/v1/models/clf/aliases/nope/canary", key, nil); r.status != 404 {
		t.Errorf("missing alias: %d %s", r.status, r.body)
	}
	other := e.tenant("other")
	if r := e.do("GET", "/v1/models/clf/aliases/prod/canary", other, nil); r.status != 404 {
		t.Errorf("another tenant: %d %s", r.status, r.body)
	}
}
