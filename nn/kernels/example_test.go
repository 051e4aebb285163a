package kernels_test

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"github.com/aiaas/aiaas/nn/kernels"
)

// Register the kernels once; every blas32 call after that runs them.
func ExampleImplementation() {
	blas32.Use(kernels.Implementation())

	x := blas32.General{Rows: 1, Cols: 3, Stride: 3, Data: []float32{1, 2, 3}}
	w := blas32.General{Rows: 3, Cols: 2, Stride: 2, Data: []float32{1, 0, 0, 1, 1, 1}}
	y := blas32.General{Rows: 1, Cols: 2, Stride: 2, Data: []float32{0.5, -0.5}} // the bias
	blas32.Gemm(blas.NoTrans, blas.NoTrans, 1, x, w, 1, y)                       // y = x·W + bias
	fmt.Println(y.Data)
	// Output: [4.5 4.5]
}

// Pack a layer's weights once, then run it with bias and ReLU fused.
func ExampleDense() {
	w := []float32{1, 0, 0, 1, 1, -1} // 3×2, row-major: y = x·W + b
	b := []float32{0.5, -0.5}
	p := kernels.Pack(w, 3, 2, b) // once, when the model is loaded

	x := []float32{1, 2, 3, -1, -2, -3} // two rows
	y := make([]float32, 2*2)
	kernels.Dense(y, x, 2, p, kernels.ReLU)
	fmt.Println(y)
	// Output: [4.5 0 0 0.5]
}
