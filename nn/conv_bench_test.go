package nn

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// lenetSpec is the reference MNIST CNN of examples/mnist/cnn.json.
func lenetSpec() Spec {
	return imageSpec(1, 28, 28, 10,
		Layer{Type: LayerConv2D, Filters: 32, KernelSize: []int{3}, Activation: ActReLU},
		Layer{Type: LayerMaxPool2D, PoolSize: []int{2}},
		Layer{Type: LayerConv2D, Filters: 64, KernelSize: []int{3}, Activation: ActReLU},
		Layer{Type: LayerMaxPool2D, PoolSize: []int{2}},
		Layer{Type: LayerFlatten},
		Layer{Type: LayerDense, Units: 128, Activation: ActReLU},
		Layer{Type: LayerDropout, Rate: 0.5},
		Layer{Type: LayerDense, Units: 10, Activation: ActSoftmax})
}

// BenchmarkConvTrainStep measures one Adam step of the reference CNN on a
// batch of 32 or 64 random images: forward, loss, backward and update, as
// Train runs them. GFLOP/s counts the matrix products (TrainFLOPs).
func BenchmarkConvTrainStep(b *testing.B) {
	for _, batch := range []int{32, 64} {
		b.Run("batch="+strconv.Itoa(batch), func(b *testing.B) {
			m, err := New(lenetSpec(), 1)
			if err != nil {
				b.Fatal(err)
			}
			r := rand.New(rand.NewPCG(2, 2))
			x := randVec(r, batch*m.in)
			y := make([]int32, batch)
			for i := range y {
				y[i] = int32(r.IntN(10))
			}
			ws := m.newWorkspace(batch)
			g := m.newGrads()
			opt := newOptimizer(m, OptAdam, 1e-3, 0)
			d := make([]float32, batch*m.out)
			b.ReportAllocs()
			for b.Loop() {
				out := m.forwardTrain(ws, x, batch, r)
				lossGrad(lossSparseCE, out, m.out, y, nil, batch, true, d)
				m.backward(ws, d, batch, true, g, false)
				opt.apply(m, g)
			}
			b.ReportMetric(m.TrainFLOPs(batch)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(batch)*60000/1e9, "s/epoch")
		})
	}
}

// BenchmarkConvForward measures inference of the reference CNN.
func BenchmarkConvForward(b *testing.B) {
	m, err := New(lenetSpec(), 1)
	if err != nil {
		b.Fatal(err)
	}
	for _, batch := range []int{1, 64} {
		b.Run("batch="+strconv.Itoa(batch), func(b *testing.B) {
			x := randVec(rand.New(rand.NewPCG(1, 1)), batch*m.in)
			dst := make([]float32, batch*m.out)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Forward(dst, x, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(m.ForwardFLOPs(batch)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
