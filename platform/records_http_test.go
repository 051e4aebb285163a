package platform_test

import (
	"strings"
	"testing"
)

// TestEndpointRecordErrors pins the answers whose errors now come from
// internal/records: statuses and messages are what clients always read.
func TestEndpointRecordErrors(t *testing.T) {
	e := newEnv(t, nil)
	key := e.tenant("acme")
	e.publish(key, "clf", 1)
	if r := e.do("GET", "/v1/endpoints", key, nil); r.status != 200 || strings.TrimSpace(string(r.body)) != `{"endpoints":[]}` {
		t.Errorf("empty list: %d %s", r.status, r.body)
	}
	for i, c := range []struct {
		method, path string
		body         any
		status       int
		msg          string
	}{
		{"PUT", "/v1/endpoints/ep", map[string]any{"model": "clf", "forward_inputs": make([]string, 17)}, 400, "forward_inputs: 17 names, limit 16"},
		// The bounds are checked before the model is looked up.
		{"PUT", "/v1/endpoints/ep", map[string]any{"model": "nope", "generation": map[string]any{"max_tokens": -1}}, 400, "generation: max_tokens and max_context must not be negative"},
		{"GET", "/v1/endpoints/missing", nil, 404, `endpoint "missing" not found`},
		{"DELETE", "/v1/endpoints/missing", nil, 404, `endpoint "missing" not found`},
		{"POST", "/v1/endpoints/missing/invoke", inferBody(1), 404, `endpoint "missing" not found`},
	} {
		r := e.do(c.method, c.path, key, c.body)
		if r.status != c.status || r.json(t)["error"] != c.msg {
			t.Errorf("%d: %s %s: %d %s, want %d %q", i, c.method, c.path, r.status, r.body, c.status, c.msg)
		}
	}
}
