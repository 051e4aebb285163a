package kernels

import "unsafe"

// genericKernel is the portable kernel: the fallback on CPUs without one of
// our assembly kernels, and the kernel of any build with -tags purego.
var genericKernel = &kernel{
	name:   "generic-4x4",
	mr:     4,
	nr:     4,
	gemm:   gemm4x4Generic,
	gemvT:  gemvTGeneric,
	gemmEp: gemmEp4x4Generic,
}

// gemmEp4x4Generic is the epKernel contract in Go: the tile is
// initialised in C, gemm4x4Generic adds the product, and the epilogue runs
// on the tile while it is in L1.
func gemmEp4x4Generic(kc int, a, b, c *float32, ldc int, t *tileArgs) {
	epTileGeneric(gemm4x4Generic, 4, 4, kc, a, b, c, ldc, t)
}

// epTileGeneric is an epKernel made of a plain mr×nr microKernel.
func epTileGeneric(gemm microKernel, mr, nr, kc int, a, b, c *float32, ldc int, t *tileArgs) {
	cs := unsafe.Slice(c, (mr-1)*ldc+nr)
	if t.flags&tileAcc == 0 {
		var bias []float32
		if t.flags&tileBias != 0 {
			bias = unsafe.Slice(t.bias, mr)
		}
		for i := range mr {
			row := cs[i*ldc : i*ldc+nr]
			v := float32(0)
			if bias != nil {
				v = bias[i]
			}
			for j := range row {
				row[j] = v
			}
		}
	}
	gemm(kc, a, b, nr, c, ldc, 1)
	act := Activation(t.flags >> tileActShift & 7)
	if t.flags&tileRes == 0 && act == Linear {
		return
	}
	var res []float32
	if t.flags&tileRes != 0 {
		res = unsafe.Slice(t.res, (mr-1)*t.ldr+nr)
	}
	for i := range mr {
		row := cs[i*ldc : i*ldc+nr]
		if res != nil {
			addGo(row, row, res[i*t.ldr:i*t.ldr+nr])
		}
		actGo(row, row, act, t.lo, t.hi, t.alpha, t.beta)
	}
}

// gemm4x4Generic is the microKernel contract in Go: sixteen scalar
// accumulators, which the compiler keeps in registers on amd64 and arm64.
func gemm4x4Generic(kc int, a, b *float32, ldb int, c *float32, ldc int, alpha float32) {
	var c00, c01, c02, c03, c10, c11, c12, c13 float32
	var c20, c21, c22, c23, c30, c31, c32, c33 float32
	if kc > 0 {
		as := unsafe.Slice(a, kc*4)
		bs := unsafe.Slice(b, (kc-1)*ldb+4)
		for p := range kc {
			ap := as[p*4 : p*4+4 : p*4+4]
			bp := bs[p*ldb : p*ldb+4 : p*ldb+4]
			a0, a1, a2, a3 := ap[0], ap[1], ap[2], ap[3]
			b0, b1, b2, b3 := bp[0], bp[1], bp[2], bp[3]
			c00 += a0 * b0
			c01 += a0 * b1
			c02 += a0 * b2
			c03 += a0 * b3
			c10 += a1 * b0
			c11 += a1 * b1
			c12 += a1 * b2
			c13 += a1 * b3
			c20 += a2 * b0
			c21 += a2 * b1
			c22 += a2 * b2
			c23 += a2 * b3
			c30 += a3 * b0
			c31 += a3 * b1
			c32 += a3 * b2
			c33 += a3 * b3
		}
	}
	cs := unsafe.Slice(c, 3*ldc+4)
	r := cs[0:4:4]
	r[0] += alpha * c00
	r[1] += alpha * c01
	r[2] += alpha * c02
	r[3] += alpha * c03
	r = cs[ldc : ldc+4 : ldc+4]
	r[0] += alpha * c10
	r[1] += alpha * c11
	r[2] += alpha * c12
	r[3] += alpha * c13
	r = cs[2*ldc : 2*ldc+4 : 2*ldc+4]
	r[0] += alpha * c20
	r[1] += alpha * c21
	r[2] += alpha * c22
	r[3] += alpha * c23
	r = cs[3*ldc : 3*ldc+4 : 3*ldc+4]
	r[0] += alpha * c30
	r[1] += alpha * c31
	r[2] += alpha * c32
	r[3] += alpha * c33
}

// gemvTGeneric is the gemvTKernel contract in Go.
func gemvTGeneric(k int, x, b *float32, ldb int, y *float32, n int, alpha float32) {
	if k <= 0 || n <= 0 {
		return
	}
	xs := unsafe.Slice(x, k)
	bs := unsafe.Slice(b, (k-1)*ldb+n)
	ys := unsafe.Slice(y, n)
	for p, xp := range xs {
		s := alpha * xp
		row := bs[p*ldb : p*ldb+n]
		for j, v := range row {
			ys[j] += s * v
		}
	}
}
