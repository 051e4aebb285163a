package graph

import (
	"fmt"
	"math"

	"github.com/aiaas/aiaas/nn/kernels"
)

// The operators of transformer encoders and decoders that the CNN
// operators did not cover: LayerNormalization (opset 17), and the
// internal operators that fuse_transformer.go makes of the patterns
// exporters write below it — aiaas.LayerNorm (the same kernel, for any
// opset), aiaas.Gelu (x·Φ(x) in its erf and tanh forms), aiaas.Dense
// (x·W + b with W packed once, an optional GELU after it) and
// aiaas.Attention (softmax(q·kᵀ·scale + mask)·v, tiled, in
// ops_attention.go).

const (
	opLayerNorm = internalPrefix + "LayerNorm"
	opGelu      = internalPrefix + "Gelu"
	opDense     = internalPrefix + "Dense"
)

func init() {
	register("LayerNormalization", 17, withHalf(buildLayerNorm))
	register(opLayerNorm, 1, buildLayerNorm)
	register(opGelu, 1, buildGelu)
	register(opDense, 1, buildDense)
}

// buildLayerNorm: Y = (X − mean)/√(var + ε)·Scale + B over the axes from
// axis on; Mean and InvStdDev (optional outputs) keep the leading axes
// and have 1 on the others. Scale and B broadcast to X's normalised
// shape (in practice one vector of it). Statistics are accumulated in
// float64 whatever stash_type says (float32 is the only other choice for
// a float32 input, and is less exact).
func buildLayerNorm(b *builder) {
	if !b.arity(2, 3, 1, 3) || !b.wantType(0, Float32) || !b.sameType(0, 1) || !b.sameType(0, 2) {
		return
	}
	x, sc, bi := b.in[0], b.in[1], b.input(2)
	r := len(x.shape)
	if r == 0 {
		b.errf("a scalar has nothing to normalise")
		return
	}
	axis := b.normAxis(b.attrInt("axis", -1), r)
	eps := float64(b.attrFloat("epsilon", 1e-5))
	if st := b.attrInt("stash_type", 1); st != 1 && st != 11 {
		b.unsupported("stash_type %d", st)
	}
	if b.failed() {
		return
	}
	rows, _ := numel(x.shape[:axis])
	n, _ := numel(x.shape[axis:])
	norm := x.shape[axis:]
	// Scale and B as one vector of n values (or of one, broadcast):
	// their shape, broadcast to the normalised shape, must be it.
	vec := func(v *val, what string) bool {
		if v == nil {
			return true
		}
		bs, ok := broadcastShape(norm, v.shape)
		if !ok || !sameShape(bs, norm) {
			b.errf("%s %v does not broadcast to the normalised shape %v", what, v.shape, norm)
			return false
		}
		k := v.numel()
		if k != n && k != 1 {
			b.unsupported("%s %v broadcast over part of the normalised shape %v", what, v.shape, norm)
			return false
		}
		return true
	}
	if !vec(sc, "Scale") || !vec(bi, "B") {
		return
	}
	b.setOut(0, x.dt, x.shape)
	stat := append(append([]int{}, x.shape[:axis]...), make([]int, r-axis)...)
	for i := axis; i < r; i++ {
		stat[i] = 1
	}
	b.setOut(1, Float32, stat)
	b.setOut(2, Float32, stat)
	b.flops = 8 * float64(x.numel())
	hasB := bi != nil
	scalarS, scalarB := sc.numel() == 1, hasB && bi.numel() == 1
	b.run(func(in, out []*Tensor, k *kctx) error {
		xs, ys := view[float32](in[0].data), view[float32](out[0].data)
		g := view[float32](in[1].data)
		var bb []float32
		if hasB {
			bb = view[float32](in[2].data)
		}
		var means, invs []float32
		if len(out) > 1 && out[1] != nil {
			means = view[float32](out[1].data)
		}
		if len(out) > 2 && out[2] != nil {
			invs = view[float32](out[2].data)
		}
		for i := 0; i < rows; i++ {
			row, y := xs[i*n:(i+1)*n], ys[i*n:(i+1)*n]
			mean, inv := layerNormRow(y, row, eps)
			if means != nil {
				means[i] = mean
			}
			if invs != nil {
				invs[i] = inv
			}
			switch {
			case !scalarS && hasB && !scalarB:
				affineRow(y, g[:n], bb[:n])
			default:
				gs, bs := float32(1), float32(0)
				if scalarS {
					gs = g[0]
				}
				if scalarB {
					bs = bb[0]
				}
				for j, v := range y {
					gj, bj := gs, bs
					if !scalarS {
						gj = g[j]
					}
					if hasB && !scalarB {
						bj = bb[j]
					}
					y[j] = v*gj + bj
				}
			}
		}
		return nil
	})
}

// layerNormRow writes (x − mean)·inv to y, inv = 1/√(var + ε), and
// returns mean and inv: two passes over x, the sums in float64 with four
// accumulators.
func layerNormRow(y, x []float32, eps float64) (float32, float32) {
	n := len(x)
	y = y[:n]
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= n; i += 4 {
		s0 += float64(x[i])
		s1 += float64(x[i+1])
		s2 += float64(x[i+2])
		s3 += float64(x[i+3])
	}
	for ; i < n; i++ {
		s0 += float64(x[i])
	}
	mean := (s0 + s1 + s2 + s3) / float64(n)
	m32 := float32(mean)
	s0, s1, s2, s3 = 0, 0, 0, 0
	i = 0
	for ; i+4 <= n; i += 4 {
		d0, d1, d2, d3 := float64(x[i])-mean, float64(x[i+1])-mean, float64(x[i+2])-mean, float64(x[i+3])-mean
		s0 += d0 * d0
		s1 += d1 * d1
		s2 += d2 * d2
		s3 += d3 * d3
	}
	for ; i < n; i++ {
		d := float64(x[i]) - mean
		s0 += d * d
	}
	inv := float32(1 / math.Sqrt((s0+s1+s2+s3)/float64(n)+eps))
	kernels.MulAddScalarF32(y, x, inv, -m32*inv)
	return m32, inv
}

// affineRow sets y = y·g + b.
func affineRow(y, g, b []float32) {
	kernels.MulF32(y, y, g)
	kernels.AddF32(y, y, b)
}

// buildGelu: aiaas.Gelu, y = x·Φ(x) with approximate "none" (erf) or
// "tanh" (0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))).
func buildGelu(b *builder) {
	if !b.arity(1, 1, 1, 1) || !b.wantType(0, Float32) {
		return
	}
	f := geluFunc(b.attrString("approximate", "none"))
	if f == nil {
		b.bad("approximate %q", b.attrString("approximate", ""))
		return
	}
	x := b.in[0]
	b.setOut(0, x.dt, x.shape)
	b.flops = 20 * float64(x.numel())
	b.run(func(in, out []*Tensor, _ *kctx) error {
		f(view[float32](out[0].data), view[float32](in[0].data))
		return nil
	})
}

func geluFunc(approximate string) func(o, x []float32) {
	switch approximate {
	case "none":
		return geluErfF32
	case "tanh":
		return geluTanhF32
	}
	return nil
}

// geluErfF32 and geluTanhF32 are the vector kernels' GELU.
func geluErfF32(o, x []float32)  { kernels.GeluF32(o, x) }
func geluTanhF32(o, x []float32) { kernels.GeluTanhF32(o, x) }

// buildDense: aiaas.Dense(X, W, B), Y = act(X·W + B) for X [..., K], W a
// constant [K, N] and B a constant [N] (or absent): the rows of X, however
// many leading dimensions, are the rows of one product on W packed once
// per model. activation is "" or a GELU ("gelu", "gelu_tanh").
func buildDense(b *builder) {
	if !b.arity(2, 3, 1, 1) || !b.wantType(0, Float32) || !b.sameType(0, 1) || !b.sameType(0, 2) {
		return
	}
	x, w, bias := b.in[0], b.in[1], b.input(2)
	if w.c == nil || len(w.shape) != 2 || (bias != nil && (bias.c == nil || len(bias.shape) != 1)) {
		b.bad("W must be a constant matrix and B a constant vector")
		return
	}
	k, n := w.shape[0], w.shape[1]
	if len(x.shape) < 1 || x.shape[len(x.shape)-1] != k {
		b.errf("X %v times W %v: inner dimensions differ", x.shape, w.shape)
		return
	}
	if bias != nil && bias.shape[0] != n {
		b.errf("B %v for W %v", bias.shape, w.shape)
		return
	}
	var act func(o, x []float32)
	switch a := b.attrString("activation", ""); a {
	case "":
	case "gelu":
		act = geluErfF32
	case "gelu_tanh":
		act = geluTanhF32
	default:
		b.bad("activation %q", a)
		return
	}
	shape := append(append([]int{}, x.shape[:len(x.shape)-1]...), n)
	b.setOut(0, Float32, shape)
	rows := x.numel() / max(k, 1)
	b.flops = 2 * float64(rows) * float64(k) * float64(n)
	if k == 0 || n == 0 || rows == 0 {
		b.run(func(in, out []*Tensor, _ *kctx) error {
			y := view[float32](out[0].data)
			clear(y)
			if bias != nil {
				bv := bias.c.Float32s()
				for i := 0; i < rows; i++ {
					copy(y[i*n:(i+1)*n], bv)
				}
			}
			if act != nil {
				act(y, y)
			}
			return nil
		})
		return
	}
	var bt *Tensor
	if bias != nil {
		bt = bias.c
	}
	p := b.prepared(w.c, fmt.Sprintf("dense/%p", bt), func() any {
		var bv []float32
		if bt != nil {
			bv = bt.Float32s()
		}
		return kernels.Pack(w.c.Float32s(), k, n, bv)
	}).(*kernels.Packed)
	b.run(func(in, out []*Tensor, _ *kctx) error {
		xs, y := view[float32](in[0].data), view[float32](out[0].data)
		kernels.Dense(y, xs, rows, p, kernels.Linear)
		if act != nil {
			act(y, y)
		}
		return nil
	})
}
