package platform_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/aiaas/aiaas/nn/graph"
)

// convGraph is image[N,1,6,6] (and, with two inputs, shift[1,2,1,1]) →
// Conv(W[2,1,3,3], pads 1) (+ shift) → Relu → features[N,2,6,6], and
// Reshape(features, [-1, 72]) → flat[N,72].
func convGraph(t *testing.T, twoInputs bool) (*graph.Graph, map[string]*graph.Tensor, []byte) {
	t.Helper()
	w := graph.NewTensor(graph.Float32, 2, 1, 3, 3)
	for i := range w.Float32s() {
		w.Float32s()[i] = float32(i%5)/5 - 0.3
	}
	g := &graph.Graph{Opset: 13,
		Inputs:  []graph.Value{{Name: "image", DType: graph.Float32, Shape: []int64{-1, 1, 6, 6}, Dims: []string{"N", "", "", ""}}},
		Outputs: []graph.Value{{Name: "features", DType: graph.Float32}, {Name: "flat", DType: graph.Float32}},
		Nodes: []graph.Node{
			{Name: "conv", Op: "Conv", Inputs: []string{"image", "W"}, Outputs: []string{"c"}, Attrs: map[string]graph.Attr{"pads": {Kind: graph.AttrInts, Ints: []int64{1, 1, 1, 1}}}},
			{Name: "relu", Op: "Relu", Inputs: []string{"c"}, Outputs: []string{"features"}},
			{Name: "flatten", Op: "Reshape", Inputs: []string{"features", "shape"}, Outputs: []string{"flat"}},
		},
	}
	if twoInputs {
		g.Inputs = append(g.Inputs, graph.Value{Name: "shift", DType: graph.Float32, Shape: []int64{1, 2, 1, 1}})
		g.Nodes = append(g.Nodes[:1:1], append([]graph.Node{{Name: "add", Op: "Add", Inputs: []string{"c", "shift"}, Outputs: []string{"cs"}}}, g.Nodes[1:]...)...)
		g.Nodes[2].Inputs[0] = "cs"
	}
	ts := map[string]*graph.Tensor{"W": w, "shape": graph.TensorFrom([]int{2}, []int64{-1, 72})}
	var buf bytes.Buffer
	if err := graph.WriteArtifact(&buf, g, ts, graph.Metadata{Provenance: map[string]string{"imported_from": "test"}}); err != nil {
		t.Fatal(err)
	}
	return g, ts, buf.Bytes()
}

func pixels(n int) []float32 {
	x := make([]float32, n*36)
	for i := range x {
		x[i] = float32((i*7)%11) / 11
	}
	return x
}

func TestGraphModelServing(t *testing.T) {
	e := newEnv(t, nil)
	key := e.tenant("acme")
	_, _, art := convGraph(t, true)
	r := e.do("POST", "/v1/models/cnn/versions", key, art, "Content-Type", "application/octet-stream")
	if r.status != 201 {
		t.Fatalf("publish: %d %s", r.status, r.body)
	}
	if s := string(r.body); !strings.Contains(s, `"shape":[-1,1,6,6]`) || !strings.Contains(s, `"name":"flat","datatype":"FP32","shape":[-1,72]`) {
		t.Errorf("publish answer lacks the signature with dynamic dims: %s", s)
	}
	md := e.do("GET", "/v2/models/cnn", key, nil)
	if md.status != 200 || !strings.Contains(string(md.body), `"platform":"aiaas_onnx"`) || !strings.Contains(string(md.body), `"shape":[-1,2,6,6]`) {
		t.Fatalf("metadata: %d %s", md.status, md.body)
	}
	info := e.do("GET", "/v1/models/cnn", key, nil)
	if !strings.Contains(string(info.body), `"architecture":"graph"`) || !strings.Contains(string(info.body), `"Conv":1`) {
		t.Errorf("model info: %s", info.body)
	}

	// Local reference.
	g, ts, _ := convGraph(t, true)
	m, err := graph.Load(g, ts, nil)
	if err != nil {
		t.Fatal(err)
	}
	x := pixels(2)
	shift := []float32{0.25, -0.5}
	want, err := m.Run(context.Background(), []*graph.Tensor{graph.TensorFrom([]int{2, 1, 6, 6}, x), graph.TensorFrom([]int{1, 2, 1, 1}, shift)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := map[string]any{"id": "g1", "inputs": []map[string]any{
		{"name": "shift", "shape": []int{1, 2, 1, 1}, "datatype": "FP32", "data": shift},
		{"name": "image", "shape": []int{2, 1, 6, 6}, "datatype": "FP32", "data": x},
	}}
	inf := e.do("POST", "/v2/models/cnn/infer", key, body)
	if inf.status != 200 {
		t.Fatalf("infer: %d %s", inf.status, inf.body)
	}
	outs := inf.json(t)["outputs"].([]any)
	if len(outs) != 2 {
		t.Fatalf("outputs: %s", inf.body)
	}
	for i, o := range outs {
		om := o.(map[string]any)
		data := om["data"].([]any)
		w := want[i].Float32s()
		if om["name"] != []string{"features", "flat"}[i] || len(data) != len(w) {
			t.Fatalf("output %d: %v", i, om["name"])
		}
		for j := range w {
			if math.Abs(data[j].(float64)-float64(w[j])) > 1e-5 {
				t.Fatalf("output %d element %d: %v, want %v", i, j, data[j], w[j])
			}
		}
	}
	if got := fmt.Sprint(outs[1].(map[string]any)["shape"]); got != "[2 72]" {
		t.Errorf("flat shape %s", got)
	}

	// One output, asked by name; UINT8 pixels for an FP32 input.
	body["outputs"] = []map[string]any{{"name": "flat"}}
	body["inputs"].([]map[string]any)[1] = map[string]any{"name": "image", "shape": []int{1, 1, 6, 6}, "datatype": "UINT8", "data": make([]int, 36)}
	one := e.do("POST", "/v2/models/cnn/infer", key, body)
	if one.status != 200 || strings.Count(string(one.body), `"name"`) != 1 || !strings.Contains(string(one.body), `"name":"flat"`) {
		t.Fatalf("one output: %d %s", one.status, one.body)
	}

	for i, c := range []struct {
		inputs []map[string]any
		want   string
	}{
		{[]map[string]any{{"name": "image", "shape": []int{1, 1, 6, 6}, "datatype": "FP32", "data": pixels(1)}}, `missing input \"shift\"`},
		{[]map[string]any{{"name": "image", "shape": []int{1, 1, 5, 6}, "datatype": "FP32", "data": make([]float32, 30)},
			{"name": "shift", "shape": []int{1, 2, 1, 1}, "datatype": "FP32", "data": shift}}, "the model takes [-1 1 6 6]"},
		{[]map[string]any{{"name": "img", "shape": []int{1}, "datatype": "FP32", "data": []float32{1}}}, `unknown input \"img\"`},
		{[]map[string]any{{"name": "image", "shape": []int{1}, "datatype": "BYTES", "data": []string{"x"}}}, "datatype BYTES"},
	} {
		r := e.do("POST", "/v2/models/cnn/infer", key, map[string]any{"inputs": c.inputs})
		if r.status != 400 || !strings.Contains(string(r.body), c.want) {
			t.Errorf("case %d: %d %s, want 400 mentioning %s", i, r.status, r.body, c.want)
		}
	}

	// An endpoint without plugins serves the graph too.
	if r := e.do("PUT", "/v1/endpoints/cnn", key, map[string]string{"model": "cnn"}); r.status != 201 {
		t.Fatalf("endpoint: %d %s", r.status, r.body)
	}
	delete(body, "outputs")
	if r := e.do("POST", "/v1/endpoints/cnn/invoke", key, body); r.status != 200 || !strings.Contains(string(r.body), `"shape":[1,72]`) {
		t.Fatalf("invoke: %d %s", r.status, r.body)
	}
}

func TestGraphExplainOcclusion(t *testing.T) {
	e := newEnv(t, nil)
	key := e.tenant("acme")
	_, _, art := convGraph(t, false)
	if r := e.do("POST", "/v1/models/cnn/versions", key, art); r.status != 201 {
		t.Fatalf("publish: %d %s", r.status, r.body)
	}
	x := pixels(1)
	r := e.do("POST", "/v1/models/cnn/explain", key, map[string]any{"input": x, "patch": 2})
	if r.status != 200 {
		t.Fatalf("explain: %d %s", r.status, r.body)
	}
	m := r.json(t)
	if m["method"] != "occlusion" || m["patch"].(float64) != 2 || m["evaluations"].(float64) != 10 {
		t.Fatalf("explain: %s", r.body)
	}
	attr := m["attributions"].([]any)
	if len(attr) != 36 {
		t.Fatalf("%d attributions", len(attr))
	}
	// The target is the largest value of features[0]; occluding every
	// patch can only change it through the pixels its 3×3 window sees, so
	// some attribution is non-zero and patches far from it are zero.
	nonzero := 0
	for _, a := range attr {
		if a.(float64) != 0 {
			nonzero++
		}
	}
	if nonzero == 0 || nonzero == 36 {
		t.Errorf("%d of 36 attributions non-zero: %v", nonzero, attr)
	}
	abl := e.do("POST", "/v1/models/cnn/explain", key, map[string]any{"input": x, "method": "feature_ablation", "target": 3})
	if abl.status != 200 || abl.json(t)["method"] != "feature_ablation" || abl.json(t)["evaluations"].(float64) != 37 {
		t.Fatalf("ablation: %d %s", abl.status, abl.body)
	}
	for _, bad := range []map[string]any{
		{"input": x, "method": "integrated_gradients"},
		{"input": x[:10]},
		{"input": x, "patch": 100},
	} {
		if r := e.do("POST", "/v1/models/cnn/explain", key, bad); r.status != 400 {
			t.Errorf("%v: %d %s", bad["method"], r.status, r.body)
		}
	}
}

// TestGraphInt64Exact: INT64 inputs and outputs beyond float32's exact
// range come through unchanged, in JSON and binary.
func TestGraphInt64Exact(t *testing.T) {
	e := newEnv(t, nil)
	key := e.tenant("acme")
	g := &graph.Graph{Opset: 13,
		Inputs:  []graph.Value{{Name: "ids", DType: graph.Int64, Shape: []int64{-1}}},
		Outputs: []graph.Value{{Name: "same", DType: graph.Int64}},
		Nodes:   []graph.Node{{Name: "id", Op: "Identity", Inputs: []string{"ids"}, Outputs: []string{"same"}}},
	}
	var buf bytes.Buffer
	if err := graph.WriteArtifact(&buf, g, nil, graph.Metadata{}); err != nil {
		t.Fatal(err)
	}
	if r := e.do("POST", "/v1/models/ids/versions", key, buf.Bytes()); r.status != 201 {
		t.Fatalf("publish: %d %s", r.status, r.body)
	}
	r := e.do("POST", "/v2/models/ids/infer", key, `{"inputs":[{"name":"ids","shape":[2],"datatype":"INT64","data":[9007199254740993,16777217]}]}`)
	if r.status != 200 || !strings.Contains(string(r.body), `"datatype":"INT64","data":[9007199254740993,16777217]`) {
		t.Fatalf("infer: %d %s", r.status, r.body)
	}
}
