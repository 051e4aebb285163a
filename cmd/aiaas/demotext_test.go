package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/platform"
	"github.com/aiaas/aiaas/platform/config"
	"github.com/aiaas/aiaas/plugins"
)

// demoServer is a platform server on a memory store, with a plugin
// runtime when withPlugins, and the tenant "demo" with its key.
func demoServer(t *testing.T, withPlugins bool) (srv *platform.Server, tenant, key string, ts *httptest.Server) {
	t.Helper()
	ctx := context.Background()
	cfg := config.Default()
	cfg.AdminKey = "admin-demo-test-key-0123456789"
	cfg.MasterKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	cfg.TenantRPS, cfg.TenantConcurrency = 0, 0
	mk, _ := cfg.MasterKeyBytes()
	ms, err := modelstore.Open(ctx, "mem://", &modelstore.Options{MasterKey: mk})
	if err != nil {
		t.Fatal(err)
	}
	opts := platform.Options{Config: cfg, Store: platform.StoreFrom(ms)}
	if withPlugins {
		// Generous guest deadlines: a Go module's first start under
		// -race on a busy 2-core machine has taken longer than the 5 s
		// default.
		host, err := plugins.New(ctx, &plugins.Options{CacheDir: filepath.Join(os.TempDir(), "aiaas-cmd-test-wazero"),
			InitTimeout: time.Minute, CallTimeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { host.Close(context.Background()) })
		opts.Plugins = host
	}
	srv, err = platform.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	ts = httptest.NewServer(srv)
	t.Cleanup(func() { ts.Close(); srv.Close(context.Background()) })
	tn, k, err := srv.CreateTenant(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	return srv, tn.ID, k.Reveal(), ts
}

// buildTextPlugins builds the tokenizer and pooling plugins the text
// endpoints need into dir. The tokenizers embed vocabularies fetched by
// scripts/fetch-vocab.sh (make test's deps run it too).
func buildTextPlugins(t *testing.T, dir string) {
	t.Helper()
	fetch := exec.Command("scripts/fetch-vocab.sh")
	fetch.Dir = "../.."
	if b, err := fetch.CombinedOutput(); err != nil {
		t.Fatalf("scripts/fetch-vocab.sh: %v\n%s", err, b)
	}
	for _, name := range demoTextPlugins {
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", filepath.Join(dir, name+".wasm"), "./examples/plugins/"+name)
		cmd.Dir = "../.."
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", name, err, b)
		}
	}
}

func demoCall(t *testing.T, ts *httptest.Server, method, path, key string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, b
}

// The demo's text endpoints work end to end with the real tokenizer
// plugins: identical sentences embed identically, and text-gen streams a
// completion that ends with a finish reason. A second run changes nothing.
func TestDemoText(t *testing.T) {
	srv, tenant, key, ts := demoServer(t, true)
	dir := t.TempDir()
	buildTextPlugins(t, dir)
	ctx := context.Background()
	for run := 0; run < 2; run++ {
		embed, gen, skipped, err := demoText(ctx, srv, tenant, dir, func(string, ...any) {})
		if err != nil || embed != "text-embed" || gen != "text-gen" || skipped != "" {
			t.Fatalf("run %d: %q %q %q %v", run, embed, gen, skipped, err)
		}
	}
	for _, m := range []string{"text-embed", "text-gen"} {
		status, body := demoCall(t, ts, "GET", "/v1/models/"+m, key, nil)
		var d struct {
			Versions []struct {
				Provenance map[string]string `json:"provenance"`
			} `json:"versions"`
		}
		if status != 200 || json.Unmarshal(body, &d) != nil || len(d.Versions) != 1 || !strings.Contains(d.Versions[0].Provenance["weights"], "random") {
			t.Errorf("%s: %d %s, want one version marked random", m, status, body)
		}
	}

	status, body := demoCall(t, ts, "POST", "/openai/v1/embeddings", key, map[string]any{"model": "text-embed", "input": []string{"The cat sat.", "The cat sat.", "Stock prices fell sharply"}})
	var emb struct {
		Data []struct {
			Embedding []float64 `json:"embedding"`
		} `json:"data"`
	}
	if status != 200 || json.Unmarshal(body, &emb) != nil || len(emb.Data) != 3 {
		t.Fatalf("embeddings: %d %s", status, body)
	}
	cos := func(a, b []float64) float64 {
		var d, na, nb float64
		for i := range a {
			d, na, nb = d+a[i]*b[i], na+a[i]*a[i], nb+b[i]*b[i]
		}
		return d / math.Sqrt(na*nb)
	}
	if len(emb.Data[0].Embedding) != 64 || math.Abs(cos(emb.Data[0].Embedding, emb.Data[1].Embedding)-1) > 1e-5 {
		t.Errorf("identical sentences: cosine %v (dim %d)", cos(emb.Data[0].Embedding, emb.Data[1].Embedding), len(emb.Data[0].Embedding))
	}
	if c := cos(emb.Data[0].Embedding, emb.Data[2].Embedding); c > 0.9 {
		t.Errorf("unrelated sentences: cosine %v", c)
	}

	status, body = demoCall(t, ts, "POST", "/openai/v1/completions", key, map[string]any{"model": "text-gen", "prompt": "Once upon a time", "max_tokens": 8, "stream": true, "seed": 1})
	var events []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			events = append(events, d)
		}
	}
	if status != 200 || len(events) < 3 || events[len(events)-1] != "[DONE]" || !strings.Contains(events[len(events)-2], `"finish_reason":"length"`) {
		t.Fatalf("stream: %d %q", status, events)
	}
}

// Without the tokenizer plugins (or without a plugin runtime) the demo
// makes no text endpoint and says why.
func TestDemoTextSkipped(t *testing.T) {
	ctx := context.Background()
	srv, tenant, _, _ := demoServer(t, true)
	_, _, skipped, err := demoText(ctx, srv, tenant, t.TempDir(), func(string, ...any) {})
	if err != nil || !strings.Contains(skipped, "wordpiece.wasm") || !strings.Contains(skipped, "make plugins") {
		t.Errorf("no plugins: %q %v", skipped, err)
	}
	srv2, tenant2, _, _ := demoServer(t, false)
	if _, _, skipped, err := demoText(ctx, srv2, tenant2, t.TempDir(), func(string, ...any) {}); err != nil || skipped == "" {
		t.Errorf("no plugin runtime: %q %v", skipped, err)
	}
}

// The demo's key is reused across starts while it is valid, and replaced
// when it belongs to another tenant or is revoked.
func TestDemoKey(t *testing.T) {
	ctx := context.Background()
	srv, tenant, first, ts := demoServer(t, false)
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, []byte(first+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if k, err := demoKey(ctx, srv, tenant, path); err != nil || k != first {
		t.Fatalf("valid saved key: got %q %v, want it reused", k, err)
	}
	other, otherKey, err := srv.CreateTenant(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	k, err := demoKey(ctx, srv, other.ID, path)
	if err != nil || k == first {
		t.Fatalf("another tenant's key: got %q %v, want a new one", k, err)
	}
	if b, _ := os.ReadFile(path); strings.TrimSpace(string(b)) != k {
		t.Errorf("the new key was not saved: %q", b)
	}
	if status, body := demoCall(t, ts, "GET", "/v1/models", k, nil); status != 200 {
		t.Errorf("new key: %d %s", status, body)
	}
	// Revoke the new key through the API: the next start makes another.
	status, body := demoCall(t, ts, "GET", "/v1/keys", otherKey.Reveal(), nil)
	var keys struct {
		Keys []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"keys"`
	}
	if status != 200 || json.Unmarshal(body, &keys) != nil {
		t.Fatalf("keys: %d %s", status, body)
	}
	revoked := false
	for _, kv := range keys.Keys {
		if kv.Name == "demo" {
			if status, body := demoCall(t, ts, "DELETE", "/v1/keys/"+kv.ID, otherKey.Reveal(), nil); status >= 300 {
				t.Fatalf("revoke: %d %s", status, body)
			}
			revoked = true
		}
	}
	if !revoked {
		t.Fatalf("no key named demo in %s", body)
	}
	if k2, err := demoKey(ctx, srv, other.ID, path); err != nil || k2 == k {
		t.Errorf("revoked saved key: got %q %v, want a new one", k2, err)
	}
}
