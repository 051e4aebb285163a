package graph

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Graph is the architecture of an imported model, as an artifact stores
// it in its metadata under MetaGraph: the ONNX graph with its operator
// set, in topological order, with every tensor (initializers, and tensor
// attributes such as a Constant's value) kept out of it as a named
// safetensors tensor of the same artifact.
type Graph struct {
	// Opset is the version of the default ONNX operator set (ai.onnx) the
	// nodes were written for.
	Opset int `json:"opset"`
	// Name is the graph's name, if it had one.
	Name string `json:"name,omitempty"`
	// Inputs are the values a request provides, in order; initializers
	// are never listed here.
	Inputs []Value `json:"inputs"`
	// Outputs are the values a request gets back, in order.
	Outputs []Value `json:"outputs"`
	// Nodes are in an order in which every node's inputs are produced
	// before it runs.
	Nodes []Node `json:"nodes"`
}

// Value is a graph input or output: a name, an element type and a shape
// whose dynamic dimensions are -1 (with their symbolic name, where the
// exporter gave one, in Dims).
type Value struct {
	Name  string   `json:"name"`
	DType DType    `json:"dtype"`
	Shape []int64  `json:"shape"`
	Dims  []string `json:"dims,omitempty"`
}

// Node is one operator application. An empty input name stands for an
// optional input left out, as in ONNX.
type Node struct {
	Name    string          `json:"name,omitempty"`
	Op      string          `json:"op"`
	Inputs  []string        `json:"inputs"`
	Outputs []string        `json:"outputs"`
	Attrs   map[string]Attr `json:"attrs,omitempty"`
}

// AttrKind says which field of an Attr is set.
type AttrKind string

// The attribute kinds of ONNX the runtime stores. A tensor attribute
// names a tensor of the artifact.
const (
	AttrFloat   AttrKind = "float"
	AttrInt     AttrKind = "int"
	AttrString  AttrKind = "string"
	AttrTensor  AttrKind = "tensor"
	AttrFloats  AttrKind = "floats"
	AttrInts    AttrKind = "ints"
	AttrStrings AttrKind = "strings"
)

// Attr is one node attribute.
type Attr struct {
	Kind    AttrKind `json:"kind"`
	F       Float    `json:"f,omitempty"`
	I       int64    `json:"i,omitempty"`
	S       string   `json:"s,omitempty"`
	T       string   `json:"t,omitempty"` // tensor name in the artifact
	Floats  []Float  `json:"floats,omitempty"`
	Ints    []int64  `json:"ints,omitempty"`
	Strings []string `json:"strings,omitempty"`
}

// Float is a float32 that survives JSON when it is not finite: NaN and the
// infinities are written as the strings "NaN", "Infinity" and "-Infinity".
type Float float32

// MarshalJSON implements json.Marshaler.
func (f Float) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsNaN(v):
		return []byte(`"NaN"`), nil
	case math.IsInf(v, 1):
		return []byte(`"Infinity"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Infinity"`), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 32), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *Float) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case `"NaN"`:
		*f = Float(math.NaN())
		return nil
	case `"Infinity"`:
		*f = Float(math.Inf(1))
		return nil
	case `"-Infinity"`:
		*f = Float(math.Inf(-1))
		return nil
	}
	v, err := strconv.ParseFloat(string(b), 32)
	if err != nil {
		return fmt.Errorf("attribute float %q", printable(string(b)))
	}
	*f = Float(v)
	return nil
}

// Limits bound a graph read from an artifact or imported from ONNX. Zero
// fields take the defaults.
type Limits struct {
	MaxNodes   int // default 16,384
	MaxValues  int // graph inputs and outputs; default 256
	MaxNodeIO  int // inputs plus outputs of one node; default 1,024 (Concat of many)
	MaxAttrs   int // attributes of one node; default 64
	MaxAttrLen int // elements of one list attribute; default 4,096
	MaxRank    int // default 8
	MaxName    int // bytes of any name; default 1,024
}

func (l *Limits) withDefaults() Limits {
	var o Limits
	if l != nil {
		o = *l
	}
	def := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&o.MaxNodes, 16384)
	def(&o.MaxValues, 256)
	def(&o.MaxNodeIO, 1024)
	def(&o.MaxAttrs, 64)
	def(&o.MaxAttrLen, 4096)
	def(&o.MaxRank, 8)
	def(&o.MaxName, 1024)
	return o
}

// Opset range the runtime implements (ai.onnx).
const (
	MinOpset = 7
	MaxOpset = 18
)

// Validate checks g's structure within l: sizes, names, that every node
// input is a graph input, an initializer (known reports which names are)
// or an earlier node's output, that names are produced once, that graph
// outputs are produced, and that every node is an operator registered for
// g.Opset. Errors wrap ErrGraph or ErrUnsupported. It does not look at
// shapes: Load does, per input shape.
func (g *Graph) Validate(known func(name string) bool, lim *Limits) error {
	l := lim.withDefaults()
	if g.Opset < MinOpset || g.Opset > MaxOpset {
		return fmt.Errorf("%w: opset %d; aiaas runs ai.onnx opsets %d to %d", ErrUnsupported, g.Opset, MinOpset, MaxOpset)
	}
	if len(g.Nodes) > l.MaxNodes {
		return graphErr("%d nodes, limit %d", len(g.Nodes), l.MaxNodes)
	}
	if len(g.Inputs)+len(g.Outputs) > l.MaxValues {
		return graphErr("%d inputs and outputs, limit %d", len(g.Inputs)+len(g.Outputs), l.MaxValues)
	}
	if len(g.Outputs) == 0 {
		return graphErr("no outputs")
	}
	defined := make(map[string]bool, len(g.Nodes)*2)
	for i, v := range g.Inputs {
		if err := checkValue("input", i, v, l); err != nil {
			return err
		}
		if defined[v.Name] || known(v.Name) {
			return graphErr("input %q defined twice", printable(v.Name))
		}
		defined[v.Name] = true
	}
	for i, v := range g.Outputs {
		if err := checkValue("output", i, v, l); err != nil {
			return err
		}
	}
	for i := range g.Nodes {
		n := &g.Nodes[i]
		if err := checkNode(i, n, l); err != nil {
			return err
		}
		if isInternal(n.Op) {
			return graphErr("node %q uses the internal operator %s", printable(n.Name), printable(n.Op))
		}
		if _, err := lookupOp(n.Op, g.Opset); err != nil {
			return fmt.Errorf("%w (node %q)", err, printable(n.Name))
		}
		for _, in := range n.Inputs {
			if in != "" && !defined[in] && !known(in) {
				return graphErr("node %q (%s) reads %q, which no earlier node, input or initializer defines", printable(n.Name), n.Op, printable(in))
			}
		}
		for _, out := range n.Outputs {
			if out == "" {
				continue
			}
			if defined[out] || known(out) {
				return graphErr("node %q (%s) defines %q, which is already defined", printable(n.Name), n.Op, printable(out))
			}
			defined[out] = true
		}
	}
	seen := map[string]bool{}
	for _, v := range g.Outputs {
		if !defined[v.Name] && !known(v.Name) {
			return graphErr("output %q is not produced by the graph", printable(v.Name))
		}
		if seen[v.Name] {
			return graphErr("output %q listed twice", printable(v.Name))
		}
		seen[v.Name] = true
	}
	return nil
}

func checkName(what string, s string, l Limits) error {
	if len(s) > l.MaxName {
		return graphErr("%s name of %d bytes, limit %d", what, len(s), l.MaxName)
	}
	if !utf8.ValidString(s) {
		return graphErr("%s name %q is not UTF-8", what, printable(s))
	}
	return nil
}

func checkValue(kind string, i int, v Value, l Limits) error {
	if v.Name == "" {
		return graphErr("%s %d has no name", kind, i)
	}
	if err := checkName(kind, v.Name, l); err != nil {
		return err
	}
	if v.DType == Undefined || v.DType >= numDTypes {
		return graphErr("%s %q has no element type", kind, printable(v.Name))
	}
	if len(v.Shape) > l.MaxRank {
		return graphErr("%s %q has rank %d, limit %d", kind, printable(v.Name), len(v.Shape), l.MaxRank)
	}
	for _, d := range v.Shape {
		if d < -1 || d > maxElements {
			return graphErr("%s %q has dimension %d", kind, printable(v.Name), d)
		}
	}
	if len(v.Dims) != 0 && len(v.Dims) != len(v.Shape) {
		return graphErr("%s %q: %d dim names for rank %d", kind, printable(v.Name), len(v.Dims), len(v.Shape))
	}
	for _, d := range v.Dims {
		if err := checkName("dimension", d, l); err != nil {
			return err
		}
	}
	return nil
}

func checkNode(i int, n *Node, l Limits) error {
	if err := checkName("node", n.Name, l); err != nil {
		return err
	}
	if n.Op == "" || len(n.Op) > 64 {
		return graphErr("node %d has no valid operator", i)
	}
	if len(n.Inputs)+len(n.Outputs) > l.MaxNodeIO {
		return graphErr("node %q has %d inputs and outputs, limit %d", printable(n.Name), len(n.Inputs)+len(n.Outputs), l.MaxNodeIO)
	}
	if len(n.Outputs) == 0 {
		return graphErr("node %q (%s) has no outputs", printable(n.Name), n.Op)
	}
	for _, s := range append(n.Inputs[:len(n.Inputs):len(n.Inputs)], n.Outputs...) {
		if err := checkName("value", s, l); err != nil {
			return err
		}
	}
	if len(n.Attrs) > l.MaxAttrs {
		return graphErr("node %q has %d attributes, limit %d", printable(n.Name), len(n.Attrs), l.MaxAttrs)
	}
	for k, a := range n.Attrs {
		if err := checkName("attribute", k, l); err != nil {
			return err
		}
		switch a.Kind {
		case AttrFloat, AttrInt, AttrString, AttrTensor:
		case AttrFloats, AttrInts, AttrStrings:
			if len(a.Floats)+len(a.Ints)+len(a.Strings) > l.MaxAttrLen {
				return graphErr("node %q attribute %q has more than %d elements", printable(n.Name), printable(k), l.MaxAttrLen)
			}
		default:
			return graphErr("node %q attribute %q has kind %q", printable(n.Name), printable(k), printable(string(a.Kind)))
		}
		if len(a.S) > l.MaxName*64 {
			return graphErr("node %q attribute %q is a string of %d bytes", printable(n.Name), printable(k), len(a.S))
		}
	}
	return nil
}

// MarshalGraph encodes g as the JSON an artifact's metadata holds.
func MarshalGraph(g *Graph) ([]byte, error) { return json.Marshal(g) }

// printable shortens and sanitises a name from a file for an error
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
