//go:build !purego

#include "textflag.h"

// func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL eaxArg+0(FP), AX
	MOVL ecxArg+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET

// ---------------------------------------------------------------------------
// AVX-512, 8×32 micro-tile: 16 zmm accumulators (row i in Z(2i), Z(2i+1)),
// two zmm of B per step, one broadcast of A per row.

#define ROW512(off, bc, acc0, acc1) \
	VBROADCASTSS off(SI), bc; \
	VFMADD231PS  Z16, bc, acc0; \
	VFMADD231PS  Z17, bc, acc1

#define STEP512 \
	VMOVUPS (DI), Z16; \
	VMOVUPS 64(DI), Z17; \
	ROW512(0, Z18, Z0, Z1); \
	ROW512(4, Z19, Z2, Z3); \
	ROW512(8, Z20, Z4, Z5); \
	ROW512(12, Z21, Z6, Z7); \
	ROW512(16, Z22, Z8, Z9); \
	ROW512(20, Z23, Z10, Z11); \
	ROW512(24, Z24, Z12, Z13); \
	ROW512(28, Z25, Z14, Z15); \
	ADDQ $32, SI; \
	ADDQ R8, DI

#define STORE512(acc0, acc1) \
	VFMADD213PS (DX), Z31, acc0; \
	VFMADD213PS 64(DX), Z31, acc1; \
	VMOVUPS     acc0, (DX); \
	VMOVUPS     acc1, 64(DX); \
	ADDQ        R9, DX

// func gemm8x32AVX512(kc int, a, b *float32, ldb int, c *float32, ldc int, alpha float32)
TEXT ·gemm8x32AVX512(SB), NOSPLIT, $0-52
	MOVQ kc+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ ldb+24(FP), R8
	SHLQ $2, R8
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15

loop4:
	CMPQ CX, $4
	JLT  loop1
	STEP512
	STEP512
	STEP512
	STEP512
	SUBQ $4, CX
	JMP  loop4

loop1:
	TESTQ CX, CX
	JEQ   store
	STEP512
	DECQ  CX
	JMP   loop1

store:
	MOVQ         c+32(FP), DX
	MOVQ         ldc+40(FP), R9
	SHLQ         $2, R9
	VBROADCASTSS alpha+48(FP), Z31
	STORE512(Z0, Z1)
	STORE512(Z2, Z3)
	STORE512(Z4, Z5)
	STORE512(Z6, Z7)
	STORE512(Z8, Z9)
	STORE512(Z10, Z11)
	STORE512(Z12, Z13)
	STORE512(Z14, Z15)
	VZEROUPPER
	RET

// func gemvTAVX512(k int, x, b *float32, ldb int, y *float32, n int, alpha float32)
//
// y[0:n] += alpha · Σ_p x[p]·B[p, 0:n]. Columns go 64 at a time with two
// rows of B per step into two sets of accumulators (8 independent FMA
// chains hide the FMA latency), then 16 at a time with a mask for the tail,
// so nothing past column n is read or written.
TEXT ·gemvTAVX512(SB), NOSPLIT, $0-52
	MOVQ         ldb+24(FP), R8
	SHLQ         $2, R8
	MOVQ         b+16(FP), R10
	MOVQ         y+32(FP), R11
	MOVQ         n+40(FP), R12
	VBROADCASTSS alpha+48(FP), Z31

chunk64:
	CMPQ   R12, $64
	JLT    chunk16
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	MOVQ   k+0(FP), CX
	MOVQ   x+8(FP), SI
	MOVQ   R10, DI

pair64:
	CMPQ         CX, $2
	JLT          single64
	VBROADCASTSS (SI), Z16
	VBROADCASTSS 4(SI), Z17
	VFMADD231PS  (DI), Z16, Z0
	VFMADD231PS  64(DI), Z16, Z1
	VFMADD231PS  128(DI), Z16, Z2
	VFMADD231PS  192(DI), Z16, Z3
	VFMADD231PS  (DI)(R8*1), Z17, Z4
	VFMADD231PS  64(DI)(R8*1), Z17, Z5
	VFMADD231PS  128(DI)(R8*1), Z17, Z6
	VFMADD231PS  192(DI)(R8*1), Z17, Z7
	LEAQ         (DI)(R8*2), DI
	ADDQ         $8, SI
	SUBQ         $2, CX
	JMP          pair64

single64:
	TESTQ        CX, CX
	JEQ          store64
	VBROADCASTSS (SI), Z16
	VFMADD231PS  (DI), Z16, Z0
	VFMADD231PS  64(DI), Z16, Z1
	VFMADD231PS  128(DI), Z16, Z2
	VFMADD231PS  192(DI), Z16, Z3

store64:
	VADDPS      Z4, Z0, Z0
	VADDPS      Z5, Z1, Z1
	VADDPS      Z6, Z2, Z2
	VADDPS      Z7, Z3, Z3
	VFMADD213PS (R11), Z31, Z0
	VFMADD213PS 64(R11), Z31, Z1
	VFMADD213PS 128(R11), Z31, Z2
	VFMADD213PS 192(R11), Z31, Z3
	VMOVUPS     Z0, (R11)
	VMOVUPS     Z1, 64(R11)
	VMOVUPS     Z2, 128(R11)
	VMOVUPS     Z3, 192(R11)
	ADDQ        $256, R10
	ADDQ        $256, R11
	SUBQ        $64, R12
	JMP         chunk64

chunk16:
	TESTQ R12, R12
	JEQ   done
	MOVQ  R12, AX
	CMPQ  AX, $16
	JLE   mask
	MOVQ  $16, AX

mask:
	MOVQ   AX, CX
	MOVL   $1, BX
	SHLL   CX, BX
	DECL   BX
	KMOVW  BX, K1
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	MOVQ   k+0(FP), CX
	MOVQ   x+8(FP), SI
	MOVQ   R10, DI

pair16:
	CMPQ         CX, $2
	JLT          single16
	VBROADCASTSS (SI), Z16
	VBROADCASTSS 4(SI), Z17
	VMOVUPS.Z    (DI), K1, Z18
	VMOVUPS.Z    (DI)(R8*1), K1, Z19
	VFMADD231PS  Z18, Z16, Z0
	VFMADD231PS  Z19, Z17, Z1
	LEAQ         (DI)(R8*2), DI
	ADDQ         $8, SI
	SUBQ         $2, CX
	JMP          pair16

single16:
	TESTQ        CX, CX
	JEQ          store16
	VBROADCASTSS (SI), Z16
	VMOVUPS.Z    (DI), K1, Z18
	VFMADD231PS  Z18, Z16, Z0

store16:
	VADDPS      Z1, Z0, Z0
	VMOVUPS.Z   (R11), K1, Z18
	VFMADD213PS Z18, Z31, Z0
	VMOVUPS     Z0, K1, (R11)
	ADDQ        $64, R10
	ADDQ        $64, R11
	SUBQ        AX, R12
	JMP         chunk16

done:
	VZEROUPPER
	RET

// ---------------------------------------------------------------------------
// AVX2+FMA, 6×16 micro-tile: 12 ymm accumulators (row i in Y(2i), Y(2i+1)),
// two ymm of B, two broadcast registers.

#define ROW256(off, bc, acc0, acc1) \
	VBROADCASTSS off(SI), bc; \
	VFMADD231PS  Y12, bc, acc0; \
	VFMADD231PS  Y13, bc, acc1

#define STEP256 \
	VMOVUPS (DI), Y12; \
	VMOVUPS 32(DI), Y13; \
	ROW256(0, Y14, Y0, Y1); \
	ROW256(4, Y15, Y2, Y3); \
	ROW256(8, Y14, Y4, Y5); \
	ROW256(12, Y15, Y6, Y7); \
	ROW256(16, Y14, Y8, Y9); \
	ROW256(20, Y15, Y10, Y11); \
	ADDQ $24, SI; \
	ADDQ R8, DI

#define STORE256(acc0, acc1) \
	VFMADD213PS (DX), Y14, acc0; \
	VFMADD213PS 32(DX), Y14, acc1; \
	VMOVUPS     acc0, (DX); \
	VMOVUPS     acc1, 32(DX); \
	ADDQ        R9, DX

// func gemm6x16AVX2(kc int, a, b *float32, ldb int, c *float32, ldc int, alpha float32)
TEXT ·gemm6x16AVX2(SB), NOSPLIT, $0-52
	MOVQ  kc+0(FP), CX
	MOVQ  a+8(FP), SI
	MOVQ  b+16(FP), DI
	MOVQ  ldb+24(FP), R8
	SHLQ  $2, R8
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11

loop4avx2:
	CMPQ CX, $4
	JLT  loop1avx2
	STEP256
	STEP256
	STEP256
	STEP256
	SUBQ $4, CX
	JMP  loop4avx2

loop1avx2:
	TESTQ CX, CX
	JEQ   storeavx2
	STEP256
	DECQ  CX
	JMP   loop1avx2

storeavx2:
	MOVQ         c+32(FP), DX
	MOVQ         ldc+40(FP), R9
	SHLQ         $2, R9
	VBROADCASTSS alpha+48(FP), Y14
	STORE256(Y0, Y1)
	STORE256(Y2, Y3)
	STORE256(Y4, Y5)
	STORE256(Y6, Y7)
	STORE256(Y8, Y9)
	STORE256(Y10, Y11)
	VZEROUPPER
	RET

// func gemvT8AVX2(k int, x, b *float32, ldb int, y *float32, n int, alpha float32)
//
// As gemvTAVX512 for n a multiple of 8: 32 columns at a time (two rows
// per step, 8 accumulators), then 8 at a time.
TEXT ·gemvT8AVX2(SB), NOSPLIT, $0-52
	MOVQ         ldb+24(FP), R8
	SHLQ         $2, R8
	MOVQ         b+16(FP), R10
	MOVQ         y+32(FP), R11
	MOVQ         n+40(FP), R12
	VBROADCASTSS alpha+48(FP), Y15

chunk32:
	CMPQ   R12, $32
	JLT    chunk8
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	MOVQ   k+0(FP), CX
	MOVQ   x+8(FP), SI
	MOVQ   R10, DI

pair32:
	CMPQ         CX, $2
	JLT          single32
	VBROADCASTSS (SI), Y8
	VBROADCASTSS 4(SI), Y9
	VFMADD231PS  (DI), Y8, Y0
	VFMADD231PS  32(DI), Y8, Y1
	VFMADD231PS  64(DI), Y8, Y2
	VFMADD231PS  96(DI), Y8, Y3
	VFMADD231PS  (DI)(R8*1), Y9, Y4
	VFMADD231PS  32(DI)(R8*1), Y9, Y5
	VFMADD231PS  64(DI)(R8*1), Y9, Y6
	VFMADD231PS  96(DI)(R8*1), Y9, Y7
	LEAQ         (DI)(R8*2), DI
	ADDQ         $8, SI
	SUBQ         $2, CX
	JMP          pair32

single32:
	TESTQ        CX, CX
	JEQ          store32
	VBROADCASTSS (SI), Y8
	VFMADD231PS  (DI), Y8, Y0
	VFMADD231PS  32(DI), Y8, Y1
	VFMADD231PS  64(DI), Y8, Y2
	VFMADD231PS  96(DI), Y8, Y3

store32:
	VADDPS      Y4, Y0, Y0
	VADDPS      Y5, Y1, Y1
	VADDPS      Y6, Y2, Y2
	VADDPS      Y7, Y3, Y3
	VFMADD213PS (R11), Y15, Y0
	VFMADD213PS 32(R11), Y15, Y1
	VFMADD213PS 64(R11), Y15, Y2
	VFMADD213PS 96(R11), Y15, Y3
	VMOVUPS     Y0, (R11)
	VMOVUPS     Y1, 32(R11)
	VMOVUPS     Y2, 64(R11)
	VMOVUPS     Y3, 96(R11)
	ADDQ        $128, R10
	ADDQ        $128, R11
	SUBQ        $32, R12
	JMP         chunk32

chunk8:
	CMPQ   R12, $8
	JLT    done8
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	MOVQ   k+0(FP), CX
	MOVQ   x+8(FP), SI
	MOVQ   R10, DI

pair8:
	CMPQ         CX, $2
	JLT          single8
	VBROADCASTSS (SI), Y8
	VBROADCASTSS 4(SI), Y9
	VFMADD231PS  (DI), Y8, Y0
	VFMADD231PS  (DI)(R8*1), Y9, Y1
	LEAQ         (DI)(R8*2), DI
	ADDQ         $8, SI
	SUBQ         $2, CX
	JMP          pair8

single8:
	TESTQ        CX, CX
	JEQ          store8
	VBROADCASTSS (SI), Y8
	VFMADD231PS  (DI), Y8, Y0

store8:
	VADDPS      Y1, Y0, Y0
	VFMADD213PS (R11), Y15, Y0
	VMOVUPS     Y0, (R11)
	ADDQ        $32, R10
	ADDQ        $32, R11
	SUBQ        $8, R12
	JMP         chunk8

done8:
	VZEROUPPER
	RET

// func clockProbe(n int)
//
// n iterations of 32 dependent one-cycle integer adds: the loop runs at
// one add per clock cycle whatever the core, so adds per second is the
// clock the benchmarks derive the machine's peak from.
TEXT ·clockProbe(SB), NOSPLIT, $0-8
	MOVQ n+0(FP), CX
	XORQ AX, AX

clockloop:
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	DECQ CX
	JNZ  clockloop
	RET

// ---------------------------------------------------------------------------
// AVX-512 8×32 dense tile with a fused epilogue (see denseKernel):
// A is read in place, eight row pointers off SI and R12 with the row
// stride in R10 (3·lda in R11); B̃ is a packed panel, 128 bytes a row.
// Accumulators start from C, the bias or zero, and ReLU runs in registers
// before the only store.

#define DROW(addr, bc, acc0, acc1) \
	VBROADCASTSS addr, bc; \
	VFMADD231PS  Z16, bc, acc0; \
	VFMADD231PS  Z17, bc, acc1

#define DSTEP(ao, bo) \
	VMOVUPS bo(DI), Z16; \
	VMOVUPS bo+64(DI), Z17; \
	DROW(ao(SI), Z18, Z0, Z1); \
	DROW(ao(SI)(R10*1), Z19, Z2, Z3); \
	DROW(ao(SI)(R10*2), Z20, Z4, Z5); \
	DROW(ao(SI)(R11*1), Z21, Z6, Z7); \
	DROW(ao(R12), Z22, Z8, Z9); \
	DROW(ao(R12)(R10*1), Z23, Z10, Z11); \
	DROW(ao(R12)(R10*2), Z24, Z12, Z13); \
	DROW(ao(R12)(R11*1), Z25, Z14, Z15)

#define DLOADC(acc0, acc1) \
	VMOVUPS (BX), acc0; \
	VMOVUPS 64(BX), acc1; \
	ADDQ    R9, BX

#define DRELU(acc) \
	VMAXPS acc, Z31, acc

#define DSTORE(acc0, acc1) \
	VMOVUPS acc0, (DX); \
	VMOVUPS acc1, 64(DX); \
	ADDQ    R9, DX

// func dense8x32AVX512(kc int, a *float32, lda int, b, c *float32, ldc int, bias *float32, flags int)
TEXT ·dense8x32AVX512(SB), NOSPLIT, $0-64
	MOVQ kc+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R10
	SHLQ $2, R10
	LEAQ (R10)(R10*2), R11
	LEAQ (SI)(R10*4), R12
	MOVQ b+24(FP), DI
	MOVQ c+32(FP), DX
	MOVQ ldc+40(FP), R9
	SHLQ $2, R9
	MOVQ flags+56(FP), AX
	TESTQ $1, AX
	JNZ  dinitc
	TESTQ $2, AX
	JNZ  dinitbias
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	JMP    dcopy

dinitbias:
	MOVQ    bias+48(FP), BX
	VMOVUPS (BX), Z0
	VMOVUPS 64(BX), Z1

dcopy:
	VMOVAPS Z0, Z2
	VMOVAPS Z1, Z3
	VMOVAPS Z0, Z4
	VMOVAPS Z1, Z5
	VMOVAPS Z0, Z6
	VMOVAPS Z1, Z7
	VMOVAPS Z0, Z8
	VMOVAPS Z1, Z9
	VMOVAPS Z0, Z10
	VMOVAPS Z1, Z11
	VMOVAPS Z0, Z12
	VMOVAPS Z1, Z13
	VMOVAPS Z0, Z14
	VMOVAPS Z1, Z15
	JMP     dloop4

dinitc:
	MOVQ DX, BX
	DLOADC(Z0, Z1)
	DLOADC(Z2, Z3)
	DLOADC(Z4, Z5)
	DLOADC(Z6, Z7)
	DLOADC(Z8, Z9)
	DLOADC(Z10, Z11)
	DLOADC(Z12, Z13)
	DLOADC(Z14, Z15)

dloop4:
	CMPQ CX, $4
	JLT  dloop1
	DSTEP(0, 0)
	DSTEP(4, 128)
	DSTEP(8, 256)
	DSTEP(12, 384)
	ADDQ $16, SI
	ADDQ $16, R12
	ADDQ $512, DI
	SUBQ $4, CX
	JMP  dloop4

dloop1:
	TESTQ CX, CX
	JEQ   dstore
	DSTEP(0, 0)
	ADDQ  $4, SI
	ADDQ  $4, R12
	ADDQ  $128, DI
	DECQ  CX
	JMP   dloop1

dstore:
	TESTQ  $4, AX
	JZ     dwrite
	VPXORD Z31, Z31, Z31
	DRELU(Z0)
	DRELU(Z1)
	DRELU(Z2)
	DRELU(Z3)
	DRELU(Z4)
	DRELU(Z5)
	DRELU(Z6)
	DRELU(Z7)
	DRELU(Z8)
	DRELU(Z9)
	DRELU(Z10)
	DRELU(Z11)
	DRELU(Z12)
	DRELU(Z13)
	DRELU(Z14)
	DRELU(Z15)

dwrite:
	DSTORE(Z0, Z1)
	DSTORE(Z2, Z3)
	DSTORE(Z4, Z5)
	DSTORE(Z6, Z7)
	DSTORE(Z8, Z9)
	DSTORE(Z10, Z11)
	DSTORE(Z12, Z13)
	DSTORE(Z14, Z15)
	VZEROUPPER
	RET

// ---------------------------------------------------------------------------
// AVX2+FMA 6×16 dense tile with a fused epilogue: as dense8x32AVX512 with
// six rows (SI, R12 = SI+4·lda) and a packed panel of 64 bytes a row.

#define AROW(addr, bc, acc0, acc1) \
	VBROADCASTSS addr, bc; \
	VFMADD231PS  Y12, bc, acc0; \
	VFMADD231PS  Y13, bc, acc1

#define ASTEP(ao, bo) \
	VMOVUPS bo(DI), Y12; \
	VMOVUPS bo+32(DI), Y13; \
	AROW(ao(SI), Y14, Y0, Y1); \
	AROW(ao(SI)(R10*1), Y15, Y2, Y3); \
	AROW(ao(SI)(R10*2), Y14, Y4, Y5); \
	AROW(ao(SI)(R11*1), Y15, Y6, Y7); \
	AROW(ao(R12), Y14, Y8, Y9); \
	AROW(ao(R12)(R10*1), Y15, Y10, Y11)

#define ALOADC(acc0, acc1) \
	VMOVUPS (BX), acc0; \
	VMOVUPS 32(BX), acc1; \
	ADDQ    R9, BX

#define ARELU(acc) \
	VMAXPS acc, Y15, acc

#define ASTORE(acc0, acc1) \
	VMOVUPS acc0, (DX); \
	VMOVUPS acc1, 32(DX); \
	ADDQ    R9, DX

// func dense6x16AVX2(kc int, a *float32, lda int, b, c *float32, ldc int, bias *float32, flags int)
TEXT ·dense6x16AVX2(SB), NOSPLIT, $0-64
	MOVQ  kc+0(FP), CX
	MOVQ  a+8(FP), SI
	MOVQ  lda+16(FP), R10
	SHLQ  $2, R10
	LEAQ  (R10)(R10*2), R11
	LEAQ  (SI)(R10*4), R12
	MOVQ  b+24(FP), DI
	MOVQ  c+32(FP), DX
	MOVQ  ldc+40(FP), R9
	SHLQ  $2, R9
	MOVQ  flags+56(FP), AX
	TESTQ $1, AX
	JNZ   ainitc
	TESTQ $2, AX
	JNZ   ainitbias
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	JMP    acopy

ainitbias:
	MOVQ    bias+48(FP), BX
	VMOVUPS (BX), Y0
	VMOVUPS 32(BX), Y1

acopy:
	VMOVAPS Y0, Y2
	VMOVAPS Y1, Y3
	VMOVAPS Y0, Y4
	VMOVAPS Y1, Y5
	VMOVAPS Y0, Y6
	VMOVAPS Y1, Y7
	VMOVAPS Y0, Y8
	VMOVAPS Y1, Y9
	VMOVAPS Y0, Y10
	VMOVAPS Y1, Y11
	JMP     aloop4

ainitc:
	MOVQ DX, BX
	ALOADC(Y0, Y1)
	ALOADC(Y2, Y3)
	ALOADC(Y4, Y5)
	ALOADC(Y6, Y7)
	ALOADC(Y8, Y9)
	ALOADC(Y10, Y11)

aloop4:
	CMPQ CX, $4
	JLT  aloop1
	ASTEP(0, 0)
	ASTEP(4, 64)
	ASTEP(8, 128)
	ASTEP(12, 192)
	ADDQ $16, SI
	ADDQ $16, R12
	ADDQ $256, DI
	SUBQ $4, CX
	JMP  aloop4

aloop1:
	TESTQ CX, CX
	JEQ   astore
	ASTEP(0, 0)
	ADDQ  $4, SI
	ADDQ  $4, R12
	ADDQ  $64, DI
	DECQ  CX
	JMP   aloop1

astore:
	TESTQ  $4, AX
	JZ     awrite
	VXORPS Y15, Y15, Y15
	ARELU(Y0)
	ARELU(Y1)
	ARELU(Y2)
	ARELU(Y3)
	ARELU(Y4)
	ARELU(Y5)
	ARELU(Y6)
	ARELU(Y7)
	ARELU(Y8)
	ARELU(Y9)
	ARELU(Y10)
	ARELU(Y11)

awrite:
	ASTORE(Y0, Y1)
	ASTORE(Y2, Y3)
	ASTORE(Y4, Y5)
	ASTORE(Y6, Y7)
	ASTORE(Y8, Y9)
	ASTORE(Y10, Y11)
	VZEROUPPER
	RET
