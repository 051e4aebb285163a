package oip

import (
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"testing"
)

// mnistRequest is a 1x784 FP32 request whose values look like a real MNIST
// image scaled by 1/255: mostly zeros, some pixels with up to 8 digits.
func mnistRequest() []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	b := []byte(`{"id":"bench","inputs":[{"name":"input","shape":[1,784],"datatype":"FP32","data":[`)
	for i := range 784 {
		if i > 0 {
			b = append(b, ',')
		}
		v := float32(0)
		if rng.IntN(5) == 0 {
			v = float32(rng.IntN(256)) / 255
		}
		b = strconv.AppendFloat(b, float64(v), 'g', -1, 32)
	}
	return append(b, `]}],"outputs":[{"name":"probabilities"}]}`...)
}

func BenchmarkDecodeRequest(b *testing.B) {
	body := mnistRequest()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeRequest(body, -1, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeRequestBinary is the same tensor through the binary
// extension.
func BenchmarkDecodeRequestBinary(b *testing.B) {
	header := `{"id":"bench","inputs":[{"name":"input","shape":[1,784],"datatype":"FP32","parameters":{"binary_data_size":3136}}]}`
	body := append([]byte(header), make([]byte, 3136)...)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeRequest(body, len(header), nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeRequestEncodingJSON is the baseline the tokenizer
// replaced: encoding/json into a struct with []float64 data, then a copy to
// float32, with neither range nor shape checks.
func BenchmarkDecodeRequestEncodingJSON(b *testing.B) {
	body := mnistRequest()
	type input struct {
		Name     string    `json:"name"`
		Shape    []int64   `json:"shape"`
		Datatype string    `json:"datatype"`
		Data     []float64 `json:"data"`
	}
	var req struct {
		ID      string  `json:"id"`
		Inputs  []input `json:"inputs"`
		Outputs []struct {
			Name string `json:"name"`
		} `json:"outputs"`
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		req.Inputs = nil
		if err := json.Unmarshal(body, &req); err != nil {
			b.Fatal(err)
		}
		f := make([]float32, len(req.Inputs[0].Data))
		for i, v := range req.Inputs[0].Data {
			f[i] = float32(v)
		}
	}
}

func BenchmarkAppendResponse(b *testing.B) {
	r := &InferenceResponse{ModelName: "mnist", ModelVersion: "1", ID: "bench", Outputs: []ResponseOutput{{
		Name: "probabilities", Shape: []int64{1, 10}, Datatype: FP32,
		F32: []float32{1.2e-5, 3.4e-7, 0.0012, 0.98123, 2.2e-9, 0.0001, 0.017, 1e-6, 0.000025, 3.3e-8},
	}}}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendResponse(buf[:0], r)
	}
}
