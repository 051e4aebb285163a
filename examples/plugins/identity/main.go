// Command identity is the smallest useful plugin: preprocess wraps the
// request body (raw little-endian f32 values) in one tensor named "input"
// with shape [1,n]; postprocess returns its input tensors re-encoded as
// safetensors. The host benchmarks its per-call overhead with it.
package main

import (
	"errors"

	"github.com/aiaas/aiaas/internal/safetensors"
	"github.com/aiaas/aiaas/sdk/plugin"
)

func init() {
	plugin.HandlePreprocess(preprocess)
	plugin.HandlePostprocess(postprocess)
}

func main() {}

func preprocess(req plugin.Request) ([]plugin.Tensor, error) {
	if len(req.Body)%4 != 0 {
		return nil, errors.New("identity: body length is not a multiple of 4 (raw f32 expected)")
	}
	// Body is valid until the handler returns, and the SDK encodes the
	// result before that, so the tensor may alias it.
	return []plugin.Tensor{{Name: "input", DType: safetensors.DTypeF32, Shape: []int{1, len(req.Body) / 4}, Data: req.Body}}, nil
}

func postprocess(in plugin.Input) (plugin.Response, error) {
	return plugin.Response{
		ContentType: "application/x-safetensors",
		Body:        safetensors.Encode(&safetensors.File{Tensors: in.Tensors}),
	}, nil
}
