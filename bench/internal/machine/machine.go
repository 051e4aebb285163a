// Package machine describes the machine a benchmark ran on and measures its
// compute peak, so every figure in BENCHMARKS.md can be shown as a fraction
// of what the hardware allows.
//
// # Overview
//
// Describe reads /proc/cpuinfo (model, flags, clock) and nproc. PeakSGEMM
// times a large float32 GEMM through gonum's blas32 — whatever
// implementation nn registered — which is the practical peak the engine can
// reach. Theoretical is the paper peak: cores × clock × FLOPs per cycle,
// from the widest FMA the flags advertise, assuming two FMA pipes per core
// (true of the Zen and Skylake-SP server cores these machines run).
package machine

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"gonum.org/v1/gonum/blas/gonum"

	"github.com/aiaas/aiaas/nn/kernels"
)

// BLAS implementations the benchmarks can run the engine on: gonum's pure
// Go one (what nn uses unless something calls blas32.Use) and nn/kernels'
// SIMD Sgemm/Sgemv.
var BLAS = map[string]blas.Float32{
	"gonum":   gonum.Implementation{},
	"kernels": kernels.Implementation(),
}

// UseBLAS registers the named implementation with blas32.Use. Like
// blas32.Use it is not goroutine-safe: call it between timed calls, never
// during one.
func UseBLAS(name string) error {
	impl, ok := BLAS[name]
	if !ok {
		return fmt.Errorf("unknown BLAS %q (gonum or kernels)", name)
	}
	blas32.Use(impl)
	return nil
}

// Info is what every results file records about the machine.
type Info struct {
	CPU              string  `json:"cpu"`
	NProc            int     `json:"nproc"`
	MHz              float64 `json:"mhz"`
	SIMD             string  `json:"simd"` // widest FMA: "avx512", "avx2" or "none"
	FLOPsPerCycle    int     `json:"flops_per_cycle_per_core"`
	TheoreticalGFLOP float64 `json:"theoretical_peak_gflops"`
	GoVersion        string  `json:"go"`
	Note             string  `json:"note"`
}

// Describe returns the machine's Info. It is goroutine-safe.
func Describe() Info {
	in := Info{NProc: runtime.NumCPU(), GoVersion: runtime.Version(), SIMD: "none",
		Note: "shared 2-core machine: other engineers were building and testing during the run"}
	f, err := os.Open("/proc/cpuinfo")
	if err == nil {
		defer f.Close()
		s := bufio.NewScanner(f)
		s.Buffer(make([]byte, 64<<10), 1<<20)
		for s.Scan() {
			k, v, ok := strings.Cut(s.Text(), ":")
			if !ok {
				continue
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			switch k {
			case "model name":
				if in.CPU == "" {
					in.CPU = v
				}
			case "cpu MHz":
				if in.MHz == 0 {
					in.MHz, _ = strconv.ParseFloat(v, 64)
				}
			case "flags":
				fl := " " + v + " "
				switch {
				case strings.Contains(fl, " avx512f ") && strings.Contains(fl, " fma "):
					in.SIMD, in.FLOPsPerCycle = "avx512", 2*2*16 // 2 FMA pipes × (mul+add) × 16 lanes
				case strings.Contains(fl, " avx2 ") && strings.Contains(fl, " fma "):
					in.SIMD, in.FLOPsPerCycle = "avx2", 2*2*8
				}
			}
		}
	}
	in.TheoreticalGFLOP = float64(in.NProc) * in.MHz / 1000 * float64(in.FLOPsPerCycle)
	return in
}

// PeakSGEMM returns the median GFLOP/s of an n×n×n float32 GEMM through
// blas32 over reps runs (after one warm-up). It is the measured limit
// against which compute figures are compared. Not goroutine-safe with
// itself: run it alone.
func PeakSGEMM(n, reps int) float64 {
	r := rand.New(rand.NewPCG(1, 1))
	mk := func() blas32.General {
		d := make([]float32, n*n)
		for i := range d {
			d[i] = r.Float32()
		}
		return blas32.General{Rows: n, Cols: n, Stride: n, Data: d}
	}
	a, b, c := mk(), mk(), mk()
	blas32.Gemm(blas.NoTrans, blas.NoTrans, 1, a, b, 0, c)
	g := make([]float64, reps)
	for i := range g {
		t := time.Now()
		blas32.Gemm(blas.NoTrans, blas.NoTrans, 1, a, b, 0, c)
		g[i] = 2 * float64(n) * float64(n) * float64(n) / time.Since(t).Seconds() / 1e9
	}
	sort.Float64s(g)
	return g[len(g)/2]
}
