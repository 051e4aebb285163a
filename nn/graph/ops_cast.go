package graph

import "math"

// Cast (opset 6; 9 and 13 only added types) and CastLike (15) between
// every numeric type, BOOL, FLOAT16 and BFLOAT16, as numpy's astype:
// floats to integers truncate toward zero, integers wrap, anything to BOOL
// is x ≠ 0, FLOAT16 rounds to nearest even (from FLOAT64 directly, without
// double rounding). BFLOAT16 keeps the upper half of the FLOAT bits, as
// ONNX's reference does up to opset 18 (opset 19 made it round to
// nearest). Strings are not tensors here.

func init() {
	register("Cast", 6, buildCast)
	register("Cast", 13, buildCast) // bfloat16
	register("CastLike", 15, buildCastLike)
}

// onnxTypes maps TensorProto.DataType to the runtime's types; the names
// are for the ones it does not have.
var onnxTypes = map[int64]DType{
	1: Float32, 2: Uint8, 3: Int8, 4: Uint16, 5: Int16, 6: Int32, 7: Int64,
	9: Bool, 10: Float16, 11: Float64, 12: Uint32, 13: Uint64, 16: BFloat16,
}

var onnxTypeNames = map[int64]string{
	8: "STRING", 14: "COMPLEX64", 15: "COMPLEX128", 17: "FLOAT8E4M3FN", 18: "FLOAT8E4M3FNUZ",
	19: "FLOAT8E5M2", 20: "FLOAT8E5M2FNUZ", 21: "UINT4", 22: "INT4",
}

func buildCast(b *builder) {
	if !b.arity(1, 1, 1, 1) {
		return
	}
	if !b.hasAttr("to") {
		b.bad("attribute to is required")
		return
	}
	to := b.attrInt("to", 0)
	dt, ok := onnxTypes[to]
	if !ok {
		if name, known := onnxTypeNames[to]; known {
			b.unsupported("element type %s", name)
		} else {
			b.bad("to = %d is not an ONNX element type", to)
		}
		return
	}
	planCast(b, dt)
}

func buildCastLike(b *builder) {
	if !b.arity(2, 2, 1, 1) {
		return
	}
	planCast(b, b.in[1].dt)
}

func planCast(b *builder, dt DType) {
	x := b.in[0]
	b.setOut(0, dt, x.shape)
	if x.dt == dt {
		b.aliasInput(0) // the same bytes
		return
	}
	k := castKernel(x.dt, dt)
	if k == nil {
		b.unsupported("element type %v to %v", x.dt, dt)
		return
	}
	b.run(k)
	b.flops = float64(x.numel())
}

// castKernel returns the conversion from s to d (s ≠ d).
func castKernel(s, d DType) kernelFunc {
	switch s {
	case Float32:
		return castFrom[float32](d)
	case Float64:
		return castFrom[float64](d)
	case Int8:
		return castFrom[int8](d)
	case Int16:
		return castFrom[int16](d)
	case Int32:
		return castFrom[int32](d)
	case Int64:
		return castFrom[int64](d)
	case Uint8:
		return castFrom[uint8](d)
	case Uint16:
		return castFrom[uint16](d)
	case Uint32:
		return castFrom[uint32](d)
	case Uint64:
		return castFrom[uint64](d)
	case Bool:
		// 0 or 1 as any type: as UINT8, made canonical.
		if d == Uint8 {
			return func(in, out []*Tensor, _ *kctx) error {
				x, o := view[uint8](in[0].data), view[uint8](out[0].data)
				for i, v := range x {
					o[i] = b2u(v != 0)
				}
				return nil
			}
		}
		return castFrom[uint8](d)
	case Float16, BFloat16:
		// Widened to FLOAT (exact), then converted as FLOAT is.
		switch d {
		case Float32:
			return func(in, out []*Tensor, _ *kctx) error {
				widen(view[float32](out[0].data), view[uint16](in[0].data), s)
				return nil
			}
		case Float64:
			return castFromHalf[float64](s)
		case Int8:
			return castFromHalf[int8](s)
		case Int16:
			return castFromHalf[int16](s)
		case Int32:
			return castFromHalf[int32](s)
		case Int64:
			return castFromHalf[int64](s)
		case Uint8:
			return castFromHalf[uint8](s)
		case Uint16:
			return castFromHalf[uint16](s)
		case Uint32:
			return castFromHalf[uint32](s)
		case Uint64:
			return castFromHalf[uint64](s)
		case Bool:
			return func(in, out []*Tensor, _ *kctx) error {
				x := view[uint16](in[0].data)
				o := view[bool](out[0].data)[:len(x)]
				for i, h := range x {
					o[i] = h&0x7fff != 0 // ±0 is false, NaN true
				}
				return nil
			}
		case Float16, BFloat16:
			return func(in, out []*Tensor, _ *kctx) error {
				x := view[uint16](in[0].data)
				o := view[uint16](out[0].data)[:len(x)]
				for i, h := range x {
					f := halfBits(h, s)
					if d == Float16 {
						o[i] = Float32ToHalf(f)
					} else {
						o[i] = truncBFloat16(f)
					}
				}
				return nil
			}
		}
	}
	return nil
}

func halfBits(h uint16, s DType) float32 {
	if s == BFloat16 {
		return BFloat16ToFloat32(h)
	}
	return HalfToFloat32(h)
}

func castFromHalf[D numeric](s DType) kernelFunc {
	return func(in, out []*Tensor, _ *kctx) error {
		x := view[uint16](in[0].data)
		o := view[D](out[0].data)[:len(x)]
		for i, h := range x {
			o[i] = D(halfBits(h, s))
		}
		return nil
	}
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// castFrom returns the conversion of S elements to d.
func castFrom[S numeric](d DType) kernelFunc {
	switch d {
	case Float32:
		return castLoop[S, float32]()
	case Float64:
		return castLoop[S, float64]()
	case Int8:
		return castLoop[S, int8]()
	case Int16:
		return castLoop[S, int16]()
	case Int32:
		return castLoop[S, int32]()
	case Int64:
		return castLoop[S, int64]()
	case Uint8:
		return castLoop[S, uint8]()
	case Uint16:
		return castLoop[S, uint16]()
	case Uint32:
		return castLoop[S, uint32]()
	case Uint64:
		return castLoop[S, uint64]()
	case Bool:
		return func(in, out []*Tensor, _ *kctx) error {
			x := view[S](in[0].data)
			o := view[bool](out[0].data)[:len(x)]
			for i, v := range x {
				o[i] = v != 0
			}
			return nil
		}
	case Float16, BFloat16:
		return func(in, out []*Tensor, _ *kctx) error {
			x := view[S](in[0].data)
			o := view[uint16](out[0].data)[:len(x)]
			for i, v := range x {
				o[i] = toHalf(v, d)
			}
			return nil
		}
	}
	return nil
}

func castLoop[S, D numeric]() kernelFunc {
	return func(in, out []*Tensor, _ *kctx) error {
		x := view[S](in[0].data)
		o := view[D](out[0].data)[:len(x)]
		for i, v := range x {
			o[i] = D(v)
		}
		return nil
	}
}

// toHalf converts v to FLOAT16 (rounded to nearest even) or BFLOAT16
// (truncated, see the package comment of Cast). float64(v) is exact for
// every float source and rounds only integers beyond 2⁵³.
func toHalf[S numeric](v S, d DType) uint16 {
	f := float64(v)
	if d == Float16 {
		return float64ToHalf(f)
	}
	return truncBFloat16(float32(f))
}

// truncBFloat16 keeps the upper 16 bits of f, NaN kept NaN.
func truncBFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	return uint16(b >> 16)
}

// float64ToHalf rounds f to FLOAT16 once: f is first rounded to float32
// by rounding to odd (truncate, then set the last bit if inexact), which
// keeps the final round to nearest even exact since float32 has more than
// two bits beyond FLOAT16's.
func float64ToHalf(f float64) uint16 {
	t := float32(f)
	if float64(t) != f && !math.IsNaN(f) && !math.IsInf(float64(t), 0) {
		b := math.Float32bits(t)
		if math.Abs(float64(t)) > math.Abs(f) {
			b-- // toward zero: magnitudes order like their bits
		}
		t = math.Float32frombits(b | 1)
	}
	return Float32ToHalf(t)
}
