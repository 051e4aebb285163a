package main

// End-to-end: the real bootstrap of this function, built with the release
// flags, runs under the AWS Lambda Runtime Interface Emulator with its store
// on MinIO, and is invoked with API Gateway HTTP API (2.0) events.
//
// Needs: scripts/rie.sh install, and eval "$(scripts/minio.sh start)" (the
// AIAAS_TEST_S3_* variables). Skipped without them unless AIAAS_REQUIRE_RIE /
// AIAAS_REQUIRE_S3 is set.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aiaas/aiaas/functions/internal/rietest"
	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/platform/tracing/otlptest"
	"github.com/aws/aws-lambda-go/events"
)

const e2eAdminKey = "e2e-admin-key-0123456789abcdef"

// v2Event builds an HTTP API payload 2.0 event as API Gateway sends it.
func v2Event(method, path, key string, body []byte, contentType string) events.APIGatewayV2HTTPRequest {
	h := map[string]string{"host": "api.example.com", "x-forwarded-proto": "https"}
	if key != "" {
		h["authorization"] = "Bearer " + key
	}
	if contentType != "" {
		h["content-type"] = contentType
	}
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: method + " " + path, RawPath: path, Headers: h,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RequestID: "e2e", DomainName: "api.example.com", Stage: "$default",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path, SourceIP: "192.0.2.1"},
		},
	}
	if body != nil {
		ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
	}
	return ev
}

type httpResp struct {
	StatusCode      int               `json:"statusCode"`
	Headers         map[string]string `json:"headers"`
	Body            string            `json:"body"`
	IsBase64Encoded bool              `json:"isBase64Encoded"`
}

func (r httpResp) bytes() []byte {
	if r.IsBase64Encoded {
		b, _ := base64.StdEncoding.DecodeString(r.Body)
		return b
	}
	return []byte(r.Body)
}

func call(t *testing.T, fn *rietest.Function, ev events.APIGatewayV2HTTPRequest) (httpResp, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	raw, took, err := fn.Invoke(ctx, ev)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", ev.RequestContext.HTTP.Method, ev.RawPath, err, fn.Logs())
	}
	var r httpResp
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("%s %s: response %s: %v", ev.RequestContext.HTTP.Method, ev.RawPath, raw, err)
	}
	return r, took
}

func artifact(t *testing.T) []byte {
	spec := nn.Spec{
		Inputs:  []nn.TensorSpec{{Name: "input", Datatype: "FP32", Shape: []int64{-1, 4}}},
		Outputs: []nn.TensorSpec{{Name: "probabilities", Datatype: "FP32", Shape: []int64{-1, 3}}},
		Layers:  []nn.Layer{{Type: "dense", Units: 8, Activation: "relu"}, {Type: "dense", Units: 3, Activation: "softmax"}},
	}
	m, err := nn.New(spec, 1)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := m.WriteArtifact(&buf, nn.Metadata{Spec: spec}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func buildPlugin(t *testing.T, name string) []byte {
	out := filepath.Join(t.TempDir(), name+".wasm")
	cmd := exec.Command("go", "build", "-trimpath", "-buildmode=c-shared", "-o", out, "../../examples/plugins/"+name)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build plugin %s: %v\n%s", name, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// s3Env is the environment of the admin and infer functions on MinIO, each
// with the credentials of a MinIO user whose policy is the S3 part of its
// role in infra/template.yaml (not MinIO's root user): a function that needs
// more than its role grants fails here as it would on AWS.
func s3Env(t *testing.T) (admin, infer []string, store string) {
	mio := rietest.RequireMinIO(t)
	bucket := mio.Bucket(t)
	var mk [32]byte
	_, _ = rand.Read(mk[:])
	store = "s3://" + bucket + "?endpoint=" + mio.Endpoint + "&secure=false&region=us-east-1"
	common := []string{
		"AIAAS_STORE=" + store,
		"AIAAS_MASTER_KEY=" + base64.StdEncoding.EncodeToString(mk[:]),
		"AIAAS_ADMIN_KEY=" + e2eAdminKey,
		"AIAAS_PLUGIN_CACHE_DIR=" + t.TempDir(),
		"AIAAS_BATCH_WINDOW=0s",
		"AWS_LAMBDA_LOG_FORMAT=JSON", // what template.yaml's LoggingConfig sets
	}
	withRole := func(id string) []string {
		ak, sk := mio.RoleUser(t, "../../infra/template.yaml", id, bucket)
		return append(common[:len(common):len(common)], "AIAAS_S3_ACCESS_KEY="+ak, "AIAAS_S3_SECRET_KEY="+sk)
	}
	return withRole("AdminFunction"), withRole("InferFunction"), store
}

func TestInferUnderRIE(t *testing.T) {
	rietest.Require(t)
	adminEnv, env, store := s3Env(t)
	bootstrap := rietest.Build(t, ".")
	identity, topk := buildPlugin(t, "identity"), buildPlugin(t, "top-k")

	// Phase 1: the admin function sets the tenant up; infer serves the data
	// plane only (as API Gateway routes them).
	adminBootstrap := rietest.Build(t, "../admin")
	fn := rietest.Start(t, adminBootstrap, &rietest.Options{Env: adminEnv})
	if r, _ := call(t, fn, v2Event("GET", "/v2/health/ready", "", nil, "")); r.StatusCode != 200 {
		t.Fatalf("health: %d %s", r.StatusCode, r.Body)
	}
	body, _ := json.Marshal(map[string]string{"name": "acme"})
	r, _ := call(t, fn, v2Event("POST", "/v1/tenants", e2eAdminKey, body, "application/json"))
	if r.StatusCode != 201 {
		t.Fatalf("create tenant: %d %s", r.StatusCode, r.Body)
	}
	var tenant struct {
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
	}
	_ = json.Unmarshal(r.bytes(), &tenant)
	key := tenant.APIKey
	setup := []struct {
		method, path string
		body         []byte
		ct           string
		status       int
	}{
		{"POST", "/v1/models/clf/versions", artifact(t), "application/octet-stream", 201},
		{"PUT", "/v1/plugins/identity", identity, "application/wasm", 201},
		{"PUT", "/v1/plugins/top-k", topk, "application/wasm", 201},
		{"PUT", "/v1/endpoints/clf", []byte(`{"model":"clf","version":"1","preprocess":"identity","postprocess":"top-k"}`), "application/json", 0},
	}
	for i, s := range setup {
		r, _ := call(t, fn, v2Event(s.method, s.path, key, s.body, s.ct))
		if s.status != 0 && r.StatusCode != s.status || r.StatusCode >= 300 {
			t.Fatalf("setup %d (%s %s): %d %s", i, s.method, s.path, r.StatusCode, r.bytes())
		}
	}
	fn.Stop()

	// Phase 2: a cold function; its first invocation loads the model from
	// MinIO. This is the figure BENCHMARKS.md reports.
	fn = rietest.Start(t, bootstrap, &rietest.Options{Env: env})
	inferReq, _ := json.Marshal(map[string]any{"inputs": []map[string]any{{
		"name": "input", "shape": []int{1, 4}, "datatype": "FP32", "data": []float32{0.1, 0.2, 0.3, 0.4}}}})
	f32 := make([]byte, 16)
	for i, v := range []float32{0.1, 0.2, 0.3, 0.4} {
		binary.LittleEndian.PutUint32(f32[4*i:], math.Float32bits(v))
	}
	cases := []struct {
		name   string
		ev     events.APIGatewayV2HTTPRequest
		status int
		want   string
	}{
		{"OIP infer (cold, model from MinIO)", v2Event("POST", "/v2/models/clf/infer", key, inferReq, "application/json"), 200, `"outputs"`},
		{"OIP infer (warm)", v2Event("POST", "/v2/models/clf/infer", key, inferReq, "application/json"), 200, `"probabilities"`},
		{"health", v2Event("GET", "/v2/health/live", "", nil, ""), 200, `"live":true`},
		{"endpoint invoke with plugins", v2Event("POST", "/v1/endpoints/clf/invoke", key, f32, "application/octet-stream"), 200, `"predictions"`},
		{"explain (a data-plane call)", v2Event("POST", "/v1/models/clf/explain", key, []byte(`{"input":[0.5,0.1,0.9,0.3]}`), "application/json"), 200, `"attributions"`},
		{"a control-plane route", v2Event("GET", "/v1/models", key, nil, ""), 404, `control plane`},
		{"no per-process metrics", v2Event("GET", "/v1/metrics", key, nil, ""), 404, `CloudWatch`},
		{"bad key", v2Event("POST", "/v2/models/clf/infer", "aiaas_not_a_real_key_0000000000", inferReq, "application/json"), 401, `"error"`},
		{"bad body", v2Event("POST", "/v2/models/clf/infer", key, []byte(`{"inputs":[{`), "application/json"), 400, `"error"`},
	}
	durations := make([]time.Duration, len(cases))
	for i, c := range cases {
		r, took := call(t, fn, c.ev)
		durations[i] = took
		if r.StatusCode != c.status || !strings.Contains(string(r.bytes()), c.want) {
			t.Errorf("case %d (%s): %d %s, want %d containing %s", i, c.name, r.StatusCode, r.bytes(), c.status, c.want)
		}
	}
	init, err := fn.InitDuration()
	if err != nil {
		t.Fatalf("%v\n%s", err, fn.Logs())
	}
	reps, _ := fn.WaitReports(context.Background(), len(cases))
	m := regexp.MustCompile(`"message":"init complete".*"init_ms":([0-9.]+)`).FindStringSubmatch(fn.Logs())
	if m == nil {
		t.Fatalf("no JSON \"init complete\" log line:\n%s", fn.Logs())
	}
	if !strings.Contains(fn.Logs(), `"timestamp":`) || !strings.Contains(fn.Logs(), `"level":"INFO"`) {
		t.Errorf("logs are not in Lambda's JSON shape (timestamp, level, message):\n%s", fn.Logs())
	}
	t.Logf("cold start: function init (config, store client, plugin host, platform) %s ms (its own log); emulator Init Duration %v", m[1], init)
	t.Logf("first invocation incl. process start and model load from MinIO: %v (emulator REPORT), %v (client wall clock)", reps[0].Duration, durations[0])
	for i := 1; i < len(cases); i++ {
		t.Logf("case %d (%s): %v (REPORT), %v (client)", i, cases[i].name, reps[i].Duration, durations[i])
	}
	if !strings.Contains(fn.Logs(), `"_aws"`) {
		t.Errorf("no EMF metrics line in the function's output")
	}
	// Audit records flush after the response, from the internal extension
	// (checkInferRole below finds every one of them in the log).
	if !strings.Contains(fn.Logs(), `"audit_after_response":true`) {
		t.Errorf("the after-response extension did not register:\n%s", fn.Logs())
	}
	warmUntraced := reps[1].Duration
	fn.Stop()

	// Phase 2b: a fresh environment (empty /tmp) whose first call is an
	// endpoint invoke. The model and the plugins' compiled code come from
	// MinIO — admin compiled each plugin when it was uploaded — and
	// nothing is compiled here.
	fn = rietest.Start(t, bootstrap, &rietest.Options{Env: append(env[:len(env):len(env)], "AIAAS_PLUGIN_CACHE_DIR="+t.TempDir())})
	if r, took := call(t, fn, cases[3].ev); r.StatusCode != 200 {
		t.Errorf("fresh environment, endpoint invoke: %d %s", r.StatusCode, r.bytes())
	} else {
		reps, _ := fn.WaitReports(context.Background(), 1)
		init, _ := fn.InitDuration()
		if len(reps) == 1 {
			t.Logf("fresh environment, first call an endpoint invoke (model and compiled plugins fetched from MinIO): %v (REPORT), %v (client), init %v", reps[0].Duration, took, init)
		}
	}
	if n := strings.Count(fn.Logs(), "plugin code from the shared cache"); n != 2 || strings.Contains(fn.Logs(), "cannot write the shared cache") {
		t.Errorf("fresh environment: %d plugins' code fetched, want 2, and none compiled here:\n%s", n, fn.Logs())
	}
	fn.Stop()

	// Phase 2c: the same with the endpoint prewarmed at init: the model and
	// the plugins are loaded before the first request. (The emulator starts
	// the process on the first invocation, so a health check goes first and
	// carries the init.)
	fn = rietest.Start(t, bootstrap, &rietest.Options{Env: append(env[:len(env):len(env)], "AIAAS_PLUGIN_CACHE_DIR="+t.TempDir(),
		"AIAAS_PREWARM_ENDPOINTS="+tenant.ID+"/clf")})
	if r, _ := call(t, fn, cases[2].ev); r.StatusCode != 200 {
		t.Errorf("prewarmed environment, health: %d %s", r.StatusCode, r.bytes())
	}
	if r, took := call(t, fn, cases[3].ev); r.StatusCode != 200 {
		t.Errorf("prewarmed environment, endpoint invoke: %d %s", r.StatusCode, r.bytes())
	} else {
		reps, _ := fn.WaitReports(context.Background(), 2)
		if len(reps) == 2 {
			t.Logf("prewarmed fresh environment: init with prewarm %v (in the first invocation's REPORT), then the first endpoint invoke %v (REPORT), %v (client)", reps[0].Duration, reps[1].Duration, took)
		}
	}
	if !strings.Contains(fn.Logs(), `"message":"prewarmed"`) || strings.Contains(fn.Logs(), "prewarm failed") {
		t.Errorf("the endpoint was not prewarmed:\n%s", fn.Logs())
	}
	fn.Stop()
	checkInferRole(t, env, store, adminBootstrap, adminEnv, key)

	// Phase 3: the same cold start and calls with tracing on, exporting to
	// an OTLP/HTTP receiver: every invocation's spans are there by the time
	// the emulator answers, because the function flushes before returning.
	rc := otlptest.New(t)
	fn = rietest.Start(t, bootstrap, &rietest.Options{Env: append(env[:len(env):len(env)], "OTEL_EXPORTER_OTLP_ENDPOINT="+rc.URL)})
	for i, c := range cases {
		before := len(rc.Named("infer"))
		r, took := call(t, fn, c.ev)
		durations[i] = took
		if r.StatusCode != c.status {
			t.Errorf("traced case %d (%s): %d %s", i, c.name, r.StatusCode, r.bytes())
		}
		roots := rc.Named("infer")
		if len(roots) != before+1 {
			t.Fatalf("traced case %d (%s): %d root spans after the invocation, want %d\n%s", i, c.name, len(roots), before+1, fn.Logs())
		}
		root := roots[len(roots)-1]
		if root.Attributes["faas.invocation_id"] == "" || root.Attributes["http.response.status_code"] != strconv.Itoa(c.status) ||
			root.Attributes["faas.coldstart"] != strconv.FormatBool(i == 0) {
			t.Errorf("traced case %d (%s): root span %+v", i, c.name, root)
		}
	}
	reps, _ = fn.WaitReports(context.Background(), len(cases))
	for i, rep := range reps {
		if got := rc.Named("infer")[i].Attributes["faas.invocation_id"]; got != rep.RequestID {
			t.Errorf("traced case %d: root span has request id %q, the emulator reported %q", i, got, rep.RequestID)
		}
	}
	// The endpoint invocation's trace holds the whole pipeline.
	epRoot := rc.Named("infer")[3]
	for _, name := range []string{"POST /v1/endpoints/{endpoint}/invoke", "model.load", "plugin.preprocess", "model.forward", "plugin.postprocess"} {
		found := false
		for _, sp := range rc.Named(name) {
			found = found || sp.TraceID == epRoot.TraceID
		}
		if !found {
			t.Errorf("endpoint trace has no %q span", name)
		}
	}
	initMS := "?"
	if m := regexp.MustCompile(`"message":"init complete".*"init_ms":([0-9.]+)`).FindStringSubmatch(fn.Logs()); m != nil {
		initMS = m[1]
	}
	t.Logf("tracing on: init %s ms (its own log); first invocation %v (REPORT), %v (client); warm OIP infer %v (REPORT), endpoint invoke %v; %d spans in %d export requests",
		initMS, reps[0].Duration, durations[0], reps[1].Duration, reps[3].Duration, len(rc.Spans()), rc.Requests())
	fn.Stop()

	// Phase 4: a collector that never answers costs each invocation at most
	// AIAAS_TRACE_FLUSH_TIMEOUT and fails none.
	fn = rietest.Start(t, bootstrap, &rietest.Options{Env: append(env[:len(env):len(env)],
		"OTEL_EXPORTER_OTLP_ENDPOINT="+otlptest.Blackhole(t), "AIAAS_TRACE_FLUSH_TIMEOUT=200ms"), Timeout: 3 * time.Second})
	for i, c := range cases[:2] {
		r, _ := call(t, fn, c.ev)
		if r.StatusCode != c.status {
			t.Errorf("dead collector, case %d (%s): %d %s", i, c.name, r.StatusCode, r.bytes())
		}
	}
	reps, _ = fn.WaitReports(context.Background(), 2)
	// The flush waits 200 ms for the collector. An unbounded flush would
	// wait for the exporter's own 10 s timeout or the function's 3 s one;
	// a loaded machine can add hundreds of milliseconds to a warm
	// invocation (664 ms was seen beside other builds). So the bound is
	// far from both: 200 ms + 1 s + twice the untraced warm time.
	if len(reps) < 2 || reps[1].Duration > 1200*time.Millisecond+2*warmUntraced {
		t.Errorf("dead collector: warm invocation %v, untraced %v: the flush was not bounded (%+v)", reps[1].Duration, warmUntraced, reps)
	}
	if len(reps) == 2 {
		t.Logf("dead collector: warm OIP infer took %v (REPORT) with a 200ms flush timeout", reps[1].Duration)
	}
	if !strings.Contains(fn.Logs(), "span export failed") {
		t.Errorf("the failed export was not logged:\n%s", fn.Logs())
	}
}

// checkInferRole shows the infer role's limits by behaviour, on MinIO with
// the role's own policy: every invocation's audit record was written (the
// one write it has), and with its credentials the store can neither publish
// a model nor write any other record.
func checkInferRole(t *testing.T, inferEnv []string, store string, adminBootstrap string, adminEnv []string, key string) {
	t.Helper()
	fn := rietest.Start(t, adminBootstrap, &rietest.Options{Env: adminEnv})
	defer fn.Stop()
	ev := v2Event("GET", "/v1/audit", key, nil, "")
	ev.RawQueryString = "limit=100"
	r, _ := call(t, fn, ev)
	if r.StatusCode != 200 {
		t.Fatalf("read audit: %d %s", r.StatusCode, r.bytes())
	}
	for _, action := range []string{`"infer"`, `"endpoint.invoke"`, `"model.explain"`} {
		if !strings.Contains(string(r.bytes()), action) {
			t.Errorf("the audit log lacks the infer function's %s records (its flush failed?):\n%s", action, r.bytes())
		}
	}
	vals := map[string]string{}
	for _, kv := range inferEnv {
		k, v, _ := strings.Cut(kv, "=")
		vals[k] = v
	}
	mk, _ := base64.StdEncoding.DecodeString(vals["AIAAS_MASTER_KEY"])
	ctx := context.Background()
	ms, err := modelstore.Open(ctx, store, &modelstore.Options{MasterKey: mk,
		S3AccessKey: vals["AIAAS_S3_ACCESS_KEY"], S3SecretKey: vals["AIAAS_S3_SECRET_KEY"]})
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	tenants, err := ms.Tenants(ctx)
	if err != nil || len(tenants) != 1 {
		t.Fatalf("infer's credentials list tenants: %v %v", tenants, err)
	}
	art := artifact(t)
	if _, err := ms.PublishModel(ctx, tenants[0], "stolen", bytes.NewReader(art), int64(len(art)), nil); err == nil {
		t.Error("infer's credentials published a model")
	} else {
		t.Logf("publish with infer's credentials: %v", err)
	}
	if err := ms.Put(ctx, tenants[0], "endpoints", "evil", []byte(`{}`)); err == nil {
		t.Error("infer's credentials wrote an endpoint record")
	}
}
