package graph

import (
	"math/rand/v2"
	"testing"
)

func einsumRun(t *testing.T, eq string, ins ...*Tensor) *Tensor {
	t.Helper()
	m, feed := typedGraph(t, 12, "Einsum", map[string]Attr{"equation": stringAttr(eq)}, ins, nil, ins[0].DType, 1)
	return run1(t, m, feed)[0]
}

func closeTo(t *testing.T, what string, got *Tensor, shape []int, want []float32) {
	t.Helper()
	if len(got.Shape) != len(shape) {
		t.Fatalf("%s: shape %v, want %v", what, got.Shape, shape)
	}
	for i := range shape {
		if got.Shape[i] != shape[i] {
			t.Fatalf("%s: shape %v, want %v", what, got.Shape, shape)
		}
	}
	if d := maxRelDiff(got.Float32s(), want); d > 1e-5 {
		t.Fatalf("%s: max rel diff %g", what, d)
	}
}

func TestEinsum(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	// Attention scores.
	q, k := randTensor(r, 2, 3, 4, 5), randTensor(r, 2, 3, 6, 5)
	want := make([]float32, 2*3*4*6)
	for b := 0; b < 6; b++ {
		for i := 0; i < 4; i++ {
			for j := 0; j < 6; j++ {
				s := float32(0)
				for d := 0; d < 5; d++ {
					s += q.Float32s()[(b*4+i)*5+d] * k.Float32s()[(b*6+j)*5+d]
				}
				want[(b*4+i)*6+j] = s
			}
		}
	}
	closeTo(t, "bhid,bhjd->bhij", einsumRun(t, "bhid, bhjd -> bhij", q, k), []int{2, 3, 4, 6}, want)

	// Implicit output with a broadcast ellipsis: ...ij,...jk → ...ik.
	a, c := randTensor(r, 2, 1, 3, 4), randTensor(r, 5, 4, 2)
	want = make([]float32, 2*5*3*2)
	for x := 0; x < 2; x++ {
		for y := 0; y < 5; y++ {
			for i := 0; i < 3; i++ {
				for kk := 0; kk < 2; kk++ {
					s := float32(0)
					for j := 0; j < 4; j++ {
						s += a.Float32s()[(x*3+i)*4+j] * c.Float32s()[(y*4+j)*2+kk]
					}
					want[((x*5+y)*3+i)*2+kk] = s
				}
			}
		}
	}
	closeTo(t, "...ij,...jk", einsumRun(t, "...ij,...jk", a, c), []int{2, 5, 3, 2}, want)

	// Diagonal and trace.
	m := randTensor(r, 4, 4)
	diag := make([]float32, 4)
	trace := float32(0)
	for i := range diag {
		diag[i] = m.Float32s()[i*5]
		trace += diag[i]
	}
	closeTo(t, "ii->i", einsumRun(t, "ii->i", m), []int{4}, diag)
	closeTo(t, "ii", einsumRun(t, "ii", m), []int{}, []float32{trace})

	// Three operands; implicit order is alphabetical (ij,jk,kl → il).
	x, y, z := randTensor(r, 2, 3), randTensor(r, 3, 4), randTensor(r, 4, 2)
	want = make([]float32, 4)
	for i := 0; i < 2; i++ {
		for l := 0; l < 2; l++ {
			s := float32(0)
			for j := 0; j < 3; j++ {
				for kk := 0; kk < 4; kk++ {
					s += x.Float32s()[i*3+j] * y.Float32s()[j*4+kk] * z.Float32s()[kk*2+l]
				}
			}
			want[i*2+l] = s
		}
	}
	closeTo(t, "ij,jk,kl", einsumRun(t, "ij,jk,kl", x, y, z), []int{2, 2}, want)

	// An empty contraction is zeros.
	closeTo(t, "ij,j->i", einsumRun(t, "ij,j->i", randTensor(r, 3, 0), randTensor(r, 0)), []int{3}, []float32{0, 0, 0})
}
