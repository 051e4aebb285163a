package graph

import (
	"math"
	"testing"
)

// TestExpF32 checks the float32 exponential against math.Exp to 1e-6
// relative over its whole range, on a dense grid and at the edges.
func TestExpF32(t *testing.T) {
	var xs []float32
	for x := -100.0; x <= 100; x += 0.000731 {
		xs = append(xs, float32(x))
	}
	xs = append(xs, 0, float32(math.Copysign(0, -1)), expLo, expHi, -87.33654, 88.72283, 88.7229, -103.9, -104,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 1e-30, -1e-30)
	got := make([]float32, len(xs))
	expF32(got, xs)
	worst := 0.0
	for i, x := range xs {
		want := math.Exp(float64(x))
		g := float64(got[i])
		switch {
		case math.IsNaN(want):
			if !math.IsNaN(g) {
				t.Fatalf("exp(%g) = %g, want NaN", x, g)
			}
			continue
		case math.IsInf(want, 0) || want > math.MaxFloat32:
			if !math.IsInf(g, 1) {
				t.Fatalf("exp(%g) = %g, want +Inf", x, g)
			}
			continue
		case want < 0x1p-126:
			// Subnormal results come from math.Exp rounded.
			if g != float64(float32(want)) {
				t.Fatalf("exp(%g) = %g, want %g", x, g, float32(want))
			}
			continue
		}
		rel := math.Abs(g-want) / want
		worst = math.Max(worst, rel)
		if rel > 1e-6 {
			t.Fatalf("exp(%g) = %g, want %g (relative error %g)", x, g, want, rel)
		}
	}
	t.Logf("worst relative error %.3g over %d points", worst, len(xs))
}
