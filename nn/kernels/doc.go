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
// # Dense layers on pre-packed weights
//
// A served model multiplies by the same weights on every request, so
// packing them per call (as any GEMM must) is wasted work. Pack packs a
// layer's weight matrix once into the chosen micro-kernel's panel layout,
// and Dense computes act(x·W + bias) with it:
//
//	p := kernels.Pack(w, in, out, bias) // once, when the model is loaded
//	kernels.Dense(y, x, rows, p, kernels.ReLU)
//
// The activations x are read in place by a dense variant of each
// assembly micro-kernel (AVX-512 8×32, AVX2 6×16, NEON 8×8) whose
// accumulators start from the bias and which applies ReLU in registers
// before its only store (a fused epilogue); the portable kernel packs x as
// Sgemm does, preloads the bias and applies ReLU to each tile right after
// it is stored. One row is a GEMV on the row-major weights. Package nn
// packs every dense layer when a model is built, loaded, cloned or
// trained, and serves Forward through Dense whenever this package is the
// registered BLAS.
//
// # Convolutions: packed GEMM with a fused epilogue
//
// A convolution is Y[Cout, HW] = W[Cout, Cin·kh·kw] · im2col[Cin·kh·kw, HW]
// per image and group. PackA packs the weights once into row panels of
// the micro-kernel; GemmPacked asks a BPacker for each block of B in
// column panels (Im2Col writes the patches straight into them from
// tables built once per geometry by NewIm2Col: two masked AVX-512 loads a
// panel row when the pixels are contiguous, two masked gathers
// otherwise) and runs a micro-kernel whose accumulators start from the
// bias of each row (first block of K) or from C (later blocks), and that
// adds the residual and applies the activation (Linear, ReLU, Clip,
// HardSwish, LeakyReLU) in registers before its only store:
//
//	a := kernels.PackAFor(w, cout, cin*kh*kw, cin*kh*kw, oh*ow) // once
//	im := kernels.NewIm2Col(&geom, a)                            // once per geometry
//	im.X = x                                                     // per image and group
//	kernels.GemmPacked(y, oh*ow, a, oh*ow, im, &kernels.Epilogue{Bias: b, Act: kernels.ReLU})
//
// PackAFor (unlike PackA) knows n and picks, on AVX-512, a 32×8 tile
// with the rows of A along the vector lanes when n would waste lanes of
// the 8×32 one (7×7 and 14×14 feature maps, at least 256 output
// channels); the tile is transposed in registers before its epilogue.
//
// Blocking: a kc×nr panel of B fills L1 (kc ≤ 384), B is packed nc
// columns at a time (a quarter of L2) and each of its panels serves every
// row panel of A before the next (for the 32×8 tile, the B panels are
// swept inside each A panel instead); tiles cut by m or n go through a
// scratch tile. BenchmarkGemmPackedConv reports GFLOP/s per shape of
// ResNet-18 and MobileNetV2 against the peak measured by BenchmarkPeak;
// on the AVX-512 machine these kernels were tuned on (Zen 5, one core of
// about 220 GFLOP/s) the micro-kernel alone runs at about 90 % of it and
// whole convolutions, packing included, at 55–80 %.
//
// DepthwiseConv2D computes group = C convolutions directly: stride 1
// with padding 1 runs each channel as one flat vector loop (taps are
// constant offsets, masked at the borders), stride 2 whole rows with the
// even and odd lanes gathered by permutes, both in AVX-512 with the
// epilogue fused; other kernels and geometries use an unrolled Go loop.
//
// AddF32, MulF32, MaxF32, AddScalarF32, MulScalarF32, MulAddScalarF32
// (batch normalisation) and ApplyActivation are the element-wise hot
// paths of a graph runtime, in AVX-512, AVX2 and NEON.
//
// # Parallelism without allocation
//
// GemmPacked and DepthwiseConv2D split large calls over a pool of
// goroutines started once (GOMAXPROCS − 1 of them): the job goes through
// a channel by value, its chunks (column ranges when n is large; rows of
// A when n is small and m large, B then being packed once by all and
// shared; channels for depthwise) are claimed with an atomic counter by
// the caller and whichever pool goroutine is free, and a WaitGroup in the
// reusable job object tracks them. A job is reference-counted so a pool
// goroutine that arrives after the work is done never sees it reused.
// SetMaxHelpers caps, process-wide, how many pool goroutines one call
// may use (the server lowers it while several tenants are active). Long
// loops give their processor away every 0.5 ms (internal/yield).
// Nothing is allocated per call in the steady state.
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
