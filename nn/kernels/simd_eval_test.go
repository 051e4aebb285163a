//go:build goexperiment.simd && amd64 && !purego

package kernels

// The evaluation of Go 1.26's experimental simd/archsimd as an alternative
// to hand-written assembly (docs/RATIONALE.md records the decision). It is
// test-only so the product never needs GOEXPERIMENT=simd:
//
//	GOEXPERIMENT=simd go test -run ArchSIMD -bench ArchSIMD ./nn/kernels/

import (
	"math/rand/v2"
	"simd/archsimd"
	"testing"
	"unsafe"
)

// gemm8x32ArchSIMD is the 8×32 micro-kernel of gemm8x32AVX512 written with
// archsimd: the same 16 accumulators, left to the compiler's register
// allocator.
func gemm8x32ArchSIMD(kc int, a, b *float32, ldb int, c *float32, ldc int, alpha float32) {
	var c00, c01, c10, c11, c20, c21, c30, c31 archsimd.Float32x16
	var c40, c41, c50, c51, c60, c61, c70, c71 archsimd.Float32x16
	as := unsafe.Slice(a, kc*8)
	bs := unsafe.Slice(b, (kc-1)*ldb+32)
	for p := range kc {
		b0 := archsimd.LoadFloat32x16((*[16]float32)(bs[p*ldb:]))
		b1 := archsimd.LoadFloat32x16((*[16]float32)(bs[p*ldb+16:]))
		ap := as[p*8 : p*8+8 : p*8+8]
		x := archsimd.BroadcastFloat32x16(ap[0])
		c00, c01 = x.MulAdd(b0, c00), x.MulAdd(b1, c01)
		x = archsimd.BroadcastFloat32x16(ap[1])
		c10, c11 = x.MulAdd(b0, c10), x.MulAdd(b1, c11)
		x = archsimd.BroadcastFloat32x16(ap[2])
		c20, c21 = x.MulAdd(b0, c20), x.MulAdd(b1, c21)
		x = archsimd.BroadcastFloat32x16(ap[3])
		c30, c31 = x.MulAdd(b0, c30), x.MulAdd(b1, c31)
		x = archsimd.BroadcastFloat32x16(ap[4])
		c40, c41 = x.MulAdd(b0, c40), x.MulAdd(b1, c41)
		x = archsimd.BroadcastFloat32x16(ap[5])
		c50, c51 = x.MulAdd(b0, c50), x.MulAdd(b1, c51)
		x = archsimd.BroadcastFloat32x16(ap[6])
		c60, c61 = x.MulAdd(b0, c60), x.MulAdd(b1, c61)
		x = archsimd.BroadcastFloat32x16(ap[7])
		c70, c71 = x.MulAdd(b0, c70), x.MulAdd(b1, c71)
	}
	al := archsimd.BroadcastFloat32x16(alpha)
	cs := unsafe.Slice(c, 7*ldc+32)
	for i, acc := range [8][2]archsimd.Float32x16{{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}, {c60, c61}, {c70, c71}} {
		r0 := (*[16]float32)(cs[i*ldc:])
		r1 := (*[16]float32)(cs[i*ldc+16:])
		acc[0].MulAdd(al, archsimd.LoadFloat32x16(r0)).Store(r0)
		acc[1].MulAdd(al, archsimd.LoadFloat32x16(r1)).Store(r1)
	}
}

func TestArchSIMDKernelMatchesAssembly(t *testing.T) {
	if !archsimd.X86.AVX512() {
		t.Skip("no AVX-512")
	}
	rng := rand.New(rand.NewPCG(9, 9))
	const kc = 192
	a, b := randSlice(rng, kc*8), randSlice(rng, kc*32)
	c1, c2 := make([]float32, 8*32), make([]float32, 8*32)
	gemm8x32AVX512(kc, &a[0], &b[0], 32, &c1[0], 32, 1)
	gemm8x32ArchSIMD(kc, &a[0], &b[0], 32, &c2[0], 32, 1)
	for i := range c1 {
		if c1[i] != c2[i] { // same operations in the same order: bit-identical
			t.Fatalf("element %d: archsimd %v, assembly %v", i, c2[i], c1[i])
		}
	}
}

// BenchmarkArchSIMDMicroKernel runs each micro-kernel on L1-resident
// panels (kc = 192): the pure kernel throughput.
func BenchmarkArchSIMDMicroKernel(b *testing.B) {
	if !archsimd.X86.AVX512() {
		b.Skip("no AVX-512")
	}
	rng := rand.New(rand.NewPCG(9, 9))
	const kc = 192
	a, bb, c := randSlice(rng, kc*8), randSlice(rng, kc*32), make([]float32, 8*32)
	for _, k := range []struct {
		name string
		f    microKernel
	}{{"asm", gemm8x32AVX512}, {"archsimd", gemm8x32ArchSIMD}} {
		b.Run(k.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				k.f(kc, &a[0], &bb[0], 32, &c[0], 32, 1)
			}
			b.ReportMetric(2*8*32*kc*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
