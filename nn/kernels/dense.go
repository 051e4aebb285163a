package kernels

import "github.com/aiaas/aiaas/internal/yield"

// Activation is an element-wise function that Dense applies in the
// micro-kernel's store epilogue, while the tile is still in registers (or,
// for kernels without a fused epilogue, right after each tile is stored,
// while it is in L1).
type Activation uint8

// The activations Dense fuses. Costlier ones (tanh, sigmoid, softmax) are
// left to the caller, on the output that is still in cache.
const (
	Linear Activation = iota // identity
	ReLU                     // max(0, v); NaN stays NaN and -0 stays -0, as with "if v < 0 { v = 0 }"
)

// Flags of a denseKernel call.
const (
	denseAcc  = 1 << iota // start from C (a later block of K); else from the bias
	denseBias             // start from the bias (first block of K); with neither, from zero
	denseReLU             // apply ReLU before storing
)

// denseKernel computes an mr×nr tile of C = epilogue(init + A·B̃) where A
// is read in place (mr rows of kc values, row stride lda), B̃ is a packed
// panel (kc rows of nr values, contiguous), init is C itself (denseAcc), nr
// values of bias broadcast over the rows (denseBias) or zero, and the
// epilogue is ReLU (denseReLU) or nothing. C has row stride ldc. kc ≥ 1.
type denseKernel func(kc int, a *float32, lda int, b, c *float32, ldc int, bias *float32, flags int)

// Packed is a dense layer's weight matrix W (k×n, row-major, y = x·W + b)
// packed once into the panel layout of the micro-kernel chosen for this CPU:
// ⌈n/nr⌉ panels of k rows of nr values, the last one zero-padded. Packing
// is what a GEMM otherwise redoes on every call; with the weights of a
// loaded model packed once, Dense only streams them.
//
// A Packed is read-only after Pack and safe for concurrent use by any
// number of Dense calls. It keeps references to the w and bias slices given
// to Pack (the one-row product reads W in its row-major layout, and the bias
// is read in place): they must not change while the Packed is in use, and a
// caller that changes W must call Pack again.
type Packed struct {
	kr     *kernel
	k, n   int
	kcStep int       // depth of one block of K: ⌈k/blocks⌉ for the fewest blocks of at most the kernel's kc
	w      []float32 // caller's row-major W, for m = 1
	bias   []float32 // caller's bias (nil: zero)
	panels []float32 // ⌈n/nr⌉·k·nr values
}

// Pack packs w (k×n, row-major) for Dense with bias (n values, or nil for
// none). It panics, as BLAS routines do, when k or n is below 1 or a slice
// is too short. The result is for the kernel in use at the time of the call.
func Pack(w []float32, k, n int, bias []float32) *Packed {
	if k < 1 {
		panic(kLT0)
	}
	if n < 1 {
		panic(nLT0)
	}
	if len(w) < k*n {
		panic(shortB)
	}
	if bias != nil && len(bias) < n {
		panic(shortBias)
	}
	kr := current()
	nr := kr.nr
	blocks := (k + kr.blk.kc - 1) / kr.blk.kc
	p := &Packed{kr: kr, k: k, n: n, kcStep: (k + blocks - 1) / blocks, w: w[:k*n], panels: make([]float32, roundUp(n, nr)*k)}
	if bias != nil {
		p.bias = bias[:n]
	}
	packBPanels(p.panels, w, n, false, 0, 0, k, n, nr)
	return p
}

// Bytes returns the memory the packed panels take (W and the bias are the
// caller's).
func (p *Packed) Bytes() int { return 4 * len(p.panels) }

// Dims returns the k×n shape of the packed matrix.
func (p *Packed) Dims() (k, n int) { return p.k, p.n }

// denseParallelMinFlops: below this many multiply-adds Dense stays on the
// calling goroutine. On the first MNIST layer (BenchmarkThresholdParallelDense,
// docs/RATIONALE.md) two goroutines gained 4–12 % at 64–128 rows on a quiet
// machine but lost up to 30 % when the other core was busy, and gained
// 27 % at 256 rows (25.7 M multiply-adds) and 80 % at 1024: so products
// split from 2²⁴, twice Sgemm's threshold.
var denseParallelMinFlops = 1 << 24

// shortBias and shortDst extend gonum's panic messages to Pack and Dense.
const (
	shortBias = "kernels: insufficient length of bias"
	shortDst  = "kernels: insufficient length of dst"
	badAct    = "kernels: unknown activation"
)

// Dense computes dst = act(x·W + bias) for m rows: x is m×k and dst m×n,
// both row-major and contiguous (strides k and n), W and bias those given
// to Pack. dst must not overlap x. It panics like BLAS on m < 0, short
// slices or an unknown activation. It is safe for concurrent use as long as
// the calls' dst do not overlap; it allocates nothing in the steady state.
//
// One row is a GEMV on the row-major W (no packing pays at m = 1), which
// passes over the weights of long runs of zeros in x (an image's
// background, one-hot features): a zero there contributes nothing, so a
// weight that is NaN or infinite against a zero input yields no NaN on
// that path (nn refuses such weights when it reads a model); more
// rows run the packed panels through the kernel's dense variant where it
// has one (AVX-512 8×32, AVX2 6×16, NEON 8×8: x read in place, bias and
// ReLU fused), else (the portable kernel) through its ordinary
// micro-kernel with the bias preloaded into dst and ReLU applied to each
// tile right after it is stored.
// Products above denseParallelMinFlops are split by rows over GOMAXPROCS
// goroutines of the kernels' pool.
func Dense(dst, x []float32, m int, p *Packed, act Activation) {
	if m < 0 {
		panic(mLT0)
	}
	if act > ReLU {
		panic(badAct)
	}
	if m == 0 {
		return
	}
	if len(x) < m*p.k {
		panic(shortA)
	}
	if len(dst) < m*p.n {
		panic(shortDst)
	}
	mr := p.kr.mr
	if m*p.n*p.k < denseParallelMinFlops || m < 2*mr {
		denseSerial(p, dst, x, m, act)
		return
	}
	h := helpers()
	if h == 0 {
		denseSerial(p, dst, x, m, act)
		return
	}
	// On the pool (no goroutine, no closure: a served model's steady
	// state allocates nothing), one block of rows per goroutine.
	workers := h + 1
	j := denseJobs.get()
	j.job = j
	j.p, j.dst, j.x, j.m, j.act = p, dst, x, m, act
	// At least as many columns as rows (x·W for a sequence of tokens, or
	// a language model's head): each goroutine takes a share of W's
	// panels and streams only those, rather than all of W for a share of
	// the rows.
	nr := p.kr.nr
	j.cols = p.kr.dense != nil && p.n >= m && p.n >= 2*nr*workers
	if j.cols {
		j.step = roundUp((p.n+workers-1)/workers, nr)
		j.run((p.n+j.step-1)/j.step, h)
		return
	}
	j.step = roundUp((m+workers-1)/workers, mr)
	j.run((m+j.step-1)/j.step, h)
}

type denseJob struct {
	parCtl
	p      *Packed
	dst, x []float32
	m      int
	act    Activation
	step   int  // rows, or columns with cols
	cols   bool // chunks of columns, not of rows
}

var denseJobs = newFreeList[denseJob]()

func (j *denseJob) free() {
	j.p, j.dst, j.x = nil, nil, nil
	denseJobs.put(j)
}

func (j *denseJob) runChunk(_ *workspace, i int) {
	if j.cols {
		j0 := i * j.step
		denseFusedRange(j.p, j.dst, j.x, j.m, j.act, j0, min(j.p.n, j0+j.step))
		return
	}
	i0 := i * j.step
	rows := min(j.step, j.m-i0)
	denseSerial(j.p, j.dst[i0*j.p.n:], j.x[i0*j.p.k:], rows, j.act)
}

func denseSerial(p *Packed, dst, x []float32, m int, act Activation) {
	k, n := p.k, p.n
	if m == 1 {
		y := dst[:n]
		if p.bias != nil {
			copy(y, p.bias)
		} else {
			clear(y)
		}
		if k >= sparseMinK && sparseLooking(x[:k]) {
			gemvTSegments(p, x[:k], y)
		} else {
			p.kr.gemvT(k, &x[0], &p.w[0], n, &y[0], n, 1)
		}
		if act == ReLU {
			relu(y)
		}
		return
	}
	if p.kr.dense != nil {
		denseFused(p, dst, x, m, act)
		return
	}
	denseEpilogue(p, dst, x, m, act)
}

// A single row with long runs of zeros (an image's background, one-hot
// features) skips the rows of W its zeros would multiply: at batch 1 the
// product streams all of W for one use of each weight, so the weights not
// read are the time saved. Runs shorter than sparseGap are computed (a
// call costs about what a dozen rows do); layers narrower than sparseMinK
// and rows that a sample shows dense take the one call.
const (
	sparseMinK = 256
	sparseGap  = 8
)

// sparseLooking samples 16 places of x evenly for runs of zeros: four
// zeros in a row at a quarter of them sends the row to gemvTSegments. A
// dense row pays about 16 comparisons; a row of ReLU outputs, zeros
// scattered, rarely passes (a place has four zeros with odds 1/16 at
// half zeros).
func sparseLooking(x []float32) bool {
	runs := 0
	for i := range 16 {
		j := i * (len(x) - 4) / 16
		if x[j] == 0 && x[j+1] == 0 && x[j+2] == 0 && x[j+3] == 0 {
			runs++
		}
	}
	return runs >= 4
}

// gemvTSegments adds x·W to y one segment of x at a time, a segment being
// a stretch of x between runs of at least sparseGap zeros. Zeros times
// finite weights add nothing; the sums of a segment are associated
// differently from one call over all of x, within the same error bound.
func gemvTSegments(p *Packed, x, y []float32) {
	n := p.n
	k := len(x)
	for i := 0; i < k; {
		for i < k && x[i] == 0 {
			i++
		}
		if i == k {
			break
		}
		// The segment runs to the next run of sparseGap zeros.
		j, zeros := i, 0
		for j < k && zeros < sparseGap {
			// Without a branch on the value (scattered zeros would
			// mispredict it).
			z := zeros + 1
			if x[j] != 0 {
				z = 0
			}
			zeros = z
			j++
		}
		end := j - zeros
		p.kr.gemvT(end-i, &x[i], &p.w[i*n], n, &y[0], n, 1)
		i = j
	}
}

// relu is the generic epilogue, with the semantics of the fused one.
func relu(z []float32) {
	for i, v := range z {
		if v < 0 {
			z[i] = 0
		}
	}
}

// denseFused is the loop nest for kernels with a denseKernel: for each
// chunk of columns, each block of K, each packed panel of W (kcStep×nr, L1-resident), each mr rows
// of x read in place. The first block starts from the bias, later ones
// from C; the last applies the activation before the store. Rows and
// columns past the last whole tile go through small zero-padded copies, so
// the kernel never reads or writes past the slices.
func denseFused(p *Packed, dst, x []float32, m int, act Activation) {
	denseFusedRange(p, dst, x, m, act, 0, p.n)
}

// denseFusedRange is denseFused on the columns j0…j1−1 (j0 a multiple of
// nr).
func denseFusedRange(p *Packed, dst, x []float32, m int, act Activation, j0, j1 int) {
	kr := p.kr
	mr, nr := kr.mr, kr.nr
	k := p.k
	ws := getWorkspace(mr*p.kcStep, nr, mr*nr)
	defer putWorkspace(ws)
	edgeBias, tc := ws.b[:nr], ws.tmp[:mr*nr]
	// With several blocks of K, each block adds into all of C: columns
	// go in chunks whose C stays in L2 across the blocks (GPT-2's LM
	// head: 128×50257 floats of C would otherwise go to memory and back).
	nc := j1 - j0
	if p.kcStep < k {
		nc = max(nr, denseCBlock/(4*m)/nr*nr)
	}
	for jc := j0; jc < j1; jc += nc {
		denseFusedCols(p, dst, x, m, act, jc, min(j1, jc+nc), ws, edgeBias, tc)
	}
}

// denseCBlock is the bytes of C that denseFused keeps in L2 while the
// blocks of K add into it (a quarter of a 1 MiB L2, with A's block and
// the panels beside it).
const denseCBlock = 256 << 10

// denseCopyAMax bounds the block of x that denseFused copies (floats).
const denseCopyAMax = 128 << 10

// denseFusedCols is denseFused on the columns j0…j1−1 (j0 a multiple of
// nr).
func denseFusedCols(p *Packed, dst, x []float32, m int, act Activation, j0, j1 int, ws *workspace, edgeBias, tc []float32) {
	kr := p.kr
	mr, nr := kr.mr, kr.nr
	k, n := p.k, p.n
	mFull := m / mr * mr
	var y yield.Point
	for pc := 0; pc < k; pc += p.kcStep {
		y.Maybe()
		kc := min(p.kcStep, k-pc)
		flags := denseAcc
		if pc == 0 {
			flags = denseBias
		}
		if pc+kc == k && act == ReLU {
			flags |= denseReLU
		}
		// The last mr rows when m is not a multiple of mr, zero-padded.
		var ta []float32
		if mFull < m {
			ta = ws.a[:mr*kc]
			clear(ta)
			for i := mFull; i < m; i++ {
				copy(ta[(i-mFull)*kc:(i-mFull+1)*kc], x[i*k+pc:i*k+pc+kc])
			}
		}
		// Rows of x a multiple of 4 KiB apart (k = 1024, 3072, …) map the
		// mr rows a tile reads to the same L1 sets, which thrash beside the
		// panel (the 3072×768 projection of GPT-2's MLP ran at half the
		// speed of its neighbours): the block of x is then copied to rows
		// kc apart first, once per block of K and chunk of columns.
		xa, lda := x[pc:], k
		if k%1024 == 0 && k > p.kcStep && mFull*kc <= denseCopyAMax {
			ws.grow(len(ws.b), mr*nr+mFull*kc)
			buf := ws.tmp[mr*nr : mr*nr+mFull*kc]
			tc = ws.tmp[:mr*nr]
			for i := 0; i < mFull; i++ {
				copy(buf[i*kc:(i+1)*kc], x[i*k+pc:i*k+pc+kc])
			}
			xa, lda = buf, kc
		}
		for jr := j0; jr < j1; jr += nr {
			nrr := min(nr, n-jr)
			bp := &p.panels[jr*k+pc*nr]
			var bias *float32
			switch {
			case p.bias == nil:
				clear(edgeBias)
				bias = &edgeBias[0]
			case nrr == nr:
				bias = &p.bias[jr]
			default:
				clear(edgeBias)
				copy(edgeBias, p.bias[jr:n])
				bias = &edgeBias[0]
			}
			if nrr == nr {
				for ir := 0; ir < mFull; ir += mr {
					kr.dense(kc, &xa[ir*lda], lda, bp, &dst[ir*n+jr], n, bias, flags)
				}
			} else {
				for ir := 0; ir < mFull; ir += mr {
					denseEdge(kr, kc, &xa[ir*lda], lda, bp, dst, ir, jr, mr, nrr, n, tc, bias, flags)
				}
			}
			if ta != nil {
				denseEdge(kr, kc, &ta[0], kc, bp, dst, mFull, jr, m-mFull, nrr, n, tc, bias, flags)
			}
		}
	}
}

// denseEdge runs one tile of rows×cols (at most mr×nr) of dst through the
// mr×nr scratch tile tc.
func denseEdge(kr *kernel, kc int, a *float32, lda int, bp *float32, dst []float32, ir, jr, rows, cols, ldc int, tc []float32, bias *float32, flags int) {
	nr := kr.nr
	if flags&denseAcc != 0 {
		for i := range rows {
			copy(tc[i*nr:i*nr+cols], dst[(ir+i)*ldc+jr:(ir+i)*ldc+jr+cols])
		}
	}
	kr.dense(kc, a, lda, bp, &tc[0], nr, bias, flags)
	for i := range rows {
		copy(dst[(ir+i)*ldc+jr:(ir+i)*ldc+jr+cols], tc[i*nr:i*nr+cols])
	}
}

// denseEpilogue is the loop nest for kernels without a denseKernel (the
// portable one): dst starts as the bias, the rows of x are packed
// per call as Sgemm packs A, the pre-packed panels of W are read in place,
// and ReLU is applied to each tile right after its last block of K.
func denseEpilogue(p *Packed, dst, x []float32, m int, act Activation) {
	kr := p.kr
	mr, nr := kr.mr, kr.nr
	k, n := p.k, p.n
	for r := range m {
		row := dst[r*n : (r+1)*n]
		if p.bias != nil {
			copy(row, p.bias)
		} else {
			clear(row)
		}
	}
	mcMax := min(kr.blk.mc, roundUp(m, mr))
	ws := getWorkspace(mcMax*p.kcStep, 0, mr*nr)
	defer putWorkspace(ws)
	ap, tmp := ws.a, ws.tmp[:mr*nr]
	var y yield.Point
	for pc := 0; pc < k; pc += p.kcStep {
		y.Maybe()
		kc := min(p.kcStep, k-pc)
		last := pc+kc == k && act == ReLU
		for ic := 0; ic < m; ic += kr.blk.mc {
			mc := min(kr.blk.mc, m-ic)
			packAPanels(ap, x, k, false, ic, pc, mc, kc, mr)
			for jr := 0; jr < n; jr += nr {
				nrr := min(nr, n-jr)
				bp := &p.panels[jr*k+pc*nr]
				for ir := 0; ir < mc; ir += mr {
					mrr := min(mr, mc-ir)
					cc := dst[(ic+ir)*n+jr:]
					if mrr == mr && nrr == nr {
						kr.gemm(kc, &ap[ir*kc], bp, nr, &cc[0], n, 1)
					} else {
						clear(tmp)
						kr.gemm(kc, &ap[ir*kc], bp, nr, &tmp[0], nr, 1)
						for i := range mrr {
							row := cc[i*n : i*n+nrr]
							for j, v := range tmp[i*nr : i*nr+nrr] {
								row[j] += v
							}
						}
					}
					if last {
						for i := range mrr {
							relu(cc[i*n : i*n+nrr])
						}
					}
				}
			}
		}
	}
}
