package kernels

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

// convB is a BPacker that writes the im2col patches of one image straight
// into the panels, as nn/graph's convolution does: column j of B is
// output pixel j, row p input channel p/(kh·kw) at kernel offset
// (p/kw%kh, p%kw).
type convB struct {
	c, h, w, oh, ow, kh, kw, s, pad int
	nr                              int
	x                               []float32
}

func (g *convB) PackB(dst []float32, pc, kc, jc, nc int) {
	nr := g.nr
	hw, khw := g.h*g.w, g.kh*g.kw
	if rem := nc % nr; rem != 0 {
		last := dst[(nc/nr)*kc*nr:]
		for p := range kc {
			clear(last[p*nr+rem : p*nr+nr])
		}
	}
	for p := range kc {
		row := pc + p
		ci, ky, kx := row/khw, row/g.kw%g.kh, row%g.kw
		plane := g.x[ci*hw : (ci+1)*hw]
		if khw == 1 && g.s == 1 && g.pad == 0 {
			src := plane[jc : jc+nc]
			for j0 := 0; j0 < nc; j0 += nr {
				copy(dst[(j0/nr)*kc*nr+p*nr:][:min(nr, nc-j0)], src[j0:])
			}
			continue
		}
		oy, ox := jc/g.ow, jc%g.ow
		for j := 0; j < nc; {
			n := min(g.ow-ox, nc-j)
			iy := oy*g.s - g.pad + ky
			ix := ox*g.s - g.pad + kx
			for t := range n {
				jj := j + t
				v := float32(0)
				if uint(iy) < uint(g.h) && uint(ix) < uint(g.w) {
					v = plane[iy*g.w+ix]
				}
				dst[(jj/nr)*kc*nr+p*nr+jj%nr] = v
				ix += g.s
			}
			j += n
			ox = 0
			oy++
		}
	}
}

// convShape is one convolution of the benchmark networks at batch 1:
// M = cout, N = oh·ow, K = cin·k².
type convShape struct {
	name                    string
	cin, h, cout, k, s, pad int
}

func (c convShape) dims() (m, n, k int) {
	o := (c.h+2*c.pad-c.k)/c.s + 1
	return c.cout, o * o, c.cin * c.k * c.k
}

// im2col returns the Im2Col packer of the convolution for a.
func (c convShape) im2col(a *PackedA) *Im2Col {
	o := (c.h+2*c.pad-c.k)/c.s + 1
	return NewIm2Col(&DepthwiseGeom{C: c.cin, H: c.h, W: c.h, OH: o, OW: o, KH: c.k, KW: c.k,
		SH: c.s, SW: c.s, DH: 1, DW: 1, PadT: c.pad, PadL: c.pad}, a)
}

var convShapes = []convShape{
	// ResNet-18.
	{"r18-conv1", 3, 224, 64, 7, 2, 3},
	{"r18-l1", 64, 56, 64, 3, 1, 1},
	{"r18-l2a", 64, 56, 128, 3, 2, 1},
	{"r18-l2", 128, 28, 128, 3, 1, 1},
	{"r18-l2ds", 64, 56, 128, 1, 2, 0},
	{"r18-l3a", 128, 28, 256, 3, 2, 1},
	{"r18-l3", 256, 14, 256, 3, 1, 1},
	{"r18-l4a", 256, 14, 512, 3, 2, 1},
	{"r18-l4", 512, 7, 512, 3, 1, 1},
	// MobileNetV2 pointwise.
	{"mb2-112-16x96", 16, 112, 96, 1, 1, 0},
	{"mb2-56-144x24", 144, 56, 24, 1, 1, 0},
	{"mb2-28-32x192", 32, 28, 192, 1, 1, 0},
	{"mb2-14-384x64", 384, 14, 64, 1, 1, 0},
	{"mb2-14-96x576", 96, 14, 576, 1, 1, 0},
	{"mb2-7-960x160", 960, 7, 160, 1, 1, 0},
	{"mb2-7-320x1280", 320, 7, 1280, 1, 1, 0},
}

// BenchmarkGemmPackedConv: GemmPacked with Im2Col packing, bias, ReLU
// (and a residual on the 3×3 stride-1 layers, as ResNet's second conv of
// a block) for the convolutions of ResNet-18 and MobileNetV2, with GFLOP/s
// and the fraction of the peak of the cores used. With -cpu 1 the
// figures are per CPU-second of the benchmark's thread (cpu-ns/op), so a
// busy machine slows the wall clock but not them.
func BenchmarkGemmPackedConv(b *testing.B) {
	rng := rand.New(rand.NewPCG(41, 41))
	peak := singleCorePeak()
	for _, cs := range convShapes {
		m, n, k := cs.dims()
		pa := PackAFor(randSlice(rng, m*k), m, k, k, n)
		bp := cs.im2col(pa)
		bp.X = randSlice(rng, cs.cin*cs.h*cs.h)
		c := make([]float32, m*n)
		ep := &Epilogue{Bias: randSlice(rng, m), Act: ReLU}
		if cs.k == 3 && cs.s == 1 {
			ep.Residual = randSlice(rng, m*n)
		}
		b.Run(fmt.Sprintf("%s/M=%d,N=%d,K=%d/%s", cs.name, m, n, k, pa.kr.name), func(b *testing.B) {
			b.ReportAllocs()
			per := b.Elapsed()
			if runtime.GOMAXPROCS(0) == 1 {
				per = loopCPU(b, func() { GemmPacked(c, n, pa, n, bp, ep) })
			} else {
				c0, c1 := poolChunks[0].Load(), poolChunks[1].Load()
				for b.Loop() {
					GemmPacked(c, n, pa, n, bp, ep)
				}
				per = b.Elapsed() / time.Duration(b.N)
				if d0, d1 := poolChunks[0].Load()-c0, poolChunks[1].Load()-c1; d0+d1 > 0 {
					b.ReportMetric(100*float64(d1)/float64(d0+d1), "%pool")
				}
			}
			gf := 2 * float64(m*n*k) / per.Seconds() / 1e9
			b.ReportMetric(gf, "GFLOP/s")
			if peak > 0 {
				b.ReportMetric(100*gf/(peak*float64(runtime.GOMAXPROCS(0))), "%peak")
			}
		})
	}
}

// BenchmarkGemmPackedKernel: the bare micro-kernel on L1-resident panels
// (kc = the kernel's), the ceiling of every shape above.
func BenchmarkGemmPackedKernel(b *testing.B) {
	peak := singleCorePeak()
	saved := active.Load()
	defer active.Store(saved)
	for _, kr := range available() {
		kc := kr.blk.kc
		rng := rand.New(rand.NewPCG(42, 42))
		a, bb, c := randSlice(rng, kc*kr.mr), randSlice(rng, kc*kr.nr), make([]float32, kr.mr*kr.nr)
		bias := randSlice(rng, kr.mr)
		t := &tileArgs{bias: &bias[0], flags: tileBias | int(ReLU)<<tileActShift}
		b.Run(kr.name, func(b *testing.B) {
			per := loopCPU(b, func() { kr.gemmEp(kc, &a[0], &bb[0], &c[0], kr.nr, t) })
			gf := 2 * float64(kr.mr*kr.nr*kc) / per.Seconds() / 1e9
			b.ReportMetric(gf, "GFLOP/s")
			if peak > 0 {
				b.ReportMetric(100*gf/peak, "%peak")
			}
		})
	}
}

// BenchmarkGemmPackedBlocking compares block sizes of K and of the packed
// B block on a few convolution shapes (one core): the measurement behind
// packedBlocks.
func BenchmarkGemmPackedBlocking(b *testing.B) {
	rng := rand.New(rand.NewPCG(43, 43))
	savedKC, savedNC := packedKC, packedNCBytes
	defer func() { packedKC, packedNCBytes = savedKC, savedNC }()
	for _, i := range []int{1, 3, 6, 8, 9, 10, 15} {
		cs := convShapes[i]
		m, n, k := cs.dims()
		pa := PackA(randSlice(rng, m*k), m, k, k)
		bp := cs.im2col(pa)
		bp.X = randSlice(rng, cs.cin*cs.h*cs.h)
		c := make([]float32, m*n)
		ep := &Epilogue{Bias: randSlice(rng, m), Act: ReLU}
		for _, kc := range []int{192, 288, 384} {
			for _, ncb := range []int{256 << 10} {
				b.Run(fmt.Sprintf("%s/kc=%d/nc=%dK", cs.name, kc, ncb>>10), func(b *testing.B) {
					packedKC, packedNCBytes = kc, ncb
					per := loopCPU(b, func() { GemmPacked(c, n, pa, n, bp, ep) })
					b.ReportMetric(2*float64(m*n*k)/per.Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}
