package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/platform"
	"github.com/aiaas/aiaas/platform/config"
	"github.com/aiaas/aiaas/sdk/client"
)

// TestClientAgainstServer runs the CLI client commands (and so the SDK)
// against the real platform server on a file store: the wire contract is
// checked end to end, not only against canned replies.
func TestClientAgainstServer(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := config.Default()
	const adminKey = "admin-e2e-key-0123456789"
	cfg.AdminKey = adminKey
	cfg.MasterKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	cfg.TenantRPS, cfg.TenantConcurrency = 0, 0
	mk, _ := cfg.MasterKeyBytes()
	ms, err := modelstore.Open(ctx, "file://"+filepath.Join(dir, "store"), &modelstore.Options{MasterKey: mk})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := platform.New(ctx, platform.Options{Config: cfg, Store: platform.StoreFrom(ms)})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() { ts.Close(); srv.Close(context.Background()) })

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
	art := filepath.Join(dir, "iris.safetensors")
	if err := os.WriteFile(art, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	reqFile := filepath.Join(dir, "req.json")
	os.WriteFile(reqFile, []byte(`{"inputs":[{"name":"input","datatype":"FP32","shape":[1,4],"data":[5.1,3.5,1.4,0.2]}]}`), 0o600)

	e := map[string]string{"AIAAS_URL": ts.URL, "AIAAS_ADMIN_KEY": adminKey}
	cli := func(wantCode int, args ...string) map[string]any {
		t.Helper()
		var stdout, stderr bytes.Buffer
		code := run(ctx, append(args, "--output", "json"), &stdout, &stderr, clientEnv(e))
		if code != wantCode {
			t.Fatalf("%s: exit %d, want %d; stderr %s", strings.Join(args, " "), code, wantCode, stderr.String())
		}
		if code != exitOK {
			return nil
		}
		var out map[string]any
		if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
			t.Fatalf("%s: stdout is not one JSON object: %q", strings.Join(args, " "), stdout.String())
		}
		return out
	}

	tenant := cli(exitOK, "tenant", "create", "acme")
	key, _ := tenant["api_key"].(string)
	if key == "" {
		t.Fatalf("tenant create: %v", tenant)
	}
	e["AIAAS_KEY"] = key
	if v := cli(exitOK, "model", "push", "iris", art); v["version"] != 1.0 {
		t.Fatalf("model push: %v", v)
	}
	cli(exitOK, "model", "push", "iris", art)
	// Staged uploads: forced for a small file, and picked by themselves
	// above 5 MiB (a 6 MiB artifact: over what one Lambda request carries).
	if v := cli(exitOK, "model", "push", "iris", art, "--staged", "always"); v["version"] != 3.0 {
		t.Fatalf("model push --staged always: %v", v)
	}
	bigSpec := nn.MLP("x", 512, []int{3072}, "relu", 3, "softmax")
	bm, err := nn.New(bigSpec, 1)
	if err != nil {
		t.Fatal(err)
	}
	var bbuf bytes.Buffer
	if err := bm.WriteArtifact(&bbuf, nn.Metadata{}); err != nil {
		t.Fatal(err)
	}
	bigArt := filepath.Join(dir, "big.safetensors")
	os.WriteFile(bigArt, bbuf.Bytes(), 0o600)
	if bbuf.Len() <= client.SingleRequestLimit {
		t.Fatalf("big artifact is only %d bytes", bbuf.Len())
	}
	if v := cli(exitOK, "model", "push", "big", bigArt); v["version"] != 1.0 || v["size"] != float64(bbuf.Len()) {
		t.Fatalf("model push (auto staged): %v", v)
	}
	if v := cli(exitOK, "audit", "list"); !strings.Contains(clientJSON(v), "model.upload") {
		t.Fatalf("a staged push left no model.upload audit record")
	}
	cli(exitUsage, "model", "push", "big", bigArt, "--staged", "sometimes")
	if v := cli(exitOK, "model", "list"); !strings.Contains(clientJSON(v), `"name":"iris"`) {
		t.Fatalf("model list: %v", v)
	}
	cli(exitOK, "model", "alias", "iris", "prod", "1")
	if v := cli(exitOK, "model", "show", "iris"); !strings.Contains(clientJSON(v), `"prod":{"version":1}`) {
		t.Fatalf("model show: %v", v)
	}
	cli(exitNotFound, "model", "show", "nope")
	cli(exitNotFound, "model", "alias", "iris", "prod", "9") // the server: no such version

	for _, args := range [][]string{
		{"infer", "iris", "--data", "[5.1, 3.5, 1.4, 0.2]", "--version", "prod"},
		{"infer", "iris", "--data", "[[5.1, 3.5, 1.4, 0.2]]", "--binary"},
		{"infer", "iris", "--file", reqFile},
	} {
		v := cli(exitOK, args...)
		outs, _ := v["outputs"].([]any)
		if len(outs) != 1 {
			t.Fatalf("%v: %v", args, v)
		}
		data, _ := outs[0].(map[string]any)["data"].([]any)
		sum := 0.0
		for _, p := range data {
			sum += p.(float64)
		}
		if len(data) != 3 || sum < 0.999 || sum > 1.001 {
			t.Fatalf("%v: probabilities %v", args, data)
		}
	}

	if v := cli(exitOK, "endpoint", "create", "raw", "--model", "iris", "--version", "prod"); v["model"] != "iris" {
		t.Fatalf("endpoint create: %v", v)
	}
	if v := cli(exitOK, "endpoint", "list"); !strings.Contains(clientJSON(v), `"raw"`) {
		t.Fatalf("endpoint list: %v", v)
	}
	if v := cli(exitOK, "invoke", "raw", reqFile, "--content-type", "application/json"); v["encoding"] != "json" || !strings.Contains(clientJSON(v), "outputs") {
		t.Fatalf("invoke: %v", v)
	}

	k := cli(exitOK, "key", "create", "ci", "--scope", "invoke")
	ciKey, _ := k["api_key"].(string)
	id, _ := k["id"].(string)
	e["AIAAS_KEY"] = ciKey
	cli(exitOK, "infer", "iris", "--file", reqFile)
	cli(exitAuth, "key", "list") // invoke scope cannot manage
	e["AIAAS_KEY"] = key
	cli(exitOK, "key", "revoke", id)
	e["AIAAS_KEY"] = ciKey
	cli(exitAuth, "infer", "iris", "--file", reqFile) // revoked
	e["AIAAS_KEY"] = key

	if v := cli(exitOK, "audit", "list"); len(v["records"].([]any)) == 0 {
		t.Fatalf("audit list: %v", v)
	}
	if v := cli(exitOK, "audit", "verify"); v["ok"] != true {
		t.Fatalf("audit verify: %v", v)
	}

	// Training on the server: upload a small CSV, train, wait.
	var csv strings.Builder
	for i := range 90 {
		c := i % 3
		csv.WriteString(strings.Join([]string{clientItoa(c*2 + i%5), clientItoa(c + 1), clientItoa(c*3 + i%2), clientItoa(c), clientItoa(c)}, ",") + "\n")
	}
	ds := filepath.Join(dir, "toy.csv")
	os.WriteFile(ds, []byte(csv.String()), 0o600)
	if v := cli(exitOK, "dataset", "push", "toy", ds); v["name"] != "toy" {
		t.Fatalf("dataset push: %v", v)
	}
	if v := cli(exitOK, "dataset", "push", "toy2", ds, "--staged", "always"); v["name"] != "toy2" || v["sha256"] == nil {
		t.Fatalf("dataset push --staged always: %v", v)
	}
	job := cli(exitOK, "job", "submit", "--model", "toy", "--dataset", "toy", "--layers", "8", "--epochs", "2", "--batch-size", "16", "--wait", "--poll", "20ms")
	if job["status"] != "succeeded" || job["result"] == nil {
		t.Fatalf("job: %v", job)
	}
	if v := cli(exitOK, "job", "list"); !strings.Contains(clientJSON(v), `"succeeded"`) {
		t.Fatalf("job list: %v", v)
	}

	// Evaluation: the trained model against iris's prod on the same data,
	// then the evaluation justifying an alias move.
	ev := cli(exitOK, "evaluate", "--candidate", "toy", "--candidate", "iris:prod", "--dataset", "toy", "--batches", "1,4",
		"--memory-mb", "512", "--price-per-million-requests", "0", "--wait", "--poll", "20ms")
	if ev["status"] != "succeeded" || len(ev["results"].([]any)) != 2 {
		t.Fatalf("evaluate: %v", ev)
	}
	for _, r := range ev["results"].([]any) {
		r := r.(map[string]any)
		q, _ := r["classification"].(map[string]any)
		if r["status"] != "ok" || q == nil || q["rows"] != 90.0 || r["cost"].(map[string]any)["memory_mb"] != 512.0 ||
			r["cost"].(map[string]any)["price_per_million_requests"] != 0.0 {
			t.Fatalf("evaluate result: %v", r)
		}
	}
	evID := ev["id"].(string)
	cli(exitInvalid, "evaluate", "--candidate", "toy", "--dataset", "toy", "--metrics", "vibes")
	cli(exitUsage, "evaluate", "--dataset", "toy")
	cli(exitUsage, "evaluate", "--candidate", "toy:", "--dataset", "toy")
	cli(exitNotFound, "evaluate", "--candidate", "nope", "--dataset", "toy")
	cli(exitNotFound, "evaluation", "show", "e0000000000000000")
	cli(exitInvalid, "evaluation", "cancel", evID) // finished: 409
	if v := cli(exitOK, "evaluation", "list"); !strings.Contains(clientJSON(v), evID) {
		t.Fatalf("evaluation list: %v", v)
	}
	var text, errText bytes.Buffer
	if code := run(ctx, []string{"evaluation", "show", evID}, &text, &errText, clientEnv(e)); code != exitOK ||
		!strings.Contains(text.String(), "ACCURACY") || !strings.Contains(text.String(), "iris:prod (v1)") || !strings.Contains(text.String(), "USD/1M REQ") {
		t.Fatalf("evaluation show (text): %d %s %s", code, text.String(), errText.String())
	}
	if v := cli(exitOK, "model", "alias", "iris", "prod", "1", "--evaluation", evID); v["evaluation"] != evID {
		t.Fatalf("alias with evaluation: %v", v)
	}
	cli(exitInvalid, "model", "alias", "iris", "prod", "2", "--evaluation", evID) // version 2 was not evaluated

	// The SDK's explain and binary paths against the same server.
	c, _ := client.New(ts.URL, &client.Options{APIKey: key})
	ex, err := c.Explain(ctx, "iris", &client.ExplainRequest{Version: "prod", Input: []float32{5.1, 3.5, 1.4, 0.2}, Method: client.MethodGradientXInput})
	if err != nil || len(ex.Attributions) != 4 || len(ex.Output) != 3 {
		t.Fatalf("explain: %+v, %v", ex, err)
	}
	resp, err := c.InferBinary(ctx, "iris", "2", &client.InferRequest{Inputs: []client.InferInput{{Name: "input", Datatype: "FP32", Shape: []int64{2, 4}, Data: make([]float32, 8)}}})
	if err != nil {
		t.Fatal(err)
	}
	if v, sha := resp.Lineage(); v != "2" || len(sha) != 64 || resp.Outputs[0].Raw == nil {
		t.Fatalf("binary infer: version %q sha %q outputs %+v", v, sha, resp.Outputs)
	}
}

func clientItoa(i int) string { return strconv.Itoa(i) }

func clientJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
