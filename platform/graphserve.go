package platform

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aiaas/aiaas/internal/lowprio"
	"github.com/aiaas/aiaas/internal/safetensors"
	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/nn/graph"
	"github.com/aiaas/aiaas/platform/internal/serving"
	"github.com/aiaas/aiaas/platform/oip"
	"github.com/aiaas/aiaas/platform/tracing"
)

// Serving graph models (imported from ONNX): any number of named inputs
// and outputs of any shape the graph accepts, in the graph's element types.

func names(vs []nn.TensorSpec) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = fmt.Sprintf("%q %s %v", v.Name, v.Datatype, v.Shape)
	}
	return strings.Join(s, ", ")
}

// accepts reports whether a request datatype may feed a graph input of
// type dt: the same type, any number for a float input (converted
// exactly, as values), and the integer types for an integer input (their
// values are range-checked by the codec and by the conversion).
func accepts(dt graph.DType, requested string) bool {
	if requested == dt.String() {
		return true
	}
	switch dt {
	case graph.Float32, graph.Float64:
		return requested != oip.BYTES && requested != oip.BOOL
	case graph.Int64, graph.Int32:
		switch requested {
		case oip.INT64, oip.INT32, oip.INT16, oip.INT8, oip.UINT8, oip.UINT16, oip.UINT32:
			return true
		}
	}
	return false
}

// graphInputs turns the request's inputs into the graph's, matched by name.
func graphInputs(lm *loadedModel, ins []oip.RequestInput) ([]*graph.Tensor, error) {
	want := lm.inputs
	out := make([]*graph.Tensor, len(want))
	for i := range ins {
		in := &ins[i]
		j := slices.IndexFunc(want, func(v nn.TensorSpec) bool { return v.Name == in.Name })
		if j < 0 {
			return nil, httpErr(http.StatusBadRequest, "unknown input %q: the model's inputs are %s", truncate(in.Name, 64), names(want))
		}
		if out[j] != nil {
			return nil, httpErr(http.StatusBadRequest, "input %q given twice", truncate(in.Name, 64))
		}
		dt, _ := graph.ParseDType(want[j].Datatype)
		if in.Datatype == oip.BYTES || in.Bytes != nil || !accepts(dt, in.Datatype) {
			return nil, httpErr(http.StatusBadRequest, "input %q: datatype %s; the model takes %s", in.Name, in.Datatype, want[j].Datatype)
		}
		var t *graph.Tensor
		var err error
		if in.I64 != nil && (dt == graph.Int64 || dt == graph.Int32) {
			t, err = tensorOfInts(dt, in.Shape, in.I64, in.Name)
		} else {
			t, err = tensorOf(dt, in.Shape, in.F32, in.Name)
		}
		if err != nil {
			return nil, err
		}
		out[j] = t
	}
	for j, t := range out {
		if t == nil {
			return nil, httpErr(http.StatusBadRequest, "missing input %q (%s, shape %v); the model's inputs are %s", want[j].Name, want[j].Datatype, want[j].Shape, names(want))
		}
	}
	return out, nil
}

// inputShape checks a request's shape for an input of n values.
func inputShape(shape64 []int64, n int, name string) ([]int, error) {
	shape := make([]int, len(shape64))
	want := 1
	for i, d := range shape64 {
		if d < 0 || d > math.MaxInt32 {
			return nil, httpErr(http.StatusBadRequest, "input %q: shape %v", truncate(name, 64), shape64)
		}
		shape[i] = int(d)
		want *= int(d)
	}
	if want != n {
		return nil, httpErr(http.StatusBadRequest, "input %q: shape %v needs %d values, got %d", truncate(name, 64), shape64, want, n)
	}
	return shape, nil
}

// tensorOf converts float32 values (as the OIP codec and plugins give
// them) to a tensor of dt. Integer conversions must be exact.
func tensorOf(dt graph.DType, shape64 []int64, v []float32, name string) (*graph.Tensor, error) {
	shape, err := inputShape(shape64, len(v), name)
	if err != nil {
		return nil, err
	}
	if dt == graph.Float32 {
		return graph.WrapFloat32(shape, v), nil
	}
	t := graph.NewTensor(dt, shape...)
	bad := func(i int) error {
		return httpErr(http.StatusBadRequest, "input %q: element %d (%g) is not a %s value", truncate(name, 64), i, v[i], dt)
	}
	switch dt {
	case graph.Float64:
		d := graph.Data[float64](t)
		for i, x := range v {
			d[i] = float64(x)
		}
	case graph.Int64:
		d := graph.Data[int64](t)
		for i, x := range v {
			if x != float32(math.Trunc(float64(x))) {
				return nil, bad(i)
			}
			d[i] = int64(x)
		}
	case graph.Int32:
		d := graph.Data[int32](t)
		for i, x := range v {
			if x != float32(math.Trunc(float64(x))) || x < math.MinInt32 || x > math.MaxInt32 {
				return nil, bad(i)
			}
			d[i] = int32(x)
		}
	case graph.Uint8:
		d := graph.Data[uint8](t)
		for i, x := range v {
			if x != float32(math.Trunc(float64(x))) || x < 0 || x > 255 {
				return nil, bad(i)
			}
			d[i] = uint8(x)
		}
	case graph.Int8:
		d := graph.Data[int8](t)
		for i, x := range v {
			if x != float32(math.Trunc(float64(x))) || x < -128 || x > 127 {
				return nil, bad(i)
			}
			d[i] = int8(x)
		}
	case graph.Bool:
		d := graph.Data[bool](t)
		for i, x := range v {
			d[i] = x != 0
		}
	default:
		return nil, httpErr(http.StatusBadRequest, "input %q: the model takes %s, which this server does not accept over HTTP", truncate(name, 64), dt)
	}
	return t, nil
}

// tensorOfInts is tensorOf for exact integers (INT64 and INT32 inputs
// from the codec's I64).
func tensorOfInts(dt graph.DType, shape64 []int64, v []int64, name string) (*graph.Tensor, error) {
	shape, err := inputShape(shape64, len(v), name)
	if err != nil {
		return nil, err
	}
	t := graph.NewTensor(dt, shape...)
	if dt == graph.Int64 {
		copy(graph.Data[int64](t), v)
		return t, nil
	}
	d := graph.Data[int32](t)
	for i, x := range v {
		if x < math.MinInt32 || x > math.MaxInt32 {
			return nil, httpErr(http.StatusBadRequest, "input %q: element %d (%d) is not an INT32 value", truncate(name, 64), i, x)
		}
		d[i] = int32(x)
	}
	return t, nil
}

// floatsOf returns a tensor's values as float32, for the OIP encoder and
// plugins: float32 outputs without a copy.
func floatsOf(t *graph.Tensor) []float32 {
	switch t.DType {
	case graph.Float32:
		return t.Float32s()
	case graph.Float64:
		return convert(graph.Data[float64](t))
	case graph.Int64:
		return convert(graph.Data[int64](t))
	case graph.Int32:
		return convert(graph.Data[int32](t))
	case graph.Int16:
		return convert(graph.Data[int16](t))
	case graph.Int8:
		return convert(graph.Data[int8](t))
	case graph.Uint8:
		return convert(graph.Data[uint8](t))
	case graph.Uint16:
		return convert(graph.Data[uint16](t))
	case graph.Uint32:
		return convert(graph.Data[uint32](t))
	case graph.Uint64:
		return convert(graph.Data[uint64](t))
	case graph.Bool:
		b := graph.Data[bool](t)
		out := make([]float32, len(b))
		for i, x := range b {
			if x {
				out[i] = 1
			}
		}
		return out
	case graph.Float16:
		h := graph.Data[uint16](t)
		out := make([]float32, len(h))
		for i, x := range h {
			out[i] = graph.HalfToFloat32(x)
		}
		return out
	}
	return nil
}

// int64s widens an INT32 or UINT32 tensor.
func int64s(t *graph.Tensor) []int64 {
	out := make([]int64, t.Numel())
	if t.DType == graph.Int32 {
		for i, x := range graph.Data[int32](t) {
			out[i] = int64(x)
		}
		return out
	}
	for i, x := range graph.Data[uint32](t) {
		out[i] = int64(x)
	}
	return out
}

func convert[T int64 | int32 | int16 | int8 | uint8 | uint16 | uint32 | uint64 | float64](v []T) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

func shape64(s []int) []int64 {
	out := make([]int64, len(s))
	for i, d := range s {
		out[i] = int64(d)
	}
	return out
}

// graphOutputs encodes the requested outputs (all, in the graph's order,
// when the request names none).
func graphOutputs(lm *loadedModel, outs []*graph.Tensor, req *oip.InferenceRequest) ([]oip.ResponseOutput, error) {
	enc := func(i int, binary bool) oip.ResponseOutput {
		t := outs[i]
		o := oip.ResponseOutput{Name: lm.outputs[i].Name, Shape: shape64(t.Shape), Datatype: t.DType.String(), Binary: binary}
		switch t.DType {
		case graph.Int64:
			o.I64 = graph.Data[int64](t)
		case graph.Int32, graph.Uint32:
			o.I64 = int64s(t)
		default:
			o.F32 = floatsOf(t)
		}
		return o
	}
	if len(req.Outputs) == 0 {
		res := make([]oip.ResponseOutput, len(outs))
		for i := range outs {
			res[i] = enc(i, req.BinaryOutput)
		}
		return res, nil
	}
	var res []oip.ResponseOutput
	seen := map[string]bool{}
	for _, ro := range req.Outputs {
		j := slices.IndexFunc(lm.outputs, func(v nn.TensorSpec) bool { return v.Name == ro.Name })
		if j < 0 {
			return nil, httpErr(http.StatusBadRequest, "unknown output %q: the model's outputs are %s", truncate(ro.Name, 64), names(lm.outputs))
		}
		if seen[ro.Name] {
			return nil, httpErr(http.StatusBadRequest, "output %q requested twice", ro.Name)
		}
		seen[ro.Name] = true
		res = append(res, enc(j, ro.Binary))
	}
	return res, nil
}

// runGraph runs a graph model with the forward pass's metrics and checks,
// through the batcher when adaptive batching is on.
func (s *Server) runGraph(ctx context.Context, tenant string, l *lineage, in []*graph.Tensor, t *serving.Timings) ([]*graph.Tensor, error) {
	start := time.Now()
	ctx, span := tracing.Start(ctx, s.tracer, "model.forward")
	defer span.End()
	var out []*graph.Tensor
	var err error
	if l.loaded.gbatch != nil {
		out, err = l.loaded.gbatch.Do(ctx, in)
	} else if flops, _, cerr := l.loaded.graph.Cost(in); cerr != nil {
		out, err = nil, cerr
	} else {
		lowprio.Run(&l.loaded.rate, flops, func() {
			out, err = l.loaded.graph.Run(ctx, in, nil)
		})
	}
	s.observeCompute(tenant, l, time.Since(start), err, t)
	if err != nil {
		return nil, err
	}
	for k, o := range out {
		if o.DType != graph.Float32 {
			continue
		}
		if err := finite(l, fmt.Sprintf("output %q", l.loaded.outputs[k].Name), o.Float32s()); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// pluginGraphInputs maps a preprocess plugin's tensors to the graph's
// inputs: by name, or the only tensor to the only input. A tensor whose
// element count fits an input with a dynamic first dimension is reshaped
// to it (a plugin that emits [1, 784] feeds a [N, 1, 28, 28] network).
func pluginGraphInputs(lm *loadedModel, ts []safetensors.Tensor) ([]*graph.Tensor, error) {
	out := make([]*graph.Tensor, len(lm.inputs))
	for j, want := range lm.inputs {
		var st *safetensors.Tensor
		for i := range ts {
			if ts[i].Name == want.Name {
				st = &ts[i]
			}
		}
		if st == nil && len(ts) == 1 && len(lm.inputs) == 1 {
			st = &ts[0]
		}
		if st == nil {
			return nil, httpErr(http.StatusUnprocessableEntity, "the preprocess plugin returned %d tensors and none is named %q; the model's inputs are %s", len(ts), want.Name, names(lm.inputs))
		}
		dt, _ := graph.ParseDType(want.Datatype)
		var t *graph.Tensor
		var err error
		switch st.DType {
		case safetensors.DTypeI64:
			if dt != graph.Int64 && dt != graph.Int32 {
				return nil, httpErr(http.StatusUnprocessableEntity, "the preprocess plugin returned I64 data for %q; the model takes %s", want.Name, want.Datatype)
			}
			v, e := int64sOf(st)
			if e != nil {
				return nil, httpErr(http.StatusUnprocessableEntity, "the preprocess plugin's tensor %q: %v", st.Name, e)
			}
			t, err = tensorOfInts(dt, pluginShape(want.Shape, st.Shape, len(v)), v, want.Name)
		case safetensors.DTypeF32:
			v, e := st.Float32s(nil)
			if e != nil {
				return nil, httpErr(http.StatusUnprocessableEntity, "the preprocess plugin's tensor %q: %v", st.Name, e)
			}
			t, err = tensorOf(dt, pluginShape(want.Shape, st.Shape, len(v)), v, want.Name)
		default:
			return nil, httpErr(http.StatusUnprocessableEntity, "the preprocess plugin returned %s data for %q; send F32 or I64", st.DType, want.Name)
		}
		if err != nil {
			return nil, wrapStatus(http.StatusUnprocessableEntity, err)
		}
		out[j] = t
	}
	return out, nil
}

// pluginShape is a plugin tensor's shape, or the signature's with its
// dynamic first dimension filled when the element count fits it and the
// ranks differ.
func pluginShape(sig []int64, shape []int, n int) []int64 {
	s := shape64(shape)
	if fit := fitShape(sig, n); fit != nil && len(s) != len(sig) {
		return fit
	}
	return s
}

// int64sOf decodes an I64 safetensors tensor.
func int64sOf(t *safetensors.Tensor) ([]int64, error) {
	n := t.NumElements()
	if n < 0 || len(t.Data) != 8*n {
		return nil, fmt.Errorf("%d bytes for shape %v", len(t.Data), t.Shape)
	}
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(binary.LittleEndian.Uint64(t.Data[8*i:]))
	}
	return out, nil
}

// fitShape returns sig with its dynamic first dimension set so that it
// holds n elements, or nil when sig has another dynamic dimension or n
// does not divide.
func fitShape(sig []int64, n int) []int64 {
	if len(sig) == 0 {
		return nil
	}
	per := int64(1)
	for i, d := range sig {
		if d < 0 && i > 0 {
			return nil
		}
		if i > 0 {
			per *= d
		}
	}
	if per <= 0 || int64(n)%per != 0 || (sig[0] >= 0 && sig[0]*per != int64(n)) {
		return nil
	}
	out := slices.Clone(sig)
	out[0] = int64(n) / per
	return out
}

// graphTensors encodes a graph's outputs for a postprocess plugin.
func graphTensors(lm *loadedModel, outs []*graph.Tensor) []safetensors.Tensor {
	ts := make([]safetensors.Tensor, len(outs))
	for i, o := range outs {
		ts[i] = safetensors.F32(lm.outputs[i].Name, o.Shape, floatsOf(o))
	}
	return ts
}
