package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// transcInputs covers the reduction's range and past it, both tails and
// the special values, in every length up to a few vectors (masked tails).
func transcInputs(r *rand.Rand, n int, scale float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(scale * (2*r.Float64() - 1))
	}
	return x
}

func TestExpF32(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n <= 70; n++ {
		for _, scale := range []float64{1, 20, 100} {
			x := transcInputs(r, n, scale)
			for _, impl := range []struct {
				name string
				f    func(o, x []float32)
			}{{"ExpF32", ExpF32}, {"expGo", expGo}} {
				o := make([]float32, n)
				impl.f(o, x)
				for i, v := range x {
					want := math.Exp(float64(v))
					if want > math.MaxFloat32 {
						if !math.IsInf(float64(o[i]), 1) {
							t.Fatalf("%s(%g) = %g, want +Inf", impl.name, v, o[i])
						}
						continue
					}
					if d := math.Abs(float64(o[i]) - want); d > 4e-7*want+1e-38 {
						t.Fatalf("%s(%g) = %g, want %g (rel %.3g)", impl.name, v, o[i], want, d/want)
					}
				}
			}
		}
	}
	inf := float32(math.Inf(1))
	x := []float32{-inf, inf, 0, -104, -200, 89, float32(math.NaN())}
	o := make([]float32, len(x))
	ExpF32(o, x)
	if o[0] != 0 || !math.IsInf(float64(o[1]), 1) || o[2] != 1 || o[3] != 0 || o[4] != 0 || !math.IsInf(float64(o[5]), 1) || !math.IsNaN(float64(o[6])) {
		t.Errorf("special values: exp(%v) = %v", x, o)
	}
}

func TestExpSubSumAndMax(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for n := 1; n <= 100; n++ {
		x := transcInputs(r, n, 10)
		m := x[0]
		for _, v := range x {
			m = max(m, v)
		}
		if got := MaxOfF32(x); got != m {
			t.Fatalf("n %d: MaxOfF32 = %g, want %g", n, got, m)
		}
		want := make([]float64, n)
		sum := 0.0
		for i, v := range x {
			want[i] = math.Exp(float64(v - m))
			sum += want[i]
		}
		s := ExpSubSumF32(x, m)
		if math.Abs(float64(s)-sum) > 1e-6*sum {
			t.Fatalf("n %d: sum %g, want %g", n, s, sum)
		}
		for i := range x {
			if math.Abs(float64(x[i])-want[i]) > 4e-7*want[i]+1e-38 {
				t.Fatalf("n %d: exp(x[%d] - m) = %g, want %g", n, i, x[i], want[i])
			}
		}
	}
}

func TestGeluF32(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for n := 0; n <= 70; n++ {
		for _, scale := range []float64{1, 5, 50} {
			x := transcInputs(r, n, scale)
			for _, impl := range []struct {
				name string
				f    func(o, x []float32)
				ref  func(x float64) float64
			}{
				{"GeluF32", GeluF32, func(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }},
				{"geluErfGo", geluErfGo, func(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }},
				{"GeluTanhF32", GeluTanhF32, func(x float64) float64 {
					return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
				}},
			} {
				o := make([]float32, n)
				impl.f(o, x)
				for i, v := range x {
					want := impl.ref(float64(v))
					if d := math.Abs(float64(o[i]) - want); d > 1e-6*math.Max(1, math.Abs(float64(v))) {
						t.Fatalf("%s(%g) = %g, want %g (Δ %.3g)", impl.name, v, o[i], want, d)
					}
				}
			}
		}
	}
}

func BenchmarkGeluF32(b *testing.B) {
	x := transcInputs(rand.New(rand.NewPCG(1, 1)), 128*1536, 3)
	o := make([]float32, len(x))
	b.SetBytes(int64(4 * len(x)))
	for b.Loop() {
		GeluF32(o, x)
	}
}

func BenchmarkExpSubSumF32(b *testing.B) {
	x := transcInputs(rand.New(rand.NewPCG(1, 1)), 128, 3)
	b.SetBytes(int64(4 * len(x)))
	for b.Loop() {
		ExpSubSumF32(x, 3)
	}
}
