package platform_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/nn/dataset"
	"github.com/aiaas/aiaas/nn/onnx"
	"github.com/aiaas/aiaas/platform"
	"github.com/aiaas/aiaas/platform/config"
)

// digitsCSV writes rows [from, from+n) of an MNIST set as CSV: 784 pixel
// values in [0, 1], then the label.
func digitsCSV(s *dataset.Set, from, n int) []byte {
	var b bytes.Buffer
	for i := from; i < from+n; i++ {
		for _, v := range s.X[i*784 : (i+1)*784] {
			if v == 0 {
				b.WriteString("0,")
			} else {
				fmt.Fprintf(&b, "%.4g,", v)
			}
		}
		fmt.Fprintf(&b, "%d\n", s.Y[i])
	}
	return b.Bytes()
}

var (
	mnistOnce       sync.Once
	mnistTrainSet   *dataset.Set
	mnistTestSet    *dataset.Set
	mnistLoadFailed error
)

// loadMNIST is the real MNIST data, which the worked example needs; a
// machine without it fails the test rather than skipping it (as nn's
// MNIST test does).
func loadMNIST(t *testing.T) (train, test *dataset.Set) {
	t.Helper()
	mnistOnce.Do(func() {
		dir, err := dataset.MNISTDir()
		if err != nil {
			mnistLoadFailed = err
			return
		}
		mnistTrainSet, mnistTestSet, mnistLoadFailed = dataset.LoadMNIST(dir)
	})
	if mnistLoadFailed != nil {
		t.Fatalf("MNIST not available (set AIAAS_MNIST_DIR): %v", mnistLoadFailed)
	}
	return mnistTrainSet, mnistTestSet
}

// runEval submits an evaluation and waits for it to end.
func runEval(t *testing.T, e *env, key string, body any) map[string]any {
	t.Helper()
	r := e.do("POST", "/v1/evaluations", key, body)
	if r.status != 202 {
		t.Fatalf("submit evaluation: %d %s", r.status, r.body)
	}
	return waitEval(t, e, key, r.json(t)["id"].(string))
}

func waitEval(t *testing.T, e *env, key, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		got := e.do("GET", "/v1/evaluations/"+id, key, nil)
		if got.status != 200 {
			t.Fatalf("get evaluation: %d %s", got.status, got.body)
		}
		m := got.json(t)
		if s := m["status"]; s == "succeeded" || s == "failed" || s == "canceled" {
			return m
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("evaluation %s did not finish", id)
	return nil
}

// resultOf finds a candidate's result by model name.
func resultOf(t *testing.T, ev map[string]any, model string) map[string]any {
	t.Helper()
	for _, r := range ev["results"].([]any) {
		if m := r.(map[string]any); m["model"] == model {
			return m
		}
	}
	t.Fatalf("no result for %s in %v", model, ev["results"])
	return nil
}

// directAccuracy runs a stored version over the rows with nn directly, in
// one batch, and counts the argmax hits.
func directAccuracy(t *testing.T, e *env, tenantID, model string, version int, s *dataset.Set, from, n int) float64 {
	t.Helper()
	b, _, err := e.store.OpenModel(context.Background(), tenantID, model, version)
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := nn.ReadArtifact(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.Forward(nil, s.X[from*784:(from+n)*784], n)
	if err != nil {
		t.Fatal(err)
	}
	hits := 0
	for i := range n {
		row := out[i*10 : (i+1)*10]
		best := 0
		for j := range row {
			if row[j] > row[best] {
				best = j
			}
		}
		if best == int(s.Y[from+i]) {
			hits++
		}
	}
	return float64(hits) / float64(n)
}

// TestEvaluateMNISTMLPvsCNN is the worked example of docs/evaluation.md:
// a small MLP and a small CNN trained on MNIST by training jobs, the CNN
// also exported to ONNX and published as a graph model, and a 4-input
// model that cannot read digits — all evaluated over the same held-out
// digits. It checks the figures against the models run directly, the
// confusion matrices against the data, the incompatible candidate, the
// tenant boundary and the alias move justified by the evaluation.
func TestEvaluateMNISTMLPvsCNN(t *testing.T) {
	train, test := loadMNIST(t)
	e := newEnv(t, nil)
	tr := e.do("POST", "/v1/tenants", adminKey, map[string]string{"name": "acme"})
	if tr.status != 201 {
		t.Fatalf("tenant: %d %s", tr.status, tr.body)
	}
	key, tenantID := tr.json(t)["api_key"].(string), tr.json(t)["id"].(string)
	other := e.tenant("globex")

	const nTrain, nTest = 1500, 300
	for name, body := range map[string][]byte{"digits-train": digitsCSV(train, 0, nTrain), "digits-test": digitsCSV(test, 0, nTest)} {
		if r := e.do("PUT", "/v1/datasets/"+name, key, body, "Content-Type", "text/csv"); r.status != 201 {
			t.Fatalf("dataset %s: %d %s", name, r.status, r.body)
		}
	}
	mlp := runJob(t, e, key, map[string]any{"model": "mnist", "dataset": "digits-train", "layers": []int{32},
		"epochs": 2, "seed": 1})
	cnn := runJob(t, e, key, map[string]any{"model": "mnist-cnn", "dataset": "digits-train", "epochs": 2, "seed": 1,
		"network": map[string]any{"input_shape": []int{1, 28, 28}, "layers": []map[string]any{
			{"type": "conv2d", "filters": 4, "kernel_size": []int{3}, "activation": "relu"},
			{"type": "maxpool2d", "pool_size": []int{2}},
			{"type": "flatten"},
			{"type": "dense", "units": 10, "activation": "softmax"},
		}}})
	for _, j := range []map[string]any{mlp, cnn} {
		if j["status"] != "succeeded" {
			t.Fatalf("training: %v", j)
		}
	}
	if r := e.do("PUT", "/v1/models/mnist/aliases/prod", key, map[string]any{"version": 1}); r.status != 200 {
		t.Fatalf("alias: %d %s", r.status, r.body)
	}
	// The CNN as an ONNX graph: the same weights through the graph runtime.
	b, _, err := e.store.OpenModel(context.Background(), tenantID, "mnist-cnn", 1)
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := nn.ReadArtifact(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ob bytes.Buffer
	if err := onnx.Export(&ob, m); err != nil {
		t.Fatal(err)
	}
	if r := e.do("POST", "/v1/models/mnist-cnn-onnx/versions", key, ob.Bytes(), "Content-Type", "application/onnx"); r.status != 201 {
		t.Fatalf("publish onnx: %d %s", r.status, r.body)
	}
	e.publish(key, "tabular", 1) // 4 inputs: cannot read 784-pixel rows

	ev := runEval(t, e, key, map[string]any{
		"candidates": []map[string]string{{"model": "mnist", "version": "prod"}, {"model": "mnist-cnn", "version": "1"},
			{"model": "mnist-cnn-onnx"}, {"model": "tabular"}},
		"dataset": "digits-test", "batches": []int{1, 32}, "top_k": 3,
	})
	if ev["status"] != "succeeded" {
		t.Fatalf("evaluation: %v", ev)
	}
	id := ev["id"].(string)
	if ds := ev["dataset"].(map[string]any); ds["rows"].(float64) != nTest || ds["features"].(float64) != 784 {
		t.Errorf("dataset: %v", ds)
	}
	support := make([]int, 10)
	for i := range nTest {
		support[test.Y[i]]++
	}
	accs := map[string]float64{}
	for _, c := range []struct {
		model, arch string
		version     int
	}{{"mnist", "dense", 1}, {"mnist-cnn", "dense", 1}, {"mnist-cnn-onnx", "graph", 1}} {
		r := resultOf(t, ev, c.model)
		if r["status"] != "ok" || r["architecture"] != c.arch || int(r["resolved_version"].(float64)) != c.version {
			t.Errorf("%s: %v", c.model, r)
			continue
		}
		q := r["classification"].(map[string]any)
		acc := q["accuracy"].(float64)
		accs[c.model] = acc
		if top := q["top_k_accuracy"].(float64); top < acc || q["top_k"].(float64) != 3 {
			t.Errorf("%s: top-3 accuracy %v below accuracy %v", c.model, top, acc)
		}
		// The confusion matrix holds every row once, its diagonal the
		// hits, its rows the classes' counts in the data.
		cm := q["confusion_matrix"].([]any)
		total, diag := 0, 0
		for i, row := range cm {
			rowSum := 0
			for j, v := range row.([]any) {
				rowSum += int(v.(float64))
				if i == j {
					diag += int(v.(float64))
				}
			}
			total += rowSum
			if rowSum != support[i] {
				t.Errorf("%s: confusion row %d sums to %d, the data has %d", c.model, i, rowSum, support[i])
			}
		}
		if total != nTest || math.Abs(float64(diag)/nTest-acc) > 1e-12 {
			t.Errorf("%s: confusion matrix sums to %d (diagonal %d), accuracy %v", c.model, total, diag, acc)
		}
		pc := q["per_class"].([]any)
		if len(pc) != 10 || int(pc[7].(map[string]any)["support"].(float64)) != support[7] {
			t.Errorf("%s: per-class %v", c.model, pc)
		}
		// Latency, throughput, memory, size and cost are there and sane
		// (their values depend on the machine: no bounds on them).
		l := r["latency"].(map[string]any)
		if l["p50_ms"].(float64) <= 0 || l["p99_ms"].(float64) < l["p50_ms"].(float64) || l["best_rows_per_second"].(float64) <= 0 ||
			len(l["batches"].([]any)) != 2 {
			t.Errorf("%s: latency %v", c.model, l)
		}
		// The quality pass alone allocates its outputs (300 rows), so the
		// measured peak is above zero whatever else the process does.
		if mem := r["memory"].(map[string]any); mem["model_bytes"].(float64) <= 0 || mem["peak_working_bytes"].(float64) <= 0 || r["artifact_bytes"].(float64) <= 0 {
			t.Errorf("%s: memory %v, artifact %v", c.model, r["memory"], r["artifact_bytes"])
		}
		cost := r["cost"].(map[string]any)
		if cost["memory_mb"].(float64) != 1024 || cost["per_million_requests_usd"].(float64) < 0.2 {
			t.Errorf("%s: cost %v", c.model, cost)
		}
		t.Logf("%s (%s): accuracy %.4f top-3 %.4f macro-F1 %.4f; p50 %.3f ms p99 %.3f ms; best batch %v at %.0f rows/s; %v model bytes, peak working %v bytes, %v artifact bytes; %.4f USD per million requests",
			c.model, c.arch, acc, q["top_k_accuracy"], q["macro_f1"], l["p50_ms"], l["p99_ms"], l["best_batch"], l["best_rows_per_second"],
			r["memory"].(map[string]any)["model_bytes"], r["memory"].(map[string]any)["peak_working_bytes"], r["artifact_bytes"], cost["per_million_requests_usd"])
	}
	// The figures are the models' own: the same accuracy as running them
	// directly (one batch here, chunks there: a summation order apart,
	// so a row whose two best scores tie to float32 rounding may differ).
	for _, model := range []string{"mnist", "mnist-cnn"} {
		want := directAccuracy(t, e, tenantID, model, 1, test, 0, nTest)
		if math.Abs(accs[model]-want) > 1.5/nTest {
			t.Errorf("%s: evaluated accuracy %v, direct %v", model, accs[model], want)
		}
	}
	if math.Abs(accs["mnist-cnn"]-accs["mnist-cnn-onnx"]) > 1.5/nTest {
		t.Errorf("the CNN as dense (%v) and as an ONNX graph (%v) disagree", accs["mnist-cnn"], accs["mnist-cnn-onnx"])
	}
	if r := resultOf(t, ev, "tabular"); r["status"] != "incompatible" || !strings.Contains(r["reason"].(string), "784") {
		t.Errorf("4-input model: %v", r)
	}

	// Another tenant sees nothing of it.
	if r := e.do("GET", "/v1/evaluations/"+id, other, nil); r.status != 404 {
		t.Errorf("other tenant's GET: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/v1/evaluations", other, nil); r.status != 200 || strings.Contains(string(r.body), id) {
		t.Errorf("other tenant's list: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/evaluations/"+id+"/cancel", other, nil); r.status != 404 {
		t.Errorf("other tenant's cancel: %d %s", r.status, r.body)
	}
	list := e.do("GET", "/v1/evaluations", key, nil)
	if list.status != 200 || !strings.Contains(string(list.body), id) || strings.Contains(string(list.body), "confusion_matrix") {
		t.Errorf("list: %d %.300s", list.status, list.body)
	}
	// Finished is final.
	if r := e.do("POST", "/v1/evaluations/"+id+"/cancel", key, nil); r.status != 409 {
		t.Errorf("cancel a finished evaluation: %d %s", r.status, r.body)
	}

	// The evaluation justifies moving the CNN's alias, in the audit log.
	for _, tc := range []struct {
		model string
		body  map[string]any
		key   string
		want  int
	}{
		{"mnist-cnn", map[string]any{"version": 1, "evaluation": "e0000000000000000"}, key, 404},
		{"mnist-cnn", map[string]any{"version": 1, "evaluation": id}, other, 404}, // the model is not the other's either
		{"tabular", map[string]any{"version": 1, "evaluation": "../" + id}, key, 404},
		{"mnist-onnx-none", map[string]any{"version": 1, "evaluation": id}, key, 404},
	} {
		if r := e.do("PUT", "/v1/models/"+tc.model+"/aliases/prod", tc.key, tc.body); r.status != tc.want {
			t.Errorf("alias %s %v: %d %s, want %d", tc.model, tc.body, r.status, r.body, tc.want)
		}
	}
	// Another tenant with a model of the same name cannot cite this
	// tenant's evaluation: it does not exist for them.
	e.publish(other, "mnist-cnn", 1)
	if r := e.do("PUT", "/v1/models/mnist-cnn/aliases/prod", other, map[string]any{"version": 1, "evaluation": id}); r.status != 404 ||
		!strings.Contains(string(r.body), "evaluation") {
		t.Errorf("another tenant cites the evaluation: %d %s", r.status, r.body)
	}
	e.publish(key, "tabular", 2)
	if r := e.do("PUT", "/v1/models/tabular/aliases/prod", key, map[string]any{"version": 2, "evaluation": id}); r.status != 400 ||
		!strings.Contains(string(r.body), "not version 2") {
		t.Errorf("alias to a version the evaluation did not compare: %d %s", r.status, r.body)
	}
	r := e.do("PUT", "/v1/models/mnist-cnn/aliases/prod", key, map[string]any{"version": 1, "evaluation": id})
	if r.status != 200 || r.json(t)["evaluation"] != id {
		t.Fatalf("alias with evaluation: %d %s", r.status, r.body)
	}
	audit := e.do("GET", "/v1/audit?limit=1000", key, nil)
	found := false
	for _, rec := range audit.json(t)["records"].([]any) {
		rec := rec.(map[string]any)
		if rec["action"] == "model.alias" && rec["object"] == "models/mnist-cnn/aliases/prod" {
			found = rec["justification"] == "evaluations/"+id
		}
	}
	if !found {
		t.Errorf("no audit record of the alias move citing evaluations/%s: %.2000s", id, audit.body)
	}
	if v := e.do("GET", "/v1/audit/verify", key, nil); v.status != 200 || !strings.Contains(string(v.body), `"ok":true`) {
		t.Errorf("audit verify: %d %s", v.status, v.body)
	}
}

// TestEvaluateRegression: a one-output model over a numeric target gives
// the MSE and MAE computed by hand; a 3-output classifier on it is
// incompatible; metrics selects what is measured.
func TestEvaluateRegression(t *testing.T) {
	e := newEnv(t, nil)
	key := e.tenant("acme")
	spec := nn.Spec{
		Inputs:  []nn.TensorSpec{{Name: "input", Datatype: "FP32", Shape: []int64{-1, 4}}},
		Outputs: []nn.TensorSpec{{Name: "y", Datatype: "FP32", Shape: []int64{-1, 1}}},
		Layers:  []nn.Layer{{Type: "dense", Units: 1, Activation: "linear"}},
	}
	art := artifactOf(t, spec, 3)
	if r := e.do("POST", "/v1/models/line/versions", key, art, "Content-Type", "application/octet-stream"); r.status != 201 {
		t.Fatalf("publish: %d %s", r.status, r.body)
	}
	e.publish(key, "classes", 1)
	m, _, err := nn.ReadArtifact(art, nil)
	if err != nil {
		t.Fatal(err)
	}
	var csv strings.Builder
	var sq, abs float64
	const n = 50
	for i := range n {
		x := []float32{float32(i%5) / 5, float32(i%3) / 3, float32(i%7) / 7, 0.5}
		target := float32(i%4) - 1.5
		fmt.Fprintf(&csv, "%g,%g,%g,%g,%g\n", x[0], x[1], x[2], x[3], target)
		y, _ := m.Forward(nil, x, 1)
		d := float64(y[0]) - float64(target)
		sq, abs = sq+d*d, abs+math.Abs(d)
	}
	if r := e.do("PUT", "/v1/datasets/targets?task=regression", key, csv.String(), "Content-Type", "text/csv"); r.status != 201 {
		t.Fatalf("dataset: %d %s", r.status, r.body)
	}
	ev := runEval(t, e, key, map[string]any{"candidates": []map[string]string{{"model": "line"}, {"model": "classes"}},
		"dataset": "targets", "task": "regression", "metrics": []string{"quality"}})
	if ev["status"] != "succeeded" {
		t.Fatalf("evaluation: %v", ev)
	}
	r := resultOf(t, ev, "line")
	reg, _ := r["regression"].(map[string]any)
	if r["status"] != "ok" || reg == nil || math.Abs(reg["mse"].(float64)-sq/n) > 1e-5 || math.Abs(reg["mae"].(float64)-abs/n) > 1e-5 {
		t.Errorf("regression: %v, want mse %v mae %v", r, sq/n, abs/n)
	}
	if r["latency"] != nil || r["cost"] != nil || r["memory"] != nil {
		t.Errorf("measured what was not asked: %v", r)
	}
	if r := resultOf(t, ev, "classes"); r["status"] != "incompatible" || !strings.Contains(r["reason"].(string), "regression") {
		t.Errorf("3-output model on a regression dataset: %v", r)
	}
}

// TestEvaluationRequestErrors: every malformed request is a 4xx with a
// JSON error naming the problem, and nothing is queued.
func TestEvaluationRequestErrors(t *testing.T) {
	e := newEnv(t, nil)
	key := e.tenant("acme")
	other := e.tenant("globex")
	e.publish(key, "m", 1)
	e.publish(other, "theirs", 1)
	if r := e.do("PUT", "/v1/datasets/d", key, "0,0,0,0,1\n1,1,1,1,0\n", "Content-Type", "text/csv"); r.status != 201 {
		t.Fatalf("dataset: %d %s", r.status, r.body)
	}
	cands := []map[string]string{{"model": "m"}}
	for i, tc := range []struct {
		body   any
		ct     string
		status int
		want   string
	}{
		{`{`, "", 400, "invalid JSON"},
		{``, "", 400, "JSON"},
		{`[]`, "", 400, "invalid JSON"},
		{`{"candidates":[{"model":"m"}],"dataset":"d"} {}`, "", 400, "after the object"},
		{map[string]any{"candidates": cands, "dataset": "d", "extra": 1}, "", 400, "unknown field"},
		{map[string]any{"dataset": "d"}, "", 400, "candidates"},
		{map[string]any{"candidates": cands}, "", 400, "dataset"},
		{map[string]any{"candidates": cands, "dataset": "d", "metrics": []string{"vibes"}}, "", 400, "unknown metric"},
		{map[string]any{"candidates": cands, "dataset": "d", "memory_mb": 20000}, "", 400, "memory_mb"},
		{map[string]any{"candidates": cands, "dataset": "d", "price_per_gb_second": -1}, "", 400, "price_per_gb_second"},
		{map[string]any{"candidates": cands, "dataset": "d", "batches": []int{0}}, "", 400, "batch"},
		{map[string]any{"candidates": cands, "dataset": "d", "task": "ranking"}, "", 400, "task"},
		{map[string]any{"candidates": []map[string]string{{"model": "m"}, {"model": "m"}}, "dataset": "d"}, "", 400, "twice"},
		{map[string]any{"candidates": []map[string]string{{"model": "../m"}}, "dataset": "d"}, "", 400, "invalid model name"},
		{map[string]any{"candidates": cands, "dataset": "../d"}, "", 400, "invalid dataset name"},
		{map[string]any{"candidates": cands, "dataset": "nope"}, "", 404, "dataset \"nope\" not found"},
		{map[string]any{"candidates": []map[string]string{{"model": "theirs"}}, "dataset": "d"}, "", 404, "not found"},
		{map[string]any{"candidates": []map[string]string{{"model": "m", "version": "7"}}, "dataset": "d"}, "", 404, "no version 7"},
		{map[string]any{"candidates": []map[string]string{{"model": "m", "version": "canary"}}, "dataset": "d"}, "", 404, "no version or alias"},
		{`{"candidates":[{"model":"m"}],"dataset":"d"}`, "text/plain", 415, "Content-Type"},
		{`{"candidates":[{"model":"m"}],"dataset":"` + strings.Repeat("x", 7<<20) + `"}`, "", 413, ""},
	} {
		hdr := []string{}
		if tc.ct != "" {
			hdr = []string{"Content-Type", tc.ct}
		}
		r := e.do("POST", "/v1/evaluations", key, tc.body, hdr...)
		var msg struct{ Error string }
		if r.status != tc.status || json.Unmarshal(r.body, &msg) != nil || msg.Error == "" || !strings.Contains(msg.Error, tc.want) {
			t.Errorf("%d: %d %.200s, want %d naming %q", i, r.status, r.body, tc.status, tc.want)
		}
	}
	if r := e.do("GET", "/v1/evaluations", key, nil); r.status != 200 || !strings.Contains(string(r.body), `"evaluations":[]`) {
		t.Errorf("something was queued: %s", r.body)
	}
	for _, id := range []string{"nope", "j0123", "e0123", "..", strings.Repeat("e", 200)} {
		if r := e.do("GET", "/v1/evaluations/"+id, key, nil); r.status != 404 {
			t.Errorf("GET %s: %d %s", id, r.status, r.body)
		}
	}
}

// TestEvaluationCancel: a canceled evaluation ends as canceled, its
// unfinished candidates skipped.
func TestEvaluationCancel(t *testing.T) {
	e := newEnv(t, nil)
	key := e.tenant("acme")
	e.publish(key, "m", 1)
	e.publish(key, "m", 2)
	var csv strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&csv, "%d,%d,%d,%d,%d\n", i%3, i%5, i%7, i%2, i%3)
	}
	if r := e.do("PUT", "/v1/datasets/d", key, csv.String(), "Content-Type", "text/csv"); r.status != 201 {
		t.Fatalf("dataset: %d %s", r.status, r.body)
	}
	r := e.do("POST", "/v1/evaluations", key, map[string]any{"candidates": []map[string]string{{"model": "m", "version": "1"}, {"model": "m", "version": "2"}},
		"dataset": "d", "batches": []int{1, 2, 4, 8, 16, 32, 64, 128}})
	if r.status != 202 {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}
	id := r.json(t)["id"].(string)
	c := e.do("POST", "/v1/evaluations/"+id+"/cancel", key, nil)
	ev := waitEval(t, e, key, id)
	switch c.status {
	case 202:
		if ev["status"] != "canceled" {
			t.Fatalf("after cancel: %v", ev)
		}
		for _, res := range ev["results"].([]any) {
			if s := res.(map[string]any)["status"]; s != "ok" && s != "skipped" {
				t.Errorf("candidate of a canceled evaluation: %v", res)
			}
		}
	case 409: // it finished first: a very fast machine
		t.Logf("the evaluation finished before the cancel: %v", ev["status"])
	default:
		t.Fatalf("cancel: %d %s", c.status, c.body)
	}
}

// TestEvaluationDispatched: with a dispatcher (the Lambda layout), an
// evaluation is handed to the worker by id, and the worker's RunJob — the
// train function's entry point — runs it like a training job.
func TestEvaluationDispatched(t *testing.T) {
	ctx := context.Background()
	cfg := config.Default()
	cfg.AdminKey, cfg.MasterKey = adminKey, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	cfg.TenantRPS, cfg.TenantConcurrency, cfg.TrainWorkers = 0, 0, 0
	mk, _ := cfg.MasterKeyBytes()
	ms, err := modelstore.Open(ctx, "mem://", &modelstore.Options{MasterKey: mk})
	if err != nil {
		t.Fatal(err)
	}
	var srv *platform.Server
	var wg sync.WaitGroup
	srv, err = platform.New(ctx, platform.Options{Config: cfg, Store: platform.StoreFrom(ms),
		Dispatch: func(_ context.Context, tenant, id string) error {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := srv.RunJob(context.Background(), tenant, id); err != nil {
					t.Errorf("RunJob(%s): %v", id, err)
				}
			}()
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wg.Wait)
	e := newEnvFor(t, srv, ms)
	key := e.tenant("acme")
	e.publish(key, "m", 1)
	if r := e.do("PUT", "/v1/datasets/d", key, "0,0,0,0,1\n1,1,1,1,0\n0.5,0,1,0,2\n", "Content-Type", "text/csv"); r.status != 201 {
		t.Fatalf("dataset: %d %s", r.status, r.body)
	}
	ev := runEval(t, e, key, map[string]any{"candidates": []map[string]string{{"model": "m"}}, "dataset": "d", "batches": []int{1}})
	if r := resultOf(t, ev, "m"); ev["status"] != "succeeded" || r["status"] != "ok" || r["classification"].(map[string]any)["rows"] != 3.0 {
		t.Fatalf("dispatched evaluation: %v", ev)
	}
}

// TestEvaluationTenantShare: evaluations count in the tenant's share of
// the job queue with training jobs (8 queued or running); past it, 429
// with Retry-After for that tenant only; cancelling a queued evaluation
// ends it at once and frees its place.
func TestEvaluationTenantShare(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.TrainWorkers = 0 }) // nothing dequeues
	key, other := e.tenant("acme"), e.tenant("globex")
	for _, k := range []string{key, other} {
		e.publish(k, "m", 1)
		if r := e.do("PUT", "/v1/datasets/d", k, "0,0,0,0,1\n1,1,1,1,0\n", "Content-Type", "text/csv"); r.status != 201 {
			t.Fatalf("dataset: %d %s", r.status, r.body)
		}
	}
	body := func(v string) map[string]any {
		return map[string]any{"candidates": []map[string]string{{"model": "m", "version": v}}, "dataset": "d"}
	}
	var ids []string
	for range 8 {
		r := e.do("POST", "/v1/evaluations", key, body("1"))
		if r.status != 202 {
			t.Fatalf("submit: %d %s", r.status, r.body)
		}
		ids = append(ids, r.json(t)["id"].(string))
	}
	r := e.do("POST", "/v1/evaluations", key, body("1"))
	if r.status != 429 || r.header.Get("Retry-After") == "" || !strings.Contains(string(r.body), "share") {
		t.Fatalf("ninth evaluation: %d %v %s", r.status, r.header, r.body)
	}
	if r := e.do("POST", "/v1/training-jobs", key, map[string]any{"model": "m2", "dataset": "d", "layers": []int{4}}); r.status != 429 {
		t.Errorf("a training job past the shared share: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/evaluations", other, body("latest")); r.status != 202 {
		t.Errorf("another tenant is held back: %d %s", r.status, r.body)
	}
	c := e.do("POST", "/v1/evaluations/"+ids[0]+"/cancel", key, nil)
	if c.status != 202 || c.json(t)["status"] != "canceled" {
		t.Fatalf("cancel a queued evaluation: %d %s", c.status, c.body)
	}
	got := e.do("GET", "/v1/evaluations/"+ids[0], key, nil).json(t)
	if got["status"] != "canceled" || got["results"].([]any)[0].(map[string]any)["status"] != "skipped" {
		t.Errorf("after cancel: %v", got)
	}
	if r := e.do("POST", "/v1/evaluations", key, body("1")); r.status != 202 {
		t.Errorf("the canceled evaluation's place is not free: %d %s", r.status, r.body)
	}
}

// TestEvaluationDeadline: a worker with a deadline (a Lambda invocation)
// stops the evaluation early enough to record it: failed, saying why,
// with what was measured kept and the rest skipped.
func TestEvaluationDeadline(t *testing.T) {
	ctx := context.Background()
	cfg := config.Default()
	cfg.AdminKey, cfg.MasterKey = adminKey, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	cfg.TenantRPS, cfg.TenantConcurrency, cfg.TrainWorkers = 0, 0, 0
	mk, _ := cfg.MasterKeyBytes()
	ms, err := modelstore.Open(ctx, "mem://", &modelstore.Options{MasterKey: mk})
	if err != nil {
		t.Fatal(err)
	}
	var srv *platform.Server
	var wg sync.WaitGroup
	srv, err = platform.New(ctx, platform.Options{Config: cfg, Store: platform.StoreFrom(ms),
		Dispatch: func(_ context.Context, tenant, id string) error {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// 5.5 s, of which the job keeps 5 s to record itself.
				dctx, cancel := context.WithTimeout(context.Background(), 5500*time.Millisecond)
				defer cancel()
				_ = srv.RunJob(dctx, tenant, id)
			}()
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wg.Wait)
	e := newEnvFor(t, srv, ms)
	key := e.tenant("acme")
	var cands []map[string]string
	for v := range 4 {
		e.publish(key, "m", int64(v))
		cands = append(cands, map[string]string{"model": "m", "version": fmt.Sprint(v + 1)})
	}
	if r := e.do("PUT", "/v1/datasets/d", key, "0,0,0,0,1\n1,1,1,1,0\n", "Content-Type", "text/csv"); r.status != 201 {
		t.Fatalf("dataset: %d %s", r.status, r.body)
	}
	// Four candidates of eight timed batch sizes: well over half a second.
	ev := runEval(t, e, key, map[string]any{"candidates": cands, "dataset": "d", "batches": []int{1, 2, 4, 8, 16, 32, 64, 128}})
	if ev["status"] != "failed" || !strings.Contains(fmt.Sprint(ev["error"]), "deadline") {
		t.Fatalf("evaluation past its deadline: %v", ev)
	}
	last := ev["results"].([]any)[3].(map[string]any)
	if last["status"] != "skipped" {
		t.Errorf("the last candidate: %v", last)
	}
}

// FuzzEvaluationRequest posts arbitrary bodies to POST /v1/evaluations:
// the answer is never a 5xx, a refusal is a JSON error, and nothing runs
// (the tenant has no models, so no request can be accepted). One server
// serves every input.
func FuzzEvaluationRequest(f *testing.F) {
	f.Add([]byte(`{"candidates":[{"model":"mnist","version":"prod"},{"model":"mnist-cnn","version":"3"}],"dataset":"mnist-test"}`))
	f.Add([]byte(`{"candidates":[{"model":"m"}],"dataset":"mnist","metrics":["cost"],"memory_mb":2048,"price_per_gb_second":0.00001}`))
	f.Add([]byte(`{"candidates":[{"model":"m","version":"-1"}],"dataset":"d","top_k":0,"batches":[1,1,1]}`))
	f.Add([]byte(`{"candidates":null,"dataset":null}`))
	f.Add([]byte("\x00\xff"))
	ctx := context.Background()
	cfg := config.Default()
	cfg.AdminKey, cfg.MasterKey = adminKey, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	cfg.TenantRPS, cfg.TenantConcurrency = 0, 0
	mk, _ := cfg.MasterKeyBytes()
	ms, err := modelstore.Open(ctx, "mem://", &modelstore.Options{MasterKey: mk})
	if err != nil {
		f.Fatal(err)
	}
	srv, err := platform.New(ctx, platform.Options{Config: cfg, Store: platform.StoreFrom(ms)})
	if err != nil {
		f.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	f.Cleanup(func() { ts.Close(); srv.Close(ctx) })
	post := func(key string, body []byte) (int, []byte, error) {
		req, _ := http.NewRequest("POST", ts.URL+"/v1/evaluations", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		if key == adminKey {
			req.URL.Path = "/v1/tenants"
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}
	st, b, err := post(adminKey, []byte(`{"name":"fuzz"}`))
	var tenant struct {
		APIKey string `json:"api_key"`
	}
	if err != nil || st != 201 || json.Unmarshal(b, &tenant) != nil {
		f.Fatalf("tenant: %d %s %v", st, b, err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		st, b, err := post(tenant.APIKey, body)
		if err != nil {
			t.Fatal(err)
		}
		if st >= 500 || st == http.StatusAccepted {
			t.Fatalf("%d %s for %q", st, b, body)
		}
		var msg struct{ Error string }
		if json.Unmarshal(b, &msg) != nil || msg.Error == "" {
			t.Fatalf("%d without a JSON error: %q", st, b)
		}
	})
}
