package kernels

import (
	"sync/atomic"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// microKernel computes C[0:mr, 0:nr] += alpha · Ã·B̃ where Ã is a packed
// panel of A (kc columns of mr consecutive values: a[p*mr+i]) and B̃ is kc
// rows of nr values with row stride ldb (a packed panel has ldb = nr, an
// unpacked row-major B its own leading dimension). C is row-major with row
// stride ldc. kc may be 0.
type microKernel func(kc int, a, b *float32, ldb int, c *float32, ldc int, alpha float32)

// gemvTKernel computes y[0:n] += alpha · Σ_p x[p]·B[p, 0:n] for p < k, B
// row-major with stride ldb. It is the batch-1 forward pass (x·W).
type gemvTKernel func(k int, x, b *float32, ldb int, y *float32, n int, alpha float32)

// kernel is one micro-kernel family and the CPU features it needs.
type kernel struct {
	name     string
	features string
	mr, nr   int
	gemm     microKernel
	gemvT    gemvTKernel
	dense    denseKernel // nil: Dense uses gemm and a generic epilogue
	gemmEp   epKernel    // GemmPacked's tile with the fused epilogue
	vec      int         // vector unit of the element-wise kernels (vecGo, …)
	fullK    bool        // gemmEp takes all of K at once (no tileAcc): GemmPacked does not block K
	narrow   *kernel     // a GemmPacked-only variant for products with few columns (PackAFor), or nil
	blk      blockSizes
}

// Vector units of the element-wise and depthwise kernels.
const (
	vecGo = iota
	vecAVX512
	vecAVX2
	vecNEON
)

// active is the kernel in use. It is an atomic pointer only so tests and
// benchmarks can compare kernels; production code sets it once at init.
var active atomic.Pointer[kernel]

func init() {
	ks := available()
	active.Store(ks[0])
}

// current returns the kernel in use.
func current() *kernel { return active.Load() }

// Name returns the name of the micro-kernel chosen for this CPU, for example
// "avx512-8x32", "avx2-6x16", "neon-8x8" or "generic-4x4".
// It is safe for concurrent use.
func Name() string { return current().name }

// Features returns the CPU features the chosen micro-kernel relies on and the
// block sizes derived from the caches, for logs and benchmark reports, for
// example "avx512f kc=192 mc=336 nc=4096 l1d=48K l2=1024K".
// It is safe for concurrent use.
func Features() string {
	k := current()
	b := blocking(k)
	s := k.features
	if s != "" {
		s += " "
	}
	return s + b.String()
}

// Implementation returns the BLAS to register with blas32.Use. Sgemm and
// Sgemv are ours; every other float32 routine is gonum's. The value is
// stateless and safe for concurrent use.
func Implementation() blas.Float32 { return implementation{} }

// implementation embeds gonum's so that only what pays is overridden.
type implementation struct {
	gonum.Implementation
}

// Sgemm computes C = alpha·op(A)·op(B) + beta·C with gonum's argument checks
// and panics. It is safe for concurrent use on disjoint C.
func (implementation) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Sgemv computes y = alpha·op(A)·x + beta·y with gonum's argument checks
// and panics. It is safe for concurrent use on disjoint y.
func (implementation) Sgemv(tA blas.Transpose, m, n int, alpha float32, a []float32, lda int, x []float32, incX int, beta float32, y []float32, incY int) {
	Sgemv(tA, m, n, alpha, a, lda, x, incX, beta, y, incY)
}
