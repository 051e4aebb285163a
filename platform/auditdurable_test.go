package platform_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/platform"
	"github.com/aiaas/aiaas/platform/config"
)

// TestControlPlaneAuditDurable: a control-plane change is answered only
// after its audit record is in the store. A second server on the same
// store (as after the first was killed: its queue gone) must find the
// record of every change the moment it is answered — before, records
// were written once a second and a SIGKILL lost what was answered since.
func TestControlPlaneAuditDurable(t *testing.T) {
	cfg := config.Default()
	cfg.AdminKey = adminKey
	cfg.MasterKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	cfg.TenantRPS, cfg.TenantConcurrency = 0, 0
	mk, _ := cfg.MasterKeyBytes()
	ms, err := modelstore.Open(context.Background(), "mem://", &modelstore.Options{MasterKey: mk})
	if err != nil {
		t.Fatal(err)
	}
	// No periodic flush during the test: what the reader sees was written
	// on the request path.
	writer, err := platform.New(context.Background(), platform.Options{Config: cfg, Store: platform.StoreFrom(ms), AuditFlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvFor(t, writer, ms)
	other, err := platform.New(context.Background(), platform.Options{Config: cfg, Store: platform.StoreFrom(e.store)})
	if err != nil {
		t.Fatal(err)
	}
	reader := newEnvFor(t, other, e.store)
	key := e.tenant("acme")
	seen := func(action string) {
		t.Helper()
		r := reader.do("GET", "/v1/audit?limit=1000", key, nil)
		var page struct {
			Records []struct {
				Action string `json:"action"`
				Status int    `json:"status"`
			} `json:"records"`
		}
		if r.status != 200 || json.Unmarshal(r.body, &page) != nil {
			t.Fatalf("audit: %d %s", r.status, r.body)
		}
		for _, rec := range page.Records {
			if rec.Action == action {
				return
			}
		}
		t.Fatalf("%s was answered but its audit record is not in the store: %s", action, r.body)
	}
	seen("tenant.create")
	if r := e.do("POST", "/v1/models/clf/versions", key, artifact(t, 1)); r.status != 201 {
		t.Fatalf("publish: %d %s", r.status, r.body)
	}
	seen("model.publish")
	if r := e.do("PUT", "/v1/models/clf/aliases/prod", key, map[string]any{"version": 1}); r.status/100 != 2 {
		t.Fatalf("alias: %d %s", r.status, r.body)
	}
	seen("model.alias")
	r := e.do("POST", "/v1/keys", key, map[string]string{"name": "ci", "scope": "invoke"})
	if r.status != 201 {
		t.Fatalf("key: %d %s", r.status, r.body)
	}
	seen("key.create")
	if r := e.do("DELETE", "/v1/keys/"+r.json(t)["id"].(string), key, nil); r.status != 204 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	seen("key.revoke")
	if r := e.do("PUT", "/v1/endpoints/clf", key, map[string]any{"model": "clf", "version": "prod"}); r.status/100 != 2 {
		t.Fatalf("endpoint: %d %s", r.status, r.body)
	}
	seen("endpoint.put")

	// A refusal changed nothing: it is answered without waiting for its
	// record, which the next write takes along.
	if r := e.do("POST", "/v1/keys", key, map[string]string{"name": "bad", "scope": "nope"}); r.status != 400 {
		t.Fatalf("bad key: %d %s", r.status, r.body)
	}
	stored := func() int {
		r := reader.do("GET", "/v1/audit?limit=1000", key, nil)
		return strings.Count(string(r.body), `"action":"key.create","status":400`)
	}
	if n := stored(); n != 0 {
		t.Fatalf("a refused request was written before its answer (%d records)", n)
	}
	if r := e.do("PUT", "/v1/endpoints/clf", key, map[string]any{"model": "clf", "version": "1"}); r.status/100 != 2 {
		t.Fatalf("endpoint: %d %s", r.status, r.body)
	}
	if n := stored(); n != 1 {
		t.Fatalf("the refusal's record did not go with the next write: %d records", n)
	}
}
