package onnx

import (
	"bytes"
	"fmt"
	"io"
	"strconv"

	"github.com/aiaas/aiaas/internal/safetensors"
	"github.com/aiaas/aiaas/nn"
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

	var g writer
	cur := in
	dense := 0
	for i, l := range spec.Layers {
		if l.Type != nn.LayerDense {
			continue
		}
		dense++
		wt, _ := f.Tensor(nn.WeightName(i))
		bt, _ := f.Tensor(nn.BiasName(i))
		g.msg(graphInitializer, tensorProto(wt))
		g.msg(graphInitializer, tensorProto(bt))
		last := dense == countDense(spec)
		op, hasAct := actOps[l.Activation]
		y := "dense" + strconv.Itoa(i)
		if last && !hasAct {
			y = out
		}
		g.msg(graphNode, nodeProto("Gemm"+strconv.Itoa(i), "Gemm", []string{cur, wt.Name, bt.Name}, y))
		cur = y
		if hasAct {
			y = op + strconv.Itoa(i)
			if last {
				y = out
			}
			n := nodeProto(op+strconv.Itoa(i), op, []string{cur}, y)
			if op == "Softmax" {
				a := writer{}
				a.str(attrName, "axis")
				a.varint(attrI, -1)
				a.varint(attrType, attrTypeInt)
				n.msg(nodeAttribute, &a)
			}
			g.msg(graphNode, n)
			cur = y
		}
	}
	name := spec.Name
	if name == "" {
		name = "aiaas"
	}
	g.str(graphName, name)
	g.msg(graphInput, valueInfoProto(in, spec.Inputs[0].Shape[1]))
	g.msg(graphOutput, valueInfoProto(out, spec.Outputs[0].Shape[1]))

	var mp writer
	mp.varint(modelIRVersion, exportIRVersion)
	mp.str(modelProducerName, "aiaas")
	mp.str(modelProducerVer, "1")
	var md writer
	md.str(entryKey, nn.MetaSpec)
	md.str(entryValue, f.Metadata[nn.MetaSpec])
	mp.msg(modelMetadataProps, &md)
	// Graph, then opset last: a file cut short anywhere then lacks the
	// opset or the whole graph, so a truncated upload is always refused.
	mp.msg(modelGraph, &g)
	var os writer
	os.str(opsetDomain, "")
	os.varint(opsetVersion, exportOpset)
	mp.msg(modelOpsetImport, &os)
	if _, err := w.Write(mp.b); err != nil {
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

func tensorProto(t safetensors.Tensor) *writer {
	var w writer
	dims := make([]int64, len(t.Shape))
	for i, d := range t.Shape {
		dims[i] = int64(d)
	}
	w.packedInt64s(tensorDims, dims)
	w.varint(tensorDataType, dataTypeFloat)
	w.str(tensorName, t.Name)
	w.bytes(tensorRawData, t.Data) // safetensors data is little-endian F32, as raw_data wants
	return &w
}

func nodeProto(name, op string, in []string, out string) *writer {
	var w writer
	for _, s := range in {
		w.str(nodeInput, s)
	}
	w.str(nodeOutput, out)
	w.str(nodeName, name)
	w.str(nodeOpType, op)
	return &w
}

func valueInfoProto(name string, width int64) *writer {
	var n, d writer
	n.str(dimParam, "N")
	d.varint(dimValue, width)
	var sh writer
	sh.msg(shapeDim, &n)
	sh.msg(shapeDim, &d)
	var tt writer
	tt.varint(ttElemType, dataTypeFloat)
	tt.msg(ttShape, &sh)
	var tp writer
	tp.msg(typeTensor, &tt)
	var v writer
	v.str(valueName, name)
	v.msg(valueType, &tp)
	return &v
}
