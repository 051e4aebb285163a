package safetensors_test

import (
	"fmt"

	"github.com/aiaas/aiaas/internal/safetensors"
)

func Example() {
	b := safetensors.Encode(&safetensors.File{
		Metadata: map[string]string{"model": "demo"},
		Tensors:  []safetensors.Tensor{safetensors.F32("w", []int{2, 2}, []float32{1, 2, 3, 4})},
	})
	f, err := safetensors.Decode(b, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	w, _ := f.Tensor("w")
	v, _ := w.Float32s(nil)
	fmt.Println(f.Metadata["model"], w.Shape, v)
	// Output: demo [2 2] [1 2 3 4]
}
