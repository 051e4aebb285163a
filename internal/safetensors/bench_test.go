package safetensors

import "testing"

// BenchmarkDecodeFloat32s measures what loading the first MNIST dense layer
// costs: parse the header, then copy a 784x128 F32 weight matrix out.
func BenchmarkDecodeFloat32s(b *testing.B) {
	w := make([]float32, 784*128)
	for i := range w {
		w[i] = float32(i) * 1e-3
	}
	file := Encode(&File{
		Metadata: map[string]string{"format": "aiaas"},
		Tensors:  []Tensor{F32("dense.weight", []int{784, 128}, w), F32("dense.bias", []int{128}, w[:128])},
	})
	dst := make([]float32, 0, len(w))
	b.SetBytes(int64(len(w) * 4))
	b.ReportAllocs()
	for b.Loop() {
		f, err := Decode(file, nil)
		if err != nil {
			b.Fatal(err)
		}
		t, _ := f.Tensor("dense.weight")
		if dst, err = t.Float32s(dst[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeF32 measures writing a 1x784 input tensor, what a plugin
// boundary does per request.
func BenchmarkEncodeF32(b *testing.B) {
	v := make([]float32, 784)
	b.ReportAllocs()
	for b.Loop() {
		_ = Encode(&File{Tensors: []Tensor{F32("input", []int{1, 784}, v)}})
	}
}

// BenchmarkDecodeSmall measures the header parse alone, what the plugin
// boundary pays per call for a 1x784 tensor.
func BenchmarkDecodeSmall(b *testing.B) {
	file := Encode(&File{Tensors: []Tensor{F32("input", []int{1, 784}, make([]float32, 784))}})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(file, nil); err != nil {
			b.Fatal(err)
		}
	}
}
