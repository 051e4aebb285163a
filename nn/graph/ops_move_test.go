package graph

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func i64(v ...int64) *Tensor { return TensorFrom([]int{len(v)}, v) }

// arange returns an INT64 tensor 0, 1, … of the shape.
func arange(shape ...int) *Tensor {
	t := NewTensor(Int64, shape...)
	for i := range t.Int64s() {
		t.Int64s()[i] = int64(i)
	}
	return t
}

// runOp runs a one-node graph whose inputs after the first are constants
// and whose output has the first input's type.
func runMoveOp(t *testing.T, opset int, op string, attrs map[string]Attr, ins ...*Tensor) []*Tensor {
	t.Helper()
	consts := make([]bool, len(ins))
	for i := 1; i < len(ins); i++ {
		consts[i] = true
	}
	m, feed := typedGraph(t, opset, op, attrs, ins, consts, ins[0].DType, 1)
	return run1(t, m, feed)
}

// typedGraph is loadOp with nOut outputs of type dt.
func typedGraph(t testing.TB, opset int, op string, attrs map[string]Attr, ins []*Tensor, consts []bool, dt DType, nOut int) (*Model, []*Tensor) {
	t.Helper()
	return loadOp(t, opset, op, attrs, ins, consts, repeat(dt, nOut)...)
}

func TestSliceStepsAndClamping(t *testing.T) {
	const M, m = math.MaxInt64, math.MinInt64
	x := arange(10)
	cases := []struct {
		start, end, step int64
		want             []int64
	}{
		{8, 2, -2, []int64{8, 6, 4}},
		{-1, -11, -1, []int64{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}},
		{20, -100, -3, []int64{9, 6, 3, 0}},
		{M, m, -1, []int64{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}},
		{0, M, 3, []int64{0, 3, 6, 9}},
		{-3, 100, 1, []int64{7, 8, 9}},
		{5, 5, 1, []int64{}},
		{2, 8, M, []int64{2}},
		{9, -100, m, []int64{9}},
		{-100, 3, 1, []int64{0, 1, 2}},
		{3, -100, 1, []int64{}},
		{0, -1, -1, []int64{}},
		{-1, 0, -4, []int64{9, 5, 1}},
	}
	for _, c := range cases {
		got := runMoveOp(t, 13, "Slice", nil, x, i64(c.start), i64(c.end), i64(0), i64(c.step))[0]
		if !slices.Equal(got.Int64s(), c.want) || len(got.Shape) != 1 || got.Shape[0] != len(c.want) {
			t.Errorf("x[%d:%d:%d] = %v %v, want %v", c.start, c.end, c.step, got.Shape, got.Int64s(), c.want)
		}
	}
	// Two axes, negative axes and steps; default axes; opset 9 attributes.
	y := arange(4, 5)
	got := runMoveOp(t, 13, "Slice", nil, y, i64(4, 3), i64(-6, -100), i64(-1, 0), i64(-2, -1))[0]
	if want := []int64{19, 17, 15, 14, 12, 10, 9, 7, 5, 4, 2, 0}; !slices.Equal(got.Int64s(), want) || !slices.Equal(got.Shape, []int{4, 3}) {
		t.Errorf("y[3::-1, 4:-6:-2] = %v %v, want [4 3] %v", got.Shape, got.Int64s(), want)
	}
	got = runMoveOp(t, 13, "Slice", nil, y, i64(-10, 1), i64(10, -1), nil, i64(2, 1))[0]
	if want := []int64{1, 2, 3, 11, 12, 13}; !slices.Equal(got.Int64s(), want) {
		t.Errorf("y[-10:10:2, 1:-1] = %v, want %v", got.Int64s(), want)
	}
	got = runMoveOp(t, 9, "Slice", map[string]Attr{"starts": ints(1, 1), "ends": ints(1000, 3), "axes": ints(0, 1)}, y)[0]
	if want := []int64{6, 7, 11, 12, 16, 17}; !slices.Equal(got.Int64s(), want) {
		t.Errorf("opset 9 y[1:, 1:3] = %v, want %v", got.Int64s(), want)
	}
	// Step 0 is an error, not a panic.
	g := &Graph{Opset: 13, Inputs: []Value{{Name: "x", DType: Int64, Shape: []int64{10}}}, Outputs: []Value{{Name: "y", DType: Int64}},
		Nodes: []Node{{Op: "Slice", Inputs: []string{"x", "s", "e", "a", "st"}, Outputs: []string{"y"}}}}
	if _, err := Load(g, map[string]*Tensor{"s": i64(0), "e": i64(5), "a": i64(0), "st": i64(0)}, nil); err == nil {
		t.Error("Slice with step 0 loaded")
	}
}

// naiveTranspose permutes x element by element.
func naiveTranspose(x *Tensor, perm []int) []byte {
	esz := x.DType.Size()
	r := len(x.Shape)
	out := make([]int, r)
	for i, p := range perm {
		out[i] = x.Shape[p]
	}
	st := rowStrides(x.Shape)
	res := make([]byte, len(x.data))
	idx := make([]int, r)
	for o := 0; o < x.Numel(); o++ {
		rem := o
		for d := r - 1; d >= 0; d-- {
			idx[d] = rem % out[d]
			rem /= out[d]
		}
		src := 0
		for d := range idx {
			src += idx[d] * st[perm[d]]
		}
		copy(res[o*esz:(o+1)*esz], x.data[src*esz:(src+1)*esz])
	}
	return res
}

func randBytesTensor(r *rand.Rand, dt DType, shape ...int) *Tensor {
	t := NewTensor(dt, shape...)
	for i := range t.data {
		t.data[i] = byte(r.Uint32())
	}
	if dt == Bool {
		for i := range t.data {
			t.data[i] &= 1
		}
	}
	return t
}

func TestTransposeMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	perms := [][]int{}
	var gen func(p []int, used []bool)
	gen = func(p []int, used []bool) {
		if len(p) == 4 {
			perms = append(perms, slices.Clone(p))
			return
		}
		for i := 0; i < 4; i++ {
			if !used[i] {
				used[i] = true
				gen(append(p, i), used)
				used[i] = false
			}
		}
	}
	gen(nil, make([]bool, 4))
	dts := []DType{Float32, Uint8, Int16, Float64, Bool}
	for trial := 0; trial < 3; trial++ {
		shape := []int{1 + r.IntN(4), 1 + r.IntN(5), 1 + r.IntN(19), 1 + r.IntN(23)}
		if trial == 2 {
			shape[0] = 1 // a size-1 axis anywhere in the permutation
		}
		for _, perm := range perms {
			dt := dts[r.IntN(len(dts))]
			x := randBytesTensor(r, dt, shape...)
			p := make([]int64, 4)
			for i, v := range perm {
				p[i] = int64(v)
			}
			got := runMoveOp(t, 13, "Transpose", map[string]Attr{"perm": ints(p...)}, x)[0]
			if want := naiveTranspose(x, perm); !slices.Equal(got.data, want) {
				t.Fatalf("%v %v perm %v: differs from the naive transpose", dt, shape, perm)
			}
		}
	}
	// Big enough for the tiled path with partial blocks; rank 6; default perm.
	for _, c := range []struct {
		shape []int
		perm  []int
	}{
		{[]int{67, 131}, []int{1, 0}},
		{[]int{2, 35, 3, 17}, []int{0, 2, 3, 1}},
		{[]int{2, 17, 35, 3}, []int{0, 3, 1, 2}},
		{[]int{2, 3, 2, 4, 3, 5}, []int{5, 0, 3, 1, 4, 2}},
		{[]int{3, 4, 5}, nil},
	} {
		for _, dt := range []DType{Float32, Uint8, Int16, Int64} {
			x := randBytesTensor(r, dt, c.shape...)
			var attrs map[string]Attr
			perm := c.perm
			if perm == nil {
				perm = []int{2, 1, 0}
			} else {
				p := make([]int64, len(perm))
				for i, v := range perm {
					p[i] = int64(v)
				}
				attrs = map[string]Attr{"perm": ints(p...)}
			}
			got := runMoveOp(t, 13, "Transpose", attrs, x)[0]
			if want := naiveTranspose(x, perm); !slices.Equal(got.data, want) {
				t.Fatalf("%v %v perm %v: differs from the naive transpose", dt, c.shape, perm)
			}
		}
	}
}

func TestPadModes(t *testing.T) {
	z := arange(2, 3)
	for _, c := range []struct {
		opset int
		mode  string
		pads  []int64
		value int64
		axes  []int64
		shape []int
		want  []int64
	}{
		{13, "reflect", []int64{1, 2, 2, 3}, 0, nil, []int{5, 8}, []int64{
			5, 4, 3, 4, 5, 4, 3, 4, 2, 1, 0, 1, 2, 1, 0, 1, 5, 4, 3, 4, 5, 4, 3, 4, 2, 1, 0, 1, 2, 1, 0, 1, 5, 4, 3, 4, 5, 4, 3, 4}},
		{13, "edge", []int64{0, 3, 1, 1}, 0, nil, []int{3, 7}, []int64{
			0, 0, 0, 0, 1, 2, 2, 3, 3, 3, 3, 4, 5, 5, 3, 3, 3, 3, 4, 5, 5}},
		{13, "constant", []int64{1, -1, 0, 2}, 7, nil, []int{3, 4}, []int64{7, 7, 7, 7, 1, 2, 7, 7, 4, 5, 7, 7}},
		{18, "constant", []int64{-1, 2}, 7, []int64{-1}, []int{2, 4}, []int64{1, 2, 7, 7, 4, 5, 7, 7}},
	} {
		ins := []*Tensor{z, i64(c.pads...), TensorFrom([]int{}, []int64{c.value})}
		if c.axes != nil {
			ins = append(ins, i64(c.axes...))
		}
		got := runMoveOp(t, c.opset, "Pad", map[string]Attr{"mode": stringAttr(c.mode)}, ins...)[0]
		if !slices.Equal(got.Shape, c.shape) || !slices.Equal(got.Int64s(), c.want) {
			t.Errorf("%s pads %v: %v %v, want %v %v", c.mode, c.pads, got.Shape, got.Int64s(), c.shape, c.want)
		}
	}
	// Opset 2: attributes, a float value on float data.
	x := TensorFrom([]int{1, 2}, []float32{1, 2})
	got := runMoveOp(t, 9, "Pad", map[string]Attr{"pads": ints(0, 1, 0, 2), "value": floatAttr(1.5)}, x)[0]
	if want := []float32{1.5, 1, 2, 1.5, 1.5}; !slices.Equal(got.Float32s(), want) {
		t.Errorf("opset 9 Pad: %v, want %v", got.Float32s(), want)
	}
}

func TestTileExpandConcatSplit(t *testing.T) {
	x := arange(2, 3)
	got := runMoveOp(t, 13, "Tile", nil, x, i64(2, 2))[0]
	want := []int64{0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5, 0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5}
	if !slices.Equal(got.Int64s(), want) || !slices.Equal(got.Shape, []int{4, 6}) {
		t.Errorf("Tile: %v %v", got.Shape, got.Int64s())
	}
	col := arange(3, 1)
	got = runMoveOp(t, 13, "Expand", nil, col, i64(2, 1, 4))[0]
	want = []int64{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2}
	if !slices.Equal(got.Int64s(), want) || !slices.Equal(got.Shape, []int{2, 3, 4}) {
		t.Errorf("Expand: %v %v", got.Shape, got.Int64s())
	}
	// Concat on the middle axis of three inputs, one empty.
	a, b, c := arange(2, 1, 2), NewTensor(Int64, 2, 0, 2), arange(2, 2, 2)
	m, feed := typedGraph(t, 13, "Concat", map[string]Attr{"axis": intAttr(-2)}, []*Tensor{a, b, c}, nil, Int64, 1)
	got = run1(t, m, feed)[0]
	want = []int64{0, 1, 0, 1, 2, 3, 2, 3, 4, 5, 6, 7}
	if !slices.Equal(got.Int64s(), want) || !slices.Equal(got.Shape, []int{2, 3, 2}) {
		t.Errorf("Concat: %v %v", got.Shape, got.Int64s())
	}
	// Split 18 with num_outputs: parts of ⌈7/3⌉ = 3, the last one smaller.
	m, feed = typedGraph(t, 18, "Split", map[string]Attr{"axis": intAttr(1), "num_outputs": intAttr(3)}, []*Tensor{arange(2, 7)}, nil, Int64, 3)
	outs := run1(t, m, feed)
	wants := [][]int64{{0, 1, 2, 7, 8, 9}, {3, 4, 5, 10, 11, 12}, {6, 13}}
	for i, o := range outs {
		if !slices.Equal(o.Int64s(), wants[i]) {
			t.Errorf("Split output %d: %v %v, want %v", i, o.Shape, o.Int64s(), wants[i])
		}
	}
	// Split 13 with the split input.
	m, feed = typedGraph(t, 13, "Split", map[string]Attr{"axis": intAttr(-1)}, []*Tensor{arange(2, 7), i64(1, 0, 6)}, []bool{false, true}, Int64, 3)
	outs = run1(t, m, feed)
	wants = [][]int64{{0, 7}, {}, {1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13}}
	for i, o := range outs {
		if !slices.Equal(o.Int64s(), wants[i]) {
			t.Errorf("Split output %d: %v %v, want %v", i, o.Shape, o.Int64s(), wants[i])
		}
	}
}

func TestDepthToSpaceRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	x := randTensor(r, 2, 12, 3, 5)
	for _, mode := range []string{"DCR", "CRD"} {
		d := runMoveOp(t, 13, "DepthToSpace", map[string]Attr{"blocksize": intAttr(2), "mode": stringAttr(mode)}, x)[0]
		if !slices.Equal(d.Shape, []int{2, 3, 6, 10}) {
			t.Fatalf("shape %v", d.Shape)
		}
		if mode == "DCR" {
			back := runMoveOp(t, 13, "SpaceToDepth", map[string]Attr{"blocksize": intAttr(2)}, d)[0]
			if !slices.Equal(back.Float32s(), x.Float32s()) {
				t.Errorf("SpaceToDepth(DepthToSpace(x)) != x")
			}
		}
		// Element check against the definition.
		for n := 0; n < 2; n++ {
			for c := 0; c < 3; c++ {
				for h := 0; h < 6; h++ {
					for w := 0; w < 10; w++ {
						bh, bw := h%2, w%2
						ic := (bh*2+bw)*3 + c
						if mode == "CRD" {
							ic = c*4 + bh*2 + bw
						}
						want := x.Float32s()[((n*12+ic)*3+h/2)*5+w/2]
						if got := d.Float32s()[((n*3+c)*6+h)*10+w]; got != want {
							t.Fatalf("%s [%d %d %d %d] = %g, want %g", mode, n, c, h, w, got, want)
						}
					}
				}
			}
		}
	}
}

func TestGatherOutOfRange(t *testing.T) {
	x := arange(3, 4)
	for _, op := range []string{"Gather", "GatherElements"} {
		for _, dt := range []DType{Int64, Int32} {
			for _, bad := range []int64{3, -4, 1 << 40} {
				idx := NewTensor(dt, 2, 2)
				if dt == Int64 {
					copy(idx.Int64s(), []int64{0, bad, 1, 2})
				} else {
					b32 := int32(bad)
					if bad > math.MaxInt32 {
						b32 = math.MinInt32
					}
					copy(Data[int32](idx), []int32{0, b32, 1, 2})
				}
				m, feed := typedGraph(t, 13, op, map[string]Attr{"axis": intAttr(0)}, []*Tensor{x, idx}, nil, Int64, 1)
				out, err := m.Run(context.Background(), feed, nil)
				if err == nil {
					t.Errorf("%s %v with index %d: %v, want an error", op, dt, bad, out[0].Int64s())
				}
			}
		}
	}
	// In range, negative indices, axis 1, int32.
	idx := TensorFrom([]int{2}, []int32{-1, 1})
	got := runMoveOp(t, 13, "Gather", map[string]Attr{"axis": intAttr(1)}, x, idx)[0]
	if want := []int64{3, 1, 7, 5, 11, 9}; !slices.Equal(got.Int64s(), want) || !slices.Equal(got.Shape, []int{3, 2}) {
		t.Errorf("Gather axis 1: %v %v, want %v", got.Shape, got.Int64s(), want)
	}
	idx2 := TensorFrom([]int{2, 2}, []int64{-1, 0, 1, -2})
	got = runMoveOp(t, 13, "GatherElements", map[string]Attr{"axis": intAttr(1)}, x, idx2)[0]
	if want := []int64{3, 0, 5, 6}; !slices.Equal(got.Int64s(), want) {
		t.Errorf("GatherElements axis 1: %v, want %v", got.Int64s(), want)
	}
}

// TestMoveKernelsAllocateNothing runs warm plans of the data-movement
// kernels and Resize with reused outputs.
func TestMoveKernelsAllocateNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector may drop pooled objects")
	}
	r := rand.New(rand.NewPCG(9, 10))
	x := randTensor(r, 1, 4, 16, 16)
	cases := []struct {
		op    string
		attrs map[string]Attr
		ins   []*Tensor
	}{
		{"Transpose", map[string]Attr{"perm": ints(0, 2, 3, 1)}, []*Tensor{x}},
		{"Slice", nil, []*Tensor{x, i64(15, 1), i64(0, 9), i64(-1, -2), i64(-2, 3)}},
		{"Pad", map[string]Attr{"mode": stringAttr("reflect")}, []*Tensor{x, i64(0, 0, 1, 2, 0, 0, 3, 1)}},
		{"Gather", map[string]Attr{"axis": intAttr(2)}, []*Tensor{x, i64(3, -1, 0)}},
		{"Resize", map[string]Attr{"mode": stringAttr("linear")}, []*Tensor{x, nil, TensorFrom([]int{4}, []float32{1, 1, 2, 2})}},
		{"Resize", map[string]Attr{"mode": stringAttr("cubic")}, []*Tensor{x, nil, nil, i64(1, 4, 7, 9)}},
		{"Resize", map[string]Attr{"mode": stringAttr("nearest")}, []*Tensor{x, nil, TensorFrom([]int{4}, []float32{1, 1, 2, 3})}},
		{"Concat", map[string]Attr{"axis": intAttr(1)}, []*Tensor{x, x}},
		{"Einsum", map[string]Attr{"equation": stringAttr("bchw,bcvw->bhv")}, []*Tensor{x, x}},
		{"Einsum", map[string]Attr{"equation": stringAttr("...ii->...i")}, []*Tensor{x}},
		{"Einsum", map[string]Attr{"equation": stringAttr("abcd,abcd,abcd->")}, []*Tensor{x, x, x}},
		{"Tile", nil, []*Tensor{x, i64(1, 2, 1, 2)}},
		{"Expand", nil, []*Tensor{randTensor(r, 4, 1, 16), i64(2, 4, 3, 16)}},
		{"DepthToSpace", map[string]Attr{"blocksize": intAttr(2)}, []*Tensor{x}},
		{"Trilu", nil, []*Tensor{x, TensorFrom([]int{}, []int64{-2})}},
		{"CumSum", map[string]Attr{"reverse": intAttr(1)}, []*Tensor{x, TensorFrom([]int{}, []int64{2})}},
		{"GatherElements", map[string]Attr{"axis": intAttr(3)}, []*Tensor{x, TensorFrom([]int{1, 4, 16, 2}, make([]int64, 128))}},
	}
	for _, c := range cases {
		consts := make([]bool, len(c.ins))
		if c.op != "Concat" && c.op != "Einsum" {
			for i := 1; i < len(consts); i++ {
				consts[i] = true
			}
		}
		m, feed := nodeGraph(t, 14, c.op, c.attrs, c.ins, consts, 1)
		out := run1(t, m, feed)
		allocs := testing.AllocsPerRun(20, func() {
			if _, err := m.Run(context.Background(), feed, out); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per warm run", c.op, allocs)
		}
	}
}

func BenchmarkTranspose(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, c := range []struct {
		shape []int
		perm  []int64
	}{
		{[]int{1, 64, 128, 128}, []int64{0, 2, 3, 1}},
		{[]int{1, 128, 128, 64}, []int64{0, 3, 1, 2}},
		{[]int{8, 128, 12, 64}, []int64{0, 2, 1, 3}},
	} {
		x := randTensor(r, c.shape...)
		b.Run(fmt.Sprint(c.shape, c.perm), func(b *testing.B) {
			m, feed := nodeGraph(b, 13, "Transpose", map[string]Attr{"perm": ints(c.perm...)}, []*Tensor{x}, nil, 1)
			out, _ := m.Run(context.Background(), feed, nil)
			b.SetBytes(int64(4 * x.Numel()))
			for b.Loop() {
				m.Run(context.Background(), feed, out)
			}
		})
	}
}

// TestDropoutTrainingMode: training_mode fed as an input keys the plan on
// its value; true is refused per request unless the ratio is 0.
func TestDropoutTrainingMode(t *testing.T) {
	x := TensorFrom([]int{2, 2}, []float32{1, 2, 3, 4})
	for _, c := range []struct {
		ratio    float32
		training bool
		refused  bool
	}{{0.5, false, false}, {0.5, true, true}, {0, true, false}} {
		g := &Graph{Opset: 13,
			Inputs:  []Value{{Name: "x", DType: Float32, Shape: []int64{2, 2}}, {Name: "t", DType: Bool, Shape: []int64{}}},
			Outputs: []Value{{Name: "y", DType: Float32}, {Name: "m", DType: Bool}},
			Nodes:   []Node{{Op: "Dropout", Inputs: []string{"x", "r", "t"}, Outputs: []string{"y", "m"}}}}
		m, err := Load(g, map[string]*Tensor{"r": TensorFrom([]int{}, []float32{c.ratio})}, nil)
		if err != nil {
			t.Fatal(err)
		}
		tm := TensorFrom([]int{}, []bool{c.training})
		out, err := m.Run(context.Background(), []*Tensor{x, tm}, nil)
		if c.refused {
			if !errors.Is(err, ErrUnsupported) {
				t.Errorf("%+v: %v, want ErrUnsupported", c, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		if !slices.Equal(out[0].Float32s(), x.Float32s()) || !slices.Equal(Data[bool](out[1]), []bool{true, true, true, true}) {
			t.Errorf("%+v: %v %v", c, out[0].Float32s(), Data[bool](out[1]))
		}
	}
}
