package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
	"unsafe"
)

// matB is a BPacker over a row-major k×n matrix: the layout a pointwise
// convolution's im2col produces.
type matB struct {
	b     []float32
	n, nr int
}

func (s *matB) PackB(dst []float32, pc, kc, jc, nc int) {
	nr := s.nr
	for j0 := 0; j0 < nc; j0 += nr {
		w := min(nr, nc-j0)
		panel := dst[(j0/nr)*kc*nr : (j0/nr+1)*kc*nr]
		for p := range kc {
			row := panel[p*nr : p*nr+nr]
			copy(row, s.b[(pc+p)*s.n+jc+j0:][:w])
			clear(row[w:])
		}
	}
}

type packedCase struct {
	m, n, k, pad  int
	bias, res     bool
	act           Activation
	min, max      float32
	alpha, beta   float32
	forceParallel bool
}

func (c packedCase) String() string {
	return fmt.Sprintf("m=%d n=%d k=%d pad=%d bias=%v res=%v act=%d par=%v", c.m, c.n, c.k, c.pad, c.bias, c.res, c.act, c.forceParallel)
}

var allActs = []Activation{Linear, ReLU, Clip, HardSwish, LeakyReLU}

// epFor returns the Epilogue of act with the parameters MobileNet and
// friends use.
func epFor(act Activation) Epilogue {
	switch act {
	case Clip:
		return Epilogue{Act: Clip, Min: 0, Max: 6}
	case HardSwish:
		return Epilogue{Act: HardSwish, Alpha: 1.0 / 6, Beta: 0.5}
	case LeakyReLU:
		return Epilogue{Act: LeakyReLU, Alpha: 0.1}
	}
	return Epilogue{Act: act}
}

// actRef is the activation in float64, and lip a bound on its slope near x.
func actRef(x float64, ep *Epilogue) (y, lip float64) {
	switch ep.Act {
	case ReLU:
		return max(x, 0), 1
	case Clip:
		return min(max(x, float64(ep.Min)), float64(ep.Max)), 1
	case HardSwish:
		g := min(max(float64(ep.Alpha)*x+float64(ep.Beta), 0), 1)
		return x * g, 1 + 2*math.Abs(float64(ep.Alpha)*x) + math.Abs(float64(ep.Beta))
	case LeakyReLU:
		if x < 0 {
			return float64(ep.Alpha) * x, 1
		}
		return x, 1
	}
	return x, 1
}

// checkPacked runs GemmPacked on random operands against the float64
// product, within 2·(k+3)·ε·(Σ|a·b| + |bias| + |res|) times the
// activation's slope.
func checkPacked(t *testing.T, rng *rand.Rand, tc packedCase) {
	t.Helper()
	m, n, k := tc.m, tc.n, tc.k
	ldc := n + tc.pad
	a := randSlice(rng, m*k)
	b := randSlice(rng, k*n)
	ep := epFor(tc.act)
	if tc.bias {
		ep.Bias = randSlice(rng, m)
	}
	if tc.res {
		ep.Residual = randSlice(rng, (m-1)*ldc+n)
	}
	pa := PackA(a, m, k, k)
	if mm, kk := pa.Dims(); mm != m || kk != k {
		t.Fatalf("%v: Dims %d×%d", tc, mm, kk)
	}
	c := make([]float32, (m-1)*ldc+n+3)
	for i := range c {
		c[i] = float32(math.NaN()) // garbage: GemmPacked must overwrite C, never read it first
	}
	GemmPacked(c, ldc, pa, n, &matB{b: b, n: n, nr: pa.PanelWidth()}, &ep)
	bad := 0
	for i := range m {
		for j := range ldc {
			got := c[i*ldc+j]
			if j >= n {
				if i < m-1 && !math.IsNaN(float64(got)) {
					t.Fatalf("%v: padding C[%d,%d] written", tc, i, j)
				}
				continue
			}
			exact, mag := 0.0, 0.0
			for p := range k {
				v := float64(a[i*k+p]) * float64(b[p*n+j])
				exact += v
				mag += math.Abs(v)
			}
			if ep.Bias != nil {
				exact += float64(ep.Bias[i])
				mag += math.Abs(float64(ep.Bias[i]))
			}
			if ep.Residual != nil {
				exact += float64(ep.Residual[i*ldc+j])
				mag += math.Abs(float64(ep.Residual[i*ldc+j]))
			}
			want, lip := actRef(exact, &ep)
			bound := 2*float64(k+3)*eps*mag*lip + 1e-30
			if d := math.Abs(float64(got) - want); !(d <= bound) {
				if bad++; bad <= 3 {
					t.Errorf("%v: C[%d,%d] = %v, want %v (|Δ| %.3g > %.3g)", tc, i, j, got, want, d, bound)
				}
			}
		}
	}
	for i := (m-1)*ldc + n; i < len(c); i++ {
		if !math.IsNaN(float64(c[i])) {
			t.Fatalf("%v: wrote past C at %d", tc, i)
		}
	}
}

// packedCases: 1, odd sizes, mr and nr ±1, the K block ±1 and several
// blocks, every activation with and without bias and residual, and
// scaled-down convolution shapes.
func packedCases(kr *kernel, rng *rand.Rand) []packedCase {
	mr, nr := kr.mr, kr.nr
	_, _, nc := packedBlocks(kr, 1<<20)
	kc := kr.blk.kc
	ms := []int{1, 2, 3, mr - 1, mr, mr + 1, 2*mr + 3, 17, 64}
	ns := []int{1, 5, nr - 1, nr, nr + 1, 2*nr + 3, 49, 196, nc + 5}
	ks := []int{1, 2, 7, 27, kc - 1, kc, kc + 1, 2*kc + 5}
	var cs []packedCase
	for _, m := range ms {
		for _, n := range ns {
			cs = append(cs, packedCase{
				m: max(1, m), n: max(1, n), k: ks[rng.IntN(len(ks))], pad: rng.IntN(3),
				bias: rng.IntN(3) != 0, res: rng.IntN(2) == 0, act: allActs[rng.IntN(len(allActs))],
			})
		}
	}
	for _, k := range ks {
		for _, act := range allActs {
			for _, br := range [][2]bool{{false, false}, {true, false}, {true, true}, {false, true}} {
				cs = append(cs, packedCase{
					m: max(1, ms[rng.IntN(len(ms))]), n: max(1, ns[rng.IntN(len(ns)-1)]), k: k, pad: rng.IntN(2),
					bias: br[0], res: br[1], act: act,
				})
			}
		}
	}
	// Convolution shapes, scaled so the test stays quick under -race and qemu.
	cs = append(cs,
		packedCase{m: 64, n: 3136 / 4, k: 147, bias: true, act: ReLU},
		packedCase{m: 64, n: 784, k: 576, bias: true, res: true, act: ReLU},
		packedCase{m: 128, n: 196, k: 576, bias: true, act: ReLU},
		packedCase{m: 256, n: 49, k: 1152, bias: true, res: true, act: ReLU},
		packedCase{m: 96, n: 196, k: 24, bias: true, act: Clip},
		packedCase{m: 40, n: 100, k: 960, bias: true, act: HardSwish},
	)
	return cs
}

func TestGemmPacked(t *testing.T) {
	withPackedKernel(t, func(t *testing.T, kr *kernel) {
		rng := rand.New(rand.NewPCG(21, uint64(kr.mr)))
		for _, tc := range packedCases(kr, rng) {
			checkPacked(t, rng, tc)
		}
	})
}

// TestGemmPackedParallel forces the split over the pool on small
// products, by columns (n large) and by rows (n small, m large), and runs
// several callers at once so the pool is shared (run with -race).
func TestGemmPackedParallel(t *testing.T) {
	saved, savedRows := gemmPackedMinFlops, gemmPackedRowsMinFlops
	defer func() { gemmPackedMinFlops, gemmPackedRowsMinFlops = saved, savedRows }()
	gemmPackedMinFlops, gemmPackedRowsMinFlops = 0, 0
	for _, procs := range []int{2, 3} {
		old := runtime.GOMAXPROCS(procs)
		withPackedKernel(t, func(t *testing.T, kr *kernel) {
			rng := rand.New(rand.NewPCG(22, uint64(procs)))
			mr, nr := kr.mr, kr.nr
			cases := []packedCase{
				{m: 2 * mr, n: 9*nr + 5, k: 2*kr.blk.kc + 3, bias: true, res: true, act: ReLU},
				{m: 37, n: 40 * nr, k: 33, bias: true, act: Clip},
				{m: 20*mr + 3, n: 49, k: kr.blk.kc + 9, bias: true, res: true, act: HardSwish},
				{m: 16 * mr, n: nr + 1, k: 300, act: LeakyReLU},
				{m: 12 * mr, n: 3, k: 5, bias: true, act: Linear},
				{m: 1, n: 1, k: 1},
			}
			done := make(chan bool)
			for g := range 3 {
				go func() {
					rng := rand.New(rand.NewPCG(23, uint64(g)))
					for _, tc := range cases {
						checkPacked(t, rng, tc)
					}
					done <- true
				}()
			}
			for _, tc := range cases {
				checkPacked(t, rng, tc)
			}
			for range 3 {
				<-done
			}
		})
		runtime.GOMAXPROCS(old)
	}
}

// TestGemmPackedSpecials: NaN stays NaN through every activation, and
// ReLU maps −x to +0, through whole and edge tiles.
func TestGemmPackedSpecials(t *testing.T) {
	withPackedKernel(t, func(t *testing.T, kr *kernel) {
		m, n := kr.mr+1, kr.nr+1
		vals := []float32{float32(math.NaN()), -2, 3, 0.25, float32(math.Inf(-1)), 7}
		for _, act := range allActs {
			ep := epFor(act)
			a := make([]float32, m) // k = 1, A = 1
			for i := range a {
				a[i] = 1
			}
			b := make([]float32, n)
			for j := range b {
				b[j] = vals[j%len(vals)]
			}
			c := make([]float32, m*n)
			pa := PackA(a, m, 1, 1)
			GemmPacked(c, n, pa, n, &matB{b: b, n: n, nr: pa.PanelWidth()}, &ep)
			want := append([]float32(nil), b...)
			ApplyActivation(want, &ep)
			ref := append([]float32(nil), b...)
			actGo(ref, ref, act, ep.Min, ep.Max, ep.Alpha, ep.Beta)
			for i := range m {
				for j := range n {
					g, w, r := c[i*n+j], want[j], ref[j]
					if !sameFloat(g, r) || !sameFloat(w, r) {
						t.Errorf("act %d: f(%v) = %v (GemmPacked), %v (ApplyActivation), want %v", act, b[j], g, w, r)
					}
				}
			}
		}
	})
}

// sameFloat: equal, or both NaN; zeros of either sign are equal except
// that ReLU's and Clip's results must not be −0 where Go gives +0.
func sameFloat(a, b float32) bool {
	if math.IsNaN(float64(a)) || math.IsNaN(float64(b)) {
		return math.IsNaN(float64(a)) && math.IsNaN(float64(b))
	}
	return a == b
}

func TestGemmPackedAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under -race")
	}
	rng := rand.New(rand.NewPCG(24, 24))
	savedRows := gemmPackedRowsMinFlops
	defer func() { gemmPackedRowsMinFlops = savedRows }()
	gemmPackedRowsMinFlops = 0
	for _, procs := range []int{1, 2} {
		old := runtime.GOMAXPROCS(procs)
		// By columns, by rows, serial.
		for _, s := range [][3]int{{64, 784, 147}, {256, 49, 576}, {128, 196, 64}, {8, 8, 8}} {
			m, n, k := s[0], s[1], s[2]
			pa := PackA(randSlice(rng, m*k), m, k, k)
			bp := &matB{b: randSlice(rng, k*n), n: n, nr: pa.PanelWidth()}
			c := make([]float32, m*n)
			ep := &Epilogue{Bias: randSlice(rng, m), Residual: randSlice(rng, m*n), Act: ReLU}
			if a := testing.AllocsPerRun(10, func() { GemmPacked(c, n, pa, n, bp, ep) }); a != 0 {
				t.Errorf("GOMAXPROCS=%d %v: %v allocations per GemmPacked, want 0", procs, s, a)
			}
		}
		runtime.GOMAXPROCS(old)
	}
}

func TestGemmPackedPanics(t *testing.T) {
	pa := PackA(make([]float32, 6), 2, 3, 3)
	bp := &matB{b: make([]float32, 12), n: 4, nr: pa.PanelWidth()}
	for _, c := range []struct {
		name string
		f    func()
		want string
	}{
		{"m<1", func() { PackA(nil, 0, 3, 3) }, mLT0},
		{"k<1", func() { PackA(nil, 2, 0, 3) }, kLT0},
		{"lda", func() { PackA(make([]float32, 6), 2, 3, 2) }, badLdA},
		{"short a", func() { PackA(make([]float32, 5), 2, 3, 3) }, shortA},
		{"n<0", func() { GemmPacked(nil, 1, pa, -1, bp, nil) }, nLT0},
		{"ldc", func() { GemmPacked(make([]float32, 8), 3, pa, 4, bp, nil) }, badLdC},
		{"short c", func() { GemmPacked(make([]float32, 7), 4, pa, 4, bp, nil) }, shortC},
		{"short bias", func() { GemmPacked(make([]float32, 8), 4, pa, 4, bp, &Epilogue{Bias: []float32{1}}) }, shortBias},
		{"short res", func() { GemmPacked(make([]float32, 8), 4, pa, 4, bp, &Epilogue{Residual: make([]float32, 7)}) }, shortC},
		{"act", func() { GemmPacked(make([]float32, 8), 4, pa, 4, bp, &Epilogue{Act: LeakyReLU + 1}) }, badAct},
	} {
		if r := panicOf(c.f); r != c.want {
			t.Errorf("%s: panic %v, want %q", c.name, r, c.want)
		}
	}
	GemmPacked(nil, 1, pa, 0, bp, nil) // n = 0 is a no-op
}

// TestTileArgsLayout pins the offsets the assembly reads.
func TestTileArgsLayout(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("the assembly is 64-bit only")
	}
	var a tileArgs
	got := []uintptr{unsafe.Offsetof(a.bias), unsafe.Offsetof(a.res), unsafe.Offsetof(a.ldr), unsafe.Offsetof(a.flags),
		unsafe.Offsetof(a.lo), unsafe.Offsetof(a.hi), unsafe.Offsetof(a.alpha), unsafe.Offsetof(a.beta)}
	want := []uintptr{0, 8, 16, 24, 32, 36, 40, 44}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("tileArgs offsets %v, the assembly reads %v", got, want)
	}
}

// FuzzGemmPacked checks GemmPacked on fuzzed shapes and epilogues.
func FuzzGemmPacked(f *testing.F) {
	f.Add(uint16(9), uint16(33), uint16(17), uint8(3), uint64(1))
	f.Add(uint16(64), uint16(49), uint16(577), uint8(14), uint64(2))
	f.Fuzz(func(t *testing.T, m, n, k uint16, mode uint8, seed uint64) {
		tc := packedCase{m: 1 + int(m)%200, n: 1 + int(n)%300, k: 1 + int(k)%700, pad: int(mode>>6) % 3,
			bias: mode&1 != 0, res: mode&2 != 0, act: allActs[int(mode>>2)%len(allActs)]}
		checkPacked(t, rand.New(rand.NewPCG(seed, 5)), tc)
	})
}

func TestPackedAUnpack(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for _, sz := range [][3]int{{1, 1, 1}, {7, 13, 5}, {256, 40, 49}, {300, 9, 3000}} {
		m, k, n := sz[0], sz[1], sz[2]
		a := randSlice(rng, m*k)
		for _, p := range []*PackedA{PackA(a, m, k, k), PackAFor(a, m, k, k, n)} {
			got := make([]float32, m*k)
			p.Unpack(got)
			for i := range a {
				if got[i] != a[i] {
					t.Fatalf("%v: element %d is %v, want %v", sz, i, got[i], a[i])
				}
			}
		}
	}
}
