package platform

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/aiaas/aiaas/platform/oip"
)

// TestClassify covers what the end-to-end test cannot reach with a dense
// model: integer outputs (Triton writes them without decimals), rank-1
// outputs, ties (lower index first), labels shorter than the classes, and
// the 400s for outputs that are not one row of scores per batch item.
func TestClassify(t *testing.T) {
	for i, tc := range []struct {
		o      oip.ResponseOutput
		k      int
		labels []string
		shape  []int64
		want   []string
		err    string
	}{
		{o: oip.ResponseOutput{Name: "p", Shape: []int64{2, 3}, F32: []float32{0.1, 0.7, 0.2, 0.5, 0.5, 0}},
			k: 2, labels: []string{"a", "b"}, shape: []int64{2, 2},
			want: []string{"0.700000:1:b", "0.200000:2", "0.500000:0:a", "0.500000:1:b"}},
		{o: oip.ResponseOutput{Name: "p", Shape: []int64{4}, F32: []float32{1.1, 3.3, 0.5, 2.4}},
			k: 2, shape: []int64{2}, want: []string{"3.300000:1", "2.400000:3"}},
		{o: oip.ResponseOutput{Name: "ids", Shape: []int64{1, 3}, Datatype: "INT64", I64: []int64{-4, 9007199254740993, 7}},
			k: 5, shape: []int64{1, 3}, want: []string{"9007199254740993:1", "7:2", "-4:0"}},
		{o: oip.ResponseOutput{Name: "h", Shape: []int64{1, 2, 3}, F32: make([]float32, 6)}, k: 1, err: "one row of class scores per batch item"},
		{o: oip.ResponseOutput{Name: "s", Shape: []int64{}, F32: []float32{1}}, k: 1, err: "one row of class scores"},
		{o: oip.ResponseOutput{Name: "e", Shape: []int64{2, 0}, F32: []float32{}}, k: 1, err: "nothing to classify"},
		{o: oip.ResponseOutput{Name: "t", Shape: []int64{1}, Datatype: "BYTES", Bytes: [][]byte{[]byte("x")}}, k: 1, err: "needs a numeric output"},
	} {
		o := tc.o
		err := classify(&o, tc.k, tc.labels)
		if tc.err != "" {
			if statusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%d: err = %v, want 400 %q", i, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		var got []string
		for _, b := range o.Bytes {
			got = append(got, string(b))
		}
		if o.Datatype != oip.BYTES || !reflect.DeepEqual(o.Shape, tc.shape) || !reflect.DeepEqual(got, tc.want) || o.F32 != nil || o.I64 != nil {
			t.Errorf("%d: %s %v %q, want BYTES %v %q", i, o.Datatype, o.Shape, got, tc.shape, tc.want)
		}
	}
}
