package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// denseCase is one Dense product: m×k times k×n, with or without a bias.
type denseCase struct {
	m, k, n int
	bias    bool
	act     Activation
}

func (c denseCase) String() string {
	return fmt.Sprintf("m=%d k=%d n=%d bias=%v act=%d", c.m, c.k, c.n, c.bias, c.act)
}

// denseCases covers 1, odd sizes, each kernel's mr and nr ±1, the K block
// boundary ±1 (kc is 192 for the AVX-512 kernel on this machine, 64…512
// in general), several blocks of K, the MNIST shapes, and a product above
// the parallel threshold.
func denseCases(kr *kernel) []denseCase {
	mr, nr, kc := kr.mr, kr.nr, kr.blk.kc
	ms := []int{1, 2, 3, mr - 1, mr, mr + 1, 2*mr + 3, 17, 64}
	ns := []int{1, 5, nr - 1, nr, nr + 1, 2*nr + 3, 10, 128}
	ks := []int{1, 2, 7, kc - 1, kc, kc + 1, 2*kc + 5, 784}
	var cs []denseCase
	rng := rand.New(rand.NewPCG(11, uint64(mr*nr)))
	for _, m := range ms {
		for _, n := range ns {
			// Every (m, n) once with a random k, bias and activation,
			// and every k with a random (m, n): the full product of the
			// three lists would be slow under -race and qemu.
			k := ks[rng.IntN(len(ks))]
			cs = append(cs, denseCase{m: max(1, m), k: k, n: max(1, n), bias: rng.IntN(4) != 0, act: Activation(rng.IntN(2))})
		}
	}
	for _, k := range ks {
		for _, act := range []Activation{Linear, ReLU} {
			cs = append(cs, denseCase{m: max(1, ms[rng.IntN(len(ms))]), k: k, n: max(1, ns[rng.IntN(len(ns))]), bias: true, act: act})
		}
	}
	cs = append(cs, denseCase{64, 784, 128, true, ReLU}, denseCase{64, 128, 128, true, ReLU},
		denseCase{64, 128, 10, true, Linear}, denseCase{256, 784, 128, true, ReLU},
		// x's rows 4 KiB apart with several blocks of K (the block of x
		// copied), full and partial row tiles; C over denseCBlock (columns
		// in chunks) with several blocks of K.
		denseCase{2*mr + 3, 2048, 2*nr + 3, true, ReLU}, denseCase{4 * mr, 1024, nr, false, Linear},
		denseCase{mr + 1, 2*kc + 5, 64<<10/mr + 3*nr + 1, true, Linear})
	return cs
}

// checkDense runs Dense on random operands and compares it with two
// references: the exact product in float64, within the bound of the Sgemm
// tests (2·(k+2)·ε·(|x|·|W| + |b|) per element, ReLU being 1-Lipschitz),
// and the unfused path (gonum's Sgemm on C preloaded with the bias, then
// ReLU), within the same bound. NaN and -0 must come through ReLU as they
// do through "if v < 0 { v = 0 }".
func checkDense(t *testing.T, rng *rand.Rand, tc denseCase) {
	t.Helper()
	x := randSlice(rng, tc.m*tc.k)
	w := randSlice(rng, tc.k*tc.n)
	var bias []float32
	if tc.bias {
		bias = randSlice(rng, tc.n)
	}
	p := Pack(w, tc.k, tc.n, bias)
	if k, n := p.Dims(); k != tc.k || n != tc.n {
		t.Fatalf("%v: Dims %d×%d", tc, k, n)
	}
	// dst starts as garbage (NaN): Dense must overwrite every element.
	got := make([]float32, tc.m*tc.n+3)
	for i := range got {
		got[i] = float32(math.NaN())
	}
	Dense(got, x, tc.m, p, tc.act)
	for i := tc.m * tc.n; i < len(got); i++ {
		if !math.IsNaN(float64(got[i])) {
			t.Fatalf("%v: Dense wrote past m×n at %d", tc, i)
		}
	}
	got = got[:tc.m*tc.n]

	unfused := make([]float32, tc.m*tc.n)
	for r := range tc.m {
		if bias != nil {
			copy(unfused[r*tc.n:], bias)
		}
	}
	gonum.Implementation{}.Sgemm(blas.NoTrans, blas.NoTrans, tc.m, tc.n, tc.k, 1, x, tc.k, w, tc.n, 1, unfused, tc.n)
	if tc.act == ReLU {
		relu(unfused)
	}

	bad := 0
	for r := range tc.m {
		for j := range tc.n {
			exact, mag := 0.0, 0.0
			if bias != nil {
				exact, mag = float64(bias[j]), math.Abs(float64(bias[j]))
			}
			for q := range tc.k {
				v := float64(x[r*tc.k+q]) * float64(w[q*tc.n+j])
				exact += v
				mag += math.Abs(v)
			}
			if tc.act == ReLU {
				exact = max(exact, 0)
			}
			bound := 2 * float64(tc.k+2) * eps * mag
			g := float64(got[r*tc.n+j])
			if d := math.Abs(g - exact); !(d <= bound) || (tc.act == ReLU && g < 0) {
				if bad++; bad <= 3 {
					t.Errorf("%v: [%d,%d] = %v, exact %v, |Δ| %.3g > %.3g", tc, r, j, g, exact, d, bound)
				}
			}
			if d := math.Abs(g - float64(unfused[r*tc.n+j])); !(d <= 2*bound) {
				if bad++; bad <= 3 {
					t.Errorf("%v: [%d,%d] = %v, unfused %v, |Δ| %.3g > %.3g", tc, r, j, g, unfused[r*tc.n+j], d, 2*bound)
				}
			}
		}
	}
}

func TestDense(t *testing.T) {
	withKernel(t, func(t *testing.T, kr *kernel) {
		rng := rand.New(rand.NewPCG(12, 12))
		for _, tc := range denseCases(kr) {
			checkDense(t, rng, tc)
		}
	})
}

// TestDenseReLUSpecials: NaN stays NaN, zeros stay zero, negatives become +0,
// through every path (GEMV, fused tile, edge tile).
func TestDenseReLUSpecials(t *testing.T) {
	withKernel(t, func(t *testing.T, kr *kernel) {
		for _, m := range []int{1, kr.mr, kr.mr + 1} {
			n := kr.nr + 1
			const k = 3
			x := make([]float32, m*k)
			for r := range m {
				x[r*k] = 1
			}
			w := make([]float32, k*n) // column j of row 0 is the value
			vals := []float32{float32(math.NaN()), float32(math.Copysign(0, -1)), -2, 3}
			for j := range n {
				w[j] = vals[j%len(vals)]
			}
			p := Pack(w, k, n, nil)
			dst := make([]float32, m*n)
			Dense(dst, x, m, p, ReLU)
			for r := range m {
				for j := range n {
					g := dst[r*n+j]
					var ok bool
					switch v := vals[j%len(vals)]; {
					case math.IsNaN(float64(v)):
						ok = math.IsNaN(float64(g))
					case v == 0: // 0·1 + 0 is +0 whatever the sign of v
						ok = g == 0
					case v < 0:
						ok = g == 0 && !math.Signbit(float64(g))
					default:
						ok = g == v
					}
					if !ok {
						t.Errorf("m=%d [%d,%d]: relu(%v) = %v", m, r, j, vals[j%len(vals)], g)
					}
				}
			}
		}
	})
}

// TestDenseConcurrent shares one Packed between goroutines (run with
// -race): it is read-only.
func TestDenseConcurrent(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 13))
	const m, k, n = 19, 300, 45
	x, w, b := randSlice(rng, m*k), randSlice(rng, k*n), randSlice(rng, n)
	p := Pack(w, k, n, b)
	want := make([]float32, m*n)
	Dense(want, x, m, p, ReLU)
	done := make(chan []float32)
	for range 8 {
		go func() {
			got := make([]float32, m*n)
			for range 20 {
				Dense(got, x, m, p, ReLU)
			}
			done <- got
		}()
	}
	for range 8 {
		got := <-done
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("element %d: %v, want %v", i, got[i], want[i])
			}
		}
	}
}

func TestDenseAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under -race")
	}
	rng := rand.New(rand.NewPCG(14, 14))
	for _, m := range []int{1, 8, 13, 64} {
		const k, n = 784, 128
		x, w, b := randSlice(rng, m*k), randSlice(rng, k*n), randSlice(rng, n)
		p := Pack(w, k, n, b)
		dst := make([]float32, m*n)
		if a := testing.AllocsPerRun(50, func() { Dense(dst, x, m, p, ReLU) }); a != 0 {
			t.Errorf("m=%d: %v allocations per Dense, want 0", m, a)
		}
	}
}

func TestDensePanics(t *testing.T) {
	w := make([]float32, 6)
	p := Pack(w, 2, 3, nil)
	for _, c := range []struct {
		name string
		f    func()
		want string
	}{
		{"k<1", func() { Pack(w, 0, 3, nil) }, kLT0},
		{"n<1", func() { Pack(w, 2, 0, nil) }, nLT0},
		{"short w", func() { Pack(w[:5], 2, 3, nil) }, shortB},
		{"short bias", func() { Pack(w, 2, 3, make([]float32, 2)) }, shortBias},
		{"m<0", func() { Dense(nil, nil, -1, p, Linear) }, mLT0},
		{"short x", func() { Dense(make([]float32, 6), make([]float32, 3), 2, p, Linear) }, shortA},
		{"short dst", func() { Dense(make([]float32, 5), make([]float32, 4), 2, p, Linear) }, shortDst},
		{"act", func() { Dense(make([]float32, 6), make([]float32, 4), 2, p, ReLU+1) }, badAct},
	} {
		func() {
			defer func() {
				if r := recover(); r != c.want {
					t.Errorf("%s: panic %v, want %q", c.name, r, c.want)
				}
			}()
			c.f()
		}()
	}
	Dense(nil, nil, 0, p, Linear) // m = 0 is a no-op
}

// TestDenseParallel forces the split over goroutines (GOMAXPROCS ≥ 2 on
// the test machines) on small products, rows not a multiple of mr included.
func TestDenseParallel(t *testing.T) {
	saved := denseParallelMinFlops
	defer func() { denseParallelMinFlops = saved }()
	denseParallelMinFlops = 0
	withKernel(t, func(t *testing.T, kr *kernel) {
		rng := rand.New(rand.NewPCG(15, 15))
		for _, m := range []int{2 * kr.mr, 2*kr.mr + 1, 5*kr.mr + 3, 100} {
			checkDense(t, rng, denseCase{m: m, k: 2*kr.blk.kc + 3, n: kr.nr + 7, bias: true, act: ReLU})
			// As many columns as rows and more: split by columns (with
			// GOMAXPROCS ≥ 2), the last share ending in a partial panel.
			checkDense(t, rng, denseCase{m: m, k: kr.blk.kc + 5, n: max(m, 4*kr.nr) + 9, bias: true, act: Linear})
		}
	})
}

// FuzzDense checks Dense against the float64 product and the unfused path
// on fuzzed shapes (each dimension 1…300) for the kernel in use.
func FuzzDense(f *testing.F) {
	f.Add(uint16(1), uint16(784), uint16(128), true, uint8(1), uint64(1))
	f.Add(uint16(9), uint16(193), uint16(33), false, uint8(0), uint64(2))
	f.Fuzz(func(t *testing.T, m, k, n uint16, bias bool, act uint8, seed uint64) {
		tc := denseCase{m: 1 + int(m)%300, k: 1 + int(k)%300, n: 1 + int(n)%300, bias: bias, act: Activation(act % 2)}
		checkDense(t, rand.New(rand.NewPCG(seed, 3)), tc)
	})
}

// TestDenseSparseRow runs single rows with runs of zeros, which skip the
// weights they would multiply (gemvTSegments), against the exact product:
// zeros at the start and the end, runs just under and over sparseGap,
// one lone value, none at all, and the dense row beside them.
func TestDenseSparseRow(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	rows := map[string]func(k int) []float32{
		"digit-like": func(k int) []float32 {
			x := make([]float32, k)
			for i := range x {
				if (i/11)%3 == 1 || i%28 > 20 {
					x[i] = float32(rng.NormFloat64())
				}
			}
			return x
		},
		"gaps at the bound": func(k int) []float32 {
			x := randSlice(rng, k)
			for i := 0; i < k; i += 3 * sparseGap {
				for j := i; j < min(k, i+sparseGap-1+(i/(3*sparseGap))%3); j++ {
					x[j] = 0
				}
			}
			return x
		},
		"lone last": func(k int) []float32 {
			x := make([]float32, k)
			x[k-1] = 1.5
			return x
		},
		"lone first, negative zeros": func(k int) []float32 {
			x := make([]float32, k)
			for i := range x {
				x[i] = float32(math.Copysign(0, -1))
			}
			x[0] = -2
			return x
		},
		"zeros":      func(k int) []float32 { return make([]float32, k) },
		"dense":      func(k int) []float32 { return randSlice(rng, k) },
		"halves":     func(k int) []float32 { x := randSlice(rng, k); clear(x[k/2:]); return x },
		"edges only": func(k int) []float32 { x := randSlice(rng, k); clear(x[3 : k-3]); return x },
	}
	for name, row := range rows {
		for _, k := range []int{sparseMinK, 784, 1001} {
			for _, n := range []int{1, 10, 128, 200} {
				x := row(k)
				w := randSlice(rng, k*n)
				bias := randSlice(rng, n)
				p := Pack(w, k, n, bias)
				got := make([]float32, n)
				Dense(got, x, 1, p, Linear)
				for j := range n {
					exact, mag := float64(bias[j]), math.Abs(float64(bias[j]))
					for q := range k {
						v := float64(x[q]) * float64(w[q*n+j])
						exact += v
						mag += math.Abs(v)
					}
					bound := 2 * float64(k+2) * eps * mag
					if d := math.Abs(float64(got[j]) - exact); !(d <= bound) {
						t.Fatalf("%s k=%d n=%d: [%d] = %v, exact %v, |Δ| %.3g > %.3g", name, k, n, j, got[j], exact, d, bound)
					}
				}
			}
		}
	}
	// The sample sends digit-like rows to the segments and keeps dense
	// and scattered-zero rows on the one call.
	scattered := randSlice(rng, 784)
	for i := range scattered {
		if rng.IntN(2) == 0 {
			scattered[i] = 0
		}
	}
	if !sparseLooking(rows["digit-like"](784)) || sparseLooking(rows["dense"](784)) || sparseLooking(scattered) {
		t.Fatal("sparseLooking sorts rows wrongly")
	}
}
