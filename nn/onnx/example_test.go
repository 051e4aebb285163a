package onnx_test

import (
	"bytes"
	"fmt"

	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/nn/onnx"
)

func Example() {
	m, err := nn.New(nn.MLP("iris", 4, []int{8}, nn.ActReLU, 3, nn.ActSoftmax), 1)
	if err != nil {
		panic(err)
	}
	var buf bytes.Buffer
	if err := onnx.Export(&buf, m); err != nil {
		panic(err)
	}
	m2, err := onnx.Import(buf.Bytes(), nil)
	if err != nil {
		panic(err)
	}
	x := []float32{5.1, 3.5, 1.4, 0.2}
	a, _ := m.Forward(nil, x, 1)
	b, _ := m2.Forward(nil, x, 1)
	for _, l := range m2.Spec().Layers {
		fmt.Print(l.Type, " ", l.Units, " ", l.Activation, "; ")
	}
	fmt.Println(a[0] == b[0])
	// Output: dense 8 relu; dense 3 softmax; true
}
