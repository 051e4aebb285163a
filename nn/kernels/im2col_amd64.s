//go:build !purego

#include "textflag.h"

// func im2colAVX512(dst, x *float32, base *int32, masks *uint32, tapOff *int32, kc, khw, t, ciOff, hw, mode int, smasks *uint64)
//
// Packs kc rows of one 32-pixel panel of Im2Col: row p is tap t =
// (t0+p) mod khw of channel ciOff/hw (advancing with p); pixel j reads
// x[ciOff + tapOff[t] + base[j]] where bit j of masks[t] is set, else 0.
// Mode 0: two masked gathers a row. Mode 1 (base[j] = base[0] + j: stride
// 1 with OW = W): two masked loads. Mode 2 (base[j] = base[0] + 2j: stride
// 2, the panel inside one output row): four masked loads of the 64 values
// the row spans, masked by smasks[t] (bit 2j for pixel j), and the even
// ones gathered by two VPERMT2PS. Masked lanes are neither read nor
// faulted on.
TEXT ·im2colAVX512(SB), NOSPLIT, $0-96
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
	MOVQ    mode+80(FP), DX
	CMPQ    DX, $1
	JEQ     affine
	CMPQ    DX, $2
	JEQ     affine2

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
	JMP  done

affine2:
	MOVLQSX (AX), DX
	MOVQ    smasks+88(FP), R8
	VMOVUPS ·dwEven(SB), Z28

a2row:
	MOVQ      (R8)(R12*8), BX
	KMOVW     BX, K1
	SHRQ      $16, BX
	KMOVW     BX, K2
	SHRQ      $16, BX
	KMOVW     BX, K3
	SHRQ      $16, BX
	KMOVW     BX, K4
	MOVLQSX   (R9)(R12*4), AX
	ADDQ      R13, AX
	ADDQ      DX, AX
	LEAQ      (SI)(AX*4), R11
	VMOVUPS.Z (R11), K1, Z0
	VMOVUPS.Z 64(R11), K2, Z1
	VMOVUPS.Z 128(R11), K3, Z2
	VMOVUPS.Z 192(R11), K4, Z3
	VPERMT2PS Z1, Z28, Z0
	VPERMT2PS Z3, Z28, Z2
	VMOVUPS   Z0, (DI)
	VMOVUPS   Z2, 64(DI)
	ADDQ      $128, DI
	INCQ      R12
	CMPQ      R12, R10
	JLT       a2next
	XORQ      R12, R12
	ADDQ      R14, R13

a2next:
	DECQ CX
	JNZ  a2row

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
