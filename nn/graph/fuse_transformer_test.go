package graph

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// loadBoth loads g fused and unfused (its tensors are not modified by
// either: fusion adds constants of its own).
func loadBoth(t *testing.T, g *Graph, ts map[string]*Tensor) (fused, plain *Model) {
	t.Helper()
	fts, pts := map[string]*Tensor{}, map[string]*Tensor{}
	for k, v := range ts {
		fts[k], pts[k] = v, v
	}
	var err error
	if fused, err = Load(g, fts, nil); err != nil {
		t.Fatalf("load: %v", err)
	}
	if plain, err = Load(g, pts, &Options{NoFuse: true}); err != nil {
		t.Fatalf("load without fusions: %v", err)
	}
	return fused, plain
}

func opCount(m *Model) map[string]int {
	ops := map[string]int{}
	for _, n := range m.nodes {
		ops[n.Op]++
	}
	return ops
}

// sameRuns runs both models on ins and compares every output within tol
// relative to max(1, |plain|).
func sameRuns(t *testing.T, what string, fused, plain *Model, ins []*Tensor, tol float64) {
	t.Helper()
	a, err := fused.Run(context.Background(), ins, nil)
	if err != nil {
		t.Fatalf("%s: fused: %v", what, err)
	}
	b, err := plain.Run(context.Background(), ins, nil)
	if err != nil {
		t.Fatalf("%s: unfused: %v", what, err)
	}
	for i := range b {
		if !sameShape(a[i].Shape, b[i].Shape) {
			t.Fatalf("%s: output %d %v, unfused %v", what, i, a[i].Shape, b[i].Shape)
		}
		if d := maxRelDiff(a[i].Float32s(), b[i].Float32s()); !(d <= tol) {
			t.Errorf("%s: output %d: fused and unfused differ by %.3g (tol %.3g)", what, i, d, tol)
		}
	}
}

func scalarT(v float32) *Tensor { return TensorFrom([]int{}, []float32{v}) }
func i64T(v ...int64) *Tensor   { return TensorFrom([]int{len(v)}, v) }

// attnCase is one attention subgraph as torch exports it: q, k, v as
// [B, S, H, d] inputs, Transposes to [B, H, S, d] (k to [B, H, d, S]),
// MatMul, the scale, an optional Where on a condition, the mask, Softmax,
// MatMul by v, and the Transpose back.
type attnCase struct {
	b, h, sq, sk, d int
	cond            string // "", "causal" (a constant), "input" (a BOOL input)
	mulScale        bool   // Mul by 1/√d instead of Div by √d
	noMask          bool
}

func (c attnCase) String() string {
	return fmt.Sprintf("B%d H%d Sq%d Sk%d d%d cond=%q mul=%v nomask=%v", c.b, c.h, c.sq, c.sk, c.d, c.cond, c.mulScale, c.noMask)
}

func (c attnCase) graph(r *rand.Rand) (*Graph, map[string]*Tensor, []*Tensor) {
	g := &Graph{Opset: 14, Outputs: []Value{{Name: "out", DType: Float32}}}
	ts := map[string]*Tensor{}
	var ins []*Tensor
	input := func(name string, t *Tensor) {
		sh := make([]int64, len(t.Shape))
		for i, d := range t.Shape {
			sh[i] = int64(d)
		}
		g.Inputs = append(g.Inputs, Value{Name: name, DType: t.DType, Shape: sh})
		ins = append(ins, t)
	}
	input("q", randTensor(r, c.b, c.sq, c.h, c.d))
	input("k", randTensor(r, c.b, c.sk, c.h, c.d))
	input("v", randTensor(r, c.b, c.sk, c.h, c.d))
	node := func(op string, in []string, out string, attrs map[string]Attr) {
		g.Nodes = append(g.Nodes, Node{Name: out, Op: op, Inputs: in, Outputs: []string{out}, Attrs: attrs})
	}
	node("Transpose", []string{"q"}, "qt", map[string]Attr{"perm": ints(0, 2, 1, 3)})
	node("Transpose", []string{"k"}, "kt", map[string]Attr{"perm": ints(0, 2, 3, 1)})
	node("Transpose", []string{"v"}, "vt", map[string]Attr{"perm": ints(0, 2, 1, 3)})
	node("MatMul", []string{"qt", "kt"}, "s", nil)
	if c.mulScale {
		ts["scale"] = scalarT(float32(1 / math.Sqrt(float64(c.d))))
		node("Mul", []string{"s", "scale"}, "s2", nil)
	} else {
		ts["scale"] = scalarT(float32(math.Sqrt(float64(c.d))))
		node("Div", []string{"s", "scale"}, "s2", nil)
	}
	cur := "s2"
	if c.cond != "" {
		cond := NewTensor(Bool, 1, 1, c.sq, c.sk)
		cv := Data[bool](cond)
		for i := 0; i < c.sq; i++ {
			for j := 0; j < c.sk; j++ {
				if c.cond == "causal" {
					cv[i*c.sk+j] = j <= i+c.sk-c.sq
				} else {
					cv[i*c.sk+j] = r.IntN(4) != 0 || j == 0
				}
			}
		}
		if c.cond == "causal" {
			ts["cond"] = cond
		} else {
			input("cond", cond)
		}
		ts["fill"] = scalarT(-math.MaxFloat32)
		node("Where", []string{"cond", cur, "fill"}, "s3", nil)
		cur = "s3"
	}
	if !c.noMask {
		mask := NewTensor(Float32, c.b, 1, 1, c.sk)
		for i, bi := 0, 0; bi < c.b; bi++ {
			for j := 0; j < c.sk; j++ {
				// The second row is padded after 3/4 of its keys, as
				// (1 − mask)·finfo.min, BERT's additive mask.
				if bi == 1 && j > 0 && j >= 3*c.sk/4 {
					mask.Float32s()[i] = -math.MaxFloat32
				}
				i++
			}
		}
		input("mask", mask)
		node("Add", []string{cur, "mask"}, "s4", nil)
		cur = "s4"
	}
	node("Softmax", []string{cur}, "p", map[string]Attr{"axis": intAttr(-1)})
	node("MatMul", []string{"p", "vt"}, "o", nil)
	node("Transpose", []string{"o"}, "out", map[string]Attr{"perm": ints(0, 2, 1, 3)})
	return g, ts, ins
}

// TestAttentionFusion: the tiled kernel equals the unfused graph within
// 1e-5 relative, for one query and one key, across block boundaries
// (64 queries, 256 keys), past 1000 keys, with the causal pattern as a
// constant (detected, not read), a condition input, decoding (one query,
// many keys), Mul or Div by the scale, with and without a mask.
func TestAttentionFusion(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	cases := []attnCase{
		{b: 1, h: 1, sq: 1, sk: 1, d: 8},
		{b: 2, h: 3, sq: 7, sk: 7, d: 16},
		{b: 2, h: 2, sq: 65, sk: 65, d: 32, mulScale: true},
		{b: 1, h: 2, sq: 130, sk: 300, d: 32, cond: "input"},
		{b: 1, h: 2, sq: 300, sk: 300, d: 64, cond: "causal"},
		{b: 2, h: 1, sq: 5, sk: 21, d: 16, cond: "causal"},
		{b: 1, h: 2, sq: 1, sk: 1100, d: 64, cond: "causal"},
		{b: 2, h: 1, sq: 1030, sk: 1030, d: 32},
		{b: 1, h: 1, sq: 1025, sk: 1025, d: 16, cond: "causal", noMask: true},
	}
	for _, c := range cases {
		g, ts, ins := c.graph(r)
		fused, plain := loadBoth(t, g, ts)
		ops := opCount(fused)
		if ops[opAttention] != 1 || ops["Softmax"] != 0 || ops["MatMul"] != 0 || ops["Transpose"] != 0 {
			t.Errorf("%v: fused operators %v, want one aiaas.Attention and no Transpose", c, ops)
		}
		sameRuns(t, c.String(), fused, plain, ins, 1e-5)
		if c.cond == "causal" {
			p, err := fused.planFor(ins)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range p.steps {
				if s.node.Op == opAttention && s.in[4] >= 0 && p.vals[s.in[4]].c == nil {
					t.Errorf("%v: the causal condition is not a plan constant", c)
				}
			}
		}
	}
}

// TestAttentionMemory: the fused attention's arena holds no Sq×Sk
// scores; the unfused graph's does.
func TestAttentionMemory(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	c := attnCase{b: 1, h: 1, sq: 2048, sk: 2048, d: 64, cond: "causal"}
	g, ts, ins := c.graph(r)
	fused, plain := loadBoth(t, g, ts)
	scores := 4 * c.sq * c.sk
	_, fa, err := fused.Cost(ins)
	if err != nil {
		t.Fatal(err)
	}
	_, pa, err := plain.Cost(ins)
	if err != nil {
		t.Fatal(err)
	}
	if fa >= scores/4 || pa < scores {
		t.Errorf("arena %d bytes fused, %d unfused; the scores are %d", fa, pa, scores)
	}
}

// layerCase builds a BERT layer as torch 1.13 exports it below opset 17,
// with the GELU and LayerNorm variants other exporters write.
type layerCase struct {
	gelu   string // "torch" x·(1+erf(x/√2))·0.5, "hf" (x·0.5)·(1+erf(x·(1/√2))), "half" x·((1+erf)·0.5), "tanh"
	lnMul  bool   // (x−mean)·(x−mean) instead of Pow 2
	noBeta bool
}

func bertLayer(r *rand.Rand, c layerCase, hidden, heads, ffn int) (*Graph, map[string]*Tensor) {
	d := hidden / heads
	g := &Graph{Opset: 14,
		Inputs: []Value{
			{Name: "x", DType: Float32, Shape: []int64{-1, -1, int64(hidden)}},
			{Name: "mask", DType: Float32, Shape: []int64{-1, 1, 1, -1}},
		},
		Outputs: []Value{{Name: "y", DType: Float32}},
	}
	ts := map[string]*Tensor{}
	small := func(shape ...int) *Tensor {
		t := randTensor(r, shape...)
		for i := range t.Float32s() {
			t.Float32s()[i] *= 0.1
		}
		return t
	}
	n := 0
	node := func(op string, in ...string) string {
		n++
		out := fmt.Sprintf("%s_%d", op, n)
		g.Nodes = append(g.Nodes, Node{Name: out, Op: op, Inputs: in, Outputs: []string{out}})
		return out
	}
	with := func(out string, attrs map[string]Attr) string {
		g.Nodes[len(g.Nodes)-1].Attrs = attrs
		return out
	}
	c0 := func(name string, t *Tensor) string { ts[name] = t; return name }
	linear := func(x, name string, k, m int) string {
		mm := node("MatMul", x, c0(name+".w", small(k, m)))
		return node("Add", c0(name+".b", small(m)), mm)
	}
	layerNorm := func(x, name string) string {
		mean := with(node("ReduceMean", x), map[string]Attr{"axes": ints(-1)})
		dd := node("Sub", x, mean)
		var sq string
		if c.lnMul {
			sq = node("Mul", dd, dd)
		} else {
			sq = node("Pow", dd, c0(name+".two", scalarT(2)))
		}
		v := with(node("ReduceMean", sq), map[string]Attr{"axes": ints(-1)})
		s := node("Sqrt", node("Add", v, c0(name+".eps", scalarT(1e-12))))
		y := node("Mul", node("Div", dd, s), c0(name+".g", randTensor(r, hidden)))
		if c.noBeta {
			return y
		}
		return node("Add", y, c0(name+".beta", randTensor(r, hidden)))
	}
	shape4 := c0("shape4", i64T(0, 0, int64(heads), int64(d)))
	heads4 := func(x string, perm ...int64) string {
		return with(node("Transpose", node("Reshape", x, shape4)), map[string]Attr{"perm": ints(perm...)})
	}
	q := heads4(linear("x", "q", hidden, hidden), 0, 2, 1, 3)
	k := heads4(linear("x", "k", hidden, hidden), 0, 2, 3, 1)
	v := heads4(linear("x", "v", hidden, hidden), 0, 2, 1, 3)
	s := node("Div", node("MatMul", q, k), c0("sqrtd", scalarT(float32(math.Sqrt(float64(d))))))
	p := with(node("Softmax", node("Add", s, "mask")), map[string]Attr{"axis": intAttr(-1)})
	ctx := with(node("Transpose", node("MatMul", p, v)), map[string]Attr{"perm": ints(0, 2, 1, 3)})
	ctx = node("Reshape", ctx, c0("shape3", i64T(0, 0, int64(hidden))))
	a := layerNorm(node("Add", linear(ctx, "o", hidden, hidden), "x"), "ln1")
	h := linear(a, "ffn1", hidden, ffn)
	switch c.gelu {
	case "torch":
		e := node("Erf", node("Div", h, c0("sqrt2", scalarT(math.Sqrt2))))
		h = node("Mul", node("Mul", h, node("Add", e, c0("one", scalarT(1)))), c0("half", scalarT(0.5)))
	case "hf":
		e := node("Erf", node("Mul", h, c0("isqrt2", scalarT(1/math.Sqrt2))))
		h = node("Mul", node("Mul", h, c0("half", scalarT(0.5))), node("Add", c0("one", scalarT(1)), e))
	case "half":
		e := node("Erf", node("Div", h, c0("sqrt2", scalarT(math.Sqrt2))))
		h = node("Mul", h, node("Mul", node("Add", e, c0("one", scalarT(1))), c0("half", scalarT(0.5))))
	case "tanh":
		cube := node("Mul", node("Pow", h, c0("three", scalarT(3))), c0("c", scalarT(0.044715)))
		t := node("Tanh", node("Mul", node("Add", h, cube), c0("k", scalarT(float32(math.Sqrt(2/math.Pi))))))
		h = node("Mul", node("Mul", h, c0("half", scalarT(0.5))), node("Add", t, c0("one", scalarT(1))))
	}
	y := layerNorm(node("Add", linear(h, "ffn2", ffn, hidden), a), "ln2")
	g.Nodes[len(g.Nodes)-1].Outputs[0] = "y"
	if y == "" {
		panic("no output")
	}
	return g, ts
}

// TestTransformerLayerFusions: a BERT layer as exporters write it fuses
// into six Dense (one with its GELU), one Attention and two LayerNorms,
// and computes what the unfused graph does, at several batch and
// sequence sizes of the one model.
func TestTransformerLayerFusions(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, c := range []layerCase{{gelu: "torch"}, {gelu: "hf", lnMul: true}, {gelu: "half", noBeta: true}, {gelu: "tanh"}} {
		g, ts := bertLayer(r, c, 48, 4, 96)
		fused, plain := loadBoth(t, g, ts)
		ops := opCount(fused)
		want := map[string]int{opDense: 6, opAttention: 1, opLayerNorm: 2, "Add": 2, "Reshape": 4}
		for op, nw := range want {
			if ops[op] != nw {
				t.Errorf("%+v: %d %s, want %d (fused operators %v)", c, ops[op], op, nw, ops)
			}
		}
		gelus := 0
		for _, n := range fused.nodes {
			if n.Op == opDense && n.Attrs["activation"].S != "" {
				gelus++
			}
		}
		if gelus != 1 || len(fused.nodes) != 15 {
			t.Errorf("%+v: %d Dense with a GELU, %d nodes: %v", c, gelus, len(fused.nodes), ops)
		}
		for _, bs := range [][2]int{{1, 1}, {2, 9}, {1, 70}} {
			x := randTensor(r, bs[0], bs[1], 48)
			mask := NewTensor(Float32, bs[0], 1, 1, bs[1])
			if bs[0] > 1 && bs[1] > 2 {
				mask.Float32s()[2*bs[1]-1] = -math.MaxFloat32
			}
			sameRuns(t, fmt.Sprintf("%+v B%d S%d", c, bs[0], bs[1]), fused, plain, []*Tensor{x, mask}, 1e-5)
		}
	}
}

// TestLayerNormalization checks opset 17's operator against the formula,
// with its optional outputs, over the last axis and the last two.
func TestLayerNormalization(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	x := randTensor(r, 2, 3, 5)
	for _, axis := range []int64{-1, 1} {
		n := 5
		if axis == 1 {
			n = 15
		}
		sc, bi := randTensor(r, n), randTensor(r, n)
		if axis == 1 {
			sc.Shape, bi.Shape = []int{3, 5}, []int{3, 5}
		}
		m, feed := nodeGraph(t, 17, "LayerNormalization", map[string]Attr{"axis": intAttr(axis), "epsilon": floatAttr(1e-3)},
			[]*Tensor{x, sc, bi}, []bool{false, true, true}, 3)
		out := run1(t, m, feed)
		xs, ys, means, invs := x.Float32s(), out[0].Float32s(), out[1].Float32s(), out[2].Float32s()
		rows := len(xs) / n
		if len(means) != rows || len(invs) != rows {
			t.Fatalf("axis %d: Mean %v, InvStdDev %v", axis, out[1].Shape, out[2].Shape)
		}
		for i := 0; i < rows; i++ {
			mean, vr := 0.0, 0.0
			for j := 0; j < n; j++ {
				mean += float64(xs[i*n+j])
			}
			mean /= float64(n)
			for j := 0; j < n; j++ {
				d := float64(xs[i*n+j]) - mean
				vr += d * d
			}
			inv := 1 / math.Sqrt(vr/float64(n)+1e-3)
			if math.Abs(float64(means[i])-mean) > 1e-6 || math.Abs(float64(invs[i])-inv) > 1e-5*inv {
				t.Errorf("axis %d row %d: mean %g inv %g, want %g %g", axis, i, means[i], invs[i], mean, inv)
			}
			for j := 0; j < n; j++ {
				want := (float64(xs[i*n+j])-mean)*inv*float64(sc.Float32s()[j]) + float64(bi.Float32s()[j])
				if math.Abs(float64(ys[i*n+j])-want) > 1e-5*math.Max(1, math.Abs(want)) {
					t.Errorf("axis %d [%d,%d]: %g, want %g", axis, i, j, ys[i*n+j], want)
				}
			}
		}
	}
	// Scale that does not broadcast to the normalised shape.
	if _, _, err := tryLoadOp(17, "LayerNormalization", nil, []*Tensor{x, randTensor(r, 4)}, []bool{false, true}, Float32); err == nil {
		t.Error("Scale [4] for a normalised shape [5] was accepted")
	}
}

// BenchmarkAttention: the fused kernel at BERT-base-like and GPT-2 shapes
// (one sequence, 12 heads), and a long causal one.
func BenchmarkAttention(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, c := range []attnCase{
		{b: 1, h: 12, sq: 128, sk: 128, d: 32},
		{b: 1, h: 12, sq: 128, sk: 128, d: 64, cond: "causal"},
		{b: 1, h: 12, sq: 1024, sk: 1024, d: 64, cond: "causal"},
	} {
		g, ts, ins := c.graph(r)
		m, err := Load(g, ts, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("h%d_s%d_d%d_%s", c.h, c.sq, c.d, c.cond), func(b *testing.B) {
			out, err := m.Run(context.Background(), ins, nil)
			if err != nil {
				b.Fatal(err)
			}
			flops, _, _ := m.Cost(ins)
			for b.Loop() {
				if out, err = m.Run(context.Background(), ins, out); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// gpt2Attention is GPT-2's attention with its cache as torch exports it:
// the new keys and values concatenated to the past ones (the Concat of
// keys also a graph output, the present), the divisor computed from v's
// shape, and the causal mask sliced out of a constant lower-triangular
// buffer by shapes only a plan knows.
func gpt2Attention(r *rand.Rand, h, d, n int) (*Graph, map[string]*Tensor) {
	g := &Graph{Opset: 14}
	for _, name := range []string{"xq", "xk", "xv"} {
		g.Inputs = append(g.Inputs, Value{Name: name, DType: Float32, Shape: []int64{1, -1, int64(h), int64(d)}})
	}
	for _, name := range []string{"past_k", "past_v"} {
		g.Inputs = append(g.Inputs, Value{Name: name, DType: Float32, Shape: []int64{1, int64(h), -1, int64(d)}})
	}
	bias := NewTensor(Bool, 1, 1, n, n)
	for i := 0; i < n; i++ {
		for j := 0; j <= i; j++ {
			Data[bool](bias)[i*n+j] = true
		}
	}
	ts := map[string]*Tensor{
		"bias": bias, "i2": TensorFrom([]int{}, []int64{2}), "i3": TensorFrom([]int{}, []int64{3}),
		"ax0": i64T(0), "ax2": i64T(2), "ax3": i64T(3), "zero": i64T(0), "fill": scalarT(-math.MaxFloat32),
	}
	node := func(op string, in []string, out string, attrs map[string]Attr) {
		g.Nodes = append(g.Nodes, Node{Name: out, Op: op, Inputs: in, Outputs: []string{out}, Attrs: attrs})
	}
	perm := func(p ...int64) map[string]Attr { return map[string]Attr{"perm": ints(p...)} }
	node("Transpose", []string{"xq"}, "q", perm(0, 2, 1, 3))
	node("Transpose", []string{"xk"}, "kn", perm(0, 2, 1, 3))
	node("Transpose", []string{"xv"}, "vn", perm(0, 2, 1, 3))
	node("Concat", []string{"past_k", "kn"}, "present_k", map[string]Attr{"axis": intAttr(-2)})
	node("Concat", []string{"past_v", "vn"}, "present_v", map[string]Attr{"axis": intAttr(-2)})
	node("Transpose", []string{"present_k"}, "kt", perm(0, 1, 3, 2))
	node("MatMul", []string{"q", "kt"}, "s", nil)
	node("Shape", []string{"present_v"}, "shv", nil)
	node("Gather", []string{"shv", "i3"}, "dd", map[string]Attr{"axis": intAttr(0)})
	node("Cast", []string{"dd"}, "df", map[string]Attr{"to": intAttr(int64(Float32))})
	node("Sqrt", []string{"df"}, "sd", nil)
	node("Div", []string{"s", "sd"}, "s2", nil)
	node("Shape", []string{"q"}, "shq", nil)
	node("Gather", []string{"shq", "i2"}, "sq", map[string]Attr{"axis": intAttr(0)})
	node("Shape", []string{"present_k"}, "shk", nil)
	node("Gather", []string{"shk", "i2"}, "sk", map[string]Attr{"axis": intAttr(0)})
	node("Sub", []string{"sk", "sq"}, "st", nil)
	node("Unsqueeze", []string{"st", "ax0"}, "st1", nil)
	node("Unsqueeze", []string{"sk", "ax0"}, "sk1", nil)
	node("Slice", []string{"bias", "st1", "sk1", "ax2"}, "c1", nil)
	node("Slice", []string{"c1", "zero", "sk1", "ax3"}, "c2", nil)
	node("Where", []string{"c2", "s2", "fill"}, "w", nil)
	node("Softmax", []string{"w"}, "p", map[string]Attr{"axis": intAttr(-1)})
	node("MatMul", []string{"p", "present_v"}, "o", nil)
	node("Transpose", []string{"o"}, "out", perm(0, 2, 1, 3))
	g.Outputs = []Value{{Name: "out", DType: Float32}, {Name: "present_k", DType: Float32}, {Name: "present_v", DType: Float32}}
	return g, ts
}

// TestAttentionFusionWithCache: GPT-2's pattern fuses (its causal mask
// recognised when planned) and equals the unfused graph for a prompt
// (an empty past) and for decoding steps with a past.
func TestAttentionFusionWithCache(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	const h, d, n = 3, 16, 64
	g, ts := gpt2Attention(r, h, d, n)
	fused, plain := loadBoth(t, g, ts)
	if ops := opCount(fused); ops[opAttention] != 1 || ops["Softmax"] != 0 || ops["Where"] != 0 {
		t.Fatalf("fused operators %v, want one aiaas.Attention", ops)
	}
	for _, c := range [][2]int{{0, 5}, {5, 1}, {7, 3}, {0, 1}, {40, 1}} {
		past, sq := c[0], c[1]
		ins := []*Tensor{randTensor(r, 1, sq, h, d), randTensor(r, 1, sq, h, d), randTensor(r, 1, sq, h, d),
			randTensor(r, 1, h, past, d), randTensor(r, 1, h, past, d)}
		sameRuns(t, fmt.Sprintf("past %d, %d new", past, sq), fused, plain, ins, 1e-5)
		p, err := fused.planFor(ins)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range p.steps {
			if s.node.Op == opAttention {
				if s.in[4] < 0 || p.vals[s.in[4]].c == nil {
					t.Errorf("past %d, %d new: the causal condition is not a plan constant", past, sq)
				}
			}
		}
	}
}
