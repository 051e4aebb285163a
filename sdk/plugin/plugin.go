package plugin

import (
	"errors"
	"fmt"

	"github.com/aiaas/aiaas/internal/safetensors"
)

// Tensor is one named tensor, little-endian row-major bytes (the shared
// safetensors codec's type).
type Tensor = safetensors.Tensor

// F32 returns an F32 tensor holding a copy of v.
func F32(name string, shape []int, v []float32) Tensor { return safetensors.F32(name, shape, v) }

// Request is what a preprocess handler receives: the invocation's body
// and its content type, as sent by the client.
type Request struct {
	ContentType string
	Body        []byte // valid only until the handler returns: copy what you keep
}

// Input is what a postprocess handler receives: the model's outputs and
// the string parameters the platform passed along (the safetensors
// "__metadata__" object; may be nil).
type Input struct {
	Tensors []Tensor // Data valid only during the call
	Params  map[string]string
}

// Response is what a postprocess handler returns.
type Response struct {
	ContentType string // default "application/octet-stream"
	Body        []byte
}

// PreprocessFunc turns a request into model input tensors.
type PreprocessFunc func(req Request) ([]Tensor, error)

// PostprocessFunc turns model outputs into a response.
type PostprocessFunc func(in Input) (Response, error)

var (
	preprocess  PreprocessFunc
	postprocess PostprocessFunc
)

// HandlePreprocess registers the plugin's preprocess handler. Call it
// from an init function. Registering twice panics at start-up (in
// _initialize), which the host reports as an invalid module.
func HandlePreprocess(f PreprocessFunc) {
	if preprocess != nil || f == nil {
		panic("plugin: HandlePreprocess called twice or with nil")
	}
	preprocess = f
}

// HandlePostprocess registers the plugin's postprocess handler. Call it
// from an init function.
func HandlePostprocess(f PostprocessFunc) {
	if postprocess != nil || f == nil {
		panic("plugin: HandlePostprocess called twice or with nil")
	}
	postprocess = f
}

// kinds is the value of the ABI export.
func kinds() int32 {
	var k int32
	if preprocess != nil {
		k |= KindPreprocess
	}
	if postprocess != nil {
		k |= KindPostprocess
	}
	return k
}

var errNoHandler = errors.New("plugin: no handler registered for this kind")

// runPreprocess is the portable core of aiaas_preprocess: it appends the
// encoded tensors to out (a buffer the caller reuses between calls).
func runPreprocess(out []byte, ct string, body []byte) ([]byte, error) {
	if preprocess == nil {
		return nil, errNoHandler
	}
	ts, err := preprocess(Request{ContentType: ct, Body: body})
	if err != nil {
		return nil, err
	}
	// A cheap per-tensor size check for a precise message; the host
	// validates the encoded bytes in full anyway (names, duplicates).
	for _, t := range ts {
		if n := t.NumElements(); n < 0 || t.DType.Size() == 0 || n*t.DType.Size() != len(t.Data) {
			return nil, fmt.Errorf("plugin: handler returned invalid tensors: %q has dtype %q, shape %v and %d data bytes", t.Name, t.DType, t.Shape, len(t.Data))
		}
	}
	return safetensors.AppendEncode(out, &safetensors.File{Tensors: ts}), nil
}

// runPostprocess is the portable core of aiaas_postprocess.
func runPostprocess(in []byte) (Response, error) {
	if postprocess == nil {
		return Response{}, errNoHandler
	}
	f, err := safetensors.Decode(in, nil)
	if err != nil {
		return Response{}, err
	}
	resp, err := postprocess(Input{Tensors: f.Tensors, Params: f.Metadata})
	if err != nil {
		return Response{}, err
	}
	if resp.ContentType == "" {
		resp.ContentType = "application/octet-stream"
	}
	return resp, nil
}
