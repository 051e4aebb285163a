// Package kernels is a float32 BLAS for the forward and backward passes of
// package nn: it implements gonum's blas.Float32 so that nn keeps calling
// blas32.Gemm while the hot loops run in our own micro-kernels.
//
// # Overview
//
// Register it once, before any product is computed:
//
//	blas32.Use(kernels.Implementation())
//
// Sgemm (all four transpose combinations) and Sgemv with a transposed matrix
// are ours; every other routine is gonum's own, inherited by embedding
// gonum.Implementation. Name and Features say which micro-kernel was chosen
// for this CPU, so benchmarks and the CLI can print it.
//
// # Strategy
//
// A product is computed in the classic Goto/BLIS way: B is packed into
// panels NR columns wide, A into panels MR rows tall, with the block sizes
// KC, MC and NC derived from the L1 and L2 cache sizes read with CPUID, and
// an MR×NR register-blocked micro-kernel does the multiply-adds. Small
// products skip the B packing (the kernel reads B in place) because packing
// costs as much as the arithmetic it would speed up; a single row of A (the
// batch-1 forward pass) is a GEMV and runs in its own kernel. Large products
// are split over GOMAXPROCS goroutines; small ones stay on one core, where
// the goroutine hand-off would cost more than it saves.
//
// # Micro-kernels
//
//   - amd64: AVX-512 (8×32) when the CPU and OS support it, else AVX2+FMA
//     (6×16), chosen at run time with golang.org/x/sys/cpu.
//   - arm64: NEON/ASIMD (8×8).
//   - everything else, or any architecture built with -tags purego: a
//     portable Go kernel (4×4).
//
// # Contract
//
// Argument checks follow gonum's exactly: a bad shape, stride or short slice
// panics with gonum's message. Callers on a request path (package nn) must
// check shapes before calling, as they must with gonum itself. Results
// differ from gonum's reference only by the rounding of a different
// summation order (fused multiply-add, blocked over K); with beta = 0, C is
// overwritten and never read, so garbage or NaN in C is ignored as BLAS
// requires.
//
// All exported functions are safe for concurrent use by multiple goroutines.
// The package must never import package nn.
package kernels
