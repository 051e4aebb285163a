package kernels

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

type sgemmFunc func(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)

// impls are the contenders of every benchmark: our chosen kernel (and the
// others this CPU can run) against gonum's pure-Go Sgemm in the same run.
func impls(b *testing.B, f func(b *testing.B, gemm sgemmFunc)) {
	saved := active.Load()
	defer active.Store(saved)
	for _, k := range available() {
		active.Store(k)
		b.Run(k.name, func(b *testing.B) { f(b, Sgemm) })
	}
	active.Store(saved)
	b.Run("gonum", func(b *testing.B) { f(b, gonum.Implementation{}.Sgemm) })
}

var mnistLayers = [][2]int{{784, 128}, {128, 128}, {128, 10}}

// BenchmarkMNISTForward: the three layer products of the 784-128-128-10
// model (y = x·W + C, C holding the bias), as nn's forward pass issues them.
func BenchmarkMNISTForward(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, batch := range []int{1, 8, 32, 64, 256} {
		x := randSlice(rng, batch*784)
		ws := make([][]float32, 3)
		outs := make([][]float32, 3)
		flops := 0.0
		for i, l := range mnistLayers {
			ws[i] = randSlice(rng, l[0]*l[1])
			outs[i] = make([]float32, batch*l[1])
			flops += 2 * float64(batch*l[0]*l[1])
		}
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			impls(b, func(b *testing.B, gemm sgemmFunc) {
				b.ReportAllocs()
				for b.Loop() {
					in := x
					for i, l := range mnistLayers {
						gemm(blas.NoTrans, blas.NoTrans, batch, l[1], l[0], 1, in, l[0], ws[i], l[1], 1, outs[i], l[1])
						in = outs[i]
					}
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		})
	}
}

// BenchmarkTrainStep: every product of one training step at batch 32:
// the forward pass, dW = xᵀ·dY per layer, dX = dY·Wᵀ for the upper two.
func BenchmarkTrainStep(b *testing.B) {
	const batch = 32
	rng := rand.New(rand.NewPCG(2, 2))
	x := randSlice(rng, batch*784)
	var ws, outs, dws, dxs [][]float32
	flops := 0.0
	for i, l := range mnistLayers {
		ws = append(ws, randSlice(rng, l[0]*l[1]))
		outs = append(outs, randSlice(rng, batch*l[1]))
		dws = append(dws, make([]float32, l[0]*l[1]))
		dxs = append(dxs, make([]float32, batch*l[0]))
		flops += 2 * 2 * float64(batch*l[0]*l[1])
		if i > 0 {
			flops += 2 * float64(batch*l[0]*l[1])
		}
	}
	impls(b, func(b *testing.B, gemm sgemmFunc) {
		b.ReportAllocs()
		for b.Loop() {
			in := x
			for i, l := range mnistLayers {
				gemm(blas.NoTrans, blas.NoTrans, batch, l[1], l[0], 1, in, l[0], ws[i], l[1], 1, outs[i], l[1])
				in = outs[i]
			}
			for i := len(mnistLayers) - 1; i >= 0; i-- {
				l := mnistLayers[i]
				in := x
				if i > 0 {
					in = outs[i-1]
				}
				gemm(blas.Trans, blas.NoTrans, l[0], l[1], batch, 1, in, l[0], outs[i], l[1], 0, dws[i], l[1])
				if i > 0 {
					gemm(blas.NoTrans, blas.Trans, batch, l[0], l[1], 1, outs[i], l[1], ws[i], l[1], 0, dxs[i], l[0])
				}
			}
		}
		b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
}

// BenchmarkSgemm1024 is the square 1024³ product, with GFLOP/s and the
// fraction of the machine's peak (GOMAXPROCS × measured single-core peak).
func BenchmarkSgemm1024(b *testing.B) {
	const n = 1024
	rng := rand.New(rand.NewPCG(3, 3))
	a, bb, c := randSlice(rng, n*n), randSlice(rng, n*n), make([]float32, n*n)
	peak := float64(runtime.GOMAXPROCS(0)) * singleCorePeak()
	impls(b, func(b *testing.B, gemm sgemmFunc) {
		b.ReportAllocs()
		for b.Loop() {
			gemm(blas.NoTrans, blas.NoTrans, n, n, n, 1, a, n, bb, n, 0, c, n)
		}
		gf := 2 * n * n * n * float64(b.N) / b.Elapsed().Seconds() / 1e9
		b.ReportMetric(gf, "GFLOP/s")
		if peak > 0 {
			b.ReportMetric(100*gf/peak, "%peak")
		}
	})
}

// clockGHz measures the core clock: the best of 200 short runs of the
// clock probe (about 0.3 ms each, shorter than a scheduler slice), since
// on a shared machine preemption only ever makes a run look slower.
var clockGHz = sync.OnceValue(func() float64 {
	best := 0.0
	for range 200 {
		start := time.Now()
		cycles, _ := peakProbe(1 << 15)
		best = max(best, cycles/time.Since(start).Seconds()/1e9)
	}
	return best
})

// singleCorePeak is one core's single-precision peak in GFLOP/s: the
// measured clock × the FMA flops per cycle of the chosen kernel's ISA.
func singleCorePeak() float64 {
	_, fpc := peakProbe(1)
	return clockGHz() * fpc
}

// BenchmarkPeak reports the measured clock and the peak derived from it.
func BenchmarkPeak(b *testing.B) {
	if _, fpc := peakProbe(1); fpc == 0 {
		b.Skip("no clock probe on this CPU")
	}
	b.ReportAllocs()
	for b.Loop() {
		clockGHz()
	}
	ghz := clockGHz()
	_, fpc := peakProbe(1)
	b.ReportMetric(ghz, "GHz")
	b.ReportMetric(ghz*fpc, "GFLOP/s/core")
	b.ReportMetric(ghz*fpc*float64(runtime.GOMAXPROCS(0)), "GFLOP/s/machine")
}

// BenchmarkThresholdUnpackedB compares packed and in-place B at the batch
// sizes around unpackedBMaxRows (the first MNIST layer).
func BenchmarkThresholdUnpackedB(b *testing.B) {
	rng := rand.New(rand.NewPCG(4, 4))
	w := randSlice(rng, 784*128)
	saved := unpackedBMaxRows
	defer func() { unpackedBMaxRows = saved }()
	for _, m := range []int{8, 32, 64, 128, 256} {
		x, c := randSlice(rng, m*784), make([]float32, m*128)
		for _, limit := range []int{0, 1 << 30} {
			name := "packed"
			if limit > 0 {
				name = "inplace"
			}
			b.Run(fmt.Sprintf("m=%d/%s", m, name), func(b *testing.B) {
				unpackedBMaxRows = limit
				for b.Loop() {
					Sgemm(blas.NoTrans, blas.NoTrans, m, 128, 784, 1, x, 784, w, 128, 1, c, 128)
				}
			})
		}
	}
}

// BenchmarkThresholdParallel compares one goroutine against GOMAXPROCS on
// cubes around parallelMinFlops.
func BenchmarkThresholdParallel(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 5))
	saved := parallelMinFlops
	defer func() { parallelMinFlops = saved }()
	for _, n := range []int{64, 96, 128, 192, 256} {
		a, bb, c := randSlice(rng, n*n), randSlice(rng, n*n), make([]float32, n*n)
		for _, limit := range []int{1 << 62, 0} {
			name := "serial"
			if limit == 0 {
				name = "parallel"
			}
			b.Run(fmt.Sprintf("n=%d/%s", n, name), func(b *testing.B) {
				parallelMinFlops = limit
				for b.Loop() {
					Sgemm(blas.NoTrans, blas.NoTrans, n, n, n, 1, a, n, bb, n, 0, c, n)
				}
			})
		}
	}
}

// BenchmarkMNISTDense: the forward pass of nn's MNIST model as nn runs it
// on a loaded model, per kernel: "fused" is Dense on weights packed once
// (bias and ReLU in the epilogue), "unfused" is what nn did before (bias
// copied into C, Sgemm, then a ReLU pass), both without the softmax.
func BenchmarkMNISTDense(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	acts := []Activation{ReLU, ReLU, Linear}
	for _, batch := range []int{1, 8, 32, 64, 256} {
		x := randSlice(rng, batch*784)
		ws := make([][]float32, 3)
		bs := make([][]float32, 3)
		outs := make([][]float32, 3)
		flops := 0.0
		for i, l := range mnistLayers {
			ws[i] = randSlice(rng, l[0]*l[1])
			bs[i] = randSlice(rng, l[1])
			outs[i] = make([]float32, batch*l[1])
			flops += 2 * float64(batch*l[0]*l[1])
		}
		saved := active.Load()
		for _, kr := range available() {
			active.Store(kr)
			ps := make([]*Packed, 3)
			for i, l := range mnistLayers {
				ps[i] = Pack(ws[i], l[0], l[1], bs[i])
			}
			b.Run(fmt.Sprintf("batch=%d/%s/fused", batch, kr.name), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					in := x
					for i := range mnistLayers {
						Dense(outs[i], in, batch, ps[i], acts[i])
						in = outs[i]
					}
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
			b.Run(fmt.Sprintf("batch=%d/%s/unfused", batch, kr.name), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					in := x
					for i, l := range mnistLayers {
						for r := range batch {
							copy(outs[i][r*l[1]:], bs[i])
						}
						Sgemm(blas.NoTrans, blas.NoTrans, batch, l[1], l[0], 1, in, l[0], ws[i], l[1], 1, outs[i], l[1])
						if acts[i] == ReLU {
							relu(outs[i])
						}
						in = outs[i]
					}
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
		active.Store(saved)
	}
}

// BenchmarkThresholdParallelDense compares one goroutine against
// GOMAXPROCS for Dense on the first MNIST layer (784×128, ReLU), the
// measurement behind denseParallelMinFlops.
func BenchmarkThresholdParallelDense(b *testing.B) {
	rng := rand.New(rand.NewPCG(6, 6))
	w, bias := randSlice(rng, 784*128), randSlice(rng, 128)
	p := Pack(w, 784, 128, bias)
	saved := denseParallelMinFlops
	defer func() { denseParallelMinFlops = saved }()
	for _, m := range []int{64, 128, 256, 1024} {
		x, c := randSlice(rng, m*784), make([]float32, m*128)
		for _, limit := range []int{1 << 62, 0} {
			name := "serial"
			if limit == 0 {
				name = "parallel"
			}
			b.Run(fmt.Sprintf("m=%d/%s", m, name), func(b *testing.B) {
				denseParallelMinFlops = limit
				for b.Loop() {
					Dense(c, x, m, p, ReLU)
				}
			})
		}
	}
}

// digitRow is a 28×28 image like an MNIST digit: a ring of ink (about a
// fifth of the pixels) on a zero background.
func digitRow(rng *rand.Rand) []float32 {
	x := make([]float32, 784)
	for r := range 28 {
		for c := range 28 {
			d := (r-14)*(r-14) + (c-14)*(c-14)
			if d >= 36 && d <= 81 {
				x[r*28+c] = 0.3 + 0.7*rng.Float32()
			}
		}
	}
	return x
}

// BenchmarkDenseRow: one row through the first MNIST layer (784×128,
// ReLU), as a batch-1 request runs it, for a dense row, a digit and a
// row of ReLU outputs (half zeros, scattered); "one call" is the kernel
// over all of x then the ReLU, what Dense did before skipping runs of
// zeros.
func BenchmarkDenseRow(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 7))
	const k, n = 784, 128
	p := Pack(randSlice(rng, k*n), k, n, randSlice(rng, n))
	reluOut := randSlice(rng, k)
	for i := range reluOut {
		if rng.IntN(2) == 0 {
			reluOut[i] = 0
		}
	}
	y := make([]float32, n)
	for _, in := range []struct {
		name string
		x    []float32
	}{{"dense", randSlice(rng, k)}, {"digit", digitRow(rng)}, {"relu", reluOut}} {
		b.Run(in.name+"/Dense", func(b *testing.B) {
			for b.Loop() {
				Dense(y, in.x, 1, p, ReLU)
			}
		})
		b.Run(in.name+"/one-call", func(b *testing.B) {
			for b.Loop() {
				copy(y, p.bias)
				p.kr.gemvT(k, &in.x[0], &p.w[0], n, &y[0], n, 1)
				relu(y)
			}
		})
	}
}
