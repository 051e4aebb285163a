package plugin_test

import (
	"errors"

	"github.com/aiaas/aiaas/sdk/plugin"
)

// A preprocess plugin: raw 8-bit pixels in, a normalised tensor out. In a
// real plugin this registration is in func init of package main, and the
// package is built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugin.wasm .
func Example() {
	plugin.HandlePreprocess(func(req plugin.Request) ([]plugin.Tensor, error) {
		if len(req.Body) != 784 {
			return nil, errors.New("want 784 gray bytes")
		}
		px := make([]float32, 784)
		if err := plugin.U8ToF32(px, req.Body, 1.0/255, 0); err != nil {
			return nil, err
		}
		return []plugin.Tensor{plugin.F32("input", []int{1, 784}, px)}, nil
	})
}
