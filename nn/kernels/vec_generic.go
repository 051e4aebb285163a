//go:build purego || !(amd64 || arm64)

package kernels

// vecBinary and vecUnary: no vector kernels in this build, Go does all.
func vecBinary(op int, dst, a, b []float32, n int) int           { return 0 }
func vecUnary(op int, dst, a []float32, n int, s, t float32) int { return 0 }

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
