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

// BenchmarkConvLayer measures the reference CNN's two convolutions alone
// at batch 64, forward (im2col, product, bias and ReLU) and backward
// (weight gradient, and for the second the input gradient with col2im),
// in GFLOP/s of their matrix products, to set against the machine's peak.
func BenchmarkConvLayer(b *testing.B) {
	const batch = 64
	m, err := New(lenetSpec(), 1)
	if err != nil {
		b.Fatal(err)
	}
	ws := m.newWorkspace(batch)
	r := rand.New(rand.NewPCG(3, 3))
	x := randVec(r, batch*m.in)
	m.forwardTrain(ws, x, batch, r)
	for _, li := range []int{0, 2} {
		l := &m.layers[li]
		in, out := ws.acts[li][:batch*l.in], ws.acts[li+1][:batch*l.out]
		cs := convScratch{col: ws.cols[li], fm: ws.fm, t: ws.t, train: true}
		g := m.newGrads()
		d := randVec(r, batch*l.out)
		dx := make([]float32, batch*l.in)
		name := "conv" + strconv.Itoa(li/2+1)
		b.Run(name+"/forward", func(b *testing.B) {
			for b.Loop() {
				l.convForward(out, in, batch, &cs)
			}
			b.ReportMetric(2*l.macs()*batch*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run(name+"/backward", func(b *testing.B) {
			var into []float32
			products := 1.0 // the weight gradient
			if li > 0 {
				into, products = dx, 2 // and the input gradient
			}
			for b.Loop() {
				l.convBackward(into, d, batch, &cs, g.w[li], g.b[li])
			}
			b.ReportMetric(products*2*l.macs()*batch*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
