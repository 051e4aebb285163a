package onnx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/nn/graph"
	"github.com/aiaas/aiaas/nn/onnx/internal/onnxpb"
)

func randInput(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

func maxDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

func TestRoundTrip(t *testing.T) {
	specs := []nn.Spec{
		nn.MLP("mnist", 784, []int{128, 128}, nn.ActReLU, 10, nn.ActSoftmax),
		nn.MLP("tanh", 13, []int{7}, nn.ActTanh, 3, nn.ActSigmoid),
		nn.MLP("linear-out", 5, []int{9, 4}, nn.ActSigmoid, 2, nn.ActLinear),
		nn.MLP("one-layer", 3, nil, "", 1, ""),
		{
			Name:    "dropout",
			Inputs:  []nn.TensorSpec{{Name: "x", Datatype: nn.DatatypeFP32, Shape: []int64{-1, 20}}},
			Outputs: []nn.TensorSpec{{Name: "y", Datatype: nn.DatatypeFP32, Shape: []int64{-1, 4}}},
			Layers: []nn.Layer{
				{Type: nn.LayerDense, Units: 16, Activation: nn.ActReLU},
				{Type: nn.LayerDropout, Rate: 0.5},
				{Type: nn.LayerDense, Units: 4, Activation: nn.ActSoftmax},
			},
		},
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i, s := range specs {
		m, err := nn.New(s, int64(i+1))
		if err != nil {
			t.Fatalf("case %d: New: %v", i, err)
		}
		var buf bytes.Buffer
		if err := Export(&buf, m); err != nil {
			t.Fatalf("case %d: Export: %v", i, err)
		}
		m2, err := Import(buf.Bytes(), nil)
		if err != nil {
			t.Fatalf("case %d: Import: %v", i, err)
		}
		if m2.InputDim() != m.InputDim() || m2.OutputDim() != m.OutputDim() {
			t.Fatalf("case %d: dims %d→%d, want %d→%d", i, m2.InputDim(), m2.OutputDim(), m.InputDim(), m.OutputDim())
		}
		if got, want := m2.Spec().Inputs[0].Name, s.Inputs[0].Name; got != want {
			t.Errorf("case %d: input name %q, want %q", i, got, want)
		}
		for _, batch := range []int{1, 7, 300} {
			x := randInput(r, batch*m.InputDim())
			want, err := m.Forward(nil, x, batch)
			if err != nil {
				t.Fatalf("case %d: Forward: %v", i, err)
			}
			got, err := m2.Forward(nil, x, batch)
			if err != nil {
				t.Fatalf("case %d: imported Forward: %v", i, err)
			}
			if d := maxDiff(got, want); d > 1e-5 {
				t.Errorf("case %d batch %d: max |Δ| %g > 1e-5", i, batch, d)
			}
		}
		// Export of the import is byte-identical once dropout is gone:
		// the encoding is deterministic and loses nothing.
		var buf2, buf3 bytes.Buffer
		if err := Export(&buf2, m2); err != nil {
			t.Fatalf("case %d: re-Export: %v", i, err)
		}
		m3, err := Import(buf2.Bytes(), nil)
		if err != nil {
			t.Fatalf("case %d: re-Import: %v", i, err)
		}
		if err := Export(&buf3, m3); err != nil {
			t.Fatalf("case %d: re-re-Export: %v", i, err)
		}
		if !bytes.Equal(buf2.Bytes(), buf3.Bytes()) {
			t.Errorf("case %d: export not stable under import/export", i)
		}
	}
}

// TestForeignFiles imports models encoded by another tool (onnx-proto, from
// the official onnx.proto) in the PyTorch and tf2onnx layouts, and checks
// our forward pass against the outputs ONNX Runtime gave for the same
// inputs. Regenerate with: node bench/onnxgen/gen.js nn/onnx/testdata
func TestForeignFiles(t *testing.T) {
	for i, name := range []string{"torch_mlp", "keras_mlp"} {
		b, err := os.ReadFile(filepath.Join("testdata", name+".onnx"))
		if err != nil {
			t.Fatal(err)
		}
		js, err := os.ReadFile(filepath.Join("testdata", name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var ref struct {
			Batch  int       `json:"batch"`
			Input  []float32 `json:"input"`
			Output []float32 `json:"output"`
		}
		if err := json.Unmarshal(js, &ref); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		m, err := Import(b, nil)
		if err != nil {
			t.Fatalf("case %d (%s): Import: %v", i, name, err)
		}
		got, err := m.Forward(nil, ref.Input, ref.Batch)
		if err != nil {
			t.Fatalf("case %d (%s): Forward: %v", i, name, err)
		}
		if len(got) != len(ref.Output) {
			t.Fatalf("case %d (%s): %d outputs, ORT gave %d", i, name, len(got), len(ref.Output))
		}
		if d := maxDiff(got, ref.Output); d > 1e-5 {
			t.Errorf("case %d (%s): max |Δ| vs ONNX Runtime %g > 1e-5", i, name, d)
		}
	}
}

// gm builds test graphs from the generated onnx.proto types, so each
// error case changes one thing in an otherwise valid model.
type gm struct {
	opset   int64
	nodes   []*onnxpb.NodeProto
	inits   []*onnxpb.TensorProto
	inputs  []*onnxpb.ValueInfoProto
	outputs []*onnxpb.ValueInfoProto
}

func f32tensor(name string, dims []int64, v []float32) *onnxpb.TensorProto {
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		u := math.Float32bits(x)
		raw[4*i], raw[4*i+1], raw[4*i+2], raw[4*i+3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
	}
	return &onnxpb.TensorProto{Name: proto.String(name), Dims: dims, DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), RawData: raw}
}

func ones(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = 1
	}
	return v
}

// base is x[N,3] → Gemm(W[3,2], b[2]) → Relu → y[N,2].
func base() *gm {
	return &gm{
		opset:   13,
		nodes:   []*onnxpb.NodeProto{nodeProto("g", "Gemm", []string{"x", "W", "b"}, "h"), nodeProto("r", "Relu", []string{"h"}, "y")},
		inits:   []*onnxpb.TensorProto{f32tensor("W", []int64{3, 2}, ones(6)), f32tensor("b", []int64{2}, ones(2))},
		inputs:  []*onnxpb.ValueInfoProto{valueInfoProto("x", 3)},
		outputs: []*onnxpb.ValueInfoProto{valueInfoProto("y", 2)},
	}
}

func (g *gm) bytes() []byte {
	mp := &onnxpb.ModelProto{
		IrVersion:   proto.Int64(7),
		Graph:       &onnxpb.GraphProto{Node: g.nodes, Initializer: g.inits, Input: g.inputs, Output: g.outputs},
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(g.opset)}},
	}
	b, err := proto.Marshal(mp)
	if err != nil {
		panic(err)
	}
	return b
}

func TestImportErrors(t *testing.T) {
	nan := ones(6)
	nan[4] = float32(math.NaN())
	cases := []struct {
		mod     func(g *gm)
		lim     *Limits
		sentry  error
		contain string
	}{
		{func(g *gm) {}, nil, nil, ""},
		{func(g *gm) { g.nodes[1] = nodeProto("c", "Conv", []string{"h"}, "y") }, nil, ErrUnsupported, "Conv"},
		{func(g *gm) { g.nodes[1] = nodeProto("c", "Frobnicate", []string{"h"}, "y") }, nil, ErrUnsupported, "Frobnicate"},
		{func(g *gm) { g.inits = g.inits[:1] }, nil, nn.ErrArtifact, `"b"`},
		{func(g *gm) { g.inits[0] = f32tensor("W", []int64{3, 2}, nan) }, nil, nn.ErrArtifact, "NaN"},
		{func(g *gm) { g.inits[0] = f32tensor("W", []int64{4, 2}, ones(8)) }, nil, nn.ErrArtifact, "input width 3"},
		{func(g *gm) { g.inits[0] = f32tensor("W", []int64{3, 2}, ones(5)) }, nil, nn.ErrArtifact, "raw_data"},
		{func(g *gm) { g.inits[1] = f32tensor("b", []int64{3}, ones(3)) }, nil, ErrUnsupported, "bias"},
		{func(g *gm) { g.inits = append(g.inits, f32tensor("b", []int64{2}, ones(2))) }, nil, nn.ErrArtifact, "twice"},
		{func(g *gm) {
			g.inits[0] = &onnxpb.TensorProto{Name: proto.String("W"), Dims: []int64{3, 2}, DataType: proto.Int32(int32(onnxpb.TensorProto_STRING))}
		}, nil, ErrUnsupported, "element type STRING"},
		{func(g *gm) { g.inputs = append(g.inputs, valueInfoProto("z", 3)) }, nil, ErrUnsupported, "2 graph inputs"},
		{func(g *gm) { g.outputs[0] = valueInfoProto("h", 2) }, nil, ErrUnsupported, "end of the chain"},
		{func(g *gm) { g.outputs[0] = valueInfoProto("y", 5) }, nil, nn.ErrArtifact, "want [N, 2]"},
		{func(g *gm) { g.nodes[1] = nodeProto("r", "Relu", []string{"x"}, "y") }, nil, ErrUnsupported, "single chain"},
		{func(g *gm) { g.nodes = []*onnxpb.NodeProto{nodeProto("r", "Relu", []string{"x"}, "y")} }, nil, ErrUnsupported, "not directly after"},
		{func(g *gm) { g.opset = 5 }, nil, ErrUnsupported, "opset 5"},
		{func(g *gm) {
			n := nodeProto("s", "Softmax", []string{"h"}, "y")
			n.Attribute = append(n.Attribute, intAttr("axis", 0))
			g.nodes[1] = n
		}, nil, ErrUnsupported, "axis 0"},
		{func(g *gm) {
			n := nodeProto("g", "Gemm", []string{"x", "W", "b"}, "h")
			n.Attribute = append(n.Attribute, intAttr("transA", 1))
			g.nodes[0] = n
		}, nil, ErrUnsupported, "transA"},
		{func(g *gm) {}, &Limits{MaxBytes: 20}, nn.ErrArtifact, "limit"},
		{func(g *gm) {}, &Limits{MaxParams: 7}, nn.ErrArtifact, "elements"},
		{func(g *gm) {}, &Limits{MaxNodes: 1}, nn.ErrArtifact, "nodes"},
	}
	for i, c := range cases {
		g := base()
		c.mod(g)
		m, err := Import(g.bytes(), c.lim)
		if c.sentry == nil {
			if err != nil {
				t.Errorf("case %d: %v", i, err)
				continue
			}
			y, err := m.Forward(nil, []float32{1, -2, 0.5}, 1)
			if err != nil || len(y) != 2 || y[0] != 0.5 || y[1] != 0.5 {
				t.Errorf("case %d: forward %v, %v; want [0.5 0.5]", i, y, err)
			}
			continue
		}
		if !errors.Is(err, c.sentry) {
			t.Errorf("case %d: error %v, want %v", i, err, c.sentry)
			continue
		}
		if !strings.Contains(err.Error(), c.contain) {
			t.Errorf("case %d: error %q does not mention %q", i, err, c.contain)
		}
	}
}

func TestImportTruncated(t *testing.T) {
	m, err := nn.New(nn.MLP("t", 4, []int{3}, nn.ActTanh, 2, nn.ActSoftmax), 1)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Export(&buf, m); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	for n := 0; n < len(b); n++ {
		_, err := Import(b[:n], nil)
		if err == nil {
			t.Fatalf("prefix %d of %d accepted", n, len(b))
		}
		if !errors.Is(err, nn.ErrArtifact) && !errors.Is(err, ErrUnsupported) {
			t.Fatalf("prefix %d: error %v wraps no sentinel", n, err)
		}
	}
}

func FuzzImport(f *testing.F) {
	for _, name := range []string{"torch_mlp", "keras_mlp"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name+".onnx")); err == nil {
			f.Add(b)
		}
	}
	f.Add(base().bytes())
	m, err := nn.New(nn.MLP("f", 4, []int{3}, nn.ActReLU, 2, nn.ActSoftmax), 1)
	if err != nil {
		f.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Export(&buf, m); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte{})
	f.Add([]byte{0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Import(b, &Limits{MaxParams: 1 << 16})
		if err != nil {
			if !errors.Is(err, nn.ErrArtifact) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		// Whatever was accepted must run and export again.
		x := make([]float32, m.InputDim())
		if _, err := m.Forward(nil, x, 1); err != nil {
			t.Fatalf("accepted model fails Forward: %v", err)
		}
		if err := Export(&bytes.Buffer{}, m); err != nil {
			t.Fatalf("accepted model fails Export: %v", err)
		}
	})
}

// TestGemmForms covers the Gemm variants exporters write: transB with the
// weight as [out, in] (PyTorch), alpha and beta folded in, float_data
// unpacked (one fixed32 field per value, as old writers did), a [1, out]
// bias, and a Gemm without bias.
func TestGemmForms(t *testing.T) {
	// W as [out=2, in=3] for transB: rows (1,2,3) and (0,-1,1).
	wT := []float32{1, 2, 3, 0, -1, 1}
	unpacked := func(name string, dims []int64, v []float32) *onnxpb.TensorProto {
		return &onnxpb.TensorProto{Name: proto.String(name), Dims: dims, DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), FloatData: v}
	}
	gemm := func(in []string, alpha, beta float32) *onnxpb.NodeProto {
		n := nodeProto("g", "Gemm", in, "h")
		n.Attribute = append(n.Attribute, floatAttr("alpha", alpha), floatAttr("beta", beta), intAttr("transB", 1))
		return n
	}
	x := []float32{1, -2, 0.5}
	// x·Wᵀ = (1-4+1.5, 0+2+0.5) = (-1.5, 2.5)
	cases := []struct {
		g    *gm
		want []float32
	}{
		{&gm{opset: 17,
			nodes:   []*onnxpb.NodeProto{gemm([]string{"x", "W", "b"}, 2, 0.5), nodeProto("i", "Identity", []string{"h"}, "y")},
			inits:   []*onnxpb.TensorProto{unpacked("W", []int64{2, 3}, wT), unpacked("b", []int64{1, 2}, []float32{1, -2})},
			inputs:  []*onnxpb.ValueInfoProto{valueInfoProto("x", 3)},
			outputs: []*onnxpb.ValueInfoProto{valueInfoProto("y", 2)},
		}, []float32{2*-1.5 + 0.5, 2*2.5 - 1}},
		{&gm{opset: 13,
			nodes:   []*onnxpb.NodeProto{gemm([]string{"x", "W"}, 1, 1), nodeProto("i", "Identity", []string{"h"}, "y")},
			inits:   []*onnxpb.TensorProto{f32tensor("W", []int64{2, 3}, wT)},
			inputs:  []*onnxpb.ValueInfoProto{valueInfoProto("W", 3), valueInfoProto("x", 3)}, // IR 3 style: initializers listed as inputs
			outputs: []*onnxpb.ValueInfoProto{valueInfoProto("y", 2)},
		}, []float32{-1.5, 2.5}},
	}
	for i, c := range cases {
		m, err := Import(c.g.bytes(), nil)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		y, err := m.Forward(nil, x, 1)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if d := maxDiff(y, c.want); d > 1e-6 {
			t.Errorf("case %d: got %v, want %v", i, y, c.want)
		}
	}
}

// convModel is x[N,2,5,5] → Conv(W[3,2,3,3], pads 1) → Relu → y.
func convModel() []byte {
	w := make([]float32, 3*2*3*3)
	for i := range w {
		w[i] = float32(i%7) / 7
	}
	vi := func(name string, c int64) *onnxpb.ValueInfoProto {
		return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)),
			Shape: &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{
				{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "N"}},
				{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: c}},
				{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: 5}},
				{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: 5}},
			}},
		}}}}
	}
	conv := nodeProto("conv", "Conv", []string{"x", "W"}, "h")
	conv.Attribute = append(conv.Attribute, &onnxpb.AttributeProto{Name: proto.String("pads"), Ints: []int64{1, 1, 1, 1}, Type: onnxpb.AttributeProto_INTS.Enum()})
	g := &gm{opset: 13,
		nodes:   []*onnxpb.NodeProto{conv, nodeProto("r", "Relu", []string{"h"}, "y")},
		inits:   []*onnxpb.TensorProto{f32tensor("W", []int64{3, 2, 3, 3}, w)},
		inputs:  []*onnxpb.ValueInfoProto{vi("x", 2)},
		outputs: []*onnxpb.ValueInfoProto{vi("y", 3)},
	}
	return g.bytes()
}

// FuzzConvert feeds arbitrary bytes to the converter an upload goes
// through, then loads and runs whatever it accepts.
func FuzzConvert(f *testing.F) {
	f.Add(base().bytes())
	f.Add(convModel())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		art, err := Convert(b, &Limits{MaxParams: 1 << 16, MaxNodes: 64})
		if err != nil {
			if !errors.Is(err, nn.ErrArtifact) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, nn.ErrShape) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		if m, _, err := graph.ReadArtifact(art, nil); err == nil {
			ins := m.Inputs()
			feed := make([]*graph.Tensor, len(ins))
			for i, v := range ins {
				shape := make([]int, len(v.Shape))
				for j, d := range v.Shape {
					shape[j] = int(min(max(d, 1), 16))
				}
				feed[i] = graph.NewTensor(v.DType, shape...)
			}
			if _, err := m.Run(context.Background(), feed, nil); err != nil && !errors.Is(err, nn.ErrShape) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("run: %v", err)
			}
			return
		}
		if _, _, err := nn.ReadArtifact(art, nil); err != nil {
			t.Fatalf("Convert wrote an artifact neither reader takes: %v", err)
		}
	})
}

// TestConvertGraph: a network that is not a dense chain becomes a graph
// artifact that runs, with the dynamic batch kept.
func TestConvertGraph(t *testing.T) {
	art, err := Convert(convModel(), nil)
	if err != nil {
		t.Fatal(err)
	}
	m, meta, err := graph.ReadArtifact(art, nil)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Provenance["imported_from"] != "onnx" || meta.Provenance["onnx_opset"] != "13" {
		t.Errorf("provenance %v", meta.Provenance)
	}
	if got := m.Outputs()[0].Shape; fmt.Sprint(got) != "[-1 3 5 5]" {
		t.Errorf("output shape %v, want [-1 3 5 5]", got)
	}
	x := graph.NewTensor(graph.Float32, 2, 2, 5, 5)
	for i := range x.Float32s() {
		x.Float32s()[i] = 1
	}
	out, err := m.Run(context.Background(), []*graph.Tensor{x}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The centre pixel of output channel 0 sums all 18 weights of W[0].
	want := float32(0)
	for i := 0; i < 18; i++ {
		want += float32(i%7) / 7
	}
	if got := out[0].Float32s()[12]; math.Abs(float64(got-want)) > 1e-5 {
		t.Errorf("centre of channel 0 = %v, want %v", got, want)
	}
}
