//go:build !purego

#include "textflag.h"

// AVX-512 transcendental loops for transformers (transc.go): eˣ, the
// softmax step exp(x − m) with its sum, the maximum, and GELU in its erf
// and tanh forms. 16 lanes per vector, the tail under a mask.
//
// eˣ: x clamped to [−104, 89] (NaN kept), n = round(x·log2 e),
// r = x − n·ln2 (two-part ln2, Cephes), eʳ = 1 + r + r²·q(r) with q of
// degree 5, then scaled by 2ⁿ with VSCALEFPS (over- and underflow
// exact: +Inf above, 0 below).

#define EXPCONSTS \
	MOVL $0x3fb8aa3b, AX; VPBROADCASTD AX, Z20; \ // log2 e
	MOVL $0xbf318000, AX; VPBROADCASTD AX, Z21; \ // -0.693359375
	MOVL $0x395e8083, AX; VPBROADCASTD AX, Z22; \ // +2.12194440e-4
	MOVL $0x39506967, AX; VPBROADCASTD AX, Z23; \ // 1.9875691500e-4
	MOVL $0x3ab743ce, AX; VPBROADCASTD AX, Z24; \ // 1.3981999507e-3
	MOVL $0x3c088908, AX; VPBROADCASTD AX, Z25; \ // 8.3334519073e-3
	MOVL $0x3d2aa9c1, AX; VPBROADCASTD AX, Z26; \ // 4.1665795894e-2
	MOVL $0x3e2aaaaa, AX; VPBROADCASTD AX, Z27; \ // 1.6666665459e-1
	MOVL $0x3f000000, AX; VPBROADCASTD AX, Z28; \ // 0.5
	MOVL $0x3f800000, AX; VPBROADCASTD AX, Z29; \ // 1
	MOVL $0xc2d00000, AX; VPBROADCASTD AX, Z30; \ // -104
	MOVL $0x42b20000, AX; VPBROADCASTD AX, Z31    // 89

// EXP(x, n, q, r2): x = eˣ, clobbering n, q and r2.
#define EXP(x, n, q, r2) \
	VMINPS x, Z31, x; \
	VMAXPS x, Z30, x; \
	VMULPS Z20, x, n; \
	VRNDSCALEPS $0, n, n; \
	VFMADD231PS Z21, n, x; \
	VFMADD231PS Z22, n, x; \
	VMOVAPS Z23, q; \
	VFMADD213PS Z24, x, q; \
	VFMADD213PS Z25, x, q; \
	VFMADD213PS Z26, x, q; \
	VFMADD213PS Z27, x, q; \
	VFMADD213PS Z28, x, q; \
	VMULPS x, x, r2; \
	VADDPS Z29, x, x; \
	VFMADD231PS r2, q, x; \
	VSCALEFPS n, x, x

// TAILMASK sets K1 to the low CX lanes (1 ≤ CX < 16), clobbering R9.
#define TAILMASK \
	MOVL $1, R9; \
	SHLL CX, R9; \
	DECL R9; \
	KMOVW R9, K1

// func expAVX512(dst, x *float32, n int)
TEXT ·expAVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	EXPCONSTS

exp_loop:
	CMPQ CX, $16
	JLT  exp_tail
	VMOVUPS (SI), Z0
	EXP(Z0, Z1, Z2, Z3)
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  exp_loop

exp_tail:
	TESTQ CX, CX
	JEQ   exp_done
	TAILMASK
	VMOVUPS.Z (SI), K1, Z0
	EXP(Z0, Z1, Z2, Z3)
	VMOVUPS Z0, K1, (DI)

exp_done:
	VZEROUPPER
	RET

// func expSubSumAVX512(x *float32, n int, m float32) float32
TEXT ·expSubSumAVX512(SB), NOSPLIT, $0-28
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS m+16(FP), Z19
	EXPCONSTS
	VPXORD Z4, Z4, Z4
	VPXORD Z8, Z8, Z8

ess_loop2:
	CMPQ CX, $32
	JLT  ess_loop
	VMOVUPS (SI), Z0
	VMOVUPS 64(SI), Z5
	VSUBPS  Z19, Z0, Z0
	VSUBPS  Z19, Z5, Z5
	EXP(Z0, Z1, Z2, Z3)
	EXP(Z5, Z6, Z7, Z9)
	VMOVUPS Z0, (SI)
	VMOVUPS Z5, 64(SI)
	VADDPS  Z0, Z4, Z4
	VADDPS  Z5, Z8, Z8
	ADDQ $128, SI
	SUBQ $32, CX
	JMP  ess_loop2

ess_loop:
	CMPQ CX, $16
	JLT  ess_tail
	VMOVUPS (SI), Z0
	VSUBPS  Z19, Z0, Z0
	EXP(Z0, Z1, Z2, Z3)
	VMOVUPS Z0, (SI)
	VADDPS  Z0, Z4, Z4
	ADDQ $64, SI
	SUBQ $16, CX
	JMP  ess_loop

ess_tail:
	TESTQ CX, CX
	JEQ   ess_sum
	TAILMASK
	VMOVUPS.Z (SI), K1, Z0
	VSUBPS  Z19, Z0, Z0
	EXP(Z0, Z1, Z2, Z3)
	VMOVUPS Z0, K1, (SI)
	VADDPS  Z0, Z4, K1, Z4

ess_sum:
	VADDPS Z8, Z4, Z4
	VEXTRACTF32X8 $1, Z4, Y5
	VADDPS Y5, Y4, Y4
	VEXTRACTF128 $1, Y4, X5
	VADDPS X5, X4, X4
	VPERMILPS $0x4e, X4, X5
	VADDPS X5, X4, X4
	VPERMILPS $0xb1, X4, X5
	VADDSS X5, X4, X4
	VMOVSS X4, ret+24(FP)
	VZEROUPPER
	RET

// func maxAVX512(x *float32, n int) float32 (n ≥ 1)
TEXT ·maxAVX512(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS (SI), Z4
	VMOVAPS Z4, Z5

max_loop2:
	CMPQ CX, $32
	JLT  max_loop
	VMAXPS (SI), Z4, Z4
	VMAXPS 64(SI), Z5, Z5
	ADDQ $128, SI
	SUBQ $32, CX
	JMP  max_loop2

max_loop:
	CMPQ CX, $16
	JLT  max_tail
	VMAXPS (SI), Z4, Z4
	ADDQ $64, SI
	SUBQ $16, CX
	JMP  max_loop

max_tail:
	TESTQ CX, CX
	JEQ   max_red
	TAILMASK
	VMOVAPS Z4, Z0
	VMOVUPS (SI), K1, Z0 // lanes past the tail keep the running maximum
	VMAXPS Z0, Z4, Z4

max_red:
	VMAXPS Z5, Z4, Z4
	VEXTRACTF32X8 $1, Z4, Y5
	VMAXPS Y5, Y4, Y4
	VEXTRACTF128 $1, Y4, X5
	VMAXPS X5, X4, X4
	VPERMILPS $0x4e, X4, X5
	VMAXPS X5, X4, X4
	VPERMILPS $0xb1, X4, X5
	VMAXSS X5, X4, X4
	VMOVSS X4, ret+16(FP)
	VZEROUPPER
	RET

// GELU, erf form: y = 0.5·x·(1 + erf(x/√2)), erf(z) = z·p(z²)/q(z²) on
// z clamped to [−4, 4] (Eigen's rational approximation).
#define GELUCONSTS \
	MOVL $0x3f3504f3, AX; VPBROADCASTD AX, Z14; \ // 1/√2
	MOVL $0x40800000, AX; VPBROADCASTD AX, Z15; \ // 4
	MOVL $0xc0800000, AX; VPBROADCASTD AX, Z16; \ // -4
	MOVL $0xaf95df0b, AX; VPBROADCASTD AX, Z17; \ // α13 -2.72614225801306e-10
	MOVL $0x32edffee, AX; VPBROADCASTD AX, Z18; \ // α11 2.77068142495902e-08
	MOVL $0xb60cff51, AX; VPBROADCASTD AX, Z19; \ // α9 -2.10102402082508e-06
	MOVL $0xb86ec2d2, AX; VPBROADCASTD AX, Z20; \ // α7 -5.69250639462346e-05
	MOVL $0xba40ac63, AX; VPBROADCASTD AX, Z21; \ // α5 -7.34990630326855e-04
	MOVL $0xbb41a1f6, AX; VPBROADCASTD AX, Z22; \ // α3 -2.95459980854025e-03
	MOVL $0xbc83dbd4, AX; VPBROADCASTD AX, Z23; \ // α1 -1.60960333262415e-02
	MOVL $0xb77460cd, AX; VPBROADCASTD AX, Z24; \ // β8 -1.45660718464996e-05
	MOVL $0xb95fbd29, AX; VPBROADCASTD AX, Z25; \ // β6 -2.13374055278905e-04
	MOVL $0xbadc924e, AX; VPBROADCASTD AX, Z26; \ // β4 -1.68282697438203e-03
	MOVL $0xbbf19bf8, AX; VPBROADCASTD AX, Z27; \ // β2 -7.37332916720468e-03
	MOVL $0xbc69b6a7, AX; VPBROADCASTD AX, Z28; \ // β0 -1.42647390514189e-02
	MOVL $0x3f000000, AX; VPBROADCASTD AX, Z29; \ // 0.5
	MOVL $0x3f800000, AX; VPBROADCASTD AX, Z30    // 1

// GELU(x → y, z, z2, p, q)
#define GELU(x, y, z, z2, p, q) \
	VMULPS Z14, x, z; \
	VMINPS z, Z15, z; \
	VMAXPS z, Z16, z; \
	VMULPS z, z, z2; \
	VMOVAPS Z17, p; \
	VFMADD213PS Z18, z2, p; \
	VFMADD213PS Z19, z2, p; \
	VFMADD213PS Z20, z2, p; \
	VFMADD213PS Z21, z2, p; \
	VFMADD213PS Z22, z2, p; \
	VFMADD213PS Z23, z2, p; \
	VMULPS z, p, p; \
	VMOVAPS Z24, q; \
	VFMADD213PS Z25, z2, q; \
	VFMADD213PS Z26, z2, q; \
	VFMADD213PS Z27, z2, q; \
	VFMADD213PS Z28, z2, q; \
	VDIVPS q, p, p; \
	VADDPS Z30, p, p; \
	VMULPS Z29, x, y; \
	VMULPS p, y, y

// func geluErfAVX512(dst, x *float32, n int)
TEXT ·geluErfAVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	GELUCONSTS

gelu_loop2:
	CMPQ CX, $32
	JLT  gelu_loop
	VMOVUPS (SI), Z0
	VMOVUPS 64(SI), Z6
	GELU(Z0, Z1, Z2, Z3, Z4, Z5)
	GELU(Z6, Z7, Z8, Z9, Z10, Z11)
	VMOVUPS Z1, (DI)
	VMOVUPS Z7, 64(DI)
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $32, CX
	JMP  gelu_loop2

gelu_loop:
	CMPQ CX, $16
	JLT  gelu_tail
	VMOVUPS (SI), Z0
	GELU(Z0, Z1, Z2, Z3, Z4, Z5)
	VMOVUPS Z1, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  gelu_loop

gelu_tail:
	TESTQ CX, CX
	JEQ   gelu_done
	TAILMASK
	VMOVUPS.Z (SI), K1, Z0
	GELU(Z0, Z1, Z2, Z3, Z4, Z5)
	VMOVUPS Z1, K1, (DI)

gelu_done:
	VZEROUPPER
	RET

// GELU, tanh form: y = x/(1 + e^(−2u)), u = √(2/π)·(x + 0.044715·x³).
// Z18 = 0.044715, Z19 = −2·√(2/π).
#define GELUT(x, y, n, q, r2) \
	VMULPS x, x, y; \
	VMULPS Z18, y, y; \
	VFMADD213PS x, x, y; \
	VMULPS Z19, y, y; \
	EXP(y, n, q, r2); \
	VADDPS Z29, y, y; \
	VDIVPS y, x, y

// func geluTanhAVX512(dst, x *float32, n int)
TEXT ·geluTanhAVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	EXPCONSTS
	MOVL $0x3d372713, AX; VPBROADCASTD AX, Z18 // 0.044715
	MOVL $0xbfcc422a, AX; VPBROADCASTD AX, Z19 // -1.5957691216

gelut_loop:
	CMPQ CX, $16
	JLT  gelut_tail
	VMOVUPS (SI), Z0
	GELUT(Z0, Z1, Z2, Z3, Z4)
	VMOVUPS Z1, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  gelut_loop

gelut_tail:
	TESTQ CX, CX
	JEQ   gelut_done
	TAILMASK
	VMOVUPS.Z (SI), K1, Z0
	GELUT(Z0, Z1, Z2, Z3, Z4)
	VMOVUPS Z1, K1, (DI)

gelut_done:
	VZEROUPPER
	RET
