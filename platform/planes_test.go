package platform_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/platform"
	"github.com/aiaas/aiaas/platform/config"
)

// planeEnvs builds the Lambda layout on one store: a control-plane server
// (admin function) and a data-plane server (infer function), both without
// process metrics. wrap, when set, wraps the data plane's handler.
func planeEnvs(t *testing.T, wrap func(http.Handler) http.Handler) (control, data *env) {
	t.Helper()
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
	open := func(p platform.Plane) *platform.Server {
		srv, err := platform.New(ctx, platform.Options{Config: cfg, Store: platform.StoreFrom(ms), Plane: p, NoProcessMetrics: true})
		if err != nil {
			t.Fatal(err)
		}
		return srv
	}
	control = newEnvFor(t, open(platform.PlaneControl), ms)
	dsrv := open(platform.PlaneData)
	var h http.Handler = dsrv
	if wrap != nil {
		h = wrap(dsrv)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(func() {
		ts.Close()
		dsrv.Close(context.Background())
	})
	return control, &env{t: t, srv: dsrv, ts: ts, store: ms}
}

func TestPlanesServeTheirOwnRoutes(t *testing.T) {
	control, data := planeEnvs(t, nil)
	key := control.tenant("acme")
	v := control.publish(key, "m", 1)
	if v != 1 {
		t.Fatalf("published version %d", v)
	}
	// The data plane serves inference and explain; the control plane
	// says where they are served instead of serving them.
	if r := data.do("POST", "/v2/models/m/infer", key, inferBody(2)); r.status != 200 {
		t.Fatalf("data plane infer: %d %s", r.status, r.body)
	}
	for _, c := range []struct {
		e            *env
		method, path string
		want         string
	}{
		{control, "POST", "/v2/models/m/infer", "data plane"},
		{control, "POST", "/v1/models/m/explain", "data plane"},
		{control, "GET", "/v2/models/m", "data plane"},
		{control, "POST", "/openai/v1/embeddings", "data plane"},
		{data, "GET", "/v1/models", "control plane"},
		{data, "POST", "/v1/tenants", "control plane"},
		{data, "POST", "/v1/training-jobs", "control plane"},
	} {
		r := c.e.do(c.method, c.path, key, `{}`)
		if r.status != 404 || !strings.Contains(string(r.body), c.want) {
			t.Errorf("%s %s: %d %s, want 404 naming the %s", c.method, c.path, r.status, r.body, c.want)
		}
	}
	if r := control.do("GET", "/v1/models", key, nil); r.status != 200 {
		t.Errorf("control plane list models: %d %s", r.status, r.body)
	}
	// Health and metadata on both.
	for _, e := range []*env{control, data} {
		if r := e.do("GET", "/v2/health/ready", "", nil); r.status != 200 {
			t.Errorf("ready: %d %s", r.status, r.body)
		}
	}
	// One process's counters are not the deployment's.
	for _, c := range []struct {
		e    *env
		path string
		key  string
	}{{control, "/metrics", adminKey}, {data, "/v1/metrics", key}, {control, "/v1/metrics", key}} {
		r := c.e.do("GET", c.path, c.key, nil)
		if r.status != 404 || !strings.Contains(string(r.body), "CloudWatch") {
			t.Errorf("GET %s: %d %s, want a 404 pointing at CloudWatch", c.path, r.status, r.body)
		}
	}
}

func TestExecutionTenantRefusesOtherKeys(t *testing.T) {
	envTenant := ""
	control, data := planeEnvs(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, r.WithContext(platform.WithExecutionTenant(r.Context(), envTenant)))
		})
	})
	r := control.do("POST", "/v1/tenants", adminKey, map[string]string{"name": "acme"})
	if r.status != 201 {
		t.Fatalf("create tenant: %d %s", r.status, r.body)
	}
	acme, acmeKey := r.json(t)["id"].(string), r.json(t)["api_key"].(string)
	otherKey := control.tenant("other")
	control.publish(acmeKey, "m", 1)
	control.publish(otherKey, "m", 2)

	envTenant = acme
	if r := data.do("POST", "/v2/models/m/infer", acmeKey, inferBody(1)); r.status != 200 {
		t.Fatalf("own tenant in its environment: %d %s", r.status, r.body)
	}
	if r := data.do("POST", "/v2/models/m/infer", otherKey, inferBody(1)); r.status != 403 || !strings.Contains(string(r.body), acme) {
		t.Errorf("another tenant's key in acme's environment: %d %s, want 403", r.status, r.body)
	}
	envTenant = ""
	if r := data.do("POST", "/v2/models/m/infer", acmeKey, inferBody(1)); r.status != 400 || !strings.Contains(string(r.body), "X-Aiaas-Tenant") {
		t.Errorf("no tenant ID: %d %s, want 400 naming X-Aiaas-Tenant", r.status, r.body)
	}
	// Health needs no key and no tenant.
	if r := data.do("GET", "/v2/health/live", "", nil); r.status != 200 {
		t.Errorf("live: %d %s", r.status, r.body)
	}
}
