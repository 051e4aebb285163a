// Package e2e runs the real aiaas binary — built from source, started as
// its own process — on a folder store and on MinIO, and drives every route
// through the Go client, as a user's program would.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aiaas/aiaas/internal/testserver"
	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/sdk/client"
)

const adminKey = testserver.AdminKey

type server = testserver.Server

func start(t *testing.T, store string, extraEnv ...string) *server {
	return testserver.Start(t, store, extraEnv...)
}

func build(t *testing.T) string { return testserver.Build(t) }

func stores(t *testing.T) map[string]string { return testserver.Stores(t) }

func mnistArtifact(t *testing.T) []byte {
	spec := nn.MLP("digits", 784, []int{32}, "relu", 10, "softmax")
	spec.Outputs[0].Name = "probabilities"
	m, err := nn.New(spec, 7)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := m.WriteArtifact(&buf, nn.Metadata{Spec: spec, Metrics: map[string]any{"test_accuracy": 0.1}}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestEveryRouteThroughTheClient(t *testing.T) {
	for name, store := range stores(t) {
		t.Run(name, func(t *testing.T) { everyRoute(t, start(t, store)) })
	}
}

func must[T any](t *testing.T, what string) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

func everyRoute(t *testing.T, s *server) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	anon := must[*client.Client](t, "client")(client.New(s.URL, nil))
	if live := must[bool](t, "live")(anon.Live(ctx)); !live {
		t.Fatal("not live")
	}
	if md := must[*client.ServerMetadata](t, "server metadata")(anon.ServerMetadata(ctx)); md.Name != "aiaas" || !contains(md.Extensions, "binary_tensor_data") {
		t.Fatalf("server metadata: %+v", md)
	}
	admin := must[*client.Client](t, "client")(client.New(s.URL, &client.Options{APIKey: adminKey}))
	tenant := must[*client.Tenant](t, "create tenant")(admin.CreateTenant(ctx, "acme"))
	if ts := must[[]client.Tenant](t, "tenants")(admin.Tenants(ctx)); len(ts) != 1 || ts[0].Name != "acme" {
		t.Fatalf("tenants: %+v", ts)
	}
	c := must[*client.Client](t, "client")(client.New(s.URL, &client.Options{APIKey: tenant.APIKey}))

	// Models, aliases, metadata, inference.
	art := mnistArtifact(t)
	pm := must[*client.PushedModel](t, "push")(c.PushModel(ctx, "digits", bytes.NewReader(art), int64(len(art)), nil))
	if pm.Version != 1 || len(pm.SHA256) != 64 {
		t.Fatalf("pushed: %+v", pm)
	}
	must[*client.PushedModel](t, "push 2")(c.PushModel(ctx, "digits", bytes.NewReader(art), int64(len(art)), nil))
	must[*client.AliasResult](t, "alias")(c.SetAlias(ctx, "digits", "prod", client.Alias{Version: 1}))
	if ms := must[[]client.ModelSummary](t, "models")(c.Models(ctx)); len(ms) != 1 || ms[0].Latest != 2 || ms[0].Aliases["prod"].Version != 1 {
		t.Fatalf("models: %+v", ms)
	}
	if m := must[*client.Model](t, "model")(c.Model(ctx, "digits")); len(m.Versions) != 2 || m.Versions[0].Latency == nil {
		t.Fatalf("model: %+v", m)
	}
	if md := must[*client.ModelMetadata](t, "model metadata")(c.ModelMetadata(ctx, "digits", "prod")); md.Inputs[0].Shape[1] != 784 {
		t.Fatalf("model metadata: %+v", md)
	}
	if ok := must[bool](t, "model ready")(c.ModelReady(ctx, "digits", "1")); !ok {
		t.Fatal("model not ready")
	}
	x := make([]float32, 784)
	for i := range x {
		x[i] = float32(i%13) / 13
	}
	req := &client.InferRequest{ID: "e2e", Inputs: []client.InferInput{{Name: "input", Shape: []int64{1, 784}, Datatype: "FP32", Data: x}}}
	res := must[*client.InferResponse](t, "infer")(c.Infer(ctx, "digits", "prod", req))
	if v, sum := res.Lineage(); v != "1" || sum != pm.SHA256 || res.ID != "e2e" {
		t.Fatalf("lineage %s %s, id %q", v, sum, res.ID)
	}
	jsonOut := must[[]float32](t, "floats")(res.Output("probabilities").Float32s())
	bres := must[*client.InferResponse](t, "infer binary")(c.InferBinary(ctx, "digits", "prod", req))
	binOut := must[[]float32](t, "floats")(bres.Output("probabilities").Float32s())
	for i := range jsonOut {
		if jsonOut[i] != binOut[i] {
			t.Fatalf("JSON and binary outputs differ at %d: %v vs %v", i, jsonOut[i], binOut[i])
		}
	}
	ex := must[*client.Explanation](t, "explain")(c.Explain(ctx, "digits", &client.ExplainRequest{Version: "prod", Input: x, Steps: 8}))
	if len(ex.Attributions) != 784 || len(ex.Output) != 10 {
		t.Fatalf("explanation: %d attributions, %d outputs", len(ex.Attributions), len(ex.Output))
	}

	// Plugins and endpoints.
	dir := build(t)
	for _, p := range []string{"png-to-tensor", "top-k"} {
		wasm := must[[]byte](t, "read wasm")(os.ReadFile(filepath.Join(dir, p+".wasm")))
		pl := must[*client.Plugin](t, "push plugin")(c.PushPlugin(ctx, p, bytes.NewReader(wasm), int64(len(wasm)), nil))
		if pl.ABIVersion != 1 {
			t.Fatalf("plugin: %+v", pl)
		}
	}
	if ps := must[[]client.Plugin](t, "plugins")(c.Plugins(ctx)); len(ps) != 2 {
		t.Fatalf("plugins: %+v", ps)
	}
	must[*client.Plugin](t, "plugin")(c.Plugin(ctx, "top-k"))
	_, created, err := c.PutEndpoint(ctx, "digits", &client.Endpoint{Model: "digits", Version: "prod", Preprocess: "png-to-tensor", Postprocess: "top-k"})
	if err != nil || !created {
		t.Fatalf("endpoint: created %v, %v", created, err)
	}
	if eps := must[[]client.Endpoint](t, "endpoints")(c.Endpoints(ctx)); len(eps) != 1 {
		t.Fatalf("endpoints: %+v", eps)
	}
	must[*client.Endpoint](t, "endpoint")(c.Endpoint(ctx, "digits"))
	png := must[[]byte](t, "png")(os.ReadFile("../../examples/plugins/testdata/seven.png"))
	body, ctype, err := c.Invoke(ctx, "digits", "image/png", bytes.NewReader(png))
	if err != nil || ctype != "application/json" || !strings.Contains(string(body), `"predictions"`) {
		t.Fatalf("invoke: %v %s %s", err, ctype, body)
	}
	if err := c.DeleteEndpoint(ctx, "digits"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Invoke(ctx, "digits", "image/png", bytes.NewReader(png)); !isStatus(err, 404) {
		t.Fatalf("deleted endpoint: %v", err)
	}

	// Datasets and training jobs.
	var csv strings.Builder
	for i := 0; i < 200; i++ {
		a, b := float32(i%10)/10, float32(i%3)/3
		l := 0
		if a > b {
			l = 1
		}
		fmt.Fprintf(&csv, "%g,%g,%d\n", a, b, l)
	}
	must[*client.Dataset](t, "dataset")(c.PutDataset(ctx, "pairs", strings.NewReader(csv.String()), int64(csv.Len()), nil))
	job := must[*client.TrainingJob](t, "submit")(c.SubmitTrainingJob(ctx, &client.TrainingRequest{Model: "pairs", Dataset: "pairs", Layers: []int{8}, Epochs: 20, Seed: 1}))
	done := must[*client.TrainingJob](t, "wait")(c.WaitTrainingJob(ctx, job.ID, 50*time.Millisecond, nil))
	if done.Status != client.JobSucceeded || done.Result == nil || done.Result.Version != 1 {
		t.Fatalf("job: %+v", done)
	}
	if js := must[[]client.TrainingJob](t, "jobs")(c.TrainingJobs(ctx)); len(js) != 1 {
		t.Fatalf("jobs: %+v", js)
	}

	// Keys, scopes, revocation.
	k := must[*client.Key](t, "create key")(c.CreateKey(ctx, "ci", client.ScopeInvoke))
	ci := must[*client.Client](t, "client")(client.New(s.URL, &client.Options{APIKey: k.APIKey}))
	must[*client.InferResponse](t, "infer with invoke key")(ci.Infer(ctx, "digits", "1", req))
	if _, err := ci.Models(ctx); !isStatus(err, 403) {
		t.Fatalf("invoke key manages: %v", err)
	}
	if ks := must[[]client.Key](t, "keys")(c.Keys(ctx)); len(ks) != 2 {
		t.Fatalf("keys: %+v", ks)
	}
	if err := c.RevokeKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := ci.Infer(ctx, "digits", "1", req); !isStatus(err, 401) {
		t.Fatalf("revoked key: %v", err)
	}

	// Audit and metrics.
	page := must[*client.AuditPage](t, "audit")(c.Audit(ctx, &client.AuditQuery{Limit: 1000}))
	actions := map[string]bool{}
	for _, r := range page.Records {
		actions[r.Action] = true
	}
	for _, a := range []string{"tenant.create", "model.publish", "model.alias", "infer", "plugin.put", "endpoint.put", "endpoint.invoke", "job.submit", "key.revoke"} {
		if !actions[a] {
			t.Errorf("audit lacks %s (has %v)", a, actions)
		}
	}
	if v := must[*client.AuditVerification](t, "verify")(c.VerifyAudit(ctx)); !v.OK {
		t.Fatalf("audit chain: %+v", v)
	}
	text := must[string](t, "metrics")(admin.Metrics(ctx))
	if !strings.Contains(text, "aiaas_requests_total") {
		t.Fatal("no request metrics")
	}
	if _, err := c.Metrics(ctx); !isStatus(err, 403) {
		t.Fatalf("tenant reads /metrics: %v", err)
	}
	t.Logf("process start → ready: %v", s.Ready)
}

func isStatus(err error, status int) bool {
	var ae *client.APIError
	return errors.As(err, &ae) && ae.Status == status
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// TestColdStart measures what a user waits for after a cold start: a new
// process, the model in the store (MinIO when available), from process
// start to the first inference answer. It reports; BENCHMARKS.md quotes it.
func TestColdStart(t *testing.T) {
	store := "file://" + t.TempDir()
	if ep := os.Getenv("AIAAS_TEST_S3_ENDPOINT"); ep != "" {
		store = testserver.S3Store(ep)
	}
	ctx := context.Background()
	s1 := start(t, store)
	admin := must[*client.Client](t, "client")(client.New(s1.URL, &client.Options{APIKey: adminKey}))
	tenant := must[*client.Tenant](t, "tenant")(admin.CreateTenant(ctx, "cold"))
	c := must[*client.Client](t, "client")(client.New(s1.URL, &client.Options{APIKey: tenant.APIKey}))
	art := mnistArtifact(t)
	must[*client.PushedModel](t, "push")(c.PushModel(ctx, "digits", bytes.NewReader(art), int64(len(art)), nil))
	s1.Stop()

	x := make([]float32, 784)
	req := &client.InferRequest{Inputs: []client.InferInput{{Name: "input", Shape: []int64{1, 784}, Datatype: "FP32", Data: x}}}
	var samples []time.Duration
	for i := 0; i < 3; i++ {
		s := start(t, store)
		c := must[*client.Client](t, "client")(client.New(s.URL, &client.Options{APIKey: tenant.APIKey}))
		must[*client.InferResponse](t, "first infer")(c.Infer(ctx, "digits", "", req))
		samples = append(samples, time.Since(s.Started))
		s.Stop()
	}
	t.Logf("cold start on %s: process start → first inference answer: %v (3 runs)", strings.SplitN(store, ":", 2)[0], samples)
}
