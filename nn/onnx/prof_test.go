package onnx

import (
	"context"
	"os"
	"testing"

	"github.com/aiaas/aiaas/nn/graph"
)

func BenchmarkFixture(b *testing.B) {
	dir := os.Getenv("FX")
	name := os.Getenv("MODEL")
	raw, err := os.ReadFile(dir + "/" + name + ".onnx")
	if err != nil {
		b.Fatal(err)
	}
	art, err := Convert(raw, nil)
	if err != nil {
		b.Fatal(err)
	}
	m, _, err := graph.ReadArtifact(art, nil)
	if err != nil {
		b.Fatal(err)
	}
	in := m.Inputs()[0]
	shape := make([]int, len(in.Shape))
	for i, d := range in.Shape {
		shape[i] = int(d)
		if d < 0 {
			shape[i] = 1
		}
	}
	x := graph.NewTensor(graph.Float32, shape...)
	for i := range x.Float32s() {
		x.Float32s()[i] = float32(i%13) / 13
	}
	var out []*graph.Tensor
	ctx := context.Background()
	out, _ = m.Run(ctx, []*graph.Tensor{x}, out)
	flops, _, _ := m.Cost([]*graph.Tensor{x})
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		out, err = m.Run(ctx, []*graph.Tensor{x}, out)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
