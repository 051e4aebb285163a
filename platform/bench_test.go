package platform_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkServeInfer measures the whole handler (auth, quota, decode,
// forward, encode, audit, metrics) for a 1×784 request, without the network.
func BenchmarkServeInfer(b *testing.B) {
	t := &testing.T{}
	e := newEnv(t, nil)
	r := e.do("POST", "/v1/tenants", adminKey, map[string]string{"name": "bench"})
	var tr map[string]any
	json.Unmarshal(r.body, &tr)
	key := tr["api_key"].(string)
	if r := e.do("POST", "/v1/models/digits/versions", key, artifactOf(t, mnistSpec(), 1)); r.status != 201 {
		b.Fatalf("publish: %d %s", r.status, r.body)
	}
	x := make([]float32, 784)
	for i := range x {
		x[i] = float32(i%255) / 255
	}
	jsonBody, _ := json.Marshal(map[string]any{"inputs": []map[string]any{{"name": "input", "shape": []int{1, 784}, "datatype": "FP32", "data": x}}})
	hdr := `{"inputs":[{"name":"input","shape":[1,784],"datatype":"FP32","parameters":{"binary_data_size":3136}}],"outputs":[{"name":"probabilities","parameters":{"binary_data":true}}]}`
	bin := []byte(hdr)
	for _, v := range x {
		bin = binary.LittleEndian.AppendUint32(bin, math.Float32bits(v))
	}
	for _, tc := range []struct {
		name string
		body []byte
		hl   string
	}{{"json", jsonBody, ""}, {"binary", bin, fmt.Sprint(len(hdr))}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				req := httptest.NewRequest("POST", "/v2/models/digits/infer", bytes.NewReader(tc.body))
				req.Header.Set("Authorization", "Bearer "+key)
				if tc.hl != "" {
					req.Header.Set("Inference-Header-Content-Length", tc.hl)
				}
				w := httptest.NewRecorder()
				e.srv.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}
