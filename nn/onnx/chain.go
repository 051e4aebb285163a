package onnx

import (
	"math"

	"github.com/aiaas/aiaas/internal/safetensors"
	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/nn/graph"
)

var onnxActs = map[string]string{
	"Relu":    nn.ActReLU,
	"Tanh":    nn.ActTanh,
	"Sigmoid": nn.ActSigmoid,
	"Softmax": nn.ActSoftmax,
}

// dense is one dense layer being assembled from Gemm or MatMul(+Add) and
// its activation.
type dense struct {
	in, out int
	w, b    []float32 // [in*out] row-major [in, out]; [out]
	act     string
	canAdd  bool // the layer is a bare MatMul: an Add may supply its bias
}

// chain recognises a graph that nn's dense engine runs: one chain from
// the graph input to the graph output where every node's data input is
// the previous node's output and its other inputs initializers, made of
// Gemm or MatMul(+Add) layers, each optionally followed by Relu, Tanh,
// Sigmoid or Softmax over the last axis, with Identity, Dropout and a
// Flatten of a flat input dropped. Anything else is ErrUnsupported here
// (and runs on the graph runtime instead).
func chain(g *graph.Graph, inits map[string]*graph.Tensor) (nn.Spec, []safetensors.Tensor, error) {
	if len(g.Inputs) != 1 {
		return nn.Spec{}, nil, unsupported("%d graph inputs (initializers aside), want 1", len(g.Inputs))
	}
	if len(g.Outputs) != 1 {
		return nn.Spec{}, nil, unsupported("%d graph outputs, want 1", len(g.Outputs))
	}
	in, out := g.Inputs[0], g.Outputs[0]
	if in.DType != graph.Float32 {
		return nn.Spec{}, nil, unsupported("input %q: element type %v, want FP32", printable(in.Name), in.DType)
	}
	if out.DType != graph.Float32 {
		return nn.Spec{}, nil, unsupported("output %q: element type %v, want FP32", printable(out.Name), out.DType)
	}
	if len(in.Shape) != 2 || in.Shape[1] < 1 || in.Shape[1] > nn.MaxUnits {
		return nn.Spec{}, nil, unsupported("input %q: shape %v, want [N, D] with 1 ≤ D ≤ %d", printable(in.Name), in.Shape, nn.MaxUnits)
	}
	if in.Shape[0] > 0 {
		// A fixed batch is a graph model: the dense engine takes any.
		return nn.Spec{}, nil, unsupported("input %q: fixed batch %d", printable(in.Name), in.Shape[0])
	}
	width := int(in.Shape[1])

	var layers []*dense
	var last *dense
	lastOp := ""
	cur := in.Name
	for i := range g.Nodes {
		nd := &g.Nodes[i]
		if len(nd.Outputs) < 1 || nd.Outputs[0] == "" {
			return nn.Spec{}, nil, bad("node %d (%s): no output", i, printable(nd.Op))
		}
		if nd.Op != "Dropout" && len(nd.Outputs) != 1 {
			return nn.Spec{}, nil, unsupported("node %d (%s): %d outputs", i, printable(nd.Op), len(nd.Outputs))
		}
		if nd.Op != "Add" && (len(nd.Inputs) == 0 || nd.Inputs[0] != cur) {
			return nn.Spec{}, nil, unsupported("node %d (%s): not a single chain from the input", i, printable(nd.Op))
		}
		switch nd.Op {
		case "Gemm", "MatMul":
			d, err := matmul(i, nd, inits, width)
			if err != nil {
				return nn.Spec{}, nil, err
			}
			if len(layers) >= nn.MaxLayers {
				return nn.Spec{}, nil, unsupported("more than %d dense layers", nn.MaxLayers)
			}
			layers = append(layers, d)
			last, width = d, d.out
		case "Add":
			if last == nil || !last.canAdd || lastOp != "MatMul" {
				return nn.Spec{}, nil, unsupported("node %d: Add not directly after a MatMul", i)
			}
			if len(nd.Inputs) != 2 {
				return nn.Spec{}, nil, bad("node %d: Add with %d inputs", i, len(nd.Inputs))
			}
			other := nd.Inputs[1]
			if nd.Inputs[1] == cur {
				other = nd.Inputs[0]
			} else if nd.Inputs[0] != cur {
				return nn.Spec{}, nil, unsupported("node %d (Add): not a single chain from the input", i)
			}
			b, err := bias(i, other, inits, last.out, 1)
			if err != nil {
				return nn.Spec{}, nil, err
			}
			last.b, last.canAdd = b, false
		case "Relu", "Tanh", "Sigmoid", "Softmax":
			if last == nil || last.act != nn.ActLinear || (lastOp != "Gemm" && lastOp != "MatMul" && lastOp != "Add") {
				return nn.Spec{}, nil, unsupported("node %d: %s not directly after a dense layer", i, nd.Op)
			}
			if nd.Op == "Softmax" {
				axis := int64(1)
				if g.Opset >= 13 {
					axis = -1
				}
				if a, ok := nd.Attrs["axis"]; ok {
					axis = a.I
				}
				if axis != -1 && axis != 1 {
					return nn.Spec{}, nil, unsupported("node %d: Softmax over axis %d, want the last", i, axis)
				}
			}
			last.act, last.canAdd = onnxActs[nd.Op], false
		case "Identity", "Dropout":
			// Pass-through at inference.
			if len(nd.Inputs) > 1 {
				return nn.Spec{}, nil, unsupported("node %d: Dropout with a ratio or training_mode input", i)
			}
		case "Flatten":
			if a, ok := nd.Attrs["axis"]; ok && a.I != 1 && a.I != -1 {
				return nn.Spec{}, nil, unsupported("node %d: Flatten with axis %d of a 2-D input", i, a.I)
			}
		default:
			return nn.Spec{}, nil, unsupported("node %d: operator %s", i, printable(nd.Op))
		}
		lastOp = nd.Op
		cur = nd.Outputs[0]
	}
	if len(layers) == 0 {
		return nn.Spec{}, nil, unsupported("no dense layer")
	}
	if cur != out.Name {
		return nn.Spec{}, nil, unsupported("graph output %q is not the end of the chain %q", printable(out.Name), printable(cur))
	}
	if out.Shape != nil && (len(out.Shape) != 2 || (out.Shape[1] >= 0 && int(out.Shape[1]) != width)) {
		return nn.Spec{}, nil, bad("output %q: shape %v, want [N, %d]", printable(out.Name), out.Shape, width)
	}

	spec := nn.Spec{
		Name:    g.Name,
		Inputs:  []nn.TensorSpec{{Name: in.Name, Datatype: nn.DatatypeFP32, Shape: []int64{-1, in.Shape[1]}}},
		Outputs: []nn.TensorSpec{{Name: out.Name, Datatype: nn.DatatypeFP32, Shape: []int64{-1, int64(width)}}},
	}
	if len(spec.Name) > nn.MaxNameLen {
		spec.Name = spec.Name[:nn.MaxNameLen]
	}
	tensors := make([]safetensors.Tensor, 0, 2*len(layers))
	for i, d := range layers {
		spec.Layers = append(spec.Layers, nn.Layer{Type: nn.LayerDense, Units: d.out, Activation: d.act})
		if d.b == nil {
			d.b = make([]float32, d.out)
		}
		tensors = append(tensors,
			safetensors.F32(nn.WeightName(i), []int{d.in, d.out}, d.w),
			safetensors.F32(nn.BiasName(i), []int{d.out}, d.b))
	}
	return spec, tensors, nil
}

// matmul turns a Gemm or MatMul node into a dense layer reading width
// features. Gemm's alpha and beta are folded into the weights and bias.
func matmul(i int, nd *graph.Node, inits map[string]*graph.Tensor, width int) (*dense, error) {
	gemm := nd.Op == "Gemm"
	if (gemm && (len(nd.Inputs) < 2 || len(nd.Inputs) > 3)) || (!gemm && len(nd.Inputs) != 2) {
		return nil, bad("node %d: %s with %d inputs", i, nd.Op, len(nd.Inputs))
	}
	bt, ok := inits[nd.Inputs[1]]
	if !ok {
		return nil, unsupported("node %d (%s): weight %q is not an initializer", i, nd.Op, printable(nd.Inputs[1]))
	}
	if len(bt.Shape) != 2 || bt.DType != graph.Float32 {
		return nil, unsupported("node %d (%s): weight %q is %v %v, want 2-D FP32", i, nd.Op, printable(nd.Inputs[1]), bt.DType, bt.Shape)
	}
	alpha, beta, transB := float32(1), float32(1), false
	if gemm {
		for name, a := range nd.Attrs {
			switch name {
			case "alpha":
				alpha = float32(a.F)
			case "beta":
				beta = float32(a.F)
			case "transA":
				if a.I != 0 {
					return nil, unsupported("node %d: Gemm with transA", i)
				}
			case "transB":
				transB = a.I != 0
			}
		}
		if !finite(alpha) || !finite(beta) {
			return nil, bad("node %d: Gemm alpha %v beta %v", i, alpha, beta)
		}
	}
	rows, cols := bt.Shape[0], bt.Shape[1]
	if transB {
		rows, cols = cols, rows
	}
	if rows != width {
		return nil, bad("node %d (%s): weight %q is [%d, %d] as used, input width %d", i, nd.Op, printable(nd.Inputs[1]), rows, cols, width)
	}
	if cols < 1 || cols > nn.MaxUnits {
		return nil, unsupported("node %d (%s): %d units, want 1 to %d", i, nd.Op, cols, nn.MaxUnits)
	}
	src := bt.Float32s()
	d := &dense{in: rows, out: cols, act: nn.ActLinear, canAdd: !gemm, w: make([]float32, rows*cols)}
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			j := r*cols + c
			if transB {
				j = c*rows + r
			}
			v := alpha * src[j]
			if !finite(v) {
				return nil, bad("initializer %q: element %d is %v", printable(nd.Inputs[1]), j, v)
			}
			d.w[r*cols+c] = v
		}
	}
	if gemm && len(nd.Inputs) == 3 && nd.Inputs[2] != "" {
		b, err := bias(i, nd.Inputs[2], inits, cols, beta)
		if err != nil {
			return nil, err
		}
		d.b = b
	}
	return d, nil
}

// bias reads a bias initializer of shape [n] or [1, n] (or a scalar
// broadcast, [] or [1]) and scales it by beta.
func bias(i int, name string, inits map[string]*graph.Tensor, n int, beta float32) ([]float32, error) {
	t, ok := inits[name]
	if !ok {
		return nil, unsupported("node %d: bias %q is not an initializer", i, printable(name))
	}
	if t.DType != graph.Float32 {
		return nil, unsupported("node %d: bias %q is %v", i, printable(name), t.DType)
	}
	numel := t.Numel()
	okShape := (numel == n && (len(t.Shape) == 1 || (len(t.Shape) == 2 && t.Shape[0] == 1))) ||
		(numel == 1 && len(t.Shape) <= 1)
	if !okShape {
		return nil, unsupported("node %d: bias %q has dims %v, want [%d]", i, printable(name), t.Shape, n)
	}
	vals := t.Float32s()
	b := make([]float32, n)
	for j := range b {
		src := j
		if numel == 1 {
			src = 0
		}
		v := beta * vals[src]
		if !finite(v) {
			return nil, bad("initializer %q: element %d is %v", printable(name), src, v)
		}
		b[j] = v
	}
	return b, nil
}

func finite(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }
