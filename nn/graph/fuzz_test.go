package graph

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/aiaas/aiaas/nn"
)

// fuzzReader hands out bytes of the fuzzer's input, zeros once it runs dry.
type fuzzReader struct{ b []byte }

func (r *fuzzReader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *fuzzReader) small(n int) int { return int(r.byte()) % n }

func (r *fuzzReader) signed(n int) int64 { return int64(r.small(2*n+1) - n) }

var fuzzAttrNames = []string{"axis", "axes", "perm", "pads", "strides", "kernel_shape", "dilations",
	"group", "keepdims", "split", "mode", "auto_pad", "ceil_mode", "alpha", "beta", "transA", "transB",
	"to", "value", "starts", "ends", "epsilon", "count_include_pad", "coordinate_transformation_mode",
	"output_padding", "output_shape", "min", "max", "exclusive", "reverse", "upper", "blocksize",
	"select_last_index", "noop_with_empty_axes", "allowzero", "num_outputs", "start", "end",
	"stash_type", "approximate", "activation", "q_perm", "k_perm", "v_perm", "out_perm", "scale", "scale_div", "fill"}

var fuzzStrings = []string{"constant", "reflect", "edge", "nearest", "linear", "cubic", "NOTSET", "SAME_UPPER",
	"VALID", "half_pixel", "align_corners", "asymmetric", "pytorch_half_pixel", "DCR", "CRD", "",
	"none", "tanh", "gelu", "gelu_tanh"}

// FuzzPlan builds one node of any registered operator with fuzzed input
// types, shapes, constant values and attributes, plans and runs it: shape
// inference and every kernel must refuse what does not fit with an error
// wrapping a sentinel, never panic, and produce outputs of the shapes
// they planned.
func FuzzPlan(f *testing.F) {
	ops := make([]string, 0, len(registry))
	for op := range registry {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	seed := rand.New(rand.NewPCG(1, 1))
	for i := range ops {
		b := make([]byte, 64)
		for j := range b {
			b[j] = byte(seed.IntN(256))
		}
		b[0] = byte(i)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &fuzzReader{b: data}
		op := ops[int(r.byte())%len(ops)]
		opset := MinOpset + r.small(MaxOpset-MinOpset+1)
		g := &Graph{Opset: opset}
		tensors := map[string]*Tensor{}
		n := Node{Name: "n", Op: op, Attrs: map[string]Attr{}}
		var feed []*Tensor
		nin := r.small(5)
		for i := 0; i < nin; i++ {
			name := "i" + string(rune('a'+i))
			if r.small(8) == 0 {
				n.Inputs = append(n.Inputs, "")
				continue
			}
			dt := []DType{Float32, Int64, Bool, Float32, Int32, Uint8}[r.small(6)]
			rank := r.small(5)
			shape := make([]int, rank)
			for j := range shape {
				shape[j] = r.small(5)
			}
			x := NewTensor(dt, shape...)
			bs := x.Bytes()
			for j := range bs {
				bs[j] = r.byte()
				if dt == Bool {
					bs[j] &= 1
				}
			}
			if dt == Int64 {
				for j, v := range Data[int64](x) {
					Data[int64](x)[j] = v % 7 // small: shapes and indices
				}
			}
			if dt == Int32 {
				// Small too: an INT32 shape is read as one (Expand to
				// [2³⁰] took 40 s to fill, a slow input, not a bug).
				for j, v := range Data[int32](x) {
					Data[int32](x)[j] = v % 7
				}
			}
			n.Inputs = append(n.Inputs, name)
			if r.small(2) == 0 {
				tensors[name] = x
				continue
			}
			s64 := make([]int64, rank)
			for j, d := range shape {
				s64[j] = int64(d)
			}
			g.Inputs = append(g.Inputs, Value{Name: name, DType: dt, Shape: s64})
			feed = append(feed, x)
		}
		nattr := r.small(4)
		for i := 0; i < nattr; i++ {
			name := fuzzAttrNames[r.small(len(fuzzAttrNames))]
			switch r.small(4) {
			case 0:
				n.Attrs[name] = Attr{Kind: AttrInt, I: r.signed(4)}
			case 1:
				v := make([]int64, r.small(7))
				for j := range v {
					v[j] = r.signed(4)
				}
				n.Attrs[name] = Attr{Kind: AttrInts, Ints: v}
			case 2:
				n.Attrs[name] = Attr{Kind: AttrFloat, F: Float(r.signed(8)) / 4}
			default:
				n.Attrs[name] = Attr{Kind: AttrString, S: fuzzStrings[r.small(len(fuzzStrings))]}
			}
		}
		nout := 1 + r.small(3)
		for i := 0; i < nout; i++ {
			name := "o" + string(rune('a'+i))
			n.Outputs = append(n.Outputs, name)
		}
		g.Nodes = []Node{n}
		// Outputs are declared by what the planner finds: plan once to
		// learn their types, as the importer's declared ones would be.
		m, err := Load(&Graph{Opset: g.Opset, Inputs: g.Inputs, Nodes: g.Nodes, Outputs: []Value{{Name: n.Outputs[0], DType: Float32}}}, tensors, &Options{MaxArenaBytes: 1 << 20})
		check := func(err error) {
			if err == nil {
				return
			}
			if !errors.Is(err, nn.ErrShape) && !errors.Is(err, nn.ErrArtifact) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("%s: error wraps no sentinel: %v", op, err)
			}
		}
		if err != nil {
			check(err)
			return
		}
		out, err := m.Run(context.Background(), feed, nil)
		check(err)
		if err != nil {
			return
		}
		for _, o := range out {
			if len(o.Bytes()) != o.Numel()*o.DType.Size() {
				t.Fatalf("%s: output of shape %v has %d bytes", op, o.Shape, len(o.Bytes()))
			}
		}
	})
}

// FuzzReadArtifact feeds arbitrary bytes to the artifact reader, seeded
// with a valid graph artifact.
func FuzzReadArtifact(f *testing.F) {
	r := rand.New(rand.NewPCG(7, 7))
	g, ts := resBlock(r, 2, false)
	var buf bytes.Buffer
	if err := WriteArtifact(&buf, g, ts, Metadata{Provenance: map[string]string{"x": "y"}}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	buf.Reset()
	if err := WriteArtifact(&buf, g, ts, Metadata{Labels: []string{"a", "b"}}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, _, err := ReadArtifact(b, &ArtifactLimits{MaxBytes: 1 << 20, Load: &Options{MaxArenaBytes: 1 << 20}})
		if err != nil {
			if !errors.Is(err, nn.ErrArtifact) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, nn.ErrShape) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		ins := m.Inputs()
		feed := make([]*Tensor, len(ins))
		for i, v := range ins {
			shape := make([]int, len(v.Shape))
			for j, d := range v.Shape {
				shape[j] = int(d)
				if d < 0 {
					shape[j] = 1
				}
				if shape[j] > 64 {
					return
				}
			}
			feed[i] = NewTensor(v.DType, shape...)
		}
		// A model may legitimately cost minutes a run; the fuzzer only
		// runs cheap ones.
		if flops, _, err := m.Cost(feed); err != nil || flops > 1e7 {
			return
		}
		if _, err := m.Run(context.Background(), feed, nil); err != nil && !errors.Is(err, nn.ErrShape) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, nn.ErrArtifact) {
			t.Fatalf("run: error wraps no sentinel: %v", err)
		}
	})
}
