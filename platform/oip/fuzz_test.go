package oip

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"id":"42","inputs":[{"name":"input0","shape":[2,2],"datatype":"UINT32","data":[1,2,3,4]},{"name":"input1","shape":[3],"datatype":"BOOL","data":[true,false,true]}],"outputs":[{"name":"output0"}]}`), -1)
	f.Add([]byte(`{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[[1,2.5],[-3e2,0.0039215684]]}],"parameters":{"binary_data_output":true,"n":-1.5e3}}`), -1)
	f.Add([]byte(`{"inputs":[{"name":"s","shape":[1,2],"datatype":"BYTES","data":["a\u00e9\n","\ud83d\ude00"]},{"name":"i","shape":[1],"datatype":"INT64","data":[-9223372036854775808]}]}`), -1)
	f.Add([]byte(`{"inputs":[{"name":"h","shape":[1],"datatype":"FP16","data":[65504]},{"name":"d","shape":[1],"datatype":"FP64","data":[1e30]},{"name":"u","shape":[1],"datatype":"UINT8","data":[255]}]}`), -1)
	header := `{"inputs":[{"name":"a","shape":[1,2],"datatype":"FP32","parameters":{"binary_data_size":8}},{"name":"s","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":5}}],"outputs":[{"name":"o","parameters":{"binary_data":true}}]}`
	body := append([]byte(header), le32(1.5, -2)...)
	body = append(body, 1, 0, 0, 0, 'z')
	f.Add(body, len(header))
	// Wrong header lengths, as a client that counts characters rather
	// than bytes (or a proxy that re-encodes) would send them.
	f.Add(body, len(header)-9)
	f.Add(body, len(header)+4)
	f.Add(body, len(body)+1)
	f.Add([]byte(`{"inputs":[{"name":"x","shape":[0],"datatype":"INT8","data":[]}]}`), -1)
	f.Add([]byte(`{"inputs":[{"name":"x","shape":[],"datatype":"FP32","data":[7]}],"x":[[{}]]}`), -1)
	lim := &Limits{MaxElements: 1 << 12, MaxInputs: 8, MaxBodyBytes: 1 << 16}
	f.Fuzz(func(t *testing.T, body []byte, headerLen int) {
		req, err := DecodeRequest(body, headerLen, lim)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error does not wrap ErrBadRequest: %v", err)
			}
			return
		}
		if headerLen >= 0 {
			// An accepted header length agrees with where the JSON ends.
			if err := headerLenErr(body, headerLen); err != nil {
				t.Fatalf("accepted, yet %v", err)
			}
		}
		for _, in := range req.Inputs {
			n := int64(1)
			for _, d := range in.Shape {
				n *= d
			}
			if got := int64(len(in.F32) + len(in.Bytes)); got != n {
				t.Fatalf("input %q: %d elements for shape %v", in.Name, got, in.Shape)
			}
		}
		// Accepted requests re-encode to a body that decodes to the same
		// request.
		b2, hl2 := appendRequest(req)
		req2, err := DecodeRequest(b2, hl2, nil)
		if err != nil {
			t.Fatalf("re-decode: %v\n%q", err, b2)
		}
		sameRequest(t, req, req2)
	})
}

func sameRequest(t *testing.T, a, b *InferenceRequest) {
	t.Helper()
	if a.ID != b.ID || a.BinaryOutput != b.BinaryOutput || !sameParams(a.Parameters, b.Parameters) ||
		len(a.Inputs) != len(b.Inputs) || len(a.Outputs) != len(b.Outputs) {
		t.Fatalf("requests differ:\n%+v\n%+v", a, b)
	}
	for i := range a.Inputs {
		x, y := a.Inputs[i], b.Inputs[i]
		if x.Name != y.Name || x.Datatype != y.Datatype || !reflect.DeepEqual(x.Shape, y.Shape) ||
			x.Binary != y.Binary || !sameParams(x.Parameters, y.Parameters) || len(x.F32) != len(y.F32) || len(x.Bytes) != len(y.Bytes) {
			t.Fatalf("input %d differs:\n%+v\n%+v", i, x, y)
		}
		for j := range x.F32 {
			if x.F32[j] != y.F32[j] {
				t.Fatalf("input %q element %d: %v != %v", x.Name, j, x.F32[j], y.F32[j])
			}
		}
		for j := range x.Bytes {
			if !bytes.Equal(x.Bytes[j], y.Bytes[j]) {
				t.Fatalf("input %q element %d: %q != %q", x.Name, j, x.Bytes[j], y.Bytes[j])
			}
		}
	}
	for i := range a.Outputs {
		x, y := a.Outputs[i], b.Outputs[i]
		if x.Name != y.Name || x.Binary != y.Binary || !sameParams(x.Parameters, y.Parameters) {
			t.Fatalf("output %d differs: %+v %+v", i, x, y)
		}
	}
}

func sameParams(a, b map[string]any) bool {
	return len(a) == len(b) && (len(a) == 0 || reflect.DeepEqual(a, b))
}
