package main

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/aiaas/aiaas/bench/internal/machine"
	"github.com/aiaas/aiaas/nn"
)

// BenchmarkForward is aiaas' side of the comparison alone, for profiling:
//
//	go test ./ort -run '^$' -bench Forward/kernels/64 -cpuprofile /tmp/fwd.prof
//	go tool pprof -top /tmp/fwd.prof
func BenchmarkForward(b *testing.B) {
	m, err := nn.New(nn.MLP("mnist", 784, []int{128, 128}, nn.ActReLU, 10, nn.ActSoftmax), 1)
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(7, 7))
	for _, blas := range []string{"gonum", "kernels"} {
		for _, batch := range []int{1, 8, 64, 256} {
			b.Run(fmt.Sprintf("%s/%d", blas, batch), func(b *testing.B) {
				if err := machine.UseBLAS(blas); err != nil {
					b.Fatal(err)
				}
				x := make([]float32, batch*784)
				for i := range x {
					x[i] = r.Float32()
				}
				dst := make([]float32, batch*10)
				b.ReportAllocs()
				b.SetBytes(int64(4 * len(x)))
				for b.Loop() {
					if _, err := m.Forward(dst, x, batch); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(m.ForwardFLOPs(batch)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
