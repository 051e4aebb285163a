package kernels

import (
	"runtime"
	"sync"

	"github.com/aiaas/aiaas/internal/offheap"
	"github.com/aiaas/aiaas/internal/yield"
)

// Activations a packed GEMM's epilogue applies (besides Linear and ReLU,
// which Dense shares).
const (
	Clip      Activation = iota + ReLU + 1 // min(max(v, Epilogue.Min), Epilogue.Max): ReLU6 is Clip(0, 6)
	HardSwish                              // v · clamp(Alpha·v + Beta, 0, 1)
	LeakyReLU                              // v < 0 ? Alpha·v : v
)

// Epilogue is what GemmPacked applies to each output tile after the
// product, while the tile is hot: C = act(A·B + bias + residual).
// The zero value is a plain product.
type Epilogue struct {
	// Bias holds one value per row of C (an output channel of a
	// convolution), or is nil.
	Bias []float32
	// Residual, when not nil, is added before the activation; it has C's
	// layout (row stride ldc) and must not overlap C.
	Residual []float32
	Act      Activation
	// Min and Max bound Clip; Alpha and Beta parametrise HardSwish
	// (ONNX HardSigmoid's alpha and beta, 1/6 and 1/2 for HardSwish) and
	// LeakyReLU (Alpha).
	Min, Max, Alpha, Beta float32
}

// PackedA is a matrix A (m×k, row-major) packed once into the row panels
// of the micro-kernel chosen for this CPU: ⌈m/mr⌉ panels of k columns of
// mr values, the last zero-padded. It is the left operand of GemmPacked: a
// convolution's weights ([Cout, Cin·kh·kw]) packed when the model is
// loaded. It is read-only after PackA and safe for concurrent use.
type PackedA struct {
	kr     *kernel
	m, k   int
	panels []float32
	mem    *offheap.Block // owns panels: outside the Go heap when large
}

// PackA packs a (m×k, row stride lda ≥ k). It panics, as BLAS routines do,
// on m or k below 1, a short slice or a bad stride.
func PackA(a []float32, m, k, lda int) *PackedA {
	return packA(current(), a, m, k, lda)
}

// PackAFor is PackA for a product with n columns (a convolution's output
// pixels): when the kernel in use has a variant for few columns and n
// would waste fewer of its lanes in it (n = 49 or 196 with AVX-512, at
// least 256 rows), the panels are laid out for that variant, and
// PanelWidth says so: the BPacker must use it (Im2Col does). The result
// works for any n; it is only faster for the n it was made for. ResNet-18
// on AVX-512: 512×49×4608 146 → 166 GFLOP/s, 256×196×2304 164 → 178.
func PackAFor(a []float32, m, k, lda, n int) *PackedA {
	return packA(kernelFor(m, n), a, m, k, lda)
}

// PanelWidthFor returns the PanelWidth of PackAFor(·, m, ·, ·, n): two
// products whose widths agree can share one packed A.
func PanelWidthFor(m, n int) int { return kernelFor(m, n).nr }

// kernelFor is PackAFor's choice of kernel.
func kernelFor(m, n int) *kernel {
	kr := current()
	// Below 256 rows the variant measured slower even where it wastes
	// fewer lanes (64×196×384: 105 against 138 GFLOP/s, 160×49×960: 124
	// against 141): its transposed epilogue and B streaming from L2 cost
	// more than the lanes save when A has few panels.
	if t := kr.narrow; t != nil && n > 0 && m >= 256 {
		// Lanes used of those computed, each way.
		wide := float64(n) / float64(roundUp(n, kr.nr)) * float64(m) / float64(roundUp(m, kr.mr))
		narrow := float64(n) / float64(roundUp(n, t.nr)) * float64(m) / float64(roundUp(m, t.mr))
		if narrow > wide*1.05 {
			kr = t
		}
	}
	return kr
}

func packA(kr *kernel, a []float32, m, k, lda int) *PackedA {
	if m < 1 {
		panic(mLT0)
	}
	if k < 1 {
		panic(kLT0)
	}
	if lda < k {
		panic(badLdA)
	}
	if len(a) < (m-1)*lda+k {
		panic(shortA)
	}
	size := roundUp(m, kr.mr) * k
	mem := offheap.Alloc(4 * size)
	p := &PackedA{kr: kr, m: m, k: k, panels: mem.Float32s()[:size], mem: mem}
	mr := kr.mr
	for ir := 0; ir < m; ir += mr {
		panel := p.panels[ir*k : ir*k+k*mr]
		for i := 0; i < min(mr, m-ir); i++ {
			row := a[(ir+i)*lda : (ir+i)*lda+k]
			for q, v := range row {
				panel[q*mr+i] = v
			}
		}
	}
	return p
}

// Dims returns the m×k shape of the packed matrix.
func (p *PackedA) Dims() (m, k int) { return p.m, p.k }

// Unpack writes the packed matrix back to dst (m×k, row-major), so that a
// caller may keep only the packed copy of its weights. It panics if dst
// is short.
func (p *PackedA) Unpack(dst []float32) {
	m, k, mr := p.m, p.k, p.kr.mr
	if len(dst) < m*k {
		panic(shortA)
	}
	for ir := 0; ir < m; ir += mr {
		panel := p.panels[ir*k : ir*k+k*mr]
		for i := 0; i < min(mr, m-ir); i++ {
			row := dst[(ir+i)*k : (ir+i+1)*k]
			for q := range row {
				row[q] = panel[q*mr+i]
			}
		}
	}
	runtime.KeepAlive(p) // p.mem owns the panels
}

// Bytes returns the memory the packed panels take.
func (p *PackedA) Bytes() int { return 4 * len(p.panels) }

// PanelWidth returns the number of columns of B in one packed panel (the
// micro-kernel's nr), which a BPacker lays out.
func (p *PackedA) PanelWidth() int { return p.kr.nr }

// BPacker produces the right operand of GemmPacked block by block.
type BPacker interface {
	// PackB fills dst with rows pc…pc+kc−1 and columns jc…jc+nc−1 of the
	// right operand B (k×n) in panels nr = PanelWidth columns wide, each
	// stored row after row: element (p, j) at dst[(j/nr)·kc·nr + p·nr + j%nr],
	// with the columns past nc in the last panel set to zero. A convolution
	// writes its im2col patches straight into this layout. It is called
	// from several goroutines at once for disjoint blocks: different
	// column ranges, or different row ranges (pc, kc) of the same columns.
	PackB(dst []float32, pc, kc, jc, nc int)
}

// Flags of an epKernel call (tileArgs.flags).
const (
	tileAcc      = 1 << 0 // start from C (a later block of K)
	tileBias     = 1 << 1 // start from tileArgs.bias, one value per row; with neither, from zero
	tileRes      = 1 << 2 // add the residual tile before the activation
	tileActShift = 4      // bits 4–6: the Activation applied before the store
)

// tileArgs is the epilogue of one epKernel call. Its layout is read by
// the assembly (offsets 0, 8, 16, 24, 32, 36, 40, 44; TestTileArgsLayout).
type tileArgs struct {
	bias                *float32 // mr row biases (tileBias)
	res                 *float32 // residual tile (tileRes), row stride ldr
	ldr                 int      // in elements
	flags               int
	lo, hi, alpha, beta float32 // Epilogue.Min, Max, Alpha, Beta
}

// epKernel computes one mr×nr tile of C = act(init + Ã·B̃ + residual)
// with Ã a packed A panel block (kc columns of mr values) and B̃ a packed
// B panel (kc rows of nr values), init being C, the bias broadcast along
// each row, or zero (t.flags). C has row stride ldc. kc ≥ 1. The
// assembly kernels keep the tile in registers from the first
// multiply-add to the only store.
type epKernel func(kc int, a, b, c *float32, ldc int, t *tileArgs)

// Tuning of the packed GEMM (see BenchmarkGemmPackedConv and doc.go).
var (
	// gemmPackedMinFlops: products below this many multiply-adds stay on
	// the calling goroutine.
	gemmPackedMinFlops = 1 << 22
	// gemmPackedRowsMinFlops: the split by rows of A shares one packed B
	// between the cores, which costs a transfer between their caches;
	// below this many multiply-adds it lost to one core (MobileNetV2's
	// 160×49×960: 104 → 147 µs on two cores).
	gemmPackedRowsMinFlops = 1 << 24
	// packedNCBytes: the bytes of one packed block of B (kc×nc), the unit
	// the BPacker fills at once: a quarter of L2, so that it and the
	// block of A it meets stay in L2 while each kc×nr panel of it is
	// reused from L1 by every row panel of A.
	packedNCBytes = 0 // 0: L2/4
	// packedKC: the largest block of K; 0: as many rows as fill L1 with
	// one kc×nr panel of B, at most 384. A whole-L1 panel (twice the
	// Sgemm blocking's half) measured as fast or faster on every
	// convolution shape (BenchmarkGemmPackedBlocking: ResNet-18's
	// 256×196×2304 and 512×49×4608 8–9 % faster, since C is reloaded once
	// per block of K and A streams from L2 either way).
	packedKC = 0
	// packedNarrow: a block of B of at most this many panels is swept
	// inside each row panel of A rather than outside.
	packedNarrow = 0
)

// packedBlocks returns the blocking of a packed product with k rows of B:
// kc (the depth of one block of K: the fewest blocks of at most the
// kernel's kc, of equal depth), mc (rows of A per L2 block) and nc
// (columns of B packed at once).
func packedBlocks(kr *kernel, k int) (kc, mc, nc int) {
	blk := kr.blk
	kcMax := min(384, blk.l1d/(kr.nr*4)) &^ 7
	if packedKC > 0 {
		kcMax = packedKC
	}
	blocks := (k + kcMax - 1) / kcMax
	kc = (k + blocks - 1) / blocks
	if kr.fullK {
		kc = k
	}
	mc = blk.mc
	bytes := packedNCBytes
	if bytes <= 0 {
		bytes = blk.l2 / 4
	}
	nc = max(kr.nr, bytes/(kc*4)/kr.nr*kr.nr)
	return kc, mc, nc
}

// noEpilogue is the plain product, for a nil *Epilogue.
var noEpilogue Epilogue

// GemmPacked computes C = epilogue(A·B) for the packed A (m×k) and the
// right operand B (k×n) produced block by block by packB. C is m×n,
// row-major with row stride ldc ≥ n. The bias, the residual and the
// activation are applied by the micro-kernel in registers, before its
// only store of each tile.
//
// Products above gemmPackedMinFlops are split over GOMAXPROCS goroutines
// of a persistent pool: by columns when n is large (each goroutine packs
// its own columns of B), by rows of A when n is small and m large (B is
// packed once, by all of them, then shared). It is safe for concurrent
// use on disjoint C and allocates nothing in the steady state.
//
// It panics like BLAS on bad sizes, and on an unknown activation.
func GemmPacked(c []float32, ldc int, a *PackedA, n int, packB BPacker, ep *Epilogue) {
	defer runtime.KeepAlive(a) // a.mem owns the panels the kernels read
	m, k := a.m, a.k
	if n < 0 {
		panic(nLT0)
	}
	if ldc < max(1, n) {
		panic(badLdC)
	}
	if n == 0 {
		return
	}
	if len(c) < (m-1)*ldc+n {
		panic(shortC)
	}
	if ep == nil {
		ep = &noEpilogue
	}
	if ep.Bias != nil && len(ep.Bias) < m {
		panic(shortBias)
	}
	if ep.Residual != nil && len(ep.Residual) < (m-1)*ldc+n {
		panic(shortC)
	}
	if ep.Act > LeakyReLU {
		panic(badAct)
	}
	g := gemmArgs{c: c, ldc: ldc, a: a, n: n, packB: packB, ep: ep}
	h := 0
	if m*n*k >= gemmPackedMinFlops {
		h = helpers()
	}
	if h == 0 {
		ws := getWorkspace(0, 0, 0)
		g.runCols(ws, 0, n)
		putWorkspace(ws)
		return
	}
	kr := a.kr
	mr, nr := kr.mr, kr.nr
	p := h + 1
	nPanels := (n + nr - 1) / nr
	mPanels := (m + mr - 1) / mr
	// By columns when there are enough of them, or at least two panels a
	// goroutine and A small enough to be read again by each; by rows of
	// A (B packed once and shared) when A is the larger operand, for
	// products that amortise the shared B crossing between cores.
	byCols := nPanels >= 4*p || (nPanels >= 2*p && m*k*4 <= kr.blk.l2/2)
	if !byCols && (mPanels < 2*p || m*n*k < gemmPackedRowsMinFlops) {
		if nPanels < 2*p {
			ws := getWorkspace(0, 0, 0)
			g.runCols(ws, 0, n)
			putWorkspace(ws)
			return
		}
		byCols = true
	}
	j := gemmJobs.get()
	j.job = j
	j.g = g
	var chunks int
	switch {
	case byCols:
		// By columns: about four chunks a goroutine, whole panels each.
		j.packChunks = 0
		j.colStep = roundUp((n+4*p-1)/(4*p), nr)
		chunks = (n + j.colStep - 1) / j.colStep
	default:
		// By rows: B packed once into j.bfull (all of K, in pieces of
		// rows of each panel), then about two chunks of rows a goroutine.
		pieces := (2*p + nPanels - 1) / nPanels
		j.kStep = (k + pieces - 1) / pieces
		pieces = (k + j.kStep - 1) / j.kStep
		j.pieces = pieces
		j.packChunks = nPanels * pieces
		j.rowStep = roundUp((m+2*p-1)/(2*p), mr)
		chunks = j.packChunks + (m+j.rowStep-1)/j.rowStep
		if need := nPanels * nr * k; cap(j.bfull) < need {
			j.bfull = make([]float32, need)
		}
		j.bfull = j.bfull[:nPanels*nr*k]
		j.packed.Add(j.packChunks)
	}
	j.run(chunks, h)
}

// gemmArgs are GemmPacked's operands.
type gemmArgs struct {
	c     []float32
	ldc   int
	a     *PackedA
	n     int
	packB BPacker
	ep    *Epilogue
}

// gemmJob is one parallel GemmPacked call.
type gemmJob struct {
	parCtl
	g             gemmArgs
	colStep       int // by columns: columns per chunk
	packChunks    int // by rows: chunks that pack B (the first ones)
	pieces, kStep int // by rows: pieces of K per packed panel, rows of K per piece
	rowStep       int // by rows: rows of C per chunk
	packed        sync.WaitGroup
	bfull         []float32 // by rows: all of B, ⌈n/nr⌉ panels of k×nr
}

var gemmJobs = newFreeList[gemmJob]()

func (j *gemmJob) free() {
	j.g = gemmArgs{}
	gemmJobs.put(j)
}

func (j *gemmJob) runChunk(ws *workspace, i int) {
	g := &j.g
	if j.packChunks == 0 {
		j0 := i * j.colStep
		g.runCols(ws, j0, min(g.n, j0+j.colStep))
		return
	}
	kr := g.a.kr
	nr, k := kr.nr, g.a.k
	if i < j.packChunks {
		panel, piece := i/j.pieces, i%j.pieces
		pc := piece * j.kStep
		kc := min(j.kStep, k-pc)
		jc := panel * nr
		off := (panel*k + pc) * nr
		g.packB.PackB(j.bfull[off:off+kc*nr], pc, kc, jc, min(nr, g.n-jc))
		j.packed.Done()
		return
	}
	j.packed.Wait()
	i0 := (i - j.packChunks) * j.rowStep
	i1 := min(g.a.m, i0+j.rowStep)
	kc, mc, _ := packedBlocks(kr, k)
	var y yield.Point
	for pc := 0; pc < k; pc += kc {
		y.Maybe()
		kcc := min(kc, k-pc)
		g.block(ws, j.bfull[pc*nr:], k*nr, pc, kcc, 0, g.n, i0, i1, mc)
	}
}

// runCols computes columns j0…j1−1 of C (j0 a multiple of nr): for each
// block of nc columns and each block of K, the BPacker fills the
// workspace's kc×nc block of B, and block runs the tiles over it.
func (g *gemmArgs) runCols(ws *workspace, j0, j1 int) {
	kr := g.a.kr
	nr, k := kr.nr, g.a.k
	kc, mc, nc := packedBlocks(kr, k)
	nc = min(nc, roundUp(j1-j0, nr))
	ws.grow(nc*kc, 0)
	var y yield.Point
	for jc := j0; jc < j1; jc += nc {
		ncc := min(nc, j1-jc)
		for pc := 0; pc < k; pc += kc {
			y.Maybe()
			kcc := min(kc, k-pc)
			bp := ws.b[:roundUp(ncc, nr)*kcc]
			g.packB.PackB(bp, pc, kcc, jc, ncc)
			g.block(ws, bp, kcc*nr, pc, kcc, jc, ncc, 0, g.a.m, mc)
		}
	}
}

// block runs the micro-kernel over rows i0…i1−1 (i0 a multiple of mr) and
// columns jc…jc+nc−1 of C for the block pc…pc+kc−1 of K, whose packed B
// panels start at bp, pstride values apart. The first block of K starts from the bias (or
// zero), later ones from C; the last adds the residual and applies the
// activation. Tiles past m or n go through the workspace's scratch tile.
func (g *gemmArgs) block(ws *workspace, bp []float32, pstride, pc, kc, jc, nc, i0, i1, mc int) {
	a, ep := g.a, g.ep
	kr := a.kr
	mr, nr, m, k := kr.mr, kr.nr, a.m, a.k
	t := &ws.t
	*t = tileArgs{}
	switch {
	case pc > 0:
		t.flags = tileAcc
	case ep.Bias != nil:
		t.flags = tileBias
	}
	last := pc+kc == k
	if last {
		if ep.Residual != nil {
			t.flags |= tileRes
		}
		t.flags |= int(ep.Act) << tileActShift
		t.lo, t.hi, t.alpha, t.beta = ep.Min, ep.Max, ep.Alpha, ep.Beta
	}
	ws.grow(0, 2*mr*nr+mr)
	s := ws.tmp[:2*mr*nr+mr]
	// A narrow block of B (n small: a few panels) is swept inside each
	// row panel of A, so each A panel is read once, from L1; a wide one
	// stays in L2 while each of its kc×nr panels serves every row panel
	// of A from L1.
	narrow := nc <= packedNarrow*nr
	for ic := i0; ic < i1; ic += mc {
		ie := min(ic+mc, i1)
		if narrow {
			for ir := ic; ir < ie; ir += mr {
				for jr := 0; jr < nc; jr += nr {
					g.tile(t, s, bp, pstride, pc, kc, jc, jr, nc, ir)
				}
			}
			continue
		}
		// Whole tiles inline (for small K the call to tile costs 10 %),
		// the row panel cut by m and the panel cut by n through tile.
		irFull := max(ic, min(ie, m/mr*mr))
		for jr := 0; jr < nc; jr += nr {
			ir := ic
			if nc-jr >= nr {
				b := &bp[(jr/nr)*pstride]
				col := jc + jr
				for ; ir < irFull; ir += mr {
					if t.flags&tileBias != 0 {
						t.bias = &ep.Bias[ir]
					}
					if t.flags&tileRes != 0 {
						t.res, t.ldr = &ep.Residual[ir*g.ldc+col], g.ldc
					}
					kr.gemmEp(kc, &a.panels[ir*k+pc*mr], b, &g.c[ir*g.ldc+col], g.ldc, t)
				}
			}
			for ; ir < ie; ir += mr {
				g.tile(t, s, bp, pstride, pc, kc, jc, jr, nc, ir)
			}
		}
	}
	t.bias, t.res = nil, nil
}

// tile runs the micro-kernel on the tile of rows ir… and columns
// jc+jr… of C, through the scratch s (tile, residual tile, bias) when it
// is cut by m or n.
func (g *gemmArgs) tile(t *tileArgs, s, bp []float32, pstride, pc, kc, jc, jr, nc, ir int) {
	a, ep := g.a, g.ep
	kr := a.kr
	mr, nr, m, k := kr.mr, kr.nr, a.m, a.k
	c, ldc := g.c, g.ldc
	tc, rt, bt := s[:mr*nr], s[mr*nr:2*mr*nr], s[2*mr*nr:]
	nrr := min(nr, nc-jr)
	b := &bp[(jr/nr)*pstride]
	col := jc + jr
	mrr := min(mr, m-ir)
	ap := &a.panels[ir*k+pc*mr]
	if t.flags&tileBias != 0 {
		if mrr == mr {
			t.bias = &ep.Bias[ir]
		} else {
			clear(bt)
			copy(bt, ep.Bias[ir:m])
			t.bias = &bt[0]
		}
	}
	if mrr == mr && nrr == nr {
		if t.flags&tileRes != 0 {
			t.res, t.ldr = &ep.Residual[ir*ldc+col], ldc
		}
		kr.gemmEp(kc, ap, b, &c[ir*ldc+col], ldc, t)
		return
	}
	if t.flags&tileAcc != 0 {
		for i := range mrr {
			copy(tc[i*nr:i*nr+nrr], c[(ir+i)*ldc+col:])
		}
	}
	if t.flags&tileRes != 0 {
		for i := range mrr {
			copy(rt[i*nr:i*nr+nrr], ep.Residual[(ir+i)*ldc+col:])
		}
		t.res, t.ldr = &rt[0], nr
	}
	kr.gemmEp(kc, ap, b, &tc[0], nr, t)
	for i := range mrr {
		copy(c[(ir+i)*ldc+col:(ir+i)*ldc+col+nrr], tc[i*nr:i*nr+nrr])
	}
}
