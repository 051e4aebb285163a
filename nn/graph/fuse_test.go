package graph

import (
	"context"
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
