package graph

import "math"

// Unary element-wise operators on floats.

// unaryF32 registers op as an element-wise float32 (and float64) function.
func unaryFloat(f32 func(o, x []float32), f64 func(x float64) float64) buildFunc {
	return func(b *builder) {
		if !b.arity(1, 1, 1, 1) || !b.wantType(0, Float32, Float64) {
			return
		}
		x := b.in[0]
		b.setOut(0, x.dt, x.shape)
		b.flops = float64(x.numel())
		if x.dt == Float64 {
			b.run(func(in, out []*Tensor, _ *kctx) error {
				xs, os := view[float64](in[0].data), view[float64](out[0].data)
				for i, v := range xs {
					os[i] = f64(v)
				}
				return nil
			})
			return
		}
		b.run(func(in, out []*Tensor, _ *kctx) error {
			f32(view[float32](out[0].data), view[float32](in[0].data))
			return nil
		})
	}
}

func reluF32(o, x []float32) {
	o = o[:len(x)]
	for i, v := range x {
		if v < 0 {
			v = 0
		}
		o[i] = v
	}
}

func init() {
	register("Relu", 6, unaryFloat(reluF32, func(x float64) float64 { return math.Max(x, 0) }))
}
