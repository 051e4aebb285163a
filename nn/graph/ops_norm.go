package graph

import (
	"math"
	"unsafe"
)

// Normalizations with statistics given or per instance:
// BatchNormalization in its inference form, InstanceNormalization, LRN.
func init() {
	// BatchNormalization: 7 drops is_test (more than one output means
	// training) and keeps spatial, 9 drops spatial, 14 adds training_mode
	// and lets the statistics have their own type, 15 the scale and bias.
	for _, v := range []int{7, 9, 14, 15} {
		register("BatchNormalization", v, buildBatchNorm(v))
	}
	register("InstanceNormalization", 6, buildInstanceNorm)
	// LRN: 13 only adds bfloat16.
	register("LRN", 1, buildLRN)
	register("LRN", 13, buildLRN)
}

// buildBatchNorm plans y = scale·(x − mean)/√(var + ε) + B per channel
// (per channel and spatial position with opset 7's spatial = 0), as
// y = x·a + b with a and b computed once when the parameters are
// constants, per run otherwise. Training (statistics from the batch,
// running averages out) is not implemented.
func buildBatchNorm(ver int) buildFunc {
	return func(b *builder) {
		maxOut := 5
		if ver >= 14 {
			maxOut = 3
		}
		if !b.arity(5, 5, 1, maxOut) {
			return
		}
		training := false
		if ver >= 14 {
			switch tm := b.attrInt("training_mode", 0); tm {
			case 0:
			case 1:
				training = true
			default:
				b.bad("training_mode %d", tm)
				return
			}
		}
		extra := false
		for i := 1; i < len(b.out); i++ {
			if b.out[i] != nil {
				extra = true
			}
		}
		switch {
		case training:
			b.unsupported("training_mode 1 (batch statistics); aiaas runs inference only")
			return
		case extra && ver >= 14:
			b.bad("running_mean and running_var are outputs of training_mode 1 only")
			return
		case extra:
			b.unsupported("training mode (more than one output); aiaas runs inference only")
			return
		}
		for i := range 5 {
			if !b.wantType(i, Float32, Float64) {
				return
			}
		}
		// Types: one T for all before 14; then X and the scale and bias
		// share T, the statistics U (14); scale and bias T1 (15).
		switch {
		case ver < 14:
			for i := 1; i < 5; i++ {
				if !b.sameType(0, i) {
					return
				}
			}
		case ver == 14:
			if !b.sameType(0, 1) || !b.sameType(0, 2) || !b.sameType(3, 4) {
				return
			}
		default:
			if !b.sameType(1, 2) || !b.sameType(3, 4) {
				return
			}
		}
		x := b.in[0]
		if len(x.shape) < 2 {
			b.errf("input of rank %d; want N, C, …", len(x.shape))
			return
		}
		c := x.shape[1]
		inner := 1
		for _, d := range x.shape[2:] {
			inner *= d
		}
		spatial := ver >= 9 || b.attrInt("spatial", 1) != 0
		params := c
		if !spatial {
			params = c * inner
		}
		for i := 1; i < 5; i++ {
			if n := b.in[i].numel(); n != params {
				b.errf("input %d has shape %v; want %d values (%s)", i, b.in[i].shape, params, map[bool]string{true: "one per channel", false: "C × spatial, spatial = 0"}[spatial])
				return
			}
		}
		eps := float64(b.attrFloat("epsilon", 1e-5))
		b.setOut(0, x.dt, x.shape)
		b.flops = 2 * float64(x.numel())
		// Per image: params groups of rep elements.
		rep := inner
		if !spatial {
			rep = 1
		}
		if x.dt == Float64 {
			bnKernel[float64](b, params, rep, eps)
		} else {
			bnKernel[float32](b, params, rep, eps)
		}
	}
}

// bnCoef is a batch normalization's y = x·a + b, per parameter index.
type bnCoef[T float32 | float64] struct{ a, b []T }

// fill computes a = scale/√(var + ε) and b = B − mean·a in float64 from
// the four parameter tensors (each FP32 or FP64).
func (c *bnCoef[T]) fill(scale, bias, mean, vr *Tensor, eps float64) {
	for j := range c.a {
		a := paramAt(scale, j) / math.Sqrt(paramAt(vr, j)+eps)
		c.a[j] = T(a)
		c.b[j] = T(paramAt(bias, j) - paramAt(mean, j)*a)
	}
}

// paramAt reads element j of an FP32 or FP64 tensor as float64.
func paramAt(t *Tensor, j int) float64 {
	if t.DType == Float64 {
		return view[float64](t.data)[j]
	}
	return float64(view[float32](t.data)[j])
}

func bnKernel[T float32 | float64](b *builder, params, rep int, eps float64) {
	consts := true
	for i := 1; i < 5; i++ {
		if b.in[i].c == nil {
			consts = false
		}
	}
	var fixed *bnCoef[T]
	if consts {
		fixed = &bnCoef[T]{a: make([]T, params), b: make([]T, params)}
		fixed.fill(b.in[1].c, b.in[2].c, b.in[3].c, b.in[4].c, eps)
	} else {
		var z T
		b.scratch = 2 * params * int(unsafe.Sizeof(z))
	}
	b.run(func(in, out []*Tensor, k *kctx) error {
		co := fixed
		var local bnCoef[T]
		if co == nil {
			s := view[T](k.scratch)
			local = bnCoef[T]{a: s[:params], b: s[params : 2*params]}
			local.fill(in[1], in[2], in[3], in[4], eps)
			co = &local
		}
		bnApply(view[T](out[0].data), view[T](in[0].data), co.a, co.b, rep)
		return nil
	})
}

// bnApply computes y = x·a[j] + b[j] over images of len(a)·rep elements,
// each parameter j covering rep consecutive elements.
func bnApply[T float32 | float64](y, x, a, b []T, rep int) {
	per := len(a) * rep
	if per == 0 {
		return
	}
	for img := 0; img+per <= len(x); img += per {
		xs, ys := x[img:img+per], y[img:img+per]
		if rep == 1 {
			ys = ys[:len(xs)]
			a, b := a[:len(xs)], b[:len(xs)]
			for i, v := range xs {
				ys[i] = v*a[i] + b[i]
			}
			continue
		}
		for j := range a {
			aj, bj := a[j], b[j]
			xp := xs[j*rep : (j+1)*rep]
			yp := ys[j*rep : (j+1)*rep]
			yp = yp[:len(xp)]
			for i, v := range xp {
				yp[i] = v*aj + bj
			}
		}
	}
}

// buildInstanceNorm plans y = scale·(x − mean)/√(var + ε) + B with mean and
// (population) variance over the spatial axes of each image and channel,
// computed in float64, two passes.
func buildInstanceNorm(b *builder) {
	if !b.arity(3, 3, 1, 1) || !b.wantType(0, Float32, Float64) || !b.sameType(0, 1) || !b.sameType(0, 2) {
		return
	}
	x := b.in[0]
	if len(x.shape) < 3 {
		b.errf("input of rank %d; want N, C and spatial axes", len(x.shape))
		return
	}
	c := x.shape[1]
	for i := 1; i < 3; i++ {
		if b.in[i].numel() != c {
			b.errf("input %d has shape %v; want one value per channel (%d)", i, b.in[i].shape, c)
			return
		}
	}
	eps := float64(b.attrFloat("epsilon", 1e-5))
	inner := 1
	for _, d := range x.shape[2:] {
		inner *= d
	}
	b.setOut(0, x.dt, x.shape)
	b.flops = 5 * float64(x.numel())
	if x.dt == Float64 {
		b.run(func(in, o []*Tensor, _ *kctx) error {
			instanceNorm(view[float64](o[0].data), view[float64](in[0].data), view[float64](in[1].data), view[float64](in[2].data), c, inner, eps)
			return nil
		})
		return
	}
	b.run(func(in, o []*Tensor, _ *kctx) error {
		instanceNorm(view[float32](o[0].data), view[float32](in[0].data), view[float32](in[1].data), view[float32](in[2].data), c, inner, eps)
		return nil
	})
}

func instanceNorm[T float32 | float64](y, x, scale, bias []T, c, inner int, eps float64) {
	if inner == 0 {
		return
	}
	for p := 0; p*inner < len(x); p++ {
		xp := x[p*inner : (p+1)*inner]
		yp := y[p*inner : (p+1)*inner]
		yp = yp[:len(xp)]
		sum := 0.0
		for _, v := range xp {
			sum += float64(v)
		}
		mean := sum / float64(inner)
		ss := 0.0
		for _, v := range xp {
			d := float64(v) - mean
			ss += d * d
		}
		ch := p % c
		a := float64(scale[ch]) / math.Sqrt(ss/float64(inner)+eps)
		a32, b32 := T(a), T(float64(bias[ch])-mean*a)
		for i, v := range xp {
			yp[i] = v*a32 + b32
		}
	}
}

// buildLRN plans local response normalization across channels:
// y = x / (bias + α/size · Σ x²)^β, the sum over channels
// c − ⌊(size−1)/2⌋ … c + ⌈(size−1)/2⌉ inside [0, C).
func buildLRN(b *builder) {
	if !b.arity(1, 1, 1, 1) || !b.wantType(0, Float32, Float64) {
		return
	}
	x := b.in[0]
	if len(x.shape) < 3 {
		b.errf("input of rank %d; want N, C and spatial axes", len(x.shape))
		return
	}
	if !b.hasAttr("size") {
		b.bad("attribute size is required")
		return
	}
	size := b.attrInt("size", 0)
	if size < 1 || size > 1<<16 {
		b.bad("size %d", size)
		return
	}
	lrn := lrnSpec{
		alpha: float64(b.attrFloat("alpha", 1e-4)), beta: float64(b.attrFloat("beta", 0.75)), bias: float64(b.attrFloat("bias", 1)),
		size: int(size), c: x.shape[1],
	}
	lrn.inner = 1
	for _, d := range x.shape[2:] {
		lrn.inner *= d
	}
	b.setOut(0, x.dt, x.shape)
	b.flops = float64(x.numel()) * float64(size+3)
	if x.dt == Float64 {
		b.run(func(in, o []*Tensor, _ *kctx) error {
			lrnRun(view[float64](o[0].data), view[float64](in[0].data), &lrn)
			return nil
		})
		return
	}
	b.run(func(in, o []*Tensor, _ *kctx) error {
		lrnRun(view[float32](o[0].data), view[float32](in[0].data), &lrn)
		return nil
	})
}

type lrnSpec struct {
	alpha, beta, bias float64
	size, c, inner    int
}

// lrnRun accumulates each channel's sum of squares in y, then scales x.
func lrnRun[T float32 | float64](y, x []T, l *lrnSpec) {
	per := l.c * l.inner
	if per == 0 {
		return
	}
	down, up := (l.size-1)/2, l.size/2 // ⌊(size−1)/2⌋, ⌈(size−1)/2⌉
	k := l.alpha / float64(l.size)
	for img := 0; img+per <= len(x); img += per {
		xs, ys := x[img:img+per], y[img:img+per]
		for c := 0; c < l.c; c++ {
			yp := ys[c*l.inner : (c+1)*l.inner]
			clear(yp)
			for i := max(0, c-down); i <= min(l.c-1, c+up); i++ {
				xp := xs[i*l.inner : (i+1)*l.inner]
				xp = xp[:len(yp)]
				for j, v := range xp {
					yp[j] += v * v
				}
			}
			xp := xs[c*l.inner : (c+1)*l.inner]
			xp = xp[:len(yp)]
			for j, v := range xp {
				t := l.bias + k*float64(yp[j])
				var d float64
				switch l.beta {
				case 0.75:
					r := math.Sqrt(t)
					d = r * math.Sqrt(r)
				case 0.5:
					d = math.Sqrt(t)
				case 1:
					d = t
				default:
					d = math.Pow(t, l.beta)
				}
				yp[j] = T(float64(v) / d)
			}
		}
	}
}
