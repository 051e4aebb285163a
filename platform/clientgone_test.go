package platform_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aiaas/aiaas/platform"
)

// A request whose client went away is recorded as 499, not as a 500 with
// an error log line: under wrk, the last in-flight requests of every run
// showed up as server failures.
func TestClientClosedRequest(t *testing.T) {
	e := newEnvOn(t, "file://"+t.TempDir(), nil)
	key := e.tenant("acme")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequestWithContext(ctx, "POST", "/v1/models/clf/versions", bytes.NewReader(artifact(t, 1)))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/octet-stream")
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, req)
	if w.Code != platform.StatusClientClosed {
		t.Fatalf("status %d, want %d: %s", w.Code, platform.StatusClientClosed, w.Body)
	}
	// The server is unaffected: the same publish with a live client works.
	if r := e.do("POST", "/v1/models/clf/versions", key, artifact(t, 1), "Content-Type", "application/octet-stream"); r.status != http.StatusCreated {
		t.Fatalf("publish after: %d %s", r.status, r.body)
	}
}
