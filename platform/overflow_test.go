package platform_test

import (
	"strings"
	"testing"
)

// TestOverflowingInputs: finite inputs near float32's limit overflow a
// model. That is the input's property: 422 naming the non-finite value,
// never 500 (nor a JSON encoder failing on NaN).
func TestOverflowingInputs(t *testing.T) {
	e := newEnv(t, nil)
	key := e.tenant("acme")
	e.publish(key, "clf", 1)
	huge := []float32{3e38, -3e38, 3e38, 3e38}
	r := e.do("POST", "/v2/models/clf/infer", key, map[string]any{"inputs": []map[string]any{{"name": "input", "shape": []int{1, 4}, "datatype": "FP32", "data": huge}}})
	if r.status != 422 || !strings.Contains(string(r.body), "outside the range") {
		t.Fatalf("infer with 3e38: %d %s, want 422", r.status, r.body)
	}
	for _, method := range []string{"integrated_gradients", "gradient_x_input"} {
		r := e.do("POST", "/v1/models/clf/explain", key, map[string]any{"input": huge, "method": method})
		if r.status != 422 || !strings.Contains(string(r.body), "outside the range") {
			t.Errorf("explain (%s) with 3e38: %d %s, want 422", method, r.status, r.body)
		}
	}
}
