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
// layers.{i}.bias), followed by the layer's activation node; for a
// convolutional network, Conv (weights [F, C, KH, KW], explicit pads),
// MaxPool, AveragePool, GlobalAveragePool + Flatten, BatchNormalization
// (γ, β, running mean and variance) and Flatten nodes. Dropout layers
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

	_, windows, err := spec.LayerShapes()
	if err != nil {
		return fmt.Errorf("onnx: export: %w", err)
	}
	gp := &onnxpb.GraphProto{}
	cur := in
	add := func(n *onnxpb.NodeProto) {
		gp.Node = append(gp.Node, n)
		cur = n.Output[0]
	}
	params := func(names ...string) []string {
		for _, n := range names {
			t, _ := f.Tensor(n)
			gp.Initializer = append(gp.Initializer, floatProto(t))
		}
		return append([]string{cur}, names...)
	}
	for i, l := range spec.Layers {
		si := strconv.Itoa(i)
		win := windows[i]
		switch l.Type {
		case nn.LayerDropout:
			continue // the identity at inference
		case nn.LayerDense:
			add(nodeProto("Gemm"+si, "Gemm", params(nn.WeightName(i), nn.BiasName(i)), "dense"+si))
		case nn.LayerConv2D:
			n := nodeProto("Conv"+si, "Conv", params(nn.WeightName(i), nn.BiasName(i)), "conv"+si)
			n.Attribute = windowAttrs(win, true)
			add(n)
		case nn.LayerMaxPool2D, nn.LayerAvgPool2D:
			op := "MaxPool"
			if l.Type == nn.LayerAvgPool2D {
				op = "AveragePool" // count_include_pad 0, the default: padding is never averaged, as in nn
			}
			n := nodeProto(op+si, op, []string{cur}, "pool"+si)
			n.Attribute = windowAttrs(win, false)
			add(n)
		case nn.LayerGlobalAvg:
			add(nodeProto("GlobalAveragePool"+si, "GlobalAveragePool", []string{cur}, "gap"+si))
			add(flattenNode("Flatten"+si, cur, "gapflat"+si)) // [N, C, 1, 1] → [N, C], as nn's output
		case nn.LayerBatchNorm:
			n := nodeProto("BatchNormalization"+si, "BatchNormalization",
				params(nn.WeightName(i), nn.BiasName(i), nn.RunningMeanName(i), nn.RunningVarName(i)), "bn"+si)
			eps := l.Epsilon
			if eps == 0 {
				eps = 1e-3 // nn's default (Keras')
			}
			n.Attribute = []*onnxpb.AttributeProto{floatAttr("epsilon", float32(eps))}
			add(n)
		case nn.LayerFlatten:
			add(flattenNode("Flatten"+si, cur, "flat"+si))
		}
		if op, ok := actOps[l.Activation]; ok {
			n := nodeProto(op+si, op, []string{cur}, op+si)
			if op == "Softmax" {
				n.Attribute = append(n.Attribute, intAttr("axis", -1))
			}
			add(n)
		}
	}
	// The last node writes the graph's output.
	last := gp.Node[len(gp.Node)-1]
	last.Output[0] = out
	name := spec.Name
	if name == "" {
		name = "aiaas"
	}
	gp.Name = &name
	gp.Input = append(gp.Input, valueInfoProto(in, spec.Inputs[0].Shape[1:]...))
	gp.Output = append(gp.Output, valueInfoProto(out, spec.Outputs[0].Shape[1:]...))

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

func windowAttrs(w nn.Window, conv bool) []*onnxpb.AttributeProto {
	a := []*onnxpb.AttributeProto{
		intsAttr("kernel_shape", w.Kernel[0], w.Kernel[1]),
		intsAttr("strides", w.Strides[0], w.Strides[1]),
		// ONNX pads are [x1_begin, x2_begin, x1_end, x2_end].
		intsAttr("pads", w.Pads[0], w.Pads[1], w.Pads[2], w.Pads[3]),
	}
	if conv {
		a = append(a, intsAttr("dilations", w.Dilations[0], w.Dilations[1]))
	}
	return a
}

func flattenNode(name, in, out string) *onnxpb.NodeProto {
	n := nodeProto(name, "Flatten", []string{in}, out)
	n.Attribute = []*onnxpb.AttributeProto{intAttr("axis", 1)}
	return n
}

func intAttr(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), I: proto.Int64(v), Type: onnxpb.AttributeProto_INT.Enum()}
}

func intsAttr(name string, v ...int) *onnxpb.AttributeProto {
	a := &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum()}
	for _, x := range v {
		a.Ints = append(a.Ints, int64(x))
	}
	return a
}

func floatAttr(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), F: proto.Float32(v), Type: onnxpb.AttributeProto_FLOAT.Enum()}
}

func floatProto(t safetensors.Tensor) *onnxpb.TensorProto {
	gt, _ := graph.TensorFromBytes(graph.Float32, t.Shape, t.Data) // safetensors data is little-endian F32, as raw_data wants
	return tensorProto(t.Name, gt)
}

func nodeProto(name, op string, in []string, out string) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{Name: proto.String(name), OpType: proto.String(op), Input: in, Output: []string{out}}
}

// valueInfoProto declares a FLOAT tensor of shape [N, dims...].
func valueInfoProto(name string, dims ...int64) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{
		{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "N"}},
	}}
	for _, d := range dims {
		shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
	}
	return &onnxpb.ValueInfoProto{
		Name: proto.String(name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)),
			Shape:    shape,
		}}},
	}
}
