package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aiaas/aiaas/nn/graph"
)

// writeGraph writes a small graph artifact: x[N,2,8,8] → Conv → Relu.
func writeGraph(t *testing.T, dir string) string {
	t.Helper()
	w := graph.NewTensor(graph.Float32, 4, 2, 3, 3)
	for i := range w.Float32s() {
		w.Float32s()[i] = float32(i%3) - 1
	}
	g := &graph.Graph{Opset: 13,
		Inputs:  []graph.Value{{Name: "x", DType: graph.Float32, Shape: []int64{-1, 2, 8, 8}}},
		Outputs: []graph.Value{{Name: "y", DType: graph.Float32}},
		Nodes: []graph.Node{
			{Name: "c", Op: "Conv", Inputs: []string{"x", "w"}, Outputs: []string{"h"}},
			{Name: "r", Op: "Relu", Inputs: []string{"h"}, Outputs: []string{"y"}},
		},
	}
	var buf bytes.Buffer
	if err := graph.WriteArtifact(&buf, g, map[string]*graph.Tensor{"w": w}, graph.Metadata{}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "g.safetensors")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestModelBenchGraph(t *testing.T) {
	path := writeGraph(t, t.TempDir())
	env := func(string) string { return "" }
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"model", "bench", path, "--shape", "1,2,8,8", "--batch", "1,3", "--duration", "5ms", "--output", "json"}, &out, &errOut, env)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var res struct {
		Batches []struct {
			Batch    int   `json:"batch"`
			MedianNS int64 `json:"median_ns"`
		} `json:"batches"`
		Shapes [][]int `json:"shapes"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if len(res.Batches) != 2 || res.Batches[1].Batch != 3 || res.Batches[0].MedianNS <= 0 {
		t.Fatalf("got %s", out.String())
	}
	// Static dims need no --shape; a dynamic batch defaults to 1.
	out.Reset()
	if code := run(context.Background(), []string{"model", "bench", path, "--duration", "5ms", "--output", "json"}, &out, &errOut, env); code != 0 {
		t.Fatalf("without --shape: exit %d: %s", code, errOut.String())
	}
	for i, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--shape", "1,3,8,8"}, exitInvalid, "the model takes"},
		{[]string{"--shape", "x=1,2"}, exitInvalid, "the model takes"},
		{[]string{"--shape", "z=1,2,8,8"}, exitUsage, `no input "z"`},
		{[]string{"--shape", "1,a"}, exitUsage, "dimensions"},
	} {
		errOut.Reset()
		args := append([]string{"model", "bench", path, "--duration", "1ms"}, c.args...)
		if code := run(context.Background(), args, &out, &errOut, env); code != c.code || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("case %d: exit %d, %q; want %d mentioning %q", i, code, errOut.String(), c.code, c.want)
		}
	}
}

func TestModelBenchProfile(t *testing.T) {
	path := writeGraph(t, t.TempDir())
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"model", "bench", path, "--duration", "2ms", "--profile", "--output", "json"}, &out, &errOut, func(string) string { return "" })
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var res struct {
		Profile []struct {
			Op    string  `json:"op"`
			Nodes int     `json:"nodes"`
			Share float64 `json:"share"`
		} `json:"profile"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Profile) != 1 || res.Profile[0].Op != "aiaas.Conv" || res.Profile[0].Nodes != 1 || res.Profile[0].Share != 1 {
		t.Errorf("profile %+v: want the one fused convolution", res.Profile)
	}
}
