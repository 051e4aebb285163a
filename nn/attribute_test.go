package nn

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
)

func sum32(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x)
	}
	return s
}

// For a linear model f(x) = w·x (zero bias), gradient × input is w ⊙ x, so
// it sums to f(x) exactly, and integrated gradients equal it.
func TestAttributeLinear(t *testing.T) {
	m := testModel(t, MLP("lin", 6, nil, "", 3, "linear"), 1)
	x := randInput(rand.New(rand.NewPCG(1, 1)), 6)
	out, err := m.Forward(nil, x, 1)
	if err != nil {
		t.Fatal(err)
	}
	for target := 0; target < 3; target++ {
		gxi, err := m.Attribute(context.Background(), x, target, AttrGradientXInput, 0)
		if err != nil {
			t.Fatal(err)
		}
		ig, err := m.Attribute(context.Background(), x, target, AttrIntegratedGradients, 7)
		if err != nil {
			t.Fatal(err)
		}
		for j := range x {
			want := float64(x[j]) * float64(m.layers[0].w[j*3+target])
			if math.Abs(float64(gxi[j])-want) > 1e-6 || math.Abs(float64(ig[j])-want) > 1e-6 {
				t.Fatalf("target %d feature %d: gxi %v ig %v, want %v", target, j, gxi[j], ig[j], want)
			}
		}
		if s := sum32(gxi); math.Abs(s-float64(out[target])) > 1e-5 {
			t.Fatalf("target %d: Σ gradient×input %v, f(x) %v", target, s, out[target])
		}
	}
}

// Completeness: integrated-gradient attributions sum to f(x) − f(0).
func TestIntegratedGradientsCompleteness(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	for ci, spec := range []Spec{
		MLP("a", 10, []int{16, 16}, "tanh", 4, "softmax"),
		MLP("b", 10, []int{16}, "sigmoid", 3, "sigmoid"),
		MLP("c", 10, []int{32, 32}, "relu", 5, "softmax"),
	} {
		m := testModel(t, spec, int64(ci))
		for i := range m.layers {
			for j := range m.layers[i].b {
				m.layers[i].b[j] = float32(r.NormFloat64() * 0.2)
			}
		}
		x := randInput(r, m.in)
		for j := range x {
			x[j] *= 3
		}
		fx, _ := m.Forward(nil, x, 1)
		f0, _ := m.Forward(nil, make([]float32, m.in), 1)
		for target := 0; target < m.out; target++ {
			attr, err := m.Attribute(context.Background(), x, target, AttrIntegratedGradients, 300)
			if err != nil {
				t.Fatal(err)
			}
			want := float64(fx[target]) - float64(f0[target])
			// The midpoint rule's error shrinks as 1/steps²; 300 steps
			// keeps it far below this tolerance for smooth nets, and the
			// few ReLU kinks on the path cost O(1/steps).
			if got := sum32(attr); math.Abs(got-want) > 2e-3+0.01*math.Abs(want) {
				t.Errorf("case %d target %d: Σ attributions %.6f, f(x) − f(0) = %.6f", ci, target, got, want)
			}
		}
	}
}

func TestAttributeErrors(t *testing.T) {
	m := testModel(t, MLP("m", 4, []int{5}, "relu", 3, "softmax"), 1)
	x := make([]float32, 4)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		ctx    context.Context
		x      []float32
		target int
		method string
		steps  int
		want   error
	}{
		{context.Background(), x[:3], 0, AttrGradientXInput, 0, ErrShape},
		{context.Background(), append(x, 1), 0, AttrGradientXInput, 0, ErrShape},
		{context.Background(), x, 3, AttrGradientXInput, 0, ErrShape},
		{context.Background(), x, -1, AttrIntegratedGradients, 0, ErrShape},
		{context.Background(), x, 0, "lime", 0, ErrSpec},
		{context.Background(), x, 0, AttrIntegratedGradients, -1, ErrSpec},
		{context.Background(), x, 0, AttrIntegratedGradients, MaxIGSteps + 1, ErrSpec},
		{canceled, x, 0, AttrIntegratedGradients, 10, context.Canceled},
	}
	for i, c := range cases {
		if _, err := m.Attribute(c.ctx, c.x, c.target, c.method, c.steps); !errors.Is(err, c.want) {
			t.Errorf("case %d: %v, want %v", i, err, c.want)
		}
	}
}

func TestAttributeConcurrent(t *testing.T) {
	m := testModel(t, MLP("m", 8, []int{8}, "tanh", 3, "softmax"), 1)
	x := randInput(rand.New(rand.NewPCG(3, 3)), 8)
	want, err := m.Attribute(context.Background(), x, 1, AttrIntegratedGradients, 100)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := m.Attribute(context.Background(), x, 1, AttrIntegratedGradients, 100)
			if err != nil {
				t.Error(err)
				return
			}
			for j := range got {
				if got[j] != want[j] {
					t.Error("concurrent attribution differs")
					return
				}
			}
		}()
	}
	wg.Wait()
}
