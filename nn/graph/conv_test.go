package graph

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/gonum"
)

// TestConvFastMatchesReference runs convolutions with constant weights
// (the packed GEMM and depthwise paths) against the same convolutions with
// the weights fed as inputs (the direct reference), over groups, strides,
// dilations, paddings, 1-D and 2-D, odd sizes that leave partial tiles.
func TestConvFastMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	type cs struct {
		n, c, h, w, m, k, group, stride, dil, pad int
		oneD                                      bool
	}
	cases := []cs{
		{1, 3, 7, 9, 5, 3, 1, 1, 1, 1, false},
		{2, 4, 10, 10, 8, 3, 2, 2, 1, 1, false},
		{1, 8, 9, 9, 8, 3, 8, 1, 1, 1, false},    // depthwise
		{1, 8, 9, 9, 8, 3, 8, 2, 1, 1, false},    // depthwise, stride 2
		{1, 6, 12, 11, 12, 3, 6, 1, 2, 2, false}, // channel multiplier 2
		{1, 16, 5, 5, 33, 1, 1, 1, 1, 0, false},  // pointwise, partial tiles
		{1, 3, 13, 17, 7, 5, 1, 3, 1, 2, false},
		{3, 5, 1, 40, 9, 3, 1, 2, 2, 1, true},
		{1, 64, 14, 14, 64, 3, 1, 1, 1, 1, false},
	}
	for i, c := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			var x, w *Tensor
			attrs := map[string]Attr{"group": intAttr(int64(c.group))}
			if c.oneD {
				x = randTensor(r, c.n, c.c, c.w)
				w = randTensor(r, c.m, c.c/c.group, c.k)
				attrs["strides"], attrs["dilations"], attrs["pads"] = ints(int64(c.stride)), ints(int64(c.dil)), ints(int64(c.pad), int64(c.pad))
			} else {
				x = randTensor(r, c.n, c.c, c.h, c.w)
				w = randTensor(r, c.m, c.c/c.group, c.k, c.k)
				attrs["strides"], attrs["dilations"] = ints(int64(c.stride), int64(c.stride)), ints(int64(c.dil), int64(c.dil))
				attrs["pads"] = ints(int64(c.pad), int64(c.pad), int64(c.pad), int64(c.pad))
			}
			bias := randTensor(r, c.m)
			fast, feedF := nodeGraph(t, 13, "Conv", attrs, []*Tensor{x, w, bias}, []bool{false, true, true}, 1)
			ref, feedR := nodeGraph(t, 13, "Conv", attrs, []*Tensor{x, w, bias}, nil, 1)
			got := run1(t, fast, feedF)[0]
			want := run1(t, ref, feedR)[0]
			if fmt.Sprint(got.Shape) != fmt.Sprint(want.Shape) {
				t.Fatalf("shape %v, want %v", got.Shape, want.Shape)
			}
			if d := maxRelDiff(got.Float32s(), want.Float32s()); d > 1e-4 {
				t.Errorf("max rel diff %g", d)
			}
		})
	}
}

// TestConvOtherBLAS: with another BLAS registered (gonum's), convolutions
// go through blas32.Gemm and agree with ours.
func TestConvOtherBLAS(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	x, w, bias := randTensor(r, 2, 6, 9, 9), randTensor(r, 8, 3, 3, 3), randTensor(r, 8)
	attrs := map[string]Attr{"group": intAttr(2), "pads": ints(1, 1, 1, 1), "strides": ints(2, 2)}
	ours, feed := nodeGraph(t, 13, "Conv", attrs, []*Tensor{x, w, bias}, []bool{false, true, true}, 1)
	want := run1(t, ours, feed)[0]
	saved := blas32.Implementation()
	blas32.Use(gonum.Implementation{})
	defer blas32.Use(saved)
	other, feed := nodeGraph(t, 13, "Conv", attrs, []*Tensor{x, w, bias}, []bool{false, true, true}, 1)
	got := run1(t, other, feed)[0]
	if d := maxRelDiff(got.Float32s(), want.Float32s()); d > 1e-4 {
		t.Errorf("gonum BLAS and ours differ by %g", d)
	}
}
