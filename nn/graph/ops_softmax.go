package graph

import "math"

// Softmax and LogSoftmax. Before opset 13 the input is coerced to 2-D at
// axis (default 1) and normalised over the flattened trailing dimensions;
// from 13 over one axis (default −1). Both subtract the maximum first, so
// large inputs do not overflow.

func init() {
	register("Softmax", 1, withHalf(softmaxBuild(false)))
	register("Softmax", 13, withHalf(softmaxBuild(false)))
	register("LogSoftmax", 1, withHalf(softmaxBuild(true)))
	register("LogSoftmax", 13, withHalf(softmaxBuild(true)))
}

func softmaxBuild(logOut bool) buildFunc {
	return func(b *builder) {
		if !b.arity(1, 1, 1, 1) || !b.wantType(0, Float32, Float64) {
			return
		}
		x := b.in[0]
		r := len(x.shape)
		var axis int
		if b.opset < 13 {
			axis = b.normAxis(b.attrInt("axis", 1), r)
		} else {
			axis = b.normAxis(b.attrInt("axis", -1), r)
		}
		if b.failed() {
			return
		}
		outer, _ := numel(x.shape[:axis])
		n, inner := x.shape[axis], 1
		if b.opset < 13 {
			n, _ = numel(x.shape[axis:])
		} else {
			inner, _ = numel(x.shape[axis+1:])
		}
		b.setOut(0, x.dt, x.shape)
		b.flops = 4 * float64(x.numel())
		if inner > 1 {
			b.scratch = 2 * inner * x.dt.Size()
		}
		if x.dt == Float64 {
			b.run(softmaxKernel(outer, n, inner, logOut, expF64, math.Log))
			return
		}
		b.run(softmaxKernel(outer, n, inner, logOut, expF32, func(v float32) float32 { return float32(math.Log(float64(v))) }))
	}
}

func expF64(o, x []float64) {
	o = o[:len(x)]
	for i, v := range x {
		o[i] = math.Exp(v)
	}
}

// softmaxKernel normalises x as outer blocks of n rows of inner values,
// along the rows: one row at a time when inner is 1, else the whole
// block with the maxima and sums of its columns in scratch.
func softmaxKernel[T float32 | float64](outer, n, inner int, logOut bool, vexp func(o, x []T), lg func(T) T) kernelFunc {
	return func(in, out []*Tensor, k *kctx) error {
		x, y := view[T](in[0].data), view[T](out[0].data)
		if n == 0 || inner == 0 {
			return nil
		}
		if inner == 1 {
			for r := 0; r < outer; r++ {
				xs, ys := x[r*n:(r+1)*n], y[r*n:(r+1)*n]
				m := xs[0]
				for _, v := range xs[1:] {
					m = max(m, v) // NaN wins, and then every output is NaN
				}
				for i, v := range xs {
					ys[i] = v - m
				}
				vexp(ys, ys)
				var s T
				for _, v := range ys {
					s += v
				}
				if logOut {
					ls := lg(s)
					for i, v := range xs {
						ys[i] = v - m - ls
					}
					continue
				}
				inv := 1 / s
				for i := range ys {
					ys[i] *= inv
				}
			}
			return nil
		}
		sc := view[T](k.scratch)
		mx, sum := sc[:inner], sc[inner:2*inner]
		bs := n * inner
		for r := 0; r < outer; r++ {
			xs, ys := x[r*bs:(r+1)*bs], y[r*bs:(r+1)*bs]
			copy(mx, xs[:inner])
			for j := 1; j < n; j++ {
				row := xs[j*inner : (j+1)*inner]
				for i, v := range row {
					mx[i] = max(mx[i], v)
				}
			}
			for j := 0; j < n; j++ {
				row, yr := xs[j*inner:(j+1)*inner], ys[j*inner:(j+1)*inner]
				for i, v := range row {
					yr[i] = v - mx[i]
				}
			}
			vexp(ys, ys)
			copy(sum, ys[:inner])
			for j := 1; j < n; j++ {
				for i, v := range ys[j*inner : (j+1)*inner] {
					sum[i] += v
				}
			}
			if logOut {
				for i, v := range sum {
					sum[i] = lg(v)
				}
				for j := 0; j < n; j++ {
					row, yr := xs[j*inner:(j+1)*inner], ys[j*inner:(j+1)*inner]
					for i, v := range row {
						yr[i] = v - mx[i] - sum[i]
					}
				}
				continue
			}
			for i, v := range sum {
				sum[i] = 1 / v
			}
			for j := 0; j < n; j++ {
				yr := ys[j*inner : (j+1)*inner]
				for i := range yr {
					yr[i] *= sum[i]
				}
			}
		}
		return nil
	}
}
