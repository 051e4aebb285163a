package graph

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// poolCase is one pooling geometry: spatial input sizes and, per axis,
// kernel, stride, dilation and the two pads.
type poolCase struct {
	n, c             int
	in               []int
	k, s, d, pb, pe  []int
	ceil, includePad bool
}

// naivePool is the spec, written out with no tables: the output size by
// the floor/ceil formula (a ceil window must start inside the input or its
// start padding), each window's taps inside the input, the average over
// the taps inside the input or, with count_include_pad, inside the padded
// input.
func naivePool(x []float32, pc poolCase, mode poolMode) ([]int, []float32, []int64) {
	sp := len(pc.in)
	out := make([]int, sp)
	for i := range sp {
		ext := (pc.k[i]-1)*pc.d[i] + 1
		span := pc.in[i] + pc.pb[i] + pc.pe[i] - ext
		o := span/pc.s[i] + 1
		if pc.ceil && span%pc.s[i] != 0 {
			o++
			if (o-1)*pc.s[i] >= pc.in[i]+pc.pb[i] {
				o--
			}
		}
		out[i] = o
	}
	inSz, outSz := prod(pc.in), prod(out)
	y := make([]float32, pc.n*pc.c*outSz)
	idx := make([]int64, len(y))
	for p := 0; p < pc.n*pc.c; p++ {
		for o := 0; o < outSz; o++ {
			oc := make([]int, sp)
			r := o
			for d := sp - 1; d >= 0; d-- {
				oc[d] = r % out[d]
				r /= out[d]
			}
			best, bestAt := float32(math.Inf(-1)), -1
			sum, cnt, padCnt := 0.0, 0, 0
			kc := make([]int, sp)
			for {
				pos, inside, inPad := 0, true, true
				for d := range sp {
					i := oc[d]*pc.s[d] - pc.pb[d] + kc[d]*pc.d[d]
					if i < 0 || i >= pc.in[d] {
						inside = false
					}
					if i < -pc.pb[d] || i >= pc.in[d]+pc.pe[d] {
						inPad = false
					}
					pos = pos*pc.in[d] + i
				}
				if inPad {
					padCnt++
				}
				if inside {
					v := x[p*inSz+pos]
					if bestAt < 0 || v > best {
						best, bestAt = max(best, v), pos
					}
					sum += float64(v)
					cnt++
				}
				d := sp - 1
				for ; d >= 0; d-- {
					kc[d]++
					if kc[d] < pc.k[d] {
						break
					}
					kc[d] = 0
				}
				if d < 0 {
					break
				}
			}
			switch mode {
			case poolMax:
				y[p*outSz+o] = best
				idx[p*outSz+o] = int64(p*inSz + bestAt)
			case poolAvg:
				if pc.includePad {
					cnt = padCnt
				}
				y[p*outSz+o] = float32(sum / float64(cnt))
			}
		}
	}
	return append([]int{pc.n, pc.c}, out...), y, idx
}

func (pc poolCase) attrs(mode poolMode) map[string]Attr {
	i64 := func(v []int) []int64 {
		out := make([]int64, len(v))
		for i, d := range v {
			out[i] = int64(d)
		}
		return out
	}
	a := map[string]Attr{
		"kernel_shape": ints(i64(pc.k)...),
		"strides":      ints(i64(pc.s)...),
		"pads":         ints(append(i64(pc.pb), i64(pc.pe)...)...),
	}
	if pc.ceil {
		a["ceil_mode"] = intAttr(1)
	}
	if mode == poolMax {
		a["dilations"] = ints(i64(pc.d)...)
	}
	if pc.includePad {
		a["count_include_pad"] = intAttr(1)
	}
	return a
}

// randPoolCase draws a pool of 1 to 3 spatial axes whose pads stay below
// the window extent (as the spec requires).
func randPoolCase(r *rand.Rand, sp int, dilate bool) poolCase {
	pc := poolCase{n: 1 + r.IntN(2), c: 1 + r.IntN(3), ceil: r.IntN(2) == 0, includePad: r.IntN(2) == 0}
	for range sp {
		k := 1 + r.IntN(4)
		d := 1
		if dilate {
			d = 1 + r.IntN(2)
		}
		ext := (k-1)*d + 1
		in := ext + r.IntN(12)
		pc.in = append(pc.in, in)
		pc.k = append(pc.k, k)
		pc.s = append(pc.s, 1+r.IntN(3))
		pc.d = append(pc.d, d)
		pc.pb = append(pc.pb, r.IntN(ext))
		pc.pe = append(pc.pe, r.IntN(ext))
	}
	return pc
}

// TestPoolMatchesNaive runs MaxPool (the row kernel, and the N-D path
// with Indices) and AveragePool over random 1-D, 2-D and 3-D geometries
// against naivePool.
func TestPoolMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 300 {
		sp := 1 + i%3
		mode := poolMode(i / 3 % 2)
		pc := randPoolCase(r, sp, mode == poolMax)
		t.Run(fmt.Sprintf("%d", i), func(t *testing.T) {
			shape := append([]int{pc.n, pc.c}, pc.in...)
			x := randTensor(r, shape...)
			wantShape, want, wantIdx := naivePool(x.Float32s(), pc, mode)
			op := "MaxPool"
			if mode == poolAvg {
				op = "AveragePool"
			}
			outs := []DType{Float32}
			if mode == poolMax && i%2 == 0 {
				outs = append(outs, Int64)
			}
			m, feed := typedNodeGraph(t, 13, op, pc.attrs(mode), []*Tensor{x}, nil, outs...)
			got := run1(t, m, feed)
			if !slices.Equal(got[0].Shape, wantShape) {
				t.Fatalf("%+v: shape %v, want %v", pc, got[0].Shape, wantShape)
			}
			if d := maxRelDiff(got[0].Float32s(), want); d > 1e-5 {
				t.Fatalf("%+v: max rel diff %g", pc, d)
			}
			if len(outs) == 2 && !slices.Equal(Data[int64](got[1]), wantIdx) {
				t.Fatalf("%+v: indices %v, want %v", pc, Data[int64](got[1]), wantIdx)
			}
		})
	}
}

// TestMaxPoolIndicesColumnMajor checks storage_order 1 on a 2-D pool: the
// index of each maximum has its spatial axes in column-major order.
func TestMaxPoolIndicesColumnMajor(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	x := randTensor(r, 2, 3, 7, 5)
	attrs := map[string]Attr{"kernel_shape": ints(3, 2), "strides": ints(2, 1), "pads": ints(1, 0, 1, 1), "storage_order": intAttr(1)}
	m, feed := typedNodeGraph(t, 13, "MaxPool", attrs, []*Tensor{x}, nil, Float32, Int64)
	got := run1(t, m, feed)
	pc := poolCase{n: 2, c: 3, in: []int{7, 5}, k: []int{3, 2}, s: []int{2, 1}, d: []int{1, 1}, pb: []int{1, 0}, pe: []int{1, 1}}
	_, want, rowIdx := naivePool(x.Float32s(), pc, poolMax)
	if d := maxRelDiff(got[0].Float32s(), want); d != 0 {
		t.Fatalf("values differ by %g", d)
	}
	for i, ri := range rowIdx {
		plane, pos := ri/35, ri%35
		h, w := pos/5, pos%5
		if wantCol := plane*35 + w*7 + h; Data[int64](got[1])[i] != wantCol {
			t.Fatalf("index %d: %d, want %d", i, Data[int64](got[1])[i], wantCol)
		}
	}
}

// TestMaxPoolInt8 runs the row kernel on int8 and uint8 (opset 12).
func TestMaxPoolInt8(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	pc := poolCase{n: 1, c: 2, in: []int{9, 8}, k: []int{3, 3}, s: []int{2, 2}, d: []int{1, 1}, pb: []int{1, 1}, pe: []int{1, 1}}
	x := randTensor(r, 1, 2, 9, 8)
	xf := x.Float32s()
	i8, u8 := NewTensor(Int8, x.Shape...), NewTensor(Uint8, x.Shape...)
	for i := range xf {
		xf[i] = float32(r.IntN(256) - 128)
		Data[int8](i8)[i] = int8(xf[i])
		Data[uint8](u8)[i] = uint8(xf[i] + 128)
	}
	_, want, _ := naivePool(xf, pc, poolMax)
	for _, in := range []*Tensor{i8, u8} {
		m, feed := typedNodeGraph(t, 13, "MaxPool", pc.attrs(poolMax), []*Tensor{in}, nil, in.DType)
		got := run1(t, m, feed)[0]
		for i, w := range want {
			var g float32
			if in.DType == Int8 {
				g = float32(Data[int8](got)[i])
			} else {
				g = float32(Data[uint8](got)[i]) - 128
			}
			if g != w {
				t.Fatalf("%v: element %d is %v, want %v", in.DType, i, g, w)
			}
		}
	}
	// Before opset 12 MaxPool is float only.
	g := &Graph{Opset: 11, Inputs: []Value{{Name: "x", DType: Int8, Shape: []int64{1, 2, 9, 8}}}, Outputs: []Value{{Name: "y", DType: Int8}},
		Nodes: []Node{{Name: "n", Op: "MaxPool", Inputs: []string{"x"}, Outputs: []string{"y"}, Attrs: pc.attrs(poolMax)}}}
	if m, err := Load(g, nil, nil); err == nil {
		if _, err := m.Run(t.Context(), []*Tensor{i8}, nil); err == nil {
			t.Fatal("int8 MaxPool at opset 11 ran")
		}
	}
}

// TestGlobalPools checks GlobalAveragePool, GlobalMaxPool and GlobalLpPool
// against plain loops.
func TestGlobalPools(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	x := randTensor(r, 2, 3, 5, 7)
	xs := x.Float32s()
	for _, op := range []string{"GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"} {
		m, feed := nodeGraph(t, 13, op, nil, []*Tensor{x}, nil, 1)
		got := run1(t, m, feed)[0]
		if !slices.Equal(got.Shape, []int{2, 3, 1, 1}) {
			t.Fatalf("%s: shape %v", op, got.Shape)
		}
		for p := range 6 {
			plane := xs[p*35 : (p+1)*35]
			var want float64
			switch op {
			case "GlobalAveragePool":
				for _, v := range plane {
					want += float64(v)
				}
				want /= 35
			case "GlobalMaxPool":
				want = math.Inf(-1)
				for _, v := range plane {
					want = math.Max(want, float64(v))
				}
			case "GlobalLpPool":
				for _, v := range plane {
					want += float64(v) * float64(v)
				}
				want = math.Sqrt(want)
			}
			if g := float64(got.Float32s()[p]); math.Abs(g-want) > 1e-5*math.Max(1, math.Abs(want)) {
				t.Fatalf("%s: plane %d is %g, want %g", op, p, g, want)
			}
		}
	}
}

// TestLpPool checks LpPool (p = 1 and 3, the N-D path) against a loop.
func TestLpPool(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	x := randTensor(r, 1, 2, 6, 5)
	for _, p := range []int64{1, 3} {
		attrs := map[string]Attr{"kernel_shape": ints(2, 3), "strides": ints(2, 1), "pads": ints(1, 1, 0, 1), "p": intAttr(p)}
		m, feed := nodeGraph(t, 13, "LpPool", attrs, []*Tensor{x}, nil, 1)
		got := run1(t, m, feed)[0]
		if !slices.Equal(got.Shape, []int{1, 2, 3, 5}) {
			t.Fatalf("shape %v", got.Shape)
		}
		for c := range 2 {
			for oy := range 3 {
				for ox := range 5 {
					acc := 0.0
					for ky := range 2 {
						for kx := range 3 {
							iy, ix := oy*2-1+ky, ox-1+kx
							if iy >= 0 && iy < 6 && ix >= 0 && ix < 5 {
								acc += math.Pow(math.Abs(float64(x.Float32s()[c*30+iy*5+ix])), float64(p))
							}
						}
					}
					want := math.Pow(acc, 1/float64(p))
					g := float64(got.Float32s()[c*15+oy*5+ox])
					if math.Abs(g-want) > 1e-5*math.Max(1, want) {
						t.Fatalf("p %d: (%d, %d, %d) is %g, want %g", p, c, oy, ox, g, want)
					}
				}
			}
		}
	}
}

// TestPoolAllocs: the pool kernels allocate nothing per run: the 2-D
// kernels, the N-D path (3-D, Indices, LpPool) and the global pools.
func TestPoolAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	x := randTensor(r, 1, 8, 30, 30)
	x3 := randTensor(r, 1, 2, 6, 7, 8)
	a2 := map[string]Attr{"kernel_shape": ints(3, 3), "strides": ints(2, 2), "pads": ints(1, 1, 1, 1)}
	a3 := map[string]Attr{"kernel_shape": ints(2, 3, 2), "strides": ints(2, 1, 2)}
	for _, c := range []struct {
		op    string
		attrs map[string]Attr
		x     *Tensor
		outs  []DType
	}{
		{"MaxPool", a2, x, []DType{Float32}},
		{"AveragePool", a2, x, []DType{Float32}},
		{"MaxPool", a2, x, []DType{Float32, Int64}},
		{"MaxPool", a3, x3, []DType{Float32}},
		{"AveragePool", a3, x3, []DType{Float32}},
		{"LpPool", a2, x, []DType{Float32}},
		{"GlobalAveragePool", nil, x, []DType{Float32}},
		{"GlobalMaxPool", nil, x3, []DType{Float32}},
	} {
		m, feed := typedNodeGraph(t, 13, c.op, c.attrs, []*Tensor{c.x}, nil, c.outs...)
		if a := steadyAllocs(t, m, feed); a != 0 {
			t.Errorf("%s %v: %v allocations per run", c.op, c.x.Shape, a)
		}
	}
}

// steadyAllocs runs m once, then counts the allocations of a run into the
// same outputs (0 for kernels that allocate nothing; always 0 under the
// race detector, which defeats the exec pool).
func steadyAllocs(t *testing.T, m *Model, feed []*Tensor) float64 {
	t.Helper()
	out := run1(t, m, feed)
	a := testing.AllocsPerRun(20, func() {
		if _, err := m.Run(t.Context(), feed, out); err != nil {
			t.Fatal(err)
		}
	})
	if raceEnabled {
		return 0
	}
	return a
}

func BenchmarkMaxPoolResNet(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	x := randTensor(r, 1, 64, 112, 112)
	attrs := map[string]Attr{"kernel_shape": ints(3, 3), "strides": ints(2, 2), "pads": ints(1, 1, 1, 1)}
	m, feed := nodeGraph(b, 13, "MaxPool", attrs, []*Tensor{x}, nil, 1)
	benchRun(b, m, feed, x.Numel())
}

func BenchmarkAvgPool2x2(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	x := randTensor(r, 1, 64, 112, 112)
	attrs := map[string]Attr{"kernel_shape": ints(2, 2), "strides": ints(2, 2)}
	m, feed := nodeGraph(b, 13, "AveragePool", attrs, []*Tensor{x}, nil, 1)
	benchRun(b, m, feed, x.Numel())
}

// typedNodeGraph is loadOp under the name the pooling tests use.
func typedNodeGraph(t testing.TB, opset int, op string, attrs map[string]Attr, ins []*Tensor, consts []bool, outs ...DType) (*Model, []*Tensor) {
	t.Helper()
	return loadOp(t, opset, op, attrs, ins, consts, outs...)
}

// benchRun times steady-state runs of m into reused outputs, reporting the
// input's bytes per second for an input of n float32s.
func benchRun(b *testing.B, m *Model, feed []*Tensor, n int) {
	out := run1(b, m, feed)
	b.SetBytes(int64(4 * n))
	for b.Loop() {
		if _, err := m.Run(b.Context(), feed, out); err != nil {
			b.Fatal(err)
		}
	}
}

// TestMaxPoolNaN: a NaN makes the maximum of every window holding it NaN,
// on the 2-D kernel and on the N-D path (Indices) alike.
func TestMaxPoolNaN(t *testing.T) {
	x := TensorFrom([]int{1, 1, 3, 3}, []float32{1, 2, 3, 4, float32(math.NaN()), 6, 7, 8, 9})
	attrs := map[string]Attr{"kernel_shape": ints(2, 2)}
	m1, f1 := typedNodeGraph(t, 13, "MaxPool", attrs, []*Tensor{x}, nil, Float32)
	m2, f2 := typedNodeGraph(t, 13, "MaxPool", attrs, []*Tensor{x}, nil, Float32, Int64)
	for _, got := range [][]float32{run1(t, m1, f1)[0].Float32s(), run1(t, m2, f2)[0].Float32s()} {
		for i, v := range got {
			if !math.IsNaN(float64(v)) {
				t.Fatalf("window %d: %v, want NaN", i, v)
			}
		}
	}
	if idx := Data[int64](run1(t, m2, f2)[1]); !slices.Equal(idx, []int64{4, 4, 4, 4}) {
		t.Fatalf("indices %v, want the NaN's", idx)
	}
}
