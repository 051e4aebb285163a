package platform

import (
	"strings"
	"testing"
)

func TestCanaryVerdict(t *testing.T) {
	ms := func(v float64) *float64 { return &v }
	side := func(n, errs uint64, p99 float64) canarySide {
		return canarySide{Requests: n, Errors: errs, ErrorRate: float64(errs) / float64(n), P99MS: ms(p99)}
	}
	for i, c := range []struct {
		pri, can canarySide
		want     string
		reason   string
	}{
		{side(1000, 5, 2), side(1000, 6, 2.1), "promote", "error rate"},
		{side(50, 0, 2), side(1000, 0, 2), "insufficient data", "primary has 50"},
		{side(1000, 5, 2), side(1000, 40, 2), "roll back", "fails more"}, // 0.5% vs 4%: z ≈ 5.3
		{side(1000, 5, 2), side(1000, 9, 2), "promote", "error rate"},    // 0.5% vs 0.9%: z ≈ 1.1, noise
		{side(1000, 0, 2), side(1000, 0, 3), "roll back", "slower"},      // p99 1.5× > 1.2×
		{side(1000, 20, 2), side(1000, 0, 2), "promote", "error rate"},   // the canary fails less
	} {
		got, reasons := canaryVerdict(c.pri, c.can, 100, 1.2)
		if got != c.want || !strings.Contains(strings.Join(reasons, " "), c.reason) {
			t.Errorf("case %d: %s %v, want %s (%s)", i, got, reasons, c.want, c.reason)
		}
	}
}

func TestQuantileMS(t *testing.T) {
	les := []float64{0.001, 0.002, 0.004}
	if q := quantileMS(les, []uint64{50, 100, 100}, 100, 0.5); q == nil || *q != 1 {
		t.Errorf("p50 = %v, want 1 ms", q)
	}
	if q := quantileMS(les, []uint64{0, 100, 100}, 100, 0.99); q == nil || *q < 1.98 || *q > 2 {
		t.Errorf("p99 = %v, want ~1.99 ms", *q)
	}
	if q := quantileMS(les, []uint64{0, 0, 0}, 0, 0.5); q != nil {
		t.Errorf("no samples: %v", *q)
	}
}
