package kernels

import (
	"runtime"
	"sync"
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
}

// PackA packs a (m×k, row stride lda ≥ k). It panics, as BLAS routines do,
// on m or k below 1, a short slice or a bad stride.
func PackA(a []float32, m, k, lda int) *PackedA {
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
	kr := current()
	p := &PackedA{kr: kr, m: m, k: k, panels: make([]float32, roundUp(m, kr.mr)*k)}
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
	// from several goroutines at once for disjoint column ranges.
	PackB(dst []float32, pc, kc, jc, nc int)
}

// gemmPackedMinFlops: products below this stay on the calling goroutine.
var gemmPackedMinFlops = 1 << 22

// GemmPacked computes C = epilogue(A·B) for the packed A (m×k) and the
// right operand B (k×n) produced block by block by packB. C is m×n,
// row-major with row stride ldc ≥ n. Products above gemmPackedMinFlops are
// split by columns over GOMAXPROCS goroutines. It is safe for concurrent
// use on disjoint C and allocates nothing in the steady state.
//
// It panics like BLAS on bad sizes.
func GemmPacked(c []float32, ldc int, a *PackedA, n int, packB BPacker, ep *Epilogue) {
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
		ep = &Epilogue{}
	}
	if ep.Bias != nil && len(ep.Bias) < m {
		panic(shortBias)
	}
	if ep.Residual != nil && len(ep.Residual) < (m-1)*ldc+n {
		panic(shortC)
	}
	workers := runtime.GOMAXPROCS(0)
	nr := a.kr.nr
	if workers < 2 || m*n*k < gemmPackedMinFlops || n < 2*nr {
		gemmPackedSerial(c, ldc, a, 0, n, packB, ep)
		return
	}
	step := roundUp((n+workers-1)/workers, nr)
	var wg sync.WaitGroup
	// The goroutines capture a copy of ep: capturing ep itself, which is
	// assigned above, would move it to the heap on every call, serial or
	// not.
	epc := ep
	for j0 := 0; j0 < n; j0 += step {
		cols := min(step, n-j0)
		wg.Go(func() { gemmPackedSerial(c, ldc, a, j0, cols, packB, epc) })
	}
	wg.Wait()
}

// gemmPackedSerial computes columns j0…j0+n−1 of C.
func gemmPackedSerial(c []float32, ldc int, a *PackedA, j0, n int, packB BPacker, ep *Epilogue) {
	kr := a.kr
	mr, nr := kr.mr, kr.nr
	m, k := a.m, a.k
	blk := kr.blk
	kcMax := min(blk.kc, k)
	ncMax := min(blk.nc, roundUp(n, nr))
	ws := getWorkspace(0, ncMax*kcMax, mr*nr)
	defer putWorkspace(ws)
	bp, tmp := ws.b, ws.tmp[:mr*nr]
	for jc := 0; jc < n; jc += blk.nc {
		nc := min(blk.nc, n-jc)
		for pc := 0; pc < k; pc += blk.kc {
			kc := min(blk.kc, k-pc)
			packB.PackB(bp[:roundUp(nc, nr)*kc], pc, kc, j0+jc, nc)
			first, last := pc == 0, pc+kc == k
			for ir := 0; ir < m; ir += mr {
				mrr := min(mr, m-ir)
				ap := &a.panels[ir*k+pc*mr]
				for jr := 0; jr < nc; jr += nr {
					nrr := min(nr, nc-jr)
					col := j0 + jc + jr
					cc := c[ir*ldc+col:]
					full := mrr == mr && nrr == nr
					// The tile: C itself when whole, else the scratch tile.
					t, ldt := cc, ldc
					if !full {
						t, ldt = tmp, nr
						if first {
							clear(tmp)
						} else {
							for i := range mrr {
								copy(tmp[i*nr:i*nr+nrr], cc[i*ldc:i*ldc+nrr])
							}
						}
					}
					if first {
						for i := range mr {
							row := t[i*ldt : i*ldt+nr]
							if i >= mrr {
								if !full {
									clear(row)
								}
								continue
							}
							v := float32(0)
							if ep.Bias != nil {
								v = ep.Bias[ir+i]
							}
							for j := range row[:min(nr, len(row))] {
								row[j] = v
							}
						}
					}
					kr.gemm(kc, ap, &bp[jr*kc], nr, &t[0], ldt, 1)
					if last {
						for i := range mrr {
							row := t[i*ldt : i*ldt+nrr]
							var res []float32
							if ep.Residual != nil {
								res = ep.Residual[(ir+i)*ldc+col : (ir+i)*ldc+col+nrr]
							}
							applyEpilogue(row, res, ep)
						}
					}
					if !full {
						for i := range mrr {
							copy(cc[i*ldc:i*ldc+nrr], tmp[i*nr:i*nr+nrr])
						}
					}
				}
			}
		}
	}
}

// applyEpilogue adds res (when not nil) to row and applies the activation.
func applyEpilogue(row, res []float32, ep *Epilogue) {
	if res != nil {
		res = res[:len(row)]
		for j := range row {
			row[j] += res[j]
		}
	}
	ApplyActivation(row, ep)
}

// ApplyActivation applies ep's activation to v in place (bias and residual
// aside): the same function the fused epilogues compute.
func ApplyActivation(v []float32, ep *Epilogue) {
	switch ep.Act {
	case Linear:
	case ReLU:
		relu(v)
	case Clip:
		lo, hi := ep.Min, ep.Max
		for j, x := range v {
			if x < lo {
				x = lo
			}
			if x > hi {
				x = hi
			}
			v[j] = x
		}
	case HardSwish:
		for j, x := range v {
			g := ep.Alpha*x + ep.Beta
			if g < 0 {
				g = 0
			}
			if g > 1 {
				g = 1
			}
			v[j] = x * g
		}
	case LeakyReLU:
		for j, x := range v {
			if x < 0 {
				v[j] = ep.Alpha * x
			}
		}
	default:
		panic(badAct)
	}
}
