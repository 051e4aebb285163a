//go:build !purego

package kernels

import "golang.org/x/sys/cpu"

var neonKernel = &kernel{
	name:     "neon-8x8",
	features: "asimd",
	mr:       8,
	nr:       8,
	gemm:     gemm8x8NEON,
	gemvT:    gemvTNEON,
	dense:    dense8x8NEON,
	gemmEp:   gemmEp8x8NEON,
	vec:      vecNEON,
}

// Graviton 2/3/4 have 64 KiB L1D and 1–2 MiB L2 per core; arm64 has no
// portable way to read them from user space, so the smaller is assumed.
const (
	arm64L1D = 64 << 10
	arm64L2  = 1 << 20
)

// available lists the kernels this CPU can run, best first. ASIMD is
// architectural on arm64, the check is for completeness.
func available() []*kernel {
	var ks []*kernel
	if cpu.ARM64.HasASIMD {
		ks = append(ks, neonKernel)
	}
	ks = append(ks, genericKernel)
	for _, k := range ks {
		k.blk = newBlocking(k.mr, k.nr, arm64L1D, arm64L2)
	}
	return ks
}

//go:noescape
func gemm8x8NEON(kc int, a, b *float32, ldb int, c *float32, ldc int, alpha float32)

//go:noescape
func dense8x8NEON(kc int, a *float32, lda int, b, c *float32, ldc int, bias *float32, flags int)

//go:noescape
func gemmEp8x8NEON(kc int, a, b, c *float32, ldc int, t *tileArgs)

//go:noescape
func binNEON(op int, dst, a, b *float32, n int)

//go:noescape
func unaryNEON(op int, dst, a *float32, n int, s, t float32)

// vecBinary runs the NEON kernel on the multiple of 4 of a[:n] (and b),
// returning how many leading elements it did; Go does the rest.
func vecBinary(op int, dst, a, b []float32, n int) int {
	if n4 := n &^ 3; n4 > 0 && current().vec == vecNEON {
		binNEON(op, &dst[0], &a[0], &b[0], n4)
		return n4
	}
	return 0
}

// vecUnary is vecBinary for the one-operand operations.
func vecUnary(op int, dst, a []float32, n int, s, t float32) int {
	if n4 := n &^ 3; n4 > 0 && current().vec == vecNEON {
		unaryNEON(op, &dst[0], &a[0], n4, s, t)
		return n4
	}
	return 0
}

//go:noescape
func gemvT16NEON(k int, x, b *float32, ldb int, y *float32, n int, alpha float32)

// gemvTNEON runs the assembly on whole 16-column strips and Go on the rest.
func gemvTNEON(k int, x, b *float32, ldb int, y *float32, n int, alpha float32) {
	n16 := n &^ 15
	if n16 > 0 {
		gemvT16NEON(k, x, b, ldb, y, n16, alpha)
	}
	if n16 < n {
		gemvTGeneric(k, x, addFloat(b, n16), ldb, addFloat(y, n16), n-n16, alpha)
	}
}

// dw3x3Row is the interior of one output row of a 3×3 depthwise
// convolution (see dw3x3RowGo).
func dw3x3Row(dst, r0, r1, r2, w []float32, s int, b float32) {
	dw3x3RowGo(dst, r0, r1, r2, w, s, b)
}

// No flat depthwise kernel in this build.
func hasDwFlat() bool { return false }

func dwFlat3x3(y, x, w []float32, m []uint16, h, wd int, b float32, t *tileArgs) {
	panic("unreachable")
}

func dwChanS2(yc, xc, wc, zero []float32, g *DepthwiseGeom, b float32) bool { return false }

func im2colPanel(dst []float32, s *Im2Col, pc, kc, panel, w int) bool { return false }
