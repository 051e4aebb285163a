package graph

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/aiaas/aiaas/nn"
)

// sliceIndices are the indices x[start:end:step] takes of a dimension of
// n, by ONNX's definition: negative bounds count from the end, then start
// is clamped into [0, n] ([0, n-1] for negative steps) and end into [0, n]
// ([-1, n-1]), and the walk goes from start while short of end. (numpy
// differs in one corner: with a negative step, a start still negative
// after adding n takes nothing there, and index 0 here, as in ONNX Runtime.)
func sliceIndices(n int, start, end, step int64) []int {
	if start < 0 {
		start += int64(n)
	}
	if end < 0 {
		end += int64(n)
	}
	var out []int
	if step > 0 {
		start, end = min(max(start, 0), int64(n)), min(max(end, 0), int64(n))
		for i := start; i < end; {
			out = append(out, int(i))
			if step > int64(n) {
				break
			}
			i += step
		}
		return out
	}
	start, end = min(max(start, 0), int64(n)-1), min(max(end, -1), int64(n)-1)
	for i := start; i > end; {
		out = append(out, int(i))
		if step < -int64(n) {
			break
		}
		i += step
	}
	return out
}

// TestSliceRandom compares random slices of random rank-3 tensors, with
// extreme and out-of-range bounds, against the definition.
func TestSliceRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	pick := func(n int) int64 {
		switch r.IntN(6) {
		case 0:
			return math.MaxInt64
		case 1:
			return math.MinInt64
		default:
			return int64(r.IntN(4*n+3) - 2*n - 1)
		}
	}
	for trial := 0; trial < 300; trial++ {
		shape := []int{r.IntN(5), 1 + r.IntN(6), 1 + r.IntN(7)}
		x := arange(shape...)
		var starts, ends, axes, steps []int64
		idx := make([][]int, 3)
		for a := range idx {
			for i := 0; i < shape[a]; i++ {
				idx[a] = append(idx[a], i)
			}
		}
		for _, a := range r.Perm(3)[:1+r.IntN(3)] {
			s, e := pick(shape[a]), pick(shape[a])
			st := int64(r.IntN(7) - 3)
			if st == 0 {
				st = []int64{math.MinInt64, math.MaxInt64}[r.IntN(2)]
			}
			starts, ends, steps = append(starts, s), append(ends, e), append(steps, st)
			axes = append(axes, int64(a)-int64(3*r.IntN(2)))
			idx[a] = sliceIndices(shape[a], s, e, st)
		}
		got := runMoveOp(t, 13, "Slice", nil, x, i64(starts...), i64(ends...), i64(axes...), i64(steps...))[0]
		var want []int64
		for _, i := range idx[0] {
			for _, j := range idx[1] {
				for _, k := range idx[2] {
					want = append(want, int64((i*shape[1]+j)*shape[2]+k))
				}
			}
		}
		if !slices.Equal(got.Int64s(), want) || got.Shape[0] != len(idx[0]) || got.Shape[1] != len(idx[1]) || got.Shape[2] != len(idx[2]) {
			t.Fatalf("%v starts %v ends %v axes %v steps %v: %v %v, want %v", shape, starts, ends, axes, steps, got.Shape, got.Int64s(), want)
		}
	}
}

// TestPadRandom compares random pads (negative ones too) in every mode
// against the definition.
func TestPadRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 34))
	for trial := 0; trial < 300; trial++ {
		shape := []int{1 + r.IntN(4), 1 + r.IntN(5), 1 + r.IntN(6)}
		mode := []string{"constant", "reflect", "edge"}[r.IntN(3)]
		x := arange(shape...)
		pads := make([]int64, 6)
		out := make([]int, 3)
		for a := 0; a < 3; a++ {
			lo := -shape[a] / 2
			pads[a], pads[a+3] = int64(lo+r.IntN(8)), int64(lo+r.IntN(8))
			out[a] = shape[a] + int(pads[a]+pads[a+3])
		}
		if out[0] < 0 || out[1] < 0 || out[2] < 0 {
			continue
		}
		got := runMoveOp(t, 13, "Pad", map[string]Attr{"mode": stringAttr(mode)}, x, i64(pads...), TensorFrom([]int{}, []int64{-7}))[0]
		src := func(a, o int) int {
			i := o - int(pads[a])
			n := shape[a]
			switch mode {
			case "edge":
				return min(max(i, 0), n-1)
			case "reflect":
				for i < 0 || i >= n {
					if n == 1 {
						return 0
					}
					if i < 0 {
						i = -i
					}
					if i >= n {
						i = 2*(n-1) - i
					}
				}
			}
			if i < 0 || i >= n {
				return -1
			}
			return i
		}
		var want []int64
		for i := 0; i < out[0]; i++ {
			for j := 0; j < out[1]; j++ {
				for k := 0; k < out[2]; k++ {
					a, b, c := src(0, i), src(1, j), src(2, k)
					if a < 0 || b < 0 || c < 0 {
						want = append(want, -7)
					} else {
						want = append(want, int64((a*shape[1]+b)*shape[2]+c))
					}
				}
			}
		}
		if !slices.Equal(got.Int64s(), want) {
			t.Fatalf("%v %s pads %v: %v, want %v", shape, mode, pads, got.Int64s(), want)
		}
	}
}

// TestResizeHostileValues: values a file may hold that must fail cleanly
// or extrapolate, never panic.
func TestResizeHostileValues(t *testing.T) {
	x := TensorFrom([]int{1, 1, 2, 2}, []float32{1, 2, 3, 4})
	nan := float32(math.NaN())
	for _, mode := range []string{"nearest", "linear", "cubic"} {
		roi := TensorFrom([]int{8}, []float32{0, 0, nan, float32(math.Inf(-1)), 1, 1, nan, float32(math.Inf(1))})
		got := runMoveOp(t, 13, "Resize", map[string]Attr{"mode": stringAttr(mode), "coordinate_transformation_mode": stringAttr("tf_crop_and_resize"), "extrapolation_value": floatAttr(9)},
			x, roi, nil, i64(1, 1, 3, 3))[0]
		for _, v := range got.Float32s() {
			if v != 9 {
				t.Errorf("%s with a NaN roi: %v, want extrapolation everywhere", mode, got.Float32s())
				break
			}
		}
	}
	for _, scales := range [][]float32{{1, 1, nan, 1}, {1, 1, -2, 1}, {1, 1, float32(math.Inf(1)), 1}, {1, 1, 1e30, 1e30}} {
		g := &Graph{Opset: 13, Inputs: []Value{{Name: "x", DType: Float32, Shape: []int64{1, 1, 2, 2}}}, Outputs: []Value{{Name: "y", DType: Float32}},
			Nodes: []Node{{Op: "Resize", Inputs: []string{"x", "", "s"}, Outputs: []string{"y"}}}}
		_, err := Load(g, map[string]*Tensor{"s": TensorFrom([]int{4}, scales)}, nil)
		if !errors.Is(err, nn.ErrShape) {
			t.Errorf("scales %v: %v, want a shape error", scales, err)
		}
	}
}

// TestResizeRandom compares random resizes (modes, coordinate modes,
// sizes, up and down, antialias) against the direct formula.
func TestResizeRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(35, 36))
	ctms := []string{"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_crop_and_resize"}
	nms := []string{"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"}
	for trial := 0; trial < 200; trial++ {
		rank := 1 + r.IntN(4)
		in, out := make([]int, rank), make([]int, rank)
		sizes := make([]int64, rank)
		scales := make([]float64, rank)
		roi := make([]float64, 2*rank)
		roiF := make([]float32, 2*rank)
		for a := range in {
			in[a] = 1 + r.IntN(6)
			out[a] = 1 + r.IntN(9)
			if r.IntN(3) == 0 {
				out[a] = in[a]
			}
			sizes[a] = int64(out[a])
			scales[a] = float64(out[a]) / float64(in[a])
			roiF[a], roiF[a+rank] = float32(r.Float64()*0.6-0.2), float32(0.5+r.Float64()*0.7)
			roi[a], roi[a+rank] = float64(roiF[a]), float64(roiF[a+rank])
		}
		ref := resizeRef{mode: []string{"nearest", "linear", "cubic"}[r.IntN(3)], ctm: ctms[r.IntN(len(ctms))], nearest: nms[r.IntN(4)],
			A: []float64{-0.75, -0.5}[r.IntN(2)], exclude: r.IntN(2) == 0, antialias: r.IntN(2) == 0, extrap: 2.5}
		if ref.mode == "nearest" {
			ref.exclude, ref.antialias = false, false
		}
		attrs := map[string]Attr{"mode": stringAttr(ref.mode), "coordinate_transformation_mode": stringAttr(ref.ctm), "nearest_mode": stringAttr(ref.nearest),
			"cubic_coeff_a": floatAttr(float32(ref.A)), "extrapolation_value": floatAttr(2.5)}
		if ref.exclude {
			attrs["exclude_outside"] = intAttr(1)
		}
		if ref.antialias {
			attrs["antialias"] = intAttr(1)
		}
		var roiT *Tensor
		if ref.ctm == "tf_crop_and_resize" {
			ref.roi = roi
			roiT = TensorFrom([]int{2 * rank}, roiF)
		}
		x := randTensor(r, in...)
		xs, _ := floatsOf(x)
		got := runMoveOp(t, 18, "Resize", attrs, x, roiT, nil, i64(sizes...))[0]
		want := ref.run(xs, in, out, scales)
		g, _ := floatsOf(got)
		for j := range want {
			if math.Abs(g[j]-want[j]) > 1e-4*math.Max(1, math.Abs(want[j])) {
				t.Fatalf("%+v %v → %v: element %d is %g, want %g", ref, in, out, j, g[j], want[j])
			}
		}
	}
}
