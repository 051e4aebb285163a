package onnx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/aiaas/aiaas/internal/safetensors"
	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/nn/graph"
	"github.com/aiaas/aiaas/nn/onnx/internal/onnxpb"
)

// ErrUnsupported reports a well-formed ONNX model that uses something
// aiaas cannot run: an operator (named with its opset and node), an
// element type, external data, a subgraph. It is graph.ErrUnsupported, a
// client error (the HTTP layer maps it to 400, like nn.ErrArtifact).
var ErrUnsupported = graph.ErrUnsupported

// Limits bound what the importer accepts. Zero fields take the defaults.
type Limits struct {
	MaxBytes        int // whole file; default 2 GiB
	MaxNodes        int // default 16,384
	MaxInitializers int // default 16,384
	// MaxParams bounds the elements of all initializers together; default
	// 2³⁰ (4 GiB of float32, beyond MaxBytes). Import (the dense form)
	// caps it at nn.MaxParams.
	MaxParams int
}

func (l *Limits) withDefaults() Limits {
	var o Limits
	if l != nil {
		o = *l
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 2 << 30
	}
	if o.MaxNodes <= 0 {
		o.MaxNodes = 16384
	}
	if o.MaxInitializers <= 0 {
		o.MaxInitializers = 16384
	}
	if o.MaxParams <= 0 {
		o.MaxParams = 1 << 30
	}
	return o
}

const (
	maxRank        = 8
	maxValueInfos  = 256
	minIRVersion   = 3
	maxAttrs       = 64
	maxNodeIO      = 1024
	maxDecodeSlack = 64 << 20
)

func bad(format string, args ...any) error {
	return fmt.Errorf("%w: onnx: %s", nn.ErrArtifact, fmt.Sprintf(format, args...))
}

func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsupported, fmt.Sprintf(format, args...))
}

// Parse decodes an ONNX model and converts it to the runtime's graph: the
// nodes with their attributes, the inputs (initializers aside) and
// outputs with their types and shapes, and every initializer and tensor
// attribute as a named tensor. It checks what the file says about itself
// (IR version ≥ 3, an ai.onnx opset between graph.MinOpset and
// graph.MaxOpset, operators in the default domain, no subgraphs, sizes
// within lim, data that matches dims), sorts the nodes topologically if
// they are not, and validates the graph (graph.Graph.Validate: every
// operator is one the runtime implements at that opset).
//
// b is untrusted: its decoded size is bounded before it is decoded (see
// prescan), and nothing panics. Errors wrap ErrUnsupported or
// nn.ErrArtifact. Parse does not retain b and is goroutine-safe.
func Parse(b []byte, lim *Limits) (*graph.Graph, map[string]*graph.Tensor, error) {
	l := lim.withDefaults()
	if len(b) > l.MaxBytes {
		return nil, nil, bad("%d bytes, limit %d", len(b), l.MaxBytes)
	}
	mp := &onnxpb.ModelProto{}
	if err := prescan(b, mp.ProtoReflect().Descriptor(), 2*int64(len(b))+maxDecodeSlack); err != nil {
		return nil, nil, bad("model: %v", err)
	}
	if err := (proto.UnmarshalOptions{RecursionLimit: 2 * maxDepth}).Unmarshal(b, mp); err != nil {
		return nil, nil, bad("model: %v", errors.Unwrap(err))
	}
	return convert(mp, &l)
}

func convert(mp *onnxpb.ModelProto, l *Limits) (*graph.Graph, map[string]*graph.Tensor, error) {
	if mp.Graph == nil {
		return nil, nil, bad("model has no graph")
	}
	if v := mp.GetIrVersion(); v < minIRVersion {
		return nil, nil, unsupported("IR version %d; aiaas reads IR version %d and later", v, minIRVersion)
	}
	opset := int64(-1)
	for _, o := range mp.OpsetImport {
		if d := o.GetDomain(); d == "" || d == "ai.onnx" {
			opset = o.GetVersion()
		}
	}
	if opset < 0 {
		return nil, nil, bad("model imports no ai.onnx opset")
	}
	if opset < graph.MinOpset || opset > graph.MaxOpset {
		return nil, nil, unsupported("opset %d; aiaas runs ai.onnx opsets %d to %d (re-export with opset_version=%d, for example)", opset, graph.MinOpset, graph.MaxOpset, 13)
	}
	gp := mp.Graph
	if len(gp.Node) > l.MaxNodes {
		return nil, nil, bad("%d nodes, limit %d", len(gp.Node), l.MaxNodes)
	}
	if len(gp.Initializer) > l.MaxInitializers {
		return nil, nil, bad("%d initializers, limit %d", len(gp.Initializer), l.MaxInitializers)
	}
	if len(gp.SparseInitializer) > 0 {
		return nil, nil, unsupported("sparse initializers")
	}
	if len(gp.Input)+len(gp.Output) > maxValueInfos {
		return nil, nil, bad("%d graph inputs and outputs, limit %d", len(gp.Input)+len(gp.Output), maxValueInfos)
	}
	g := &graph.Graph{Opset: int(opset), Name: gp.GetName()}
	tensors := map[string]*graph.Tensor{}
	params := int64(0)
	budget := int64(l.MaxParams)
	for _, tp := range gp.Initializer {
		name := tp.GetName()
		what := fmt.Sprintf("initializer %q", printable(name))
		if name == "" {
			return nil, nil, bad("initializer without a name")
		}
		if _, dup := tensors[name]; dup {
			return nil, nil, bad("%s given twice", what)
		}
		t, err := tensorOf(tp, what, budget-params)
		if err != nil {
			return nil, nil, err
		}
		if err := finiteWeights(t, what); err != nil {
			return nil, nil, err
		}
		params += int64(t.Numel())
		tensors[name] = t
	}
	for _, vi := range gp.Input {
		if _, isInit := tensors[vi.GetName()]; isInit {
			continue // IR < 4 lists initializers among the inputs too
		}
		v, err := valueOf(vi, "input")
		if err != nil {
			return nil, nil, err
		}
		g.Inputs = append(g.Inputs, v)
	}
	for _, vi := range gp.Output {
		v, err := valueOf(vi, "output")
		if err != nil {
			return nil, nil, err
		}
		g.Outputs = append(g.Outputs, v)
	}
	for i, np := range gp.Node {
		n, err := nodeOf(np, i, g.Opset, tensors, budget-params)
		if err != nil {
			return nil, nil, err
		}
		for _, a := range n.Attrs {
			if a.Kind == graph.AttrTensor {
				params += int64(tensors[a.T].Numel())
			}
		}
		g.Nodes = append(g.Nodes, n)
	}
	nodes, err := topoSort(g.Nodes, g.Inputs, tensors)
	if err != nil {
		return nil, nil, err
	}
	g.Nodes = nodes
	known := func(name string) bool { _, ok := tensors[name]; return ok }
	if err := g.Validate(known, &graph.Limits{MaxNodes: l.MaxNodes}); err != nil {
		return nil, nil, err
	}
	return g, tensors, nil
}

// finiteWeights refuses NaN in a float initializer: it is never a weight,
// and always a sign of a broken export. Infinities are left alone (masks
// use them).
func finiteWeights(t *graph.Tensor, what string) error {
	switch t.DType {
	case graph.Float32:
		for j, v := range t.Float32s() {
			if v != v {
				return bad("%s: element %d is NaN", what, j)
			}
		}
	case graph.Float64:
		for j, v := range graph.Data[float64](t) {
			if math.IsNaN(v) {
				return bad("%s: element %d is NaN", what, j)
			}
		}
	}
	return nil
}

func valueOf(vi *onnxpb.ValueInfoProto, kind string) (graph.Value, error) {
	v := graph.Value{Name: vi.GetName()}
	what := fmt.Sprintf("%s %q", kind, printable(v.Name))
	tp := vi.GetType()
	if tp == nil {
		return v, bad("%s has no type", what)
	}
	tt := tp.GetTensorType()
	if tt == nil {
		return v, unsupported("%s is not a tensor (sequences, maps and optionals are not supported)", what)
	}
	dt, err := dtypeOf(tt.GetElemType(), what)
	if err != nil {
		return v, err
	}
	v.DType = dt
	if sh := tt.GetShape(); sh != nil {
		if len(sh.Dim) > maxRank {
			return v, bad("%s: rank %d, limit %d", what, len(sh.Dim), maxRank)
		}
		v.Shape = make([]int64, len(sh.Dim))
		named := false
		dims := make([]string, len(sh.Dim))
		for i, d := range sh.Dim {
			v.Shape[i] = -1
			switch x := d.Value.(type) {
			case *onnxpb.TensorShapeProto_Dimension_DimValue:
				if x.DimValue >= 0 {
					v.Shape[i] = x.DimValue
				}
			case *onnxpb.TensorShapeProto_Dimension_DimParam:
				dims[i] = truncName(x.DimParam)
				named = named || dims[i] != ""
			}
		}
		if named {
			v.Dims = dims
		}
	}
	return v, nil
}

func truncName(s string) string {
	if len(s) > 64 || !utf8.ValidString(s) {
		return ""
	}
	return s
}

// nodeOf converts a node; tensor attributes become tensors named
// "<node>/<attribute>" (made unique) in tensors.
func nodeOf(np *onnxpb.NodeProto, i, opset int, tensors map[string]*graph.Tensor, maxElems int64) (graph.Node, error) {
	n := graph.Node{Name: np.GetName(), Op: np.GetOpType(), Inputs: np.Input, Outputs: np.Output}
	if n.Name == "" {
		n.Name = n.Op + "_" + strconv.Itoa(i)
	}
	if d := np.GetDomain(); d != "" && d != "ai.onnx" {
		return n, unsupported("node %q: operator %s of domain %s; aiaas runs the default ai.onnx domain", printable(n.Name), printable(n.Op), printable(d))
	}
	if len(np.Input)+len(np.Output) > maxNodeIO {
		return n, bad("node %q has %d inputs and outputs, limit %d", printable(n.Name), len(np.Input)+len(np.Output), maxNodeIO)
	}
	if len(np.Attribute) > maxAttrs {
		return n, bad("node %q has %d attributes, limit %d", printable(n.Name), len(np.Attribute), maxAttrs)
	}
	for _, ap := range np.Attribute {
		name := ap.GetName()
		what := fmt.Sprintf("node %q (%s) attribute %q", printable(n.Name), printable(n.Op), printable(name))
		if ap.RefAttrName != nil {
			return n, unsupported("%s refers to a function attribute", what)
		}
		var a graph.Attr
		switch ap.GetType() {
		case onnxpb.AttributeProto_FLOAT:
			a = graph.Attr{Kind: graph.AttrFloat, F: graph.Float(ap.GetF())}
		case onnxpb.AttributeProto_INT:
			a = graph.Attr{Kind: graph.AttrInt, I: ap.GetI()}
		case onnxpb.AttributeProto_STRING:
			if !utf8.Valid(ap.S) {
				return n, bad("%s is not UTF-8", what)
			}
			a = graph.Attr{Kind: graph.AttrString, S: string(ap.S)}
		case onnxpb.AttributeProto_FLOATS:
			a = graph.Attr{Kind: graph.AttrFloats, Floats: make([]graph.Float, len(ap.Floats))}
			for j, f := range ap.Floats {
				a.Floats[j] = graph.Float(f)
			}
		case onnxpb.AttributeProto_INTS:
			a = graph.Attr{Kind: graph.AttrInts, Ints: ap.Ints}
			if a.Ints == nil {
				a.Ints = []int64{}
			}
		case onnxpb.AttributeProto_STRINGS:
			a = graph.Attr{Kind: graph.AttrStrings, Strings: make([]string, len(ap.Strings))}
			for j, s := range ap.Strings {
				if !utf8.Valid(s) {
					return n, bad("%s is not UTF-8", what)
				}
				a.Strings[j] = string(s)
			}
		case onnxpb.AttributeProto_TENSOR:
			t, err := tensorOf(ap.T, what, maxElems)
			if err != nil {
				return n, err
			}
			tname := n.Name + "/" + name
			for k := 1; ; k++ {
				if _, taken := tensors[tname]; !taken {
					break
				}
				tname = n.Name + "/" + name + "#" + strconv.Itoa(k)
			}
			tensors[tname] = t
			a = graph.Attr{Kind: graph.AttrTensor, T: tname}
		case onnxpb.AttributeProto_GRAPH, onnxpb.AttributeProto_GRAPHS:
			return n, unsupported("node %q: operator %s with a subgraph (control flow is not supported)", printable(n.Name), printable(n.Op))
		case onnxpb.AttributeProto_UNDEFINED:
			// Files from before the type field (IR < 2 style): infer it.
			switch {
			case ap.F != nil:
				a = graph.Attr{Kind: graph.AttrFloat, F: graph.Float(ap.GetF())}
			case ap.I != nil:
				a = graph.Attr{Kind: graph.AttrInt, I: ap.GetI()}
			case ap.S != nil:
				a = graph.Attr{Kind: graph.AttrString, S: string(ap.S)}
			case len(ap.Ints) > 0:
				a = graph.Attr{Kind: graph.AttrInts, Ints: ap.Ints}
			case len(ap.Floats) > 0:
				a = graph.Attr{Kind: graph.AttrFloats}
				for _, f := range ap.Floats {
					a.Floats = append(a.Floats, graph.Float(f))
				}
			default:
				return n, bad("%s has no type", what)
			}
		default:
			return n, unsupported("%s of type %v", what, ap.GetType())
		}
		if n.Attrs == nil {
			n.Attrs = map[string]graph.Attr{}
		}
		if _, dup := n.Attrs[name]; dup {
			return n, bad("%s given twice", what)
		}
		n.Attrs[name] = a
	}
	return n, nil
}

// topoSort returns nodes in an order where each runs after the nodes that
// produce its inputs. ONNX requires files to be sorted; the ones that are
// not are sorted rather than refused. Stable: a sorted file keeps its order.
func topoSort(nodes []graph.Node, inputs []graph.Value, tensors map[string]*graph.Tensor) ([]graph.Node, error) {
	producer := map[string]int{}
	for i, n := range nodes {
		for _, o := range n.Outputs {
			if o != "" {
				if _, dup := producer[o]; dup {
					return nil, bad("value %q is produced by two nodes", printable(o))
				}
				producer[o] = i
			}
		}
	}
	sorted := true
	avail := map[string]bool{}
	for _, v := range inputs {
		avail[v.Name] = true
	}
	for _, n := range nodes {
		for _, in := range n.Inputs {
			if _, isT := tensors[in]; in != "" && !isT && !avail[in] {
				sorted = false
			}
		}
		for _, o := range n.Outputs {
			avail[o] = true
		}
	}
	if sorted {
		return nodes, nil
	}
	state := make([]byte, len(nodes)) // 0 new, 1 visiting, 2 done
	out := make([]graph.Node, 0, len(nodes))
	var stack []int
	for start := range nodes {
		if state[start] != 0 {
			continue
		}
		stack = append(stack[:0], start)
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			if state[i] == 0 {
				state[i] = 1
				for _, in := range nodes[i].Inputs {
					if p, ok := producer[in]; ok {
						switch state[p] {
						case 0:
							stack = append(stack, p)
						case 1:
							return nil, bad("the graph has a cycle through %q", printable(in))
						}
					}
				}
				continue
			}
			stack = stack[:len(stack)-1]
			if state[i] == 1 {
				state[i] = 2
				out = append(out, nodes[i])
			}
		}
	}
	return out, nil
}

// Import reads an ONNX model that is a chain of dense layers (see the
// package documentation) and returns the equivalent nn.Model, built
// through nn.ReadArtifact so it passes every check an artifact does.
// Other graphs are refused with ErrUnsupported: Convert turns any model
// the runtime implements into an artifact.
//
// b is untrusted. Errors wrap ErrUnsupported or nn.ErrArtifact. Import
// does not retain b. It is goroutine-safe.
func Import(b []byte, lim *Limits) (*nn.Model, error) {
	l := lim.withDefaults()
	if l.MaxParams > nn.MaxParams {
		l.MaxParams = nn.MaxParams
	}
	g, tensors, err := Parse(b, &l)
	if err != nil {
		return nil, err
	}
	spec, ts, err := chain(g, tensors)
	if err != nil {
		return nil, err
	}
	return denseModel(spec, ts)
}

func denseModel(spec nn.Spec, ts []safetensors.Tensor) (*nn.Model, error) {
	js, err := json.Marshal(spec)
	if err != nil {
		return nil, bad("spec: %v", err)
	}
	f := &safetensors.File{
		Metadata: map[string]string{nn.MetaFormatVersion: "1", nn.MetaSpec: string(js)},
		Tensors:  ts,
	}
	m, _, err := nn.ReadArtifact(safetensors.Encode(f), nil)
	if err != nil {
		return nil, fmt.Errorf("onnx: import: %w", err)
	}
	return m, nil
}

// Convert turns an ONNX model into an aiaas model artifact: a dense
// artifact when the graph is a chain of dense layers (served by nn's
// dense engine, as before graphs existed), a graph artifact otherwise.
// Provenance records the import and the exporter. The graph is loaded
// once (graph.Load), so a model that cannot run is refused here, with the
// operator, opset and node at fault. Errors wrap ErrUnsupported,
// nn.ErrArtifact or nn.ErrShape.
func Convert(b []byte, lim *Limits) ([]byte, error) {
	l := lim.withDefaults()
	mp := &onnxpb.ModelProto{}
	if len(b) > l.MaxBytes {
		return nil, bad("%d bytes, limit %d", len(b), l.MaxBytes)
	}
	if err := prescan(b, mp.ProtoReflect().Descriptor(), 2*int64(len(b))+maxDecodeSlack); err != nil {
		return nil, bad("model: %v", err)
	}
	if err := (proto.UnmarshalOptions{RecursionLimit: 2 * maxDepth}).Unmarshal(b, mp); err != nil {
		return nil, bad("model: %v", errors.Unwrap(err))
	}
	g, tensors, err := convert(mp, &l)
	if err != nil {
		return nil, err
	}
	prov := map[string]string{"imported_from": "onnx", "onnx_opset": strconv.Itoa(g.Opset), "onnx_ir_version": strconv.FormatInt(mp.GetIrVersion(), 10)}
	if p := strings.TrimSpace(mp.GetProducerName() + " " + mp.GetProducerVersion()); p != "" {
		prov["onnx_producer"] = truncate(p, 128)
	}
	if spec, ts, err := chain(g, tensors); err == nil && int64(len(ts)) > 0 {
		m, err := denseModel(spec, ts)
		if err == nil {
			var buf bytes.Buffer
			if err := m.WriteArtifact(&buf, nn.Metadata{Spec: m.Spec(), Provenance: prov}); err != nil {
				return nil, err
			}
			return buf.Bytes(), nil
		}
	}
	// The artifact is the tensors' bytes and a header: grown once, not by
	// doubling (GPT-2's 650 MB was copied some ten times over).
	var buf bytes.Buffer
	size := 1 << 20
	for _, t := range tensors {
		size += len(t.Bytes())
	}
	buf.Grow(size)
	if err := graph.WriteArtifact(&buf, g, tensors, graph.Metadata{Provenance: prov}); err != nil {
		return nil, err
	}
	// Loading checks every node's shapes and types once, so the upload is
	// refused now rather than at the first request.
	if _, _, err := graph.ReadArtifact(buf.Bytes(), nil); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// printable shortens and sanitises a name from the file for an error
// message, which may end up in a log or an HTTP response.
func printable(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Sprintf("%q", s)
	}
	return s
}
