package graph

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestConvTransposeFastMatchesReference runs transposed convolutions with
// constant weights (the packed GEMM and col2im) against the same with the
// weights fed as inputs (the direct N-D reference): groups, strides,
// dilations, pads, output_padding, output_shape, auto_pad, 1-D and 2-D,
// bias constant, fed or absent, and bands of input rows.
func TestConvTransposeFastMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	type cs struct {
		n, c, h, w, m, kh, kw, group int
		attrs                        map[string]Attr
		oneD                         bool
		bias                         int // 0 none, 1 constant, 2 input
		band                         int // ctColBytes for the case, 0 default
	}
	cases := []cs{
		{1, 3, 5, 6, 4, 3, 3, 1, nil, false, 1, 0},
		{2, 4, 7, 5, 6, 2, 2, 2, map[string]Attr{"strides": ints(2, 2)}, false, 2, 0},
		{1, 64, 9, 10, 32, 2, 2, 1, map[string]Attr{"strides": ints(2, 2)}, false, 1, 0}, // U-Net up-sampling
		{1, 3, 4, 5, 3, 3, 3, 1, map[string]Attr{"strides": ints(3, 3), "pads": ints(1, 1, 1, 1), "output_padding": ints(2, 2)}, false, 0, 0},
		{1, 6, 6, 6, 6, 3, 3, 3, map[string]Attr{"strides": ints(2, 1), "dilations": ints(2, 1), "pads": ints(1, 0, 2, 1)}, false, 1, 0},
		{1, 8, 5, 5, 8, 3, 3, 8, map[string]Attr{"strides": ints(2, 2), "pads": ints(1, 1, 1, 1), "output_padding": ints(1, 1)}, false, 2, 0}, // depthwise
		{1, 2, 3, 3, 4, 3, 3, 1, map[string]Attr{"strides": ints(3, 2), "output_shape": ints(10, 8)}, false, 1, 0},
		{1, 2, 3, 4, 2, 3, 3, 1, map[string]Attr{"strides": ints(2, 2), "auto_pad": stringAttr("SAME_UPPER")}, false, 0, 0},
		{1, 2, 3, 4, 2, 4, 3, 1, map[string]Attr{"strides": ints(2, 3), "auto_pad": stringAttr("SAME_LOWER")}, false, 1, 0},
		{1, 2, 3, 4, 2, 1, 1, 1, map[string]Attr{"strides": ints(3, 3)}, false, 1, 0}, // kernel < stride: gaps at the bias
		{3, 5, 1, 17, 7, 1, 4, 1, map[string]Attr{"strides": ints(3), "pads": ints(2, 1), "dilations": ints(2)}, true, 1, 0},
		{1, 16, 12, 9, 24, 3, 3, 2, map[string]Attr{"strides": ints(2, 2), "pads": ints(1, 1, 1, 1)}, false, 2, 4 * 24 / 2 * 9 * 9 * 3},
		{2, 33, 11, 13, 17, 2, 3, 1, map[string]Attr{"strides": ints(2, 2), "output_padding": ints(1, 0)}, false, 1, 1},
		{2, 8, 6, 5, 4, 2, 2, 2, map[string]Attr{"strides": ints(2, 2)}, false, 1, 1}, // tiled, one row per band
		{1, 3, 4, 5, 6, 3, 3, 1, map[string]Attr{"strides": ints(3, 3)}, false, 2, 0}, // tiled 3×3
		{2, 4, 1, 9, 6, 1, 2, 1, map[string]Attr{"strides": ints(2)}, true, 0, 0},     // tiled 1-D
		{1, 4, 5, 5, 6, 1, 1, 1, map[string]Attr{"strides": ints(1, 1)}, false, 1, 0}, // pointwise
	}
	for i, c := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			if c.band > 0 {
				old := ctColBytes
				ctColBytes = c.band
				defer func() { ctColBytes = old }()
			}
			var x, w *Tensor
			if c.oneD {
				x = randTensor(r, c.n, c.c, c.w)
				w = randTensor(r, c.c, c.m/c.group, c.kw)
			} else {
				x = randTensor(r, c.n, c.c, c.h, c.w)
				w = randTensor(r, c.c, c.m/c.group, c.kh, c.kw)
			}
			attrs := map[string]Attr{"group": intAttr(int64(c.group))}
			for k, v := range c.attrs {
				attrs[k] = v
			}
			ins := []*Tensor{x, w}
			fastConst := []bool{false, true}
			if c.bias > 0 {
				ins = append(ins, randTensor(r, c.m))
				fastConst = append(fastConst, c.bias == 1)
			}
			fast, feedF := typedNodeGraph(t, 13, "ConvTranspose", attrs, ins, fastConst, Float32)
			ref, feedR := typedNodeGraph(t, 13, "ConvTranspose", attrs, ins, nil, Float32)
			got := run1(t, fast, feedF)[0]
			want := run1(t, ref, feedR)[0]
			if !slices.Equal(got.Shape, want.Shape) {
				t.Fatalf("shape %v, want %v", got.Shape, want.Shape)
			}
			if d := maxRelDiff(got.Float32s(), want.Float32s()); d > 1e-4 {
				t.Errorf("max rel diff %g", d)
			}
			if a := steadyAllocs(t, fast, feedF); a != 0 && prod(got.Shape) < 1<<14 {
				t.Errorf("%v allocations per run", a)
			}
			if a := steadyAllocs(t, ref, feedR); a != 0 {
				t.Errorf("reference: %v allocations per run", a)
			}
		})
	}
}

// TestConvTransposeReferenceMatchesNaive checks the N-D reference against
// the transposed convolution written as a gather (each output position
// sums the input positions that reach it), on 1-D, 2-D and 3-D cases.
func TestConvTransposeReferenceMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 34))
	for i, c := range []struct {
		x, w         []int
		group        int
		s, d, pb, pe []int
	}{
		{[]int{1, 2, 5}, []int{2, 3, 3}, 1, []int{2}, []int{1}, []int{1}, []int{0}},
		{[]int{2, 4, 3, 4}, []int{4, 1, 2, 3}, 2, []int{2, 3}, []int{2, 1}, []int{0, 1}, []int{1, 2}},
		{[]int{1, 2, 3, 2, 3}, []int{2, 2, 2, 3, 2}, 1, []int{1, 2, 2}, []int{1, 1, 2}, []int{1, 0, 0}, []int{0, 1, 1}},
	} {
		sp := len(c.x) - 2
		x, w := randTensor(r, c.x...), randTensor(r, c.w...)
		i64 := func(v ...[]int) Attr {
			var o []int64
			for _, s := range v {
				for _, d := range s {
					o = append(o, int64(d))
				}
			}
			return ints(o...)
		}
		attrs := map[string]Attr{"group": intAttr(int64(c.group)), "strides": i64(c.s), "dilations": i64(c.d), "pads": i64(c.pb, c.pe)}
		m, feed := typedNodeGraph(t, 13, "ConvTranspose", attrs, []*Tensor{x, w}, nil, Float32)
		got := run1(t, m, feed)[0]
		cin, mg := c.x[1], c.w[1]
		cg := cin / c.group
		out := make([]int, sp)
		for d := range sp {
			out[d] = c.s[d]*(c.x[2+d]-1) + (c.w[2+d]-1)*c.d[d] + 1 - c.pb[d] - c.pe[d]
		}
		if want := append([]int{c.x[0], mg * c.group}, out...); !slices.Equal(got.Shape, want) {
			t.Fatalf("case %d: shape %v, want %v", i, got.Shape, want)
		}
		inSz, outSz, kSz := prod(c.x[2:]), prod(out), prod(c.w[2:])
		for n := range c.x[0] {
			for mo := range mg * c.group {
				gi, mm := mo/mg, mo%mg
				for o := range outSz {
					oc := make([]int, sp)
					rr := o
					for d := sp - 1; d >= 0; d-- {
						oc[d], rr = rr%out[d], rr/out[d]
					}
					want := float32(0)
					for ci := gi * cg; ci < (gi+1)*cg; ci++ {
						for k := range kSz {
							kc := make([]int, sp)
							rk := k
							for d := sp - 1; d >= 0; d-- {
								kc[d], rk = rk%c.w[2+d], rk/c.w[2+d]
							}
							idx, ok := 0, true
							for d := range sp {
								num := oc[d] + c.pb[d] - kc[d]*c.d[d]
								if num < 0 || num%c.s[d] != 0 || num/c.s[d] >= c.x[2+d] {
									ok = false
									break
								}
								idx = idx*c.x[2+d] + num/c.s[d]
							}
							if ok {
								want += x.Float32s()[(n*cin+ci)*inSz+idx] * w.Float32s()[(ci*mg+mm)*kSz+k]
							}
						}
					}
					g := got.Float32s()[(n*mg*c.group+mo)*outSz+o]
					if d := maxRelDiff([]float32{g}, []float32{want}); d > 1e-5 {
						t.Fatalf("case %d: output (%d, %d, %v) is %g, want %g", i, n, mo, oc, g, want)
					}
				}
			}
		}
	}
}

// TestConvTransposePadSplit: an odd total padding goes to the end for
// SAME_UPPER at opset 11 (its spec, ONNX's test) and to the start at
// opset 1 (ONNX Runtime's rule for it); an output_shape larger than the
// full output extends it with the bias at the end.
func TestConvTransposePadSplit(t *testing.T) {
	x := TensorFrom([]int{1, 1, 3}, []float32{1, 2, 3})
	w := TensorFrom([]int{1, 1, 3}, []float32{1, 10, 100})
	// Full output (7): 1 12 123 230 300 ... with stride 2: positions 0..6.
	run := func(opset int, attrs map[string]Attr) []float32 {
		m, feed := typedNodeGraph(t, opset, "ConvTranspose", attrs, []*Tensor{x, w}, nil, Float32)
		return run1(t, m, feed)[0].Float32s()
	}
	full := run(13, map[string]Attr{"strides": ints(2)})
	if want := []float32{1, 10, 102, 20, 203, 30, 300}; !slices.Equal(full, want) {
		t.Fatalf("full output %v, want %v", full, want)
	}
	if got := run(13, map[string]Attr{"strides": ints(2), "auto_pad": stringAttr("SAME_UPPER")}); !slices.Equal(got, full[:6]) {
		t.Errorf("opset 11 SAME_UPPER: %v, want %v", got, full[:6])
	}
	if got := run(13, map[string]Attr{"strides": ints(2), "auto_pad": stringAttr("SAME_LOWER")}); !slices.Equal(got, full[1:]) {
		t.Errorf("opset 11 SAME_LOWER: %v, want %v", got, full[1:])
	}
	if got := run(10, map[string]Attr{"strides": ints(2), "auto_pad": stringAttr("SAME_UPPER")}); !slices.Equal(got, full[1:]) {
		t.Errorf("opset 1 SAME_UPPER: %v, want %v", got, full[1:])
	}
	if got := run(13, map[string]Attr{"strides": ints(2), "output_shape": ints(9)}); !slices.Equal(got, append(slices.Clone(full), 0, 0)) {
		t.Errorf("output_shape 9: %v", got)
	}
	if got := run(13, map[string]Attr{"strides": ints(2), "output_shape": ints(4)}); !slices.Equal(got, full[2:6]) {
		t.Errorf("opset 11 output_shape 4: %v, want %v", got, full[2:6])
	}
	if got := run(10, map[string]Attr{"strides": ints(2), "output_shape": ints(4)}); !slices.Equal(got, full[1:5]) {
		t.Errorf("opset 1 output_shape 4: %v, want %v", got, full[1:5])
	}
}

func benchConvTranspose(b *testing.B, c, h, m int) {
	r := rand.New(rand.NewPCG(1, 1))
	x := randTensor(r, 1, c, h, h)
	w := randTensor(r, c, m, 2, 2)
	bias := randTensor(r, m)
	attrs := map[string]Attr{"strides": ints(2, 2)}
	mod, feed := typedNodeGraph(b, 13, "ConvTranspose", attrs, []*Tensor{x, w, bias}, []bool{false, true, true}, Float32)
	out := run1(b, mod, feed)
	for b.Loop() {
		if _, err := mod.Run(b.Context(), feed, out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(2*float64(c*m*4*h*h)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// U-Net decoder up-sampling: 2×2, stride 2.
func BenchmarkConvTransposeUNet256(b *testing.B) { benchConvTranspose(b, 256, 32, 128) }
func BenchmarkConvTransposeUNet64(b *testing.B)  { benchConvTranspose(b, 128, 64, 64) }

// TestPoolNormDegenerate: empty batches, empty channels and empty
// weights load and run (or are refused) without panicking.
func TestPoolNormDegenerate(t *testing.T) {
	r := rand.New(rand.NewPCG(35, 36))
	pool := map[string]Attr{"kernel_shape": ints(2, 2)}
	for _, c := range []struct {
		op     string
		attrs  map[string]Attr
		ins    []*Tensor
		consts []bool
	}{
		{"MaxPool", pool, []*Tensor{randTensor(r, 0, 3, 5, 5)}, nil},
		{"AveragePool", pool, []*Tensor{randTensor(r, 2, 0, 5, 5)}, nil},
		{"MaxPool", pool, []*Tensor{randTensor(r, 1, 1, 1, 5)}, nil},
		{"GlobalAveragePool", nil, []*Tensor{randTensor(r, 1, 2, 0, 3)}, nil},
		{"ConvTranspose", nil, []*Tensor{randTensor(r, 1, 2, 3, 3), randTensor(r, 2, 0, 2, 2)}, []bool{false, true}},
		{"ConvTranspose", nil, []*Tensor{randTensor(r, 0, 2, 3, 3), randTensor(r, 2, 1, 2, 2)}, []bool{false, true}},
		{"ConvTranspose", nil, []*Tensor{randTensor(r, 1, 0, 3, 3), randTensor(r, 0, 1, 2, 2)}, []bool{false, true}},
		{"ConvTranspose", map[string]Attr{"group": intAttr(1 << 40)}, []*Tensor{randTensor(r, 1, 0, 3, 3), randTensor(r, 0, 1, 2, 2)}, nil},
		{"BatchNormalization", nil, []*Tensor{randTensor(r, 0, 3, 2), randTensor(r, 3), randTensor(r, 3), randTensor(r, 3), randTensor(r, 3)}, nil},
		{"InstanceNormalization", nil, []*Tensor{randTensor(r, 1, 2, 0), randTensor(r, 2), randTensor(r, 2)}, nil},
		{"LRN", map[string]Attr{"size": intAttr(3)}, []*Tensor{randTensor(r, 1, 0, 4)}, nil},
	} {
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("%s %v: panic %v", c.op, c.ins[0].Shape, p)
				}
			}()
			g := &Graph{Opset: 13}
			tensors := map[string]*Tensor{}
			n := Node{Name: "n", Op: c.op, Attrs: c.attrs, Outputs: []string{"y"}}
			var feed []*Tensor
			for i, x := range c.ins {
				name := fmt.Sprint("in", i)
				n.Inputs = append(n.Inputs, name)
				if c.consts != nil && c.consts[i] {
					tensors[name] = x
					continue
				}
				shape := make([]int64, len(x.Shape))
				for j, d := range x.Shape {
					shape[j] = int64(d)
				}
				g.Inputs = append(g.Inputs, Value{Name: name, DType: x.DType, Shape: shape})
				feed = append(feed, x)
			}
			g.Outputs = []Value{{Name: "y", DType: Float32}}
			g.Nodes = []Node{n}
			m, err := Load(g, tensors, nil)
			if err != nil {
				return
			}
			_, _ = m.Run(t.Context(), feed, nil)
		}()
	}
}
