package plugin

import (
	"slices"
	"testing"

	"github.com/aiaas/aiaas/internal/safetensors"
)

func TestI64(t *testing.T) {
	v := []int64{0, 1, -1, 101, 1 << 40, -1 << 62}
	tt := I64("input_ids", []int{2, 3}, v)
	// Through the codec, as the host sees it.
	f, err := safetensors.Decode(safetensors.Encode(&safetensors.File{Tensors: []Tensor{tt}}), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Int64s(f.Tensors[0], nil)
	if err != nil || !slices.Equal(got, v) || f.Tensors[0].DType != "I64" {
		t.Fatalf("%v %v %s", got, err, f.Tensors[0].DType)
	}
	for _, c := range []struct {
		t    Tensor
		want []int64
		ok   bool
	}{
		{Tensor{Name: "a", DType: DTypeI32, Shape: []int{2}, Data: []byte{0xff, 0xff, 0xff, 0xff, 7, 0, 0, 0}}, []int64{-1, 7}, true},
		{Tensor{Name: "b", DType: "BOOL", Shape: []int{2}, Data: []byte{1, 0}}, []int64{1, 0}, true},
		{F32("c", []int{2}, []float32{3, -4}), []int64{3, -4}, true},
		{F32("d", []int{1}, []float32{0.5}), nil, false},
		{Tensor{Name: "e", DType: "F16", Shape: []int{1}, Data: []byte{0, 0}}, nil, false},
		{Tensor{Name: "f", DType: DTypeI64, Shape: []int{2}, Data: []byte{1}}, nil, false},
	} {
		got, err := Int64s(c.t, nil)
		if (err == nil) != c.ok || c.ok && !slices.Equal(got, c.want) {
			t.Errorf("%s: %v %v", c.t.Name, got, err)
		}
	}
}
