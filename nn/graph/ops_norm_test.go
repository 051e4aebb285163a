package graph

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// toF64 converts an FP32 tensor to FP64.
func toF64(t *Tensor) *Tensor {
	o := NewTensor(Float64, t.Shape...)
	for i, v := range t.Float32s() {
		Data[float64](o)[i] = float64(v)
	}
	return o
}

// testFloats reads an FP32 or FP64 tensor as float64s.
func testFloats(t *Tensor) []float64 {
	out := make([]float64, t.Numel())
	for i := range out {
		out[i] = paramAt(t, i)
	}
	return out
}

// tryNode loads and runs a one-node graph, returning the error of either.
func tryNode(opset int, op string, attrs map[string]Attr, ins []*Tensor, outs ...DType) error {
	m, feed, err := tryLoadOp(opset, op, attrs, ins, nil, outs...)
	if err != nil {
		return err
	}
	_, err = m.Run(context.Background(), feed, nil)
	return err
}

// TestBatchNormMatchesFormula runs BatchNormalization in FP32 and FP64,
// with the parameters as constants (coefficients folded at plan time) and
// as inputs, over ranks 2 to 5, against the formula in float64.
func TestBatchNormMatchesFormula(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	shapes := [][]int{{3, 4}, {2, 5, 7}, {2, 3, 4, 5}, {1, 16, 9, 11}, {2, 3, 2, 3, 4}}
	for _, shape := range shapes {
		for _, dt := range []DType{Float32, Float64} {
			for _, consts := range []bool{false, true} {
				t.Run(fmt.Sprint(shape, dt, consts), func(t *testing.T) {
					c := shape[1]
					x := randTensor(r, shape...)
					scale, bias, mean := randTensor(r, c), randTensor(r, c), randTensor(r, c)
					vr := randTensor(r, c)
					for i, v := range vr.Float32s() {
						vr.Float32s()[i] = float32(math.Abs(float64(v)))
					}
					ins := []*Tensor{x, scale, bias, mean, vr}
					if dt == Float64 {
						for i := range ins {
							ins[i] = toF64(ins[i])
						}
					}
					const eps = 1e-3
					cm := []bool{false, consts, consts, consts, consts}
					m, feed := typedNodeGraph(t, 15, "BatchNormalization", map[string]Attr{"epsilon": floatAttr(eps)}, ins, cm, dt)
					got := testFloats(run1(t, m, feed)[0])
					xs := testFloats(ins[0])
					s, bb, mu, v := testFloats(ins[1]), testFloats(ins[2]), testFloats(ins[3]), testFloats(ins[4])
					inner := x.Numel() / (shape[0] * c)
					tol := 1e-5
					if dt == Float64 {
						tol = 1e-12
					}
					for i, xv := range xs {
						ch := i / inner % c
						want := s[ch]*(xv-mu[ch])/math.Sqrt(v[ch]+float64(float32(eps))) + bb[ch]
						if d := math.Abs(got[i] - want); d > tol*math.Max(1, math.Abs(want)) {
							t.Fatalf("element %d: %g, want %g", i, got[i], want)
						}
					}
					if a := steadyAllocs(t, m, feed); a != 0 {
						t.Errorf("%v allocations per run", a)
					}
				})
			}
		}
	}
}

// TestBatchNormOpsetVariants: opset 7's spatial = 0 (parameters per
// channel and position), opset 15's mixed parameter types, and the
// refusals: training_mode 1, training outputs before 14, running outputs
// without training_mode.
func TestBatchNormOpsetVariants(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	x := randTensor(r, 2, 3, 4)
	p := func() *Tensor {
		v := randTensor(r, 3, 4)
		for i, f := range v.Float32s() {
			v.Float32s()[i] = float32(math.Abs(float64(f)))
		}
		return v
	}
	scale, bias, mean, vr := p(), p(), p(), p()
	m, feed := typedNodeGraph(t, 7, "BatchNormalization", map[string]Attr{"spatial": intAttr(0)}, []*Tensor{x, scale, bias, mean, vr}, nil, Float32)
	got := run1(t, m, feed)[0].Float32s()
	for i, xv := range x.Float32s() {
		j := i % 12
		want := float64(scale.Float32s()[j])*(float64(xv)-float64(mean.Float32s()[j]))/math.Sqrt(float64(vr.Float32s()[j])+float64(float32(1e-5))) + float64(bias.Float32s()[j])
		if math.Abs(float64(got[i])-want) > 1e-5*math.Max(1, math.Abs(want)) {
			t.Fatalf("spatial 0: element %d: %g, want %g", i, got[i], want)
		}
	}

	// Opset 15: FP32 data, FP64 scale and bias, FP32 statistics.
	c1 := randTensor(r, 3)
	ins := []*Tensor{x, toF64(c1), toF64(randTensor(r, 3)), randTensor(r, 3), TensorFrom([]int{3}, []float32{0.5, 1, 2})}
	m, feed = typedNodeGraph(t, 15, "BatchNormalization", nil, ins, nil, Float32)
	got = run1(t, m, feed)[0].Float32s()
	for i, xv := range x.Float32s() {
		ch := i / 4 % 3
		want := paramAt(ins[1], ch)*(float64(xv)-paramAt(ins[3], ch))/math.Sqrt(paramAt(ins[4], ch)+float64(float32(1e-5))) + paramAt(ins[2], ch)
		if math.Abs(float64(got[i])-want) > 1e-5*math.Max(1, math.Abs(want)) {
			t.Fatalf("mixed types: element %d: %g, want %g", i, got[i], want)
		}
	}
	// Opset 14 wants the scale of X's type.
	if err := tryNode(14, "BatchNormalization", nil, ins, Float32); err == nil {
		t.Error("opset 14 took an FP64 scale for FP32 data")
	}

	c3 := func() *Tensor { return randTensor(r, 3) }
	five := []*Tensor{x, c3(), c3(), c3(), TensorFrom([]int{3}, []float32{1, 1, 1})}
	if err := tryNode(15, "BatchNormalization", map[string]Attr{"training_mode": intAttr(1)}, five, Float32, Float32, Float32); !errors.Is(err, ErrUnsupported) {
		t.Errorf("training_mode 1: %v, want ErrUnsupported", err)
	}
	if err := tryNode(9, "BatchNormalization", nil, five, Float32, Float32, Float32); !errors.Is(err, ErrUnsupported) {
		t.Errorf("opset 9 training outputs: %v, want ErrUnsupported", err)
	}
	if err := tryNode(15, "BatchNormalization", nil, five, Float32, Float32, Float32); err == nil || errors.Is(err, ErrUnsupported) {
		t.Errorf("opset 15 running outputs without training_mode: %v, want a malformed-graph error", err)
	}
	if err := tryNode(15, "BatchNormalization", nil, []*Tensor{x, c3(), c3(), c3(), randTensor(r, 4)}, Float32); err == nil {
		t.Error("a variance of 4 values for 3 channels was taken")
	}
}

func BenchmarkBatchNorm(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	x := randTensor(r, 1, 64, 112, 112)
	c := func() *Tensor { return TensorFrom([]int{64}, make([]float32, 64)) }
	vr := c()
	for i := range vr.Float32s() {
		vr.Float32s()[i] = 1
	}
	m, feed := typedNodeGraph(b, 15, "BatchNormalization", nil, []*Tensor{x, c(), c(), c(), vr}, []bool{false, true, true, true, true}, Float32)
	benchRun(b, m, feed, x.Numel())
}

// TestInstanceNorm checks InstanceNormalization in FP32 and FP64 against
// the formula with statistics per image and channel.
func TestInstanceNorm(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	for _, shape := range [][]int{{2, 3, 7}, {1, 4, 5, 6}, {2, 2, 3, 2, 3}} {
		for _, dt := range []DType{Float32, Float64} {
			c := shape[1]
			ins := []*Tensor{randTensor(r, shape...), randTensor(r, c), randTensor(r, c)}
			if dt == Float64 {
				for i := range ins {
					ins[i] = toF64(ins[i])
				}
			}
			m, feed := typedNodeGraph(t, 13, "InstanceNormalization", map[string]Attr{"epsilon": floatAttr(1e-2)}, ins, nil, dt)
			got := testFloats(run1(t, m, feed)[0])
			xs, s, bb := testFloats(ins[0]), testFloats(ins[1]), testFloats(ins[2])
			inner := len(xs) / (shape[0] * c)
			for p := 0; p < shape[0]*c; p++ {
				plane := xs[p*inner : (p+1)*inner]
				mean, vr := 0.0, 0.0
				for _, v := range plane {
					mean += v
				}
				mean /= float64(inner)
				for _, v := range plane {
					vr += (v - mean) * (v - mean)
				}
				vr /= float64(inner)
				for i, v := range plane {
					want := s[p%c]*(v-mean)/math.Sqrt(vr+float64(float32(1e-2))) + bb[p%c]
					if g := got[p*inner+i]; math.Abs(g-want) > 1e-5*math.Max(1, math.Abs(want)) {
						t.Fatalf("%v %v: plane %d element %d: %g, want %g", shape, dt, p, i, g, want)
					}
				}
			}
			if a := steadyAllocs(t, m, feed); a != 0 {
				t.Errorf("%v allocations per run", a)
			}
		}
	}
}

// TestLRN checks LRN against the reference loop of ONNX's test (window
// c − ⌊(size−1)/2⌋ … c + ⌈(size−1)/2⌉), odd and even sizes, several β.
func TestLRN(t *testing.T) {
	r := rand.New(rand.NewPCG(27, 28))
	for _, tc := range []struct {
		size              int64
		alpha, beta, bias float32
		dt                DType
	}{
		{3, 1e-4, 0.75, 1, Float32},
		{4, 2e-2, 0.5, 2, Float32},
		{5, 1e-1, 0.3, 1.5, Float64},
		{1, 1e-1, 1, 1, Float32},
		{8, 1e-1, 0.75, 1, Float64},
	} {
		x := randTensor(r, 2, 6, 3, 4)
		if tc.dt == Float64 {
			x = toF64(x)
		}
		attrs := map[string]Attr{"size": intAttr(tc.size), "alpha": floatAttr(tc.alpha), "beta": floatAttr(tc.beta), "bias": floatAttr(tc.bias)}
		m, feed := typedNodeGraph(t, 13, "LRN", attrs, []*Tensor{x}, nil, tc.dt)
		got := testFloats(run1(t, m, feed)[0])
		xs := testFloats(x)
		for i, v := range xs {
			c := i / 12 % 6
			base := i - c*12
			lo := max(0, c-int(math.Floor(float64(tc.size-1)/2)))
			hi := min(6, c+int(math.Ceil(float64(tc.size-1)/2))+1)
			ss := 0.0
			for j := lo; j < hi; j++ {
				ss += xs[base+j*12] * xs[base+j*12]
			}
			want := v / math.Pow(float64(tc.bias)+float64(tc.alpha)/float64(tc.size)*ss, float64(tc.beta))
			if math.Abs(got[i]-want) > 1e-5*math.Max(1, math.Abs(want)) {
				t.Fatalf("%+v: element %d: %g, want %g", tc, i, got[i], want)
			}
		}
		if a := steadyAllocs(t, m, feed); a != 0 {
			t.Errorf("%v allocations per run", a)
		}
	}
	if err := tryNode(13, "LRN", nil, []*Tensor{randTensor(r, 1, 2, 3)}, Float32); err == nil {
		t.Error("LRN without size was taken")
	}
}
