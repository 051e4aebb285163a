package nn

import (
	"math"
	"testing"
)

// Loss values against hand-computed ones, including Keras' clipping of
// probabilities to [1e-7, 1-1e-7].
func TestLossValues(t *testing.T) {
	cases := []struct {
		kind    lossKind
		p       []float32
		k       int
		labels  []int32
		targets []float32
		want    float64
	}{
		{lossSparseCE, []float32{0.25, 0.75}, 2, []int32{1}, nil, -math.Log(0.75)},
		{lossSparseCE, []float32{0.5, 0.5, 0.1, 0.9}, 2, []int32{0, 1}, nil, (-math.Log(0.5) - math.Log(float64(float32(0.9)))) / 2},
		{lossSparseCE, []float32{1, 0}, 2, []int32{1}, nil, -math.Log(1e-7)}, // clipped, finite
		{lossCE, []float32{0.2, 0.8}, 2, nil, []float32{0.5, 0.5}, -(0.5*math.Log(float64(float32(0.2))) + 0.5*math.Log(float64(float32(0.8))))},
		{lossCE, []float32{0, 1}, 2, nil, []float32{1, 0}, -math.Log(1e-7)},
		{lossMSE, []float32{1, 2, 3, 4}, 2, nil, []float32{0, 2, 3, 6}, ((1+0)/2.0 + (0+4)/2.0) / 2},
	}
	for i, c := range cases {
		rows := len(c.p) / c.k
		got := lossGrad(c.kind, c.p, c.k, c.labels, c.targets, rows, false, make([]float32, len(c.p)))
		if math.Abs(got-c.want) > 1e-6*math.Max(1, math.Abs(c.want)) {
			t.Errorf("case %d: loss %v, want %v", i, got, c.want)
		}
	}
}

func TestSoftmaxStable(t *testing.T) {
	z := []float32{1e4, -1e4, 1e4 - 1, 3e38, 3e38, -3e38}
	softmaxRow(z[:3])
	softmaxRow(z[3:])
	for i, v := range z {
		if math.IsNaN(float64(v)) || v < 0 || v > 1 {
			t.Fatalf("z[%d] = %v", i, v)
		}
	}
	if math.Abs(float64(z[0])-1/(1+math.Exp(-1))) > 1e-6 || z[3] != 0.5 {
		t.Fatalf("softmax %v", z)
	}
	for _, v := range []float32{-1e4, -100, 0, 100, 1e4} {
		if s := sigmoid(v); math.IsNaN(float64(s)) || s < 0 || s > 1 {
			t.Fatalf("sigmoid(%v) = %v", v, s)
		}
	}
}

func TestCorrect(t *testing.T) {
	p := []float32{0.1, 0.9, 0.8, 0.2, 0.4, 0.6}
	if n := correct(p, 2, []int32{1, 0, 0}, nil, 3); n != 2 {
		t.Errorf("labels: %d correct, want 2", n)
	}
	if n := correct(p, 2, nil, []float32{0, 1, 0, 1, 1, 0}, 3); n != 1 {
		t.Errorf("targets: %d correct, want 1", n)
	}
	// One output: thresholds at 0.5, as Keras' binary accuracy.
	if n := correct([]float32{0.7, 0.3, 0.6}, 1, nil, []float32{1, 0, 0}, 3); n != 2 {
		t.Errorf("binary: %d correct, want 2", n)
	}
}
