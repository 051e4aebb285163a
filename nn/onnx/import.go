package onnx

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/aiaas/aiaas/internal/safetensors"
	"github.com/aiaas/aiaas/nn"
)

// ErrUnsupported reports a well-formed ONNX model that uses something this
// engine cannot run: an operator outside the dense subset, a non-float
// tensor, external data, a graph that is not a single chain. It is a client
// error (the HTTP layer maps it to 4xx, like nn.ErrArtifact).
var ErrUnsupported = errors.New("onnx: unsupported model")

// Limits bound what Import accepts. Zero fields take the defaults.
type Limits struct {
	MaxBytes        int // whole file; default 512 MiB
	MaxNodes        int // default 1024
	MaxInitializers int // default 1024
	MaxParams       int // total weights and biases; default and cap nn.MaxParams
}

func (l *Limits) withDefaults() Limits {
	var o Limits
	if l != nil {
		o = *l
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 512 << 20
	}
	if o.MaxNodes <= 0 {
		o.MaxNodes = 1024
	}
	if o.MaxInitializers <= 0 {
		o.MaxInitializers = 1024
	}
	if o.MaxParams <= 0 || o.MaxParams > nn.MaxParams {
		o.MaxParams = nn.MaxParams
	}
	return o
}

// Per-message bounds that no dense model comes near; they keep a hostile
// file from making us build long slices of tiny entries.
const (
	maxNodeIO      = 8
	maxAttrs       = 32
	maxRank        = 8
	maxOpsets      = 64
	maxValueInfos  = 64
	minOpsetImport = 7 // Gemm, MatMul, Add with today's broadcasting semantics
)

func bad(format string, args ...any) error {
	return fmt.Errorf("%w: onnx: %s", nn.ErrArtifact, fmt.Sprintf(format, args...))
}

func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsupported, fmt.Sprintf(format, args...))
}

type attr struct {
	name string
	typ  int64
	i    int64
	f    float32
	hasI bool
	hasF bool
}

type node struct {
	op, domain, name string
	in, out          []string
	attrs            []attr
}

func (n *node) attr(name string) (attr, bool) {
	for _, a := range n.attrs {
		if a.name == name {
			return a, true
		}
	}
	return attr{}, false
}

type tensor struct {
	name  string
	dims  []int64
	numel int
	// exactly one of raw (little-endian F32) and floats (packed fixed32
	// payload, or unpacked values collected in f) is set.
	raw []byte
	f   []float32
}

type valueInfo struct {
	name     string
	elemType int64
	dims     []int64 // -1 for a symbolic or missing dimension
	hasShape bool
}

type graph struct {
	name    string
	nodes   []node
	inits   map[string]*tensor
	inputs  []valueInfo
	outputs []valueInfo
}

// Import reads an ONNX model of the dense subset (see the package
// documentation) and returns the equivalent nn.Model, built through
// nn.ReadArtifact so it passes every check an artifact does. Inputs and
// outputs keep their ONNX names; the model is named after the graph.
//
// b is untrusted. Errors wrap ErrUnsupported (naming the operator, data
// type or feature at fault) or nn.ErrArtifact (malformed protobuf, sizes
// over lim, missing or inconsistent initializers, NaN or infinite weights).
// Import does not retain b. It is goroutine-safe.
func Import(b []byte, lim *Limits) (*nn.Model, error) {
	l := lim.withDefaults()
	if len(b) > l.MaxBytes {
		return nil, bad("%d bytes, limit %d", len(b), l.MaxBytes)
	}
	g, err := parseModel(b, &l)
	if err != nil {
		return nil, err
	}
	spec, tensors, err := g.chain(&l)
	if err != nil {
		return nil, err
	}
	js, err := json.Marshal(spec)
	if err != nil {
		return nil, bad("spec: %v", err)
	}
	f := &safetensors.File{
		Metadata: map[string]string{nn.MetaFormatVersion: "1", nn.MetaSpec: string(js)},
		Tensors:  tensors,
	}
	m, _, err := nn.ReadArtifact(safetensors.Encode(f), nil)
	if err != nil {
		return nil, fmt.Errorf("onnx: import: %w", err)
	}
	return m, nil
}

func parseModel(b []byte, l *Limits) (*graph, error) {
	r := reader{b: b}
	var gb []byte
	haveGraph := false
	opset := int64(-1)
	opsets := 0
	for {
		f, t, ok := r.next()
		if !ok {
			break
		}
		switch f {
		case modelGraph:
			if haveGraph {
				return nil, bad("model has two graphs")
			}
			gb, ok = r.bytesField(t)
			haveGraph = ok
		case modelOpsetImport:
			p, ok := r.bytesField(t)
			if !ok {
				break
			}
			if opsets++; opsets > maxOpsets {
				return nil, bad("more than %d opset imports", maxOpsets)
			}
			dom, ver, err := parseOpset(p)
			if err != nil {
				return nil, err
			}
			if dom == "" || dom == "ai.onnx" {
				opset = ver
			}
		default:
			r.skip(t)
		}
	}
	if r.err != nil {
		return nil, bad("model: %v", r.err)
	}
	if !haveGraph {
		return nil, bad("model has no graph")
	}
	if opset < 0 {
		return nil, bad("model imports no default-domain opset")
	}
	if opset < minOpsetImport {
		return nil, unsupported("opset %d, want at least %d", opset, minOpsetImport)
	}
	return parseGraph(gb, l)
}

func parseOpset(b []byte) (string, int64, error) {
	r := reader{b: b}
	var dom string
	var ver int64
	for {
		f, t, ok := r.next()
		if !ok {
			break
		}
		switch f {
		case opsetDomain:
			p, _ := r.bytesField(t)
			dom = string(p)
		case opsetVersion:
			ver, _ = r.int64Field(t)
		default:
			r.skip(t)
		}
	}
	if r.err != nil {
		return "", 0, bad("opset_import: %v", r.err)
	}
	return dom, ver, nil
}

func parseGraph(b []byte, l *Limits) (*graph, error) {
	g := &graph{inits: map[string]*tensor{}}
	r := reader{b: b}
	params := 0
	for {
		f, t, ok := r.next()
		if !ok {
			break
		}
		switch f {
		case graphNode:
			p, ok := r.bytesField(t)
			if !ok {
				break
			}
			if len(g.nodes) >= l.MaxNodes {
				return nil, bad("more than %d nodes", l.MaxNodes)
			}
			n, err := parseNode(p)
			if err != nil {
				return nil, err
			}
			g.nodes = append(g.nodes, n)
		case graphName:
			p, _ := r.bytesField(t)
			g.name = string(p)
		case graphInitializer:
			p, ok := r.bytesField(t)
			if !ok {
				break
			}
			if len(g.inits) >= l.MaxInitializers {
				return nil, bad("more than %d initializers", l.MaxInitializers)
			}
			tn, err := parseTensor(p, l.MaxParams-params)
			if err != nil {
				return nil, err
			}
			if _, dup := g.inits[tn.name]; dup {
				return nil, bad("initializer %q given twice", tn.name)
			}
			params += tn.numel
			g.inits[tn.name] = tn
		case graphSparseInit:
			return nil, unsupported("sparse initializers")
		case graphInput, graphOutput:
			p, ok := r.bytesField(t)
			if !ok {
				break
			}
			if len(g.inputs)+len(g.outputs) >= maxValueInfos {
				return nil, bad("more than %d graph inputs and outputs", maxValueInfos)
			}
			v, err := parseValueInfo(p)
			if err != nil {
				return nil, err
			}
			if f == graphInput {
				g.inputs = append(g.inputs, v)
			} else {
				g.outputs = append(g.outputs, v)
			}
		default:
			r.skip(t)
		}
	}
	if r.err != nil {
		return nil, bad("graph: %v", r.err)
	}
	return g, nil
}

func parseNode(b []byte) (node, error) {
	var n node
	r := reader{b: b}
	for {
		f, t, ok := r.next()
		if !ok {
			break
		}
		switch f {
		case nodeInput, nodeOutput:
			p, ok := r.bytesField(t)
			if !ok {
				break
			}
			if len(n.in)+len(n.out) >= maxNodeIO {
				return n, bad("node with more than %d inputs and outputs", maxNodeIO)
			}
			if f == nodeInput {
				n.in = append(n.in, string(p))
			} else {
				n.out = append(n.out, string(p))
			}
		case nodeName:
			p, _ := r.bytesField(t)
			n.name = string(p)
		case nodeOpType:
			p, _ := r.bytesField(t)
			n.op = string(p)
		case nodeDomain:
			p, _ := r.bytesField(t)
			n.domain = string(p)
		case nodeAttribute:
			p, ok := r.bytesField(t)
			if !ok {
				break
			}
			if len(n.attrs) >= maxAttrs {
				return n, bad("node with more than %d attributes", maxAttrs)
			}
			a, err := parseAttr(p)
			if err != nil {
				return n, err
			}
			n.attrs = append(n.attrs, a)
		default:
			r.skip(t)
		}
	}
	if r.err != nil {
		return n, bad("node %q: %v", printable(n.name), r.err)
	}
	return n, nil
}

func parseAttr(b []byte) (attr, error) {
	var a attr
	r := reader{b: b}
	for {
		f, t, ok := r.next()
		if !ok {
			break
		}
		switch f {
		case attrName:
			p, _ := r.bytesField(t)
			a.name = string(p)
		case attrType:
			a.typ, _ = r.int64Field(t)
		case attrI:
			a.i, a.hasI = r.int64Field(t)
		case attrF:
			if t != wireFixed32 {
				r.err = errWire
				break
			}
			var v uint32
			v, a.hasF = r.fixed32()
			a.f = math.Float32frombits(v)
		case attrRefArg:
			// A reference to a function attribute: only meaningful inside
			// FunctionProto bodies, which a dense graph has none of.
			return a, unsupported("attribute %q refers to a function attribute", printable(a.name))
		default:
			r.skip(t)
		}
	}
	if r.err != nil {
		return a, bad("attribute %q: %v", printable(a.name), r.err)
	}
	return a, nil
}

// parseTensor reads a TensorProto, refusing anything that is not FLOAT with
// its data inline, and any tensor of more than maxParams elements (checked
// on the dims, before the data is looked at).
func parseTensor(b []byte, maxParams int) (*tensor, error) {
	t := &tensor{}
	r := reader{b: b}
	dtype := int64(0)
	var packed [][]byte // float_data payloads, packed
	unpacked := 0
	for {
		f, wt, ok := r.next()
		if !ok {
			break
		}
		switch f {
		case tensorDims:
			t.dims, _ = r.appendInt64s(t.dims, wt, maxRank)
		case tensorDataType:
			dtype, _ = r.int64Field(wt)
		case tensorName:
			p, _ := r.bytesField(wt)
			t.name = string(p)
		case tensorRawData:
			t.raw, _ = r.bytesField(wt)
		case tensorFloatData:
			switch wt {
			case wireBytes:
				p, ok := r.bytes()
				if ok {
					packed = append(packed, p)
				}
			case wireFixed32:
				v, ok := r.fixed32()
				if ok {
					if unpacked++; unpacked > maxParams {
						return nil, bad("initializer %q: more than %d float_data values", printable(t.name), maxParams)
					}
					t.f = append(t.f, math.Float32frombits(v))
				}
			default:
				r.err = errWire
			}
		case tensorSegment:
			return nil, unsupported("segmented tensor %q", printable(t.name))
		case tensorExternalData:
			return nil, unsupported("initializer %q: external data", printable(t.name))
		case tensorDataLocation:
			loc, _ := r.int64Field(wt)
			if loc != 0 {
				return nil, unsupported("initializer %q: external data", printable(t.name))
			}
		default:
			r.skip(wt)
		}
		if len(packed) > maxParams {
			return nil, bad("initializer %q: too many float_data fields", printable(t.name))
		}
	}
	if r.err != nil {
		if errors.Is(r.err, errLimit) {
			return nil, bad("initializer %q: rank over %d", printable(t.name), maxRank)
		}
		return nil, bad("initializer %q: %v", printable(t.name), r.err)
	}
	if dtype != dataTypeFloat {
		return nil, unsupported("initializer %q: data type %d, want FLOAT (1)", printable(t.name), dtype)
	}
	n := 1
	for _, d := range t.dims {
		if d < 0 || d > int64(maxParams) {
			return nil, bad("initializer %q: dims %v over the %d parameters left under the limit", printable(t.name), t.dims, maxParams)
		}
		if d != 0 && n > maxParams/int(d) {
			return nil, bad("initializer %q: dims %v over %d parameters", printable(t.name), t.dims, maxParams)
		}
		n *= int(d)
	}
	if n > maxParams {
		return nil, bad("initializer %q: dims %v over %d parameters", printable(t.name), t.dims, maxParams)
	}
	t.numel = n
	nf := len(t.f)
	for _, p := range packed {
		if len(p)%4 != 0 {
			return nil, bad("initializer %q: float_data of %d bytes", printable(t.name), len(p))
		}
		nf += len(p) / 4
	}
	switch {
	case t.raw != nil && nf > 0:
		return nil, bad("initializer %q: both raw_data and float_data", printable(t.name))
	case t.raw != nil:
		if len(t.raw) != 4*n {
			return nil, bad("initializer %q: raw_data of %d bytes, want %d", printable(t.name), len(t.raw), 4*n)
		}
	default:
		if nf != n {
			return nil, bad("initializer %q: %d float_data values, want %d", printable(t.name), nf, n)
		}
		if len(packed) > 0 {
			vals := make([]float32, 0, n)
			vals = append(vals, t.f...)
			for _, p := range packed {
				for i := 0; i < len(p); i += 4 {
					vals = append(vals, math.Float32frombits(binary.LittleEndian.Uint32(p[i:])))
				}
			}
			t.f = vals
		}
	}
	return t, nil
}

// value returns element i of t; i < t.numel.
func (t *tensor) value(i int) float32 {
	if t.raw != nil {
		return math.Float32frombits(binary.LittleEndian.Uint32(t.raw[4*i:]))
	}
	return t.f[i]
}

func parseValueInfo(b []byte) (valueInfo, error) {
	var v valueInfo
	r := reader{b: b}
	for {
		f, t, ok := r.next()
		if !ok {
			break
		}
		switch f {
		case valueName:
			p, _ := r.bytesField(t)
			v.name = string(p)
		case valueType:
			p, ok := r.bytesField(t)
			if !ok {
				break
			}
			if err := v.parseType(p); err != nil {
				return v, err
			}
		default:
			r.skip(t)
		}
	}
	if r.err != nil {
		return v, bad("value %q: %v", printable(v.name), r.err)
	}
	return v, nil
}

func (v *valueInfo) parseType(b []byte) error {
	r := reader{b: b}
	for {
		f, t, ok := r.next()
		if !ok {
			break
		}
		if f != typeTensor {
			r.skip(t)
			continue
		}
		p, ok := r.bytesField(t)
		if !ok {
			break
		}
		tr := reader{b: p}
		for {
			f, t, ok := tr.next()
			if !ok {
				break
			}
			switch f {
			case ttElemType:
				v.elemType, _ = tr.int64Field(t)
			case ttShape:
				p, ok := tr.bytesField(t)
				if !ok {
					break
				}
				v.hasShape = true
				v.dims = v.dims[:0]
				sr := reader{b: p}
				for {
					f, t, ok := sr.next()
					if !ok {
						break
					}
					if f != shapeDim {
						sr.skip(t)
						continue
					}
					dp, ok := sr.bytesField(t)
					if !ok {
						break
					}
					if len(v.dims) >= maxRank {
						return bad("value %q: rank over %d", printable(v.name), maxRank)
					}
					d := int64(-1)
					dr := reader{b: dp}
					for {
						f, t, ok := dr.next()
						if !ok {
							break
						}
						if f == dimValue {
							d, _ = dr.int64Field(t)
						} else {
							dr.skip(t)
						}
					}
					if dr.err != nil {
						sr.err = dr.err
						break
					}
					v.dims = append(v.dims, d)
				}
				if sr.err != nil {
					tr.err = sr.err
				}
			default:
				tr.skip(t)
			}
		}
		if tr.err != nil {
			r.err = tr.err
		}
	}
	if r.err != nil {
		return bad("value %q: type: %v", printable(v.name), r.err)
	}
	return nil
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
