package platform_test

import (
	"testing"

	"github.com/aiaas/aiaas/internal/lowprio"
	"github.com/aiaas/aiaas/nn"
)

// TestLongForwardRunsLowered: once a model's pass has shown itself long
// (internal/lowprio.MinWork or more), the next one of that size runs on a
// thread of lower priority, with the same answer; a short pass on a small
// model stays where it is.
func TestLongForwardRunsLowered(t *testing.T) {
	e := newEnv(t, nil)
	key := e.tenant("lowprio")
	spec := nn.MLP("wide", 256, []int{1024, 1024}, "relu", 10, "softmax")
	spec.Outputs[0].Name = "probabilities"
	if r := e.do("POST", "/v1/models/wide/versions", key, artifactOf(t, spec, 1)); r.status != 201 {
		t.Fatalf("publish: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/models/digits/versions", key, artifactOf(t, mnistSpec(), 1)); r.status != 201 {
		t.Fatalf("publish: %d %s", r.status, r.body)
	}
	const rows = 1024 // 2.6 MFLOP a row: milliseconds for the batch even on many cores
	x := make([]float32, rows*256)
	for i := range x {
		x[i] = float32(i%13) / 13
	}
	body := map[string]any{"inputs": []map[string]any{{"name": "input", "shape": []int{rows, 256}, "datatype": "FP32", "data": x}}}
	first := e.do("POST", "/v2/models/wide/infer", key, body) // in place: its length is learnt
	if first.status != 200 {
		t.Fatalf("infer: %d %s", first.status, first.body)
	}
	before := lowprio.Handed()
	second := e.do("POST", "/v2/models/wide/infer", key, body)
	if second.status != 200 {
		t.Fatalf("infer: %d %s", second.status, second.body)
	}
	if lowprio.Handed() == before {
		t.Errorf("a pass of %d rows of %d parameters ran in place", rows, 256*1024+1024*1024+1024*10)
	}
	if string(first.body) != string(second.body) {
		t.Errorf("the answers differ:\n%s\n%s", first.body, second.body)
	}

	digit := make([]float32, 784)
	small := map[string]any{"inputs": []map[string]any{{"name": "input", "shape": []int{1, 784}, "datatype": "FP32", "data": digit}}}
	for range 3 {
		if r := e.do("POST", "/v2/models/digits/infer", key, small); r.status != 200 {
			t.Fatalf("infer: %d %s", r.status, r.body)
		}
	}
	before = lowprio.Handed()
	if r := e.do("POST", "/v2/models/digits/infer", key, small); r.status != 200 {
		t.Fatalf("infer: %d %s", r.status, r.body)
	}
	if n := lowprio.Handed() - before; n != 0 {
		t.Errorf("a one-row pass on a small model went to a lowered thread")
	}
}
