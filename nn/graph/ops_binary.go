package graph

import (
	"math"

	"github.com/aiaas/aiaas/nn/kernels"
)

// Element-wise operators of two or more inputs with numpy broadcasting
// (opset ≥ 7; the pre-7 "broadcast"/"axis" attributes are outside the
// runtime's opsets): arithmetic, Pow, comparisons, logic, Where, the
// variadic Min/Max/Sum/Mean, and PRelu.

func init() {
	for _, op := range []struct {
		name string
		op   arithOp
	}{{"Add", opAdd}, {"Sub", opSub}, {"Mul", opMul}, {"Div", opDiv}} {
		register(op.name, 7, withHalf(arithBuild(op.op)))
	}
	register("PRelu", 7, withHalf(buildPRelu))
	register("PRelu", 9, withHalf(buildPRelu)) // integer types

	register("Pow", 7, withHalfMixed(buildPow))
	register("Pow", 12, withHalfMixed(buildPow)) // exponent of its own type

	register("Equal", 7, withHalf(compareBuild(cmpEq, false)))
	register("Equal", 11, withHalf(compareBuild(cmpEq, false))) // floats and every integer type
	register("Less", 7, withHalf(compareBuild(cmpLt, false)))
	register("Less", 9, withHalf(compareBuild(cmpLt, false))) // integer types
	register("Greater", 7, withHalf(compareBuild(cmpLt, true)))
	register("Greater", 9, withHalf(compareBuild(cmpLt, true)))
	register("LessOrEqual", 12, withHalf(compareBuild(cmpLe, false)))
	register("GreaterOrEqual", 12, withHalf(compareBuild(cmpLe, true)))

	register("And", 7, logicBuild(func(a, b uint8) bool { return a != 0 && b != 0 }))
	register("Or", 7, logicBuild(func(a, b uint8) bool { return a != 0 || b != 0 }))
	register("Xor", 7, logicBuild(func(a, b uint8) bool { return (a != 0) != (b != 0) }))

	register("Where", 9, buildWhere)
	register("Where", 16, buildWhere) // bfloat16

	for _, op := range []struct {
		name string
		op   arithOp
		mean bool
	}{{"Max", opMax, false}, {"Min", opMin, false}, {"Sum", opAdd, false}, {"Mean", opAdd, true}} {
		// Version 6 takes same-shape inputs, 8 broadcasts them: a
		// superset, so one builder serves both.
		register(op.name, 6, withHalf(variadicBuild(op.op, op.mean)))
		register(op.name, 8, withHalf(variadicBuild(op.op, op.mean)))
	}
}

// binLoops are the three run kernels of one operation on one type: both
// operands contiguous, the second one repeated, the first one repeated.
type binLoops[A, B, R any] struct {
	vv func(o []R, a []A, b []B)
	vs func(o []R, a []A, b B)
	sv func(o []R, a A, b []B)
}

// loopsOf builds the run kernels from a scalar function, for the
// operations that are not hot enough to deserve their own loops.
func loopsOf[A, B, R any](f func(a A, b B) R) binLoops[A, B, R] {
	return binLoops[A, B, R]{
		vv: func(o []R, a []A, b []B) {
			b = b[:len(a)]
			o = o[:len(a)]
			for i := range a {
				o[i] = f(a[i], b[i])
			}
		},
		vs: func(o []R, a []A, b B) {
			o = o[:len(a)]
			for i := range a {
				o[i] = f(a[i], b)
			}
		},
		sv: func(o []R, a A, b []B) {
			o = o[:len(b)]
			for i := range b {
				o[i] = f(a, b[i])
			}
		},
	}
}

// binaryKernel returns the kernel of a broadcast binary operation reading
// its operands from inputs ia and ib (swapped for Greater as Less).
func binaryKernel[A, B, R any](it *bcastIter, l binLoops[A, B, R], ia, ib int) kernelFunc {
	return func(in, out []*Tensor, _ *kctx) error {
		binaryRuns(it, l, view[A](in[ia].data), view[B](in[ib].data), view[R](out[0].data))
		return nil
	}
}

// binaryRuns computes o = l(a, b) over it (a is its input 0, b input 1).
func binaryRuns[A, B, R any](it *bcastIter, l binLoops[A, B, R], a []A, b []B, o []R) {
	if it.n == 0 {
		return
	}
	run := it.runLen()
	s0, s1 := it.runStride(0), it.runStride(1)
	if it.rank == 1 {
		binaryRun(l, o[:run], a, b, s0, s1)
		return
	}
	it.runs(func(off, i0, i1, _ int) {
		binaryRun(l, o[off:off+run], a[i0:], b[i1:], s0, s1)
	})
}

// binaryRun computes one run of len(o) values; a and b start at the run,
// with strides s0 and s1 (1: contiguous, 0: one value repeated).
func binaryRun[A, B, R any](l binLoops[A, B, R], o []R, a []A, b []B, s0, s1 int) {
	n := len(o)
	switch {
	case s0 == 1 && s1 == 1:
		l.vv(o, a[:n], b[:n])
	case s0 == 1:
		l.vs(o, a[:n], b[0])
	case s1 == 1:
		l.sv(o, a[0], b[:n])
	default:
		// Both operands repeated (an output broadcast beyond both, as
		// in the variadic operators): one value.
		l.vv(o[:1], a[:1], b[:1])
		for i := 1; i < n; i++ {
			o[i] = o[0]
		}
	}
}

// broadcastOperands checks two inputs (of one type unless mixed) and
// returns their broadcast shape and iterator.
func broadcastOperands(b *builder, mixed bool) ([]int, *bcastIter, bool) {
	if !b.arity(2, 2, 1, 1) || (!mixed && !b.sameType(0, 1)) {
		return nil, nil, false
	}
	x, y := b.in[0], b.in[1]
	shape, ok := broadcastShape(x.shape, y.shape)
	if !ok {
		b.errf("shapes %v and %v do not broadcast", x.shape, y.shape)
		return nil, nil, false
	}
	if len(shape) > maxRank {
		b.unsupported("rank %d, limit %d", len(shape), maxRank)
		return nil, nil, false
	}
	return shape, newBcastIter(shape, x.shape, y.shape), true
}

// arithOp is an arithmetic operation with loops of its own for every
// numeric type.
type arithOp uint8

const (
	opAdd arithOp = iota
	opSub
	opMul
	opDiv
	opMax
	opMin
	opPRelu // a < 0 ? a·b : a
)

// isFloatT reports whether T is a floating-point type.
func isFloatT[T numeric]() bool {
	one := T(1)
	return one/2 != 0
}

// maxT and minT are numpy's maximum and minimum, NaN winning: Go's
// builtins, which compile to branch-free code.
func maxT[T numeric](x, y T) T { return max(x, y) }

func minT[T numeric](x, y T) T { return min(x, y) }

func arithLoops[T numeric](op arithOp) binLoops[T, T, T] {
	return binLoops[T, T, T]{
		vv: func(o, a, b []T) { arithVV(op, o, a, b) },
		vs: func(o, a []T, b T) { arithVS(op, o, a, b) },
		sv: func(o []T, a T, b []T) { arithSV(op, o, a, b) },
	}
}

func arithVV[T numeric](op arithOp, o, a, b []T) {
	b = b[:len(a)]
	o = o[:len(a)]
	if of, ok := any(o).([]float32); ok && (op == opAdd || op == opMul) {
		// The hot float32 cases on the vector kernels.
		af, bf := any(a).([]float32), any(b).([]float32)
		if op == opAdd {
			kernels.AddF32(of, af, bf)
		} else {
			kernels.MulF32(of, af, bf)
		}
		return
	}
	switch op {
	case opAdd:
		for i := range a {
			o[i] = a[i] + b[i]
		}
	case opSub:
		for i := range a {
			o[i] = a[i] - b[i]
		}
	case opMul:
		for i := range a {
			o[i] = a[i] * b[i]
		}
	case opDiv:
		if isFloatT[T]() {
			for i := range a {
				o[i] = a[i] / b[i]
			}
			return
		}
		for i := range a {
			// ONNX leaves integer division by zero undefined; 0, as numpy.
			if b[i] == 0 {
				o[i] = 0
			} else {
				o[i] = a[i] / b[i]
			}
		}
	case opMax:
		for i := range a {
			o[i] = maxT(a[i], b[i])
		}
	case opMin:
		for i := range a {
			o[i] = minT(a[i], b[i])
		}
	case opPRelu:
		for i := range a {
			o[i] = max(a[i], 0) + min(a[i], 0)*b[i]
		}
	}
}

func arithVS[T numeric](op arithOp, o, a []T, s T) {
	o = o[:len(a)]
	if of, ok := any(o).([]float32); ok && (op == opAdd || op == opMul) {
		af, sf := any(a).([]float32), any(s).(float32)
		if op == opAdd {
			kernels.AddScalarF32(of, af, sf)
		} else {
			kernels.MulScalarF32(of, af, sf)
		}
		return
	}
	switch op {
	case opAdd:
		for i := range a {
			o[i] = a[i] + s
		}
	case opSub:
		for i := range a {
			o[i] = a[i] - s
		}
	case opMul:
		for i := range a {
			o[i] = a[i] * s
		}
	case opDiv:
		if s == 0 && !isFloatT[T]() {
			clear(o)
			return
		}
		for i := range a {
			o[i] = a[i] / s
		}
	case opMax:
		for i := range a {
			o[i] = maxT(a[i], s)
		}
	case opMin:
		for i := range a {
			o[i] = minT(a[i], s)
		}
	case opPRelu:
		for i := range a {
			o[i] = max(a[i], 0) + min(a[i], 0)*s
		}
	}
}

func arithSV[T numeric](op arithOp, o []T, s T, b []T) {
	o = o[:len(b)]
	switch op {
	case opAdd:
		for i := range b {
			o[i] = s + b[i]
		}
	case opSub:
		for i := range b {
			o[i] = s - b[i]
		}
	case opMul:
		for i := range b {
			o[i] = s * b[i]
		}
	case opDiv:
		if isFloatT[T]() {
			for i := range b {
				o[i] = s / b[i]
			}
			return
		}
		for i := range b {
			if b[i] == 0 {
				o[i] = 0
			} else {
				o[i] = s / b[i]
			}
		}
	case opMax:
		for i := range b {
			o[i] = maxT(s, b[i])
		}
	case opMin:
		for i := range b {
			o[i] = minT(s, b[i])
		}
	case opPRelu:
		if s >= 0 || s != s {
			for i := range o {
				o[i] = s
			}
			return
		}
		for i := range b {
			o[i] = s * b[i]
		}
	}
}

// arithKernel returns the kernel of op on dt, or nil for a type it does
// not compute on.
func arithKernel(dt DType, it *bcastIter, op arithOp) kernelFunc {
	switch dt {
	case Float32:
		return binaryKernel(it, arithLoops[float32](op), 0, 1)
	case Float64:
		return binaryKernel(it, arithLoops[float64](op), 0, 1)
	case Int8:
		return binaryKernel(it, arithLoops[int8](op), 0, 1)
	case Int16:
		return binaryKernel(it, arithLoops[int16](op), 0, 1)
	case Int32:
		return binaryKernel(it, arithLoops[int32](op), 0, 1)
	case Int64:
		return binaryKernel(it, arithLoops[int64](op), 0, 1)
	case Uint8:
		return binaryKernel(it, arithLoops[uint8](op), 0, 1)
	case Uint16:
		return binaryKernel(it, arithLoops[uint16](op), 0, 1)
	case Uint32:
		return binaryKernel(it, arithLoops[uint32](op), 0, 1)
	case Uint64:
		return binaryKernel(it, arithLoops[uint64](op), 0, 1)
	}
	return nil
}

var numericTypes = []DType{Float32, Float64, Int8, Int16, Int32, Int64, Uint8, Uint16, Uint32, Uint64}

func arithBuild(op arithOp) buildFunc {
	return func(b *builder) {
		shape, it, ok := broadcastOperands(b, false)
		if !ok || !b.wantType(0, numericTypes...) {
			return
		}
		dt := b.in[0].dt
		b.setOut(0, dt, shape)
		b.run(arithKernel(dt, it, op))
		b.flops = float64(it.n)
	}
}

// buildPRelu: y = x < 0 ? slope·x : x, the slope broadcast to x
// (unidirectionally: the output has x's shape).
func buildPRelu(b *builder) {
	shape, it, ok := broadcastOperands(b, false)
	if !ok || !b.wantType(0, Float32, Float64, Int8, Int16, Int32, Int64, Uint8, Uint16, Uint32, Uint64) {
		return
	}
	x := b.in[0]
	if !sameShape(shape, x.shape) {
		b.errf("slope %v does not broadcast to the input %v", b.in[1].shape, x.shape)
		return
	}
	b.setOut(0, x.dt, shape)
	b.run(arithKernel(x.dt, it, opPRelu))
	b.flops = float64(it.n)
}

// Pow: the base's type is the output's; the exponent may be any numeric
// type (opset 12). Computed as numpy does, in float64 for float bases or
// exponents, by repeated squaring for integers.
func buildPow(b *builder) {
	shape, it, ok := broadcastOperands(b, b.opset >= 12)
	if !ok || !b.wantType(0, Float32, Float64, Int32, Int64) || !b.wantType(1, numericTypes...) {
		return
	}
	x, y := b.in[0], b.in[1]
	b.setOut(0, x.dt, shape)
	b.flops = float64(it.n)
	// x², the common constant case (variance, norms), as a product: the
	// exponent has one element, so the output has x's elements.
	if y.c != nil && y.c.Numel() == 1 && x.dt == Float32 && scalarF64(y.c) == 2 {
		b.run(func(in, out []*Tensor, _ *kctx) error {
			xs := view[float32](in[0].data)
			o := view[float32](out[0].data)[:len(xs)]
			for i, v := range xs {
				o[i] = v * v
			}
			return nil
		})
		return
	}
	var k kernelFunc
	switch x.dt {
	case Float32:
		k = powKernelFor[float32](y.dt, it)
	case Float64:
		k = powKernelFor[float64](y.dt, it)
	case Int32:
		k = powKernelFor[int32](y.dt, it)
	case Int64:
		k = powKernelFor[int64](y.dt, it)
	}
	b.run(k)
}

// scalarF64 returns the value of a one-element numeric tensor.
func scalarF64(t *Tensor) float64 {
	switch t.DType {
	case Float32:
		return float64(Data[float32](t)[0])
	case Float64:
		return Data[float64](t)[0]
	case Int8:
		return float64(Data[int8](t)[0])
	case Int16:
		return float64(Data[int16](t)[0])
	case Int32:
		return float64(Data[int32](t)[0])
	case Int64:
		return float64(Data[int64](t)[0])
	case Uint8:
		return float64(Data[uint8](t)[0])
	case Uint16:
		return float64(Data[uint16](t)[0])
	case Uint32:
		return float64(Data[uint32](t)[0])
	case Uint64:
		return float64(Data[uint64](t)[0])
	case Float16:
		return float64(HalfToFloat32(Data[uint16](t)[0]))
	case BFloat16:
		return float64(BFloat16ToFloat32(Data[uint16](t)[0]))
	}
	return math.NaN()
}

func powKernelFor[T numeric](e DType, it *bcastIter) kernelFunc {
	switch e {
	case Float32:
		return binaryKernel(it, loopsOf(powFunc[T, float32]()), 0, 1)
	case Float64:
		return binaryKernel(it, loopsOf(powFunc[T, float64]()), 0, 1)
	case Int8:
		return binaryKernel(it, loopsOf(powFunc[T, int8]()), 0, 1)
	case Int16:
		return binaryKernel(it, loopsOf(powFunc[T, int16]()), 0, 1)
	case Int32:
		return binaryKernel(it, loopsOf(powFunc[T, int32]()), 0, 1)
	case Int64:
		return binaryKernel(it, loopsOf(powFunc[T, int64]()), 0, 1)
	case Uint8:
		return binaryKernel(it, loopsOf(powFunc[T, uint8]()), 0, 1)
	case Uint16:
		return binaryKernel(it, loopsOf(powFunc[T, uint16]()), 0, 1)
	case Uint32:
		return binaryKernel(it, loopsOf(powFunc[T, uint32]()), 0, 1)
	case Uint64:
		return binaryKernel(it, loopsOf(powFunc[T, uint64]()), 0, 1)
	}
	return nil
}

// powFunc returns x^y for base type T and exponent type E: in float64
// when either is a float (numpy's promotion, then the cast back to T), by
// repeated squaring (wrapping like numpy) when both are integers.
func powFunc[T, E numeric]() func(x T, y E) T {
	if isFloatT[T]() || isFloatT[E]() {
		return func(x T, y E) T { return T(math.Pow(float64(x), float64(y))) }
	}
	return func(x T, y E) T {
		if y < 0 {
			// numpy refuses negative integer powers of integers; 1/x^|y|
			// truncated is what C and ONNX Runtime give.
			switch {
			case x == 1:
				return 1
			case x+1 == 0: // -1
				if uint64(y)&1 == 0 {
					return 1
				}
				return x
			}
			return 0
		}
		r, base, e := T(1), x, uint64(y)
		for e > 0 {
			if e&1 != 0 {
				r *= base
			}
			base *= base
			e >>= 1
		}
		return r
	}
}

// Comparisons: Less, LessOrEqual and Equal; Greater and GreaterOrEqual are
// Less and LessOrEqual with the operands swapped (NaN compares false
// either way).
type cmpOp uint8

const (
	cmpEq cmpOp = iota
	cmpLt
	cmpLe
)

func cmpLoops[T numeric](op cmpOp) binLoops[T, T, bool] {
	switch op {
	case cmpLt:
		return loopsOf(func(a, b T) bool { return a < b })
	case cmpLe:
		return loopsOf(func(a, b T) bool { return a <= b })
	}
	return loopsOf(func(a, b T) bool { return a == b })
}

func compareBuild(op cmpOp, swap bool) buildFunc {
	return func(b *builder) {
		if !b.arity(2, 2, 1, 1) || !b.sameType(0, 1) {
			return
		}
		ia, ib := 0, 1
		if swap {
			ia, ib = 1, 0
		}
		x, y := b.in[ia], b.in[ib]
		shape, ok := broadcastShape(x.shape, y.shape)
		if !ok {
			b.errf("shapes %v and %v do not broadcast", b.in[0].shape, b.in[1].shape)
			return
		}
		if len(shape) > maxRank {
			b.unsupported("rank %d, limit %d", len(shape), maxRank)
			return
		}
		it := newBcastIter(shape, x.shape, y.shape)
		var k kernelFunc
		switch x.dt {
		case Float32:
			k = binaryKernel(it, cmpLoops[float32](op), ia, ib)
		case Float64:
			k = binaryKernel(it, cmpLoops[float64](op), ia, ib)
		case Int8:
			k = binaryKernel(it, cmpLoops[int8](op), ia, ib)
		case Int16:
			k = binaryKernel(it, cmpLoops[int16](op), ia, ib)
		case Int32:
			k = binaryKernel(it, cmpLoops[int32](op), ia, ib)
		case Int64:
			k = binaryKernel(it, cmpLoops[int64](op), ia, ib)
		case Uint8:
			k = binaryKernel(it, cmpLoops[uint8](op), ia, ib)
		case Uint16:
			k = binaryKernel(it, cmpLoops[uint16](op), ia, ib)
		case Uint32:
			k = binaryKernel(it, cmpLoops[uint32](op), ia, ib)
		case Uint64:
			k = binaryKernel(it, cmpLoops[uint64](op), ia, ib)
		case Bool:
			if op == cmpEq {
				k = binaryKernel(it, loopsOf(func(a, b uint8) bool { return (a != 0) == (b != 0) }), ia, ib)
			}
		}
		if k == nil {
			b.unsupported("element type %v", x.dt)
			return
		}
		b.setOut(0, Bool, shape)
		b.run(k)
		b.flops = float64(it.n)
	}
}

// logicBuild plans And, Or or Xor on BOOL.
func logicBuild(f func(a, b uint8) bool) buildFunc {
	l := loopsOf(f)
	return func(b *builder) {
		shape, it, ok := broadcastOperands(b, false)
		if !ok || !b.wantType(0, Bool) {
			return
		}
		b.setOut(0, Bool, shape)
		b.run(binaryKernel(it, l, 0, 1))
	}
}

// buildWhere: condition ? X : Y, the three broadcast together; any
// element type, copied as bytes.
func buildWhere(b *builder) {
	if !b.arity(3, 3, 1, 1) || !b.wantType(0, Bool) || !b.sameType(1, 2) {
		return
	}
	c, x, y := b.in[0], b.in[1], b.in[2]
	shape, ok := broadcastShape(c.shape, x.shape, y.shape)
	if !ok {
		b.errf("shapes %v, %v and %v do not broadcast", c.shape, x.shape, y.shape)
		return
	}
	if len(shape) > maxRank {
		b.unsupported("rank %d, limit %d", len(shape), maxRank)
		return
	}
	it := newBcastIter(shape, c.shape, x.shape, y.shape)
	b.setOut(0, x.dt, shape)
	switch x.dt.Size() {
	case 1:
		b.run(whereKernel[uint8](it))
	case 2:
		b.run(whereKernel[uint16](it))
	case 4:
		b.run(whereKernel[uint32](it))
	case 8:
		b.run(whereKernel[uint64](it))
	default:
		b.unsupported("element type %v", x.dt)
	}
}

func whereKernel[T any](it *bcastIter) kernelFunc {
	run := it.runLen()
	sc, sx, sy := it.runStride(0), it.runStride(1), it.runStride(2)
	return func(in, out []*Tensor, _ *kctx) error {
		if it.n == 0 {
			return nil
		}
		c, x, y, o := view[uint8](in[0].data), view[T](in[1].data), view[T](in[2].data), view[T](out[0].data)
		it.runs(func(off, ci, xi, yi int) {
			oo := o[off : off+run]
			for i := range oo {
				if c[ci] != 0 {
					oo[i] = x[xi]
				} else {
					oo[i] = y[yi]
				}
				ci += sc
				xi += sx
				yi += sy
			}
		})
		return nil
	}
}

// variadicBuild plans Max, Min, Sum or Mean of one or more inputs
// broadcast together: the first two into the output, each further one
// folded into it in place; Mean divides by the count at the end.
func variadicBuild(op arithOp, mean bool) buildFunc {
	return func(b *builder) {
		if !b.arity(1, len(b.in), 1, 1) {
			return
		}
		for i := range b.in {
			if b.in[i] == nil {
				b.bad("input %d is empty", i)
				return
			}
			if !b.sameType(0, i) {
				return
			}
		}
		types := numericTypes
		if mean {
			types = []DType{Float32, Float64}
		}
		if !b.wantType(0, types...) {
			return
		}
		dt := b.in[0].dt
		shapes := make([][]int, len(b.in))
		for i, v := range b.in {
			shapes[i] = v.shape
		}
		shape, ok := broadcastShape(shapes...)
		if !ok {
			b.errf("shapes %v do not broadcast", shapes)
			return
		}
		if len(shape) > maxRank {
			b.unsupported("rank %d, limit %d", len(shape), maxRank)
			return
		}
		b.setOut(0, dt, shape)
		if len(b.in) == 1 {
			b.aliasInput(0)
			return
		}
		its := make([]*bcastIter, len(b.in))
		its[1] = newBcastIter(shape, shapes[0], shapes[1])
		for i := 2; i < len(b.in); i++ {
			its[i] = newBcastIter(shape, shape, shapes[i])
		}
		n := len(b.in)
		b.flops = float64(its[1].n * (n - 1))
		switch dt {
		case Float32:
			b.run(variadicKernel[float32](its, op, mean))
		case Float64:
			b.run(variadicKernel[float64](its, op, mean))
		case Int8:
			b.run(variadicKernel[int8](its, op, mean))
		case Int16:
			b.run(variadicKernel[int16](its, op, mean))
		case Int32:
			b.run(variadicKernel[int32](its, op, mean))
		case Int64:
			b.run(variadicKernel[int64](its, op, mean))
		case Uint8:
			b.run(variadicKernel[uint8](its, op, mean))
		case Uint16:
			b.run(variadicKernel[uint16](its, op, mean))
		case Uint32:
			b.run(variadicKernel[uint32](its, op, mean))
		case Uint64:
			b.run(variadicKernel[uint64](its, op, mean))
		}
	}
}

func variadicKernel[T numeric](its []*bcastIter, op arithOp, mean bool) kernelFunc {
	l := arithLoops[T](op)
	return func(in, out []*Tensor, _ *kctx) error {
		o := view[T](out[0].data)
		binaryRuns(its[1], l, view[T](in[0].data), view[T](in[1].data), o)
		for i := 2; i < len(in); i++ {
			binaryRuns(its[i], l, o, view[T](in[i].data), o)
		}
		if mean {
			arithVS(opDiv, o, o, T(len(in)))
		}
		return nil
	}
}

// addF32 and addScalarF32 are the float32 additions other kernels (Conv's
// residual) use directly.
func addF32(o, a, b []float32) { arithVV(opAdd, o, a, b) }

func addScalarF32(o, a []float32, s float32) { arithVS(opAdd, o, a, s) }
