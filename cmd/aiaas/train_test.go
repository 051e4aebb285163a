package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aiaas/aiaas/nn/graph"
	"github.com/aiaas/aiaas/nn/onnx"
)

// TestTrainSpecAndExport trains a small CNN with --spec (flags overriding
// the file), exports it with 'model export', and runs the ONNX file in the
// graph runtime.
func TestTrainSpecAndExport(t *testing.T) {
	dir := t.TempDir()
	// 4×4 grey images: the bright pixel in the top half (0) or the bottom (1).
	var csv strings.Builder
	for i := range 120 {
		img := make([]int, 16)
		img[(i*3)%8+8*(i%2)] = 1
		for _, v := range img {
			fmt.Fprintf(&csv, "%d,", v)
		}
		fmt.Fprintf(&csv, "%d\n", i%2)
	}
	data := filepath.Join(dir, "halves.csv")
	os.WriteFile(data, []byte(csv.String()), 0o644)
	spec := filepath.Join(dir, "cnn.json")
	os.WriteFile(spec, []byte(`{
	  "network": {"input_shape": [1, 4, 4], "layers": [
	    {"type": "conv2d", "filters": 4, "kernel_size": 3, "padding": "same", "activation": "relu"},
	    {"type": "avgpool2d", "pool_size": [2, 1]},
	    {"type": "flatten"},
	    {"type": "dense", "units": 2, "activation": "softmax"}]},
	  "learning_rate": 0.02, "batch_size": 8, "epochs": 1, "lr_schedule": {"kind": "step", "step_epochs": 10, "gamma": 0.5}
	}`), 0o644)
	art := filepath.Join(dir, "cnn.safetensors")
	env := func(string) string { return "" }
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"train", "--dataset", data, "--spec", spec, "--epochs", "30", "--seed", "2", "--augment-flip",
		"--out", art, "--output", "json"}, &out, &errOut, env)
	if code != 0 {
		t.Fatalf("train: exit %d: %s", code, errOut.String())
	}
	var res struct {
		TestAccuracy float64           `json:"test_accuracy"`
		Epochs       []json.RawMessage `json:"epochs"`
		Params       int               `json:"params"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Epochs) != 30 { // --epochs overrides the file's 1
		t.Errorf("%d epochs, want 30 (the flag)", len(res.Epochs))
	}
	if res.Params != (4*9+4)+(4*2*4*2+2) || res.TestAccuracy < 0.9 {
		t.Errorf("params %d, test accuracy %v", res.Params, res.TestAccuracy)
	}

	out.Reset()
	onnxPath := filepath.Join(dir, "cnn.onnx")
	if code := run(context.Background(), []string{"model", "export", art, "--out", onnxPath}, &out, &errOut, env); code != 0 {
		t.Fatalf("export: exit %d: %s", code, errOut.String())
	}
	b, err := os.ReadFile(onnxPath)
	if err != nil {
		t.Fatal(err)
	}
	ga, err := onnx.Convert(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := graph.ReadArtifact(ga, nil); err != nil {
		t.Fatalf("the export does not load as a graph: %v", err)
	}

	for i, c := range []struct {
		args []string
		want string
	}{
		{[]string{"train", "--dataset", data, "--spec", filepath.Join(dir, "missing.json")}, "--spec"},
		{[]string{"train", "--dataset", data, "--spec", data}, "--spec"},
		{[]string{"model", "export", data}, "invalid artifact"},
	} {
		errOut.Reset()
		if code := run(context.Background(), c.args, &out, &errOut, env); code == 0 || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("case %d: exit %d, %q; want an error mentioning %q", i, code, errOut.String(), c.want)
		}
	}
	// A network the dataset cannot feed is refused with the reason.
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"network": {"input_shape": [1, 5, 5], "layers": [{"type": "flatten"}, {"type": "dense", "units": 2}]}}`), 0o644)
	errOut.Reset()
	if code := run(context.Background(), []string{"train", "--dataset", data, "--spec", bad}, &out, &errOut, env); code != exitInvalid ||
		!strings.Contains(errOut.String(), "16 features") {
		t.Errorf("mismatched input_shape: exit %d, %q", code, errOut.String())
	}
}
