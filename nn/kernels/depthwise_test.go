package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// dwGeom builds a geometry with symmetric-or-not padding: OH and OW are
// what ONNX gives for pads (pt, pb) and (pl, pr).
func dwGeom(c, h, w, k, s, d, pt, pb, pl, pr int) DepthwiseGeom {
	ek := (k-1)*d + 1
	return DepthwiseGeom{C: c, H: h, W: w, KH: k, KW: k, SH: s, SW: s, DH: d, DW: d, PadT: pt, PadL: pl,
		OH: (h+pt+pb-ek)/s + 1, OW: (w+pl+pr-ek)/s + 1}
}

func checkDepthwise(t *testing.T, rng *rand.Rand, g DepthwiseGeom, bias, res bool, act Activation) {
	t.Helper()
	name := fmt.Sprintf("%+v bias=%v res=%v act=%d", g, bias, res, act)
	x := specialsFree(rng, g.C*g.H*g.W)
	w := randSlice(rng, g.C*g.KH*g.KW)
	ep := epFor(act)
	ohw := g.OH * g.OW
	if bias {
		ep.Bias = randSlice(rng, g.C)
	}
	if res {
		ep.Residual = randSlice(rng, g.C*ohw)
	}
	y := make([]float32, g.C*ohw+2)
	for i := range y {
		y[i] = float32(math.NaN())
	}
	DepthwiseConv2D(y, x, w, &g, &ep)
	if !math.IsNaN(float64(y[g.C*ohw])) || !math.IsNaN(float64(y[g.C*ohw+1])) {
		t.Fatalf("%s: wrote past y", name)
	}
	bad := 0
	for c := range g.C {
		for oy := range g.OH {
			for ox := range g.OW {
				exact, mag := 0.0, 0.0
				for ky := range g.KH {
					for kx := range g.KW {
						iy, ix := oy*g.SH-g.PadT+ky*g.DH, ox*g.SW-g.PadL+kx*g.DW
						if iy < 0 || iy >= g.H || ix < 0 || ix >= g.W {
							continue
						}
						v := float64(w[(c*g.KH+ky)*g.KW+kx]) * float64(x[(c*g.H+iy)*g.W+ix])
						exact += v
						mag += math.Abs(v)
					}
				}
				if bias {
					exact += float64(ep.Bias[c])
					mag += math.Abs(float64(ep.Bias[c]))
				}
				if res {
					r := float64(ep.Residual[c*ohw+oy*g.OW+ox])
					exact += r
					mag += math.Abs(r)
				}
				want, lip := actRef(exact, &ep)
				got := float64(y[c*ohw+oy*g.OW+ox])
				bound := 2*float64(g.KH*g.KW+3)*eps*mag*lip + 1e-30
				if d := math.Abs(got - want); !(d <= bound) {
					if bad++; bad <= 3 {
						t.Errorf("%s: y[%d,%d,%d] = %v, want %v (|Δ| %.3g > %.3g)", name, c, oy, ox, got, want, d, bound)
					}
				}
			}
		}
	}
}

// specialsFree is randSlice, named for what it is not: the depthwise
// reference is only compared on finite inputs.
func specialsFree(rng *rand.Rand, n int) []float32 { return randSlice(rng, n) }

func depthwiseCases() []DepthwiseGeom {
	var gs []DepthwiseGeom
	for _, hw := range []int{1, 2, 3, 5, 7, 14, 15, 16, 17, 18, 31, 33, 34, 40, 56, 112} {
		gs = append(gs,
			dwGeom(3, hw, hw, 3, 1, 1, 1, 1, 1, 1),
			dwGeom(2, hw, hw, 3, 2, 1, 1, 1, 1, 1),
			dwGeom(2, hw, hw+1, 3, 2, 1, 0, 1, 0, 1), // TF "same" padding: all after
		)
	}
	gs = append(gs,
		dwGeom(4, 9, 11, 5, 1, 1, 2, 2, 2, 2),
		dwGeom(4, 9, 11, 5, 2, 1, 2, 2, 2, 2),
		dwGeom(3, 12, 13, 3, 1, 2, 2, 2, 2, 2), // dilation 2
		dwGeom(3, 12, 13, 3, 3, 1, 1, 1, 1, 1), // stride 3
		dwGeom(3, 6, 6, 1, 1, 1, 0, 0, 0, 0),
		dwGeom(2, 4, 4, 7, 1, 1, 3, 3, 3, 3), // kernel wider than the input
		dwGeom(5, 20, 20, 3, 1, 1, 0, 0, 0, 0),
		dwGeom(5, 20, 20, 3, 2, 1, 0, 0, 0, 0),
		DepthwiseGeom{C: 2, H: 8, W: 10, OH: 8, OW: 9, KH: 3, KW: 2, SH: 1, SW: 1, DH: 1, DW: 1, PadT: 1, PadL: 0},
	)
	return gs
}

func TestDepthwise(t *testing.T) {
	withKernel(t, func(t *testing.T, kr *kernel) {
		rng := rand.New(rand.NewPCG(51, 51))
		for i, g := range depthwiseCases() {
			checkDepthwise(t, rng, g, i%3 != 0, i%2 == 0, allActs[i%len(allActs)])
		}
		for _, act := range allActs {
			checkDepthwise(t, rng, dwGeom(3, 10, 37, 3, 1, 1, 1, 1, 1, 1), true, true, act)
			checkDepthwise(t, rng, dwGeom(3, 10, 37, 3, 2, 1, 1, 1, 1, 1), false, false, act)
		}
	})
}

func TestDepthwiseParallel(t *testing.T) {
	saved := depthwiseParallelMinFlops
	defer func() { depthwiseParallelMinFlops = saved }()
	depthwiseParallelMinFlops = 0
	old := runtime.GOMAXPROCS(2)
	defer runtime.GOMAXPROCS(old)
	rng := rand.New(rand.NewPCG(52, 52))
	done := make(chan bool)
	for range 2 {
		go func() {
			rng := rand.New(rand.NewPCG(53, 53))
			checkDepthwise(t, rng, dwGeom(37, 14, 14, 3, 1, 1, 1, 1, 1, 1), true, true, Clip)
			done <- true
		}()
	}
	checkDepthwise(t, rng, dwGeom(40, 28, 28, 3, 2, 1, 1, 1, 1, 1), true, false, ReLU)
	checkDepthwise(t, rng, dwGeom(1, 9, 9, 3, 1, 1, 1, 1, 1, 1), true, false, ReLU)
	<-done
	<-done
}

func TestDepthwiseAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under -race")
	}
	rng := rand.New(rand.NewPCG(54, 54))
	for _, procs := range []int{1, 2} {
		old := runtime.GOMAXPROCS(procs)
		for _, g := range []DepthwiseGeom{dwGeom(144, 56, 56, 3, 1, 1, 1, 1, 1, 1), dwGeom(96, 112, 112, 3, 2, 1, 1, 1, 1, 1), dwGeom(8, 7, 7, 3, 1, 1, 1, 1, 1, 1)} {
			x, w := randSlice(rng, g.C*g.H*g.W), randSlice(rng, g.C*9)
			y := make([]float32, g.C*g.OH*g.OW)
			ep := &Epilogue{Bias: randSlice(rng, g.C), Act: Clip, Max: 6}
			if a := testing.AllocsPerRun(10, func() { DepthwiseConv2D(y, x, w, &g, ep) }); a != 0 {
				t.Errorf("GOMAXPROCS=%d %+v: %v allocations, want 0", procs, g, a)
			}
		}
		runtime.GOMAXPROCS(old)
	}
}

func TestDepthwisePanics(t *testing.T) {
	g := dwGeom(2, 4, 4, 3, 1, 1, 1, 1, 1, 1)
	x, w, y := make([]float32, 32), make([]float32, 18), make([]float32, 32)
	bad := g
	bad.SW = 0
	for _, c := range []struct {
		name string
		f    func()
		want string
	}{
		{"geom", func() { DepthwiseConv2D(y, x, w, &bad, nil) }, badGeom},
		{"short x", func() { DepthwiseConv2D(y, x[:31], w, &g, nil) }, shortA},
		{"short w", func() { DepthwiseConv2D(y, x, w[:17], &g, nil) }, shortB},
		{"short y", func() { DepthwiseConv2D(y[:31], x, w, &g, nil) }, shortC},
		{"short bias", func() { DepthwiseConv2D(y, x, w, &g, &Epilogue{Bias: []float32{1}}) }, shortBias},
		{"short res", func() { DepthwiseConv2D(y, x, w, &g, &Epilogue{Residual: y[:31]}) }, shortC},
		{"act", func() { DepthwiseConv2D(y, x, w, &g, &Epilogue{Act: LeakyReLU + 1}) }, badAct},
	} {
		if r := panicOf(c.f); r != c.want {
			t.Errorf("%s: panic %v, want %q", c.name, r, c.want)
		}
	}
	DepthwiseConv2D(nil, nil, nil, &DepthwiseGeom{C: 0, H: 1, W: 1, OH: 1, OW: 1, KH: 1, KW: 1, SH: 1, SW: 1, DH: 1, DW: 1}, nil)
}

// mobileNetDepthwise: the depthwise convolutions of MobileNetV2 at batch 1
// (channels, input size, stride).
var mobileNetDepthwise = [][3]int{
	{32, 112, 1}, {96, 112, 2}, {144, 56, 1}, {144, 56, 2}, {192, 28, 1}, {192, 28, 2},
	{384, 14, 1}, {576, 14, 1}, {576, 14, 2}, {960, 7, 1},
}

// BenchmarkDepthwise: each depthwise convolution of MobileNetV2 with bias
// and ReLU6, per kernel, against the unrolled Go loop (kernel generic).
func BenchmarkDepthwise(b *testing.B) {
	rng := rand.New(rand.NewPCG(55, 55))
	saved := active.Load()
	defer active.Store(saved)
	for _, s := range mobileNetDepthwise {
		g := dwGeom(s[0], s[1], s[1], 3, s[2], 1, 1, 1, 1, 1)
		x, w := randSlice(rng, g.C*g.H*g.W), randSlice(rng, g.C*9)
		y := make([]float32, g.C*g.OH*g.OW)
		ep := &Epilogue{Bias: randSlice(rng, g.C), Act: Clip, Max: 6}
		for _, kr := range available() {
			active.Store(kr)
			b.Run(fmt.Sprintf("C=%d,H=%d,s=%d/%s", g.C, g.H, s[2], kr.name), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					DepthwiseConv2D(y, x, w, &g, ep)
				}
				b.ReportMetric(2*9*float64(g.C*g.OH*g.OW)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
		active.Store(saved)
	}
}
