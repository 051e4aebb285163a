package platform_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/aiaas/aiaas/nn"
)

// tritonBody builds an inference request as tritonclient.http does:
// rapidjson's compact JSON of the inputs (binary, with binary_data_size)
// and the requested outputs (parameters in the client's insertion order,
// classification before binary_data), then the raw tensors; it returns the
// body and the Inference-Header-Content-Length value.
func tritonBody(rows int, outParams string) ([]byte, string) {
	x := make([]byte, 0, rows*16)
	for i := 0; i < rows*4; i++ {
		x = binary.LittleEndian.AppendUint32(x, math.Float32bits(float32(i%7)/7))
	}
	hdr := fmt.Sprintf(`{"inputs":[{"name":"input","shape":[%d,4],"datatype":"FP32","parameters":{"binary_data_size":%d}}],"outputs":[{"name":"probabilities","parameters":%s}]}`, rows, len(x), outParams)
	return append([]byte(hdr), x...), strconv.Itoa(len(hdr))
}

// classes parses "value:index[:label]" strings.
type class struct {
	value float64
	index int
	label string
}

func parseClasses(t *testing.T, strs []string) []class {
	t.Helper()
	var out []class
	for _, s := range strs {
		f := strings.SplitN(s, ":", 3)
		if len(f) < 2 {
			t.Fatalf("classification %q is not value:index[:label]", s)
		}
		v, err1 := strconv.ParseFloat(f[0], 64)
		i, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil || !strings.Contains(f[0], ".") || len(f[0])-strings.Index(f[0], ".") != 7 {
			t.Fatalf("classification %q: want Triton's %%f value and an integer index", s)
		}
		c := class{value: v, index: i}
		if len(f) == 3 {
			c.label = f[2]
		}
		out = append(out, c)
	}
	return out
}

// TestClassificationExtension: an output requested with Triton's
// "classification" parameter (tritonclient's class_count) comes back as
// BYTES [batch, k] of "value:index[:label]", highest first, in JSON and
// binary mode, agreeing with the plain output's probabilities; labels come
// from the artifact; bad counts and shapes are 400.
func TestClassificationExtension(t *testing.T) {
	e := newEnv(t, nil)
	key := e.tenant("acme")
	e.publish(key, "clf", 1)
	spec := nn.Spec{
		Inputs:  []nn.TensorSpec{{Name: "input", Datatype: "FP32", Shape: []int64{-1, 4}}},
		Outputs: []nn.TensorSpec{{Name: "probabilities", Datatype: "FP32", Shape: []int64{-1, 3}}},
		Layers:  []nn.Layer{{Type: "dense", Units: 8, Activation: "relu"}, {Type: "dense", Units: 3, Activation: "softmax"}},
	}
	m, err := nn.New(spec, 1)
	if err != nil {
		t.Fatal(err)
	}
	var art bytes.Buffer
	if err := m.WriteArtifact(&art, nn.Metadata{Labels: []string{"cat", "dog", "emu"}}); err != nil {
		t.Fatal(err)
	}
	if r := e.do("POST", "/v1/models/pets/versions", key, art.Bytes(), "Content-Type", "application/octet-stream"); r.status != 201 {
		t.Fatalf("publish with labels: %d %s", r.status, r.body)
	}

	// The plain probabilities, to check the classifications against.
	const rows = 3
	body, hl := tritonBody(rows, `{"binary_data":false}`)
	r := e.do("POST", "/v2/models/clf/infer", key, body, "Inference-Header-Content-Length", hl)
	if r.status != 200 {
		t.Fatalf("plain: %d %s", r.status, r.body)
	}
	var probs []float64
	for _, v := range r.json(t)["outputs"].([]any)[0].(map[string]any)["data"].([]any) {
		probs = append(probs, v.(float64))
	}
	check := func(name string, strs []string, k int, labels []string) {
		t.Helper()
		cls := parseClasses(t, strs)
		if len(cls) != rows*k {
			t.Fatalf("%s: %d classifications, want %d", name, len(cls), rows*k)
		}
		for row := 0; row < rows; row++ {
			p := probs[row*3 : row*3+3]
			order := []int{0, 1, 2}
			sort.SliceStable(order, func(a, b int) bool { return p[order[a]] > p[order[b]] })
			for j := 0; j < k; j++ {
				c := cls[row*k+j]
				want := order[j]
				if c.index != want || math.Abs(c.value-p[want]) > 1e-6 {
					t.Errorf("%s: row %d rank %d = %+v, want index %d value %.6f", name, row, j, c, want, p[want])
				}
				if labels != nil && c.label != labels[c.index] || labels == nil && c.label != "" {
					t.Errorf("%s: row %d rank %d label %q", name, row, j, c.label)
				}
			}
		}
	}

	// JSON mode.
	body, hl = tritonBody(rows, `{"classification":2,"binary_data":false}`)
	r = e.do("POST", "/v2/models/clf/infer", key, body, "Inference-Header-Content-Length", hl)
	if r.status != 200 {
		t.Fatalf("classification 2: %d %s", r.status, r.body)
	}
	o := r.json(t)["outputs"].([]any)[0].(map[string]any)
	if o["datatype"] != "BYTES" || fmt.Sprint(o["shape"]) != "[3 2]" {
		t.Fatalf("classification output: %v", o)
	}
	var strs []string
	for _, v := range o["data"].([]any) {
		strs = append(strs, v.(string))
	}
	check("json", strs, 2, nil)

	// Binary mode, as the client's default (binary_data true), with a
	// count above the classes: capped at 3, as Triton caps it.
	body, hl = tritonBody(rows, `{"classification":10,"binary_data":true}`)
	r = e.do("POST", "/v2/models/clf/infer", key, body, "Inference-Header-Content-Length", hl)
	if r.status != 200 {
		t.Fatalf("binary classification: %d %s", r.status, r.body)
	}
	n, _ := strconv.Atoi(r.header.Get("Inference-Header-Content-Length"))
	if n <= 0 || n > len(r.body) || !bytes.Contains(r.body[:n], []byte(`"datatype":"BYTES"`)) || !bytes.Contains(r.body[:n], []byte(`"shape":[3,3]`)) {
		t.Fatalf("binary header: %q", r.body[:min(n, len(r.body))])
	}
	strs = nil
	for b := r.body[n:]; len(b) > 0; {
		size := int(binary.LittleEndian.Uint32(b))
		strs, b = append(strs, string(b[4:4+size])), b[4+size:]
	}
	check("binary", strs, 3, nil)

	// Labels from the artifact.
	body, hl = tritonBody(rows, `{"classification":1}`)
	r = e.do("POST", "/v2/models/pets/infer", key, body, "Inference-Header-Content-Length", hl)
	if r.status != 200 {
		t.Fatalf("labels: %d %s", r.status, r.body)
	}
	strs = nil
	for _, v := range r.json(t)["outputs"].([]any)[0].(map[string]any)["data"].([]any) {
		strs = append(strs, v.(string))
	}
	if len(strs) != rows || !slices.ContainsFunc(strs, func(s string) bool {
		return strings.HasSuffix(s, ":cat") || strings.HasSuffix(s, ":dog") || strings.HasSuffix(s, ":emu")
	}) {
		t.Errorf("labelled classifications: %q", strs)
	}
	for _, s := range strs {
		c := parseClasses(t, []string{s})[0]
		if c.label != []string{"cat", "dog", "emu"}[c.index] {
			t.Errorf("label of %q", s)
		}
	}

	// Bad counts.
	for i, p := range []string{`{"classification":0}`, `{"classification":-3}`, `{"classification":1.5}`, `{"classification":"two"}`, `{"classification":true}`} {
		body, hl = tritonBody(1, p)
		r = e.do("POST", "/v2/models/clf/infer", key, body, "Inference-Header-Content-Length", hl)
		if r.status != 400 || !strings.Contains(string(r.body), "classification must be a positive integer") {
			t.Errorf("case %d %s: %d %s", i, p, r.status, r.body)
		}
	}
}
