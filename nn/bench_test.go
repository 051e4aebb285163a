package nn

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
)

// BenchmarkForward measures the MNIST reference model (784-128-128-10) at
// batch 1, 8, 32, 64 and 256 with a reused dst: the steady state of a
// serving instance. Inputs are dense random values ("random") or real MNIST
// test images ("mnist", about 80 % zeros, which gonum's kernels skip).
// path=fused is Forward as served (weights packed at load, bias and ReLU in
// the kernel's epilogue); path=sgemm is the same model through blas32.Gemm
// on nn/kernels with separate bias and activation passes, as before packing.
func BenchmarkForward(b *testing.B) {
	m := testModel(b, mnistSpec(), 1)
	defer func() { fuseForward = true }()
	for _, input := range []string{"random", "mnist"} {
		for _, batch := range []int{1, 8, 32, 64, 256} {
			for _, path := range []string{"fused", "sgemm"} {
				b.Run("input="+input+"/batch="+strconv.Itoa(batch)+"/path="+path, func(b *testing.B) {
					fuseForward = path == "fused"
					x := randInput(rand.New(rand.NewPCG(1, 1)), batch*m.in)
					if input == "mnist" {
						x = loadMNIST(b).testX[:batch*m.in]
					}
					dst := make([]float32, batch*m.out)
					b.ReportAllocs()
					for b.Loop() {
						if _, err := m.Forward(dst, x, batch); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(m.ForwardFLOPs(batch)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(batch), "ns/sample")
				})
			}
		}
	}
}

// BenchmarkTrainStep measures one Adam step at batch 32 on the MNIST model
// (one-epoch Train calls over exactly 32 samples).
func BenchmarkTrainStep(b *testing.B) {
	m := testModel(b, mnistSpec(), 1)
	r := rand.New(rand.NewPCG(2, 2))
	x := randInput(r, 32*m.in)
	y := make([]int32, 32)
	for i := range y {
		y[i] = int32(r.IntN(10))
	}
	// Drive the internals directly, so the figure is the step alone and not
	// Train's per-call set-up (workspace, optimizer state).
	ws := m.newWorkspace(32)
	g := m.newGrads()
	opt := newOptimizer(m, OptAdam, 0.001, 0)
	d := make([]float32, 32*m.out)
	b.ReportAllocs()
	for b.Loop() {
		out := m.forwardTrain(ws, x, 32, nil)
		lossGrad(lossSparseCE, out, m.out, y, nil, 32, true, d)
		m.backward(ws, d, 32, true, g, false)
		opt.apply(m, g)
	}
	b.ReportMetric(m.TrainFLOPs(32)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkTrainEpochCall is Train itself over 320 samples (10 steps),
// per-call set-up included.
func BenchmarkTrainEpochCall(b *testing.B) {
	m := testModel(b, mnistSpec(), 1)
	r := rand.New(rand.NewPCG(2, 2))
	const n = 320
	x := randInput(r, n*m.in)
	y := make([]int32, n)
	for i := range y {
		y[i] = int32(r.IntN(10))
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Train(context.Background(), m, x, y, nil, n, TrainConfig{BatchSize: 32, Epochs: 1}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGemmPrecision compares gonum's float32 and float64 GEMM on the
// first layer's shapes (batch×784 · 784×128), the product that dominates
// both serving and training. It is the measurement behind computing in
// float32.
func BenchmarkGemmPrecision(b *testing.B) {
	const k, n = 784, 128
	for _, rows := range []int{1, 32, 64} {
		a32, w32, c32 := make([]float32, rows*k), make([]float32, k*n), make([]float32, rows*n)
		a64, w64, c64 := make([]float64, rows*k), make([]float64, k*n), make([]float64, rows*n)
		// Dense operands: gonum's kernels skip zero elements of A, so
		// zeros would measure nothing.
		r := rand.New(rand.NewPCG(3, 3))
		for i := range w32 {
			w32[i] = float32(r.NormFloat64())
			w64[i] = float64(w32[i])
		}
		for i := range a32 {
			a32[i] = float32(r.Float64()) + 0.1
			a64[i] = float64(a32[i])
		}
		flops := 2 * float64(rows*k*n)
		b.Run("f32/rows="+strconv.Itoa(rows), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				blas32.Gemm(blas.NoTrans, blas.NoTrans, 1, blas32.General{Rows: rows, Cols: k, Stride: k, Data: a32},
					blas32.General{Rows: k, Cols: n, Stride: n, Data: w32}, 0, blas32.General{Rows: rows, Cols: n, Stride: n, Data: c32})
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run("f64/rows="+strconv.Itoa(rows), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, blas64.General{Rows: rows, Cols: k, Stride: k, Data: a64},
					blas64.General{Rows: k, Cols: n, Stride: n, Data: w64}, 0, blas64.General{Rows: rows, Cols: n, Stride: n, Data: c64})
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkAttribute measures integrated gradients (50 steps) on the MNIST
// model: the cost of one explain request.
func BenchmarkAttribute(b *testing.B) {
	m := testModel(b, mnistSpec(), 1)
	x := randInput(rand.New(rand.NewPCG(1, 1)), m.in)
	for _, method := range []string{AttrGradientXInput, AttrIntegratedGradients} {
		b.Run(method, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Attribute(context.Background(), x, 3, method, 50); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
