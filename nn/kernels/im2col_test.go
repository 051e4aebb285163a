package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// im2colRef is element (p, j) of the im2col matrix, straight from the
// definition.
func im2colRef(x []float32, g *DepthwiseGeom, p, j int) float32 {
	ci, ky, kx := p/(g.KH*g.KW), p/g.KW%g.KH, p%g.KW
	oy, ox := j/g.OW, j%g.OW
	iy, ix := oy*g.SH-g.PadT+ky*g.DH, ox*g.SW-g.PadL+kx*g.DW
	if iy < 0 || iy >= g.H || ix < 0 || ix >= g.W {
		return 0
	}
	return x[(ci*g.H+iy)*g.W+ix]
}

func im2colGeoms() []DepthwiseGeom {
	return []DepthwiseGeom{
		dwGeom(3, 17, 19, 3, 1, 1, 1, 1, 1, 1),
		dwGeom(2, 17, 19, 3, 2, 1, 1, 1, 1, 1),
		dwGeom(3, 20, 20, 7, 2, 1, 3, 3, 3, 3),
		dwGeom(4, 9, 9, 1, 1, 1, 0, 0, 0, 0),
		dwGeom(4, 9, 9, 1, 2, 1, 0, 0, 0, 0),
		dwGeom(2, 12, 11, 3, 1, 2, 2, 2, 2, 2),
		dwGeom(2, 7, 7, 3, 1, 1, 1, 1, 1, 1),
		dwGeom(2, 6, 8, 3, 2, 1, 0, 1, 0, 1),
		dwGeom(1, 3, 3, 5, 1, 1, 2, 2, 2, 2),
		{C: 2, H: 8, W: 10, OH: 8, OW: 9, KH: 3, KW: 2, SH: 1, SW: 1, DH: 1, DW: 1, PadT: 1, PadL: 0},
		// Stride 2 with rows of 32 pixels and more: panels inside one
		// output row take the even-lane path.
		dwGeom(2, 5, 70, 3, 2, 1, 1, 1, 1, 1),
		dwGeom(3, 9, 80, 7, 2, 1, 3, 3, 3, 3),
		dwGeom(1, 4, 129, 3, 2, 1, 0, 0, 0, 0),
	}
}

func TestIm2Col(t *testing.T) {
	withPackedKernel(t, func(t *testing.T, kr *kernel) {
		rng := rand.New(rand.NewPCG(61, 61))
		nr := kr.nr
		for _, g := range im2colGeoms() {
			k := g.C * g.KH * g.KW
			n := g.OH * g.OW
			pa := PackA(make([]float32, k), 1, k, k)
			s := NewIm2Col(&g, pa)
			s.X = randSlice(rng, g.C*g.H*g.W)
			// Blocks as GemmPacked asks for them, and odd ones.
			for _, blk := range [][4]int{{0, k, 0, n}, {1, k - 1, nr, max(1, n-nr)}, {k / 2, k - k/2, 0, min(n, 2*nr)}, {k - 1, 1, nr / 2, 3}} {
				pc, kc, jc, nc := blk[0], blk[1], blk[2], blk[3]
				if kc < 1 || jc >= n || nc < 1 || jc+nc > n {
					continue
				}
				dst := make([]float32, roundUp(nc, nr)*kc+1)
				for i := range dst {
					dst[i] = float32(math.NaN())
				}
				s.PackB(dst[:len(dst)-1], pc, kc, jc, nc)
				if !math.IsNaN(float64(dst[len(dst)-1])) {
					t.Fatalf("%+v %v: wrote past dst", g, blk)
				}
				for p := range kc {
					for j := range roundUp(nc, nr) {
						got := dst[(j/nr)*kc*nr+p*nr+j%nr]
						want := float32(0)
						if j < nc {
							want = im2colRef(s.X, &g, pc+p, jc+j)
						}
						if math.Float32bits(got) != math.Float32bits(want) {
							t.Fatalf("%+v block %v: (%d, %d) = %v, want %v", g, blk, p, j, got, want)
						}
					}
				}
			}
		}
	})
}

// TestIm2ColConv runs whole convolutions through GemmPacked with Im2Col
// against the direct sum, serial and split over the pool.
func TestIm2ColConv(t *testing.T) {
	saved, savedRows := gemmPackedMinFlops, gemmPackedRowsMinFlops
	defer func() { gemmPackedMinFlops, gemmPackedRowsMinFlops = saved, savedRows }()
	gemmPackedRowsMinFlops = 0
	withPackedKernel(t, func(t *testing.T, kr *kernel) {
		rng := rand.New(rand.NewPCG(62, 62))
		for i, g := range im2colGeoms() {
			for _, par := range []bool{false, true} {
				gemmPackedMinFlops = saved
				if par {
					gemmPackedMinFlops = 0
				}
				m := 1 + i*3
				k := g.C * g.KH * g.KW
				n := g.OH * g.OW
				w := randSlice(rng, m*k)
				pa := PackA(w, m, k, k)
				s := NewIm2Col(&g, pa)
				s.X = randSlice(rng, g.C*g.H*g.W)
				ep := &Epilogue{Bias: randSlice(rng, m), Act: ReLU}
				y := make([]float32, m*n)
				GemmPacked(y, n, pa, n, s, ep)
				for o := range m {
					for j := range n {
						exact, mag := float64(ep.Bias[o]), math.Abs(float64(ep.Bias[o]))
						for p := range k {
							v := float64(w[o*k+p]) * float64(im2colRef(s.X, &g, p, j))
							exact += v
							mag += math.Abs(v)
						}
						exact = max(exact, 0)
						if d := math.Abs(float64(y[o*n+j]) - exact); !(d <= 2*float64(k+2)*eps*mag+1e-30) {
							t.Fatalf("%s %+v par=%v: y[%d,%d] = %v, want %v", kr.name, g, par, o, j, y[o*n+j], exact)
						}
					}
				}
			}
		}
	})
}

func TestIm2ColPanics(t *testing.T) {
	g := dwGeom(2, 5, 5, 3, 1, 1, 1, 1, 1, 1)
	pa := PackA(make([]float32, 17), 1, 17, 17)
	if r := panicOf(func() { NewIm2Col(&g, pa) }); r != badGeom {
		t.Errorf("k ≠ C·KH·KW: panic %v", r)
	}
}

// BenchmarkIm2Col: packing alone, the blocks GemmPacked asks for, for
// the ResNet-18 convolutions: the assembly gather against the Go tables.
func BenchmarkIm2Col(b *testing.B) {
	rng := rand.New(rand.NewPCG(63, 63))
	saved := active.Load()
	defer active.Store(saved)
	for _, cs := range convShapes[:9] {
		for _, kr := range available()[:2] {
			active.Store(kr)
			m, n, k := cs.dims()
			_ = m
			o := (cs.h+2*cs.pad-cs.k)/cs.s + 1
			g := DepthwiseGeom{C: cs.cin, H: cs.h, W: cs.h, OH: o, OW: o, KH: cs.k, KW: cs.k, SH: cs.s, SW: cs.s, DH: 1, DW: 1, PadT: cs.pad, PadL: cs.pad}
			pa := PackA(make([]float32, k), 1, k, k)
			s := NewIm2Col(&g, pa)
			s.X = randSlice(rng, cs.cin*cs.h*cs.h)
			kc, _, nc := packedBlocks(kr, k)
			buf := make([]float32, kc*roundUp(nc, kr.nr))
			b.Run(fmt.Sprintf("%s/%s", cs.name, kr.name), func(b *testing.B) {
				per := loopCPU(b, func() {
					for jc := 0; jc < n; jc += nc {
						ncc := min(nc, n-jc)
						for pc := 0; pc < k; pc += kc {
							kcc := min(kc, k-pc)
							s.PackB(buf[:roundUp(ncc, kr.nr)*kcc], pc, kcc, jc, ncc)
						}
					}
				})
				b.ReportMetric(float64(per.Nanoseconds())/float64(n*k), "ns/elem")
			})
		}
	}
	active.Store(saved)
}
