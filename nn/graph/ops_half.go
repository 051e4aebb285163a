package graph

// Float16 and BFloat16 arithmetic: the runtime stores them but computes
// in float32, as numpy and PyTorch's CPU kernels do for most operators.
// withHalf plans an operator's float32 version for half inputs and wraps
// its kernel in conversions: the half inputs are widened into scratch, the
// float32 kernel runs on them, and its float32 outputs are rounded back
// (to nearest even) into the half outputs. One rounding per operator is
// exactly numpy's float16 ufunc behaviour.

func isHalf(d DType) bool { return d == Float16 || d == BFloat16 }

// withHalf returns f extended to Float16 and BFloat16 inputs: every half
// input is widened to FLOAT (others are passed through), and when input 0
// is half, the outputs that f plans as FLOAT are made input 0's type
// (other outputs, the BOOL of a comparison or the INT64 of an ArgMax, are
// kept). Every float input must have input 0's type (Pow, whose exponent
// may differ, uses withHalfMixed).
func withHalf(f buildFunc) buildFunc { return halfWrap(f, false) }

func withHalfMixed(f buildFunc) buildFunc { return halfWrap(f, true) }

func halfWrap(f buildFunc, mixed bool) buildFunc {
	return func(b *builder) {
		any16 := false
		for _, v := range b.in {
			if v != nil && isHalf(v.dt) {
				any16 = true
			}
		}
		if !any16 {
			f(b)
			return
		}
		half := Undefined
		if len(b.in) > 0 && b.in[0] != nil && isHalf(b.in[0].dt) {
			half = b.in[0].dt
		}
		if !mixed && len(b.in) > 0 && b.in[0] != nil {
			for i, v := range b.in {
				if v != nil && (isHalf(v.dt) || (half != Undefined && v.dt.isFloat())) && v.dt != b.in[0].dt {
					b.errf("inputs 0 and %d are %v and %v; the operator needs one type", i, b.in[0].dt, v.dt)
					return
				}
			}
		}
		orig := b.in
		sub := make([]*val, len(orig))
		var convIn []int
		for i, v := range orig {
			sub[i] = v
			if v == nil || !isHalf(v.dt) {
				continue
			}
			w := &val{name: v.name, dt: Float32, shape: v.shape, input: v.input, def: v.def}
			if v.c != nil {
				w.c = halfToF32Tensor(v.c)
			}
			sub[i] = w
			convIn = append(convIn, i)
		}
		b.in = sub
		f(b)
		b.in = orig
		if b.err != nil {
			return
		}
		if b.alias >= 0 {
			// A view of a half input is a view of it as it is.
			if src, o := orig[b.alias], b.out[0]; isHalf(src.dt) {
				if o.dt != Float32 || src.dt != half {
					b.bad("internal: a view of a widened %v input as %v", src.dt, o.dt)
					return
				}
				o.dt = half
			}
			return
		}
		var convOut []int
		for i, o := range b.out {
			if half == Undefined || o == nil || o.dt != Float32 {
				continue
			}
			o.dt = half
			if o.c != nil {
				o.c = f32ToHalfTensor(o.c, half)
			}
			convOut = append(convOut, i)
		}
		if b.kernel == nil {
			return // constants only
		}
		inner, innerScratch, innerState := b.kernel, b.scratch, b.newState
		off := alignUp(innerScratch, arenaAlign)
		inOff := make([]int, len(orig))
		outOff := make([]int, len(b.out))
		for _, i := range convIn {
			inOff[i] = off
			off += alignUp(4*orig[i].numel(), arenaAlign)
		}
		for _, i := range convOut {
			outOff[i] = off
			off += alignUp(4*b.out[i].numel(), arenaAlign)
		}
		b.scratch = off
		nIn, nOut := len(orig), len(b.out)
		b.state(func() any {
			st := &halfState{in: make([]*Tensor, nIn), out: make([]*Tensor, nOut), tin: make([]Tensor, nIn), tout: make([]Tensor, nOut)}
			if innerState != nil {
				st.k.state = innerState()
			}
			return st
		})
		b.run(func(in, out []*Tensor, k *kctx) error {
			st := k.state.(*halfState)
			copy(st.in, in)
			copy(st.out, out)
			for _, i := range convIn {
				t := &st.tin[i]
				n := len(in[i].data) / 2
				t.DType, t.Shape, t.data = Float32, in[i].Shape, k.scratch[inOff[i]:inOff[i]+4*n]
				widen(view[float32](t.data), view[uint16](in[i].data), in[i].DType)
				st.in[i] = t
			}
			for _, i := range convOut {
				t := &st.tout[i]
				n := len(out[i].data) / 2
				t.DType, t.Shape, t.data = Float32, out[i].Shape, k.scratch[outOff[i]:outOff[i]+4*n]
				st.out[i] = t
			}
			st.k.scratch = k.scratch[:innerScratch]
			err := inner(st.in, st.out, &st.k)
			if err == nil {
				for _, i := range convOut {
					narrow(view[uint16](out[i].data), view[float32](st.tout[i].data), half)
				}
			}
			clear(st.in)
			clear(st.out)
			for i := range st.tin {
				st.tin[i].data = nil
			}
			for i := range st.tout {
				st.tout[i].data = nil
			}
			return err
		})
	}
}

// halfState is a wrapped kernel's per-exec state: the float32 tensor
// headers it substitutes, and the inner kernel's context.
type halfState struct {
	in, out   []*Tensor
	tin, tout []Tensor
	k         kctx
}

func widen(dst []float32, src []uint16, half DType) {
	dst = dst[:len(src)]
	if half == BFloat16 {
		for i, h := range src {
			dst[i] = BFloat16ToFloat32(h)
		}
		return
	}
	for i, h := range src {
		dst[i] = HalfToFloat32(h)
	}
}

func narrow(dst []uint16, src []float32, half DType) {
	dst = dst[:len(src)]
	if half == BFloat16 {
		for i, f := range src {
			dst[i] = Float32ToBFloat16(f)
		}
		return
	}
	for i, f := range src {
		dst[i] = Float32ToHalf(f)
	}
}

func halfToF32Tensor(t *Tensor) *Tensor {
	o := NewTensor(Float32, t.Shape...)
	widen(o.Float32s(), Data[uint16](t), t.DType)
	return o
}

func f32ToHalfTensor(t *Tensor, half DType) *Tensor {
	o := NewTensor(half, t.Shape...)
	narrow(Data[uint16](o), t.Float32s(), half)
	return o
}
