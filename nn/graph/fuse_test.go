package graph

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
)

// resBlock is x → Conv → Relu → Conv → Add(·, x) → Relu, the ResNet basic
// block without batch norm, plus a second output that reads the first
// Relu (so that one fusion must not happen).
func resBlock(r *rand.Rand, c int, shareMid bool) (*Graph, map[string]*Tensor) {
	g := &Graph{Opset: 13,
		Inputs: []Value{{Name: "x", DType: Float32, Shape: []int64{-1, int64(c), 8, 8}}},
		Nodes: []Node{
			{Name: "c1", Op: "Conv", Inputs: []string{"x", "w1", "b1"}, Outputs: []string{"y1"}, Attrs: map[string]Attr{"pads": ints(1, 1, 1, 1)}},
			{Name: "r1", Op: "Relu", Inputs: []string{"y1"}, Outputs: []string{"a1"}},
			{Name: "c2", Op: "Conv", Inputs: []string{"a1", "w2"}, Outputs: []string{"y2"}, Attrs: map[string]Attr{"pads": ints(1, 1, 1, 1)}},
			{Name: "add", Op: "Add", Inputs: []string{"y2", "x"}, Outputs: []string{"s"}},
			{Name: "r2", Op: "Relu", Inputs: []string{"s"}, Outputs: []string{"out"}},
		},
		Outputs: []Value{{Name: "out", DType: Float32}},
	}
	if shareMid {
		g.Outputs = append(g.Outputs, Value{Name: "y1", DType: Float32})
	}
	return g, map[string]*Tensor{"w1": randTensor(r, c, c, 3, 3), "b1": randTensor(r, c), "w2": randTensor(r, c, c, 3, 3)}
}

func TestFusionsKeepResults(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, share := range []bool{false, true} {
		g, ts := resBlock(r, 8, share)
		fused, err := Load(g, ts, nil)
		if err != nil {
			t.Fatal(err)
		}
		g2, _ := resBlock(r, 8, share)
		plain, err := Load(g2, ts, &Options{NoFuse: true})
		if err != nil {
			t.Fatal(err)
		}
		ops := map[string]int{}
		for _, n := range fused.nodes {
			ops[n.Op]++
		}
		if share {
			// y1 is an output: c1 may not absorb r1.
			if ops["Relu"] != 1 || ops[opFusedConv] != 1 || ops["Conv"] != 1 {
				t.Errorf("fused ops %v, want Conv, Relu and one aiaas.Conv", ops)
			}
		} else if ops[opFusedConv] != 2 || len(fused.nodes) != 2 {
			t.Errorf("fused ops %v, want two aiaas.Conv", ops)
		}
		x := randTensor(r, 2, 8, 8, 8)
		a, err := fused.Run(context.Background(), []*Tensor{x}, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := plain.Run(context.Background(), []*Tensor{x}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range a {
			if d := maxRelDiff(a[i].Float32s(), b[i].Float32s()); d > 1e-5 {
				t.Errorf("share=%v output %d: fused and plain differ by %g", share, i, d)
			}
		}
	}
}

// TestRunAllocatesNothing: after the first run with a shape, a run with
// the caller's output tensors allocates nothing.
func TestRunAllocatesNothing(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	g, ts := resBlock(r, 16, false)
	m, err := Load(g, ts, nil)
	if err != nil {
		t.Fatal(err)
	}
	x := []*Tensor{randTensor(r, 1, 16, 8, 8)}
	out, err := m.Run(context.Background(), x, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if n := testing.AllocsPerRun(50, func() {
		if _, err := m.Run(ctx, x, out); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocations per run, want 0", n)
	}
}

// TestFusionPatterns: BatchNormalization folded into the Conv, then each
// activation pattern exporters write fused as the conv's epilogue; the
// fused model must agree with the unfused one and have one node.
func TestFusionPatterns(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	const c = 6
	bn := func() map[string]*Tensor {
		ts := map[string]*Tensor{"w": randTensor(r, c, c, 3, 3), "gamma": randTensor(r, c), "beta": randTensor(r, c), "mean": randTensor(r, c), "var": randTensor(r, c)}
		for i, v := range ts["var"].Float32s() {
			ts["var"].Float32s()[i] = v*v + 0.1
		}
		ts["lo"] = TensorFrom([]int{}, []float32{0})
		ts["hi"] = TensorFrom([]int{}, []float32{6})
		return ts
	}
	conv := Node{Name: "c", Op: "Conv", Inputs: []string{"x", "w"}, Outputs: []string{"y"}, Attrs: map[string]Attr{"pads": ints(1, 1, 1, 1)}}
	bnNode := Node{Name: "bn", Op: "BatchNormalization", Inputs: []string{"y", "gamma", "beta", "mean", "var"}, Outputs: []string{"z"}, Attrs: map[string]Attr{"epsilon": floatAttr(1e-3)}}
	cases := []struct {
		name  string
		opset int
		tail  []Node
	}{
		{"relu", 13, []Node{{Name: "a", Op: "Relu", Inputs: []string{"z"}, Outputs: []string{"out"}}}},
		{"clip-inputs", 13, []Node{{Name: "a", Op: "Clip", Inputs: []string{"z", "lo", "hi"}, Outputs: []string{"out"}}}},
		{"clip-attrs", 9, []Node{{Name: "a", Op: "Clip", Inputs: []string{"z"}, Outputs: []string{"out"}, Attrs: map[string]Attr{"min": floatAttr(0), "max": floatAttr(6)}}}},
		{"leaky", 13, []Node{{Name: "a", Op: "LeakyRelu", Inputs: []string{"z"}, Outputs: []string{"out"}, Attrs: map[string]Attr{"alpha": floatAttr(0.1)}}}},
		{"hardswish", 14, []Node{{Name: "a", Op: "HardSwish", Inputs: []string{"z"}, Outputs: []string{"out"}}}},
		{"hardsigmoid-mul", 13, []Node{
			{Name: "hs", Op: "HardSigmoid", Inputs: []string{"z"}, Outputs: []string{"h"}, Attrs: map[string]Attr{"alpha": floatAttr(1.0 / 6), "beta": floatAttr(0.5)}},
			{Name: "m", Op: "Mul", Inputs: []string{"z", "h"}, Outputs: []string{"out"}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mk := func() *Graph {
				nodes := append([]Node{conv, bnNode}, tc.tail...)
				return &Graph{Opset: tc.opset, Nodes: nodes,
					Inputs:  []Value{{Name: "x", DType: Float32, Shape: []int64{-1, c, 7, 7}}},
					Outputs: []Value{{Name: "out", DType: Float32}}}
			}
			ts := bn()
			fused, err := Load(mk(), ts, nil)
			if err != nil {
				t.Fatal(err)
			}
			plain, err := Load(mk(), ts, &Options{NoFuse: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(fused.nodes) != 1 || fused.nodes[0].Op != opFusedConv {
				ops := []string{}
				for _, n := range fused.nodes {
					ops = append(ops, n.Op)
				}
				t.Errorf("fused graph has %v, want one aiaas.Conv", ops)
			}
			x := randTensor(r, 2, c, 7, 7)
			a, err := fused.Run(context.Background(), []*Tensor{x}, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := plain.Run(context.Background(), []*Tensor{x}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if d := maxRelDiff(a[0].Float32s(), b[0].Float32s()); d > 1e-4 {
				t.Errorf("fused and plain differ by %g", d)
			}
		})
	}
}

// TestDynamicSpatialDims: a fully convolutional graph with dynamic N, H
// and W runs at any size, one plan per shape, within MaxPlans.
func TestDynamicSpatialDims(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	g, ts := resBlock(r, 4, false)
	g.Inputs[0].Shape = []int64{-1, 4, -1, -1}
	g.Inputs[0].Dims = []string{"N", "", "H", "W"}
	m, err := Load(g, ts, &Options{MaxPlans: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Outputs()[0].Shape; len(got) != 4 || got[0] != -1 || got[1] != 4 || got[2] != -1 || got[3] != -1 {
		t.Errorf("output shape %v, want [-1 4 -1 -1]", got)
	}
	for _, hw := range [][3]int{{1, 8, 8}, {2, 12, 10}, {1, 3, 17}, {1, 8, 8}} {
		x := randTensor(r, hw[0], 4, hw[1], hw[2])
		got, err := m.Run(context.Background(), []*Tensor{x}, nil)
		if err != nil {
			t.Fatalf("%v: %v", hw, err)
		}
		g2, _ := resBlock(r, 4, false)
		g2.Inputs[0].Shape = []int64{int64(hw[0]), 4, int64(hw[1]), int64(hw[2])}
		ref, err := Load(g2, ts, &Options{NoFuse: true})
		if err != nil {
			t.Fatal(err)
		}
		want, err := ref.Run(context.Background(), []*Tensor{x}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got[0].Shape) != fmt.Sprint(want[0].Shape) {
			t.Fatalf("%v: shape %v, want %v", hw, got[0].Shape, want[0].Shape)
		}
		if d := maxRelDiff(got[0].Float32s(), want[0].Float32s()); d > 1e-5 {
			t.Errorf("%v: differs by %g", hw, d)
		}
	}
	m.mu.RLock()
	n := len(m.plans)
	m.mu.RUnlock()
	if n > 2 {
		t.Errorf("%d plans cached, MaxPlans 2", n)
	}
}
