package graph

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// tryLoadOp builds and loads a one-node graph: each input becomes a graph
// input, or an initializer when consts (which may be nil) marks it; nil
// inputs are absent; outTypes gives the type of each output.
func tryLoadOp(opset int, op string, attrs map[string]Attr, ins []*Tensor, consts []bool, outTypes ...DType) (*Model, []*Tensor, error) {
	g := &Graph{Opset: opset}
	tensors := map[string]*Tensor{}
	n := Node{Name: "n", Op: op, Attrs: attrs}
	var feed []*Tensor
	for i, x := range ins {
		name := fmt.Sprint("in", i)
		if x == nil {
			n.Inputs = append(n.Inputs, "")
			continue
		}
		n.Inputs = append(n.Inputs, name)
		if consts != nil && consts[i] {
			tensors[name] = x
			continue
		}
		shape := make([]int64, len(x.Shape))
		for j, d := range x.Shape {
			shape[j] = int64(d)
		}
		g.Inputs = append(g.Inputs, Value{Name: name, DType: x.DType, Shape: shape})
		feed = append(feed, x)
	}
	for i, dt := range outTypes {
		name := fmt.Sprint("out", i)
		n.Outputs = append(n.Outputs, name)
		g.Outputs = append(g.Outputs, Value{Name: name, DType: dt})
	}
	g.Nodes = []Node{n}
	m, err := Load(g, tensors, nil)
	return m, feed, err
}

// loadOp is tryLoadOp failing the test on an error.
func loadOp(t testing.TB, opset int, op string, attrs map[string]Attr, ins []*Tensor, consts []bool, outTypes ...DType) (*Model, []*Tensor) {
	t.Helper()
	m, feed, err := tryLoadOp(opset, op, attrs, ins, consts, outTypes...)
	if err != nil {
		t.Fatalf("%s: load: %v", op, err)
	}
	return m, feed
}

// nodeGraph is loadOp with nOut FP32 outputs.
func nodeGraph(t testing.TB, opset int, op string, attrs map[string]Attr, ins []*Tensor, consts []bool, nOut int) (*Model, []*Tensor) {
	t.Helper()
	return loadOp(t, opset, op, attrs, ins, consts, repeat(Float32, nOut)...)
}

func repeat(dt DType, n int) []DType {
	out := make([]DType, n)
	for i := range out {
		out[i] = dt
	}
	return out
}

func run1(t testing.TB, m *Model, feed []*Tensor) []*Tensor {
	t.Helper()
	out, err := m.Run(context.Background(), feed, nil)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return out
}

func randTensor(r *rand.Rand, shape ...int) *Tensor {
	t := NewTensor(Float32, shape...)
	for i := range t.Float32s() {
		t.Float32s()[i] = float32(r.NormFloat64())
	}
	return t
}

func ints(v ...int64) Attr     { return Attr{Kind: AttrInts, Ints: v} }
func intAttr(v int64) Attr     { return Attr{Kind: AttrInt, I: v} }
func floatAttr(v float32) Attr { return Attr{Kind: AttrFloat, F: Float(v)} }
func stringAttr(s string) Attr { return Attr{Kind: AttrString, S: s} }

func maxRelDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		den := math.Max(1, math.Abs(float64(b[i])))
		d = math.Max(d, math.Abs(float64(a[i]-b[i]))/den)
	}
	return d
}
