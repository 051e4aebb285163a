package nnbench

import (
	"testing"
	"time"

	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/nn/graph"
)

func TestMeasure(t *testing.T) {
	spec := nn.Spec{
		Inputs:  []nn.TensorSpec{{Name: "input", Datatype: "FP32", Shape: []int64{-1, 8}}},
		Outputs: []nn.TensorSpec{{Name: "out", Datatype: "FP32", Shape: []int64{-1, 3}}},
		Layers:  []nn.Layer{{Type: "dense", Units: 4, Activation: "relu"}, {Type: "dense", Units: 3, Activation: "softmax"}},
	}
	m, err := nn.New(spec, 1)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Measure(m, []int{1, 16}, &Options{Budget: 5 * time.Millisecond, MinCalls: 30})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Batch != 1 || res[1].Batch != 16 {
		t.Fatalf("got %+v", res)
	}
	for i, r := range res {
		if r.Calls < 30 || r.MedianNS <= 0 || r.P99NS < r.MedianNS || r.RowsPerSecond <= 0 {
			t.Errorf("case %d: implausible %+v", i, r)
		}
	}
	for i, bad := range [][]int{nil, {0}, {MaxBatch + 1}} {
		if _, err := Measure(m, bad, nil); err == nil {
			t.Errorf("case %d: batches %v accepted", i, bad)
		}
	}
}

func TestSummarize(t *testing.T) {
	times := make([]int64, 100)
	for i := range times {
		times[i] = int64(100 - i) // unsorted on purpose
	}
	r := summarize(4, times)
	if r.MedianNS != 51 || r.P99NS != 100 || r.MeanNS != 50 || r.Calls != 100 {
		t.Fatalf("got %+v", r)
	}
}

func TestMeasureGraph(t *testing.T) {
	g := &graph.Graph{Opset: 13,
		Inputs:  []graph.Value{{Name: "x", DType: graph.Float32, Shape: []int64{-1, 4}}},
		Outputs: []graph.Value{{Name: "y", DType: graph.Float32}},
		Nodes:   []graph.Node{{Name: "r", Op: "Relu", Inputs: []string{"x"}, Outputs: []string{"y"}}},
	}
	m, err := graph.Load(g, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := MeasureGraph(m, [][]int{{1, 4}}, []int{1, 3}, &Options{Budget: time.Millisecond, MinCalls: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Batch != 1 || res[1].Batch != 3 || res[1].Calls < 10 {
		t.Fatalf("got %+v", res)
	}
	if _, err := MeasureGraph(m, [][]int{{1, 5}}, nil, nil); err == nil {
		t.Error("a shape the model does not take was accepted")
	}
	if _, err := MeasureGraph(m, nil, nil, nil); err == nil {
		t.Error("missing shapes accepted")
	}
}
