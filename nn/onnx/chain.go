package onnx

import (
	"math"

	"github.com/aiaas/aiaas/internal/safetensors"
	"github.com/aiaas/aiaas/nn"
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

// chain walks the nodes, which ONNX requires in topological order, as one
// chain from the graph input to the graph output: every node's data input
// must be the previous node's output, and all its other inputs initializers.
// That rules out branches without building a graph.
func (g *graph) chain(l *Limits) (nn.Spec, []safetensors.Tensor, error) {
	var in valueInfo
	n := 0
	for _, v := range g.inputs {
		if _, isInit := g.inits[v.name]; isInit {
			continue // IR < 4 lists initializers among the inputs too
		}
		in = v
		n++
	}
	if n != 1 {
		return nn.Spec{}, nil, unsupported("%d graph inputs (initializers aside), want 1", n)
	}
	if len(g.outputs) != 1 {
		return nn.Spec{}, nil, unsupported("%d graph outputs, want 1", len(g.outputs))
	}
	out := g.outputs[0]
	if in.elemType != dataTypeFloat {
		return nn.Spec{}, nil, unsupported("input %q: element type %d, want FLOAT (1)", printable(in.name), in.elemType)
	}
	if out.elemType != 0 && out.elemType != dataTypeFloat {
		return nn.Spec{}, nil, unsupported("output %q: element type %d, want FLOAT (1)", printable(out.name), out.elemType)
	}
	if !in.hasShape || len(in.dims) != 2 || in.dims[1] < 1 || in.dims[1] > nn.MaxUnits {
		return nn.Spec{}, nil, unsupported("input %q: shape %v, want [N, D] with 1 ≤ D ≤ %d", printable(in.name), in.dims, nn.MaxUnits)
	}
	width := int(in.dims[1])

	var layers []*dense
	var last *dense
	cur := in.name
	for i := range g.nodes {
		nd := &g.nodes[i]
		if nd.domain != "" && nd.domain != "ai.onnx" {
			return nn.Spec{}, nil, unsupported("node %d: operator %s of domain %s", i, printable(nd.op), printable(nd.domain))
		}
		if len(nd.out) < 1 || nd.out[0] == "" {
			return nn.Spec{}, nil, bad("node %d (%s): no output", i, printable(nd.op))
		}
		if nd.op != "Dropout" && len(nd.out) != 1 {
			return nn.Spec{}, nil, unsupported("node %d (%s): %d outputs", i, printable(nd.op), len(nd.out))
		}
		if nd.op != "Add" && (len(nd.in) == 0 || nd.in[0] != cur) {
			return nn.Spec{}, nil, unsupported("node %d (%s): not a single chain from the input (reads %v, previous output %q)", i, printable(nd.op), printableAll(nd.in), printable(cur))
		}
		switch nd.op {
		case "Gemm", "MatMul":
			d, err := g.matmul(i, nd, width)
			if err != nil {
				return nn.Spec{}, nil, err
			}
			if len(layers) >= nn.MaxLayers {
				return nn.Spec{}, nil, unsupported("more than %d dense layers", nn.MaxLayers)
			}
			layers = append(layers, d)
			last, width = d, d.out
		case "Add":
			if last == nil || !last.canAdd {
				return nn.Spec{}, nil, unsupported("node %d: Add not directly after a MatMul", i)
			}
			if len(nd.in) != 2 {
				return nn.Spec{}, nil, bad("node %d: Add with %d inputs", i, len(nd.in))
			}
			other := nd.in[1]
			if nd.in[1] == cur {
				other = nd.in[0]
			} else if nd.in[0] != cur {
				return nn.Spec{}, nil, unsupported("node %d (Add): not a single chain from the input", i)
			}
			b, err := g.bias(i, other, last.out, 1)
			if err != nil {
				return nn.Spec{}, nil, err
			}
			last.b, last.canAdd = b, false
		case "Relu", "Tanh", "Sigmoid", "Softmax":
			if last == nil || last.act != nn.ActLinear || cur != lastOutput(g, i) {
				return nn.Spec{}, nil, unsupported("node %d: %s not directly after a dense layer", i, nd.op)
			}
			if nd.op == "Softmax" {
				if a, ok := nd.attr("axis"); ok && a.i != -1 && a.i != 1 {
					return nn.Spec{}, nil, unsupported("node %d: Softmax over axis %d, want the last", i, a.i)
				}
			}
			last.act, last.canAdd = onnxActs[nd.op], false
		case "Identity", "Dropout":
			// Pass-through at inference. Dropout's optional training_mode
			// input is not honoured: serving is inference.
		case "Flatten":
			if a, ok := nd.attr("axis"); ok && a.i != 1 && a.i != -1 {
				return nn.Spec{}, nil, unsupported("node %d: Flatten with axis %d of a 2-D input", i, a.i)
			}
		default:
			return nn.Spec{}, nil, unsupported("node %d: operator %s", i, printable(nd.op))
		}
		cur = nd.out[0]
	}
	if len(layers) == 0 {
		return nn.Spec{}, nil, unsupported("no dense layer")
	}
	if cur != out.name {
		return nn.Spec{}, nil, unsupported("graph output %q is not the end of the chain %q", printable(out.name), printable(cur))
	}
	if out.hasShape && (len(out.dims) != 2 || (out.dims[1] >= 0 && int(out.dims[1]) != width)) {
		return nn.Spec{}, nil, bad("output %q: shape %v, want [N, %d]", printable(out.name), out.dims, width)
	}

	spec := nn.Spec{
		Name:    g.name,
		Inputs:  []nn.TensorSpec{{Name: in.name, Datatype: nn.DatatypeFP32, Shape: []int64{-1, in.dims[1]}}},
		Outputs: []nn.TensorSpec{{Name: out.name, Datatype: nn.DatatypeFP32, Shape: []int64{-1, int64(width)}}},
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

// lastOutput is the output of the node before i, which an activation must
// read: it keeps "Gemm, Identity, Relu" from being taken for "Gemm, Relu" in
// a way that would matter if Identity ever gained a meaning. Identity and
// friends between a layer and its activation are thus refused; exporters do
// not put them there.
func lastOutput(g *graph, i int) string {
	if i == 0 {
		return ""
	}
	p := &g.nodes[i-1]
	switch p.op {
	case "Gemm", "MatMul", "Add":
		return p.out[0]
	}
	return ""
}

// matmul turns a Gemm or MatMul node into a dense layer reading width
// features. Gemm's alpha and beta are folded into the weights and bias.
func (g *graph) matmul(i int, nd *node, width int) (*dense, error) {
	gemm := nd.op == "Gemm"
	if (gemm && (len(nd.in) < 2 || len(nd.in) > 3)) || (!gemm && len(nd.in) != 2) {
		return nil, bad("node %d: %s with %d inputs", i, nd.op, len(nd.in))
	}
	bt, ok := g.inits[nd.in[1]]
	if !ok {
		return nil, unsupported("node %d (%s): weight %q is not an initializer", i, nd.op, printable(nd.in[1]))
	}
	if len(bt.dims) != 2 {
		return nil, bad("node %d (%s): weight %q has dims %v, want 2-D", i, nd.op, printable(bt.name), bt.dims)
	}
	alpha, beta, transB := float32(1), float32(1), false
	if gemm {
		for _, a := range nd.attrs {
			switch a.name {
			case "alpha":
				alpha = a.f
			case "beta":
				beta = a.f
			case "transA":
				if a.i != 0 {
					return nil, unsupported("node %d: Gemm with transA", i)
				}
			case "transB":
				transB = a.i != 0
			}
		}
		if !finite(alpha) || !finite(beta) {
			return nil, bad("node %d: Gemm alpha %v beta %v", i, alpha, beta)
		}
	}
	rows, cols := int(bt.dims[0]), int(bt.dims[1])
	if transB {
		rows, cols = cols, rows
	}
	if rows != width {
		return nil, bad("node %d (%s): weight %q is [%d, %d] as used, input width %d", i, nd.op, printable(bt.name), rows, cols, width)
	}
	if cols < 1 || cols > nn.MaxUnits {
		return nil, unsupported("node %d (%s): %d units, want 1 to %d", i, nd.op, cols, nn.MaxUnits)
	}
	d := &dense{in: rows, out: cols, act: nn.ActLinear, canAdd: !gemm, w: make([]float32, rows*cols)}
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			src := r*cols + c
			if transB {
				src = c*rows + r
			}
			v := alpha * bt.value(src)
			if !finite(v) {
				return nil, bad("initializer %q: element %d is %v", printable(bt.name), src, v)
			}
			d.w[r*cols+c] = v
		}
	}
	if gemm && len(nd.in) == 3 && nd.in[2] != "" {
		b, err := g.bias(i, nd.in[2], cols, beta)
		if err != nil {
			return nil, err
		}
		d.b = b
	}
	return d, nil
}

// bias reads a bias initializer of shape [n] or [1, n] (or a scalar
// broadcast, [] or [1]) and scales it by beta.
func (g *graph) bias(i int, name string, n int, beta float32) ([]float32, error) {
	t, ok := g.inits[name]
	if !ok {
		return nil, unsupported("node %d: bias %q is not an initializer", i, printable(name))
	}
	okShape := (t.numel == n && (len(t.dims) == 1 || (len(t.dims) == 2 && t.dims[0] == 1))) ||
		(t.numel == 1 && len(t.dims) <= 1)
	if !okShape {
		return nil, bad("node %d: bias %q has dims %v, want [%d]", i, printable(name), t.dims, n)
	}
	b := make([]float32, n)
	for j := range b {
		src := j
		if t.numel == 1 {
			src = 0
		}
		v := beta * t.value(src)
		if !finite(v) {
			return nil, bad("initializer %q: element %d is %v", printable(name), src, v)
		}
		b[j] = v
	}
	return b, nil
}

func finite(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }

func printableAll(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = printable(x)
	}
	return out
}
