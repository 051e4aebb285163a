package graph

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// TestExpF32 checks the float32 exponential against math.Exp to 1e-6
// relative over its whole range, on a dense grid and at the edges.
func TestExpF32(t *testing.T) {
	var xs []float32
	for x := -100.0; x <= 100; x += 0.000731 {
		xs = append(xs, float32(x))
	}
	xs = append(xs, 0, float32(math.Copysign(0, -1)), expLo, expHi, -87.33654, 88.72283, 88.7229, -103.9, -104,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 1e-30, -1e-30)
	got := make([]float32, len(xs))
	expF32(got, xs)
	worst := 0.0
	for i, x := range xs {
		want := math.Exp(float64(x))
		g := float64(got[i])
		switch {
		case math.IsNaN(want):
			if !math.IsNaN(g) {
				t.Fatalf("exp(%g) = %g, want NaN", x, g)
			}
			continue
		case math.IsInf(want, 0) || want > math.MaxFloat32:
			if !math.IsInf(g, 1) {
				t.Fatalf("exp(%g) = %g, want +Inf", x, g)
			}
			continue
		case want < 0x1p-126:
			// Subnormal results come from math.Exp rounded.
			if g != float64(float32(want)) {
				t.Fatalf("exp(%g) = %g, want %g", x, g, float32(want))
			}
			continue
		}
		rel := math.Abs(g-want) / want
		worst = math.Max(worst, rel)
		if rel > 1e-6 {
			t.Fatalf("exp(%g) = %g, want %g (relative error %g)", x, g, want, rel)
		}
	}
	t.Logf("worst relative error %.3g over %d points", worst, len(xs))
}

// runOp runs a one-node graph whose outputs have the given types; inputs
// flagged in consts are initializers (all of them constant: the node is
// folded at load).
func runOp(t testing.TB, opset int, op string, attrs map[string]Attr, ins []*Tensor, consts []bool, outTypes ...DType) []*Tensor {
	t.Helper()
	m, feed := loadOp(t, opset, op, attrs, ins, consts, outTypes...)
	out, err := m.Run(context.Background(), feed, nil)
	if err != nil {
		t.Fatalf("%s: run: %v", op, err)
	}
	return out
}

// f64s reads any numeric tensor as float64.
func f64s(t *Tensor) []float64 {
	out := make([]float64, t.Numel())
	for i := range out {
		switch t.DType {
		case Float32:
			out[i] = float64(Data[float32](t)[i])
		case Float64:
			out[i] = Data[float64](t)[i]
		case Int8:
			out[i] = float64(Data[int8](t)[i])
		case Int16:
			out[i] = float64(Data[int16](t)[i])
		case Int32:
			out[i] = float64(Data[int32](t)[i])
		case Int64:
			out[i] = float64(Data[int64](t)[i])
		case Uint8:
			out[i] = float64(Data[uint8](t)[i])
		case Uint16:
			out[i] = float64(Data[uint16](t)[i])
		case Uint32:
			out[i] = float64(Data[uint32](t)[i])
		case Uint64:
			out[i] = float64(Data[uint64](t)[i])
		case Bool:
			if Data[bool](t)[i] {
				out[i] = 1
			}
		case Float16:
			out[i] = float64(HalfToFloat32(Data[uint16](t)[i]))
		case BFloat16:
			out[i] = float64(BFloat16ToFloat32(Data[uint16](t)[i]))
		}
	}
	return out
}

// fromF64 makes a tensor of dt from float64 values (converted as Go does).
func fromF64(dt DType, shape []int, v []float64) *Tensor {
	t := NewTensor(dt, shape...)
	for i, x := range v {
		switch dt {
		case Float32:
			Data[float32](t)[i] = float32(x)
		case Float64:
			Data[float64](t)[i] = x
		case Int8:
			Data[int8](t)[i] = int8(x)
		case Int16:
			Data[int16](t)[i] = int16(x)
		case Int32:
			Data[int32](t)[i] = int32(x)
		case Int64:
			Data[int64](t)[i] = int64(x)
		case Uint8:
			Data[uint8](t)[i] = uint8(x)
		case Uint16:
			Data[uint16](t)[i] = uint16(x)
		case Uint32:
			Data[uint32](t)[i] = uint32(x)
		case Uint64:
			Data[uint64](t)[i] = uint64(x)
		case Bool:
			Data[bool](t)[i] = x != 0
		case Float16:
			Data[uint16](t)[i] = Float32ToHalf(float32(x))
		case BFloat16:
			Data[uint16](t)[i] = Float32ToBFloat16(float32(x))
		}
	}
	return t
}

func randVals(r *rand.Rand, n int, ints bool) []float64 {
	v := make([]float64, n)
	for i := range v {
		if ints {
			v[i] = float64(r.IntN(19) - 9)
		} else {
			v[i] = r.NormFloat64()
		}
	}
	return v
}

// bcastAt returns the flat index in shape of the element broadcast to
// output index idx (numpy rules, aligned right).
func bcastAt(idx, shape []int) int {
	off := len(idx) - len(shape)
	flat := 0
	for i, d := range shape {
		j := idx[off+i]
		if d == 1 {
			j = 0
		}
		flat = flat*d + j
	}
	return flat
}

// eachIndex calls f with every index of shape in row-major order.
func eachIndex(shape []int, f func(flat int, idx []int)) {
	n, _ := numel(shape)
	idx := make([]int, len(shape))
	for flat := 0; flat < n; flat++ {
		f(flat, idx)
		for d := len(shape) - 1; d >= 0; d-- {
			idx[d]++
			if idx[d] < shape[d] {
				break
			}
			idx[d] = 0
		}
	}
}

func closeIdx(got, want []float64, tol float64) int {
	if len(got) != len(want) {
		return 0
	}
	for i := range want {
		if math.IsNaN(want[i]) && math.IsNaN(got[i]) || got[i] == want[i] {
			continue
		}
		if !(math.Abs(got[i]-want[i]) <= tol*math.Max(1, math.Abs(want[i]))) {
			return i
		}
	}
	return -1
}

func TestBroadcastBinary(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	shapes := [][2][]int{
		{{2, 3, 4}, {2, 3, 4}}, {{2, 3, 4}, {3, 1}}, {{2, 3, 4}, {4}}, {{1}, {2, 3}}, {{}, {2, 3}},
		{{2, 1, 4}, {3, 1}}, {{5, 1, 1, 3}, {1, 4, 2, 1}}, {{}, {}}, {{1, 1}, {1}}, {{0, 3}, {3}},
		{{3, 1, 5}, {1, 7, 1}}, {{2, 3, 1, 4}, {2, 1, 5, 4}},
	}
	ops := []struct {
		op  string
		f   func(a, b float64) float64
		dts []DType
	}{
		{"Add", func(a, b float64) float64 { return a + b }, []DType{Float32, Float64, Int32, Int64, Int8, Uint8}},
		{"Sub", func(a, b float64) float64 { return a - b }, []DType{Float32, Float64, Int16, Int64}},
		{"Mul", func(a, b float64) float64 { return a * b }, []DType{Float32, Float64, Int32, Uint16}},
		{"Div", func(a, b float64) float64 { return a / b }, []DType{Float32, Float64}},
		{"Div", func(a, b float64) float64 {
			if b == 0 {
				return 0
			}
			return math.Trunc(a / b)
		}, []DType{Int32, Int64, Int8}},
		{"PRelu", func(a, b float64) float64 {
			if a < 0 {
				return a * b
			}
			return a
		}, []DType{Float32, Int32}},
		{"Pow", func(a, b float64) float64 { return math.Pow(a, b) }, []DType{Float32, Float64}},
	}
	for _, c := range ops {
		for _, dt := range c.dts {
			for _, sh := range shapes {
				out, ok := broadcastShape(sh[0], sh[1])
				if !ok {
					t.Fatal(sh)
				}
				if c.op == "PRelu" && !sameShape(out, sh[0]) {
					continue
				}
				isInt := dt.isInt()
				av := randVals(r, mustNumel(sh[0]), isInt)
				bv := randVals(r, mustNumel(sh[1]), isInt)
				if !dt.isSigned() {
					for i := range av {
						av[i] = math.Abs(av[i])
					}
					for i := range bv {
						bv[i] = math.Abs(bv[i])
					}
				}
				if c.op == "Pow" {
					for i := range av {
						av[i] = math.Abs(av[i]) + 0.5
					}
				}
				a, b := fromF64(dt, sh[0], av), fromF64(dt, sh[1], bv)
				want := make([]float64, mustNumel(out))
				eachIndex(out, func(flat int, idx []int) {
					want[flat] = c.f(f64s(a)[bcastAt(idx, sh[0])], f64s(b)[bcastAt(idx, sh[1])])
				})
				for _, consts := range [][]bool{nil, {false, true}, {true, true}} {
					got := runOp(t, 14, c.op, nil, []*Tensor{a, b}, consts, dt)[0]
					if !sameShape(got.Shape, out) {
						t.Fatalf("%s %v %v %v: shape %v, want %v", c.op, dt, sh[0], sh[1], got.Shape, out)
					}
					tol := 1e-6
					if dt == Float64 {
						tol = 1e-12
					}
					if i := closeIdx(f64s(got), want, tol); i >= 0 {
						t.Fatalf("%s %v %v %v (consts %v): element %d is %v, want %v", c.op, dt, sh[0], sh[1], consts, i, f64s(got)[i], want[i])
					}
				}
			}
		}
	}
}

func mustNumel(s []int) int {
	n, _ := numel(s)
	return n
}

func TestCompareWhereLogic(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	sa, sb, sc := []int{2, 1, 4}, []int{3, 1}, []int{1, 3, 4}
	out := []int{2, 3, 4}
	a := fromF64(Int32, sa, randVals(r, 8, true))
	b := fromF64(Int32, sb, randVals(r, 3, true))
	cmp := map[string]func(x, y float64) bool{
		"Equal": func(x, y float64) bool { return x == y }, "Less": func(x, y float64) bool { return x < y },
		"Greater": func(x, y float64) bool { return x > y }, "LessOrEqual": func(x, y float64) bool { return x <= y },
		"GreaterOrEqual": func(x, y float64) bool { return x >= y },
	}
	for op, f := range cmp {
		got := f64s(runOp(t, 16, op, nil, []*Tensor{a, b}, nil, Bool)[0])
		eachIndex(out, func(flat int, idx []int) {
			w := f(f64s(a)[bcastAt(idx, sa)], f64s(b)[bcastAt(idx, sb)])
			if (got[flat] != 0) != w {
				t.Fatalf("%s at %v: %v, want %v", op, idx, got[flat], w)
			}
		})
	}
	// Where with three broadcast operands.
	cond := fromF64(Bool, sc, randVals(r, 12, true))
	x := fromF64(Int64, sa, randVals(r, 8, true))
	y := fromF64(Int64, sb, randVals(r, 3, true))
	got := f64s(runOp(t, 16, "Where", nil, []*Tensor{cond, x, y}, nil, Int64)[0])
	eachIndex(out, func(flat int, idx []int) {
		w := f64s(y)[bcastAt(idx, sb)]
		if f64s(cond)[bcastAt(idx, sc)] != 0 {
			w = f64s(x)[bcastAt(idx, sa)]
		}
		if got[flat] != w {
			t.Fatalf("Where at %v: %v, want %v", idx, got[flat], w)
		}
	})
	// Logic on broadcast BOOL.
	p, q := fromF64(Bool, []int{2, 1}, []float64{0, 1}), fromF64(Bool, []int{2}, []float64{0, 1})
	for op, want := range map[string][]float64{"And": {0, 0, 0, 1}, "Or": {0, 1, 1, 1}, "Xor": {0, 1, 1, 0}} {
		if got := f64s(runOp(t, 7, op, nil, []*Tensor{p, q}, nil, Bool)[0]); closeIdx(got, want, 0) >= 0 {
			t.Errorf("%s: %v, want %v", op, got, want)
		}
	}
}

func TestVariadic(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	shapes := [][]int{{3, 1}, {4}, {2, 1, 1}}
	out := []int{2, 3, 4}
	var ins []*Tensor
	for _, s := range shapes {
		ins = append(ins, fromF64(Float32, s, randVals(r, mustNumel(s), false)))
	}
	for op, f := range map[string]func(v []float64) float64{
		"Max":  func(v []float64) float64 { return math.Max(math.Max(v[0], v[1]), v[2]) },
		"Min":  func(v []float64) float64 { return math.Min(math.Min(v[0], v[1]), v[2]) },
		"Sum":  func(v []float64) float64 { return v[0] + v[1] + v[2] },
		"Mean": func(v []float64) float64 { return (v[0] + v[1] + v[2]) / 3 },
	} {
		got := f64s(runOp(t, 13, op, nil, ins, nil, Float32)[0])
		eachIndex(out, func(flat int, idx []int) {
			var v []float64
			for i, s := range shapes {
				v = append(v, f64s(ins[i])[bcastAt(idx, s)])
			}
			if w := f(v); math.Abs(got[flat]-w) > 1e-6 {
				t.Fatalf("%s at %v: %v, want %v", op, idx, got[flat], w)
			}
		})
		// One input is itself.
		one := runOp(t, 13, op, nil, ins[:1], nil, Float32)[0]
		if closeIdx(f64s(one), f64s(ins[0]), 0) >= 0 {
			t.Errorf("%s of one input: %v", op, f64s(one))
		}
	}
}

// refMatMul is numpy's matmul on float64, by the definition.
func refMatMul(a []float64, as []int, b []float64, bs []int) ([]float64, []int) {
	aVec, bVec := len(as) == 1, len(bs) == 1
	if aVec {
		as = []int{1, as[0]}
	}
	if bVec {
		bs = []int{bs[0], 1}
	}
	m, k, n := as[len(as)-2], as[len(as)-1], bs[len(bs)-1]
	batch, _ := broadcastShape(as[:len(as)-2], bs[:len(bs)-2])
	full := append(append([]int{}, batch...), m, n)
	out := make([]float64, mustNumel(full))
	eachIndex(full, func(flat int, idx []int) {
		s := 0.0
		for p := 0; p < k; p++ {
			ai := append(append([]int{}, idx[:len(batch)]...), idx[len(batch)], p)
			bi := append(append([]int{}, idx[:len(batch)]...), p, idx[len(batch)+1])
			s += a[bcastAt(ai, as)] * b[bcastAt(bi, bs)]
		}
		out[flat] = s
	})
	shape := append([]int{}, batch...)
	if !aVec {
		shape = append(shape, m)
	}
	if !bVec {
		shape = append(shape, n)
	}
	return out, shape
}

func TestMatMul(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	cases := [][2][]int{
		{{3, 4}, {4, 5}}, {{4}, {4, 5}}, {{3, 4}, {4}}, {{4}, {4}}, {{2, 3, 4}, {4, 5}},
		{{2, 3, 4}, {2, 4, 5}}, {{2, 1, 3, 4}, {5, 4, 6}}, {{3, 4}, {2, 4, 5}}, {{1, 3, 4}, {2, 4, 5}},
		{{2, 3, 4}, {4}}, {{4}, {2, 4, 3}}, {{3, 0}, {0, 5}}, {{0, 4}, {4, 5}}, {{2, 1, 4}, {1, 4, 7}},
		{{1, 1, 3, 4}, {4, 5}}, {{2, 3, 4}, {1, 4, 5}}, {{7, 33, 65}, {65, 17}}, {{70, 130}, {130, 40}},
	}
	for _, dt := range []DType{Float32, Float64, Int32, Int64} {
		for _, c := range cases {
			av := randVals(r, mustNumel(c[0]), dt.isInt())
			bv := randVals(r, mustNumel(c[1]), dt.isInt())
			a, b := fromF64(dt, c[0], av), fromF64(dt, c[1], bv)
			want, shape := refMatMul(f64s(a), c[0], f64s(b), c[1])
			for _, consts := range [][]bool{nil, {false, true}, {true, true}} {
				got := runOp(t, 13, "MatMul", nil, []*Tensor{a, b}, consts, dt)[0]
				if !sameShape(got.Shape, shape) {
					t.Fatalf("MatMul %v %v x %v: shape %v, want %v", dt, c[0], c[1], got.Shape, shape)
				}
				if i := closeIdx(f64s(got), want, 1e-4); i >= 0 {
					t.Fatalf("MatMul %v %v x %v (consts %v): element %d is %v, want %v", dt, c[0], c[1], consts, i, f64s(got)[i], want[i])
				}
			}
		}
	}
	// Shapes that do not fit are refused at load.
	for _, c := range [][2][]int{{{3, 4}, {5, 6}}, {{2, 3, 4}, {3, 4, 5}}, {{}, {3}}} {
		a, b := NewTensor(Float32, c[0]...), NewTensor(Float32, c[1]...)
		if _, _, err := tryLoadOp(13, "MatMul", nil, []*Tensor{a, b}, nil, Float32); err == nil {
			t.Errorf("MatMul %v x %v accepted", c[0], c[1])
		}
	}
}

func TestGemm(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	const m, k, n = 5, 7, 6
	cShapes := [][]int{nil, {n}, {1, n}, {m, 1}, {m, n}, {}, {1}}
	for _, dt := range []DType{Float32, Float64, Int64} {
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				for _, cs := range cShapes {
					for _, ab := range [][2]float32{{1, 1}, {0.5, 2}, {2, 0}} {
						if dt.isInt() && ab[0] == 0.5 {
							ab = [2]float32{3, 2}
						}
						as, bs := []int{m, k}, []int{k, n}
						if tA {
							as = []int{k, m}
						}
						if tB {
							bs = []int{n, k}
						}
						a := fromF64(dt, as, randVals(r, m*k, dt.isInt()))
						b := fromF64(dt, bs, randVals(r, k*n, dt.isInt()))
						ins := []*Tensor{a, b}
						var c *Tensor
						if cs != nil {
							c = fromF64(dt, cs, randVals(r, mustNumel(cs), dt.isInt()))
							ins = append(ins, c)
						}
						want := make([]float64, m*n)
						af, bf := f64s(a), f64s(b)
						for i := 0; i < m; i++ {
							for j := 0; j < n; j++ {
								s := 0.0
								for p := 0; p < k; p++ {
									x, y := af[i*k+p], bf[p*n+j]
									if tA {
										x = af[p*m+i]
									}
									if tB {
										y = bf[j*k+p]
									}
									s += x * y
								}
								s *= float64(ab[0])
								if c != nil {
									s += float64(ab[1]) * f64s(c)[bcastAt([]int{i, j}, cs)]
								}
								want[i*n+j] = s
							}
						}
						attrs := map[string]Attr{"transA": intAttr(b2i(tA)), "transB": intAttr(b2i(tB)), "alpha": floatAttr(ab[0]), "beta": floatAttr(ab[1])}
						for _, consts := range [][]bool{nil, {false, true, false}, {false, true, true}, {true, true, true}} {
							got := runOp(t, 13, "Gemm", attrs, ins, consts[:min(len(consts), len(ins))], dt)[0]
							if i := closeIdx(f64s(got), want, 1e-4); i >= 0 || !sameShape(got.Shape, []int{m, n}) {
								t.Fatalf("Gemm %v transA %v transB %v C %v alpha, beta %v (consts %v): %v element %d is %v, want %v",
									dt, tA, tB, cs, ab, consts, got.Shape, i, f64s(got)[max(i, 0)], want[max(i, 0)])
							}
						}
					}
				}
			}
		}
	}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func TestSoftmaxAxes(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	shape := []int{2, 3, 4, 5}
	x := fromF64(Float32, shape, randVals(r, 120, false))
	xv := f64s(x)
	for _, opset := range []int{11, 13} {
		for _, axis := range []int{-1, 0, 1, 2, 3, -3} {
			for _, logOut := range []bool{false, true} {
				op := "Softmax"
				if logOut {
					op = "LogSoftmax"
				}
				ax := axis
				if ax < 0 {
					ax += 4
				}
				// Groups: indices that share all dims outside the normalised ones.
				norm := func(d int) bool { return d == ax || (opset < 13 && d > ax) }
				key := func(idx []int) string {
					s := ""
					for d, i := range idx {
						if !norm(d) {
							s += string(rune('a' + i))
						}
						s += "."
					}
					return s
				}
				mx, sum := map[string]float64{}, map[string]float64{}
				eachIndex(shape, func(flat int, idx []int) {
					k := key(idx)
					if v, ok := mx[k]; !ok || xv[flat] > v {
						mx[k] = xv[flat]
					}
				})
				eachIndex(shape, func(flat int, idx []int) { sum[key(idx)] += math.Exp(xv[flat] - mx[key(idx)]) })
				want := make([]float64, 120)
				eachIndex(shape, func(flat int, idx []int) {
					k := key(idx)
					if logOut {
						want[flat] = xv[flat] - mx[k] - math.Log(sum[k])
					} else {
						want[flat] = math.Exp(xv[flat]-mx[k]) / sum[k]
					}
				})
				got := runOp(t, opset, op, map[string]Attr{"axis": intAttr(int64(axis))}, []*Tensor{x}, nil, Float32)[0]
				if i := closeIdx(f64s(got), want, 1e-5); i >= 0 {
					t.Fatalf("%s opset %d axis %d: element %d is %v, want %v", op, opset, axis, i, f64s(got)[i], want[i])
				}
			}
		}
	}
}

func TestReduce(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	shape := []int{3, 1, 4, 5}
	x := fromF64(Float32, shape, randVals(r, 60, false))
	xv := f64s(x)
	type red struct {
		init float64
		acc  func(a, v float64) float64
		fin  func(a float64, n int) float64
	}
	id := func(a float64, _ int) float64 { return a }
	ops := map[string]red{
		"ReduceSum":       {0, func(a, v float64) float64 { return a + v }, id},
		"ReduceMean":      {0, func(a, v float64) float64 { return a + v }, func(a float64, n int) float64 { return a / float64(n) }},
		"ReduceMax":       {math.Inf(-1), math.Max, id},
		"ReduceMin":       {math.Inf(1), math.Min, id},
		"ReduceProd":      {1, func(a, v float64) float64 { return a * v }, id},
		"ReduceL1":        {0, func(a, v float64) float64 { return a + math.Abs(v) }, id},
		"ReduceL2":        {0, func(a, v float64) float64 { return a + v*v }, func(a float64, _ int) float64 { return math.Sqrt(a) }},
		"ReduceSumSquare": {0, func(a, v float64) float64 { return a + v*v }, id},
		"ReduceLogSum":    {0, func(a, v float64) float64 { return a + math.Abs(v) }, func(a float64, _ int) float64 { return math.Log(a) }},
		"ReduceLogSumExp": {0, func(a, v float64) float64 { return a + math.Exp(v) }, func(a float64, _ int) float64 { return math.Log(a) }},
	}
	absX := fromF64(Float32, shape, xv)
	for i, v := range absX.Float32s() {
		absX.Float32s()[i] = float32(math.Abs(float64(v)))
	}
	for name, op := range ops {
		in := x
		if name == "ReduceLogSum" {
			in = absX
		}
		for _, axes := range [][]int64{nil, {0}, {1}, {2}, {3}, {-1}, {0, 2}, {1, 3}, {0, 3}, {2, 3}, {0, 1, 2, 3}} {
			for _, keep := range []bool{true, false} {
				for _, opset := range []int{13, 18} {
					red := make([]bool, 4)
					for _, a := range axes {
						red[(a+4)%4] = true
					}
					if axes == nil {
						red = []bool{true, true, true, true}
					}
					var oshape, kshape []int
					count := 1
					for d, s := range shape {
						if red[d] {
							count *= s
							kshape = append(kshape, 1)
							if keep {
								oshape = append(oshape, 1)
							}
						} else {
							kshape = append(kshape, s)
							oshape = append(oshape, s)
						}
					}
					want := make([]float64, mustNumel(kshape))
					for i := range want {
						want[i] = op.init
					}
					eachIndex(shape, func(flat int, idx []int) {
						o := bcastAt(idx, kshape)
						want[o] = op.acc(want[o], f64s(in)[flat])
					})
					for i := range want {
						want[i] = op.fin(want[i], count)
					}
					attrs := map[string]Attr{"keepdims": intAttr(b2i(keep))}
					ins := []*Tensor{in}
					axesInput := opset >= 18 || name == "ReduceSum"
					if axesInput && axes != nil {
						ins = append(ins, TensorFrom([]int{len(axes)}, axes))
					} else if axes != nil {
						attrs["axes"] = ints(axes...)
					}
					for _, consts := range [][]bool{nil, {false, true}} {
						if len(ins) == 1 && consts != nil {
							continue
						}
						got := runOp(t, opset, name, attrs, ins, consts, Float32)[0]
						if !sameShape(got.Shape, oshape) {
							t.Fatalf("%s axes %v keepdims %v: shape %v, want %v", name, axes, keep, got.Shape, oshape)
						}
						if i := closeIdx(f64s(got), want, 1e-5); i >= 0 {
							t.Fatalf("%s opset %d axes %v keepdims %v: element %d is %v, want %v", name, opset, axes, keep, i, f64s(got)[i], want[i])
						}
					}
				}
			}
		}
		// noop_with_empty_axes: each element reduced on its own.
		got := runOp(t, 18, name, map[string]Attr{"noop_with_empty_axes": intAttr(1)}, []*Tensor{in}, nil, Float32)[0]
		want := make([]float64, 60)
		for i, v := range f64s(in) {
			want[i] = op.fin(op.acc(op.init, v), 1)
		}
		if i := closeIdx(f64s(got), want, 1e-5); i >= 0 || !sameShape(got.Shape, shape) {
			t.Fatalf("%s noop: %v element %d is %v, want %v", name, got.Shape, i, f64s(got)[max(i, 0)], want[max(i, 0)])
		}
	}
	// Integer sums and an empty reduction.
	xi := fromF64(Int32, []int{2, 3}, []float64{1, 2, 3, 4, 5, 6})
	if got := f64s(runOp(t, 13, "ReduceSum", nil, []*Tensor{xi, TensorFrom([]int{1}, []int64{1})}, nil, Int32)[0]); closeIdx(got, []float64{6, 15}, 0) >= 0 {
		t.Errorf("ReduceSum INT32: %v", got)
	}
	empty := NewTensor(Float32, 2, 0)
	for name, want := range map[string]float64{"ReduceSum": 0, "ReduceProd": 1, "ReduceMax": math.Inf(-1), "ReduceLogSumExp": math.Inf(-1)} {
		got := f64s(runOp(t, 18, name, nil, []*Tensor{empty, TensorFrom([]int{1}, []int64{1})}, nil, Float32)[0])
		if len(got) != 2 || got[0] != want || got[1] != want {
			t.Errorf("%s of an empty axis: %v, want %v", name, got, want)
		}
	}
}

func TestArgMax(t *testing.T) {
	nan := math.NaN()
	x := fromF64(Float32, []int{2, 4}, []float64{1, 3, 3, 0, nan, 2, nan, 5})
	for _, c := range []struct {
		op   string
		last int64
		axis int64
		want []float64
	}{
		{"ArgMax", 0, 1, []float64{1, 0}}, {"ArgMax", 1, 1, []float64{2, 2}},
		{"ArgMin", 0, 1, []float64{3, 0}}, {"ArgMin", 1, 1, []float64{3, 2}},
		{"ArgMax", 0, 0, []float64{1, 0, 1, 1}},
	} {
		got := runOp(t, 13, c.op, map[string]Attr{"axis": intAttr(c.axis), "keepdims": intAttr(0), "select_last_index": intAttr(c.last)}, []*Tensor{x}, nil, Int64)[0]
		if closeIdx(f64s(got), c.want, 0) >= 0 {
			t.Errorf("%s axis %d select_last_index %d: %v, want %v", c.op, c.axis, c.last, f64s(got), c.want)
		}
	}
}

func TestClipInputs(t *testing.T) {
	x := fromF64(Float32, []int{5}, []float64{-3, -1, 0, 2, math.NaN()})
	lo, hi := TensorFrom([]int{}, []float32{-2}), TensorFrom([]int{}, []float32{1})
	for _, c := range []struct {
		ins    []*Tensor
		consts []bool
		want   []float64
	}{
		{[]*Tensor{x, lo, hi}, nil, []float64{-2, -1, 0, 1, math.NaN()}},
		{[]*Tensor{x, lo, hi}, []bool{false, true, false}, []float64{-2, -1, 0, 1, math.NaN()}},
		{[]*Tensor{x, nil, hi}, nil, []float64{-3, -1, 0, 1, math.NaN()}},
		{[]*Tensor{x, lo}, nil, []float64{-2, -1, 0, 2, math.NaN()}},
		{[]*Tensor{x, hi, lo}, nil, []float64{-2, -2, -2, -2, math.NaN()}}, // min > max: max
	} {
		got := runOp(t, 13, "Clip", nil, c.ins, c.consts, Float32)[0]
		if closeIdx(f64s(got), c.want, 0) >= 0 {
			t.Errorf("Clip %v: %v, want %v", c.consts, f64s(got), c.want)
		}
	}
	got := runOp(t, 7, "Clip", map[string]Attr{"min": floatAttr(-1), "max": floatAttr(0.5)}, []*Tensor{x}, nil, Float32)[0]
	if closeIdx(f64s(got), []float64{-1, -1, 0, 0.5, math.NaN()}, 0) >= 0 {
		t.Errorf("Clip-6: %v", f64s(got))
	}
	xi := fromF64(Int8, []int{3}, []float64{-128, 5, 127})
	got = runOp(t, 13, "Clip", nil, []*Tensor{xi, fromF64(Int8, []int{}, []float64{0})}, nil, Int8)[0]
	if closeIdx(f64s(got), []float64{0, 5, 127}, 0) >= 0 {
		t.Errorf("Clip INT8: %v", f64s(got))
	}
}

func TestHalfOps(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, dt := range []DType{Float16, BFloat16} {
		a := fromF64(dt, []int{3, 4}, randVals(r, 12, false))
		b := fromF64(dt, []int{4, 2}, randVals(r, 8, false))
		c := fromF64(dt, []int{4}, randVals(r, 4, false))
		round := func(v float64) float64 { return f64s(fromF64(dt, []int{1}, []float64{v}))[0] }
		got := runOp(t, 13, "Add", nil, []*Tensor{a, c}, nil, dt)[0]
		eachIndex([]int{3, 4}, func(flat int, idx []int) {
			if w := round(float32sum(f64s(a)[flat], f64s(c)[idx[1]])); f64s(got)[flat] != w {
				t.Fatalf("Add %v at %v: %v, want %v", dt, idx, f64s(got)[flat], w)
			}
		})
		want, _ := refMatMul(f64s(a), a.Shape, f64s(b), b.Shape)
		for _, consts := range [][]bool{nil, {false, true}} {
			got = runOp(t, 13, "MatMul", nil, []*Tensor{a, b}, consts, dt)[0]
			if i := closeIdx(f64s(got), want, 1e-2); i >= 0 {
				t.Fatalf("MatMul %v: element %d is %v, want %v", dt, i, f64s(got)[i], want[i])
			}
		}
		if got := runOp(t, 13, "Less", nil, []*Tensor{a, c}, nil, Bool)[0]; got.DType != Bool {
			t.Fatalf("Less %v: %v", dt, got.DType)
		}
		if got := runOp(t, 13, "ArgMax", nil, []*Tensor{a}, nil, Int64)[0]; got.DType != Int64 || len(got.Shape) != 2 {
			t.Fatalf("ArgMax %v: %v %v", dt, got.DType, got.Shape)
		}
		got = runOp(t, 13, "ReduceMax", map[string]Attr{"axes": ints(0)}, []*Tensor{a}, nil, dt)[0]
		if !sameShape(got.Shape, []int{1, 4}) {
			t.Fatalf("ReduceMax %v: %v", dt, got.Shape)
		}
		// Pow with a FLOAT exponent keeps the half base type.
		got = runOp(t, 15, "Pow", nil, []*Tensor{a, TensorFrom([]int{}, []float32{2})}, nil, dt)[0]
		for i, v := range f64s(a) {
			if w := round(v * v); f64s(got)[i] != w {
				t.Fatalf("Pow %v: %v, want %v", dt, f64s(got)[i], w)
			}
		}
		// Mixed half and FLOAT operands are refused.
		if _, _, err := tryLoadOp(13, "Add", nil, []*Tensor{a, NewTensor(Float32, 4)}, nil, dt); err == nil {
			t.Errorf("Add(%v, FP32) accepted", dt)
		}
	}
}

func float32sum(a, b float64) float64 { return float64(float32(a) + float32(b)) }

func TestCastPairs(t *testing.T) {
	vals := []float64{0, 1, -1, 2.5, -2.5, 100, 65504, 1e-3}
	types := []DType{Float32, Float64, Int8, Int16, Int32, Int64, Uint8, Uint16, Uint32, Uint64, Bool, Float16, BFloat16}
	onnxOf := map[DType]int64{}
	for k, v := range onnxTypes {
		onnxOf[v] = k
	}
	for _, from := range types {
		for _, to := range types {
			var src []float64
			for _, v := range vals {
				if !from.isSigned() && v < 0 || from == Bool && v != 0 && v != 1 || (from == Int8 || from == Uint8) && math.Abs(v) > 100 ||
					from == Int16 && v > 32767 || from == BFloat16 && v > 1000 {
					continue
				}
				if !from.isFloat() && !isHalf(from) {
					v = math.Trunc(v)
				}
				src = append(src, v)
			}
			x := fromF64(from, []int{len(src)}, src)
			got := runOp(t, 13, "Cast", map[string]Attr{"to": intAttr(onnxOf[to])}, []*Tensor{x}, nil, to)[0]
			want := fromF64(to, []int{len(src)}, truncFor(to, f64s(x)))
			if to == BFloat16 {
				for i, v := range f64s(x) {
					Data[uint16](want)[i] = truncBFloat16(float32(v))
				}
			}
			if closeIdx(f64s(got), f64s(want), 0) >= 0 {
				t.Errorf("Cast %v → %v: %v, want %v", from, to, f64s(got), f64s(want))
			}
		}
	}
	// FLOAT64 to FLOAT16 rounds once: a value just above a tie of FLOAT16
	// that float32 would round onto the tie.
	v := 1 + 0x1p-11 + 0x1p-40
	got := runOp(t, 13, "Cast", map[string]Attr{"to": intAttr(10)}, []*Tensor{TensorFrom([]int{1}, []float64{v})}, nil, Float16)[0]
	if h := Data[uint16](got)[0]; h != Float32ToHalf(1+0x1p-10) {
		t.Errorf("Cast FP64 %v to FP16: %#x, want %#x", v, h, Float32ToHalf(1+0x1p-10))
	}
	if _, _, err := tryLoadOp(13, "Cast", map[string]Attr{"to": intAttr(8)}, []*Tensor{NewTensor(Float32, 2)}, nil, Float32); err == nil || !errorsIs(err, ErrUnsupported) {
		t.Errorf("Cast to STRING: %v", err)
	}
}

// truncFor converts float values toward an integer type as Go (and numpy)
// casts do: truncation.
func truncFor(to DType, v []float64) []float64 {
	out := append([]float64{}, v...)
	if to.isInt() {
		for i := range out {
			out[i] = math.Trunc(out[i])
		}
	}
	return out
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// TestOpsNoAlloc checks that warm runs of the kernels allocate nothing.
func TestOpsNoAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	r := rand.New(rand.NewPCG(17, 18))
	f := func(shape ...int) *Tensor { return fromF64(Float32, shape, randVals(r, mustNumel(shape), false)) }
	h := func(shape ...int) *Tensor { return fromF64(Float16, shape, randVals(r, mustNumel(shape), false)) }
	cases := []struct {
		op     string
		opset  int
		attrs  map[string]Attr
		ins    []*Tensor
		consts []bool
		out    DType
	}{
		{"Add", 14, nil, []*Tensor{f(4, 3, 5), f(3, 1)}, nil, Float32},
		{"Mul", 14, nil, []*Tensor{f(64), f(64)}, nil, Float32},
		{"Sigmoid", 13, nil, []*Tensor{f(1000)}, nil, Float32},
		{"Tanh", 13, nil, []*Tensor{f(300)}, nil, Float32},
		{"Softmax", 13, map[string]Attr{"axis": intAttr(1)}, []*Tensor{f(2, 5, 7)}, nil, Float32},
		{"LogSoftmax", 13, nil, []*Tensor{f(3, 9)}, nil, Float32},
		{"ReduceSum", 13, nil, []*Tensor{f(3, 4, 5), TensorFrom([]int{1}, []int64{1})}, []bool{false, true}, Float32},
		{"ReduceLogSumExp", 13, map[string]Attr{"axes": ints(0, 2)}, []*Tensor{f(3, 4, 5)}, nil, Float32},
		{"MatMul", 13, nil, []*Tensor{f(6, 8), f(8, 10)}, []bool{false, true}, Float32},
		{"MatMul", 13, nil, []*Tensor{f(2, 3, 8), f(2, 8, 4)}, nil, Float32},
		{"Gemm", 13, map[string]Attr{"transA": intAttr(1)}, []*Tensor{f(8, 6), f(8, 10), f(6, 1)}, []bool{false, true, true}, Float32},
		{"Gemm", 13, map[string]Attr{"transB": intAttr(1)}, []*Tensor{f(6, 8), f(10, 8), f(10)}, nil, Float32},
		{"Where", 16, nil, []*Tensor{fromF64(Bool, []int{3, 1}, []float64{1, 0, 1}), f(4), f(3, 4)}, nil, Float32},
		{"Cast", 13, map[string]Attr{"to": intAttr(10)}, []*Tensor{f(20)}, nil, Float16},
		{"Add", 14, nil, []*Tensor{h(4, 5), h(5)}, nil, Float16},
		{"Clip", 13, nil, []*Tensor{f(20), f(), f()}, nil, Float32},
		{"ArgMax", 13, map[string]Attr{"axis": intAttr(1)}, []*Tensor{f(3, 4, 5)}, nil, Int64},
		{"Pow", 15, nil, []*Tensor{f(10), TensorFrom([]int{}, []int64{3})}, nil, Float32},
		{"Max", 13, nil, []*Tensor{f(3, 1), f(4), f(2, 1, 1)}, nil, Float32},
	}
	for _, c := range cases {
		m, feed := loadOp(t, c.opset, c.op, c.attrs, c.ins, c.consts, c.out)
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

// TestSigmoidTanhF32 checks the float32 loops against float64 math to
// 1e-6 relative (or 1e-30 absolute, for results below float32's normal
// range).
func TestSigmoidTanhF32(t *testing.T) {
	var xs []float32
	for x := -120.0; x <= 120; x += 0.00137 {
		xs = append(xs, float32(x))
	}
	for x := -0.2; x <= 0.2; x += 1e-5 {
		xs = append(xs, float32(x))
	}
	xs = append(xs, 0, float32(math.Copysign(0, -1)), 0.125, -0.125, 0.12499999, 1e-30, -1e-30, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()))
	got := make([]float32, len(xs))
	for _, c := range []struct {
		name string
		f32  func(o, x []float32)
		f64  func(float64) float64
	}{{"sigmoid", sigmoidF32, sigmoid64}, {"tanh", tanhF32, math.Tanh}} {
		c.f32(got, xs)
		worst := 0.0
		for i, x := range xs {
			want, g := c.f64(float64(x)), float64(got[i])
			if math.IsNaN(want) {
				if !math.IsNaN(g) {
					t.Fatalf("%s(%g) = %g, want NaN", c.name, x, g)
				}
				continue
			}
			d := math.Abs(g - want)
			if d <= 1e-30 {
				continue
			}
			rel := d / math.Abs(want)
			worst = math.Max(worst, rel)
			if rel > 1e-6 {
				t.Fatalf("%s(%g) = %g, want %g (relative error %g)", c.name, x, g, want, rel)
			}
		}
		t.Logf("%s: worst relative error %.3g", c.name, worst)
	}
}

func TestUnary(t *testing.T) {
	xs := []float64{-3.5, -2, -1, -0.25, 0, 0.25, 0.5, 1, 2, 3.5, 40, -40}
	ix := []float64{-9, -2, -1, 0, 1, 2, 7}
	sig := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	cases := []struct {
		op    string
		opset int
		attrs map[string]Attr
		f     func(float64) float64
		dts   []DType
	}{
		{"Relu", 14, nil, func(x float64) float64 { return math.Max(x, 0) }, []DType{Float32, Float64, Int8, Int32, Int64}},
		{"LeakyRelu", 16, map[string]Attr{"alpha": floatAttr(0.25)}, func(x float64) float64 {
			if x < 0 {
				return 0.25 * x
			}
			return x
		}, []DType{Float32, Float64}},
		{"LeakyRelu", 16, nil, func(x float64) float64 {
			if x < 0 {
				return float64(float32(0.01)) * x
			}
			return x
		}, []DType{Float32, Float64}},
		{"Sigmoid", 13, nil, sig, []DType{Float32, Float64}},
		{"HardSigmoid", 7, map[string]Attr{"alpha": floatAttr(0.25), "beta": floatAttr(0.375)}, func(x float64) float64 { return math.Max(0, math.Min(1, 0.25*x+0.375)) }, []DType{Float32, Float64}},
		{"HardSigmoid", 7, nil, func(x float64) float64 { return math.Max(0, math.Min(1, float64(float32(0.2))*x+0.5)) }, []DType{Float32}},
		{"HardSwish", 14, nil, func(x float64) float64 { return x * math.Max(0, math.Min(1, x/6+0.5)) }, []DType{Float32, Float64}},
		{"Tanh", 13, nil, math.Tanh, []DType{Float32, Float64}},
		{"Erf", 13, nil, math.Erf, []DType{Float32, Float64}},
		{"Exp", 13, nil, math.Exp, []DType{Float32, Float64}},
		{"Log", 13, nil, math.Log, []DType{Float32, Float64}},
		{"Sqrt", 13, nil, math.Sqrt, []DType{Float32, Float64}},
		{"Reciprocal", 13, nil, func(x float64) float64 { return 1 / x }, []DType{Float32, Float64}},
		{"Neg", 13, nil, func(x float64) float64 { return -x }, []DType{Float32, Float64, Int8, Int16, Int32, Int64}},
		{"Abs", 13, nil, math.Abs, []DType{Float32, Float64, Int8, Int16, Int32, Int64}},
		{"Floor", 13, nil, math.Floor, []DType{Float32, Float64}},
		{"Ceil", 13, nil, math.Ceil, []DType{Float32, Float64}},
		{"Sign", 13, nil, func(x float64) float64 {
			switch {
			case x > 0:
				return 1
			case x < 0:
				return -1
			}
			return 0
		}, []DType{Float32, Float64, Int8, Int32, Int64}},
		{"Softplus", 7, nil, func(x float64) float64 { return math.Log(math.Exp(x) + 1) }, []DType{Float32, Float64}},
		{"Elu", 7, map[string]Attr{"alpha": floatAttr(2)}, func(x float64) float64 {
			if x < 0 {
				return 2 * (math.Exp(x) - 1)
			}
			return x
		}, []DType{Float32, Float64}},
		{"Selu", 7, nil, func(x float64) float64 {
			const a, g = 1.67326319217681884765625, 1.05070102214813232421875
			if x > 0 {
				return g * x
			}
			return g * (a*math.Exp(x) - a)
		}, []DType{Float32, Float64}},
	}
	for _, c := range cases {
		for _, dt := range c.dts {
			v := xs
			if dt.isInt() {
				v = ix
			}
			x := fromF64(dt, []int{len(v)}, v)
			got := f64s(runOp(t, c.opset, c.op, c.attrs, []*Tensor{x}, nil, dt)[0])
			for i, xv := range f64s(x) {
				want := c.f(xv)
				if dt == Float32 {
					want = float64(float32(want))
				}
				if math.IsNaN(want) && math.IsNaN(got[i]) {
					continue
				}
				if d := math.Abs(got[i] - want); d > 2e-7*math.Max(1, math.Abs(want)) {
					t.Errorf("%s %v(%v) = %v, want %v", c.op, dt, xv, got[i], want)
				}
			}
		}
	}
	// Unsupported types are refused as such.
	if _, _, err := tryLoadOp(13, "Neg", nil, []*Tensor{NewTensor(Uint8, 2)}, nil, Uint8); !errorsIs(err, ErrUnsupported) {
		t.Errorf("Neg UINT8: %v", err)
	}
	b := fromF64(Bool, []int{3}, []float64{1, 0, 1})
	if got := f64s(runOp(t, 7, "Not", nil, []*Tensor{b}, nil, Bool)[0]); closeIdx(got, []float64{0, 1, 0}, 0) >= 0 {
		t.Errorf("Not: %v", got)
	}
}

func TestCastLike(t *testing.T) {
	x := fromF64(Float32, []int{3}, []float64{1.5, -2.7, 300})
	for _, c := range []struct {
		like *Tensor
		want []float64
	}{
		{NewTensor(Int32, 1), []float64{1, -2, 300}},
		{NewTensor(Float32, 2), []float64{1.5, -2.7, 300}},
		{NewTensor(Float16, 1), []float64{1.5, float64(HalfToFloat32(Float32ToHalf(-2.7))), 300}},
	} {
		got := runOp(t, 15, "CastLike", nil, []*Tensor{x, c.like}, nil, c.like.DType)[0]
		if got.DType != c.like.DType || closeIdx(f64s(got), c.want, 1e-7) >= 0 {
			t.Errorf("CastLike %v: %v %v, want %v", c.like.DType, got.DType, f64s(got), c.want)
		}
	}
}
