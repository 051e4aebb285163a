package platform_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/platform"
	"github.com/aiaas/aiaas/platform/config"
)

// TestTritonModelConfig: GET …/config answers Triton's ModelConfig JSON —
// TYPE_ names, dims without the batch dimension and a positive
// max_batch_size for a batched model — for the latest version or a named
// one, to an invoke-scope key; another tenant's model is 404 as a missing
// one; the extension is listed.
func TestTritonModelConfig(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.BatchWindow, c.BatchMax = 0, 64 })
	key := e.tenant("acme")
	other := e.tenant("globex")
	e.publish(key, "clf", 1)
	r := e.do("POST", "/v1/keys", key, map[string]string{"name": "ci", "scope": "invoke"})
	invokeKey, _ := r.json(t)["api_key"].(string)
	for i, path := range []string{"/v2/models/clf/config", "/v2/models/clf/versions/1/config", "/v2/models/clf/versions/latest/config"} {
		r := e.do("GET", path, invokeKey, nil)
		if r.status != 200 {
			t.Fatalf("case %d %s: %d %s", i, path, r.status, r.body)
		}
		var cfg struct {
			Name         string `json:"name"`
			Platform     string `json:"platform"`
			MaxBatchSize int    `json:"max_batch_size"`
		}
		if err := json.Unmarshal(r.body, &cfg); err != nil {
			t.Fatal(err)
		}
		if cfg.Name != "clf" || cfg.Platform != "aiaas_gonum" || cfg.MaxBatchSize <= 0 {
			t.Errorf("case %d: %s", i, r.body)
		}
		if !strings.Contains(string(r.body), `"input":[{"name":"input","data_type":"TYPE_FP32","format":"FORMAT_NONE","dims":[4]}]`) ||
			!strings.Contains(string(r.body), `"output":[{"name":"probabilities","data_type":"TYPE_FP32","dims":[3]}]`) {
			t.Errorf("case %d: tensors: %s", i, r.body)
		}
	}
	for i, tc := range []struct {
		path, key string
		status    int
	}{
		{"/v2/models/clf/config", other, 404},
		{"/v2/models/nope/config", key, 404},
		{"/v2/models/clf/versions/9/config", key, 404},
		{"/v2/models/clf/config", "", 401},
		{"/v2/models/clf/versions/0/config", key, 400},
	} {
		if r := e.do("GET", tc.path, tc.key, nil); r.status != tc.status || !json.Valid(r.body) {
			t.Errorf("case %d %s: %d %s, want %d", i, tc.path, r.status, r.body, tc.status)
		}
	}
	if r := e.do("POST", "/v2/models/clf/config", key, "{}"); r.status != 405 || r.header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST config: %d Allow %q", r.status, r.header.Get("Allow"))
	}
	if r := e.do("GET", "/v2", "", nil); !strings.Contains(string(r.body), `"classification","model_configuration","statistics"`) {
		t.Errorf("server metadata: %s", r.body)
	}
}

// TestTritonModelStats: GET …/stats answers Triton's statistics shape from
// this process's counters for the tenant: successes with their batch rows,
// failures once the version is known, zeros for a version never called;
// another tenant neither sees nor can name them.
func TestTritonModelStats(t *testing.T) {
	e := newEnv(t, nil)
	key := e.tenant("acme")
	other := e.tenant("globex")
	e.publish(key, "clf", 1)
	e.publish(key, "clf", 2)
	e.publish(other, "clf", 3)
	for _, rows := range []int{1, 3} {
		if r := e.do("POST", "/v2/models/clf/versions/1/infer", key, inferBody(rows)); r.status != 200 {
			t.Fatalf("infer: %d %s", r.status, r.body)
		}
	}
	bad := map[string]any{"inputs": []map[string]any{{"name": "input", "shape": []int{1, 5}, "datatype": "FP32", "data": []float32{1, 2, 3, 4, 5}}}}
	if r := e.do("POST", "/v2/models/clf/versions/1/infer", key, bad); r.status != 400 {
		t.Fatalf("bad infer: %d %s", r.status, r.body)
	}
	e.do("POST", "/v2/models/clf/infer", other, inferBody(2)) // another tenant's counters

	type stat struct {
		Name           string `json:"name"`
		Version        string `json:"version"`
		LastInference  int64  `json:"last_inference"`
		InferenceCount int    `json:"inference_count"`
		ExecutionCount int    `json:"execution_count"`
		InferenceStats map[string]struct {
			Count int   `json:"count"`
			NS    int64 `json:"ns"`
		} `json:"inference_stats"`
		BatchStats []any `json:"batch_stats"`
	}
	get := func(path, k string) []stat {
		t.Helper()
		r := e.do("GET", path, k, nil)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
		var res struct {
			ModelStats []stat `json:"model_stats"`
		}
		if err := json.Unmarshal(r.body, &res); err != nil || res.ModelStats == nil {
			t.Fatalf("%s: %v %s", path, err, r.body)
		}
		return res.ModelStats
	}
	v1 := get("/v2/models/clf/versions/1/stats", key)
	if len(v1) != 1 {
		t.Fatalf("version 1: %+v", v1)
	}
	s := v1[0]
	is := s.InferenceStats
	if s.Name != "clf" || s.Version != "1" || s.InferenceCount != 4 || s.ExecutionCount != 2 || s.LastInference == 0 ||
		is["success"].Count != 2 || is["success"].NS <= 0 || is["fail"].Count != 1 ||
		is["compute_infer"].Count != 2 || is["compute_input"].Count != 2 || is["compute_output"].Count != 2 || s.BatchStats == nil {
		t.Errorf("version 1 stats: %+v", s)
	}
	all := get("/v2/models/clf/stats", key)
	if len(all) != 2 || all[0].Version != "1" || all[1].Version != "2" || all[1].InferenceCount != 0 || all[1].InferenceStats["success"].Count != 0 {
		t.Errorf("model stats: %+v", all)
	}
	tenant := get("/v2/models/stats", key)
	if len(tenant) != 1 || tenant[0].Version != "1" || tenant[0].InferenceCount != 4 {
		t.Errorf("tenant stats: %+v", tenant)
	}
	if o := get("/v2/models/stats", other); len(o) != 1 || o[0].InferenceCount != 2 {
		t.Errorf("the other tenant's stats: %+v", o)
	}
	for i, tc := range []struct{ path, key string }{
		{"/v2/models/nope/stats", key},
		{"/v2/models/clf/versions/7/stats", key},
	} {
		if r := e.do("GET", tc.path, tc.key, nil); r.status != 404 {
			t.Errorf("case %d %s: %d %s", i, tc.path, r.status, r.body)
		}
	}
	// The other tenant's model of the same name is its own: version 2
	// does not exist there.
	if r := e.do("GET", "/v2/models/clf/versions/2/stats", other, nil); r.status != 404 {
		t.Errorf("other tenant, version 2: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/v2/models/clf/stats", "", nil); r.status != 401 {
		t.Errorf("no key: %d", r.status)
	}
}

// TestTritonModelStatsOnLambda: where many processes serve (Lambda), one
// process's counters would mislead; the statistics routes say so with a
// 404, as the metrics routes do.
func TestTritonModelStatsOnLambda(t *testing.T) {
	ctx := context.Background()
	cfg := config.Default()
	cfg.AdminKey = adminKey
	cfg.MasterKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	k, _ := cfg.MasterKeyBytes()
	ms, err := modelstore.Open(ctx, "mem://", &modelstore.Options{MasterKey: k})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := platform.New(ctx, platform.Options{Config: cfg, Store: platform.StoreFrom(ms), NoProcessMetrics: true})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvFor(t, srv, ms)
	key := e.tenant("acme")
	e.publish(key, "clf", 1)
	for _, path := range []string{"/v2/models/stats", "/v2/models/clf/stats"} {
		if r := e.do("GET", path, key, nil); r.status != 404 || !strings.Contains(string(r.body), "many processes") {
			t.Errorf("%s: %d %s", path, r.status, r.body)
		}
	}
	if r := e.do("GET", "/v2/models/clf/config", key, nil); r.status != 200 {
		t.Errorf("config: %d %s", r.status, r.body)
	}
}
