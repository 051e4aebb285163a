package nn

import (
	"gonum.org/v1/gonum/blas/blas32"

	"github.com/aiaas/aiaas/nn/kernels"
)

// Every product in this package goes through blas32; registering our SIMD
// kernels here makes serving and training use them with no other change.
// Programs that want gonum's reference implementation back can call
// blas32.Use(gonum.Implementation{}) after importing nn.
func init() { blas32.Use(kernels.Implementation()) }

// Kernel names the matrix kernel in use, e.g. "avx512-8x32".
func Kernel() string { return kernels.Name() }
