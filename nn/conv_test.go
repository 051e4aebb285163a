package nn

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// imageSpec is a convolutional classifier spec on [c, h, w] inputs.
func imageSpec(c, h, w, k int, layers ...Layer) Spec {
	return Spec{
		Inputs:  []TensorSpec{{Name: "image", Datatype: DatatypeFP32, Shape: []int64{-1, int64(c), int64(h), int64(w)}}},
		Outputs: []TensorSpec{{Name: "probs", Datatype: DatatypeFP32, Shape: []int64{-1, int64(k)}}},
		Layers:  layers,
	}
}

func randomize(m *Model, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 5))
	for i := range m.layers {
		l := &m.layers[i]
		for j := range l.b {
			l.b[j] = float32(r.NormFloat64() * 0.3)
		}
		if l.kind == LayerBatchNorm {
			for j := range l.w {
				l.w[j] = float32(0.5 + r.Float64())
				l.mean[j] = float32(r.NormFloat64() * 0.2)
				l.vari[j] = float32(0.5 + r.Float64())
			}
		}
	}
	m.weightsChanged()
}

func randVec(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// convCases are small networks that together use every layer type, option
// and padding mode.
var convCases = []struct {
	name string
	eps  float32 // finite-difference step: gcEps unless there are kinks (ReLU, max pooling)
	spec Spec
}{
	{"conv-valid-maxpool", gcEpsReLU, imageSpec(2, 7, 6, 3,
		Layer{Type: LayerConv2D, Filters: 3, KernelSize: []int{3}, Activation: ActTanh},
		Layer{Type: LayerMaxPool2D, PoolSize: []int{2}},
		Layer{Type: LayerFlatten},
		Layer{Type: LayerDense, Units: 3, Activation: ActSoftmax})},
	{"conv-same-stride-dilation-avgpool-bn-gap", gcEps, imageSpec(3, 8, 7, 4,
		Layer{Type: LayerConv2D, Filters: 4, KernelSize: []int{3, 2}, Strides: []int{2, 1}, DilationRate: []int{1, 2}, Padding: PaddingSame, Activation: ActSigmoid},
		Layer{Type: LayerBatchNorm},
		Layer{Type: LayerAvgPool2D, PoolSize: []int{2}, Strides: []int{1}, Padding: PaddingSame},
		Layer{Type: LayerConv2D, Filters: 5, KernelSize: []int{1}},
		Layer{Type: LayerGlobalAvg},
		Layer{Type: LayerDense, Units: 4, Activation: ActSoftmax})},
	{"avgpool-same-bn-flat-dropout", gcEps, imageSpec(1, 5, 5, 2,
		Layer{Type: LayerConv2D, Filters: 2, KernelSize: []int{2}, Padding: PaddingSame, Strides: []int{2}},
		Layer{Type: LayerAvgPool2D, PoolSize: []int{2}, Padding: PaddingSame},
		Layer{Type: LayerFlatten},
		Layer{Type: LayerBatchNorm, Momentum: 0.9, Epsilon: 1e-2},
		Layer{Type: LayerDropout, Rate: 0.3},
		Layer{Type: LayerDense, Units: 2, Activation: ActSoftmax})},
	{"maxpool-same-edges", gcEpsReLU, imageSpec(2, 5, 5, 3,
		Layer{Type: LayerConv2D, Filters: 3, KernelSize: []int{3}, Padding: PaddingSame, Activation: ActTanh},
		Layer{Type: LayerMaxPool2D, PoolSize: []int{2}, Padding: PaddingSame},
		Layer{Type: LayerFlatten},
		Layer{Type: LayerDense, Units: 3, Activation: ActSoftmax})},
}

// TestConvGradientCheck compares the backward pass of convolutional
// networks, parameters and input, with finite differences of the training
// loss (batch statistics for batch normalisation, a fixed dropout mask).
func TestConvGradientCheck(t *testing.T) {
	for ci, tc := range convCases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := New(tc.spec, 3)
			if err != nil {
				t.Fatal(err)
			}
			randomize(m, uint64(ci))
			const rows = 3
			r := rand.New(rand.NewPCG(uint64(ci), 17))
			x := randVec(r, rows*m.in)
			y := make([]int32, rows)
			for i := range y {
				y[i] = int32(r.IntN(m.out))
			}
			ws := m.newWorkspace(rows)
			loss := func() float64 {
				out := m.forwardTrain(ws, x, rows, rand.New(rand.NewPCG(11, 12)))
				return lossGrad(lossSparseCE, out, m.out, y, nil, rows, true, nil)
			}
			d := make([]float32, rows*m.out)
			out := m.forwardTrain(ws, x, rows, rand.New(rand.NewPCG(11, 12)))
			lossGrad(lossSparseCE, out, m.out, y, nil, rows, true, d)
			g := m.newGrads()
			dx := append([]float32(nil), m.backward(ws, d, rows, true, g, true)...)

			check := func(what string, p, ana []float32) {
				num, an := make([]float64, len(p)), make([]float64, len(p))
				for j := range p {
					num[j] = stencil(&p[j], tc.eps, loss)
					an[j] = float64(ana[j])
				}
				e := relErr(num, an)
				// A bias followed by a batch normalisation has no effect on
				// the loss: both gradients are then rounding noise, which
				// relErr cannot compare.
				invariant := norm(num) < 1e-3 && norm(an) < 1e-4
				if (e > gcTol && !invariant) || math.IsNaN(e) {
					t.Errorf("%s: relative error %.2e > %.0e", what, e, gcTol)
				}
			}
			for li := range m.layers {
				if l := &m.layers[li]; l.hasWeights() {
					check(l.kind+" weight", l.w, g.w[li])
					check(l.kind+" bias", l.b, g.b[li])
				}
			}
			check("input", x, dx)
		})
	}
}

// TestConvInputGradientInference checks the input gradient attributions
// use (inference mode: batch normalisation by its running statistics).
func TestConvInputGradientInference(t *testing.T) {
	m, err := New(convCases[1].spec, 4)
	if err != nil {
		t.Fatal(err)
	}
	randomize(m, 9)
	r := rand.New(rand.NewPCG(2, 2))
	x := randVec(r, m.in)
	ws := m.newWorkspace(1)
	for target := range m.out {
		m.forwardTrain(ws, x, 1, nil)
		d := make([]float32, m.out)
		d[target] = 1
		dx := m.backward(ws, d, 1, false, nil, true)
		num, an := make([]float64, m.in), make([]float64, m.in)
		for j := range x {
			// A larger step than gcEps: some outputs depend on the input
			// weakly (|∇| ≈ 0.007), so the float32 rounding of the forward
			// pass over the step dominates at 1e-2 — with the pure-Go
			// kernels' summation order it passed the tolerance. The model
			// is smooth (sigmoid, averages, affine maps): the five-point
			// stencil's truncation at 4e-2 is ~1e-6 relative.
			num[j] = stencil(&x[j], 4*gcEps, func() float64 {
				out, err := m.Forward(nil, x, 1)
				if err != nil {
					t.Fatal(err)
				}
				return float64(out[target])
			})
			an[j] = float64(dx[j])
		}
		if e := relErr(num, an); e > gcTol || math.IsNaN(e) {
			t.Errorf("target %d: relative error %.2e (norm %.3g)", target, e, norm(num))
		} else {
			t.Logf("target %d: relative error %.2e (norm %.3g)", target, e, norm(num))
		}
	}
}

// naiveConv is a direct convolution written from the definition, to check
// the im2col path against.
func naiveConv(x []float32, c, h, w int, wt, b []float32, f, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow int) []float32 {
	out := make([]float32, f*oh*ow)
	for o := range f {
		for oy := range oh {
			for ox := range ow {
				s := float64(b[o])
				for ci := range c {
					for ky := range kh {
						for kx := range kw {
							iy, ix := oy*sh-pt+ky*dh, ox*sw-pl+kx*dw
							if iy < 0 || iy >= h || ix < 0 || ix >= w {
								continue
							}
							s += float64(x[(ci*h+iy)*w+ix]) * float64(wt[((o*c+ci)*kh+ky)*kw+kx])
						}
					}
				}
				out[(o*oh+oy)*ow+ox] = float32(s)
			}
		}
	}
	return out
}

// TestConvForwardMatchesDefinition runs single convolutions of many
// geometries through Forward (one sample and several, so both the direct
// and the batched product) and compares with naiveConv.
func TestConvForwardMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for trial := range 40 {
		c, h, w := 1+r.IntN(3), 1+r.IntN(9), 1+r.IntN(9)
		l := Layer{Type: LayerConv2D, Filters: 1 + r.IntN(4),
			KernelSize: []int{1 + r.IntN(3), 1 + r.IntN(3)}, Strides: []int{1 + r.IntN(3), 1 + r.IntN(3)},
			DilationRate: []int{1 + r.IntN(2), 1 + r.IntN(2)}}
		if r.IntN(2) == 0 {
			l.Padding = PaddingSame
		}
		p, err := shape{c: c, h: h, w: w, spatial: true}.plan1(l)
		if err != nil {
			continue // window larger than a valid-padded input
		}
		spec := imageSpec(c, h, w, 2, l, Layer{Type: LayerFlatten}, Layer{Type: LayerDense, Units: 2})
		m, err := New(spec, int64(trial))
		if err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		}
		randomize(m, uint64(trial))
		cl := &m.layers[0]
		for _, rows := range []int{1, 3} {
			x := randVec(r, rows*m.in)
			ws := m.newWorkspace(rows)
			m.forwardTrain(ws, x, rows, nil)
			for b := range rows {
				want := naiveConv(x[b*m.in:(b+1)*m.in], c, h, w, cl.w, cl.b, l.Filters, p.g.kh, p.g.kw, p.g.sh, p.g.sw, p.g.dh, p.g.dw, p.g.pt, p.g.pl, p.out.h, p.out.w)
				got := ws.acts[1][b*cl.out : (b+1)*cl.out]
				for j := range want {
					if d := math.Abs(float64(got[j] - want[j])); d > 1e-4*(1+math.Abs(float64(want[j]))) {
						t.Fatalf("trial %d (%+v on [%d %d %d]) rows %d sample %d: value %d is %v, want %v", trial, l, c, h, w, rows, b, j, got[j], want[j])
					}
				}
			}
			// Forward (chunked, pooled scratch) agrees with the training pass.
			out, err := m.Forward(nil, x, rows)
			if err != nil {
				t.Fatal(err)
			}
			for j, v := range ws.acts[len(m.layers)][:rows*m.out] {
				if math.Abs(float64(out[j]-v)) > 1e-5 {
					t.Fatalf("trial %d: Forward %v, training pass %v", trial, out[j], v)
				}
			}
		}
	}
}

// plan1 plans one windowed layer on input s.
func (s shape) plan1(l Layer) (layerPlan, error) {
	g, oh, ow, err := l.window(0, s)
	return layerPlan{in: s, out: shape{c: l.Filters, h: oh, w: ow, spatial: true}, g: g}, err
}

// TestPoolingDefinition checks max and average pooling, "same" padding
// excluded from windows, against the definition.
func TestPoolingDefinition(t *testing.T) {
	x := []float32{ // one channel, 3×5
		1, -2, 3, 0, 5,
		-1, 7, -3, 2, -6,
		4, 0, 8, -9, 1,
	}
	for _, tc := range []struct {
		l    Layer
		want []float32
	}{
		{Layer{Type: LayerMaxPool2D, PoolSize: []int{2}}, []float32{7, 3}},
		{Layer{Type: LayerMaxPool2D, PoolSize: []int{2}, Padding: PaddingSame}, []float32{7, 3, 5, 4, 8, 1}},
		{Layer{Type: LayerAvgPool2D, PoolSize: []int{2}, Padding: PaddingSame}, []float32{5. / 4, 2. / 4, -1. / 2, 4. / 2, -1. / 2, 1}},
		{Layer{Type: LayerAvgPool2D, PoolSize: []int{3}, Strides: []int{1, 2}}, []float32{17. / 9, 1. / 9}},
		{Layer{Type: LayerMaxPool2D, PoolSize: []int{1, 5}}, []float32{5, 7, 8}},
	} {
		spec := imageSpec(1, 3, 5, 1, tc.l, Layer{Type: LayerFlatten}, Layer{Type: LayerDense, Units: 1})
		m, err := New(spec, 1)
		if err != nil {
			t.Fatalf("%+v: %v", tc.l, err)
		}
		ws := m.newWorkspace(1)
		m.forwardTrain(ws, x, 1, nil)
		got := ws.acts[1]
		if len(got) != len(tc.want) {
			t.Fatalf("%+v: %d outputs, want %d", tc.l, len(got), len(tc.want))
		}
		for j := range got {
			if math.Abs(float64(got[j]-tc.want[j])) > 1e-6 {
				t.Errorf("%+v: output %v, want %v", tc.l, got, tc.want)
				break
			}
		}
	}
}

// TestBatchNormStatistics checks training mode (batch statistics, running
// ones folded in with the momentum) and inference mode (running ones).
func TestBatchNormStatistics(t *testing.T) {
	spec := imageSpec(2, 1, 2, 1, Layer{Type: LayerBatchNorm, Momentum: 0.5, Epsilon: 1e-3}, Layer{Type: LayerFlatten}, Layer{Type: LayerDense, Units: 1})
	m, err := New(spec, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Two samples; channel 0 holds 1, 3 | 5, 7 (mean 4, var 5), channel 1 all 2.
	x := []float32{1, 3, 2, 2, 5, 7, 2, 2}
	ws := m.newWorkspace(2)
	m.forwardTrain(ws, x, 2, rand.New(rand.NewPCG(1, 1)))
	bn := &m.layers[0]
	inv := 1 / math.Sqrt(5+1e-3)
	if got := ws.acts[1][0]; math.Abs(float64(got)-(1-4)*inv) > 1e-5 {
		t.Errorf("normalised value %v, want %v", got, (1-4)*inv)
	}
	if got := ws.acts[1][2]; got != 0 {
		t.Errorf("constant channel normalised to %v, want 0", got)
	}
	if bn.mean[0] != 2 || math.Abs(float64(bn.vari[0])-3) > 1e-6 || bn.mean[1] != 1 || bn.vari[1] != 0.5 {
		t.Errorf("running mean %v var %v, want [2 1] [3 0.5]", bn.mean, bn.vari)
	}
	m.forwardTrain(ws, x, 2, nil)
	want := (1 - 2) / math.Sqrt(3+1e-3)
	if got := ws.acts[1][0]; math.Abs(float64(got)-want) > 1e-5 {
		t.Errorf("inference value %v, want %v (running statistics)", got, want)
	}
}

// TestConvArtifactRoundTrip writes and reads back a network with every
// layer type; the copy computes the same outputs, running statistics
// included, and a tensor of the wrong shape is refused.
func TestConvArtifactRoundTrip(t *testing.T) {
	m, err := New(convCases[1].spec, 5)
	if err != nil {
		t.Fatal(err)
	}
	randomize(m, 1)
	var buf bytes.Buffer
	if err := m.WriteArtifact(&buf, Metadata{}); err != nil {
		t.Fatal(err)
	}
	c, _, err := ReadArtifact(buf.Bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	x := randVec(rand.New(rand.NewPCG(3, 3)), 4*m.in)
	a, _ := m.Forward(nil, x, 4)
	b, _ := c.Forward(nil, x, 4)
	for j := range a {
		if a[j] != b[j] {
			t.Fatalf("output %d: %v after the round trip, %v before", j, b[j], a[j])
		}
	}
	if c.NumParams() != m.NumParams() || m.NumParams() != (4*3*3*2+4)+4*4+(5*4+5)+(5*4+4) {
		t.Errorf("params %d and %d", c.NumParams(), m.NumParams())
	}
	// Swap the conv weight for one of the transposed shape.
	bad := strings.Replace(buf.String(), `"shape":[4,3,3,2]`, `"shape":[3,4,3,2]`, 1)
	if _, _, err := ReadArtifact([]byte(bad), nil); err == nil || !strings.Contains(err.Error(), "shape") {
		t.Errorf("conv weight of the wrong shape: err %v", err)
	}
}

// TestConvSpecErrors checks that malformed convolutional specs are refused
// with the field named.
func TestConvSpecErrors(t *testing.T) {
	conv := Layer{Type: LayerConv2D, Filters: 2, KernelSize: []int{3}}
	tail := []Layer{{Type: LayerFlatten}, {Type: LayerDense, Units: 2}}
	for _, tc := range []struct {
		spec Spec
		want string
	}{
		{imageSpec(1, 2, 2, 2, append([]Layer{conv}, tail...)...), "larger than the input"},
		{imageSpec(1, 8, 8, 2, Layer{Type: LayerConv2D, Filters: 2}, tail[0], tail[1]), "kernel_size is required"},
		{imageSpec(1, 8, 8, 2, Layer{Type: LayerConv2D, Filters: 2, KernelSize: []int{3, 3, 3}}, tail[0], tail[1]), "1 or 2"},
		{imageSpec(1, 8, 8, 2, Layer{Type: LayerConv2D, Filters: 2, KernelSize: []int{0}}, tail[0], tail[1]), "kernel_size"},
		{imageSpec(1, 8, 8, 2, Layer{Type: LayerConv2D, Filters: 2, KernelSize: []int{3}, Padding: "full"}, tail[0], tail[1]), "padding"},
		{imageSpec(1, 8, 8, 2, Layer{Type: LayerConv2D, Filters: 2, KernelSize: []int{3}, Activation: ActSoftmax}, tail[0], tail[1]), "softmax"},
		{imageSpec(1, 8, 8, 2, conv, Layer{Type: LayerDense, Units: 2}), "flatten"},
		{imageSpec(1, 8, 8, 2, conv), "image"},
		{imageSpec(1, 8, 8, 2, Layer{Type: LayerMaxPool2D, PoolSize: []int{2}, Units: 3}, tail[0], tail[1]), `"units"`},
		{imageSpec(1, 8, 8, 2, Layer{Type: LayerBatchNorm, Momentum: 1}, tail[0], tail[1]), "momentum"},
		{imageSpec(1, 5000, 8, 2, conv, tail[0], tail[1]), "dimension"},
		{MLPWith(Layer{Type: LayerConv2D, Filters: 2, KernelSize: []int{1}}), "needs an image"},
	} {
		err := tc.spec.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one containing %q", tc.spec.Layers, err, tc.want)
		}
	}
}

// MLPWith is a flat-input spec with one layer before the output.
func MLPWith(l Layer) Spec {
	s := MLP("x", 4, nil, "", 2, "softmax")
	s.Layers = append([]Layer{l}, s.Layers...)
	return s
}

// TestConvTrainLearns trains a small CNN to tell horizontal from vertical
// bars at random places: a task a dense layer on 64 pixels learns slowly
// and a convolution at once.
func TestConvTrainLearns(t *testing.T) {
	const n, side = 512, 8
	r := rand.New(rand.NewPCG(7, 7))
	x := make([]float32, n*side*side)
	y := make([]int32, n)
	for i := range n {
		img := x[i*side*side : (i+1)*side*side]
		for j := range img {
			img[j] = float32(r.NormFloat64() * 0.1)
		}
		p, q := r.IntN(side), r.IntN(side-3)
		y[i] = int32(i % 2)
		for k := range 4 {
			if y[i] == 0 {
				img[p*side+q+k] += 1
			} else {
				img[(q+k)*side+p] += 1
			}
		}
	}
	spec := imageSpec(1, side, side, 2,
		Layer{Type: LayerConv2D, Filters: 4, KernelSize: []int{3}, Padding: PaddingSame, Activation: ActReLU},
		Layer{Type: LayerBatchNorm},
		Layer{Type: LayerMaxPool2D},
		Layer{Type: LayerGlobalAvg},
		Layer{Type: LayerDense, Units: 2, Activation: ActSoftmax})
	m, err := New(spec, 1)
	if err != nil {
		t.Fatal(err)
	}
	h, err := Train(context.Background(), m, x, y, nil, n, TrainConfig{Epochs: 20, BatchSize: 16, LearningRate: 0.01, Seed: 1,
		Schedule: &Schedule{Kind: ScheduleCosine}})
	if err != nil {
		t.Fatal(err)
	}
	_, acc, err := m.Evaluate(x, y, n)
	if err != nil {
		t.Fatal(err)
	}
	if acc < 0.95 {
		t.Errorf("accuracy %.3f after %d epochs (history %+v), want ≥ 0.95", acc, len(h.Epochs), h.Epochs[len(h.Epochs)-1])
	}
}

// TestScheduleRates checks the step and cosine schedules' rates.
func TestScheduleRates(t *testing.T) {
	step := &Schedule{Kind: ScheduleStep, StepEpochs: 2, Gamma: 0.5}
	for e, want := range []float64{1, 1, 0.5, 0.5, 0.25} {
		if got := step.rate(1, e, 5); math.Abs(got-want) > 1e-12 {
			t.Errorf("step epoch %d: %v, want %v", e, got, want)
		}
	}
	cos := &Schedule{Kind: ScheduleCosine, MinRate: 0.1}
	for e, want := range []float64{1, 0.55 + 0.45*math.Cos(math.Pi/4), 0.55, 0.55 + 0.45*math.Cos(3*math.Pi/4)} {
		if got := cos.rate(1, e, 4); math.Abs(got-want) > 1e-12 {
			t.Errorf("cosine epoch %d: %v, want %v", e, got, want)
		}
	}
	if err := (&Schedule{Kind: "linear"}).validate(1); err == nil {
		t.Error("unknown schedule accepted")
	}
	if err := (&Schedule{Kind: ScheduleCosine, MinRate: 2}).validate(1); err == nil {
		t.Error("cosine min_rate above the base rate accepted")
	}
}

func norm(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x * x
	}
	return math.Sqrt(s)
}

// TestAugment checks a shift and a flip of a 1×3×4 image, and that tables
// pass through unchanged.
func TestAugment(t *testing.T) {
	src := []float32{
		1, 2, 3, 4,
		5, 6, 7, 8,
		9, 10, 11, 12,
	}
	s := shape{c: 1, h: 3, w: 4, spatial: true}
	dst := make([]float32, 12)
	seen := map[string]bool{}
	r := rand.New(rand.NewPCG(1, 2))
	a := &Augment{Shift: 1, FlipHorizontal: true}
	for range 400 {
		a.apply(dst, src, s, r)
		seen[fmt.Sprint(dst)] = true
	}
	// 3 × 3 shifts × 2 flips, all distinct for this image.
	if len(seen) != 18 {
		t.Errorf("%d distinct augmentations, want 18", len(seen))
	}
	for _, want := range [][]float32{
		{0, 0, 0, 0, 0, 1, 2, 3, 0, 5, 6, 7},    // down 1, right 1
		{4, 3, 2, 1, 8, 7, 6, 5, 12, 11, 10, 9}, // mirrored
		{0, 0, 0, 0, 3, 2, 1, 0, 7, 6, 5, 0},    // down 1, then mirrored (the shift is applied to the source)
	} {
		if !seen[fmt.Sprint(want)] {
			t.Errorf("never produced %v", want)
		}
	}
	a.apply(dst, src, shape{c: 12, h: 1, w: 1}, r)
	if fmt.Sprint(dst) != fmt.Sprint(src) {
		t.Errorf("a table was changed: %v", dst)
	}
}
