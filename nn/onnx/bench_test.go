package onnx

import (
	"bytes"
	"io"
	"testing"

	"github.com/aiaas/aiaas/nn"
)

// The MNIST model (118 282 parameters): what a tenant upload or a bench/
// export costs.
func mnistONNX(b *testing.B) (*nn.Model, []byte) {
	m, err := nn.New(nn.MLP("mnist", 784, []int{128, 128}, nn.ActReLU, 10, nn.ActSoftmax), 1)
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Export(&buf, m); err != nil {
		b.Fatal(err)
	}
	return m, buf.Bytes()
}

func BenchmarkExport(b *testing.B) {
	m, data := mnistONNX(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Export(io.Discard, m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkImport(b *testing.B) {
	_, data := mnistONNX(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Import(data, nil); err != nil {
			b.Fatal(err)
		}
	}
}
