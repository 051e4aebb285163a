package nn_test

import (
	"bytes"
	"context"
	"fmt"

	"github.com/aiaas/aiaas/nn"
)

// Train a small classifier for XOR, save it as an artifact, load it back and
// serve a batch.
func Example() {
	spec := nn.MLP("xor", 2, []int{8}, "tanh", 2, "softmax")
	m, err := nn.New(spec, 1)
	if err != nil {
		panic(err)
	}
	x := []float32{0, 0, 0, 1, 1, 0, 1, 1}
	y := []int32{0, 1, 1, 0}
	h, err := nn.Train(context.Background(), m, x, y, nil, 4, nn.TrainConfig{
		Optimizer: "adam", LearningRate: 0.05, BatchSize: 4, Epochs: 300, Seed: 1,
	})
	if err != nil {
		panic(err)
	}
	fmt.Printf("epochs: %d, final accuracy: %.2f\n", len(h.Epochs), h.Epochs[len(h.Epochs)-1].Accuracy)

	var buf bytes.Buffer
	if err := m.WriteArtifact(&buf, nn.Metadata{Provenance: map[string]string{"example": "xor"}}); err != nil {
		panic(err)
	}
	served, meta, err := nn.ReadArtifact(buf.Bytes(), nil)
	if err != nil {
		panic(err)
	}
	out, err := served.Forward(nil, x, 4)
	if err != nil {
		panic(err)
	}
	for i := 0; i < 4; i++ {
		p := out[2*i : 2*i+2]
		class := 0
		if p[1] > p[0] {
			class = 1
		}
		fmt.Printf("%v xor %v = %d\n", x[2*i], x[2*i+1], class)
	}
	fmt.Println(meta.Spec.Name, meta.Provenance["example"], served.NumParams())
	// Output:
	// epochs: 300, final accuracy: 1.00
	// 0 xor 0 = 0
	// 0 xor 1 = 1
	// 1 xor 0 = 1
	// 1 xor 1 = 0
	// xor xor 42
}
