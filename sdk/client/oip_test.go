package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"testing"
)

// doubleHandler is a small OIP v2 server for a model that returns its FP32
// input times two, in JSON or with the binary tensor extension as the
// request asks. It is written from the spec, independently of the client.
func doubleHandler(w http.ResponseWriter, r *http.Request, body []byte) {
	hl := len(body)
	if h := r.Header.Get("Inference-Header-Content-Length"); h != "" {
		var err error
		if hl, err = strconv.Atoi(h); err != nil || hl > len(body) {
			writeJSON(w, 400, `{"error":"bad header length"}`)
			return
		}
	}
	var req struct {
		Parameters map[string]any `json:"parameters"`
		Inputs     []struct {
			Name       string         `json:"name"`
			Shape      []int64        `json:"shape"`
			Datatype   string         `json:"datatype"`
			Parameters map[string]any `json:"parameters"`
			Data       []float32      `json:"data"`
		} `json:"inputs"`
		Outputs []struct {
			Name       string         `json:"name"`
			Parameters map[string]any `json:"parameters"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(body[:hl], &req); err != nil || len(req.Inputs) != 1 || req.Inputs[0].Datatype != "FP32" {
		writeJSON(w, 400, `{"error":"bad request"}`)
		return
	}
	in := req.Inputs[0]
	data := in.Data
	if sz, ok := in.Parameters["binary_data_size"].(float64); ok {
		raw := body[hl:]
		if int(sz) != len(raw) || len(raw)%4 != 0 {
			writeJSON(w, 400, `{"error":"binary size"}`)
			return
		}
		data = make([]float32, len(raw)/4)
		for i := range data {
			data[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	}
	out := make([]float32, len(data))
	for i, v := range data {
		out[i] = 2 * v
	}
	binOut := req.Parameters["binary_data_output"] == true
	for _, o := range req.Outputs {
		if o.Parameters["binary_data"] == true {
			binOut = true
		}
	}
	resp := map[string]any{"model_name": "double", "model_version": "3", "parameters": map[string]any{"model_version": "3", "model_sha256": "abc"}}
	o := map[string]any{"name": "output", "datatype": "FP32", "shape": in.Shape}
	if !binOut {
		o["data"] = out
		resp["outputs"] = []any{o}
		b, _ := json.Marshal(resp)
		writeJSON(w, 200, string(b))
		return
	}
	raw := make([]byte, 4*len(out))
	for i, v := range out {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	o["parameters"] = map[string]any{"binary_data_size": len(raw)}
	resp["outputs"] = []any{o}
	hdr, _ := json.Marshal(resp)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Inference-Header-Content-Length", strconv.Itoa(len(hdr)))
	w.Write(append(hdr, raw...))
}

func TestInferJSONAndBinary(t *testing.T) {
	s := newServer(t, doubleHandler)
	c := newClient(t, s.URL, nil)
	in := []float32{0.5, -1, 3.25, float32(math.Pi), 1e-7, 0}
	for i, tc := range []struct {
		binary  bool
		outputs []InferRequestedOutput
	}{
		{false, nil}, {true, nil}, {true, []InferRequestedOutput{{Name: "output"}}},
	} {
		req := &InferRequest{Inputs: []InferInput{{Name: "input", Datatype: "FP32", Shape: []int64{2, 3}, Data: in}}, Outputs: tc.outputs}
		var resp *InferResponse
		var err error
		if tc.binary {
			resp, err = c.InferBinary(context.Background(), "double", "prod", req)
		} else {
			resp, err = c.Infer(context.Background(), "double", "prod", req)
		}
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		r := s.last()
		if r.path != "/v2/models/double/versions/prod/infer" {
			t.Fatalf("case %d: path %s", i, r.path)
		}
		if tc.binary != (r.header.Get(HeaderContentLength) != "") {
			t.Fatalf("case %d: header %q", i, r.header.Get(HeaderContentLength))
		}
		if tc.binary && len(req.Inputs[0].Parameters) != 0 {
			t.Fatalf("case %d: InferBinary changed the caller's request", i)
		}
		out := resp.Output("output")
		if out == nil || (out.Raw != nil) != tc.binary {
			t.Fatalf("case %d: output %+v", i, out)
		}
		got, err := out.Float32s()
		if err != nil || len(got) != len(in) {
			t.Fatalf("case %d: %v %v", i, got, err)
		}
		for j := range in {
			if got[j] != 2*in[j] {
				t.Fatalf("case %d: element %d = %v, want %v", i, j, got[j], 2*in[j])
			}
		}
		if v, sha := resp.Lineage(); v != "3" || sha != "abc" {
			t.Fatalf("case %d: lineage %q %q", i, v, sha)
		}
	}
}

func TestFloat32sNested(t *testing.T) {
	for i, tc := range []struct {
		data string
		want []float32
		ok   bool
	}{
		{`[1,2,3]`, []float32{1, 2, 3}, true},
		{`[[1,2],[3,4]]`, []float32{1, 2, 3, 4}, true},
		{`[]`, []float32{}, true},
		{`[1,"a"]`, nil, false},
		{`{"a":1}`, nil, false},
		{``, nil, false},
		{string(bytes.Repeat([]byte("["), 100)) + string(bytes.Repeat([]byte("]"), 100)), nil, false},
	} {
		o := &InferOutput{Name: "o", Datatype: "FP32", Data: json.RawMessage(tc.data)}
		got, err := o.Float32s()
		if (err == nil) != tc.ok {
			t.Errorf("case %d: err %v", i, err)
			continue
		}
		if err != nil && !errors.Is(err, ErrInvalidResponse) {
			t.Errorf("case %d: %v is not ErrInvalidResponse", i, err)
		}
		if tc.ok && !equalF32(got, tc.want) {
			t.Errorf("case %d: got %v want %v", i, got, tc.want)
		}
	}
}

func equalF32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestDecodeInferResponse(t *testing.T) {
	hdr := `{"model_name":"m","outputs":[{"name":"a","datatype":"FP32","shape":[2],"parameters":{"binary_data_size":8}},{"name":"b","datatype":"INT64","shape":[1],"parameters":{"binary_data_size":8}},{"name":"c","datatype":"FP32","shape":[1],"data":[1.5]}]}`
	raw := make([]byte, 16)
	binary.LittleEndian.PutUint32(raw, math.Float32bits(1))
	binary.LittleEndian.PutUint32(raw[4:], math.Float32bits(-2))
	binary.LittleEndian.PutUint64(raw[8:], 42)
	body := append([]byte(hdr), raw...)
	for i, tc := range []struct {
		body []byte
		hl   int
		ok   bool
	}{
		{body, len(hdr), true},
		{body, len(hdr) + 1, false},           // header cuts into the tensors
		{body[:len(body)-1], len(hdr), false}, // short tensor data
		{append(append([]byte{}, body...), 0), len(hdr), false},
		{body, len(body) + 1, false},
		{[]byte(hdr), -1, false}, // binary sizes but no bytes
		{[]byte(`{"model_name":"m","outputs":[{"name":"a","datatype":"FP32","shape":[3],"parameters":{"binary_data_size":8}}]}` + string(raw[:8])), -1, false},
		{[]byte(`{"model_name":"m","outputs":[{"name":"a","datatype":"FP32","shape":[1],"parameters":{"binary_data_size":-4}}]}`), -1, false},
		{[]byte(`{"model_name":"m","outputs":[]}`), -1, true},
	} {
		r, err := DecodeInferResponse(tc.body, tc.hl)
		if (err == nil) != tc.ok {
			t.Errorf("case %d: err %v, want ok=%v", i, err, tc.ok)
			continue
		}
		if err != nil && !errors.Is(err, ErrInvalidResponse) {
			t.Errorf("case %d: %v is not ErrInvalidResponse", i, err)
		}
		if i == 0 {
			a, _ := r.Output("a").Float32s()
			c, _ := r.Output("c").Float32s()
			if !equalF32(a, []float32{1, -2}) || !equalF32(c, []float32{1.5}) || binary.LittleEndian.Uint64(r.Output("b").Raw) != 42 {
				t.Errorf("case %d: decoded %+v", i, r)
			}
			if _, err := r.Output("b").Float32s(); err == nil {
				t.Errorf("case %d: INT64 read as FP32", i)
			}
		}
	}
}

func FuzzDecodeInferResponse(f *testing.F) {
	f.Add([]byte(`{"model_name":"m","outputs":[{"name":"a","datatype":"FP32","shape":[1],"parameters":{"binary_data_size":4}}]}`+"\x00\x00\x80\x3f"), 112)
	f.Add([]byte(`{"model_name":"m","outputs":[{"name":"a","datatype":"FP32","shape":[2,1],"data":[[1],[2]]}]}`), -1)
	f.Add([]byte(`{"outputs":[{"parameters":{"binary_data_size":1e300}}]}`), -1)
	f.Add([]byte{}, 0)
	f.Fuzz(func(t *testing.T, body []byte, hl int) {
		r, err := DecodeInferResponse(body, hl)
		if err != nil {
			if !errors.Is(err, ErrInvalidResponse) {
				t.Fatalf("error %v is not ErrInvalidResponse", err)
			}
			return
		}
		for i := range r.Outputs {
			_, _ = r.Outputs[i].Float32s() // must not panic
		}
	})
}

func FuzzFloat32s(f *testing.F) {
	f.Add([]byte(`[[1,2],[3,4e38]]`), "FP32", false)
	f.Add([]byte("\x00\x00\x80\x3f"), "FP32", true)
	f.Add([]byte("\x00\x00\x80"), "FP32", true)
	f.Add([]byte(`[1e999]`), "FP32", false)
	f.Fuzz(func(t *testing.T, data []byte, dt string, raw bool) {
		o := &InferOutput{Name: "o", Datatype: dt}
		if raw {
			o.Raw = data
		} else {
			o.Data = data
		}
		got, err := o.Float32s()
		if err != nil && !errors.Is(err, ErrInvalidResponse) {
			t.Fatalf("error %v is not ErrInvalidResponse", err)
		}
		if raw && err == nil && len(got)*4 != len(data) {
			t.Fatalf("%d floats from %d bytes", len(got), len(data))
		}
	})
}

func FuzzAPIError(f *testing.F) {
	f.Add(404, []byte(`{"error":"not found"}`), "")
	f.Add(429, []byte(`<html>`), "99999999999999999999")
	f.Add(503, []byte(``), "Wed, 21 Oct 2015 07:28:00 GMT")
	f.Fuzz(func(t *testing.T, status int, body []byte, retryAfter string) {
		if status < 400 || status > 599 {
			return
		}
		for _, r := range retryAfter {
			if r < 0x20 || r > 0x7e {
				return // net/http would refuse to send it: not the client's input
			}
		}
		s := newServer(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
			w.Header().Set("Retry-After", retryAfter)
			w.WriteHeader(status)
			w.Write(body)
		})
		c := newClient(t, s.URL, &Options{Retry: &RetryPolicy{MaxAttempts: 1}})
		_, err := c.Models(context.Background())
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != status || ae.RetryAfter < 0 || ae.RetryAfter > 86400e9 || ae.Message == "" {
			t.Fatalf("got %#v (%v)", ae, err)
		}
	})
}

// TestConcurrentUse hammers one Client from many goroutines (run with
// -race): the client is documented as goroutine-safe.
func TestConcurrentUse(t *testing.T) {
	s := newServer(t, doubleHandler)
	c := newClient(t, s.URL, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 10 {
				in := []float32{float32(g), float32(k)}
				req := &InferRequest{Inputs: []InferInput{{Name: "input", Datatype: "FP32", Shape: []int64{1, 2}, Data: in}}}
				infer := c.Infer
				if k%2 == 1 {
					infer = c.InferBinary
				}
				resp, err := infer(context.Background(), "double", "", req)
				if err != nil {
					errs <- err
					return
				}
				got, err := resp.Outputs[0].Float32s()
				if err != nil || len(got) != 2 || got[0] != 2*in[0] || got[1] != 2*in[1] {
					errs <- fmt.Errorf("goroutine %d call %d: got %v, %v", g, k, got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
