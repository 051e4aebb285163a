package kernels

import (
	"runtime"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// gonum's panic messages, kept verbatim so that a caller recovering a
// panic sees the same text whichever BLAS is registered.
const (
	badTranspose = "blas: illegal transpose"
	mLT0         = "blas: m < 0"
	nLT0         = "blas: n < 0"
	kLT0         = "blas: k < 0"
	badLdA       = "blas: bad leading dimension of A"
	badLdB       = "blas: bad leading dimension of B"
	badLdC       = "blas: bad leading dimension of C"
	shortA       = "blas: insufficient length of a"
	shortB       = "blas: insufficient length of b"
	shortC       = "blas: insufficient length of c"
	shortX       = "blas: insufficient length of x"
	shortY       = "blas: insufficient length of y"
)

// Tuning thresholds, chosen by measurement (see BenchmarkThreshold* and
// docs/RATIONALE.md).
var (
	// unpackedBMaxRows: up to this many rows of C (and while B fits in
	// half of L2), B is read in place instead of packed: each B value then
	// feeds so few rows that copying it costs more than the strided reads.
	// Measured on the MNIST first layer (784×128): in place wins at every
	// m from 8 (3.8×) to 256 (1.2×).
	unpackedBMaxRows = 256

	// parallelMinFlops: below this many multiply-adds a product stays on
	// the calling goroutine. The hand-off costs a few µs, and a serving
	// process already runs one request per core, so only products that
	// take ≳50 µs on one core are split.
	parallelMinFlops = 1 << 23
)

// Sgemm computes C = alpha·op(A)·op(B) + beta·C, row-major, exactly as
// gonum's blas.Float32 Sgemm (same arguments, checks and panics); it is what
// Implementation().Sgemm calls, exported so nn can skip blas32's wrapping.
// It is safe for concurrent use as long as the calls' C do not overlap.
func Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	sgemm(parallelMinFlops, tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// trainMinFlops is SgemmTrain's threshold for splitting a product: 2^20
// multiply-adds, about 10 µs on one core.
const trainMinFlops = 1 << 20

// SgemmTrain is Sgemm for throughput work, where the caller has no other
// request to run on the other cores (a training step): products from 2^20
// multiply-adds are split across GOMAXPROCS, not only from 2^23, and a
// product whose C is too small to split by rows or columns (a weight
// gradient: few outputs, a long inner dimension) is split along k, each
// part summed into its own buffer and added at the end. The sum's order
// then depends on GOMAXPROCS, as it does for any threaded BLAS.
func SgemmTrain(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	sgemm(trainMinFlops, tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func sgemm(minFlops int, tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	switch tA {
	default:
		panic(badTranspose)
	case blas.NoTrans, blas.Trans, blas.ConjTrans:
	}
	switch tB {
	default:
		panic(badTranspose)
	case blas.NoTrans, blas.Trans, blas.ConjTrans:
	}
	if m < 0 {
		panic(mLT0)
	}
	if n < 0 {
		panic(nLT0)
	}
	if k < 0 {
		panic(kLT0)
	}
	aT := tA == blas.Trans || tA == blas.ConjTrans
	if aT {
		if lda < max(1, m) {
			panic(badLdA)
		}
	} else if lda < max(1, k) {
		panic(badLdA)
	}
	bT := tB == blas.Trans || tB == blas.ConjTrans
	if bT {
		if ldb < max(1, k) {
			panic(badLdB)
		}
	} else if ldb < max(1, n) {
		panic(badLdB)
	}
	if ldc < max(1, n) {
		panic(badLdC)
	}
	if m == 0 || n == 0 {
		return
	}
	if aT {
		if len(a) < (k-1)*lda+m {
			panic(shortA)
		}
	} else if len(a) < (m-1)*lda+k {
		panic(shortA)
	}
	if bT {
		if len(b) < (n-1)*ldb+k {
			panic(shortB)
		}
	} else if len(b) < (k-1)*ldb+n {
		panic(shortB)
	}
	if len(c) < (m-1)*ldc+n {
		panic(shortC)
	}
	if (alpha == 0 || k == 0) && beta == 1 {
		return
	}
	if beta != 1 {
		for i := range m {
			row := c[i*ldc : i*ldc+n]
			if beta == 0 {
				clear(row) // BLAS: with beta = 0, C is not read, so NaN there is ignored
				continue
			}
			for j := range row {
				row[j] *= beta
			}
		}
	}
	if alpha == 0 || k == 0 {
		return
	}
	gemm(current(), minFlops, aT, bT, m, n, k, alpha, a, lda, b, ldb, c, ldc)
}

// gemm computes C += alpha·op(A)·op(B) on checked arguments, on several
// goroutines from minFlops multiply-adds.
func gemm(kr *kernel, minFlops int, aT, bT bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if m == 1 && !bT {
		// One row of A times B: a GEMV over the rows of B, no packing.
		x := a[:k]
		if aT && lda != 1 {
			ws := getWorkspace(0, 0, k)
			defer putWorkspace(ws)
			x = ws.tmp[:k]
			for p := range x {
				x[p] = a[p*lda]
			}
		}
		kr.gemvT(k, &x[0], &b[0], ldb, &c[0], n, alpha)
		return
	}
	workers := runtime.GOMAXPROCS(0)
	if workers < 2 || m*n*k < minFlops {
		gemmSerial(kr, aT, bT, m, n, k, alpha, a, lda, b, ldb, c, ldc)
		return
	}
	if minFlops < parallelMinFlops && (m+kr.mr-1)/kr.mr < workers && (n+kr.nr-1)/kr.nr < workers && k >= 64*workers {
		gemmSplitK(kr, workers, aT, bT, m, n, k, alpha, a, lda, b, ldb, c, ldc)
		return
	}
	// Split the larger of m and n into one slab per worker, each a
	// multiple of the micro-tile so only the last slab has an edge. Each
	// worker packs its own panels: that repeats the packing of the shared
	// operand, which is cheap next to the m·n·k product at these sizes.
	var wg sync.WaitGroup
	if m >= n {
		step := roundUp((m+workers-1)/workers, kr.mr)
		for i0 := 0; i0 < m; i0 += step {
			rows := min(step, m-i0)
			var aa []float32
			if aT {
				aa = a[i0:]
			} else {
				aa = a[i0*lda:]
			}
			cc := c[i0*ldc:]
			wg.Go(func() { gemmSerial(kr, aT, bT, rows, n, k, alpha, aa, lda, b, ldb, cc, ldc) })
		}
	} else {
		step := roundUp((n+workers-1)/workers, kr.nr)
		for j0 := 0; j0 < n; j0 += step {
			cols := min(step, n-j0)
			var bb []float32
			if bT {
				bb = b[j0*ldb:]
			} else {
				bb = b[j0:]
			}
			cc := c[j0:]
			wg.Go(func() { gemmSerial(kr, aT, bT, m, cols, k, alpha, a, lda, bb, ldb, cc, ldc) })
		}
	}
	wg.Wait()
}

// gemmSplitK computes C += alpha·op(A)·op(B) in parts of the inner
// dimension: the first part into C, the others into buffers of C's size
// added to it at the end.
func gemmSplitK(kr *kernel, workers int, aT, bT bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	step := (k + workers - 1) / workers
	parts := make([][]float32, 0, workers-1)
	var wg sync.WaitGroup
	for k0 := step; k0 < k; k0 += step {
		kk := min(step, k-k0)
		// Columns k0… of op(A) and rows k0… of op(B).
		var aa, bb []float32
		if aT {
			aa = a[k0*lda:]
		} else {
			aa = a[k0:]
		}
		if bT {
			bb = b[k0:]
		} else {
			bb = b[k0*ldb:]
		}
		part := make([]float32, m*n)
		parts = append(parts, part)
		wg.Go(func() { gemmSerial(kr, aT, bT, m, n, kk, alpha, aa, lda, bb, ldb, part, n) })
	}
	gemmSerial(kr, aT, bT, m, n, min(step, k), alpha, a, lda, b, ldb, c, ldc)
	wg.Wait()
	for _, part := range parts {
		for i := range m {
			row := c[i*ldc : i*ldc+n]
			for j, v := range part[i*n : (i+1)*n] {
				row[j] += v
			}
		}
	}
}

func roundUp(x, m int) int { return (x + m - 1) / m * m }

// workspace holds the packing buffers of one gemmSerial call (or of one
// goroutine of the pool, which keeps its own).
type workspace struct {
	a, b, tmp []float32
	t         tileArgs // GemmPacked's tile epilogue, here so it never escapes per call
}

// grow makes b and tmp at least nb and ntmp long.
func (ws *workspace) grow(nb, ntmp int) {
	if cap(ws.b) < nb {
		ws.b = make([]float32, nb)
	}
	if cap(ws.tmp) < ntmp {
		ws.tmp = make([]float32, ntmp)
	}
	ws.b, ws.tmp = ws.b[:cap(ws.b)], ws.tmp[:cap(ws.tmp)]
}

// workspaces keeps packing buffers between calls. It is a bounded free
// list, not a sync.Pool: a pool is emptied by every other garbage
// collection, and a served model would then allocate its buffers again
// after each one (hundreds of KiB per convolution).
var workspaces = make(chan *workspace, 64)

func getWorkspace(na, nb, ntmp int) *workspace {
	var ws *workspace
	select {
	case ws = <-workspaces:
	default:
		ws = new(workspace)
	}
	if cap(ws.a) < na {
		ws.a = make([]float32, na)
	}
	if cap(ws.b) < nb {
		ws.b = make([]float32, nb)
	}
	if cap(ws.tmp) < ntmp {
		ws.tmp = make([]float32, ntmp)
	}
	ws.a, ws.b, ws.tmp = ws.a[:cap(ws.a)], ws.b[:cap(ws.b)], ws.tmp[:cap(ws.tmp)]
	return ws
}

func putWorkspace(ws *workspace) {
	select {
	case workspaces <- ws:
	default: // more than the list keeps: let the collector have it
	}
}

// gemmSerial is the Goto/BLIS loop nest on one goroutine.
func gemmSerial(kr *kernel, aT, bT bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	mr, nr := kr.mr, kr.nr
	blk := kr.blk
	kcMax := min(blk.kc, k)
	mcMax := min(blk.mc, roundUp(m, mr))
	ncMax := min(blk.nc, roundUp(n, nr))
	packB := bT || m > unpackedBMaxRows || k*n*4 > blk.l2/2
	ws := getWorkspace(mcMax*kcMax, ncMax*kcMax, mr*nr)
	defer putWorkspace(ws)
	ap, bp, tmp := ws.a, ws.b, ws.tmp[:mr*nr]

	for jc := 0; jc < n; jc += blk.nc {
		nc := min(blk.nc, n-jc)
		for pc := 0; pc < k; pc += blk.kc {
			kc := min(blk.kc, k-pc)
			if packB {
				packBPanels(bp, b, ldb, bT, pc, jc, kc, nc, nr)
			}
			for ic := 0; ic < m; ic += blk.mc {
				mc := min(blk.mc, m-ic)
				packAPanels(ap, a, lda, aT, ic, pc, mc, kc, mr)
				for jr := 0; jr < nc; jr += nr {
					nrr := min(nr, nc-jr)
					var bPanel *float32
					bStride := nr
					switch {
					case packB:
						bPanel = &bp[jr*kc]
					case nrr == nr:
						bPanel, bStride = &b[pc*ldb+jc+jr], ldb
					default:
						// The kernel reads nr columns: pack the edge panel
						// so it never reads past the end of B.
						packBPanels(bp, b, ldb, false, pc, jc+jr, kc, nrr, nr)
						bPanel = &bp[0]
					}
					for ir := 0; ir < mc; ir += mr {
						mrr := min(mr, mc-ir)
						cc := c[(ic+ir)*ldc+jc+jr:]
						if mrr == mr && nrr == nr {
							kr.gemm(kc, &ap[ir*kc], bPanel, bStride, &cc[0], ldc, alpha)
							continue
						}
						clear(tmp)
						kr.gemm(kc, &ap[ir*kc], bPanel, bStride, &tmp[0], nr, alpha)
						for i := range mrr {
							row := cc[i*ldc : i*ldc+nrr]
							for j, v := range tmp[i*nr : i*nr+nrr] {
								row[j] += v
							}
						}
					}
				}
			}
		}
	}
}

// packAPanels copies op(A)[ic:ic+mc, pc:pc+kc] into panels of mr rows, each
// stored column after column (dst[p*mr+i]), the last one padded with zeros.
func packAPanels(dst, a []float32, lda int, aT bool, ic, pc, mc, kc, mr int) {
	for ir := 0; ir < mc; ir += mr {
		mrr := min(mr, mc-ir)
		panel := dst[ir*kc : ir*kc+kc*mr]
		if mrr < mr {
			clear(panel)
		}
		if aT {
			for p := range kc {
				src := a[(pc+p)*lda+ic+ir:]
				copy(panel[p*mr:p*mr+mrr], src[:mrr])
			}
			continue
		}
		for i := range mrr {
			src := a[(ic+ir+i)*lda+pc:]
			src = src[:kc]
			for p, v := range src {
				panel[p*mr+i] = v
			}
		}
	}
}

// packBPanels copies op(B)[pc:pc+kc, jc:jc+nc] into panels of nr columns,
// each stored row after row (dst[p*nr+j]), the last one padded with zeros.
func packBPanels(dst, b []float32, ldb int, bT bool, pc, jc, kc, nc, nr int) {
	for jr := 0; jr < nc; jr += nr {
		nrr := min(nr, nc-jr)
		panel := dst[jr*kc : jr*kc+kc*nr]
		if nrr < nr {
			clear(panel)
		}
		if !bT {
			for p := range kc {
				src := b[(pc+p)*ldb+jc+jr:]
				copy(panel[p*nr:p*nr+nrr], src[:nrr])
			}
			continue
		}
		for j := range nrr {
			src := b[(jc+jr+j)*ldb+pc:]
			src = src[:kc]
			for p, v := range src {
				panel[p*nr+j] = v
			}
		}
	}
}

// Sgemv computes y = alpha·op(A)·x + beta·y exactly as gonum's blas.Float32
// Sgemv. The transposed, unit-stride form is ours; the others are gonum's.
// It is safe for concurrent use as long as the calls' y do not overlap.
func Sgemv(tA blas.Transpose, m, n int, alpha float32, a []float32, lda int, x []float32, incX int, beta float32, y []float32, incY int) {
	// Only y = alpha·Aᵀ·x + beta·y with unit strides is ours: it is the
	// batch-1 layer product. gonum's own assembly already does the
	// row-dot-product form well, and it checks the arguments.
	if tA == blas.NoTrans || (tA != blas.Trans && tA != blas.ConjTrans) || incX != 1 || incY != 1 || m <= 0 || n <= 0 || lda < n {
		gonum.Implementation{}.Sgemv(tA, m, n, alpha, a, lda, x, incX, beta, y, incY)
		return
	}
	if len(x) < m {
		panic(shortX)
	}
	if len(y) < n {
		panic(shortY)
	}
	if len(a) < lda*(m-1)+n {
		panic(shortA)
	}
	if alpha == 0 && beta == 1 {
		return
	}
	y = y[:n]
	if beta != 1 {
		if beta == 0 {
			clear(y)
		} else {
			for i := range y {
				y[i] *= beta
			}
		}
	}
	if alpha == 0 {
		return
	}
	current().gemvT(m, &x[0], &a[0], lda, &y[0], n, alpha)
}
