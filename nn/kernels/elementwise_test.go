package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// specialsSlice is random values with NaN, ±0, ±Inf and values around
// the activations' kinks sprinkled in.
func specialsSlice(rng *rand.Rand, n int) []float32 {
	sp := []float32{float32(math.NaN()), 0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)), -3, 3, 6, -1e-3}
	s := randSlice(rng, n)
	for i := range s {
		s[i] *= 4
		if rng.IntN(5) == 0 {
			s[i] = sp[rng.IntN(len(sp))]
		}
	}
	return s
}

// closeTo: NaN matches NaN, infinities and zeros match exactly, others
// within a few ulps (a fused multiply-add rounds once where Go may round
// twice).
func closeTo(got, want, scale float32) bool {
	g, w := float64(got), float64(want)
	if math.IsNaN(w) || math.IsNaN(g) {
		return math.IsNaN(w) && math.IsNaN(g)
	}
	if math.IsInf(w, 0) || math.IsInf(g, 0) || w == 0 {
		return g == w || math.Abs(g-w) <= 4*eps*float64(scale)
	}
	return math.Abs(g-w) <= 4*eps*(math.Abs(w)+float64(scale))
}

func TestElementwise(t *testing.T) {
	withKernel(t, func(t *testing.T, kr *kernel) {
		rng := rand.New(rand.NewPCG(31, 31))
		sizes := []int{0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 1000}
		type binCase struct {
			name string
			f    func(dst, a, b []float32)
			ref  func(x, y float32) float32
		}
		bins := []binCase{
			{"Add", AddF32, func(x, y float32) float32 { return x + y }},
			{"Mul", MulF32, func(x, y float32) float32 { return x * y }},
			{"Max", MaxF32, func(x, y float32) float32 { return max(x, y) }},
		}
		type unCase struct {
			name string
			f    func(dst, a []float32)
			ref  func(x float32) float32
		}
		s, u := float32(0.75), float32(-1.5)
		uns := []unCase{
			{"AddScalar", func(d, a []float32) { AddScalarF32(d, a, s) }, func(x float32) float32 { return x + s }},
			{"MulScalar", func(d, a []float32) { MulScalarF32(d, a, s) }, func(x float32) float32 { return x * s }},
			{"MulAddScalar", func(d, a []float32) { MulAddScalarF32(d, a, s, u) }, func(x float32) float32 { return x*s + u }},
		}
		for _, act := range allActs {
			ep := epFor(act)
			uns = append(uns, unCase{"Act", func(d, a []float32) { copy(d, a); ApplyActivation(d[:len(a)], &ep) }, func(x float32) float32 {
				v := []float32{x}
				actGo(v, v, act, ep.Min, ep.Max, ep.Alpha, ep.Beta)
				return v[0]
			}})
		}
		for _, n := range sizes {
			for _, c := range bins {
				a, b := specialsSlice(rng, n), specialsSlice(rng, n)
				dst := specialsSlice(rng, n+5)
				guard := append([]float32(nil), dst[n:]...)
				c.f(dst, a, b)
				for i := range n {
					if w := c.ref(a[i], b[i]); !closeTo(dst[i], w, 0) && !(c.name == "Max" && dst[i] == 0 && w == 0) {
						t.Errorf("%s n=%d [%d]: f(%v, %v) = %v, want %v", c.name, n, i, a[i], b[i], dst[i], w)
					}
				}
				for i, v := range guard {
					if !sameFloat(dst[n+i], v) {
						t.Fatalf("%s n=%d: wrote past n", c.name, n)
					}
				}
				// In place: dst is a.
				a2 := append([]float32(nil), a...)
				c.f(a2, a2, b)
				for i := range n {
					if !sameFloat(a2[i], dst[i]) {
						t.Fatalf("%s n=%d in place [%d]: %v, want %v", c.name, n, i, a2[i], dst[i])
					}
				}
			}
			for _, c := range uns {
				a := specialsSlice(rng, n)
				dst := specialsSlice(rng, n+5)
				guard := append([]float32(nil), dst[n:]...)
				c.f(dst, a)
				for i := range n {
					if w := c.ref(a[i]); !closeTo(dst[i], w, 8) {
						t.Errorf("%s n=%d [%d]: f(%v) = %v, want %v", c.name, n, i, a[i], dst[i], w)
					}
				}
				for i, v := range guard {
					if !sameFloat(dst[n+i], v) {
						t.Fatalf("%s n=%d: wrote past n", c.name, n)
					}
				}
			}
		}
	})
}

func TestElementwisePanics(t *testing.T) {
	s := make([]float32, 4)
	for name, f := range map[string]func(){
		"add dst":  func() { AddF32(s[:3], s, s) },
		"mul b":    func() { MulF32(s, s, s[:3]) },
		"max dst":  func() { MaxF32(s[:1], s, s) },
		"adds dst": func() { AddScalarF32(s[:3], s, 1) },
		"act":      func() { ApplyActivation(s, &Epilogue{Act: LeakyReLU + 1}) },
	} {
		if r := panicOf(f); r == nil {
			t.Errorf("%s: no panic", name)
		}
	}
}

func TestElementwiseAllocs(t *testing.T) {
	a, b, d := make([]float32, 1000), make([]float32, 1000), make([]float32, 1000)
	ep := &Epilogue{Act: HardSwish, Alpha: 1.0 / 6, Beta: 0.5}
	if n := testing.AllocsPerRun(20, func() {
		AddF32(d, a, b)
		MulAddScalarF32(d, a, 2, 3)
		ApplyActivation(d, ep)
	}); n != 0 {
		t.Errorf("%v allocations, want 0", n)
	}
}

func BenchmarkElementwise(b *testing.B) {
	const n = 56 * 56 * 64
	rng := rand.New(rand.NewPCG(32, 32))
	x, y, d := randSlice(rng, n), randSlice(rng, n), make([]float32, n)
	hs := &Epilogue{Act: HardSwish, Alpha: 1.0 / 6, Beta: 0.5}
	for _, c := range []struct {
		name string
		f    func()
	}{
		{"Add", func() { AddF32(d, x, y) }},
		{"MulAddScalar", func() { MulAddScalarF32(d, x, 2, 3) }},
		{"ReLU", func() { ApplyActivation(d, &Epilogue{Act: ReLU}) }},
		{"HardSwish", func() { ApplyActivation(d, hs) }},
		{"Go/Add", func() { addGo(d, x, y) }},
		{"Go/HardSwish", func() { unaryGo(opHardSwish, d, d, 1.0/6, 0.5) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(n * 4)
			for b.Loop() {
				c.f()
			}
		})
	}
}
