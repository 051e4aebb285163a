package client

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkInfer compares the JSON and binary encodings of an MNIST-sized
// input (784 floats per row) end to end against a loopback server that
// doubles its input, so the figure includes the server's decoding too.
func BenchmarkInfer(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := make([]byte, 0, r.ContentLength)
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Body.Read(buf)
			body = append(body, buf[:n]...)
			if err != nil {
				break
			}
		}
		doubleHandler(w, r, body)
	}))
	defer srv.Close()
	c := newClient(b, srv.URL, nil)
	for _, batch := range []int{1, 64} {
		data := make([]float32, batch*784)
		for i := range data {
			data[i] = float32(i%255) / 255
		}
		req := &InferRequest{Inputs: []InferInput{{Name: "input", Datatype: "FP32", Shape: []int64{int64(batch), 784}, Data: data}}}
		for _, mode := range []string{"json", "binary"} {
			b.Run(fmt.Sprintf("%s/batch=%d", mode, batch), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					var resp *InferResponse
					var err error
					if mode == "json" {
						resp, err = c.Infer(context.Background(), "double", "", req)
					} else {
						resp, err = c.InferBinary(context.Background(), "double", "", req)
					}
					if err != nil {
						b.Fatal(err)
					}
					if out, err := resp.Outputs[0].Float32s(); err != nil || len(out) != len(data) {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkEncodeBinaryRequest is the client-side cost of InferBinary's
// encoding alone.
func BenchmarkEncodeBinaryRequest(b *testing.B) {
	data := make([]float32, 64*784)
	req := &InferRequest{Inputs: []InferInput{{Name: "input", Datatype: "FP32", Shape: []int64{64, 784}, Data: data}}}
	b.ReportAllocs()
	b.SetBytes(int64(4 * len(data)))
	for b.Loop() {
		if _, _, err := encodeBinaryRequest(req); err != nil {
			b.Fatal(err)
		}
	}
}
