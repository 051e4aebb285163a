//go:build !purego

#include "textflag.h"

// Depthwise 3×3 rows in AVX-512 (see dw3x3Row): dst[i] = bias + Σ_{ky,kx}
// w[3ky+kx]·r_ky[i·s+kx] for i < n, the weights broadcast in Z20–Z28.

// Lane indices that gather the even and the odd values of two vectors.
DATA ·dwEven+0(SB)/4, $0
DATA ·dwEven+4(SB)/4, $2
DATA ·dwEven+8(SB)/4, $4
DATA ·dwEven+12(SB)/4, $6
DATA ·dwEven+16(SB)/4, $8
DATA ·dwEven+20(SB)/4, $10
DATA ·dwEven+24(SB)/4, $12
DATA ·dwEven+28(SB)/4, $14
DATA ·dwEven+32(SB)/4, $16
DATA ·dwEven+36(SB)/4, $18
DATA ·dwEven+40(SB)/4, $20
DATA ·dwEven+44(SB)/4, $22
DATA ·dwEven+48(SB)/4, $24
DATA ·dwEven+52(SB)/4, $26
DATA ·dwEven+56(SB)/4, $28
DATA ·dwEven+60(SB)/4, $30
GLOBL ·dwEven(SB), RODATA|NOPTR, $64
DATA ·dwOdd+0(SB)/4, $1
DATA ·dwOdd+4(SB)/4, $3
DATA ·dwOdd+8(SB)/4, $5
DATA ·dwOdd+12(SB)/4, $7
DATA ·dwOdd+16(SB)/4, $9
DATA ·dwOdd+20(SB)/4, $11
DATA ·dwOdd+24(SB)/4, $13
DATA ·dwOdd+28(SB)/4, $15
DATA ·dwOdd+32(SB)/4, $17
DATA ·dwOdd+36(SB)/4, $19
DATA ·dwOdd+40(SB)/4, $21
DATA ·dwOdd+44(SB)/4, $23
DATA ·dwOdd+48(SB)/4, $25
DATA ·dwOdd+52(SB)/4, $27
DATA ·dwOdd+56(SB)/4, $29
DATA ·dwOdd+60(SB)/4, $31
GLOBL ·dwOdd(SB), RODATA|NOPTR, $64

// func dw3x3AVX512(dst, r0, r1, r2, w *float32, n, s int, bias float32)
TEXT ·dw3x3AVX512(SB), NOSPLIT, $0-60
	MOVQ dst+0(FP), DI
	MOVQ r0+8(FP), R8
	MOVQ r1+16(FP), R9
	MOVQ r2+24(FP), R10
	MOVQ w+32(FP), AX
	MOVQ n+40(FP), CX
	MOVQ s+48(FP), DX
	VBROADCASTSS bias+56(FP), Z29
	VBROADCASTSS 0(AX), Z20
	VBROADCASTSS 4(AX), Z21
	VBROADCASTSS 8(AX), Z22
	VBROADCASTSS 12(AX), Z23
	VBROADCASTSS 16(AX), Z24
	VBROADCASTSS 20(AX), Z25
	VBROADCASTSS 24(AX), Z26
	VBROADCASTSS 28(AX), Z27
	VBROADCASTSS 32(AX), Z28
	CMPQ DX, $2
	JEQ  s2

// Stride 1: 64 outputs an iteration, three partial sums (one per row of
// the kernel) for each 16, so the multiply-adds do not wait on each other.
s1_64:
	CMPQ CX, $64
	JLT  s1_16
	VMOVAPS Z29, Z0
	VMULPS  0(R9), Z23, Z4
	VMULPS  0(R10), Z26, Z8
	VMOVAPS Z29, Z1
	VMULPS  64(R9), Z23, Z5
	VMULPS  64(R10), Z26, Z9
	VMOVAPS Z29, Z2
	VMULPS  128(R9), Z23, Z6
	VMULPS  128(R10), Z26, Z10
	VMOVAPS Z29, Z3
	VMULPS  192(R9), Z23, Z7
	VMULPS  192(R10), Z26, Z11
	VFMADD231PS 0(R8), Z20, Z0
	VFMADD231PS 4(R9), Z24, Z4
	VFMADD231PS 4(R10), Z27, Z8
	VFMADD231PS 4(R8), Z21, Z0
	VFMADD231PS 8(R9), Z25, Z4
	VFMADD231PS 8(R10), Z28, Z8
	VFMADD231PS 8(R8), Z22, Z0
	VFMADD231PS 64(R8), Z20, Z1
	VFMADD231PS 68(R9), Z24, Z5
	VFMADD231PS 68(R10), Z27, Z9
	VFMADD231PS 68(R8), Z21, Z1
	VFMADD231PS 72(R9), Z25, Z5
	VFMADD231PS 72(R10), Z28, Z9
	VFMADD231PS 72(R8), Z22, Z1
	VFMADD231PS 128(R8), Z20, Z2
	VFMADD231PS 132(R9), Z24, Z6
	VFMADD231PS 132(R10), Z27, Z10
	VFMADD231PS 132(R8), Z21, Z2
	VFMADD231PS 136(R9), Z25, Z6
	VFMADD231PS 136(R10), Z28, Z10
	VFMADD231PS 136(R8), Z22, Z2
	VFMADD231PS 192(R8), Z20, Z3
	VFMADD231PS 196(R9), Z24, Z7
	VFMADD231PS 196(R10), Z27, Z11
	VFMADD231PS 196(R8), Z21, Z3
	VFMADD231PS 200(R9), Z25, Z7
	VFMADD231PS 200(R10), Z28, Z11
	VFMADD231PS 200(R8), Z22, Z3
	VADDPS  Z8, Z4, Z4
	VADDPS  Z4, Z0, Z0
	VMOVUPS Z0, 0(DI)
	VADDPS  Z9, Z5, Z5
	VADDPS  Z5, Z1, Z1
	VMOVUPS Z1, 64(DI)
	VADDPS  Z10, Z6, Z6
	VADDPS  Z6, Z2, Z2
	VMOVUPS Z2, 128(DI)
	VADDPS  Z11, Z7, Z7
	VADDPS  Z7, Z3, Z3
	VMOVUPS Z3, 192(DI)
	ADDQ $256, DI
	ADDQ $256, R8
	ADDQ $256, R9
	ADDQ $256, R10
	SUBQ $64, CX
	JMP  s1_64

// Then 16 at a time, the last ones under a mask: nothing past the row's
// last tap is read.
s1_16:
	TESTQ CX, CX
	JEQ   done
	MOVQ  $16, R11
	CMPQ  CX, R11
	CMOVQLT CX, R11
	MOVQ  CX, BX
	MOVQ  R11, CX
	MOVL  $1, R12
	SHLL  CX, R12
	DECL  R12
	MOVQ  BX, CX
	KMOVW R12, K1
	VMOVAPS Z29, Z0
	VMOVUPS.Z 0(R8), K1, Z12
	VMOVUPS.Z 4(R8), K1, Z13
	VMOVUPS.Z 8(R8), K1, Z14
	VFMADD231PS Z12, Z20, Z0
	VFMADD231PS Z13, Z21, Z0
	VFMADD231PS Z14, Z22, Z0
	VMOVUPS.Z 0(R9), K1, Z12
	VMOVUPS.Z 4(R9), K1, Z13
	VMOVUPS.Z 8(R9), K1, Z14
	VMULPS      Z12, Z23, Z1
	VFMADD231PS Z13, Z24, Z1
	VFMADD231PS Z14, Z25, Z1
	VMOVUPS.Z 0(R10), K1, Z12
	VMOVUPS.Z 4(R10), K1, Z13
	VMOVUPS.Z 8(R10), K1, Z14
	VMULPS      Z12, Z26, Z2
	VFMADD231PS Z13, Z27, Z2
	VFMADD231PS Z14, Z28, Z2
	VADDPS  Z2, Z1, Z1
	VADDPS  Z1, Z0, Z0
	VMOVUPS Z0, K1, (DI)
	ADDQ    $64, DI
	ADDQ    $64, R8
	ADDQ    $64, R9
	ADDQ    $64, R10
	SUBQ    R11, CX
	JMP     s1_16

// Stride 2: 16 outputs an iteration from 33 values of each row: the even
// ones (kx = 0), the odd ones (kx = 1) and the even ones shifted by one
// (kx = 2, the 33rd value broadcast into the last lane). The last ones
// go under masks on the outputs (K1) and the two input vectors (K2, K3).
s2:
	VMOVUPS ·dwEven(SB), Z30
	VMOVUPS ·dwOdd(SB), Z31

s2_16:
	TESTQ CX, CX
	JEQ   done
	CMPQ  CX, $16
	JLT   s2_tail
	MOVQ  $16, R11
	MOVL  $0xffff, R12
	KMOVW R12, K1
	KMOVW R12, K2
	KMOVW R12, K3
	JMP   s2_body

s2_tail:
	MOVQ  CX, R11
	MOVQ  CX, BX
	MOVL  $1, R12
	SHLL  CX, R12
	DECL  R12
	KMOVW R12, K1
	LEAQ  1(BX)(BX*1), CX
	MOVQ  CX, R13
	CMPQ  CX, $16
	JLE   s2_k2
	MOVQ  $16, CX

s2_k2:
	MOVL  $1, R12
	SHLL  CX, R12
	DECL  R12
	KMOVW R12, K2
	SUBQ  $16, R13
	XORL  R12, R12
	TESTQ R13, R13
	JLE   s2_k3
	MOVQ  R13, CX
	MOVL  $1, R12
	SHLL  CX, R12
	DECL  R12

s2_k3:
	KMOVW R12, K3
	MOVQ  BX, CX

s2_body:
	VMOVAPS Z29, Z0
	VMOVUPS.Z (R8), K2, Z12
	VMOVUPS.Z 64(R8), K3, Z13
	VMOVAPS   Z12, Z14
	VPERMT2PS Z13, Z30, Z14
	VPERMT2PS Z13, Z31, Z12
	VPXORD    Z15, Z15, Z15
	CMPQ      R11, $16
	JLT       s2_nolast0
	VBROADCASTSS 128(R8), Z15

s2_nolast0:
	VALIGND   $1, Z14, Z15, Z13
	VFMADD231PS Z14, Z20, Z0
	VFMADD231PS Z12, Z21, Z0
	VFMADD231PS Z13, Z22, Z0
	VMOVUPS.Z (R9), K2, Z12
	VMOVUPS.Z 64(R9), K3, Z13
	VMOVAPS   Z12, Z14
	VPERMT2PS Z13, Z30, Z14
	VPERMT2PS Z13, Z31, Z12
	VPXORD    Z15, Z15, Z15
	CMPQ      R11, $16
	JLT       s2_nolast1
	VBROADCASTSS 128(R9), Z15

s2_nolast1:
	VALIGND   $1, Z14, Z15, Z13
	VMULPS      Z14, Z23, Z1
	VFMADD231PS Z12, Z24, Z1
	VFMADD231PS Z13, Z25, Z1
	VMOVUPS.Z (R10), K2, Z12
	VMOVUPS.Z 64(R10), K3, Z13
	VMOVAPS   Z12, Z14
	VPERMT2PS Z13, Z30, Z14
	VPERMT2PS Z13, Z31, Z12
	VPXORD    Z15, Z15, Z15
	CMPQ      R11, $16
	JLT       s2_nolast2
	VBROADCASTSS 128(R10), Z15

s2_nolast2:
	VALIGND   $1, Z14, Z15, Z13
	VMULPS      Z14, Z26, Z2
	VFMADD231PS Z12, Z27, Z2
	VFMADD231PS Z13, Z28, Z2
	VADDPS  Z2, Z1, Z1
	VADDPS  Z1, Z0, Z0
	VMOVUPS Z0, K1, (DI)
	ADDQ    $64, DI
	ADDQ    $128, R8
	ADDQ    $128, R9
	ADDQ    $128, R10
	SUBQ    R11, CX
	JMP     s2_16

done:
	VZEROUPPER
	RET

// func dwFlat3x3AVX512(dst, x, w *float32, masks *uint16, chunks, width int, bias float32, t *tileArgs)
//
// A whole channel of a 3×3, stride-1 convolution whose output has the
// input's H×W (padding 1): output p = 16c+lane reads x[p + (ky−1)·W +
// kx − 1], a constant offset per tap, so the plane is one flat vector
// loop. Taps outside the plane or across a row's end are masked off
// (masks[10c+t] for tap t, masks[10c+9] for the store; masked lanes are
// neither loaded nor faulted on). The residual (t.res, the channel's
// plane, when t.flags has tileRes) and the activation are applied before
// the store, as in gemmEp8x32AVX512.
TEXT ·dwFlat3x3AVX512(SB), NOSPLIT, $0-64
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), R8
	MOVQ w+16(FP), AX
	MOVQ masks+24(FP), SI
	MOVQ chunks+32(FP), CX
	MOVQ width+40(FP), R9
	SHLQ $2, R9
	VBROADCASTSS bias+48(FP), Z29
	MOVQ t+56(FP), R14
	VBROADCASTSS 0(AX), Z20
	VBROADCASTSS 4(AX), Z21
	VBROADCASTSS 8(AX), Z22
	VBROADCASTSS 12(AX), Z23
	VBROADCASTSS 16(AX), Z24
	VBROADCASTSS 20(AX), Z25
	VBROADCASTSS 24(AX), Z26
	VBROADCASTSS 28(AX), Z27
	VBROADCASTSS 32(AX), Z28
	MOVQ 24(R14), R10
	MOVQ 8(R14), R11
	MOVQ R10, R12
	SHRQ $4, R12
	ANDQ $7, R12
	VPXORD Z18, Z18, Z18
	VBROADCASTSS ·one32(SB), Z19
	VBROADCASTSS 32(R14), Z16
	VBROADCASTSS 36(R14), Z17
	CMPQ R12, $3
	JLT  flat_params
	VBROADCASTSS 40(R14), Z16
	VBROADCASTSS 44(R14), Z17

flat_params:
	SUBQ R9, R8
	SUBQ $4, R8
	TESTQ CX, CX
	JEQ   flat_done

flat_loop:
	VMOVAPS Z29, Z0
	VPXORD  Z1, Z1, Z1
	VPXORD  Z2, Z2, Z2
	KMOVW       0(SI), K1
	VFMADD231PS 0(R8), Z20, K1, Z0
	KMOVW       2(SI), K2
	VFMADD231PS 4(R8), Z21, K2, Z0
	KMOVW       4(SI), K3
	VFMADD231PS 8(R8), Z22, K3, Z0
	KMOVW       6(SI), K4
	VFMADD231PS 0(R8)(R9*1), Z23, K4, Z1
	KMOVW       8(SI), K5
	VFMADD231PS 4(R8)(R9*1), Z24, K5, Z1
	KMOVW       10(SI), K6
	VFMADD231PS 8(R8)(R9*1), Z25, K6, Z1
	KMOVW       12(SI), K7
	VFMADD231PS 0(R8)(R9*2), Z26, K7, Z2
	KMOVW       14(SI), K1
	VFMADD231PS 4(R8)(R9*2), Z27, K1, Z2
	KMOVW       16(SI), K2
	VFMADD231PS 8(R8)(R9*2), Z28, K2, Z2
	KMOVW   18(SI), K1
	VADDPS  Z2, Z1, Z1
	VADDPS  Z1, Z0, Z0
	TESTQ   $4, R10
	JZ      flat_act
	VMOVUPS.Z (R11), K1, Z3
	VADDPS  Z3, Z0, Z0
	ADDQ    $64, R11

flat_act:
	CMPQ R12, $1
	JEQ  flat_relu
	CMPQ R12, $2
	JEQ  flat_clip
	CMPQ R12, $3
	JEQ  flat_hswish
	CMPQ R12, $4
	JEQ  flat_leaky
	JMP  flat_store

flat_relu:
	VMAXPS Z0, Z18, Z0
	JMP    flat_store

flat_clip:
	VMAXPS Z0, Z16, Z0
	VMINPS Z0, Z17, Z0
	JMP    flat_store

flat_hswish:
	VMOVAPS     Z0, Z3
	VFMADD213PS Z17, Z16, Z3
	VMAXPS      Z3, Z18, Z3
	VMINPS      Z3, Z19, Z3
	VMULPS      Z3, Z0, Z0
	JMP         flat_store

flat_leaky:
	VCMPPS $1, Z18, Z0, K2
	VMULPS Z16, Z0, K2, Z0

flat_store:
	VMOVUPS Z0, K1, (DI)
	ADDQ    $64, DI
	ADDQ    $64, R8
	ADDQ    $20, SI
	DECQ    CX
	JNZ     flat_loop

flat_done:
	VZEROUPPER
	RET

// MASK16 sets AX to the 16-bit lane mask of lanes lo ≤ l < hi, lo in AX
// and hi in BX (any values: both are clamped to 0…16 first), with CX = 0,
// SI = 16 and DX = 0xffff.
#define MASK16 \
	CMPQ    AX, CX; \
	CMOVQLT CX, AX; \
	CMPQ    AX, SI; \
	CMOVQGT SI, AX; \
	CMPQ    BX, CX; \
	CMOVQLT CX, BX; \
	CMPQ    BX, SI; \
	CMOVQGT SI, BX; \
	BZHIL   BX, DX, BX; \
	BZHIL   AX, DX, AX; \
	ANDNL   BX, AX, AX

// S2ROW adds the three taps of one kernel row (weights wa, wb, wc) for 16
// outputs to acc from the row at r: the even values (kx = 0), the odd
// ones (kx = 1) and the even ones shifted by one (kx = 2), under the input
// masks K2, K3 (the 32 values) and K4 (the 33rd).
#define S2ROW(r, wa, wb, wc, acc) \
	VMOVUPS.Z      (r), K2, Z12; \
	VMOVUPS.Z      64(r), K3, Z13; \
	VBROADCASTSS.Z 128(r), K4, Z15; \
	VMOVAPS        Z12, Z14; \
	VPERMT2PS      Z13, Z30, Z14; \
	VPERMT2PS      Z13, Z31, Z12; \
	VALIGND        $1, Z14, Z15, Z13; \
	VFMADD231PS    Z14, wa, acc; \
	VFMADD231PS    Z12, wb, acc; \
	VFMADD231PS    Z13, wc, acc

// func dwRowS2AVX512(dst, r0, r1, r2, w *float32, n, padL, width int, bias float32)
//
// One whole output row of a 3×3 stride-2 convolution, borders included:
// dst[i] = bias + Σ w[3ky+kx]·r_ky[2i+kx−padL], the values outside
// 0…width−1 of each row being zero. Every load is masked to the row, so
// nothing outside it is read.
TEXT ·dwRowS2AVX512(SB), NOSPLIT, $0-68
	MOVQ dst+0(FP), DI
	MOVQ r0+8(FP), R8
	MOVQ r1+16(FP), R9
	MOVQ r2+24(FP), R10
	MOVQ w+32(FP), SI
	MOVQ n+40(FP), R14
	MOVQ padL+48(FP), R13
	MOVQ width+56(FP), R12
	VBROADCASTSS bias+64(FP), Z29
	VBROADCASTSS 0(SI), Z20
	VBROADCASTSS 4(SI), Z21
	VBROADCASTSS 8(SI), Z22
	VBROADCASTSS 12(SI), Z23
	VBROADCASTSS 16(SI), Z24
	VBROADCASTSS 20(SI), Z25
	VBROADCASTSS 24(SI), Z26
	VBROADCASTSS 28(SI), Z27
	VBROADCASTSS 32(SI), Z28
	VMOVUPS ·dwEven(SB), Z30
	VMOVUPS ·dwOdd(SB), Z31
	MOVQ R13, AX
	SHLQ $2, AX
	SUBQ AX, R8
	SUBQ AX, R9
	SUBQ AX, R10
	ADDQ R13, R12
	XORQ R11, R11
	XORQ CX, CX
	MOVQ $16, SI
	MOVL $0xffff, DX

s2row_loop:
	TESTQ R14, R14
	JLE   s2row_done
	// Inside the row (16 outputs left, the 33 values all in it): no
	// masks to compute.
	CMPQ  R14, $16
	JLT   s2row_masks
	CMPQ  R11, R13
	JLT   s2row_masks
	LEAQ  32(R11), AX
	CMPQ  AX, R12
	JGE   s2row_masks
	KXNORW K1, K1, K1
	KXNORW K2, K2, K2
	KXNORW K3, K3, K3
	KXNORW K4, K4, K4
	JMP   s2row_body

s2row_masks:
	XORQ  AX, AX
	MOVQ  R14, BX
	MASK16
	KMOVW AX, K1
	MOVQ  R13, AX
	SUBQ  R11, AX
	MOVQ  R12, BX
	SUBQ  R11, BX
	MASK16
	KMOVW AX, K2
	MOVQ  R13, AX
	SUBQ  R11, AX
	SUBQ  $16, AX
	MOVQ  R12, BX
	SUBQ  R11, BX
	SUBQ  $16, BX
	MASK16
	KMOVW AX, K3
	XORQ  AX, AX
	MOVQ  R12, BX
	SUBQ  R11, BX
	SUBQ  $32, BX
	MASK16
	KMOVW AX, K4

s2row_body:
	VMOVAPS Z29, Z0
	VPXORD  Z1, Z1, Z1
	VPXORD  Z2, Z2, Z2
	S2ROW(R8, Z20, Z21, Z22, Z0)
	S2ROW(R9, Z23, Z24, Z25, Z1)
	S2ROW(R10, Z26, Z27, Z28, Z2)
	VADDPS  Z2, Z1, Z1
	VADDPS  Z1, Z0, Z0
	VMOVUPS Z0, K1, (DI)
	ADDQ    $64, DI
	ADDQ    $128, R8
	ADDQ    $128, R9
	ADDQ    $128, R10
	ADDQ    $32, R11
	SUBQ    $16, R14
	JMP     s2row_loop

s2row_done:
	VZEROUPPER
	RET
