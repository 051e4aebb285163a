package graph

import (
	"math"
	"strconv"
)

// Load-time fusions (ONNX Runtime's graph transformers, the ones that pay
// on CNNs): a BatchNormalization after a Conv folded into the Conv's
// weights and bias; an Add of a residual and an activation (Relu, Clip,
// LeakyRelu, HardSwish, or HardSigmoid·x) turned into the epilogue of the
// Conv's kernel (the internal operator aiaas.Conv). A fusion only applies
// where the intermediate value has no other reader and is not a graph
// output, and BatchNormalization's parameters and the Conv's weights are
// constants.

// fuse applies the fusions to nodes (in topological order) and returns the
// new list, still in topological order.
func (m *Model) fuse(nodes []Node) []Node {
	f := &fuser{m: m, nodes: nodes}
	f.outputs = map[string]bool{}
	for _, o := range m.outputs {
		f.outputs[o.Name] = true
	}
	f.foldBatchNorm()
	f.fuseResidual()
	f.fuseActivation()
	f.fuseTransformer()
	out := nodes[:0:0]
	for i := range f.nodes {
		if !f.dead(i) {
			out = append(out, f.nodes[i])
		}
	}
	return out
}

type fuser struct {
	m       *Model
	nodes   []Node
	deleted map[int]bool
	outputs map[string]bool
	fresh   int
}

func (f *fuser) dead(i int) bool { return f.deleted[i] }

func (f *fuser) kill(i int) {
	if f.deleted == nil {
		f.deleted = map[int]bool{}
	}
	f.deleted[i] = true
}

// readers maps each value to the live nodes that read it.
func (f *fuser) readers() map[string][]int {
	r := map[string][]int{}
	for i := range f.nodes {
		if f.dead(i) {
			continue
		}
		for _, in := range f.nodes[i].Inputs {
			if in != "" {
				r[in] = append(r[in], i)
			}
		}
	}
	return r
}

// only returns the one reader of value v, if v has exactly one and is not
// a graph output.
func (f *fuser) only(r map[string][]int, v string) (int, bool) {
	if f.outputs[v] || len(r[v]) != 1 {
		return 0, false
	}
	return r[v][0], true
}

func (f *fuser) constF32(name string) []float32 {
	t, ok := f.m.consts[name]
	if !ok || t.DType != Float32 {
		return nil
	}
	return t.Float32s()
}

func (f *fuser) newConst(base string, t *Tensor) string {
	for {
		f.fresh++
		name := base + "#fused" + strconv.Itoa(f.fresh)
		if _, taken := f.m.consts[name]; !taken {
			f.m.consts[name] = t
			return name
		}
	}
}

func isConv(n *Node) bool { return n.Op == "Conv" || n.Op == opFusedConv }

// foldBatchNorm rewrites Conv → BatchNormalization (inference) as one Conv
// with W' = W·s and B' = (B − mean)·s + β, s = γ/√(var + ε) per output
// channel.
func (f *fuser) foldBatchNorm() {
	r := f.readers()
	for i := range f.nodes {
		c := &f.nodes[i]
		if f.dead(i) || c.Op != "Conv" || len(c.Outputs) != 1 || len(c.Inputs) < 2 {
			continue
		}
		j, ok := f.only(r, c.Outputs[0])
		if !ok {
			continue
		}
		bn := &f.nodes[j]
		if bn.Op != "BatchNormalization" || len(bn.Inputs) != 5 || bn.Inputs[0] != c.Outputs[0] {
			continue
		}
		if len(bn.Outputs) > 1 {
			live := false
			for _, o := range bn.Outputs[1:] {
				if o != "" && (len(r[o]) > 0 || f.outputs[o]) {
					live = true
				}
			}
			if live {
				continue
			}
		}
		if a, ok := bn.Attrs["training_mode"]; ok && a.I != 0 {
			continue
		}
		if a, ok := bn.Attrs["spatial"]; ok && a.I == 0 {
			continue
		}
		w := f.m.consts[c.Inputs[1]]
		if w == nil || w.DType != Float32 || len(w.Shape) < 3 {
			continue
		}
		mch := w.Shape[0]
		gamma, beta, mean, vr := f.constF32(bn.Inputs[1]), f.constF32(bn.Inputs[2]), f.constF32(bn.Inputs[3]), f.constF32(bn.Inputs[4])
		if len(gamma) != mch || len(beta) != mch || len(mean) != mch || len(vr) != mch {
			continue
		}
		var bias []float32
		if len(c.Inputs) > 2 && c.Inputs[2] != "" {
			if bias = f.constF32(c.Inputs[2]); len(bias) != mch {
				continue
			}
		}
		eps := float64(1e-5)
		if a, ok := bn.Attrs["epsilon"]; ok {
			eps = float64(a.F)
		}
		nw := w.Clone()
		wv := nw.Float32s()
		per := len(wv) / mch
		nb := NewTensor(Float32, mch)
		bv := nb.Float32s()
		for k := 0; k < mch; k++ {
			s := float64(gamma[k]) / math.Sqrt(float64(vr[k])+eps)
			for q := k * per; q < (k+1)*per; q++ {
				wv[q] = float32(float64(wv[q]) * s)
			}
			b0 := 0.0
			if bias != nil {
				b0 = float64(bias[k])
			}
			bv[k] = float32((b0-float64(mean[k]))*s + float64(beta[k]))
		}
		nc := *c
		nc.Inputs = []string{c.Inputs[0], f.newConst(c.Inputs[1], nw), f.newConst(c.Name+"/bias", nb)}
		nc.Outputs = []string{bn.Outputs[0]}
		f.nodes[i] = nc
		f.kill(j)
		r = f.readers()
	}
}

// fuseResidual turns Conv → Add(y, other) into aiaas.Conv(x, W, B, other)
// at the Add's place. When both operands come from convolutions, the one
// computed last takes the Add, so the other is ready when it runs.
func (f *fuser) fuseResidual() {
	r := f.readers()
	producer := map[string]int{}
	for i := range f.nodes {
		if !f.dead(i) {
			for _, o := range f.nodes[i].Outputs {
				producer[o] = i
			}
		}
	}
	for j := range f.nodes {
		add := &f.nodes[j]
		if f.dead(j) || add.Op != "Add" || len(add.Inputs) != 2 || add.Inputs[0] == add.Inputs[1] {
			continue
		}
		best := -1
		for k := 0; k < 2; k++ {
			p, ok := producer[add.Inputs[k]]
			if !ok || f.dead(p) {
				continue
			}
			c := &f.nodes[p]
			if !isConv(c) || len(c.Outputs) != 1 || len(c.Inputs) > 3 || c.Attrs["activation"].S != "" {
				continue
			}
			if _, ok := f.only(r, c.Outputs[0]); !ok {
				continue
			}
			if _, isConst := f.m.consts[add.Inputs[1-k]]; isConst {
				continue
			}
			if best < 0 || p > producer[add.Inputs[best]] {
				best = k
			}
		}
		if best < 0 {
			continue
		}
		p := producer[add.Inputs[best]]
		c := f.nodes[p]
		nc := Node{Name: c.Name, Op: opFusedConv, Attrs: c.Attrs, Outputs: []string{add.Outputs[0]}}
		nc.Inputs = append(append([]string{}, c.Inputs...), "", "")[:3]
		nc.Inputs = append(nc.Inputs, add.Inputs[1-best])
		f.nodes[j] = nc
		f.kill(p)
		r = f.readers()
	}
}

// fuseActivation makes a following activation the Conv's epilogue.
func (f *fuser) fuseActivation() {
	r := f.readers()
	for i := range f.nodes {
		c := &f.nodes[i]
		if f.dead(i) || !isConv(c) || len(c.Outputs) != 1 || c.Attrs["activation"].S != "" {
			continue
		}
		y := c.Outputs[0]
		if f.outputs[y] {
			continue
		}
		rs := r[y]
		attrs := map[string]Attr{}
		var out string
		var killed []int
		switch {
		case len(rs) == 1:
			a := &f.nodes[rs[0]]
			switch a.Op {
			case "Relu":
				attrs["activation"] = Attr{Kind: AttrString, S: "Relu"}
			case "LeakyRelu":
				alpha := float32(0.01)
				if v, ok := a.Attrs["alpha"]; ok {
					alpha = float32(v.F)
				}
				attrs["activation"] = Attr{Kind: AttrString, S: "LeakyRelu"}
				attrs["act_alpha"] = Attr{Kind: AttrFloat, F: Float(alpha)}
			case "HardSwish":
				attrs["activation"] = Attr{Kind: AttrString, S: "HardSwish"}
				attrs["act_alpha"] = Attr{Kind: AttrFloat, F: Float(1.0 / 6)}
				attrs["act_beta"] = Attr{Kind: AttrFloat, F: 0.5}
			case "Clip":
				lo, hi, ok := f.clipBounds(a)
				if !ok {
					continue
				}
				attrs["activation"] = Attr{Kind: AttrString, S: "Clip"}
				attrs["act_min"] = Attr{Kind: AttrFloat, F: Float(lo)}
				attrs["act_max"] = Attr{Kind: AttrFloat, F: Float(hi)}
			default:
				continue
			}
			if len(a.Outputs) != 1 {
				continue
			}
			out, killed = a.Outputs[0], []int{rs[0]}
		case len(rs) == 2:
			// HardSigmoid(y) · y, PyTorch's Hardswish before opset 14.
			hs, mul := &f.nodes[rs[0]], &f.nodes[rs[1]]
			hi, mi := rs[0], rs[1]
			if hs.Op == "Mul" {
				hs, mul = mul, hs
				hi, mi = mi, hi
			}
			if hs.Op != "HardSigmoid" || mul.Op != "Mul" || len(hs.Outputs) != 1 || f.outputs[hs.Outputs[0]] {
				continue
			}
			h := hs.Outputs[0]
			if len(r[h]) != 1 || r[h][0] != mi || !(mul.Inputs[0] == y && mul.Inputs[1] == h || mul.Inputs[1] == y && mul.Inputs[0] == h) {
				continue
			}
			alpha, beta := float32(0.2), float32(0.5)
			if v, ok := hs.Attrs["alpha"]; ok {
				alpha = float32(v.F)
			}
			if v, ok := hs.Attrs["beta"]; ok {
				beta = float32(v.F)
			}
			attrs["activation"] = Attr{Kind: AttrString, S: "HardSwish"}
			attrs["act_alpha"] = Attr{Kind: AttrFloat, F: Float(alpha)}
			attrs["act_beta"] = Attr{Kind: AttrFloat, F: Float(beta)}
			out, killed = mul.Outputs[0], []int{hi, mi}
		default:
			continue
		}
		nc := *c
		nc.Op = opFusedConv
		nc.Attrs = map[string]Attr{}
		for k, v := range c.Attrs {
			nc.Attrs[k] = v
		}
		for k, v := range attrs {
			nc.Attrs[k] = v
		}
		nc.Outputs = []string{out}
		// The conv moves to the activation's place: every input it reads
		// is ready there, and the activation's readers come after it.
		last := killed[len(killed)-1]
		for _, k := range killed {
			last = max(last, k)
		}
		f.nodes[last] = nc
		for _, k := range killed {
			if k != last {
				f.kill(k)
			}
		}
		f.kill(i)
		r = f.readers()
	}
}

// clipBounds returns a Clip's bounds when they are known at load.
func (f *fuser) clipBounds(n *Node) (lo, hi float32, ok bool) {
	lo, hi = float32(math.Inf(-1)), float32(math.Inf(1))
	if f.m.opset < 11 {
		if a, ok := n.Attrs["min"]; ok {
			lo = float32(a.F)
		}
		if a, ok := n.Attrs["max"]; ok {
			hi = float32(a.F)
		}
		return lo, hi, true
	}
	for k, p := range []*float32{&lo, &hi} {
		if len(n.Inputs) > k+1 && n.Inputs[k+1] != "" {
			v := f.constF32(n.Inputs[k+1])
			if len(v) != 1 {
				return 0, 0, false
			}
			*p = v[0]
		}
	}
	return lo, hi, true
}
