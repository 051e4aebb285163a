package graph

import (
	"math"
)

// Load-time fusions of transformer graphs (ONNX Runtime's
// LayerNormFusion, GeluFusion, MatMulAddFusion and attention fusion, for
// the shapes torch exports):
//
//   - LayerNorm written out (ReduceMean → Sub → Pow 2 → ReduceMean → Add ε
//     → Sqrt → Div, then Mul γ and Add β, as torch exports it below opset
//     17) → aiaas.LayerNorm;
//   - GELU in its erf form (x·0.5·(1 + erf(x/√2)), any association of the
//     products, x/√2 or x·(1/√2)) and tanh form (0.5·x·(1 + tanh(√(2/π)·(x
//     + 0.044715·x³)))) → aiaas.Gelu;
//   - MatMul by a constant matrix then Add of a constant vector, and a
//     plain Gemm with constant weights → aiaas.Dense (the bias in the packed
//     product), and a GELU after it (directly, or after a Reshape, as
//     HF's Conv1D does) → its activation;
//   - MatMul(q, kᵀ) → scale → [Where(cond, ·, fill)] → [+ mask] → Softmax →
//     MatMul(·, v), with the Transposes that make q, kᵀ and v out of [B,
//     S, H, d] tensors and the one after → aiaas.Attention.
//
// As with the CNN fusions, an intermediate value is only fused away when
// the pattern's own node is its only reader and it is not a graph output.

func (f *fuser) fuseTransformer() {
	f.fuseLayerNorm()
	f.fuseGelu()
	f.fuseDense()
	f.fuseAttention()
}

// graphIndex is who reads and who produces each value among the live
// nodes.
type graphIndex struct {
	readers  map[string][]int
	producer map[string]int
}

func (f *fuser) index() *graphIndex {
	g := &graphIndex{readers: f.readers(), producer: map[string]int{}}
	for i := range f.nodes {
		if !f.dead(i) {
			for _, o := range f.nodes[i].Outputs {
				if o != "" {
					g.producer[o] = i
				}
			}
		}
	}
	return g
}

// prod returns the live node producing v with operator op whose only
// output is read by the one node reader and is not a graph output
// (reader < 0: any readers).
func (f *fuser) prod(g *graphIndex, v, op string, reader int) (int, *Node, bool) {
	i, ok := g.producer[v]
	if !ok || f.dead(i) {
		return 0, nil, false
	}
	n := &f.nodes[i]
	if n.Op != op || len(n.Inputs) == 0 || len(n.Outputs) != 1 {
		return 0, nil, false
	}
	if reader >= 0 && !f.soleReader(g, v, reader) {
		return 0, nil, false
	}
	return i, n, true
}

// soleReader reports whether node r is the only reader of v (it may
// read it more than once) and v is not a graph output.
func (f *fuser) soleReader(g *graphIndex, v string, r int) bool {
	if f.outputs[v] {
		return false
	}
	rs := g.readers[v]
	if len(rs) == 0 {
		return false
	}
	for _, x := range rs {
		if x != r {
			return false
		}
	}
	return true
}

// onlyReader returns v's sole reading node.
func (f *fuser) onlyReader(g *graphIndex, v string) (int, *Node, bool) {
	rs := g.readers[v]
	if len(rs) == 0 || !f.soleReader(g, v, rs[0]) {
		return 0, nil, false
	}
	return rs[0], &f.nodes[rs[0]], true
}

// scalar returns the value of a float32 constant of one element.
func (f *fuser) scalar(name string) (float32, bool) {
	t, ok := f.m.consts[name]
	if !ok || t.DType != Float32 || t.Numel() != 1 {
		return 0, false
	}
	return t.Float32s()[0], true
}

func near(v float32, want float64) bool {
	return math.Abs(float64(v)-want) <= 1e-5*math.Abs(want)
}

// binConst matches a binary node with a scalar constant operand near
// want (either side for the commutative Add and Mul), returning the other
// operand.
func (f *fuser) binConst(n *Node, op string, want float64) (string, bool) {
	if n.Op != op || len(n.Inputs) != 2 || len(n.Outputs) != 1 {
		return "", false
	}
	if c, ok := f.scalar(n.Inputs[1]); ok && near(c, want) {
		return n.Inputs[0], true
	}
	if op == "Add" || op == "Mul" {
		if c, ok := f.scalar(n.Inputs[0]); ok && near(c, want) {
			return n.Inputs[1], true
		}
	}
	return "", false
}

// other returns the operand of a two-input node that is not v.
func other(n *Node, v string) (string, bool) {
	if len(n.Inputs) != 2 {
		return "", false
	}
	switch v {
	case n.Inputs[0]:
		return n.Inputs[1], true
	case n.Inputs[1]:
		return n.Inputs[0], true
	}
	return "", false
}

// replace puts n at index at and kills the other pattern nodes.
func (f *fuser) replace(at int, n Node, killed ...int) {
	f.nodes[at] = n
	for _, k := range killed {
		if k != at {
			f.kill(k)
		}
	}
}

func (f *fuser) vector(name string) bool {
	t, ok := f.m.consts[name]
	return ok && t.DType == Float32 && (len(t.Shape) == 1 || t.Numel() == 1)
}

// lastAxisMean reports whether n is a ReduceMean over the last axis only,
// keeping it.
func (f *fuser) lastAxisMean(n *Node) bool {
	if n.Op != "ReduceMean" || len(n.Outputs) != 1 {
		return false
	}
	if a, ok := n.Attrs["keepdims"]; ok && a.I != 1 {
		return false
	}
	axes := n.Attrs["axes"].Ints
	if len(n.Inputs) > 1 && n.Inputs[1] != "" {
		t, ok := f.m.consts[n.Inputs[1]]
		if !ok || t.DType != Int64 {
			return false
		}
		axes = t.Int64s()
	}
	return len(axes) == 1 && axes[0] == -1
}

// fuseLayerNorm: x → ReduceMean → Sub(x, mean) = d → Pow(d, 2) (or
// Mul(d, d)) → ReduceMean → Add ε → Sqrt → Div(d, ·) → [Mul γ] → [Add β].
func (f *fuser) fuseLayerNorm() {
	g := f.index()
	for i := range f.nodes {
		div := &f.nodes[i]
		if f.dead(i) || div.Op != "Div" || len(div.Inputs) != 2 || len(div.Outputs) != 1 {
			continue
		}
		d := div.Inputs[0]
		si, sq, ok := f.prod(g, div.Inputs[1], "Sqrt", i)
		if !ok {
			continue
		}
		ai, add, ok := f.prod(g, sq.Inputs[0], "Add", si)
		if !ok || len(add.Inputs) != 2 {
			continue
		}
		variance, eps := add.Inputs[0], float32(0)
		if e, ok := f.scalar(add.Inputs[1]); ok {
			eps = e
		} else if e, ok := f.scalar(add.Inputs[0]); ok {
			variance, eps = add.Inputs[1], e
		} else {
			continue
		}
		vi, vm, ok := f.prod(g, variance, "ReduceMean", ai)
		if !ok || !f.lastAxisMean(vm) {
			continue
		}
		pi, ok := g.producer[vm.Inputs[0]]
		if !ok || f.dead(pi) || !f.soleReader(g, vm.Inputs[0], vi) {
			continue
		}
		pw := &f.nodes[pi]
		switch {
		case pw.Op == "Pow" && len(pw.Inputs) == 2 && pw.Inputs[0] == d:
			if e, ok := f.scalar(pw.Inputs[1]); !ok || e != 2 {
				continue
			}
		case pw.Op == "Mul" && len(pw.Inputs) == 2 && pw.Inputs[0] == d && pw.Inputs[1] == d:
		default:
			continue
		}
		// d is read by the square and the Div only.
		if f.outputs[d] {
			continue
		}
		okReaders := true
		for _, r := range g.readers[d] {
			if r != pi && r != i {
				okReaders = false
			}
		}
		subI, sub, ok := f.prod(g, d, "Sub", -1)
		if !okReaders || !ok || len(sub.Inputs) != 2 {
			continue
		}
		x := sub.Inputs[0]
		mi, mean, ok := f.prod(g, sub.Inputs[1], "ReduceMean", subI)
		if !ok || !f.lastAxisMean(mean) || mean.Inputs[0] != x {
			continue
		}
		killed := []int{mi, subI, pi, vi, ai, si, i}
		out, last := div.Outputs[0], i
		gamma, beta := "", ""
		if ri, mul, ok := f.onlyReader(g, out); ok && mul.Op == "Mul" {
			if o, ok := other(mul, out); ok && f.vector(o) && len(mul.Outputs) == 1 {
				gamma, out, last = o, mul.Outputs[0], ri
				killed = append(killed, ri)
				if ri2, ad, ok := f.onlyReader(g, out); ok && ad.Op == "Add" {
					if o, ok := other(ad, out); ok && f.vector(o) && len(ad.Outputs) == 1 {
						beta, out, last = o, ad.Outputs[0], ri2
						killed = append(killed, ri2)
					}
				}
			}
		}
		if gamma == "" {
			gamma = f.newConst(div.Name+"/gamma", TensorFrom([]int{1}, []float32{1}))
		}
		in := []string{x, gamma}
		if beta != "" {
			in = append(in, beta)
		}
		f.replace(last, Node{Name: div.Name, Op: opLayerNorm, Inputs: in, Outputs: []string{out}, Attrs: map[string]Attr{
			"axis":    {Kind: AttrInt, I: -1},
			"epsilon": {Kind: AttrFloat, F: Float(eps)},
		}}, killed...)
		g = f.index()
	}
}

// fuseGelu finds the Erf or Tanh at the heart of a GELU and the products
// around it.
func (f *fuser) fuseGelu() {
	g := f.index()
	for i := range f.nodes {
		n := &f.nodes[i]
		if f.dead(i) || len(n.Inputs) != 1 || len(n.Outputs) != 1 {
			continue
		}
		var x, approx string
		var killed []int
		switch n.Op {
		case "Erf":
			// x/√2 or x·(1/√2).
			ui, ok := g.producer[n.Inputs[0]]
			if !ok || f.dead(ui) || !f.soleReader(g, n.Inputs[0], i) {
				continue
			}
			u := &f.nodes[ui]
			if v, ok := f.binConst(u, "Div", math.Sqrt2); ok {
				x = v
			} else if v, ok := f.binConst(u, "Mul", 1/math.Sqrt2); ok {
				x = v
			} else {
				continue
			}
			approx, killed = "none", []int{ui, i}
		case "Tanh":
			// √(2/π)·(x + 0.044715·x³).
			wi, ok := g.producer[n.Inputs[0]]
			if !ok || f.dead(wi) || !f.soleReader(g, n.Inputs[0], i) {
				continue
			}
			s, ok := f.binConst(&f.nodes[wi], "Mul", math.Sqrt(2/math.Pi))
			if !ok {
				continue
			}
			si, sn, ok := f.prod(g, s, "Add", wi)
			if !ok || len(sn.Inputs) != 2 {
				continue
			}
			matched := false
			for k := 0; k < 2 && !matched; k++ {
				xx, cube := sn.Inputs[k], sn.Inputs[1-k]
				ci, ok := g.producer[cube]
				if !ok || f.dead(ci) || !f.soleReader(g, cube, si) {
					continue
				}
				p3, ok := f.binConst(&f.nodes[ci], "Mul", 0.044715)
				if !ok {
					continue
				}
				pi, pn, ok := f.prod(g, p3, "Pow", ci)
				if !ok || len(pn.Inputs) != 2 || pn.Inputs[0] != xx {
					continue
				}
				if e, ok := f.scalar(pn.Inputs[1]); !ok || e != 3 {
					continue
				}
				x, matched = xx, true
				killed = []int{pi, ci, si, wi, i}
			}
			if !matched {
				continue
			}
			approx = "tanh"
		default:
			continue
		}
		// 1 + erf(…) or 1 + tanh(…).
		ai, add, ok := f.onlyReader(g, n.Outputs[0])
		if !ok {
			continue
		}
		if _, ok := f.binConst(add, "Add", 1); !ok {
			continue
		}
		a := add.Outputs[0]
		m1i, m1, ok := f.onlyReader(g, a)
		if !ok || m1.Op != "Mul" || len(m1.Outputs) != 1 {
			continue
		}
		o, ok := other(m1, a)
		if !ok {
			continue
		}
		killed = append(killed, ai, m1i)
		var last int
		var out string
		switch {
		case o == x:
			// (x·a)·0.5
			m2i, m2, ok := f.onlyReader(g, m1.Outputs[0])
			if !ok {
				continue
			}
			if v, ok := f.binConst(m2, "Mul", 0.5); !ok || v != m1.Outputs[0] {
				continue
			}
			last, out = m2i, m2.Outputs[0]
			killed = append(killed, m2i)
		default:
			if hi, h, ok := f.prod(g, o, "Mul", m1i); ok {
				// (x·0.5)·a
				if v, ok := f.binConst(h, "Mul", 0.5); !ok || v != x {
					continue
				}
				last, out = m1i, m1.Outputs[0]
				killed = append(killed, hi)
				break
			}
			// x·(a·0.5)
			if c, ok := f.scalar(o); !ok || c != 0.5 {
				continue
			}
			m2i, m2, ok := f.onlyReader(g, m1.Outputs[0])
			if !ok || m2.Op != "Mul" || len(m2.Outputs) != 1 {
				continue
			}
			if v, ok := other(m2, m1.Outputs[0]); !ok || v != x {
				continue
			}
			last, out = m2i, m2.Outputs[0]
			killed = append(killed, m2i)
		}
		f.replace(last, Node{Name: n.Name, Op: opGelu, Inputs: []string{x}, Outputs: []string{out}, Attrs: map[string]Attr{
			"approximate": {Kind: AttrString, S: approx},
		}}, killed...)
		g = f.index()
	}
}

// fuseDense makes aiaas.Dense of MatMul + Add(bias) and of plain Gemms,
// then moves a GELU after one into it.
func (f *fuser) fuseDense() {
	g := f.index()
	for i := range f.nodes {
		n := &f.nodes[i]
		if f.dead(i) || len(n.Outputs) != 1 {
			continue
		}
		switch n.Op {
		case "MatMul":
			if len(n.Inputs) != 2 {
				continue
			}
			w, ok := f.m.consts[n.Inputs[1]]
			if !ok || w.DType != Float32 || len(w.Shape) != 2 {
				continue
			}
			ai, add, ok := f.onlyReader(g, n.Outputs[0])
			if !ok || add.Op != "Add" || len(add.Outputs) != 1 {
				continue
			}
			bias, ok := other(add, n.Outputs[0])
			if !ok || !f.vector(bias) || f.m.consts[bias].Numel() != w.Shape[1] {
				continue
			}
			f.replace(ai, Node{Name: n.Name, Op: opDense, Inputs: []string{n.Inputs[0], n.Inputs[1], bias}, Outputs: add.Outputs}, i)
			g = f.index()
		case "Gemm":
			if len(n.Inputs) < 2 || n.Attrs["transA"].I != 0 {
				continue
			}
			if a, ok := n.Attrs["alpha"]; ok && a.F != 1 {
				continue
			}
			if a, ok := n.Attrs["beta"]; ok && a.F != 1 {
				continue
			}
			w, ok := f.m.consts[n.Inputs[1]]
			if !ok || w.DType != Float32 || len(w.Shape) != 2 {
				continue
			}
			nOut := w.Shape[1]
			if n.Attrs["transB"].I != 0 {
				nOut = w.Shape[0]
			}
			in := []string{n.Inputs[0], n.Inputs[1]}
			if len(n.Inputs) > 2 && n.Inputs[2] != "" {
				c, ok := f.m.consts[n.Inputs[2]]
				if !ok || c.DType != Float32 || c.Numel() != nOut || (len(c.Shape) == 2 && c.Shape[0] != 1) || len(c.Shape) > 2 {
					continue
				}
				in = append(in, n.Inputs[2])
				if len(c.Shape) != 1 {
					in[2] = f.newConst(n.Inputs[2], TensorFrom([]int{nOut}, c.Float32s()))
				}
			}
			if n.Attrs["transB"].I != 0 {
				k := w.Shape[1]
				t := NewTensor(Float32, k, nOut)
				transpose(t.Float32s(), w.Float32s(), nOut, k)
				in[1] = f.newConst(n.Inputs[1], t)
			}
			f.nodes[i] = Node{Name: n.Name, Op: opDense, Inputs: in, Outputs: n.Outputs}
			g = f.index()
		}
	}
	// GELU epilogues.
	for i := range f.nodes {
		n := &f.nodes[i]
		if f.dead(i) || n.Op != opDense || n.Attrs["activation"].S != "" {
			continue
		}
		y := n.Outputs[0]
		ri, r, ok := f.onlyReader(g, y)
		if !ok {
			continue
		}
		via := -1
		if r.Op == "Reshape" && len(r.Outputs) == 1 && r.Inputs[0] == y {
			// The GELU after a Reshape (element-wise: the same on either side).
			gi, gn, ok := f.onlyReader(g, r.Outputs[0])
			if !ok || gn.Op != opGelu {
				continue
			}
			via, ri, r = ri, gi, gn
		}
		if r.Op != opGelu {
			continue
		}
		act := "gelu"
		if r.Attrs["approximate"].S == "tanh" {
			act = "gelu_tanh"
		}
		nd := *n
		nd.Attrs = map[string]Attr{"activation": {Kind: AttrString, S: act}}
		if via < 0 {
			nd.Outputs = r.Outputs
			f.replace(ri, nd, i)
		} else {
			// Dense → Reshape → Gelu becomes Dense(gelu) → Reshape.
			f.nodes[i] = nd
			f.nodes[via].Outputs = r.Outputs
			f.kill(ri)
		}
		g = f.index()
	}
}

// fuseAttention finds Softmax nodes between two MatMuls.
func (f *fuser) fuseAttention() {
	g := f.index()
	for si := range f.nodes {
		sm := &f.nodes[si]
		if f.dead(si) || sm.Op != "Softmax" || len(sm.Inputs) != 1 || len(sm.Outputs) != 1 {
			continue
		}
		if a, ok := sm.Attrs["axis"]; f.m.opset >= 13 && ok && a.I != -1 && a.I != 3 || f.m.opset < 13 && (!ok || a.I != -1 && a.I != 3) {
			continue
		}
		killed := []int{si}
		cur, reader := sm.Inputs[0], si
		var mask, cond, scale string
		fill := float32(0)
		scaleDiv := false
		// Add(mask): the operand that comes from the chain.
		if ai, add, ok := f.prod(g, cur, "Add", reader); ok && len(add.Inputs) == 2 {
			k := 0
			if f.chainOp(g, add.Inputs[1], ai) && !f.chainOp(g, add.Inputs[0], ai) {
				k = 1
			}
			if !f.chainOp(g, add.Inputs[k], ai) {
				continue
			}
			cur, mask, reader = add.Inputs[k], add.Inputs[1-k], ai
			killed = append(killed, ai)
		}
		if wi, w, ok := f.prod(g, cur, "Where", reader); ok && len(w.Inputs) == 3 {
			c, ok := f.scalar(w.Inputs[2])
			if !ok {
				continue
			}
			cur, cond, fill, reader = w.Inputs[1], w.Inputs[0], c, wi
			killed = append(killed, wi)
		}
		// A Div's divisor may be computed (GPT-2 divides by a float made
		// of v's shape); the kernel checks it is a scalar when planned.
		if di, dn, ok := f.prod(g, cur, "Div", reader); ok && len(dn.Inputs) == 2 {
			cur, scale, scaleDiv, reader = dn.Inputs[0], dn.Inputs[1], true, di
			killed = append(killed, di)
		} else if mi, mn, ok := f.prod(g, cur, "Mul", reader); ok && len(mn.Inputs) == 2 {
			// A product only by a constant scalar: a Mul by a tensor (a
			// multiplicative mask) is not a scale.
			k := 0
			if _, _, isMM := f.prod(g, mn.Inputs[1], "MatMul", -1); isMM {
				k = 1
			}
			if _, ok := f.scalar(mn.Inputs[1-k]); !ok {
				continue
			}
			cur, scale, reader = mn.Inputs[k], mn.Inputs[1-k], mi
			killed = append(killed, mi)
		}
		m1i, mm1, ok := f.prod(g, cur, "MatMul", reader)
		if !ok || len(mm1.Inputs) != 2 {
			continue
		}
		m2i, mm2, ok := f.onlyReader(g, sm.Outputs[0])
		if !ok || mm2.Op != "MatMul" || len(mm2.Inputs) != 2 || mm2.Inputs[0] != sm.Outputs[0] || len(mm2.Outputs) != 1 {
			continue
		}
		killed = append(killed, m1i, m2i)
		// q must come from a rank-4 Transpose; k and v may.
		q, qPerm, ok := f.transposed(g, mm1.Inputs[0])
		if !ok {
			continue
		}
		k, kPerm, ok := f.transposed(g, mm1.Inputs[1])
		if !ok {
			k, kPerm = mm1.Inputs[1], []int64{0, 1, 2, 3}
		}
		kPerm = []int64{kPerm[0], kPerm[1], kPerm[3], kPerm[2]} // kᵀ's perm → k's
		v, vPerm, ok := f.transposed(g, mm2.Inputs[1])
		if !ok {
			// v as it is (GPT-2: the cache's Concat), if it has rank 4.
			if !f.rank4(g, mm2.Inputs[1], 4) {
				continue
			}
			v, vPerm = mm2.Inputs[1], []int64{0, 1, 2, 3}
		}
		if qPerm[3] != 3 || kPerm[3] != 3 || vPerm[3] != 3 {
			continue
		}
		out, last := mm2.Outputs[0], m2i
		outPerm := []int64{0, 1, 2, 3}
		if ti, tn, ok := f.onlyReader(g, out); ok && tn.Op == "Transpose" && len(tn.Outputs) == 1 {
			if p := tn.Attrs["perm"].Ints; len(p) == 4 && p[3] == 3 {
				out, last, outPerm = tn.Outputs[0], ti, p
				killed = append(killed, ti)
			}
		}
		attrs := map[string]Attr{
			"q_perm":   {Kind: AttrInts, Ints: qPerm},
			"k_perm":   {Kind: AttrInts, Ints: kPerm},
			"v_perm":   {Kind: AttrInts, Ints: vPerm},
			"out_perm": {Kind: AttrInts, Ints: outPerm},
			"fill":     {Kind: AttrFloat, F: Float(fill)},
		}
		if scaleDiv {
			attrs["scale_div"] = Attr{Kind: AttrInt, I: 1}
		}
		f.replace(last, Node{Name: mm1.Name, Op: opAttention, Inputs: []string{q, k, v, mask, cond, scale}, Outputs: []string{out}, Attrs: attrs}, killed...)
		g = f.index()
	}
}

// chainOp reports whether v is the scores' chain (a MatMul, scale or
// Where read only by reader).
func (f *fuser) chainOp(g *graphIndex, v string, reader int) bool {
	for _, op := range []string{"MatMul", "Div", "Mul", "Where"} {
		if _, _, ok := f.prod(g, v, op, reader); ok {
			return true
		}
	}
	return false
}

// transposed returns the input and perm of the rank-4 Transpose producing
// v (which may have other readers).
func (f *fuser) transposed(g *graphIndex, v string) (string, []int64, bool) {
	_, t, ok := f.prod(g, v, "Transpose", -1)
	if !ok || len(t.Inputs) != 1 {
		return "", nil, false
	}
	p := t.Attrs["perm"].Ints
	if len(p) != 4 {
		return "", nil, false
	}
	return t.Inputs[0], p, true
}

// rank4 reports whether v certainly has rank 4: a graph input declared so,
// a rank-4 Transpose's output, or a Concat of such values (depth levels
// deep).
func (f *fuser) rank4(g *graphIndex, v string, depth int) bool {
	for _, in := range f.m.inputs {
		if in.Name == v {
			return len(in.Shape) == 4
		}
	}
	if _, _, ok := f.transposed(g, v); ok {
		return true
	}
	i, ok := g.producer[v]
	if !ok || f.dead(i) || depth == 0 {
		return false
	}
	n := &f.nodes[i]
	if n.Op != "Concat" || len(n.Inputs) == 0 {
		return false
	}
	for _, in := range n.Inputs {
		if !f.rank4(g, in, depth-1) {
			return false
		}
	}
	return true
}
