package graph

import (
	"math"

	"github.com/aiaas/aiaas/nn/kernels"
)

// Unary element-wise operators. Floats compute in their own type where
// the operation is exact or hot (Relu, Neg, Abs, Exp, Sigmoid, Tanh), in
// float64 rounded back otherwise; Relu, Neg, Abs and Sign also take
// integers.

func init() {
	register("Relu", 6, withHalf(unaryBuild(buildRelu)))
	register("Relu", 14, withHalf(unaryBuild(buildRelu))) // integer types
	register("LeakyRelu", 6, withHalf(unaryBuild(buildLeakyRelu)))
	register("Sigmoid", 6, withHalf(unaryBuild(floatOp(sigmoidF32, sigmoid64))))
	register("HardSigmoid", 6, withHalf(unaryBuild(buildHardSigmoid)))
	register("HardSwish", 14, withHalf(unaryBuild(buildHardSwish)))
	register("Tanh", 6, withHalf(unaryBuild(floatOp(tanhF32, math.Tanh))))
	register("Erf", 9, withHalf(unaryBuild(floatOp(nil, math.Erf))))
	register("Exp", 6, withHalf(unaryBuild(floatOp(expF32, math.Exp))))
	register("Log", 6, withHalf(unaryBuild(floatOp(nil, math.Log))))
	register("Sqrt", 6, withHalf(unaryBuild(floatOp(sqrtF32, math.Sqrt))))
	register("Reciprocal", 6, withHalf(unaryBuild(floatOp(reciprocalF32, func(x float64) float64 { return 1 / x }))))
	register("Floor", 6, withHalf(unaryBuild(floatOp(nil, math.Floor))))
	register("Ceil", 6, withHalf(unaryBuild(floatOp(nil, math.Ceil))))
	register("Neg", 6, withHalf(unaryBuild(buildNeg)))
	register("Abs", 6, withHalf(unaryBuild(buildAbs)))
	register("Sign", 9, withHalf(unaryBuild(buildSign)))
	register("Softplus", 1, withHalf(unaryBuild(floatOp(nil, softplus))))
	register("Elu", 6, withHalf(unaryBuild(buildElu)))
	register("Selu", 6, withHalf(unaryBuild(buildSelu)))
	register("Not", 1, buildNot)
	register("Clip", 6, withHalf(buildClip6))
	register("Clip", 11, withHalf(buildClip11))
	register("Clip", 12, withHalf(buildClip11)) // integer types
}

// unaryFuncs is one operator on the types it takes: a float32 loop (or
// nil: f64 rounded), a float64 function, and a kernel maker for the
// integer types (or nil: floats only).
type unaryFuncs struct {
	f32  func(o, x []float32)
	f64  func(x float64) float64
	ints func(dt DType) kernelFunc
}

// unaryBuild plans an element-wise operator from the functions mk gives
// for the node's attributes.
func unaryBuild(mk func(b *builder) unaryFuncs) buildFunc {
	return func(b *builder) {
		if !b.arity(1, 1, 1, 1) {
			return
		}
		fs := mk(b)
		if b.failed() {
			return
		}
		x := b.in[0]
		var k kernelFunc
		switch x.dt {
		case Float32:
			f32 := fs.f32
			if f32 == nil {
				f64 := fs.f64
				f32 = func(o, x []float32) {
					o = o[:len(x)]
					for i, v := range x {
						o[i] = float32(f64(float64(v)))
					}
				}
			}
			k = func(in, out []*Tensor, _ *kctx) error {
				f32(view[float32](out[0].data), view[float32](in[0].data))
				return nil
			}
		case Float64:
			f64 := fs.f64
			k = func(in, out []*Tensor, _ *kctx) error {
				xs := view[float64](in[0].data)
				o := view[float64](out[0].data)[:len(xs)]
				for i, v := range xs {
					o[i] = f64(v)
				}
				return nil
			}
		default:
			if fs.ints != nil {
				k = fs.ints(x.dt)
			}
		}
		if k == nil {
			types := []DType{Float32, Float64}
			if fs.ints != nil {
				types = nil
				for _, d := range numericTypes {
					if d.isFloat() || fs.ints(d) != nil {
						types = append(types, d)
					}
				}
			}
			b.unsupported("element type %v; implemented for %v", x.dt, types)
			return
		}
		b.setOut(0, x.dt, x.shape)
		b.run(k)
		b.flops = float64(x.numel())
	}
}

// floatOp is an operator without attributes on floats.
func floatOp(f32 func(o, x []float32), f64 func(float64) float64) func(*builder) unaryFuncs {
	return func(*builder) unaryFuncs { return unaryFuncs{f32: f32, f64: f64} }
}

// intUnaryKernel maps every element of an integer tensor with f.
func intUnaryKernel[T numeric](f func(T) T) kernelFunc {
	return func(in, out []*Tensor, _ *kctx) error {
		xs := view[T](in[0].data)
		o := view[T](out[0].data)[:len(xs)]
		for i, v := range xs {
			o[i] = f(v)
		}
		return nil
	}
}

// intKernels returns the kernel of f (an integer function made generic
// by mk) for dt, signed types only unless unsigned.
func intKernels(dt DType, unsigned bool, k8 func() kernelFunc, k16 func() kernelFunc, k32 func() kernelFunc, k64 func() kernelFunc,
	u8 func() kernelFunc, u16 func() kernelFunc, u32 func() kernelFunc, u64 func() kernelFunc) kernelFunc {
	switch dt {
	case Int8:
		return k8()
	case Int16:
		return k16()
	case Int32:
		return k32()
	case Int64:
		return k64()
	}
	if !unsigned {
		return nil
	}
	switch dt {
	case Uint8:
		return u8()
	case Uint16:
		return u16()
	case Uint32:
		return u32()
	case Uint64:
		return u64()
	}
	return nil
}

// intOp returns the integer kernels of a generic function f, for signed
// types and, when unsigned, unsigned ones.
func intOp(unsigned bool, f8 func(int8) int8, f16 func(int16) int16, f32 func(int32) int32, f64 func(int64) int64,
	u8 func(uint8) uint8, u16 func(uint16) uint16, u32 func(uint32) uint32, u64 func(uint64) uint64) func(DType) kernelFunc {
	return func(dt DType) kernelFunc {
		return intKernels(dt, unsigned,
			func() kernelFunc { return intUnaryKernel(f8) }, func() kernelFunc { return intUnaryKernel(f16) },
			func() kernelFunc { return intUnaryKernel(f32) }, func() kernelFunc { return intUnaryKernel(f64) },
			func() kernelFunc { return intUnaryKernel(u8) }, func() kernelFunc { return intUnaryKernel(u16) },
			func() kernelFunc { return intUnaryKernel(u32) }, func() kernelFunc { return intUnaryKernel(u64) })
	}
}

func reluT[T numeric](x T) T { return max(x, 0) }

func negT[T numeric](x T) T { return -x }

func absT[T numeric](x T) T {
	if x < 0 {
		return -x
	}
	return x
}

func signT[T numeric](x T) T {
	switch {
	case x > 0:
		return 1
	case x < 0:
		m := T(0)
		m-- // -1 (unsigned types never get here)
		return m
	}
	return x // 0, or NaN
}

func identT[T numeric](x T) T { return x }

func buildRelu(b *builder) unaryFuncs {
	return unaryFuncs{
		f32:  reluF32,
		f64:  func(x float64) float64 { return max(x, 0) },
		ints: intOp(false, reluT[int8], reluT[int16], reluT[int32], reluT[int64], nil, nil, nil, nil),
	}
}

// reluF32 is max(x, 0): the builtin compiles to branch-free code, four
// to eight times faster than a test on the sign when signs are random.
// NaN stays NaN.
func reluF32(o, x []float32) {
	o = o[:len(x)]
	copy(o, x)
	kernels.ApplyActivation(o, &reluEpilogue)
}

var reluEpilogue = kernels.Epilogue{Act: kernels.ReLU}

func buildNeg(b *builder) unaryFuncs {
	return unaryFuncs{
		f32: func(o, x []float32) {
			o = o[:len(x)]
			for i, v := range x {
				o[i] = -v
			}
		},
		f64:  func(x float64) float64 { return -x },
		ints: intOp(false, negT[int8], negT[int16], negT[int32], negT[int64], nil, nil, nil, nil),
	}
}

func buildAbs(b *builder) unaryFuncs {
	return unaryFuncs{
		f32: func(o, x []float32) {
			o = o[:len(x)]
			for i, v := range x {
				o[i] = math.Float32frombits(math.Float32bits(v) &^ (1 << 31))
			}
		},
		f64:  math.Abs,
		ints: intOp(true, absT[int8], absT[int16], absT[int32], absT[int64], identT[uint8], identT[uint16], identT[uint32], identT[uint64]),
	}
}

func buildSign(b *builder) unaryFuncs {
	return unaryFuncs{
		f64:  signT[float64],
		ints: intOp(true, signT[int8], signT[int16], signT[int32], signT[int64], signT[uint8], signT[uint16], signT[uint32], signT[uint64]),
	}
}

func buildLeakyRelu(b *builder) unaryFuncs {
	alpha := b.attrFloat("alpha", 0.01)
	return unaryFuncs{
		f32: func(o, x []float32) {
			o = o[:len(x)]
			for i, v := range x {
				o[i] = max(v, 0) + alpha*min(v, 0) // branch-free, as Relu
			}
		},
		f64: func(x float64) float64 {
			if x < 0 {
				return x * float64(alpha)
			}
			return x
		},
	}
}

// buildHardSigmoid: max(0, min(1, alpha·x + beta)).
func buildHardSigmoid(b *builder) unaryFuncs {
	alpha, beta := b.attrFloat("alpha", 0.2), b.attrFloat("beta", 0.5)
	return hardSigmoid(alpha, beta, false)
}

// buildHardSwish: x · HardSigmoid(x) with alpha 1/6 and beta 1/2.
func buildHardSwish(b *builder) unaryFuncs {
	return hardSigmoid(1.0/6, 0.5, true)
}

func hardSigmoid(alpha, beta float32, swish bool) unaryFuncs {
	return unaryFuncs{
		f32: func(o, x []float32) {
			o = o[:len(x)]
			if swish {
				for i, v := range x {
					o[i] = v * min(max(alpha*v+beta, 0), 1)
				}
				return
			}
			for i, v := range x {
				o[i] = min(max(alpha*v+beta, 0), 1) // NaN stays NaN
			}
		},
		f64: func(x float64) float64 {
			h := min(max(float64(alpha)*x+float64(beta), 0), 1)
			if swish {
				h *= x
			}
			return h
		},
	}
}

// buildElu: x < 0 ? alpha·(eˣ − 1) : x.
func buildElu(b *builder) unaryFuncs {
	alpha := float64(b.attrFloat("alpha", 1))
	return unaryFuncs{f64: func(x float64) float64 {
		if x < 0 {
			return alpha * math.Expm1(x)
		}
		return x
	}}
}

// buildSelu: gamma·(x > 0 ? x : alpha·(eˣ − 1)).
func buildSelu(b *builder) unaryFuncs {
	alpha := float64(b.attrFloat("alpha", 1.67326319217681884765625))
	gamma := float64(b.attrFloat("gamma", 1.05070102214813232421875))
	return unaryFuncs{f64: func(x float64) float64 {
		if x > 0 {
			return gamma * x
		}
		return gamma * alpha * math.Expm1(x)
	}}
}

// softplus is log(1 + eˣ), without overflow for large x.
func softplus(x float64) float64 {
	if x > 0 {
		return x + math.Log1p(math.Exp(-x))
	}
	return math.Log1p(math.Exp(x))
}

func sigmoid64(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

func sqrtF32(o, x []float32) {
	o = o[:len(x)]
	for i, v := range x {
		o[i] = float32(math.Sqrt(float64(v)))
	}
}

func reciprocalF32(o, x []float32) {
	o = o[:len(x)]
	for i, v := range x {
		o[i] = 1 / v
	}
}

// The float32 exponential: Cody–Waite reduction x = n·ln2 + r, |r| ≤
// ln2/2, and Cephes' degree-7 minimax polynomial for eʳ, in float32
// (within 2 ulp; TestExpF32 checks 1e-6 relative against math.Exp). Results
// outside the normal range (x beyond [−87, 88]: underflow to subnormals,
// overflow, NaN) take math.Exp.
const (
	expLo      = -87
	expHi      = 88
	log2e      = 1.44269504088896341
	ln2Hi      = 0.693359375
	ln2Lo      = -2.12194440e-4
	roundMagic = 12582912 // 1.5·2²³: adding it rounds a float32 below 2²² to an integer
)

// expF32 computes o = eˣ.
func expF32(o, x []float32) {
	o = o[:len(x)]
	for i, v := range x {
		if !(v >= expLo && v <= expHi) {
			o[i] = float32(math.Exp(float64(v)))
			continue
		}
		n := v*log2e + roundMagic
		n -= roundMagic
		r := v - n*ln2Hi
		r -= n * ln2Lo
		// Estrin's scheme: a shorter dependency chain than Horner's,
		// which nearly halves the time of this scalar loop.
		r2 := r * r
		r4 := r2 * r2
		p := (5.0000001201e-1 + 1.6666665459e-1*r) + r2*(4.1665795894e-2+8.3334519073e-3*r) + r4*(1.3981999507e-3+1.9875691500e-4*r)
		p = p*r2 + (r + 1)
		o[i] = p * math.Float32frombits(uint32(int32(n)+127)<<23)
	}
}

// chunk is the block the float32 transcendental loops work in, on the
// stack: small enough to stay in L1 between their passes.
const chunk = 256

// sigmoidF32 computes 1/(1 + e⁻ˣ) from e^−|x|, without cancellation on
// either side.
func sigmoidF32(o, x []float32) {
	var buf [chunk]float32
	o = o[:len(x)]
	for len(x) > 0 {
		n := min(len(x), chunk)
		xs, os, e := x[:n], o[:n], buf[:n]
		for i, v := range xs {
			e[i] = math.Float32frombits(math.Float32bits(v) | 1<<31)
		}
		expF32(e, e)
		for i, v := range xs {
			// x ≥ 0: 1/(1 + e); x < 0: e/(1 + e); chosen by the sign
			// bit, without a branch.
			s := 1 / (1 + e[i])
			neg := uint32(int32(math.Float32bits(v)) >> 31)
			os[i] = math.Float32frombits(math.Float32bits(s)&^neg | math.Float32bits(e[i]*s)&neg)
		}
		x, o = x[n:], o[n:]
	}
}

// tanhF32 computes sign(x)·(1 − e)/(1 + e) with e = e^−2|x|, and near
// zero, where that cancels, the series x − x³/3 + 2x⁵/15 − 17x⁷/315
// (its next term is below 2e-10 there); both, and a branch-free choice.
func tanhF32(o, x []float32) {
	var buf [chunk]float32
	o = o[:len(x)]
	for len(x) > 0 {
		n := min(len(x), chunk)
		xs, os, e := x[:n], o[:n], buf[:n]
		for i, v := range xs {
			e[i] = -2 * math.Float32frombits(math.Float32bits(v)&^(1<<31))
		}
		expF32(e, e)
		for i, v := range xs {
			bits := math.Float32bits(v)
			sign := bits & (1 << 31)
			big := math.Float32bits((1-e[i])/(1+e[i])) | sign
			x2 := v * v
			small := math.Float32bits(v * (1 + x2*(-1.0/3+x2*(2.0/15+x2*(-17.0/315)))))
			near := uint32(int32((bits&^(1<<31))-math.Float32bits(0.125)) >> 31) // |x| < 0.125; NaN is not
			os[i] = math.Float32frombits(big&^near | small&near)
		}
		x, o = x[n:], o[n:]
	}
}

// buildNot: logical negation of BOOL.
func buildNot(b *builder) {
	if !b.arity(1, 1, 1, 1) || !b.wantType(0, Bool) {
		return
	}
	x := b.in[0]
	b.setOut(0, Bool, x.shape)
	b.run(func(in, out []*Tensor, _ *kctx) error {
		xs := view[uint8](in[0].data)
		o := view[bool](out[0].data)[:len(xs)]
		for i, v := range xs {
			o[i] = v == 0
		}
		return nil
	})
}

// Clip: opset 6 takes min and max as attributes (floats), 11 as optional
// scalar inputs, which may be known only per request.
func buildClip6(b *builder) {
	if !b.arity(1, 1, 1, 1) || !b.wantType(0, Float32, Float64) {
		return
	}
	lo := float64(b.attrFloat("min", -math.MaxFloat32))
	hi := float64(b.attrFloat("max", math.MaxFloat32))
	buildClip(b, &lo, &hi)
}

func buildClip11(b *builder) {
	if !b.arity(1, 3, 1, 1) || !b.wantType(0, numericTypes...) {
		return
	}
	for i := 1; i <= 2; i++ {
		if v := b.input(i); v != nil {
			if !b.sameType(0, i) {
				return
			}
			if v.numel() != 1 {
				b.errf("input %d has shape %v, want a scalar", i, v.shape)
				return
			}
		}
	}
	buildClip(b, nil, nil)
}

// buildClip plans min(max(x, lo), hi): with lo and hi given (opset 6), or
// from inputs 1 and 2 where present.
func buildClip(b *builder, lo, hi *float64) {
	x := b.in[0]
	b.setOut(0, x.dt, x.shape)
	b.flops = float64(x.numel())
	var k kernelFunc
	switch x.dt {
	case Float32:
		k = clipKernel[float32](lo, hi)
	case Float64:
		k = clipKernel[float64](lo, hi)
	case Int8:
		k = clipKernel[int8](lo, hi)
	case Int16:
		k = clipKernel[int16](lo, hi)
	case Int32:
		k = clipKernel[int32](lo, hi)
	case Int64:
		k = clipKernel[int64](lo, hi)
	case Uint8:
		k = clipKernel[uint8](lo, hi)
	case Uint16:
		k = clipKernel[uint16](lo, hi)
	case Uint32:
		k = clipKernel[uint32](lo, hi)
	case Uint64:
		k = clipKernel[uint64](lo, hi)
	}
	b.run(k)
}

// limitsT returns the smallest and largest values of T (±Inf for floats).
func limitsT[T numeric]() (T, T) {
	var lo, hi any
	switch any(T(0)).(type) {
	case float32:
		lo, hi = float32(math.Inf(-1)), float32(math.Inf(1))
	case float64:
		lo, hi = math.Inf(-1), math.Inf(1)
	case int8:
		lo, hi = int8(math.MinInt8), int8(math.MaxInt8)
	case int16:
		lo, hi = int16(math.MinInt16), int16(math.MaxInt16)
	case int32:
		lo, hi = int32(math.MinInt32), int32(math.MaxInt32)
	case int64:
		lo, hi = int64(math.MinInt64), int64(math.MaxInt64)
	case uint8:
		lo, hi = uint8(0), uint8(math.MaxUint8)
	case uint16:
		lo, hi = uint16(0), uint16(math.MaxUint16)
	case uint32:
		lo, hi = uint32(0), uint32(math.MaxUint32)
	case uint64:
		lo, hi = uint64(0), uint64(math.MaxUint64)
	}
	return lo.(T), hi.(T)
}

func clipKernel[T numeric](lo6, hi6 *float64) kernelFunc {
	lo, hi := limitsT[T]()
	if lo6 != nil {
		lo, hi = T(*lo6), T(*hi6)
	}
	return func(in, out []*Tensor, _ *kctx) error {
		l, h := lo, hi
		if len(in) > 1 && in[1] != nil {
			l = view[T](in[1].data)[0]
		}
		if len(in) > 2 && in[2] != nil {
			h = view[T](in[2].data)[0]
		}
		xs := view[T](in[0].data)
		o := view[T](out[0].data)[:len(xs)]
		for i, v := range xs {
			o[i] = min(max(v, l), h) // NaN stays NaN; l > h gives h
		}
		return nil
	}
}
