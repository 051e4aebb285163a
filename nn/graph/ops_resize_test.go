package graph

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// resizeRef is Resize computed directly from the formulas, one output
// element at a time: every axis maps the output coordinate to the input,
// and the value sums, over every combination of the axes' input indices,
// the product of their kernel weights.
type resizeRef struct {
	mode, ctm, nearest string
	A                  float64
	exclude, antialias bool
	roi                []float64
	extrap             float64
}

type tap struct {
	i int
	w float64
}

func (r *resizeRef) axis(n, nout int, scale float64) (taps [][]tap, outside []bool) {
	taps = make([][]tap, nout)
	outside = make([]bool, nout)
	for o := 0; o < nout; o++ {
		xo, in, outW := float64(o), float64(n), scale*float64(n)
		var x float64
		switch r.ctm {
		case "half_pixel":
			x = (xo+0.5)/scale - 0.5
		case "pytorch_half_pixel":
			x = (xo+0.5)/scale - 0.5
			if outW == 1 {
				x = -0.5
			}
		case "align_corners":
			x = xo * (in - 1) / (outW - 1)
			if outW == 1 {
				x = 0
			}
		case "asymmetric":
			x = xo / scale
		case "tf_crop_and_resize":
			x = r.roi[0]*(in-1) + xo*(r.roi[1]-r.roi[0])*(in-1)/(outW-1)
			if outW == 1 {
				x = r.roi[0]*(in-1) + (r.roi[1]-r.roi[0])*(in-1)/2
			}
			if x < 0 || x > in-1 {
				outside[o] = true
				continue
			}
		default:
			panic(r.ctm)
		}
		clamp := func(i int) int { return min(max(i, 0), n-1) }
		if r.mode == "nearest" {
			var i float64
			switch frac := x - math.Floor(x); {
			case frac == 0:
				i = x
			case r.nearest == "floor":
				i = math.Floor(x)
			case r.nearest == "ceil":
				i = math.Ceil(x)
			case r.nearest == "round_prefer_floor" && frac <= 0.5, r.nearest == "round_prefer_ceil" && frac < 0.5:
				i = math.Floor(x)
			default:
				i = math.Ceil(x)
			}
			taps[o] = []tap{{clamp(int(i)), 1}}
			continue
		}
		s := 1.0
		if r.antialias && scale < 1 {
			s = scale
		}
		kernel := func(t float64) float64 {
			t = math.Abs(t)
			if r.mode == "linear" {
				return math.Max(0, 1-t)
			}
			A := r.A
			switch {
			case t <= 1:
				return (A+2)*t*t*t - (A+3)*t*t + 1
			case t < 2:
				return A*t*t*t - 5*A*t*t + 8*A*t - 4*A
			}
			return 0
		}
		R := int(math.Ceil(2/s)) + 2
		var ts []tap
		sum := 0.0
		for j := int(math.Floor(x)) - R; j <= int(math.Floor(x))+R; j++ {
			w := kernel((float64(j) - x) * s)
			if r.exclude && (j < 0 || j >= n) {
				w = 0
			}
			if w != 0 {
				ts = append(ts, tap{clamp(j), w})
				sum += w
			}
		}
		if r.antialias || r.exclude {
			for k := range ts {
				ts[k].w /= sum
			}
		}
		taps[o] = ts
	}
	return taps, outside
}

func (r *resizeRef) run(x []float64, in, out []int, scales []float64) []float64 {
	rank := len(in)
	taps := make([][][]tap, rank)
	outside := make([][]bool, rank)
	roi := r.roi
	for a := range in {
		if roi != nil {
			r.roi = []float64{roi[a], roi[a+rank]}
		}
		taps[a], outside[a] = r.axis(in[a], out[a], scales[a])
	}
	r.roi = roi
	st := rowStrides(in)
	n, _ := numel(out)
	res := make([]float64, n)
	idx := make([]int, rank)
	for o := range res {
		rem := o
		for d := rank - 1; d >= 0; d-- {
			idx[d] = rem % out[d]
			rem /= out[d]
		}
		ext := false
		for d := range idx {
			ext = ext || outside[d][idx[d]]
		}
		if ext {
			res[o] = r.extrap
			continue
		}
		// Sum over the cartesian product of the axes' taps.
		var rec func(d, off int, w float64) float64
		rec = func(d, off int, w float64) float64 {
			if d == rank {
				return w * x[off]
			}
			s := 0.0
			for _, t := range taps[d][idx[d]] {
				s += rec(d+1, off+t.i*st[d], w*t.w)
			}
			return s
		}
		res[o] = rec(0, 0, 1)
	}
	return res
}

func TestResizeMatchesFormula(t *testing.T) {
	rnd := rand.New(rand.NewPCG(11, 12))
	type rc struct {
		opset  int
		ref    resizeRef
		shape  []int
		scales []float32 // or
		sizes  []int64
		dt     DType
	}
	lin := func(ctm string) resizeRef { return resizeRef{mode: "linear", ctm: ctm} }
	cub := func(ctm string) resizeRef { return resizeRef{mode: "cubic", ctm: ctm, A: -0.75} }
	near := func(ctm, nm string) resizeRef { return resizeRef{mode: "nearest", ctm: ctm, nearest: nm} }
	nchw := []int{2, 3, 5, 7}
	cases := []rc{
		{13, lin("half_pixel"), nchw, []float32{1, 1, 2, 2}, nil, Float32},
		{13, lin("half_pixel"), nchw, []float32{1, 1, 0.5, 1.7}, nil, Float32},
		{13, lin("half_pixel"), nchw, nil, []int64{2, 3, 9, 4}, Float32},
		{13, lin("half_pixel"), nchw, nil, []int64{2, 5, 9, 4}, Float32}, // resizes channels too
		{13, lin("align_corners"), nchw, []float32{1, 1, 1.5, 0.6}, nil, Float32},
		{13, lin("asymmetric"), nchw, nil, []int64{2, 3, 10, 14}, Float64},
		{13, lin("pytorch_half_pixel"), nchw, nil, []int64{2, 3, 1, 3}, Float32},
		{13, resizeRef{mode: "linear", ctm: "tf_crop_and_resize", roi: []float64{0, 0, 0.2, -0.1, 1, 1, 0.9, 1.3}, extrap: 5}, nchw, nil, []int64{2, 3, 4, 6}, Float32},
		{13, resizeRef{mode: "cubic", ctm: "tf_crop_and_resize", roi: []float64{0, 0, 0.2, -0.1, 1, 1, 0.9, 1.3}, extrap: -2, A: -0.75}, nchw, nil, []int64{2, 3, 4, 6}, Float32},
		{13, cub("half_pixel"), nchw, []float32{1, 1, 2, 2}, nil, Float32},
		{13, cub("half_pixel"), nchw, []float32{1, 1, 0.7, 1.3}, nil, Float64},
		{13, resizeRef{mode: "cubic", ctm: "half_pixel", A: -0.5, exclude: true}, nchw, nil, []int64{2, 3, 9, 3}, Float32},
		{13, cub("align_corners"), nchw, nil, []int64{2, 3, 8, 8}, Float32},
		{13, cub("asymmetric"), nchw, []float32{1, 1, 3, 1.5}, nil, Float32},
		// Three axes: two intermediate buffers.
		{13, lin("half_pixel"), []int{1, 2, 4, 5, 6}, []float32{1, 1, 1.5, 0.6, 2}, nil, Float32},
		{13, cub("pytorch_half_pixel"), []int{1, 2, 4, 5, 6}, nil, []int64{1, 3, 3, 7, 4}, Float32},
		{13, lin("half_pixel"), []int{9}, nil, []int64{4}, Float32},
		// Opset 10: asymmetric.
		{10, lin("asymmetric"), nchw, []float32{1, 1, 2, 1.5}, nil, Float32},
		// Antialias (opset 18) when downsampling.
		{18, resizeRef{mode: "linear", ctm: "half_pixel", antialias: true}, []int{1, 2, 12, 13}, []float32{1, 1, 0.3, 0.6}, nil, Float32},
		{18, resizeRef{mode: "cubic", ctm: "half_pixel", antialias: true, A: -0.5}, []int{1, 2, 12, 13}, nil, []int64{1, 2, 5, 20}, Float32},
		{18, resizeRef{mode: "cubic", ctm: "align_corners", antialias: true, exclude: true, A: -0.75}, []int{1, 2, 12, 13}, nil, []int64{1, 2, 4, 3}, Float32},
	}
	for _, ctm := range []string{"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"} {
		for _, nm := range []string{"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"} {
			cases = append(cases,
				rc{13, near(ctm, nm), nchw, nil, []int64{2, 3, 11, 5}, Float32},
				rc{13, near(ctm, nm), nchw, []float32{1, 1, 2.5, 0.6}, nil, Int64})
		}
	}
	cases = append(cases,
		rc{10, near("asymmetric", "floor"), nchw, []float32{1, 1, 2.5, 3}, nil, Uint8},
		rc{13, resizeRef{mode: "nearest", ctm: "tf_crop_and_resize", nearest: "round_prefer_floor", roi: []float64{0, 0, 0.2, -0.1, 1, 1, 0.9, 1.3}, extrap: 3}, nchw, nil, []int64{2, 3, 4, 6}, Int16},
	)
	for i, c := range cases {
		t.Run(fmt.Sprintf("%d_%s_%s_%v", i, c.ref.mode, c.ref.ctm, c.dt), func(t *testing.T) {
			xf := randTensor(rnd, c.shape...)
			x := NewTensor(c.dt, c.shape...)
			xs := make([]float64, x.Numel())
			for j, v := range xf.Float32s() {
				switch c.dt {
				case Float32:
					x.Float32s()[j] = v
				case Float64:
					Data[float64](x)[j] = float64(v)
				case Int64:
					Data[int64](x)[j] = int64(v * 100)
				case Int16:
					Data[int16](x)[j] = int16(v * 100)
				case Uint8:
					Data[uint8](x)[j] = uint8(v*40 + 128)
				}
			}
			xs, _ = floatsOf(x)
			if xs == nil {
				xs = make([]float64, x.Numel())
				for j := range xs {
					switch c.dt {
					case Int64:
						xs[j] = float64(Data[int64](x)[j])
					case Int16:
						xs[j] = float64(Data[int16](x)[j])
					case Uint8:
						xs[j] = float64(Data[uint8](x)[j])
					}
				}
			}
			attrs := map[string]Attr{"mode": stringAttr(c.ref.mode)}
			if c.opset >= 11 {
				attrs["coordinate_transformation_mode"] = stringAttr(c.ref.ctm)
				if c.ref.nearest != "" {
					attrs["nearest_mode"] = stringAttr(c.ref.nearest)
				}
				if c.ref.mode == "cubic" {
					attrs["cubic_coeff_a"] = floatAttr(float32(c.ref.A))
				}
				if c.ref.exclude {
					attrs["exclude_outside"] = intAttr(1)
				}
				if c.ref.roi != nil {
					attrs["extrapolation_value"] = floatAttr(float32(c.ref.extrap))
				}
				if c.ref.antialias {
					attrs["antialias"] = intAttr(1)
				}
			}
			var ins []*Tensor
			scales := make([]float64, len(c.shape))
			out := make([]int, len(c.shape))
			if c.scales != nil {
				for a, s := range c.scales {
					scales[a] = float64(s)
					out[a] = int(math.Floor(float64(s) * float64(c.shape[a])))
				}
			} else {
				for a, s := range c.sizes {
					out[a] = int(s)
					scales[a] = float64(s) / float64(c.shape[a])
				}
			}
			var sc, sz, roi *Tensor
			if c.scales != nil {
				sc = TensorFrom([]int{len(c.scales)}, c.scales)
			}
			if c.sizes != nil {
				sz = i64(c.sizes...)
			}
			if c.ref.roi != nil {
				rf := make([]float32, len(c.ref.roi))
				for j, v := range c.ref.roi {
					rf[j] = float32(v)
				}
				roi = TensorFrom([]int{len(rf)}, rf)
				for j, v := range rf {
					c.ref.roi[j] = float64(v)
				}
			}
			if c.opset < 11 {
				ins = []*Tensor{x, sc}
			} else {
				ins = []*Tensor{x, roi, sc, sz}
			}
			got := runMoveOp(t, c.opset, "Resize", attrs, ins...)[0]
			if !slices.Equal(got.Shape, out) {
				t.Fatalf("shape %v, want %v", got.Shape, out)
			}
			want := c.ref.run(xs, c.shape, out, scales)
			var g []float64
			switch c.dt {
			case Float32, Float64:
				g, _ = floatsOf(got)
			default:
				g = make([]float64, got.Numel())
				for j := range g {
					switch c.dt {
					case Int64:
						g[j] = float64(Data[int64](got)[j])
					case Int16:
						g[j] = float64(Data[int16](got)[j])
					case Uint8:
						g[j] = float64(Data[uint8](got)[j])
					}
				}
			}
			for j := range want {
				if math.Abs(g[j]-want[j]) > 1e-5*math.Max(1, math.Abs(want[j])) {
					t.Fatalf("element %d: %g, want %g", j, g[j], want[j])
				}
			}
		})
	}
}

func TestUpsampleAndAspectRatio(t *testing.T) {
	x := TensorFrom([]int{1, 1, 2, 2}, []float32{1, 2, 3, 4})
	got := runMoveOp(t, 7, "Upsample", map[string]Attr{"scales": Attr{Kind: AttrFloats, Floats: []Float{1, 1, 2, 1.5}}}, x)[0]
	want := []float32{1, 1, 2, 1, 1, 2, 3, 3, 4, 3, 3, 4}
	if !slices.Equal(got.Shape, []int{1, 1, 4, 3}) || !slices.Equal(got.Float32s(), want) {
		t.Errorf("Upsample 7 nearest: %v %v, want %v", got.Shape, got.Float32s(), want)
	}
	got = runMoveOp(t, 9, "Upsample", map[string]Attr{"mode": stringAttr("linear")}, x, TensorFrom([]int{4}, []float32{1, 1, 2, 2}))[0]
	want = []float32{1, 1.5, 2, 2, 2, 2.5, 3, 3, 3, 3.5, 4, 4, 3, 3.5, 4, 4}
	if !slices.Equal(got.Float32s(), want) {
		t.Errorf("Upsample 9 linear: %v, want %v", got.Float32s(), want)
	}
	// Opset 18: axes and keep_aspect_ratio_policy.
	y := NewTensor(Float32, 1, 3, 4, 6)
	for _, c := range []struct {
		policy string
		sizes  []int64
		shape  []int
	}{
		{"stretch", []int64{8, 8}, []int{1, 3, 8, 8}},
		{"not_larger", []int64{8, 8}, []int{1, 3, 5, 8}},
		{"not_smaller", []int64{8, 8}, []int{1, 3, 8, 12}},
	} {
		got := runMoveOp(t, 18, "Resize", map[string]Attr{"axes": ints(2, -1), "keep_aspect_ratio_policy": stringAttr(c.policy)}, y, nil, nil, i64(c.sizes...))[0]
		if !slices.Equal(got.Shape, c.shape) {
			t.Errorf("%s: shape %v, want %v", c.policy, got.Shape, c.shape)
		}
	}
}

func BenchmarkResizeBilinear(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	x := randTensor(r, 1, 64, 64, 64)
	for _, mode := range []string{"linear", "nearest"} {
		b.Run(mode, func(b *testing.B) {
			m, feed := nodeGraph(b, 13, "Resize", map[string]Attr{"mode": stringAttr(mode)},
				[]*Tensor{x, nil, TensorFrom([]int{4}, []float32{1, 1, 2, 2})}, []bool{false, false, true}, 1)
			out := run1(b, m, feed)
			b.SetBytes(int64(4 * 4 * x.Numel()))
			for b.Loop() {
				m.Run(context.Background(), feed, out)
			}
		})
	}
}
