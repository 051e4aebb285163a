package onnx

import (
	"bytes"
	"fmt"
	"io"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/aiaas/aiaas/internal/safetensors"
	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/nn/graph"
	"github.com/aiaas/aiaas/nn/onnx/internal/onnxpb"
)

// What Export writes: opset 13 is the first with Softmax over the last axis
// by default, and IR version 7 is the one that introduced opset 13.
const (
	exportOpset     = 13
	exportIRVersion = 7
)

// actOps maps nn activations to ONNX operators; "linear" has none.
var actOps = map[string]string{
	nn.ActReLU:    "Relu",
	nn.ActTanh:    "Tanh",
	nn.ActSigmoid: "Sigmoid",
	nn.ActSoftmax: "Softmax",
}

// Export writes m as an ONNX model (opset 13, IR version 7): one Gemm per
// dense layer with its weight [in, out] and bias [out] as FLOAT initializers
// in raw_data (named as in the safetensors artifact, layers.{i}.weight and
// layers.{i}.bias), followed by the layer's activation node. Dropout layers
// are left out, as at inference. The batch dimension of the input and
// output is the symbolic "N". The spec is also stored, as JSON, in the
// model's metadata_props under nn.MetaSpec, for readers that want the layer
// list back verbatim.
//
// The output is deterministic. Errors are those of m.WriteArtifact (a model
// not built by nn, NaN weights) or of w. Export is goroutine-safe (not
// during Train).
func Export(w io.Writer, m *nn.Model) error {
	var art bytes.Buffer
	if err := m.WriteArtifact(&art, nn.Metadata{}); err != nil {
		return fmt.Errorf("onnx: export: %w", err)
	}
	// Reading our own artifact back is the one way to get at the weights
	// without widening nn's API; it costs a copy of the weights.
	f, err := safetensors.Decode(art.Bytes(), nil)
	if err != nil {
		return fmt.Errorf("onnx: export: %w", err)
	}
	spec := m.Spec()
	in, out := spec.Inputs[0].Name, spec.Outputs[0].Name

	gp := &onnxpb.GraphProto{}
	cur := in
	dense, total := 0, countDense(spec)
	for i, l := range spec.Layers {
		if l.Type != nn.LayerDense {
			continue
		}
		dense++
		wt, _ := f.Tensor(nn.WeightName(i))
		bt, _ := f.Tensor(nn.BiasName(i))
		gp.Initializer = append(gp.Initializer, floatProto(wt), floatProto(bt))
		last := dense == total
		op, hasAct := actOps[l.Activation]
		y := "dense" + strconv.Itoa(i)
		if last && !hasAct {
			y = out
		}
		gp.Node = append(gp.Node, nodeProto("Gemm"+strconv.Itoa(i), "Gemm", []string{cur, wt.Name, bt.Name}, y))
		cur = y
		if hasAct {
			y = op + strconv.Itoa(i)
			if last {
				y = out
			}
			n := nodeProto(op+strconv.Itoa(i), op, []string{cur}, y)
			if op == "Softmax" {
				n.Attribute = append(n.Attribute, &onnxpb.AttributeProto{
					Name: proto.String("axis"), I: proto.Int64(-1), Type: onnxpb.AttributeProto_INT.Enum()})
			}
			gp.Node = append(gp.Node, n)
			cur = y
		}
	}
	name := spec.Name
	if name == "" {
		name = "aiaas"
	}
	gp.Name = &name
	gp.Input = append(gp.Input, valueInfoProto(in, spec.Inputs[0].Shape[1]))
	gp.Output = append(gp.Output, valueInfoProto(out, spec.Outputs[0].Shape[1]))

	mp := &onnxpb.ModelProto{
		IrVersion:       proto.Int64(exportIRVersion),
		ProducerName:    proto.String("aiaas"),
		ProducerVersion: proto.String("1"),
		MetadataProps:   []*onnxpb.StringStringEntryProto{{Key: proto.String(nn.MetaSpec), Value: proto.String(f.Metadata[nn.MetaSpec])}},
		Graph:           gp,
	}
	opt := proto.MarshalOptions{Deterministic: true}
	b, err := opt.Marshal(mp)
	if err != nil {
		return fmt.Errorf("onnx: export: %w", err)
	}
	// The opset goes last (protobuf fields may come in any order): a file
	// cut short anywhere then lacks the opset or the whole graph, so a
	// truncated upload is always refused rather than read as a smaller
	// model.
	opset, err := opt.Marshal(&onnxpb.ModelProto{OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(exportOpset)}}})
	if err != nil {
		return fmt.Errorf("onnx: export: %w", err)
	}
	b = append(b, opset...)
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("onnx: export: %w", err)
	}
	return nil
}

func countDense(s nn.Spec) int {
	n := 0
	for _, l := range s.Layers {
		if l.Type == nn.LayerDense {
			n++
		}
	}
	return n
}

func floatProto(t safetensors.Tensor) *onnxpb.TensorProto {
	gt, _ := graph.TensorFromBytes(graph.Float32, t.Shape, t.Data) // safetensors data is little-endian F32, as raw_data wants
	return tensorProto(t.Name, gt)
}

func nodeProto(name, op string, in []string, out string) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{Name: proto.String(name), OpType: proto.String(op), Input: in, Output: []string{out}}
}

func valueInfoProto(name string, width int64) *onnxpb.ValueInfoProto {
	return &onnxpb.ValueInfoProto{
		Name: proto.String(name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)),
			Shape: &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{
				{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "N"}},
				{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: width}},
			}},
		}}},
	}
}
