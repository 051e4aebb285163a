package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestMulPanels: PackPanels and MulPanels against the float64 product,
// with B plain or transposed, alpha, A and C strided, accumulating or
// not, on every kernel and tile edge.
func TestMulPanels(t *testing.T) {
	withKernel(t, func(t *testing.T, kr *kernel) {
		r := rand.New(rand.NewPCG(21, 22))
		mr, nr := kr.mr, kr.nr
		for _, s := range [][3]int{{1, 1, 1}, {mr, 32, nr}, {mr + 3, 64, 2*nr + 5}, {2*mr - 1, 7, nr - 1}, {64, 256, 64}, {3, 0, 5}} {
			m, k, n := s[0], s[1], s[2]
			for _, trans := range []bool{false, true} {
				for _, acc := range []bool{false, true} {
					lda, ldb, ldc := k+3, n+2, n+7
					if trans {
						ldb = k + 1
					}
					a := randF32(r, m*lda)
					b := randF32(r, max(k, n)*max(ldb, 1))
					c := randF32(r, m*ldc)
					c0 := append([]float32{}, c...)
					bp := make([]float32, PanelsLen(k, n))
					PackPanels(bp, b, ldb, trans, k, n, 0.5)
					MulPanels(c, ldc, a, lda, m, k, bp, n, acc)
					for i := 0; i < m; i++ {
						for j := 0; j < ldc; j++ {
							if j >= n {
								if c[i*ldc+j] != c0[i*ldc+j] {
									t.Fatalf("%v trans %v: C[%d][%d] past n written", s, trans, i, j)
								}
								continue
							}
							want, bound := 0.0, 0.0
							if acc {
								want = float64(c0[i*ldc+j])
								bound = math.Abs(want)
							}
							for p := 0; p < k; p++ {
								bv := b[p*ldb+j]
								if trans {
									bv = b[j*ldb+p]
								}
								x := float64(a[i*lda+p]) * 0.5 * float64(bv)
								want += x
								bound += math.Abs(x)
							}
							if d := math.Abs(float64(c[i*ldc+j]) - want); d > 2*float64(k+2)*1.2e-7*bound+1e-30 {
								t.Fatalf("%v trans %v acc %v: C[%d][%d] = %g, want %g", s, trans, acc, i, j, c[i*ldc+j], want)
							}
						}
					}
				}
			}
		}
	})
}

func randF32(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}
