package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Tolerance. Each element of C is a sum of k products, so two correct
// float32 implementations that sum in different orders (ours blocks over K
// and uses FMA; gonum's does neither) may differ by up to about
// 2·(k+2)·ε·(|α|·(|A|·|B|)ᵢⱼ + |β|·|Cᵢⱼ|), with ε = 2⁻²⁴ (Higham, Accuracy
// and Stability of Numerical Algorithms, §3.5: each of the two results is
// within (k+2)·ε·(…) of the exact one). The tests use that bound.
const eps = 1.0 / (1 << 24)

// withKernel runs f once per kernel this machine can run, so every
// assembly kernel is tested, not only the one chosen at init.
func withKernel(t *testing.T, f func(t *testing.T, k *kernel)) {
	t.Helper()
	saved := active.Load()
	defer active.Store(saved)
	for _, k := range available() {
		active.Store(k)
		t.Run(k.name, func(t *testing.T) { f(t, k) })
	}
}

// withPackedKernel is withKernel for GemmPacked, which also has the
// kernels' variants for few columns (kernel.narrow).
func withPackedKernel(t *testing.T, f func(t *testing.T, k *kernel)) {
	t.Helper()
	saved := active.Load()
	defer active.Store(saved)
	for _, k := range available() {
		for _, kk := range []*kernel{k, k.narrow} {
			if kk == nil {
				continue
			}
			active.Store(kk)
			t.Run(kk.name, func(t *testing.T) { f(t, kk) })
		}
	}
}

func randSlice(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64())
	}
	return s
}

type gemmCase struct {
	tA, tB      blas.Transpose
	m, n, k     int
	pad         int // extra leading-dimension elements on A, B and C
	alpha, beta float32
}

func (c gemmCase) String() string {
	return fmt.Sprintf("tA=%c tB=%c m=%d n=%d k=%d pad=%d alpha=%g beta=%g", c.tA, c.tB, c.m, c.n, c.k, c.pad, c.alpha, c.beta)
}

// checkGemm runs Sgemm and gonum's Sgemm on the same random operands and
// reports elements outside the tolerance bound.
func checkGemm(t *testing.T, rng *rand.Rand, i int, tc gemmCase) {
	t.Helper()
	checkGemmWith(t, rng, i, tc, false)
}

// checkGemmWith is checkGemm of SgemmTrain when train is set.
func checkGemmWith(t *testing.T, rng *rand.Rand, i int, tc gemmCase, train bool) {
	t.Helper()
	aT, bT := tc.tA != blas.NoTrans, tc.tB != blas.NoTrans
	ar, ac := tc.m, tc.k
	if aT {
		ar, ac = tc.k, tc.m
	}
	br, bc := tc.k, tc.n
	if bT {
		br, bc = tc.n, tc.k
	}
	lda, ldb, ldc := max(1, ac+tc.pad), max(1, bc+tc.pad), max(1, tc.n+tc.pad)
	a := randSlice(rng, max(0, (ar-1)*lda+ac))
	b := randSlice(rng, max(0, (br-1)*ldb+bc))
	c := randSlice(rng, max(0, (tc.m-1)*ldc+tc.n))
	if tc.beta == 0 {
		// BLAS: with beta = 0, C is output only; garbage must not leak.
		for j := range c {
			if j%3 == 0 {
				c[j] = float32(math.NaN())
			}
		}
	}
	orig := append([]float32(nil), c...)
	want := append([]float32(nil), c...)
	gonumC := append([]float32(nil), c...)
	if tc.beta == 0 {
		clear(gonumC) // gonum also ignores C when beta = 0; keep |C| finite for the bound
	}
	gonum.Implementation{}.Sgemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, want, ldc)
	if train {
		SgemmTrain(tc.tA, tc.tB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
	} else {
		Sgemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
	}

	// (|A|·|B|)ᵢⱼ in float64, row by row so it stays cheap under -race.
	absA := make([]float64, tc.m*tc.k)
	for r := range tc.m {
		for p := range tc.k {
			var v float32
			if aT {
				v = a[p*lda+r]
			} else {
				v = a[r*lda+p]
			}
			absA[r*tc.k+p] = math.Abs(float64(v))
		}
	}
	absB := make([]float64, tc.k*tc.n)
	for p := range tc.k {
		for j := range tc.n {
			var v float32
			if bT {
				v = b[j*ldb+p]
			} else {
				v = b[p*ldb+j]
			}
			absB[p*tc.n+j] = math.Abs(float64(v))
		}
	}
	absAB := make([]float64, tc.n)
	bad := 0
	for r := range tc.m {
		clear(absAB)
		for p, av := range absA[r*tc.k : (r+1)*tc.k] {
			for j, bv := range absB[p*tc.n : (p+1)*tc.n] {
				absAB[j] += av * bv
			}
		}
		for j := range tc.n {
			abs := absAB[j]
			bound := 2*float64(tc.k+2)*eps*(math.Abs(float64(tc.alpha))*abs+math.Abs(float64(tc.beta)*float64(gonumC[r*ldc+j]))) + 1e-30
			got, w := float64(c[r*ldc+j]), float64(want[r*ldc+j])
			if !(math.Abs(got-w) <= bound) {
				if bad < 3 {
					t.Errorf("case %d (%v): C[%d,%d] = %v, gonum %v, |diff| %.3g > bound %.3g", i, tc, r, j, got, w, math.Abs(got-w), bound)
				}
				bad++
			}
		}
		// Padding between rows of C belongs to the caller: untouched.
		if r < tc.m-1 {
			for j := tc.n; j < ldc; j++ {
				if got, w := c[r*ldc+j], orig[r*ldc+j]; math.Float32bits(got) != math.Float32bits(w) {
					t.Errorf("case %d (%v): padding C[%d,%d] changed to %v", i, tc, r, j, got)
				}
			}
		}
	}
	if bad > 3 {
		t.Errorf("case %d (%v): %d elements out of bound", i, tc, bad)
	}
}

var transposes = []blas.Transpose{blas.NoTrans, blas.Trans}

func TestSgemmShapes(t *testing.T) {
	withKernel(t, func(t *testing.T, kr *kernel) {
		rng := rand.New(rand.NewPCG(1, 2))
		b := kr.blk
		// Sizes at every boundary the driver has: 1, odd, one micro-tile,
		// the unpacked-B row limit, and KC, MC and NC, each ±1.
		edge := []int{1, 2, 3, 5, kr.mr - 1, kr.mr, kr.mr + 1, kr.nr - 1, kr.nr, kr.nr + 1, 2*kr.nr + 3, 10, 128}
		var cases []gemmCase
		i := 0
		for _, tA := range transposes {
			for _, tB := range transposes {
				for range 12 {
					m := edge[rng.IntN(len(edge))]
					n := edge[rng.IntN(len(edge))]
					k := edge[rng.IntN(len(edge))]
					cases = append(cases, gemmCase{tA, tB, m, n, k, i % 3, 1, float32(i % 2)})
					i++
				}
				cases = append(cases,
					gemmCase{tA, tB, b.mc + 1, 7, 9, 1, 1, 0},
					gemmCase{tA, tB, 9, 2*kr.nr + 1, b.kc + 1, 2, 0.5, 1},
					gemmCase{tA, tB, unpackedBMaxRows + 1, kr.nr + 3, b.kc - 1, 0, -1, 2},
					gemmCase{tA, tB, unpackedBMaxRows, 10, 2*b.kc + 3, 3, 1, 0},
					gemmCase{tA, tB, 3, b.nc + 5, 4, 0, 1, 0.5},
					gemmCase{tA, tB, 1, 129, 785, 0, 1, 1}, // batch-1 layer: the GEMV path when tB = NoTrans
					gemmCase{tA, tB, 1, 10, 128, 1, 2, 0},
					gemmCase{tA, tB, 64, 128, 784, 0, 1, 1},  // MNIST first layer, batch 64
					gemmCase{tA, tB, 260, 250, 140, 1, 1, 0}, // large enough for the parallel path
					gemmCase{tA, tB, 40, 520, 450, 0, 1, 1},  // n > m: parallel split over columns
					gemmCase{tA, tB, 5, 6, 0, 0, 1, 0.5},     // k = 0 scales C only
					gemmCase{tA, tB, 4, 5, 6, 0, 0, 1},       // alpha = 0
				)
			}
		}
		for i, tc := range cases {
			checkGemm(t, rng, i, tc)
		}
	})
}

// TestSgemmForcedPaths runs small shapes with the thresholds at their
// extremes, so the packed-B and the parallel paths are also tested on the
// shapes that normally take the in-place and serial ones.
func TestSgemmForcedPaths(t *testing.T) {
	savedRows, savedPar := unpackedBMaxRows, parallelMinFlops
	defer func() { unpackedBMaxRows, parallelMinFlops = savedRows, savedPar }()
	for i, th := range [][2]int{{0, 0}, {1 << 30, 0}, {0, 1 << 62}} {
		unpackedBMaxRows, parallelMinFlops = th[0], th[1]
		withKernel(t, func(t *testing.T, kr *kernel) {
			rng := rand.New(rand.NewPCG(uint64(i), 8))
			for j, tc := range []gemmCase{
				{blas.NoTrans, blas.NoTrans, 8, 128, 784, 0, 1, 1},
				{blas.NoTrans, blas.NoTrans, 3, 10, 33, 2, 1, 0},
				{blas.Trans, blas.NoTrans, 17, 2*kr.nr + 1, 5, 1, -1, 0.5},
				{blas.NoTrans, blas.Trans, 2*kr.mr + 1, 9, kr.blk.kc + 1, 0, 1, 0},
				{blas.Trans, blas.Trans, 1, 7, 3, 0, 1, 1},
			} {
				checkGemm(t, rng, j, tc)
			}
		})
	}
}

// TestSgemmTrain runs SgemmTrain on 2 and 3 cores: products split by rows
// or columns from 2^20 multiply-adds, and weight-gradient shapes (small C,
// long k: a first convolution's 9×32 over 43,264 pixels) split along k,
// with every transpose, padding, alpha and beta.
func TestSgemmTrain(t *testing.T) {
	saved := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(saved)
	for _, procs := range []int{2, 3} {
		runtime.GOMAXPROCS(procs)
		withKernel(t, func(t *testing.T, kr *kernel) {
			rng := rand.New(rand.NewPCG(uint64(procs), 9))
			i := 0
			for _, tA := range transposes {
				for _, tB := range transposes {
					for _, tc := range []gemmCase{
						{tA, tB, 9, 32, 43264, 1, 1, 0},  // split along k
						{tA, tB, 3, 5, 70001, 0, 0.5, 1}, // uneven parts, beta 1
						{tA, tB, kr.mr, kr.nr, 1 << 15, 2, 1, 2},
						{tA, tB, 64, 288, 3872, 0, 1, 0},    // split by rows
						{tA, tB, 32, 3872, 288, 1, 1, 0},    // split by columns
						{tA, tB, 32, 128, 1600, 0, -1, 0.5}, // a dense layer at batch 32
						{tA, tB, 4, 4, 100, 0, 1, 1},        // below the threshold: serial
					} {
						checkGemmWith(t, rng, i, tc, true)
						i++
					}
				}
			}
		})
	}
}

// TestSgemmMNIST runs the exact products of the forward and backward pass
// of the 784-128-128-10 model at the batch sizes we serve and train with.
func TestSgemmMNIST(t *testing.T) {
	withKernel(t, func(t *testing.T, kr *kernel) {
		rng := rand.New(rand.NewPCG(3, 4))
		var cases []gemmCase
		for _, batch := range []int{1, 8, 32, 64, 256} {
			for _, l := range [][2]int{{784, 128}, {128, 128}, {128, 10}} {
				in, out := l[0], l[1]
				cases = append(cases,
					gemmCase{blas.NoTrans, blas.NoTrans, batch, out, in, 0, 1, 1}, // y = x·W + (bias in C)
					gemmCase{blas.Trans, blas.NoTrans, in, out, batch, 0, 1, 0},   // dW = xᵀ·dY
					gemmCase{blas.NoTrans, blas.Trans, batch, in, out, 0, 1, 0},   // dX = dY·Wᵀ
				)
			}
		}
		for i, tc := range cases {
			checkGemm(t, rng, i, tc)
		}
	})
}

func TestSgemvMatchesGonum(t *testing.T) {
	withKernel(t, func(t *testing.T, kr *kernel) {
		rng := rand.New(rand.NewPCG(5, 6))
		type tcase struct {
			tA          blas.Transpose
			m, n        int
			pad         int
			incX, incY  int
			alpha, beta float32
		}
		cases := []tcase{
			{blas.Trans, 784, 128, 0, 1, 1, 1, 1},
			{blas.Trans, 128, 10, 3, 1, 1, 1, 0},
			{blas.Trans, 1, 1, 0, 1, 1, 2, 0.5},
			{blas.Trans, 7, 17, 1, 1, 1, -1, 1},
			{blas.Trans, 33, 65, 2, 1, 1, 1, 0},
			{blas.Trans, 5, 79, 0, 1, 1, 1, 2},
			{blas.Trans, 9, 130, 0, 2, -1, 1, 1}, // strided: gonum's path
			{blas.NoTrans, 17, 33, 1, 1, 1, 1, 0.5},
			{blas.Trans, 4, 4, 0, 1, 1, 0, 3},
		}
		for i, tc := range cases {
			lda := tc.n + tc.pad
			a := randSlice(rng, (tc.m-1)*lda+tc.n)
			lx, ly := tc.m, tc.n
			if tc.tA == blas.NoTrans {
				lx, ly = tc.n, tc.m
			}
			x := randSlice(rng, 1+(lx-1)*abs(tc.incX))
			y := randSlice(rng, 1+(ly-1)*abs(tc.incY))
			want := append([]float32(nil), y...)
			gonum.Implementation{}.Sgemv(tc.tA, tc.m, tc.n, tc.alpha, a, lda, x, tc.incX, tc.beta, want, tc.incY)
			Sgemv(tc.tA, tc.m, tc.n, tc.alpha, a, lda, x, tc.incX, tc.beta, y, tc.incY)
			k := lx
			for j := range y {
				bound := 2 * float64(k+2) * eps * float64(k) * 16 // |a|,|x| ~ N(0,1): generous 4σ·4σ per product
				if d := math.Abs(float64(y[j] - want[j])); !(d <= bound) {
					t.Errorf("case %d: y[%d] = %v, gonum %v (|diff| %.3g > %.3g)", i, j, y[j], want[j], d, bound)
					break
				}
			}
		}
	})
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// TestPanicsMatchGonum: a bad argument panics with gonum's own message.
func TestPanicsMatchGonum(t *testing.T) {
	s := make([]float32, 100)
	gemms := []func(f func(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)){
		func(f func(blas.Transpose, blas.Transpose, int, int, int, float32, []float32, int, []float32, int, float32, []float32, int)) {
			f('X', blas.NoTrans, 2, 2, 2, 1, s, 2, s, 2, 0, s, 2)
		},
		func(f func(blas.Transpose, blas.Transpose, int, int, int, float32, []float32, int, []float32, int, float32, []float32, int)) {
			f(blas.NoTrans, blas.NoTrans, -1, 2, 2, 1, s, 2, s, 2, 0, s, 2)
		},
		func(f func(blas.Transpose, blas.Transpose, int, int, int, float32, []float32, int, []float32, int, float32, []float32, int)) {
			f(blas.NoTrans, blas.NoTrans, 2, 2, 3, 1, s, 2, s, 2, 0, s, 2)
		},
		func(f func(blas.Transpose, blas.Transpose, int, int, int, float32, []float32, int, []float32, int, float32, []float32, int)) {
			f(blas.NoTrans, blas.Trans, 2, 3, 2, 1, s, 2, s, 1, 0, s, 3)
		},
		func(f func(blas.Transpose, blas.Transpose, int, int, int, float32, []float32, int, []float32, int, float32, []float32, int)) {
			f(blas.NoTrans, blas.NoTrans, 20, 20, 20, 1, s, 20, s, 20, 0, s, 20)
		},
		func(f func(blas.Transpose, blas.Transpose, int, int, int, float32, []float32, int, []float32, int, float32, []float32, int)) {
			f(blas.NoTrans, blas.NoTrans, 2, 2, 2, 1, s, 2, s, 2, 0, s[:3], 2)
		},
	}
	for i, call := range gemms {
		want := panicOf(func() { call(gonum.Implementation{}.Sgemm) })
		got := panicOf(func() { call(Sgemm) })
		if want == nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("case %d: panic %v, gonum %v", i, got, want)
		}
	}
	gemvs := []func(f func(blas.Transpose, int, int, float32, []float32, int, []float32, int, float32, []float32, int)){
		func(f func(blas.Transpose, int, int, float32, []float32, int, []float32, int, float32, []float32, int)) {
			f(blas.Trans, 20, 20, 1, s, 20, s, 1, 0, s, 1)
		},
		func(f func(blas.Transpose, int, int, float32, []float32, int, []float32, int, float32, []float32, int)) {
			f(blas.Trans, 5, 5, 1, s, 5, s[:4], 1, 0, s, 1)
		},
		func(f func(blas.Transpose, int, int, float32, []float32, int, []float32, int, float32, []float32, int)) {
			f(blas.Trans, 5, 5, 1, s, 5, s, 1, 0, s[:4], 1)
		},
		func(f func(blas.Transpose, int, int, float32, []float32, int, []float32, int, float32, []float32, int)) {
			f(blas.Trans, 5, 5, 1, s, 4, s, 1, 0, s, 1)
		},
	}
	for i, call := range gemvs {
		want := panicOf(func() { call(gonum.Implementation{}.Sgemv) })
		got := panicOf(func() { call(Sgemv) })
		if want == nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("gemv case %d: panic %v, gonum %v", i, got, want)
		}
	}
}

func panicOf(f func()) (r any) {
	defer func() { r = recover() }()
	f()
	return nil
}

func TestImplementationRegisters(t *testing.T) {
	var impl blas.Float32 = Implementation()
	c := []float32{0, 0, 0, 0}
	impl.Sgemm(blas.NoTrans, blas.NoTrans, 2, 2, 2, 1, []float32{1, 2, 3, 4}, 2, []float32{5, 6, 7, 8}, 2, 0, c, 2)
	if want := []float32{19, 22, 43, 50}; fmt.Sprint(c) != fmt.Sprint(want) {
		t.Errorf("Sgemm = %v, want %v", c, want)
	}
	if Name() == "" || Features() == "" {
		t.Errorf("Name() = %q, Features() = %q", Name(), Features())
	}
	t.Logf("kernel %s (%s)", Name(), Features())
}

// FuzzSgemm checks Sgemm against gonum for arbitrary small shapes,
// transposes, strides and scalars. The seeds run as a normal test.
func FuzzSgemm(f *testing.F) {
	f.Add(uint8(1), uint8(1), uint8(1), uint8(0), uint8(0), int8(1), int8(0), uint64(1))
	f.Add(uint8(9), uint8(33), uint8(17), uint8(3), uint8(1), int8(2), int8(1), uint64(2))
	f.Add(uint8(65), uint8(10), uint8(200), uint8(1), uint8(2), int8(-1), int8(3), uint64(3))
	f.Add(uint8(255), uint8(255), uint8(3), uint8(2), uint8(0), int8(1), int8(0), uint64(4))
	f.Fuzz(func(t *testing.T, m, n, k, trans, pad uint8, alpha, beta int8, seed uint64) {
		tc := gemmCase{
			tA: transposes[trans&1], tB: transposes[trans>>1&1],
			m: int(m), n: int(n), k: int(k), pad: int(pad % 4),
			alpha: float32(alpha) / 2, beta: float32(beta) / 2,
		}
		checkGemm(t, rand.New(rand.NewPCG(seed, 7)), 0, tc)
	})
}
