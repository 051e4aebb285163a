package graph

import (
	"fmt"
	"gonum.org/v1/gonum/blas"

	"github.com/aiaas/aiaas/nn/kernels"
)

// MatMul (numpy's matmul: 1-D operands promoted and the added dimension
// dropped, batch dimensions broadcast) and Gemm (Y = alpha·A'·B' + beta·C,
// C broadcast to [M, N]). FLOAT runs on the SIMD kernels: a constant
// right operand (the weights of x·W) is packed once at plan time for
// kernels.Dense, anything else goes through kernels.Sgemm. Other types
// use a plain loop.

func init() {
	register("MatMul", 1, withHalf(buildMatMul))
	register("MatMul", 9, withHalf(buildMatMul)) // integer types
	register("Gemm", 7, withHalf(buildGemm))
	register("Gemm", 11, withHalf(buildGemm)) // C optional
}

var matmulTypes = []DType{Float32, Float64, Int32, Int64, Uint32, Uint64}

// mmGeom is a batched product's shape: out[b] = A[ai(b)] · B[bi(b)] for
// every output batch index b, each matrix m×k times k×n.
type mmGeom struct {
	m, k, n int
	batch   []int // output batch dimensions
	sa, sb  []int // per batch dimension, the step of A's and B's matrix index (0: broadcast)
	nb      int   // output matrices
	nbB     int   // B's matrices
}

// each calls f for every output matrix with the indices of its operands'
// matrices. It allocates nothing.
func (g *mmGeom) each(f func(o, ai, bi int)) {
	var idx [maxRank]int
	ai, bi := 0, 0
	for o := 0; o < g.nb; o++ {
		f(o, ai, bi)
		for d := len(g.batch) - 1; d >= 0; d-- {
			idx[d]++
			ai += g.sa[d]
			bi += g.sb[d]
			if idx[d] < g.batch[d] {
				break
			}
			ai -= g.sa[d] * g.batch[d]
			bi -= g.sb[d] * g.batch[d]
			idx[d] = 0
		}
	}
}

// batchStrides returns the matrix-index steps of a batch shape s
// broadcast to out (aligned right).
func batchStrides(out, s []int) []int {
	st := make([]int, len(out))
	step := 1
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] != 1 {
			st[len(out)-len(s)+i] = step
		}
		step *= s[i]
	}
	return st
}

func buildMatMul(b *builder) {
	if !b.arity(2, 2, 1, 1) || !b.wantType(0, matmulTypes...) || !b.sameType(0, 1) {
		return
	}
	x, w := b.in[0], b.in[1]
	as, bs := x.shape, w.shape
	if len(as) == 0 || len(bs) == 0 {
		b.errf("shapes %v and %v: MatMul needs at least one dimension on each side", as, bs)
		return
	}
	aVec, bVec := len(as) == 1, len(bs) == 1
	if aVec {
		as = []int{1, as[0]}
	}
	if bVec {
		bs = []int{bs[0], 1}
	}
	g := &mmGeom{m: as[len(as)-2], k: as[len(as)-1], n: bs[len(bs)-1]}
	if bs[len(bs)-2] != g.k {
		b.errf("shapes %v and %v: inner dimensions %d and %d differ", x.shape, w.shape, g.k, bs[len(bs)-2])
		return
	}
	ba, bb := as[:len(as)-2], bs[:len(bs)-2]
	batch, ok := broadcastShape(ba, bb)
	if !ok {
		b.errf("shapes %v and %v: batch dimensions do not broadcast", x.shape, w.shape)
		return
	}
	shape := append([]int{}, batch...)
	if !aVec {
		shape = append(shape, g.m)
	}
	if !bVec {
		shape = append(shape, g.n)
	}
	if len(shape) > maxRank || len(batch) > maxRank {
		b.unsupported("rank %d, limit %d", len(shape), maxRank)
		return
	}
	g.batch = batch
	g.sa, g.sb = batchStrides(batch, ba), batchStrides(batch, bb)
	g.nb, _ = numel(batch)
	g.nbB, _ = numel(bb)
	b.setOut(0, x.dt, shape)
	b.flops = 2 * float64(g.nb) * float64(g.m) * float64(g.n) * float64(g.k)
	if x.dt != Float32 {
		b.run(naiveMatMul(x.dt, g))
		return
	}
	if g.nb == 0 || g.m == 0 || g.n == 0 || g.k == 0 {
		b.run(func(in, out []*Tensor, _ *kctx) error {
			clear(out[0].data) // an empty sum is 0
			return nil
		})
		return
	}
	mk, kn, mn := g.m*g.k, g.k*g.n, g.m*g.n
	// A has no batch dimension B lacks (B's are all 1): the batches of A
	// are rows of one product.
	rowsOfOne := g.nbB == 1
	if w.c != nil {
		wf := w.c.Float32s()
		packs := b.prepared(w.c, "matmul", func() any {
			packs := make([]*kernels.Packed, g.nbB)
			for i := range packs {
				packs[i] = kernels.Pack(wf[i*kn:(i+1)*kn], g.k, g.n, nil)
			}
			return packs
		}).([]*kernels.Packed)
		if rowsOfOne {
			rows := g.nb * g.m
			b.run(func(in, out []*Tensor, _ *kctx) error {
				kernels.Dense(view[float32](out[0].data), view[float32](in[0].data), rows, packs[0], kernels.Linear)
				return nil
			})
			return
		}
		b.run(func(in, out []*Tensor, _ *kctx) error {
			a, y := view[float32](in[0].data), view[float32](out[0].data)
			g.each(func(o, ai, bi int) {
				kernels.Dense(y[o*mn:(o+1)*mn], a[ai*mk:(ai+1)*mk], g.m, packs[bi], kernels.Linear)
			})
			return nil
		})
		return
	}
	if rowsOfOne {
		rows := g.nb * g.m
		b.run(func(in, out []*Tensor, _ *kctx) error {
			kernels.Sgemm(blas.NoTrans, blas.NoTrans, rows, g.n, g.k, 1, view[float32](in[0].data), g.k,
				view[float32](in[1].data), g.n, 0, view[float32](out[0].data), g.n)
			return nil
		})
		return
	}
	b.run(func(in, out []*Tensor, _ *kctx) error {
		a, w, y := view[float32](in[0].data), view[float32](in[1].data), view[float32](out[0].data)
		g.each(func(o, ai, bi int) {
			kernels.Sgemm(blas.NoTrans, blas.NoTrans, g.m, g.n, g.k, 1, a[ai*mk:(ai+1)*mk], g.k,
				w[bi*kn:(bi+1)*kn], g.n, 0, y[o*mn:(o+1)*mn], g.n)
		})
		return nil
	})
}

func naiveMatMul(dt DType, g *mmGeom) kernelFunc {
	switch dt {
	case Float32:
		return naiveMatMulT[float32](g)
	case Float64:
		return naiveMatMulT[float64](g)
	case Int32:
		return naiveMatMulT[int32](g)
	case Int64:
		return naiveMatMulT[int64](g)
	case Uint32:
		return naiveMatMulT[uint32](g)
	case Uint64:
		return naiveMatMulT[uint64](g)
	}
	return nil
}

func naiveMatMulT[T numeric](g *mmGeom) kernelFunc {
	mk, kn, mn := g.m*g.k, g.k*g.n, g.m*g.n
	return func(in, out []*Tensor, _ *kctx) error {
		a, w, y := view[T](in[0].data), view[T](in[1].data), view[T](out[0].data)
		g.each(func(o, ai, bi int) {
			matmulRef(y[o*mn:(o+1)*mn], a[ai*mk:(ai+1)*mk], w[bi*kn:(bi+1)*kn], g.m, g.k, g.n, g.k, 1, g.n, 1)
		})
		return nil
	}
}

// matmulRef computes y (m×n, row-major) = A·B where A[i][p] is
// a[i·ars + p·acs] and B[p][j] is w[p·brs + j·bcs].
func matmulRef[T numeric](y, a, w []T, m, k, n, ars, acs, brs, bcs int) {
	clear(y[:m*n])
	for i := 0; i < m; i++ {
		row := y[i*n : (i+1)*n]
		for p := 0; p < k; p++ {
			av := a[i*ars+p*acs]
			if bcs == 1 {
				for j, bv := range w[p*brs : p*brs+n] {
					row[j] += av * bv
				}
				continue
			}
			for j := range row {
				row[j] += av * w[p*brs+j*bcs]
			}
		}
	}
}

// buildGemm: A is [M, K] ([K, M] with transA), B [K, N] ([N, K] with
// transB), C (optional from opset 11) broadcasts to [M, N].
func buildGemm(b *builder) {
	if !b.arity(2, 3, 1, 1) || !b.wantType(0, matmulTypes...) || !b.sameType(0, 1) || !b.sameType(0, 2) {
		return
	}
	x, w, c := b.in[0], b.in[1], b.input(2)
	if len(x.shape) != 2 || len(w.shape) != 2 {
		b.errf("A %v and B %v: Gemm needs matrices", x.shape, w.shape)
		return
	}
	transA, transB := b.attrInt("transA", 0) != 0, b.attrInt("transB", 0) != 0
	alpha, beta := b.attrFloat("alpha", 1), b.attrFloat("beta", 1)
	m, k := x.shape[0], x.shape[1]
	if transA {
		m, k = k, m
	}
	k2, n := w.shape[0], w.shape[1]
	if transB {
		k2, n = n, k2
	}
	if k != k2 {
		b.errf("A %v and B %v (transA %v, transB %v): inner dimensions %d and %d differ", x.shape, w.shape, transA, transB, k, k2)
		return
	}
	out := []int{m, n}
	if c != nil {
		if bs, ok := broadcastShape(out, c.shape); !ok || !sameShape(bs, out) {
			b.errf("C %v does not broadcast to [%d, %d]", c.shape, m, n)
			return
		}
		if beta == 0 {
			c = nil // beta·C is 0 (for finite C): nothing to read
		}
	}
	if b.failed() {
		return
	}
	b.setOut(0, x.dt, out)
	b.flops = 2 * float64(m) * float64(n) * float64(k)
	var cit *bcastIter
	if c != nil {
		cit = newBcastIter(out, c.shape)
	}
	if x.dt != Float32 {
		b.run(naiveGemm(x.dt, m, k, n, transA, transB, float64(alpha), float64(beta), cit))
		return
	}
	// C as the packed bias: a constant row (or scalar) broadcast over M.
	if w.c != nil && k > 0 && n > 0 {
		constC := c != nil && c.c != nil && c.numel() > 0 && (len(c.shape) < 2 || c.shape[0] == 1)
		var cT *Tensor
		if constC {
			cT = c.c
			cit = nil
		}
		key := fmt.Sprintf("gemm/%v/%v/%v/%p", transB, alpha, beta, cT)
		p := b.prepared(w.c, key, func() any {
			wt := w.c.Float32s()
			if transB || alpha != 1 {
				t := make([]float32, k*n)
				for p := 0; p < k; p++ {
					for j := 0; j < n; j++ {
						if transB {
							t[p*n+j] = alpha * wt[j*k+p]
						} else {
							t[p*n+j] = alpha * wt[p*n+j]
						}
					}
				}
				wt = t
			}
			var bias []float32
			if constC {
				cv := cT.Float32s()
				bias = make([]float32, n)
				for j := range bias {
					bias[j] = beta * cv[j%len(cv)]
				}
			}
			return kernels.Pack(wt, k, n, bias)
		}).(*kernels.Packed)
		if transA {
			b.scratch = 4 * m * k
		}
		b.run(func(in, o []*Tensor, kc *kctx) error {
			a, y := view[float32](in[0].data), view[float32](o[0].data)
			if transA {
				t := view[float32](kc.scratch)[:m*k]
				transpose(t, a, k, m)
				a = t
			}
			kernels.Dense(y, a, m, p, kernels.Linear)
			if cit != nil {
				addScaled(y, view[float32](in[2].data), beta, cit)
			}
			return nil
		})
		return
	}
	tA, tB := blas.NoTrans, blas.NoTrans
	lda, ldb := k, n
	if transA {
		tA, lda = blas.Trans, m
	}
	if transB {
		tB, ldb = blas.Trans, k
	}
	b.run(func(in, o []*Tensor, _ *kctx) error {
		y := view[float32](o[0].data)
		bt := float32(0)
		if cit != nil {
			broadcastCopy(y, view[float32](in[2].data), cit)
			bt = beta
		}
		if m == 0 || n == 0 {
			return nil
		}
		if k == 0 { // an empty product: beta·C or 0
			if cit == nil {
				clear(y)
			}
			for i := range y {
				y[i] *= bt
			}
			return nil
		}
		kernels.Sgemm(tA, tB, m, n, k, alpha, view[float32](in[0].data), max(lda, 1), view[float32](in[1].data), max(ldb, 1), bt, y, n)
		return nil
	})
}

// transpose writes the r×c matrix a as its c×r transpose into t.
func transpose[T any](t, a []T, r, c int) {
	for i := 0; i < r; i++ {
		row := a[i*c : (i+1)*c]
		for j, v := range row {
			t[j*r+i] = v
		}
	}
}

// broadcastCopy writes src broadcast over it (one input) into dst.
func broadcastCopy[T any](dst, src []T, it *bcastIter) {
	if it.n == 0 {
		return
	}
	run, s := it.runLen(), it.runStride(0)
	it.runs(func(o, i0, _, _ int) {
		d := dst[o : o+run]
		if s == 1 {
			copy(d, src[i0:i0+run])
			return
		}
		v := src[i0]
		for i := range d {
			d[i] = v
		}
	})
}

// addScaled adds beta·src, broadcast over it, to dst.
func addScaled(dst, src []float32, beta float32, it *bcastIter) {
	if it.n == 0 {
		return
	}
	run, s := it.runLen(), it.runStride(0)
	it.runs(func(o, i0, _, _ int) {
		d := dst[o : o+run]
		if s == 1 {
			for i, v := range src[i0 : i0+run] {
				d[i] += beta * v
			}
			return
		}
		v := beta * src[i0]
		for i := range d {
			d[i] += v
		}
	})
}

func naiveGemm(dt DType, m, k, n int, transA, transB bool, alpha, beta float64, cit *bcastIter) kernelFunc {
	switch dt {
	case Float32:
		return naiveGemmT[float32](m, k, n, transA, transB, alpha, beta, cit)
	case Float64:
		return naiveGemmT[float64](m, k, n, transA, transB, alpha, beta, cit)
	case Int32:
		return naiveGemmT[int32](m, k, n, transA, transB, alpha, beta, cit)
	case Int64:
		return naiveGemmT[int64](m, k, n, transA, transB, alpha, beta, cit)
	case Uint32:
		return naiveGemmT[uint32](m, k, n, transA, transB, alpha, beta, cit)
	case Uint64:
		return naiveGemmT[uint64](m, k, n, transA, transB, alpha, beta, cit)
	}
	return nil
}

// naiveGemmT computes the product in T, then alpha and beta·C: in T when
// they are integers, else in float64 rounded back.
func naiveGemmT[T numeric](m, k, n int, transA, transB bool, alpha, beta float64, cit *bcastIter) kernelFunc {
	ars, acs := k, 1
	if transA {
		ars, acs = 1, m
	}
	brs, bcs := n, 1
	if transB {
		brs, bcs = 1, k
	}
	integral := alpha == float64(int64(alpha)) && beta == float64(int64(beta))
	return func(in, out []*Tensor, k2 *kctx) error {
		a, w, y := view[T](in[0].data), view[T](in[1].data), view[T](out[0].data)
		matmulRef(y, a, w, m, k, n, ars, acs, brs, bcs)
		if alpha != 1 {
			for i, v := range y {
				if integral {
					y[i] = T(int64(alpha)) * v
				} else {
					y[i] = T(alpha * float64(v))
				}
			}
		}
		if cit == nil {
			return nil
		}
		c := view[T](in[2].data)
		run, s := cit.runLen(), cit.runStride(0)
		if cit.n == 0 {
			return nil
		}
		cit.runs(func(o, i0, _, _ int) {
			d := y[o : o+run]
			for i := range d {
				cv := c[i0+i*s]
				if integral {
					d[i] += T(int64(beta)) * cv
				} else {
					d[i] = T(float64(d[i]) + beta*float64(cv))
				}
			}
		})
		return nil
	}
}
