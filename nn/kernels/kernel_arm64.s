//go:build !purego

#include "textflag.h"

// NEON 8×8 micro-tile: 16 accumulators (row i in V(2i), V(2i+1)), two
// vectors of B per step, A broadcast lane by lane with VDUP.

#define ROWN(lane, src, acc0, acc1) \
	VDUP  src.S[lane], V20.S4; \
	VFMLA V16.S4, V20.S4, acc0.S4; \
	VFMLA V17.S4, V20.S4, acc1.S4

#define STOREN(acc0, acc1) \
	VLD1  (R4), [V22.S4, V23.S4]; \
	VFMLA acc0.S4, V31.S4, V22.S4; \
	VFMLA acc1.S4, V31.S4, V23.S4; \
	VST1  [V22.S4, V23.S4], (R4); \
	ADD   R5, R4, R4

// func gemm8x8NEON(kc int, a, b *float32, ldb int, c *float32, ldc int, alpha float32)
TEXT ·gemm8x8NEON(SB), NOSPLIT, $0-52
	MOVD kc+0(FP), R0
	MOVD a+8(FP), R1
	MOVD b+16(FP), R2
	MOVD ldb+24(FP), R3
	LSL  $2, R3, R3
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16
	VEOR V4.B16, V4.B16, V4.B16
	VEOR V5.B16, V5.B16, V5.B16
	VEOR V6.B16, V6.B16, V6.B16
	VEOR V7.B16, V7.B16, V7.B16
	VEOR V8.B16, V8.B16, V8.B16
	VEOR V9.B16, V9.B16, V9.B16
	VEOR V10.B16, V10.B16, V10.B16
	VEOR V11.B16, V11.B16, V11.B16
	VEOR V12.B16, V12.B16, V12.B16
	VEOR V13.B16, V13.B16, V13.B16
	VEOR V14.B16, V14.B16, V14.B16
	VEOR V15.B16, V15.B16, V15.B16
	CBZ  R0, store

loop:
	VLD1   (R2), [V16.S4, V17.S4]
	ADD    R3, R2, R2
	VLD1.P 32(R1), [V18.S4, V19.S4]
	ROWN(0, V18, V0, V1)
	ROWN(1, V18, V2, V3)
	ROWN(2, V18, V4, V5)
	ROWN(3, V18, V6, V7)
	ROWN(0, V19, V8, V9)
	ROWN(1, V19, V10, V11)
	ROWN(2, V19, V12, V13)
	ROWN(3, V19, V14, V15)
	SUB    $1, R0, R0
	CBNZ   R0, loop

store:
	MOVD  c+32(FP), R4
	MOVD  ldc+40(FP), R5
	LSL   $2, R5, R5
	FMOVS alpha+48(FP), F31
	VDUP  V31.S[0], V31.S4
	STOREN(V0, V1)
	STOREN(V2, V3)
	STOREN(V4, V5)
	STOREN(V6, V7)
	STOREN(V8, V9)
	STOREN(V10, V11)
	STOREN(V12, V13)
	STOREN(V14, V15)
	RET

// func gemvT16NEON(k int, x, b *float32, ldb int, y *float32, n int, alpha float32)
//
// y[0:n] += alpha · Σ_p x[p]·B[p, 0:n] for n a multiple of 16: one strip
// of 16 columns (4 accumulators) at a time.
TEXT ·gemvT16NEON(SB), NOSPLIT, $0-52
	MOVD  ldb+24(FP), R3
	LSL   $2, R3, R3
	MOVD  b+16(FP), R10
	MOVD  y+32(FP), R11
	MOVD  n+40(FP), R12
	FMOVS alpha+48(FP), F31
	VDUP  V31.S[0], V31.S4

strip:
	CBZ  R12, done
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16
	MOVD k+0(FP), R0
	MOVD x+8(FP), R1
	MOVD R10, R2
	CBZ  R0, storeg

row:
	VLD1R.P 4(R1), [V20.S4]
	VLD1    (R2), [V16.S4, V17.S4, V18.S4, V19.S4]
	ADD     R3, R2, R2
	VFMLA   V16.S4, V20.S4, V0.S4
	VFMLA   V17.S4, V20.S4, V1.S4
	VFMLA   V18.S4, V20.S4, V2.S4
	VFMLA   V19.S4, V20.S4, V3.S4
	SUB     $1, R0, R0
	CBNZ    R0, row

storeg:
	VLD1  (R11), [V16.S4, V17.S4, V18.S4, V19.S4]
	VFMLA V0.S4, V31.S4, V16.S4
	VFMLA V1.S4, V31.S4, V17.S4
	VFMLA V2.S4, V31.S4, V18.S4
	VFMLA V3.S4, V31.S4, V19.S4
	VST1  [V16.S4, V17.S4, V18.S4, V19.S4], (R11)
	ADD   $64, R10, R10
	ADD   $64, R11, R11
	SUB   $16, R12, R12
	B     strip

done:
	RET

// func dense8x8NEON(kc int, a *float32, lda int, b, c *float32, ldc int, bias *float32, flags int)
//
// NEON 8×8 dense tile with a fused epilogue (see denseKernel): the eight
// rows of A are read in place through R6–R13, one value a row replicated
// with LD1R; B̃ is a packed panel (32 bytes a row). The accumulators start
// from C, the bias or zero, and ReLU is FMAX against zero in registers
// (FMAX keeps NaN), encoded with WORD as Go's assembler has no vector
// FMAX.
TEXT ·dense8x8NEON(SB), NOSPLIT, $0-64
	MOVD kc+0(FP), R0
	MOVD a+8(FP), R6
	MOVD lda+16(FP), R3
	LSL  $2, R3, R3
	ADD  R3, R6, R7
	ADD  R3, R7, R8
	ADD  R3, R8, R9
	ADD  R3, R9, R10
	ADD  R3, R10, R11
	ADD  R3, R11, R12
	ADD  R3, R12, R13
	MOVD b+24(FP), R2
	MOVD c+32(FP), R4
	MOVD ldc+40(FP), R5
	LSL  $2, R5, R5
	MOVD flags+56(FP), R14
	TBNZ $0, R14, ninitc
	TBNZ $1, R14, ninitbias
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	B    ncopy

ninitbias:
	MOVD bias+48(FP), R15
	VLD1 (R15), [V0.S4, V1.S4]

ncopy:
	VORR V0.B16, V0.B16, V2.B16
	VORR V1.B16, V1.B16, V3.B16
	VORR V0.B16, V0.B16, V4.B16
	VORR V1.B16, V1.B16, V5.B16
	VORR V0.B16, V0.B16, V6.B16
	VORR V1.B16, V1.B16, V7.B16
	VORR V0.B16, V0.B16, V8.B16
	VORR V1.B16, V1.B16, V9.B16
	VORR V0.B16, V0.B16, V10.B16
	VORR V1.B16, V1.B16, V11.B16
	VORR V0.B16, V0.B16, V12.B16
	VORR V1.B16, V1.B16, V13.B16
	VORR V0.B16, V0.B16, V14.B16
	VORR V1.B16, V1.B16, V15.B16
	B    nloop

ninitc:
	MOVD R4, R15
	VLD1 (R15), [V0.S4, V1.S4]
	ADD  R5, R15, R15
	VLD1 (R15), [V2.S4, V3.S4]
	ADD  R5, R15, R15
	VLD1 (R15), [V4.S4, V5.S4]
	ADD  R5, R15, R15
	VLD1 (R15), [V6.S4, V7.S4]
	ADD  R5, R15, R15
	VLD1 (R15), [V8.S4, V9.S4]
	ADD  R5, R15, R15
	VLD1 (R15), [V10.S4, V11.S4]
	ADD  R5, R15, R15
	VLD1 (R15), [V12.S4, V13.S4]
	ADD  R5, R15, R15
	VLD1 (R15), [V14.S4, V15.S4]
	ADD  R5, R15, R15

nloop:
	CBZ     R0, nstore
	VLD1.P  32(R2), [V16.S4, V17.S4]
	VLD1R.P 4(R6), [V20.S4]
	VLD1R.P 4(R7), [V21.S4]
	VLD1R.P 4(R8), [V22.S4]
	VLD1R.P 4(R9), [V23.S4]
	VLD1R.P 4(R10), [V24.S4]
	VLD1R.P 4(R11), [V25.S4]
	VLD1R.P 4(R12), [V26.S4]
	VLD1R.P 4(R13), [V27.S4]
	VFMLA   V16.S4, V20.S4, V0.S4
	VFMLA   V17.S4, V20.S4, V1.S4
	VFMLA   V16.S4, V21.S4, V2.S4
	VFMLA   V17.S4, V21.S4, V3.S4
	VFMLA   V16.S4, V22.S4, V4.S4
	VFMLA   V17.S4, V22.S4, V5.S4
	VFMLA   V16.S4, V23.S4, V6.S4
	VFMLA   V17.S4, V23.S4, V7.S4
	VFMLA   V16.S4, V24.S4, V8.S4
	VFMLA   V17.S4, V24.S4, V9.S4
	VFMLA   V16.S4, V25.S4, V10.S4
	VFMLA   V17.S4, V25.S4, V11.S4
	VFMLA   V16.S4, V26.S4, V12.S4
	VFMLA   V17.S4, V26.S4, V13.S4
	VFMLA   V16.S4, V27.S4, V14.S4
	VFMLA   V17.S4, V27.S4, V15.S4
	SUB     $1, R0, R0
	B       nloop

nstore:
	TBZ  $2, R14, nwrite
	VEOR V31.B16, V31.B16, V31.B16
	WORD $0x4e3ff400 // FMAX V0.4S, V0.4S, V31.4S
	WORD $0x4e3ff421 // FMAX V1.4S, V1.4S, V31.4S
	WORD $0x4e3ff442 // FMAX V2.4S, V2.4S, V31.4S
	WORD $0x4e3ff463 // FMAX V3.4S, V3.4S, V31.4S
	WORD $0x4e3ff484 // FMAX V4.4S, V4.4S, V31.4S
	WORD $0x4e3ff4a5 // FMAX V5.4S, V5.4S, V31.4S
	WORD $0x4e3ff4c6 // FMAX V6.4S, V6.4S, V31.4S
	WORD $0x4e3ff4e7 // FMAX V7.4S, V7.4S, V31.4S
	WORD $0x4e3ff508 // FMAX V8.4S, V8.4S, V31.4S
	WORD $0x4e3ff529 // FMAX V9.4S, V9.4S, V31.4S
	WORD $0x4e3ff54a // FMAX V10.4S, V10.4S, V31.4S
	WORD $0x4e3ff56b // FMAX V11.4S, V11.4S, V31.4S
	WORD $0x4e3ff58c // FMAX V12.4S, V12.4S, V31.4S
	WORD $0x4e3ff5ad // FMAX V13.4S, V13.4S, V31.4S
	WORD $0x4e3ff5ce // FMAX V14.4S, V14.4S, V31.4S
	WORD $0x4e3ff5ef // FMAX V15.4S, V15.4S, V31.4S

nwrite:
	VST1 [V0.S4, V1.S4], (R4)
	ADD  R5, R4, R4
	VST1 [V2.S4, V3.S4], (R4)
	ADD  R5, R4, R4
	VST1 [V4.S4, V5.S4], (R4)
	ADD  R5, R4, R4
	VST1 [V6.S4, V7.S4], (R4)
	ADD  R5, R4, R4
	VST1 [V8.S4, V9.S4], (R4)
	ADD  R5, R4, R4
	VST1 [V10.S4, V11.S4], (R4)
	ADD  R5, R4, R4
	VST1 [V12.S4, V13.S4], (R4)
	ADD  R5, R4, R4
	VST1 [V14.S4, V15.S4], (R4)
	ADD  R5, R4, R4
	RET
