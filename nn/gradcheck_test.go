package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// Gradient checks compare backward against central finite differences.
//
// Compute is float32 (about 6e-8 relative rounding per value), so the step
// must be large for the rounding error, ~1e-7/eps, to stay small. The
// five-point stencil (−f(+2h) + 8f(+h) − 8f(−h) + f(−2h)) / 12h has O(h⁴)
// truncation error, which allows gcEps = 1e-2: truncation ~1e-8 and
// rounding ~1e-5 relative. With ReLU the ±2h stencil would cross kinks too
// often, so those cases use gcEpsReLU = 1e-3 (rounding ~1e-4 relative).
// Losses are summed in float64. Observed errors are 1e-7 to 5e-4; the
// tolerance is 1e-3, and scaling one derivative by 0.9 fails it.
// The comparison is the relative error of the whole gradient vector,
// ‖num − ana‖ / (‖num‖ + ‖ana‖) < gcTol, which a sign error, a missing
// factor or a wrong index fails by orders of magnitude, and which a ReLU
// kink crossed by one perturbation does not.
const (
	gcEps     = 1e-2
	gcEpsReLU = 1e-3
	gcTol     = 1e-3
)

type gcCase struct {
	hidden  string
	dropout float64
	out     string
	loss    lossKind
	fused   bool
}

func (c gcCase) String() string {
	return fmt.Sprintf("hidden=%s dropout=%v out=%s loss=%d fused=%v", c.hidden, c.dropout, c.out, c.loss, c.fused)
}

// eps is the finite-difference step: smaller with ReLU, whose kinks a step
// of ±2·gcEps would cross too often.
func (c gcCase) eps() float32 {
	if c.hidden == "relu" || c.out == "relu" {
		return gcEpsReLU
	}
	return gcEps
}

func gcModel(t *testing.T, c gcCase) *Model {
	t.Helper()
	const in, h, k = 6, 7, 4
	s := Spec{
		Inputs:  []TensorSpec{{Name: "x", Datatype: "FP32", Shape: []int64{-1, in}}},
		Outputs: []TensorSpec{{Name: "y", Datatype: "FP32", Shape: []int64{-1, k}}},
		Layers:  []Layer{{Type: "dense", Units: h, Activation: c.hidden}},
	}
	if c.dropout > 0 {
		s.Layers = append(s.Layers, Layer{Type: "dropout", Rate: c.dropout})
	}
	s.Layers = append(s.Layers, Layer{Type: "dense", Units: h, Activation: c.hidden}, Layer{Type: "dense", Units: k, Activation: c.out})
	m, err := New(s, 7)
	if err != nil {
		t.Fatal(err)
	}
	// Non-zero biases so their gradients are exercised away from symmetry.
	r := rand.New(rand.NewPCG(3, 4))
	for i := range m.layers {
		for j := range m.layers[i].b {
			m.layers[i].b[j] = float32(r.NormFloat64() * 0.3)
		}
	}
	return m
}

// gcLoss runs a training forward pass with a freshly seeded dropout
// generator, so every evaluation sees the same dropout mask.
func gcLoss(m *Model, ws *workspace, x []float32, y []int32, tg []float32, rows int, c gcCase, d []float32) float64 {
	out := m.forwardTrain(ws, x, rows, rand.New(rand.NewPCG(11, 12)))
	return lossGrad(c.loss, out, m.out, y, tg, rows, c.fused, d)
}

// stencil returns the five-point central difference of f with respect to
// *p, restoring *p. The steps are exact in float32 for |*p| < 2^14·gcEps.
func stencil(p *float32, h float32, f func() float64) float64 {
	orig := *p
	at := func(k float32) float64 {
		*p = orig + k*h
		return f()
	}
	d := (-at(2) + 8*at(1) - 8*at(-1) + at(-2)) / (12 * float64(h))
	*p = orig
	return d
}

func relErr(num, ana []float64) float64 {
	var diff, a, b float64
	for i := range num {
		diff += (num[i] - ana[i]) * (num[i] - ana[i])
		a += num[i] * num[i]
		b += ana[i] * ana[i]
	}
	if a+b == 0 {
		return 0
	}
	return math.Sqrt(diff) / (math.Sqrt(a) + math.Sqrt(b))
}

func TestGradientCheck(t *testing.T) {
	var cases []gcCase
	for _, h := range []string{"linear", "relu", "tanh", "sigmoid", "softmax"} {
		cases = append(cases,
			gcCase{hidden: h, out: "softmax", loss: lossSparseCE, fused: true},
			gcCase{hidden: h, out: "linear", loss: lossMSE},
		)
	}
	cases = append(cases,
		gcCase{hidden: "relu", out: "softmax", loss: lossSparseCE, fused: false}, // softmax Jacobian + CE, unfused
		gcCase{hidden: "tanh", out: "softmax", loss: lossCE, fused: true},
		gcCase{hidden: "tanh", out: "softmax", loss: lossCE, fused: false},
		gcCase{hidden: "relu", out: "sigmoid", loss: lossCE},
		gcCase{hidden: "relu", out: "sigmoid", loss: lossSparseCE},
		gcCase{hidden: "sigmoid", out: "tanh", loss: lossMSE},
		gcCase{hidden: "relu", out: "relu", loss: lossMSE},
		gcCase{hidden: "tanh", out: "softmax", loss: lossMSE},
		gcCase{hidden: "relu", dropout: 0.4, out: "softmax", loss: lossSparseCE, fused: true},
		gcCase{hidden: "tanh", dropout: 0.5, out: "linear", loss: lossMSE},
	)
	for ci, c := range cases {
		m := gcModel(t, c)
		const rows = 5
		r := rand.New(rand.NewPCG(uint64(ci), 9))
		x := make([]float32, rows*m.in)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		y := make([]int32, rows)
		tg := make([]float32, rows*m.out)
		for i := range y {
			y[i] = int32(r.IntN(m.out))
			var s float32
			for j := 0; j < m.out; j++ {
				v := float32(r.Float64())
				if c.loss == lossMSE {
					v = float32(r.NormFloat64())
				}
				tg[i*m.out+j] = v
				s += v
			}
			if c.loss == lossCE { // soft targets summing to 1
				for j := 0; j < m.out; j++ {
					tg[i*m.out+j] /= s
				}
			}
		}
		ws := m.newWorkspace(rows)
		g := m.newGrads()
		d := make([]float32, rows*m.out)
		gcLoss(m, ws, x, y, tg, rows, c, d)
		m.backward(ws, d, rows, c.fused, g, false)

		for li := range m.layers {
			l := &m.layers[li]
			if !l.dense {
				continue
			}
			for pi, pair := range [2][2][]float32{{l.w, g.w[li]}, {l.b, g.b[li]}} {
				p, ana := pair[0], pair[1]
				num := make([]float64, len(p))
				an := make([]float64, len(p))
				for j := range p {
					num[j] = stencil(&p[j], c.eps(), func() float64 { return gcLoss(m, ws, x, y, tg, rows, c, nil) })
					an[j] = float64(ana[j])
				}
				e := relErr(num, an)
				if e > gcTol || math.IsNaN(e) {
					t.Errorf("case %d (%v): layer %d param %d: relative error %.2e > %.0e", ci, c, li, pi, e, gcTol)
				}
			}
		}
	}
}

// TestInputGradientCheck checks the input gradient that attributions use:
// the derivative of one output (after its activation) with respect to x.
func TestInputGradientCheck(t *testing.T) {
	for ci, c := range []gcCase{
		{hidden: "relu", out: "softmax"},
		{hidden: "tanh", out: "sigmoid"},
		{hidden: "softmax", out: "linear"},
		{hidden: "sigmoid", dropout: 0.3, out: "softmax"},
	} {
		m := gcModel(t, c)
		r := rand.New(rand.NewPCG(uint64(ci), 1))
		x := make([]float32, m.in)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		f := func(x []float32, target int) float64 {
			out, err := m.Forward(nil, x, 1)
			if err != nil {
				t.Fatal(err)
			}
			return float64(out[target])
		}
		for target := 0; target < m.out; target++ {
			ws := m.newWorkspace(1)
			m.forwardTrain(ws, x, 1, nil)
			d := make([]float32, m.out)
			d[target] = 1
			dx := m.backward(ws, d, 1, false, nil, true)
			num, an := make([]float64, m.in), make([]float64, m.in)
			for j := range x {
				num[j] = stencil(&x[j], c.eps(), func() float64 { return f(x, target) })
				an[j] = float64(dx[j])
			}
			e := relErr(num, an)
			if e > gcTol || math.IsNaN(e) {
				t.Errorf("case %d (%v) target %d: relative error %.2e > %.0e", ci, c, target, e, gcTol)
			}
		}
	}
}
