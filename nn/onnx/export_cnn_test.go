package onnx

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"

	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/nn/graph"
)

// TestExportConvNetworks exports convolutional networks with every layer
// type nn trains (conv2d with stride, dilation and "same" padding, max and
// average pooling, global average pooling, batch normalisation on images
// and on features, flatten, dropout) and runs the export through the graph
// runtime as an upload does (Convert, graph.ReadArtifact): its outputs
// match nn's own forward pass.
func TestExportConvNetworks(t *testing.T) {
	img := func(c, h, w, k int, layers ...nn.Layer) nn.Spec {
		return nn.Spec{
			Name:    "cnn",
			Inputs:  []nn.TensorSpec{{Name: "image", Datatype: nn.DatatypeFP32, Shape: []int64{-1, int64(c), int64(h), int64(w)}}},
			Outputs: []nn.TensorSpec{{Name: "probabilities", Datatype: nn.DatatypeFP32, Shape: []int64{-1, int64(k)}}},
			Layers:  layers,
		}
	}
	specs := []nn.Spec{
		img(1, 28, 28, 10,
			nn.Layer{Type: nn.LayerConv2D, Filters: 8, KernelSize: []int{3}, Activation: nn.ActReLU},
			nn.Layer{Type: nn.LayerMaxPool2D, PoolSize: []int{2}},
			nn.Layer{Type: nn.LayerConv2D, Filters: 16, KernelSize: []int{3}, Activation: nn.ActReLU},
			nn.Layer{Type: nn.LayerMaxPool2D, PoolSize: []int{2}},
			nn.Layer{Type: nn.LayerFlatten},
			nn.Layer{Type: nn.LayerDense, Units: 32, Activation: nn.ActReLU},
			nn.Layer{Type: nn.LayerDropout, Rate: 0.5},
			nn.Layer{Type: nn.LayerDense, Units: 10, Activation: nn.ActSoftmax}),
		img(3, 11, 9, 4,
			nn.Layer{Type: nn.LayerConv2D, Filters: 6, KernelSize: []int{3, 2}, Strides: []int{2, 1}, DilationRate: []int{1, 2}, Padding: nn.PaddingSame, Activation: nn.ActTanh},
			nn.Layer{Type: nn.LayerBatchNorm, Epsilon: 1e-2},
			nn.Layer{Type: nn.LayerAvgPool2D, PoolSize: []int{3}, Strides: []int{2}, Padding: nn.PaddingSame},
			nn.Layer{Type: nn.LayerMaxPool2D, PoolSize: []int{2}, Strides: []int{1}, Padding: nn.PaddingSame},
			nn.Layer{Type: nn.LayerConv2D, Filters: 5, KernelSize: []int{1}, Activation: nn.ActSigmoid},
			nn.Layer{Type: nn.LayerGlobalAvg},
			nn.Layer{Type: nn.LayerBatchNorm},
			nn.Layer{Type: nn.LayerDense, Units: 4}),
	}
	r := rand.New(rand.NewPCG(4, 4))
	for i, s := range specs {
		m, err := nn.New(s, int64(i+1))
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		// Train one step so batch normalisation has running statistics
		// that are not 0 and 1.
		n := 16
		x := randInput(r, n*m.InputDim())
		y := make([]int32, n)
		for j := range y {
			y[j] = int32(r.IntN(m.OutputDim()))
		}
		loss := "sparse_categorical_crossentropy"
		if s.Layers[len(s.Layers)-1].Activation == "" {
			loss = "mse"
		}
		var targets []float32
		if loss == "mse" {
			targets, y = randInput(r, n*m.OutputDim()), nil
		}
		if _, err := nn.Train(context.Background(), m, x, y, targets, n, nn.TrainConfig{Loss: loss, Epochs: 2, BatchSize: 8}); err != nil {
			t.Fatalf("case %d: train: %v", i, err)
		}
		var buf bytes.Buffer
		if err := Export(&buf, m); err != nil {
			t.Fatalf("case %d: Export: %v", i, err)
		}
		art, err := Convert(buf.Bytes(), nil)
		if err != nil {
			t.Fatalf("case %d: Convert: %v", i, err)
		}
		g, _, err := graph.ReadArtifact(art, nil)
		if err != nil {
			t.Fatalf("case %d: graph.ReadArtifact: %v", i, err)
		}
		for _, batch := range []int{1, 5} {
			x := randInput(r, batch*m.InputDim())
			want, err := m.Forward(nil, x, batch)
			if err != nil {
				t.Fatal(err)
			}
			shape := []int{batch}
			for _, d := range s.Inputs[0].Shape[1:] {
				shape = append(shape, int(d))
			}
			outs, err := g.Run(context.Background(), []*graph.Tensor{graph.TensorFrom(shape, x)}, nil)
			if err != nil {
				t.Fatalf("case %d batch %d: graph run: %v", i, batch, err)
			}
			got := outs[0].Float32s()
			if d := maxDiff(got, want); d > 1e-5 || len(got) != len(want) {
				t.Errorf("case %d batch %d: graph runtime differs from nn by %g (%d values, want %d)", i, batch, d, len(got), len(want))
			}
		}
	}
}
