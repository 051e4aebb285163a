//go:build !purego

package kernels

import "golang.org/x/sys/cpu"

var avx512Kernel = &kernel{
	name:     "avx512-8x32",
	features: "avx512f",
	mr:       8,
	nr:       32,
	gemm:     gemm8x32AVX512,
	gemvT:    gemvTAVX512,
	dense:    dense8x32AVX512,
	gemmEp:   gemmEp8x32AVX512,
	vec:      vecAVX512,
}

// avx512TKernel is GemmPacked's kernel for few columns (PackAFor): a
// 32×8 tile with the rows along the vector lanes, so that n = 49 (7×7
// feature maps) fills 49 of 56 lanes rather than 49 of 64, and n = 196
// 196 of 200 rather than 224. It is not a BLAS kernel (no gemm, gemvT,
// dense) and takes all of K in one block.
var avx512TKernel = &kernel{
	name:     "avx512-32x8t",
	features: "avx512f",
	mr:       32,
	nr:       8,
	gemmEp:   gemmEpT32x8AVX512,
	vec:      vecAVX512,
	fullK:    true,
}

var avx2Kernel = &kernel{
	name:     "avx2-6x16",
	features: "avx2 fma",
	mr:       6,
	nr:       16,
	gemm:     gemm6x16AVX2,
	gemvT:    gemvTAVX2,
	dense:    dense6x16AVX2,
	gemmEp:   gemmEp6x16AVX2,
	vec:      vecAVX2,
}

// available lists the kernels this CPU can run, best first. x/sys/cpu
// also checks that the OS saves the wide registers (XCR0), not only that
// the CPU has them.
func available() []*kernel {
	l1d, l2 := cacheSizes()
	var ks []*kernel
	if cpu.X86.HasAVX512F {
		ks = append(ks, avx512Kernel)
		avx512Kernel.narrow = avx512TKernel
		avx512TKernel.blk = newBlocking(avx512TKernel.mr, avx512TKernel.nr, l1d, l2)
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, avx2Kernel)
	}
	ks = append(ks, genericKernel)
	for _, k := range ks {
		k.blk = newBlocking(k.mr, k.nr, l1d, l2)
	}
	return ks
}

// cacheSizes reads the L1 data and L2 cache sizes from CPUID's
// deterministic cache parameters: leaf 4 on Intel, 0x8000001D on AMD (same
// layout). It returns 0 for what the CPU (or hypervisor) does not report.
func cacheSizes() (l1d, l2 int) {
	maxStd, _, _, _ := cpuid(0, 0)
	maxExt, _, _, _ := cpuid(0x80000000, 0)
	for _, leaf := range []uint32{4, 0x8000001D} {
		if (leaf < 0x80000000 && leaf > maxStd) || (leaf >= 0x80000000 && leaf > maxExt) {
			continue
		}
		for sub := uint32(0); sub < 16; sub++ {
			eax, ebx, ecx, _ := cpuid(leaf, sub)
			typ := eax & 0x1f
			if typ == 0 {
				break
			}
			if typ == 2 { // instruction cache
				continue
			}
			level := (eax >> 5) & 7
			size := int((ebx>>22)+1) * int((ebx>>12)&0x3ff+1) * int(ebx&0xfff+1) * int(ecx+1)
			switch level {
			case 1:
				l1d = size
			case 2:
				l2 = size
			}
		}
		if l1d > 0 && l2 > 0 {
			return l1d, l2
		}
	}
	// AMD's legacy leaves, which hypervisors that blank 0x8000001D (as on
	// the VM these kernels were tuned on) still pass through: sizes in KiB.
	if maxExt >= 0x80000006 {
		if l1d == 0 {
			_, _, ecx, _ := cpuid(0x80000005, 0)
			l1d = int(ecx>>24) << 10
		}
		if l2 == 0 {
			_, _, ecx, _ := cpuid(0x80000006, 0)
			l2 = int(ecx>>16) << 10
		}
	}
	return l1d, l2
}

//go:noescape
func gemm8x32AVX512(kc int, a, b *float32, ldb int, c *float32, ldc int, alpha float32)

//go:noescape
func gemvTAVX512(k int, x, b *float32, ldb int, y *float32, n int, alpha float32)

//go:noescape
func dense8x32AVX512(kc int, a *float32, lda int, b, c *float32, ldc int, bias *float32, flags int)

//go:noescape
func gemmEp8x32AVX512(kc int, a, b, c *float32, ldc int, t *tileArgs)

//go:noescape
func gemmEpT32x8AVX512(kc int, a, b, c *float32, ldc int, t *tileArgs)

//go:noescape
func gemmEp6x16AVX2(kc int, a, b, c *float32, ldc int, t *tileArgs)

//go:noescape
func binAVX512(op int, dst, a, b *float32, n int)

//go:noescape
func unaryAVX512(op int, dst, a *float32, n int, s, t float32)

//go:noescape
func binAVX2(op int, dst, a, b *float32, n int)

//go:noescape
func unaryAVX2(op int, dst, a *float32, n int, s, t float32)

// vecBinary runs the vector kernel of the kernel in use on a[:n] (and
// b), returning how many leading elements it did: all with AVX-512 (a
// masked tail), the multiple of 8 with AVX2; Go does the rest.
func vecBinary(op int, dst, a, b []float32, n int) int {
	switch current().vec {
	case vecAVX512:
		if n > 0 {
			binAVX512(op, &dst[0], &a[0], &b[0], n)
		}
		return n
	case vecAVX2:
		if n8 := n &^ 7; n8 > 0 {
			binAVX2(op, &dst[0], &a[0], &b[0], n8)
			return n8
		}
	}
	return 0
}

// vecUnary is vecBinary for the one-operand operations.
func vecUnary(op int, dst, a []float32, n int, s, t float32) int {
	switch current().vec {
	case vecAVX512:
		if n > 0 {
			unaryAVX512(op, &dst[0], &a[0], n, s, t)
		}
		return n
	case vecAVX2:
		if n8 := n &^ 7; n8 > 0 {
			unaryAVX2(op, &dst[0], &a[0], n8, s, t)
			return n8
		}
	}
	return 0
}

//go:noescape
func gemm6x16AVX2(kc int, a, b *float32, ldb int, c *float32, ldc int, alpha float32)

//go:noescape
func dense6x16AVX2(kc int, a *float32, lda int, b, c *float32, ldc int, bias *float32, flags int)

//go:noescape
func gemvT8AVX2(k int, x, b *float32, ldb int, y *float32, n int, alpha float32)

func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)

// gemvTAVX2 runs the assembly on the columns that fill whole 8-wide
// vectors (AVX2 has no cheap masked tail) and Go on the rest.
func gemvTAVX2(k int, x, b *float32, ldb int, y *float32, n int, alpha float32) {
	n8 := n &^ 7
	if n8 > 0 {
		gemvT8AVX2(k, x, b, ldb, y, n8, alpha)
	}
	if n8 < n {
		gemvTGeneric(k, x, addFloat(b, n8), ldb, addFloat(y, n8), n-n8, alpha)
	}
}

func clockProbe(n int)

// peakProbe runs n iterations of the clock probe and returns how many clock
// cycles it took and the single-precision flops per cycle of one core of
// the chosen kernel: two FMA pipes (every AVX-512 and AVX2 server core of
// the last generations: Zen 4/5, Skylake-SP and later Xeons), each
// vector-width/32 lanes × 2 flops. flopsPerCycle is 0 when not known.
func peakProbe(n int) (cycles, flopsPerCycle float64) {
	clockProbe(n)
	cycles = float64(n) * 32
	switch {
	case cpu.X86.HasAVX512F:
		flopsPerCycle = 2 * 16 * 2
	case cpu.X86.HasAVX2 && cpu.X86.HasFMA:
		flopsPerCycle = 2 * 8 * 2
	}
	return cycles, flopsPerCycle
}

//go:noescape
func dw3x3AVX512(dst, r0, r1, r2, w *float32, n, s int, bias float32)

// dw3x3Row is the interior of one output row of a 3×3 depthwise
// convolution of stride s (1 or 2): dst[i] = b + Σ w[3·ky+kx]·r_ky[i·s+kx],
// each r_ky holding at least (len(dst)−1)·s+3 values.
func dw3x3Row(dst, r0, r1, r2, w []float32, s int, b float32) {
	n := len(dst)
	if n == 0 {
		return
	}
	if current().vec == vecAVX512 {
		last := (n-1)*s + 3
		_, _, _, _ = r0[last-1], r1[last-1], r2[last-1], w[8]
		dw3x3AVX512(&dst[0], &r0[0], &r1[0], &r2[0], &w[0], n, s, b)
		return
	}
	dw3x3RowGo(dst, r0, r1, r2, w, s, b)
}

//go:noescape
func dwFlat3x3AVX512(dst, x, w *float32, masks *uint16, chunks, width int, bias float32, t *tileArgs)

// hasDwFlat reports whether the kernel in use has dwFlat3x3.
func hasDwFlat() bool { return current().vec == vecAVX512 }

// dwFlat3x3 computes a whole channel of a 3×3, stride-1, padding-1
// convolution whose output is the input's size, with its epilogue t, as
// one flat loop over the plane (see dwFlat3x3AVX512); m is
// dwFlatMasks(h, wd).
func dwFlat3x3(y, x, w []float32, m []uint16, h, wd int, b float32, t *tileArgs) {
	_, _, _ = y[h*wd-1], x[h*wd-1], w[8]
	dwFlat3x3AVX512(&y[0], &x[0], &w[0], &m[0], len(m)/10, wd, b, t)
}

//go:noescape
func dwRowS2AVX512(dst, r0, r1, r2, w *float32, n, padL, width int, bias float32)

// dwChanS2 computes one whole channel of a 3×3 stride-2 convolution,
// borders included, row by row with dwRowS2AVX512, when the kernel in
// use has it; zero is a row of g.W zeros for the rows above and below x.
func dwChanS2(yc, xc, wc, zero []float32, g *DepthwiseGeom, b float32) bool {
	if current().vec != vecAVX512 {
		return false
	}
	wd := g.W
	_, _, _ = wc[8], zero[wd-1], yc[g.OH*g.OW-1]
	for oy := range g.OH {
		var r [3]*float32
		for ky := range 3 {
			if iy := oy*g.SH - g.PadT + ky; uint(iy) < uint(g.H) {
				r[ky] = &xc[iy*wd : (iy+1)*wd][0]
			} else {
				r[ky] = &zero[0]
			}
		}
		dwRowS2AVX512(&yc[oy*g.OW], r[0], r[1], r[2], &wc[0], g.OW, g.PadL, wd, b)
	}
	return true
}

//go:noescape
func im2col8AVX512(dst, x *float32, base *int32, masks *uint32, tapOff *int32, kc, khw, t, ciOff, hw int, affine bool)

//go:noescape
func im2colAVX512(dst, x *float32, base *int32, masks *uint32, tapOff *int32, kc, khw, t, ciOff, hw, mode int, smasks *uint64)

// im2colPanel packs one whole panel (the panel-th of the image, w ≤ nr
// pixels) of s when the kernel in use has an assembly packer for it.
func im2colPanel(dst []float32, s *Im2Col, pc, kc, panel, w int) bool {
	if current().vec != vecAVX512 || kc == 0 {
		return false
	}
	if s.nr == 8 {
		_ = dst[kc*8-1]
		im2col8AVX512(&dst[0], &s.X[0], &s.colBase[panel*8], &s.masks[panel*s.khw], &s.tapOff[0], kc, s.khw, pc%s.khw, pc/s.khw*s.hw, s.hw, s.affine[panel])
		return true
	}
	if s.nr != 32 {
		return false
	}
	_ = dst[kc*32-1]
	mode := 0
	var sm *uint64
	switch {
	case s.affine[panel]:
		mode = 1
	case s.smasks != nil && s.smasks[panel*s.khw] != smaskNone:
		mode, sm = 2, &s.smasks[panel*s.khw]
	}
	im2colAVX512(&dst[0], &s.X[0], &s.colBase[panel*32], &s.masks[panel*s.khw], &s.tapOff[0], kc, s.khw, pc%s.khw, pc/s.khw*s.hw, s.hw, mode, sm)
	return true
}
