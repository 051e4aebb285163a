package graph

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
)

// nodeGraph builds a one-node graph: inputs become graph inputs unless a
// constant is given for them (then they are initializers).
func nodeGraph(t testing.TB, opset int, op string, attrs map[string]Attr, ins []*Tensor, consts []bool, nOut int) (*Model, []*Tensor) {
	t.Helper()
	g := &Graph{Opset: opset}
	tensors := map[string]*Tensor{}
	n := Node{Name: "n", Op: op, Attrs: attrs}
	var feed []*Tensor
	for i, x := range ins {
		name := "in" + string(rune('0'+i))
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
	for i := 0; i < nOut; i++ {
		name := "out" + string(rune('0'+i))
		n.Outputs = append(n.Outputs, name)
		g.Outputs = append(g.Outputs, Value{Name: name, DType: Float32})
	}
	g.Nodes = []Node{n}
	// Output types are whatever the node computes.
	for i := range g.Outputs {
		g.Outputs[i].DType = Undefined
	}
	m, err := loadLoose(g, tensors)
	if err != nil {
		t.Fatalf("%s: load: %v", op, err)
	}
	return m, feed
}

// loadLoose is Load for test graphs whose outputs have no declared type.
func loadLoose(g *Graph, tensors map[string]*Tensor) (*Model, error) {
	for i := range g.Outputs {
		if g.Outputs[i].DType == Undefined {
			g.Outputs[i].DType = Float32
		}
	}
	return Load(g, tensors, nil)
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
