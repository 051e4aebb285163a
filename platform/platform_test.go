package platform_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/platform"
	"github.com/aiaas/aiaas/platform/config"
)

const adminKey = "test-admin-key-0123456789abcdef"

type env struct {
	t     *testing.T
	srv   *platform.Server
	ts    *httptest.Server
	store *modelstore.Store
}

func newEnv(t *testing.T, mutate func(*config.Config)) *env {
	return newEnvOn(t, "mem://", mutate)
}

// stores lists the store URLs the end-to-end tests run on: memory, a
// folder, and MinIO when scripts/minio.sh started one (make test does, and
// sets AIAAS_REQUIRE_S3=1 so that a missing MinIO fails instead of skipping).
func stores(t *testing.T) map[string]string {
	m := map[string]string{"mem": "mem://", "file": "file://" + t.TempDir()}
	ep := os.Getenv("AIAAS_TEST_S3_ENDPOINT")
	switch {
	case ep != "":
		m["s3"] = fmt.Sprintf("s3://aiaas-platform-%d?endpoint=%s&secure=false&create=true", time.Now().UnixNano()%1e9, ep)
	case os.Getenv("AIAAS_REQUIRE_S3") == "1":
		t.Fatal("AIAAS_REQUIRE_S3=1 but AIAAS_TEST_S3_ENDPOINT is unset: eval \"$(scripts/minio.sh start)\"")
	}
	return m
}

func newEnvOn(t *testing.T, storeURL string, mutate func(*config.Config)) *env {
	t.Helper()
	ctx := context.Background()
	cfg := config.Default()
	cfg.AdminKey = adminKey
	cfg.MasterKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	cfg.TenantRPS, cfg.TenantConcurrency = 0, 0
	if mutate != nil {
		mutate(&cfg)
	}
	key, _ := cfg.MasterKeyBytes()
	ms, err := modelstore.Open(ctx, storeURL, &modelstore.Options{MasterKey: key,
		S3AccessKey: os.Getenv("AIAAS_TEST_S3_ACCESS_KEY"), S3SecretKey: os.Getenv("AIAAS_TEST_S3_SECRET_KEY")})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := platform.New(ctx, platform.Options{Config: cfg, Store: platform.StoreFrom(ms)})
	if err != nil {
		t.Fatal(err)
	}
	return newEnvFor(t, srv, ms)
}

func newEnvFor(t *testing.T, srv *platform.Server, ms *modelstore.Store) *env {
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ts.Close()
		srv.Close(context.Background())
	})
	return &env{t: t, srv: srv, ts: ts, store: ms}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not JSON (%d): %q", r.status, r.body)
	}
	return m
}

func (e *env) do(method, path, key string, body any, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.ts.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, b}
}

// tenant creates a tenant and returns its manage key.
func (e *env) tenant(name string) string {
	e.t.Helper()
	r := e.do("POST", "/v1/tenants", adminKey, map[string]string{"name": name})
	if r.status != 201 {
		e.t.Fatalf("create tenant: %d %s", r.status, r.body)
	}
	return r.json(e.t)["api_key"].(string)
}

// artifact makes a small classifier: 4 inputs → 3 classes.
func artifact(t *testing.T, seed int64) []byte {
	t.Helper()
	spec := nn.Spec{
		Inputs:  []nn.TensorSpec{{Name: "input", Datatype: "FP32", Shape: []int64{-1, 4}}},
		Outputs: []nn.TensorSpec{{Name: "probabilities", Datatype: "FP32", Shape: []int64{-1, 3}}},
		Layers:  []nn.Layer{{Type: "dense", Units: 8, Activation: "relu"}, {Type: "dense", Units: 3, Activation: "softmax"}},
	}
	return artifactOf(t, spec, seed)
}

func mnistSpec() nn.Spec {
	s := nn.MLP("digits", 784, []int{32}, "relu", 10, "softmax")
	s.Outputs[0].Name = "probabilities"
	return s
}

func artifactOf(t *testing.T, spec nn.Spec, seed int64) []byte {
	t.Helper()
	m, err := nn.New(spec, seed)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := m.WriteArtifact(&buf, nn.Metadata{Spec: spec, Metrics: map[string]any{"test_accuracy": 0.5}}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func (e *env) publish(key, model string, seed int64) int {
	e.t.Helper()
	r := e.do("POST", "/v1/models/"+model+"/versions", key, artifact(e.t, seed), "Content-Type", "application/octet-stream")
	if r.status != 201 {
		e.t.Fatalf("publish: %d %s", r.status, r.body)
	}
	return int(r.json(e.t)["version"].(float64))
}

func inferBody(rows int) map[string]any {
	data := make([]float32, rows*4)
	for i := range data {
		data[i] = float32(i%7) / 7
	}
	return map[string]any{"id": "req-1", "inputs": []map[string]any{{"name": "input", "shape": []int{rows, 4}, "datatype": "FP32", "data": data}}}
}

func TestHealthAndServerMetadata(t *testing.T) {
	e := newEnv(t, nil)
	for i, tc := range []struct{ path, want string }{
		{"/v2/health/live", `"live":true`},
		{"/v2/health/ready", `"ready":true`},
		{"/v2", `"extensions":["binary_tensor_data"`},
	} {
		r := e.do("GET", tc.path, "", nil)
		if r.status != 200 || !strings.Contains(string(r.body), tc.want) {
			t.Errorf("case %d %s: %d %s", i, tc.path, r.status, r.body)
		}
	}
}

func TestInferEndToEnd(t *testing.T) {
	for name, url := range stores(t) {
		t.Run(name, func(t *testing.T) { testInferEndToEnd(t, newEnvOn(t, url, nil)) })
	}
}

func testInferEndToEnd(t *testing.T, e *env) {
	key := e.tenant("acme")
	if v := e.publish(key, "clf", 1); v != 1 {
		t.Fatalf("first version is %d", v)
	}
	r := e.do("POST", "/v2/models/clf/infer", key, inferBody(2))
	if r.status != 200 {
		t.Fatalf("infer: %d %s", r.status, r.body)
	}
	m := r.json(t)
	if m["id"] != "req-1" || m["model_name"] != "clf" || m["model_version"] != "1" {
		t.Fatalf("response: %s", r.body)
	}
	params := m["parameters"].(map[string]any)
	if params["model_version"] != "1" || len(params["model_sha256"].(string)) != 64 {
		t.Fatalf("lineage: %v", params)
	}
	out := m["outputs"].([]any)[0].(map[string]any)
	data := out["data"].([]any)
	if out["name"] != "probabilities" || len(data) != 6 || fmt.Sprint(out["shape"]) != "[2 3]" {
		t.Fatalf("output: %v", out)
	}
	sum := 0.0
	for _, v := range data[:3] {
		sum += v.(float64)
	}
	if math.Abs(sum-1) > 1e-5 {
		t.Fatalf("softmax row sums to %v", sum)
	}
	if st := r.header.Get("Server-Timing"); !strings.Contains(st, "load;dur=") || !strings.Contains(st, "compute;dur=") {
		t.Fatalf("Server-Timing: %q", st)
	}
	// Same answer through the versioned path, the metadata names the signature.
	if r2 := e.do("POST", "/v2/models/clf/versions/1/infer", key, inferBody(2)); r2.status != 200 || !bytes.Equal(outputsOf(t, r2), outputsOf(t, r)) {
		t.Fatalf("versioned infer differs: %s", r2.body)
	}
	md := e.do("GET", "/v2/models/clf", key, nil)
	if md.status != 200 || !strings.Contains(string(md.body), `"inputs":[{"name":"input","datatype":"FP32","shape":[-1,4]}]`) {
		t.Fatalf("metadata: %d %s", md.status, md.body)
	}
	if rd := e.do("GET", "/v2/models/clf/versions/1/ready", key, nil); rd.status != 200 || !strings.Contains(string(rd.body), `"ready":true`) {
		t.Fatalf("ready: %d %s", rd.status, rd.body)
	}
}

func outputsOf(t *testing.T, r resp) []byte {
	b, _ := json.Marshal(r.json(t)["outputs"])
	return b
}

func TestInferBinaryExtension(t *testing.T) {
	e := newEnv(t, nil)
	key := e.tenant("acme")
	e.publish(key, "clf", 1)
	x := []float32{0.1, 0.2, 0.3, 0.4}
	raw := make([]byte, 16)
	for i, v := range x {
		binary.LittleEndian.PutUint32(raw[i*4:], math.Float32bits(v))
	}
	hdr := `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","parameters":{"binary_data_size":16}}],"outputs":[{"name":"probabilities","parameters":{"binary_data":true}}]}`
	r := e.do("POST", "/v2/models/clf/infer", key, append([]byte(hdr), raw...), "Inference-Header-Content-Length", fmt.Sprint(len(hdr)))
	if r.status != 200 {
		t.Fatalf("binary infer: %d %s", r.status, r.body)
	}
	var hl int
	fmt.Sscan(r.header.Get("Inference-Header-Content-Length"), &hl)
	if hl <= 0 || hl+12 != len(r.body) {
		t.Fatalf("response header length %d, body %d bytes", hl, len(r.body))
	}
	var sum float32
	for i := 0; i < 3; i++ {
		sum += math.Float32frombits(binary.LittleEndian.Uint32(r.body[hl+4*i:]))
	}
	if math.Abs(float64(sum-1)) > 1e-5 {
		t.Fatalf("binary outputs sum to %v", sum)
	}
	// The same request in JSON gives the same numbers.
	j := e.do("POST", "/v2/models/clf/infer", key, map[string]any{"inputs": []map[string]any{{"name": "input", "shape": []int{1, 4}, "datatype": "FP32", "data": x}}})
	data := j.json(t)["outputs"].([]any)[0].(map[string]any)["data"].([]any)
	for i := 0; i < 3; i++ {
		if got := math.Float32frombits(binary.LittleEndian.Uint32(r.body[hl+4*i:])); float32(data[i].(float64)) != got {
			t.Fatalf("binary %v vs JSON %v", got, data[i])
		}
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.MaxBodyBytes = 64 << 10 })
	key := e.tenant("acme")
	e.publish(key, "clf", 1)
	other := e.tenant("other")
	e.publish(other, "secret-model", 1)
	huge := strings.Repeat("x", 100<<10)
	for i, tc := range []struct {
		method, path, key string
		body              any
		status            int
		want              string
	}{
		{"POST", "/v2/models/clf/infer", key, "{", 400, "JSON"},
		{"POST", "/v2/models/clf/infer", key, `{"inputs":[{"name":"input","shape":[1,5],"datatype":"FP32","data":[1,2,3,4,5]}]}`, 400, "shape"},
		{"POST", "/v2/models/clf/infer", key, `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3]}]}`, 400, ""},
		{"POST", "/v2/models/clf/infer", key, `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,"NaN"]}]}`, 400, ""},
		{"POST", "/v2/models/clf/infer", key, `{"inputs":[{"name":"pixels","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`, 400, `"pixels"`},
		{"POST", "/v2/models/clf/infer", key, `{"inputs":[]}`, 400, "input"},
		{"POST", "/v2/models/clf/infer", key, `{"inputs":[{"name":"input","shape":[1,4],"datatype":"INT8","data":[1,2,3,400]}]}`, 400, ""},
		{"POST", "/v2/models/clf/infer", key, `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}],"outputs":[{"name":"logits"}]}`, 400, `"logits"`},
		{"POST", "/v2/models/clf/infer", key, huge, 413, "larger"},
		{"POST", "/v2/models/nope/infer", key, inferBody(1), 404, "not found"},
		{"POST", "/v2/models/clf/versions/9/infer", key, inferBody(1), 404, "version 9"},
		{"POST", "/v2/models/clf/versions/canary/infer", key, inferBody(1), 404, "alias"},
		{"POST", "/v2/models/secret-model/infer", key, inferBody(1), 404, "not found"},
		{"GET", "/v2/models/secret-model", key, nil, 404, "not found"},
		{"POST", "/v2/models/clf/infer", "", inferBody(1), 401, "missing API key"},
		{"POST", "/v2/models/clf/infer", "aiaas_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", inferBody(1), 401, "invalid"},
		{"POST", "/v2/models/clf/infer", "garbage", inferBody(1), 401, "invalid"},
		{"POST", "/v1/tenants", key, map[string]string{"name": "x"}, 403, "admin"},
		{"GET", "/v1/models", adminKey, nil, 403, "tenant"},
		{"POST", "/v1/models/a%2Fb/versions", key, artifact(t, 1), 400, ""},
		{"POST", "/v1/models/clf/versions", key, []byte("not safetensors"), 400, ""},
		{"PUT", "/v1/models/clf/aliases/prod", key, `{"version":7}`, 404, "no version 7"},
		{"PUT", "/v1/models/clf/aliases/prod", key, `{"version":1,"bogus":1}`, 400, "bogus"},
		{"PUT", "/v1/models/clf/aliases/Latest", key, `{"version":1}`, 400, "alias"},
		{"GET", "/v1/nothing-here", key, nil, 404, "no route"},
		{"PUT", "/v2/models/clf/infer", key, nil, 405, "allowed: POST"},
		{"DELETE", "/v2/health/ready", key, nil, 405, "allowed: GET"},
		{"POST", "/v1/training-jobs", key, `{"model":"m","dataset":"mnist","epochs":100000}`, 400, "epochs"},
		{"GET", "/v1/training-jobs/jdoesnotexist", key, nil, 404, "not found"},
	} {
		r := e.do(tc.method, tc.path, tc.key, tc.body)
		if r.status != tc.status {
			t.Errorf("case %d %s %s: status %d, want %d: %s", i, tc.method, tc.path, r.status, tc.status, r.body)
			continue
		}
		m := r.json(t)
		msg, _ := m["error"].(string)
		if msg == "" || !strings.Contains(msg, tc.want) {
			t.Errorf("case %d %s %s: error %q, want it to mention %q", i, tc.method, tc.path, msg, tc.want)
		}
		if strings.Contains(string(r.body), "secret-model") && tc.path != "/v2/models/secret-model/infer" && tc.path != "/v2/models/secret-model" {
			t.Errorf("case %d leaks another tenant's name: %s", i, r.body)
		}
	}
	// Another tenant's model and a missing one answer alike.
	a := e.do("POST", "/v2/models/secret-model/infer", key, inferBody(1))
	b := e.do("POST", "/v2/models/missing-model/infer", key, inferBody(1))
	if a.status != b.status || strings.ReplaceAll(string(a.body), "secret-model", "X") != strings.ReplaceAll(string(b.body), "missing-model", "X") {
		t.Errorf("other tenant's model (%d %s) and a missing one (%d %s) differ", a.status, a.body, b.status, b.body)
	}
}

func TestKeysScopesAndRevocation(t *testing.T) {
	e := newEnv(t, nil)
	key := e.tenant("acme")
	e.publish(key, "clf", 1)
	r := e.do("POST", "/v1/keys", key, map[string]string{"name": "ci", "scope": "invoke"})
	if r.status != 201 {
		t.Fatalf("create key: %d %s", r.status, r.body)
	}
	inv := r.json(t)["api_key"].(string)
	id := r.json(t)["id"].(string)
	if r := e.do("POST", "/v2/models/clf/infer", inv, inferBody(1)); r.status != 200 {
		t.Fatalf("invoke key cannot infer: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/v1/models", inv, nil); r.status != 403 {
		t.Fatalf("invoke key can manage: %d %s", r.status, r.body)
	}
	list := e.do("GET", "/v1/keys", key, nil)
	if list.status != 200 || strings.Contains(string(list.body), inv) || !strings.Contains(string(list.body), id) {
		t.Fatalf("key list: %s", list.body)
	}
	if r := e.do("DELETE", "/v1/keys/"+id, key, nil); r.status != 204 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v2/models/clf/infer", inv, inferBody(1)); r.status != 401 {
		t.Fatalf("revoked key still works: %d %s", r.status, r.body)
	}
	// Another tenant cannot revoke acme's keys.
	other := e.tenant("other")
	if r := e.do("DELETE", "/v1/keys/"+id, other, nil); r.status != 404 {
		t.Fatalf("cross-tenant revoke: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/tenants", adminKey, map[string]string{"name": "acme"}); r.status != 409 {
		t.Fatalf("duplicate tenant: %d %s", r.status, r.body)
	}
}

func TestAliasesAndCanary(t *testing.T) {
	e := newEnv(t, nil)
	key := e.tenant("acme")
	e.publish(key, "clf", 1)
	e.publish(key, "clf", 2)
	if r := e.do("PUT", "/v1/models/clf/aliases/prod", key, map[string]int{"version": 1}); r.status != 200 {
		t.Fatalf("alias: %d %s", r.status, r.body)
	}
	if v := e.do("POST", "/v2/models/clf/versions/prod/infer", key, inferBody(1)).json(t)["model_version"]; v != "1" {
		t.Fatalf("prod serves %v", v)
	}
	if v := e.do("POST", "/v2/models/clf/infer", key, inferBody(1)).json(t)["model_version"]; v != "2" {
		t.Fatalf("latest serves %v", v)
	}
	// Each answer's parameters are its own lineage: a version's answers
	// share theirs (made once per loaded version), and an alias's add
	// the alias, before and after.
	params := func(path string) map[string]any {
		p, _ := e.do("POST", path, key, inferBody(1)).json(t)["parameters"].(map[string]any)
		return p
	}
	for _, c := range []struct {
		path, version, alias string
	}{{"/v2/models/clf/versions/1/infer", "1", ""}, {"/v2/models/clf/versions/prod/infer", "1", "prod"}, {"/v2/models/clf/versions/1/infer", "1", ""}, {"/v2/models/clf/versions/2/infer", "2", ""}} {
		p := params(c.path)
		if alias, _ := p["alias"].(string); p["model_version"] != c.version || alias != c.alias {
			t.Fatalf("%s: parameters %v, want version %s alias %q", c.path, p, c.version, c.alias)
		}
	}
	r := e.do("PUT", "/v1/models/clf/aliases/prod", key, map[string]int{"version": 1, "canary_version": 2, "canary_weight": 30})
	if r.status != 200 {
		t.Fatalf("canary alias: %d %s", r.status, r.body)
	}
	counts := map[string]int{}
	for i := 0; i < 200; i++ {
		b := inferBody(1)
		b["id"] = fmt.Sprint("r", i)
		m := e.do("POST", "/v2/models/clf/versions/prod/infer", key, b).json(t)
		counts[m["model_version"].(string)]++
		// Sticky: the same id always lands on the same side.
		if i < 10 {
			again := e.do("POST", "/v2/models/clf/versions/prod/infer", key, b).json(t)
			if again["model_version"] != m["model_version"] {
				t.Fatalf("request id %v moved between versions", b["id"])
			}
		}
	}
	if counts["2"] < 30 || counts["2"] > 90 {
		t.Fatalf("canary share %d/200, want about 60", counts["2"])
	}
	met := e.do("GET", "/metrics", adminKey, nil)
	if met.status != 200 || !strings.Contains(string(met.body), `aiaas_canary_requests_total{alias="prod",model="clf",outcome="ok",side="canary"`) {
		t.Fatalf("canary metrics missing: %d", met.status)
	}
	if r := e.do("GET", "/metrics", key, nil); r.status != 403 {
		t.Fatalf("a tenant key reads /metrics: %d", r.status)
	}
	info := e.do("GET", "/v1/models/clf", key, nil)
	if info.status != 200 || !strings.Contains(string(info.body), `"canary_weight":30`) || !strings.Contains(string(info.body), `"median_ns"`) {
		t.Fatalf("model info: %s", info.body)
	}
}

func TestAuditTrail(t *testing.T) {
	for name, url := range stores(t) {
		t.Run(name, func(t *testing.T) { testAuditTrail(t, newEnvOn(t, url, nil)) })
	}
}

func testAuditTrail(t *testing.T, e *env) {
	key := e.tenant("acme")
	e.publish(key, "clf", 1)
	e.do("POST", "/v2/models/clf/infer", key, inferBody(1), "X-Request-Id", "trace-123")
	r := e.do("GET", "/v1/audit?limit=100", key, nil)
	if r.status != 200 {
		t.Fatalf("audit: %d %s", r.status, r.body)
	}
	body := string(r.body)
	for _, want := range []string{`"action":"tenant.create"`, `"action":"model.publish"`, `"object":"models/clf/versions/1"`, `"action":"infer"`, `"request_id":"trace-123"`} {
		if !strings.Contains(body, want) {
			t.Errorf("audit lacks %s: %s", want, body)
		}
	}
	if strings.Contains(body, key) || strings.Contains(body, "0.14285") {
		t.Fatalf("audit holds the key or the payload: %s", body)
	}
	v := e.do("GET", "/v1/audit/verify", key, nil)
	if v.status != 200 || !strings.Contains(string(v.body), `"ok":true`) {
		t.Fatalf("verify: %s", v.body)
	}
	other := e.tenant("other")
	if r := e.do("GET", "/v1/audit", other, nil); strings.Contains(string(r.body), "clf") {
		t.Fatalf("other tenant sees acme's audit: %s", r.body)
	}
}

func TestQuota(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.TenantRPS, c.TenantBurst = 1, 3 })
	key := e.tenant("acme")
	e.publish(key, "clf", 1) // one token
	codes := []int{}
	var last resp
	var took time.Duration
	for i := 0; i < 5 && last.status != 429; i++ {
		start := time.Now()
		last = e.do("GET", "/v2/models/clf", key, nil)
		took = time.Since(start)
		codes = append(codes, last.status)
	}
	if last.status != 429 || last.header.Get("Retry-After") == "" || last.header.Get("X-RateLimit-Limit") != "3" {
		t.Fatalf("codes %v, headers %v", codes, last.header)
	}
	// The refusal is answered when its retry is due (about a second at
	// one request a second), so a client looping on 429s goes at the
	// quota's pace.
	if took < 500*time.Millisecond {
		t.Fatalf("the refusal was answered after %v, before its retry was due", took)
	}
	// Another tenant is not affected.
	other := e.tenant("other")
	if r := e.do("GET", "/v1/models", other, nil); r.status != 200 {
		t.Fatalf("other tenant throttled: %d", r.status)
	}
}

func TestEndpointWithoutPlugins(t *testing.T) {
	e := newEnv(t, nil)
	key := e.tenant("acme")
	e.publish(key, "clf", 1)
	r := e.do("PUT", "/v1/endpoints/ep", key, map[string]string{"model": "clf", "version": "1"})
	if r.status != 201 {
		t.Fatalf("create endpoint: %d %s", r.status, r.body)
	}
	if r := e.do("PUT", "/v1/endpoints/ep", key, map[string]string{"model": "clf"}); r.status != 200 {
		t.Fatalf("update endpoint: %d %s", r.status, r.body)
	}
	inv := e.do("POST", "/v1/endpoints/ep/invoke", key, inferBody(3))
	if inv.status != 200 || !strings.Contains(string(inv.body), `"shape":[3,3]`) {
		t.Fatalf("invoke: %d %s", inv.status, inv.body)
	}
	if r := e.do("PUT", "/v1/endpoints/bad", key, map[string]string{"model": "clf", "preprocess": "nope"}); r.status != 501 && r.status != 404 {
		t.Fatalf("endpoint with a missing plugin: %d %s", r.status, r.body)
	}
	if r := e.do("DELETE", "/v1/endpoints/ep", key, nil); r.status != 204 {
		t.Fatalf("delete: %d", r.status)
	}
	if r := e.do("POST", "/v1/endpoints/ep/invoke", key, inferBody(1)); r.status != 404 {
		t.Fatalf("deleted endpoint answers: %d", r.status)
	}
}

func TestExplain(t *testing.T) {
	e := newEnv(t, nil)
	key := e.tenant("acme")
	e.publish(key, "clf", 1)
	r := e.do("POST", "/v1/models/clf/explain", key, map[string]any{"input": []float32{0.5, 0.1, 0.9, 0.3}})
	if r.status != 200 {
		t.Fatalf("explain: %d %s", r.status, r.body)
	}
	m := r.json(t)
	if len(m["attributions"].([]any)) != 4 || m["method"] != "integrated_gradients" {
		t.Fatalf("explain: %s", r.body)
	}
	if r := e.do("POST", "/v1/models/clf/explain", key, map[string]any{"input": []float32{1}}); r.status != 400 {
		t.Fatalf("short input: %d %s", r.status, r.body)
	}
}

func TestTrainingJob(t *testing.T) {
	for name, url := range stores(t) {
		t.Run(name, func(t *testing.T) { testTrainingJob(t, newEnvOn(t, url, nil)) })
	}
}

// sumsCSV is a two-feature dataset of n rows: label 1 when a+b > 0.9.
func sumsCSV(n int) string {
	var csv strings.Builder
	for i := 0; i < n; i++ {
		a, b := float32(i%17)/17, float32(i%5)/5
		label := 0
		if a+b > 0.9 {
			label = 1
		}
		fmt.Fprintf(&csv, "%g,%g,%d\n", a, b, label)
	}
	return csv.String()
}

func testTrainingJob(t *testing.T, e *env) {
	key := e.tenant("acme")
	if r := e.do("PUT", "/v1/datasets/sums", key, sumsCSV(300), "Content-Type", "text/csv"); r.status != 201 {
		t.Fatalf("dataset: %d %s", r.status, r.body)
	}
	r := e.do("POST", "/v1/training-jobs", key, map[string]any{"model": "sums", "dataset": "sums", "layers": []int{16}, "epochs": 30, "seed": 3})
	if r.status != 202 {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}
	id := r.json(t)["id"].(string)
	var job map[string]any
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		job = e.do("GET", "/v1/training-jobs/"+id, key, nil).json(t)
		if s := job["status"]; s == "succeeded" || s == "failed" || s == "canceled" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if job["status"] != "succeeded" {
		t.Fatalf("job: %v", job)
	}
	res := job["result"].(map[string]any)
	if res["version"].(float64) != 1 || res["test_accuracy"].(float64) < 0.8 {
		t.Fatalf("result: %v", res)
	}
	if len(job["epochs"].([]any)) != 30 {
		t.Fatalf("epochs: %v", job["epochs"])
	}
	// The new version serves.
	body := map[string]any{"inputs": []map[string]any{{"name": "input", "shape": []int{1, 2}, "datatype": "FP32", "data": []float32{0.9, 0.8}}}}
	if r := e.do("POST", "/v2/models/sums/infer", key, body); r.status != 200 {
		t.Fatalf("infer trained model: %d %s", r.status, r.body)
	}
	// Other tenants see neither the job nor the dataset.
	other := e.tenant("other")
	if r := e.do("GET", "/v1/training-jobs/"+id, other, nil); r.status != 404 {
		t.Fatalf("other tenant sees the job: %d", r.status)
	}
	if r := e.do("POST", "/v1/training-jobs", other, map[string]any{"model": "x", "dataset": "sums"}); r.status != 404 {
		t.Fatalf("other tenant trains on acme's dataset: %d %s", r.status, r.body)
	}
}

// TestConcurrentInferAndBatching: 16 clients, each request its own rows
// (1 to 3 of them, values no other request has), batching off and on:
// every answer must be the request's own rows' outputs — a batcher that
// handed a caller another caller's rows, or shifted them, fails here.
func TestConcurrentInferAndBatching(t *testing.T) {
	body := func(g, i int) (map[string]any, int) {
		rows := 1 + (g+i)%3
		r := rand.New(rand.NewPCG(uint64(g), uint64(i)))
		data := make([]float32, rows*4)
		for j := range data {
			data[j] = float32(r.NormFloat64())
		}
		return map[string]any{"inputs": []map[string]any{{"name": "input", "shape": []int{rows, 4}, "datatype": "FP32", "data": data}}}, rows
	}
	probs := func(t *testing.T, r resp) []float64 {
		t.Helper()
		var out struct {
			Outputs []struct {
				Data []float64 `json:"data"`
			} `json:"outputs"`
		}
		if r.status != 200 || json.Unmarshal(r.body, &out) != nil || len(out.Outputs) != 1 {
			t.Fatalf("infer: %d %s", r.status, r.body)
		}
		return out.Outputs[0].Data
	}
	// The answers alone, batching off.
	ref := newEnv(t, nil)
	refKey := ref.tenant("acme")
	ref.publish(refKey, "clf", 1)
	want := map[[2]int][]float64{}
	for g := range 16 {
		for i := range 10 {
			b, _ := body(g, i)
			want[[2]int{g, i}] = probs(t, ref.do("POST", "/v2/models/clf/infer", refKey, b))
		}
	}
	for _, window := range []time.Duration{0, 2 * time.Millisecond} {
		e := newEnv(t, func(c *config.Config) { c.BatchWindow = window; c.BatchMax = 8 })
		key := e.tenant("acme")
		e.publish(key, "clf", 1)
		var wg sync.WaitGroup
		errs := make(chan string, 64)
		for g := 0; g < 16; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 10; i++ {
					b, rows := body(g, i)
					r := e.do("POST", "/v2/models/clf/infer", key, b)
					var out struct {
						Outputs []struct {
							Shape []int     `json:"shape"`
							Data  []float64 `json:"data"`
						} `json:"outputs"`
					}
					if r.status != 200 || json.Unmarshal(r.body, &out) != nil || len(out.Outputs) != 1 {
						errs <- fmt.Sprintf("window %v: status %d %s", window, r.status, r.body)
						return
					}
					got, w := out.Outputs[0].Data, want[[2]int{g, i}]
					if len(got) != len(w) || out.Outputs[0].Shape[0] != rows {
						errs <- fmt.Sprintf("window %v: client %d request %d: shape %v, want %d rows", window, g, i, out.Outputs[0].Shape, rows)
						return
					}
					for j := range w {
						if math.Abs(got[j]-w[j]) > 1e-6 {
							errs <- fmt.Sprintf("window %v: client %d request %d: output %d = %v, alone %v", window, g, i, j, got[j], w[j])
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
	}
}

func TestTenantMetrics(t *testing.T) {
	e := newEnv(t, nil)
	key := e.tenant("acme")
	e.publish(key, "clf", 1)
	e.do("POST", "/v2/models/clf/infer", key, inferBody(1))
	other := e.tenant("other")
	e.publish(other, "hidden-model", 1)
	r := e.do("GET", "/v1/metrics", key, nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"action":"infer","model":"clf","status":"200"`) {
		t.Fatalf("tenant metrics: %d %s", r.status, r.body)
	}
	if strings.Contains(string(r.body), "hidden-model") {
		t.Fatalf("tenant metrics show another tenant's model: %s", r.body)
	}
}

func TestPublishONNX(t *testing.T) {
	e := newEnv(t, nil)
	key := e.tenant("acme")
	b, err := os.ReadFile("../nn/onnx/testdata/torch_mlp.onnx")
	if err != nil {
		t.Fatal(err)
	}
	r := e.do("POST", "/v1/models/torch/versions", key, b, "Content-Type", "application/onnx")
	if r.status != 201 {
		t.Fatalf("publish ONNX: %d %s", r.status, r.body)
	}
	md := e.do("GET", "/v2/models/torch", key, nil)
	if md.status != 200 {
		t.Fatalf("metadata: %d %s", md.status, md.body)
	}
	bad := e.do("POST", "/v1/models/torch/versions", key, append([]byte("\x08\x07\x00\x00\x00\x00\x00\x00\x12"), b[:40]...), "Content-Type", "application/onnx")
	if bad.status != 400 {
		t.Fatalf("truncated ONNX: %d %s", bad.status, bad.body)
	}
}

func TestConsoleMounted(t *testing.T) {
	e := newEnv(t, nil)
	r := e.do("GET", "/console/", "", nil)
	if r.status != 200 || !strings.Contains(r.header.Get("Content-Type"), "text/html") || r.header.Get("Content-Security-Policy") == "" {
		t.Fatalf("console: %d %v", r.status, r.header)
	}
	req, _ := http.NewRequest("GET", e.ts.URL+"/", nil)
	res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode/100 != 3 || res.Header.Get("Location") != "/console/" {
		t.Fatalf("/ → %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	if r := e.do("GET", "/nope", "", nil); r.status != 404 || !strings.Contains(string(r.body), "no route") {
		t.Fatalf("unknown path: %d %s", r.status, r.body)
	}
}
