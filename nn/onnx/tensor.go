package onnx

import (
	"encoding/binary"
	"math"

	"github.com/aiaas/aiaas/nn/graph"
	"github.com/aiaas/aiaas/nn/onnx/internal/onnxpb"
)

// ONNX element types (TensorProto.DataType) and the runtime's.
var fromONNXType = map[int32]graph.DType{
	int32(onnxpb.TensorProto_FLOAT):    graph.Float32,
	int32(onnxpb.TensorProto_UINT8):    graph.Uint8,
	int32(onnxpb.TensorProto_INT8):     graph.Int8,
	int32(onnxpb.TensorProto_UINT16):   graph.Uint16,
	int32(onnxpb.TensorProto_INT16):    graph.Int16,
	int32(onnxpb.TensorProto_INT32):    graph.Int32,
	int32(onnxpb.TensorProto_INT64):    graph.Int64,
	int32(onnxpb.TensorProto_BOOL):     graph.Bool,
	int32(onnxpb.TensorProto_FLOAT16):  graph.Float16,
	int32(onnxpb.TensorProto_DOUBLE):   graph.Float64,
	int32(onnxpb.TensorProto_UINT32):   graph.Uint32,
	int32(onnxpb.TensorProto_UINT64):   graph.Uint64,
	int32(onnxpb.TensorProto_BFLOAT16): graph.BFloat16,
}

func dtypeOf(t int32, what string) (graph.DType, error) {
	if d, ok := fromONNXType[t]; ok {
		return d, nil
	}
	name := onnxpb.TensorProto_DataType_name[t]
	if name == "" {
		return 0, bad("%s: unknown element type %d", what, t)
	}
	return 0, unsupported("%s: element type %s", what, name)
}

func toONNXType(d graph.DType) int32 {
	for k, v := range fromONNXType {
		if v == d {
			return k
		}
	}
	return 0
}

// tensorOf converts a TensorProto, checking its dims against maxElems
// before anything is allocated and its data against its dims.
func tensorOf(tp *onnxpb.TensorProto, what string, maxElems int64) (*graph.Tensor, error) {
	if tp.Segment != nil {
		return nil, unsupported("%s: segmented tensor", what)
	}
	if tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL || len(tp.ExternalData) > 0 {
		return nil, unsupported("%s: weights in an external data file; export with the weights inside the .onnx file (PyTorch: a model under 2 GB; onnx.save_model(..., save_as_external_data=False))", what)
	}
	dt, err := dtypeOf(tp.GetDataType(), what)
	if err != nil {
		return nil, err
	}
	if len(tp.Dims) > maxRank {
		return nil, bad("%s: rank %d, limit %d", what, len(tp.Dims), maxRank)
	}
	shape := make([]int, len(tp.Dims))
	n := int64(1)
	for i, d := range tp.Dims {
		if d < 0 {
			return nil, bad("%s: dims %v", what, tp.Dims)
		}
		if d > maxElems {
			return nil, bad("%s: dims %v over %d elements", what, tp.Dims, maxElems)
		}
		if d != 0 && n > maxElems/d {
			return nil, bad("%s: dims %v over %d elements", what, tp.Dims, maxElems)
		}
		n *= d
		shape[i] = int(d)
	}
	if n > maxElems {
		return nil, bad("%s: dims %v over %d elements", what, tp.Dims, maxElems)
	}
	size := dt.Size()
	if tp.RawData != nil {
		if int64(len(tp.RawData)) != n*int64(size) {
			return nil, bad("%s: raw_data of %d bytes, want %d for %v %v", what, len(tp.RawData), n*int64(size), dt, tp.Dims)
		}
		if len(tp.FloatData)+len(tp.Int32Data)+len(tp.Int64Data)+len(tp.DoubleData)+len(tp.Uint64Data) > 0 {
			return nil, bad("%s: both raw_data and typed data", what)
		}
		return graph.TensorFromBytes(dt, shape, tp.RawData)
	}
	t := graph.NewTensor(dt, shape...)
	b := t.Bytes()
	count := func(have int) error {
		if int64(have) != n {
			return bad("%s: %d values for dims %v", what, have, tp.Dims)
		}
		return nil
	}
	switch dt {
	case graph.Float32:
		if err := count(len(tp.FloatData)); err != nil {
			return nil, err
		}
		for i, v := range tp.FloatData {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
	case graph.Float64:
		if err := count(len(tp.DoubleData)); err != nil {
			return nil, err
		}
		for i, v := range tp.DoubleData {
			binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
		}
	case graph.Int64:
		if err := count(len(tp.Int64Data)); err != nil {
			return nil, err
		}
		for i, v := range tp.Int64Data {
			binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
		}
	case graph.Uint32, graph.Uint64:
		if err := count(len(tp.Uint64Data)); err != nil {
			return nil, err
		}
		for i, v := range tp.Uint64Data {
			if dt == graph.Uint32 {
				binary.LittleEndian.PutUint32(b[4*i:], uint32(v))
			} else {
				binary.LittleEndian.PutUint64(b[8*i:], v)
			}
		}
	default:
		// int32_data carries INT32, INT16, INT8, UINT16, UINT8, BOOL,
		// FLOAT16 and BFLOAT16 (the last two as bit patterns).
		if err := count(len(tp.Int32Data)); err != nil {
			return nil, err
		}
		for i, v := range tp.Int32Data {
			switch size {
			case 1:
				b[i] = byte(v)
			case 2:
				binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
			case 4:
				binary.LittleEndian.PutUint32(b[4*i:], uint32(v))
			}
		}
	}
	return t, nil
}

// tensorProto converts a runtime tensor to a TensorProto with raw_data.
func tensorProto(name string, t *graph.Tensor) *onnxpb.TensorProto {
	dims := make([]int64, len(t.Shape))
	for i, d := range t.Shape {
		dims[i] = int64(d)
	}
	dt := toONNXType(t.DType)
	return &onnxpb.TensorProto{Name: &name, Dims: dims, DataType: &dt, RawData: append([]byte{}, t.Bytes()...)}
}
