package graph

import (
	"context"
	"math/rand/v2"
	"testing"
)

func benchOp(b *testing.B, opset int, op string, attrs map[string]Attr, ins []*Tensor, consts []bool, elems int) {
	m, feed := loadOp(b, opset, op, attrs, ins, consts, Float32)
	out := run1(b, m, feed)
	b.SetBytes(int64(4 * elems))
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.Run(context.Background(), feed, out); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOps(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	const n = 1 << 20
	x, y := randTensor(r, 256, 4096), randTensor(r, 256, 4096)
	bias := randTensor(r, 4096)
	b.Run("Add", func(b *testing.B) { benchOp(b, 14, "Add", nil, []*Tensor{x, y}, nil, n) })
	b.Run("AddBias", func(b *testing.B) { benchOp(b, 14, "Add", nil, []*Tensor{x, bias}, nil, n) })
	b.Run("Mul", func(b *testing.B) { benchOp(b, 14, "Mul", nil, []*Tensor{x, y}, nil, n) })
	b.Run("Relu", func(b *testing.B) { benchOp(b, 14, "Relu", nil, []*Tensor{x}, nil, n) })
	b.Run("Sigmoid", func(b *testing.B) { benchOp(b, 13, "Sigmoid", nil, []*Tensor{x}, nil, n) })
	b.Run("Tanh", func(b *testing.B) { benchOp(b, 13, "Tanh", nil, []*Tensor{x}, nil, n) })
	b.Run("Exp", func(b *testing.B) { benchOp(b, 13, "Exp", nil, []*Tensor{x}, nil, n) })
	b.Run("Softmax", func(b *testing.B) { benchOp(b, 13, "Softmax", nil, []*Tensor{x}, nil, n) })
	b.Run("SoftmaxAxis0", func(b *testing.B) {
		benchOp(b, 13, "Softmax", map[string]Attr{"axis": intAttr(0)}, []*Tensor{x}, nil, n)
	})
	b.Run("ReduceMeanLast", func(b *testing.B) {
		benchOp(b, 13, "ReduceMean", map[string]Attr{"axes": ints(-1)}, []*Tensor{x}, nil, n)
	})
	w := randTensor(r, 512, 512)
	a := randTensor(r, 64, 512)
	b.Run("MatMulConstB", func(b *testing.B) { benchOp(b, 13, "MatMul", nil, []*Tensor{a, w}, []bool{false, true}, 64*512*512/4) })
	b.Run("MatMulInputB", func(b *testing.B) { benchOp(b, 13, "MatMul", nil, []*Tensor{a, w}, nil, 64*512*512/4) })
	b.Run("GemmConstBT", func(b *testing.B) {
		benchOp(b, 13, "Gemm", map[string]Attr{"transB": intAttr(1)}, []*Tensor{a, w, randTensor(r, 512)}, []bool{false, true, true}, 64*512*512/4)
	})
}
