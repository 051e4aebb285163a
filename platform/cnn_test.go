package platform_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aiaas/aiaas/nn"
)

// barsCSV is a dataset of n 6×6 grey images, flattened: a bar of four
// pixels, horizontal (label 0) or vertical (label 1), somewhere.
func barsCSV(n int) string {
	var b strings.Builder
	for i := range n {
		img := make([]float32, 36)
		p, q := (i*7)%6, (i*5)%3
		label := i % 2
		for k := range 4 {
			if label == 0 {
				img[p*6+q+k] = 1
			} else {
				img[(q+k)*6+p] = 1
			}
		}
		for _, v := range img {
			fmt.Fprintf(&b, "%g,", v)
		}
		fmt.Fprintf(&b, "%d\n", label)
	}
	return b.String()
}

// TestTrainConvJobAndServe trains a convolutional network through POST
// /v1/training-jobs ("network" with conv2d, batch normalisation, pooling)
// and serves it over OIP with the image shape, a lone image and the flat
// form; structural mistakes are refused when the job is submitted.
func TestTrainConvJobAndServe(t *testing.T) {
	e := newEnv(t, nil)
	key := e.tenant("acme")
	if r := e.do("PUT", "/v1/datasets/bars", key, barsCSV(200), "Content-Type", "text/csv"); r.status != 201 {
		t.Fatalf("dataset: %d %s", r.status, r.body)
	}
	network := func(last int) map[string]any {
		return map[string]any{
			"input_shape": []int{1, 6, 6},
			"layers": []map[string]any{
				{"type": "conv2d", "filters": 4, "kernel_size": []int{3}, "padding": "same", "activation": "relu"},
				{"type": "batchnorm"},
				{"type": "maxpool2d", "pool_size": []int{2}},
				{"type": "flatten"},
				{"type": "dense", "units": last, "activation": "softmax"},
			},
		}
	}
	for _, tc := range []struct {
		job  map[string]any
		want string
	}{
		{map[string]any{"model": "bars", "dataset": "bars", "network": map[string]any{"input_shape": []int{1, 6, 6},
			"layers": []map[string]any{{"type": "conv2d", "filters": 2, "kernel_size": []int{3}}, {"type": "dense", "units": 2}}}}, "flatten"},
		{map[string]any{"model": "bars", "dataset": "bars", "network": map[string]any{"input_shape": []int{1, 6, 6},
			"layers": []map[string]any{{"type": "conv2d", "filters": 2, "kernel_size": []int{9}}, {"type": "flatten"}, {"type": "dense", "units": 2}}}}, "larger than the input"},
		{map[string]any{"model": "bars", "dataset": "bars", "network": network(2), "layers": []int{8}}, "not both"},
		{map[string]any{"model": "bars", "dataset": "bars", "network": network(2), "weight_decay": 2}, "weight_decay"},
	} {
		r := e.do("POST", "/v1/training-jobs", key, tc.job)
		if r.status != 400 || !strings.Contains(string(r.body), tc.want) {
			t.Errorf("job %v: %d %s, want 400 naming %q", tc.job["network"], r.status, r.body, tc.want)
		}
	}
	// Three classes asked of a two-class dataset: the job fails and says why.
	if job := runJob(t, e, key, map[string]any{"model": "bars3", "dataset": "bars", "network": network(3), "epochs": 1}); job["status"] != "failed" ||
		!strings.Contains(fmt.Sprint(job["error"]), "one per class") {
		t.Errorf("3-unit output on 2 classes: %v", job)
	}
	job := runJob(t, e, key, map[string]any{"model": "bars", "dataset": "bars", "network": network(2), "epochs": 25, "seed": 2,
		"batch_size": 16, "learning_rate": 0.01, "lr_schedule": map[string]any{"kind": "cosine"}})
	if job["status"] != "succeeded" {
		t.Fatalf("job: %v", job)
	}
	if acc := job["result"].(map[string]any)["test_accuracy"].(float64); acc < 0.9 {
		t.Errorf("test accuracy %v", acc)
	}
	md := e.do("GET", "/v2/models/bars", key, nil)
	if !strings.Contains(string(md.body), `"shape":[-1,1,6,6]`) {
		t.Errorf("metadata: %s", md.body)
	}
	img := make([]float32, 36)
	for k := range 4 {
		img[2*6+1+k] = 1 // horizontal
	}
	var answers [][]byte
	for _, shape := range [][]int{{1, 1, 6, 6}, {1, 6, 6}, {1, 36}} {
		body := map[string]any{"inputs": []map[string]any{{"name": "input", "shape": shape, "datatype": "FP32", "data": img}}}
		r := e.do("POST", "/v2/models/bars/infer", key, body)
		if r.status != 200 {
			t.Fatalf("infer %v: %d %s", shape, r.status, r.body)
		}
		out := r.json(t)["outputs"].([]any)[0].(map[string]any)
		if fmt.Sprint(out["shape"]) != "[1 2]" {
			t.Errorf("output shape %v", out["shape"])
		}
		if d := out["data"].([]any); d[0].(float64) < 0.5 {
			t.Errorf("a horizontal bar classified %v", d)
		}
		b, _ := json.Marshal(out["data"])
		answers = append(answers, b)
	}
	if !bytes.Equal(answers[0], answers[1]) || !bytes.Equal(answers[0], answers[2]) {
		t.Errorf("the three input forms answer differently: %s", answers)
	}
	body := map[string]any{"inputs": []map[string]any{{"name": "input", "shape": []int{1, 1, 4, 9}, "datatype": "FP32", "data": img}}}
	if r := e.do("POST", "/v2/models/bars/infer", key, body); r.status != 400 || !strings.Contains(string(r.body), "[-1 1 6 6]") {
		t.Errorf("wrong image shape: %d %s", r.status, r.body)
	}
}

// runJob submits a training job and waits for it to end.
func runJob(t *testing.T, e *env, key string, job map[string]any) map[string]any {
	t.Helper()
	r := e.do("POST", "/v1/training-jobs", key, job)
	if r.status != 202 {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}
	id := r.json(t)["id"].(string)
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		got := e.do("GET", "/v1/training-jobs/"+id, key, nil).json(t)
		if s := got["status"]; s == "succeeded" || s == "failed" || s == "canceled" {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("job %s did not finish", id)
	return nil
}

// TestEndpointCNNWithPlugins serves a convolutional model ([-1, 1, 28, 28])
// through an endpoint with the example png-to-tensor and top-k plugins:
// the plugin's default flat tensor and its layout=nchw tensor give the
// same answer, and explain works on the CNN.
func TestEndpointCNNWithPlugins(t *testing.T) {
	e := newEnvWithPlugins(t)
	key := e.tenant("acme")
	spec := nn.Spec{
		Inputs:  []nn.TensorSpec{{Name: "input", Datatype: "FP32", Shape: []int64{-1, 1, 28, 28}}},
		Outputs: []nn.TensorSpec{{Name: "probabilities", Datatype: "FP32", Shape: []int64{-1, 10}}},
		Layers: []nn.Layer{
			{Type: nn.LayerConv2D, Filters: 4, KernelSize: nn.Size{3}, Activation: nn.ActReLU},
			{Type: nn.LayerMaxPool2D},
			{Type: nn.LayerBatchNorm},
			{Type: nn.LayerFlatten},
			{Type: nn.LayerDense, Units: 10, Activation: nn.ActSoftmax},
		},
	}
	if r := e.do("POST", "/v1/models/cnn/versions", key, artifactOf(t, spec, 1)); r.status != 201 {
		t.Fatalf("publish: %d %s", r.status, r.body)
	}
	wasm := examplePlugins(t)
	for _, name := range []string{"png-to-tensor", "top-k"} {
		if r := e.do("PUT", "/v1/plugins/"+name, key, wasm[name], "Content-Type", "application/wasm"); r.status != 201 {
			t.Fatalf("upload %s: %d %s", name, r.status, r.body)
		}
	}
	if r := e.do("PUT", "/v1/endpoints/cnn", key, map[string]string{"model": "cnn", "preprocess": "png-to-tensor", "postprocess": "top-k"}); r.status != 201 {
		t.Fatalf("endpoint: %d %s", r.status, r.body)
	}
	var answers []string
	for _, ct := range []string{"image/png", "image/png; layout=nchw"} {
		r := e.do("POST", "/v1/endpoints/cnn/invoke?k=3", key, digitPNG(t), "Content-Type", ct)
		if r.status != 200 || !strings.Contains(string(r.body), `"predictions"`) {
			t.Fatalf("invoke (%s): %d %s", ct, r.status, r.body)
		}
		answers = append(answers, string(r.body))
	}
	if answers[0] != answers[1] {
		t.Errorf("flat and NCHW tensors answer differently:\n%s\n%s", answers[0], answers[1])
	}
	if r := e.do("POST", "/v1/endpoints/cnn/invoke", key, digitPNG(t), "Content-Type", "image/png; layout=nhwc"); r.status != 422 {
		t.Errorf("layout=nhwc: %d %s", r.status, r.body)
	}
	input := make([]float32, 784)
	for i := 200; i < 600; i += 28 {
		input[i] = 1
	}
	r := e.do("POST", "/v1/models/cnn/explain", key, map[string]any{"input": input, "method": "integrated_gradients", "steps": 8})
	if r.status != 200 || len(r.json(t)["attributions"].([]any)) != 784 {
		t.Errorf("explain on the CNN: %d %.300s", r.status, r.body)
	}
}
