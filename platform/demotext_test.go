package platform_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The demo's text endpoints work end to end with the real tokenizer
// plugins: identical sentences embed identically, and text-gen streams a
// completion that ends with a finish reason. A second run changes nothing.
func TestDemoText(t *testing.T) {
	e := newEnvWithPlugins(t)
	key := e.tenant("demo")
	dir := t.TempDir()
	for name, b := range examplePlugins(t) {
		if err := os.WriteFile(filepath.Join(dir, name+".wasm"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	for run := 0; run < 2; run++ {
		embed, gen, skipped, err := e.srv.DemoText(ctx, "demo", dir)
		if err != nil || embed != "text-embed" || gen != "text-gen" || skipped != "" {
			t.Fatalf("run %d: %q %q %q %v", run, embed, gen, skipped, err)
		}
	}
	for _, m := range []string{"text-embed", "text-gen"} {
		r := e.do("GET", "/v1/models/"+m, key, nil)
		var d struct {
			Versions []struct {
				Provenance map[string]string `json:"provenance"`
			} `json:"versions"`
		}
		if r.status != 200 || json.Unmarshal(r.body, &d) != nil || len(d.Versions) != 1 || !strings.Contains(d.Versions[0].Provenance["weights"], "random") {
			t.Errorf("%s: %d %s, want one version marked random", m, r.status, r.body)
		}
	}

	r := e.do("POST", "/openai/v1/embeddings", key, map[string]any{"model": "text-embed", "input": []string{"The cat sat.", "The cat sat.", "Stock prices fell sharply"}})
	var emb struct {
		Data []struct {
			Embedding []float64 `json:"embedding"`
		} `json:"data"`
	}
	if r.status != 200 || json.Unmarshal(r.body, &emb) != nil || len(emb.Data) != 3 {
		t.Fatalf("embeddings: %d %s", r.status, r.body)
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

	s := e.do("POST", "/openai/v1/completions", key, map[string]any{"model": "text-gen", "prompt": "Once upon a time", "max_tokens": 8, "stream": true, "seed": 1})
	events := sseData(t, s.body)
	if s.status != 200 || len(events) < 3 || events[len(events)-1] != "[DONE]" || !strings.Contains(events[len(events)-2], `"finish_reason":"length"`) {
		t.Fatalf("stream: %d %q", s.status, events)
	}
}

// Without the tokenizer plugins (or without a plugin runtime) the demo
// makes no text endpoint and says why.
func TestDemoTextSkipped(t *testing.T) {
	e := newEnvWithPlugins(t)
	e.tenant("demo")
	_, _, skipped, err := e.srv.DemoText(context.Background(), "demo", t.TempDir())
	if err != nil || !strings.Contains(skipped, "wordpiece.wasm") || !strings.Contains(skipped, "make plugins") {
		t.Errorf("no plugins: %q %v", skipped, err)
	}
	e2 := newEnv(t, nil)
	e2.tenant("demo")
	if _, _, skipped, err := e2.srv.DemoText(context.Background(), "demo", t.TempDir()); err != nil || skipped == "" {
		t.Errorf("no plugin runtime: %q %v", skipped, err)
	}
}
