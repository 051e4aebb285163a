//go:build !purego

#include "textflag.h"

// func im2colAVX512(dst, x *float32, base *int32, masks *uint32, tapOff *int32, kc, khw, t, ciOff, hw int, affine bool)
//
// Packs kc rows of one 32-pixel panel of Im2Col: row p is tap t =
// (t0+p) mod khw of channel ciOff/hw (advancing with p); pixel j reads
// x[ciOff + tapOff[t] + base[j]] where bit j of masks[t] is set, else 0.
// Two masked gathers a row, or two masked loads when the panel is affine
// (base[j] = base[0] + j: stride 1 with OW = W); masked lanes are neither
// read nor faulted on.
TEXT ·im2colAVX512(SB), NOSPLIT, $0-81
	MOVQ    dst+0(FP), DI
	MOVQ    x+8(FP), SI
	MOVQ    base+16(FP), AX
	VMOVDQU32 (AX), Z30
	VMOVDQU32 64(AX), Z31
	MOVQ    masks+24(FP), R8
	MOVQ    tapOff+32(FP), R9
	MOVQ    kc+40(FP), CX
	MOVQ    khw+48(FP), R10
	MOVQ    t+56(FP), R12
	MOVQ    ciOff+64(FP), R13
	MOVQ    hw+72(FP), R14
	TESTQ   CX, CX
	JEQ     done
	MOVBLZX affine+80(FP), DX
	TESTQ   DX, DX
	JNZ     affine

row:
	MOVL    (R8)(R12*4), BX
	KMOVW   BX, K1
	SHRL    $16, BX
	KMOVW   BX, K2
	MOVLQSX (R9)(R12*4), AX
	ADDQ    R13, AX
	LEAQ    (SI)(AX*4), R11
	VPXORD  Z0, Z0, Z0
	VPXORD  Z1, Z1, Z1
	VGATHERDPS (R11)(Z30*4), K1, Z0
	VGATHERDPS (R11)(Z31*4), K2, Z1
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	ADDQ    $128, DI
	INCQ    R12
	CMPQ    R12, R10
	JLT     next
	XORQ    R12, R12
	ADDQ    R14, R13

next:
	DECQ CX
	JNZ  row

	JMP  done

// base[0] is added to the row's offset; the 32 pixels are contiguous.
affine:
	MOVLQSX (AX), DX

arow:
	MOVL      (R8)(R12*4), BX
	KMOVW     BX, K1
	SHRL      $16, BX
	KMOVW     BX, K2
	MOVLQSX   (R9)(R12*4), AX
	ADDQ      R13, AX
	ADDQ      DX, AX
	LEAQ      (SI)(AX*4), R11
	VMOVUPS.Z (R11), K1, Z0
	VMOVUPS.Z 64(R11), K2, Z1
	VMOVUPS   Z0, (DI)
	VMOVUPS   Z1, 64(DI)
	ADDQ      $128, DI
	INCQ      R12
	CMPQ      R12, R10
	JLT       anext
	XORQ      R12, R12
	ADDQ      R14, R13

anext:
	DECQ CX
	JNZ  arow

done:
	VZEROUPPER
	RET

// func im2col8AVX512(dst, x *float32, base *int32, masks *uint32, tapOff *int32, kc, khw, t, ciOff, hw int, affine bool)
//
// im2colAVX512 for 8-pixel panels (the 32×8 kernel): one masked 8-lane
// gather (or load, when affine) a row.
TEXT ·im2col8AVX512(SB), NOSPLIT, $0-81
	MOVQ    dst+0(FP), DI
	MOVQ    x+8(FP), SI
	MOVQ    base+16(FP), AX
	VMOVDQU32 (AX), Y30
	MOVQ    masks+24(FP), R8
	MOVQ    tapOff+32(FP), R9
	MOVQ    kc+40(FP), CX
	MOVQ    khw+48(FP), R10
	MOVQ    t+56(FP), R12
	MOVQ    ciOff+64(FP), R13
	MOVQ    hw+72(FP), R14
	TESTQ   CX, CX
	JEQ     done8
	MOVBLZX affine+80(FP), DX
	TESTQ   DX, DX
	JNZ     affine8

row8:
	MOVL    (R8)(R12*4), BX
	KMOVW   BX, K1
	MOVLQSX (R9)(R12*4), AX
	ADDQ    R13, AX
	LEAQ    (SI)(AX*4), R11
	VPXORD  Y0, Y0, Y0
	VGATHERDPS (R11)(Y30*4), K1, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, DI
	INCQ    R12
	CMPQ    R12, R10
	JLT     next8
	XORQ    R12, R12
	ADDQ    R14, R13

next8:
	DECQ CX
	JNZ  row8
	JMP  done8

affine8:
	MOVLQSX (AX), DX

arow8:
	MOVL      (R8)(R12*4), BX
	KMOVW     BX, K1
	MOVLQSX   (R9)(R12*4), AX
	ADDQ      R13, AX
	ADDQ      DX, AX
	LEAQ      (SI)(AX*4), R11
	VMOVUPS.Z (R11), K1, Y0
	VMOVUPS   Y0, (DI)
	ADDQ      $32, DI
	INCQ      R12
	CMPQ      R12, R10
	JLT       anext8
	XORQ      R12, R12
	ADDQ      R14, R13

anext8:
	DECQ CX
	JNZ  arow8

done8:
	VZEROUPPER
	RET
