package graph

import (
	"errors"
	"fmt"
)

// val is one tensor of a plan: its type and shape, its value when it is
// known while planning (initializers, folded nodes, Shape of a known
// shape), and where it lives at run time.
type val struct {
	name  string
	dt    DType
	shape []int
	c     *Tensor // value known at plan time, or nil

	// Set by the planner.
	id      int
	def     int  // step that produces it; -1 for inputs and constants
	last    int  // last step that reads it (len(steps) for graph outputs)
	input   int  // graph input index, or -1
	aliasOf *val // storage shared with this value (same bytes, another shape)
	offset  int  // in the arena
	arena   bool
}

func (v *val) numel() int {
	n, _ := numel(v.shape)
	return n
}

func (v *val) bytes() int { return v.numel() * v.dt.Size() }

// builder is what an operator's buildFunc sees of one node.
type builder struct {
	node   *Node
	opset  int
	in     []*val // nil for an absent optional input
	out    []*val
	tensor func(name string) *Tensor // the artifact's tensors, for tensor attributes
	model  *Model

	err      error      // the first error; later calls are no-ops
	kernel   kernelFunc // set by run
	scratch  int        // bytes of scratch the kernel needs
	newState func() any // per-exec kernel state, or nil
	alias    int        // output 0 shares input alias's storage (-1: no)
	flops    float64    // floating-point operations of one run, for reports
	noFold   bool       // never evaluate at plan time (nothing uses it yet)
}

// fail records err as the node's error, naming the node.
func (b *builder) fail(err error) {
	if b.err == nil {
		b.err = err
	}
}

// errf reports inputs that do not fit the node: a client error wrapping
// nn.ErrShape, naming the node and its operator.
func (b *builder) errf(format string, args ...any) {
	b.fail(shapeErr("node %q (%s): %s", printable(b.node.Name), b.node.Op, fmt.Sprintf(format, args...)))
}

// unsupported reports an attribute value or type the runtime does not
// implement for this operator.
func (b *builder) unsupported(format string, args ...any) {
	b.fail(fmt.Errorf("%w: node %q (%s, opset %d): %s", ErrUnsupported, printable(b.node.Name), b.node.Op, b.opset, fmt.Sprintf(format, args...)))
}

// bad reports a malformed node (wrong arity, attribute of the wrong kind).
func (b *builder) bad(format string, args ...any) {
	b.fail(graphErr("node %q (%s): %s", printable(b.node.Name), b.node.Op, fmt.Sprintf(format, args...)))
}

// failed reports whether an error was recorded.
func (b *builder) failed() bool { return b.err != nil }

// arity checks the number of inputs (absent optional ones included, as
// ONNX counts them) and outputs.
func (b *builder) arity(minIn, maxIn, minOut, maxOut int) bool {
	if b.err != nil {
		return false
	}
	if len(b.in) < minIn || len(b.in) > maxIn {
		b.bad("%d inputs, want %d to %d", len(b.in), minIn, maxIn)
		return false
	}
	if len(b.out) < minOut || len(b.out) > maxOut {
		b.bad("%d outputs, want %d to %d", len(b.out), minOut, maxOut)
		return false
	}
	for i := 0; i < minIn; i++ {
		if b.in[i] == nil {
			b.bad("input %d is required", i)
			return false
		}
	}
	return true
}

// input returns input i, or nil when it is absent.
func (b *builder) input(i int) *val {
	if i < len(b.in) {
		return b.in[i]
	}
	return nil
}

// output returns output i, or nil when the node does not produce it.
func (b *builder) output(i int) *val {
	if i < len(b.out) {
		return b.out[i]
	}
	return nil
}

func (b *builder) attr(name string, kind AttrKind) (Attr, bool) {
	a, ok := b.node.Attrs[name]
	if !ok {
		return Attr{}, false
	}
	if a.Kind != kind {
		b.bad("attribute %s is %s, want %s", name, a.Kind, kind)
		return Attr{}, false
	}
	return a, true
}

func (b *builder) hasAttr(name string) bool {
	_, ok := b.node.Attrs[name]
	return ok
}

func (b *builder) attrInt(name string, def int64) int64 {
	if a, ok := b.attr(name, AttrInt); ok {
		return a.I
	}
	return def
}

func (b *builder) attrFloat(name string, def float32) float32 {
	if a, ok := b.attr(name, AttrFloat); ok {
		return float32(a.F)
	}
	return def
}

func (b *builder) attrString(name, def string) string {
	if a, ok := b.attr(name, AttrString); ok {
		return a.S
	}
	return def
}

// attrInts returns a copy of an ints attribute, or def (not copied).
func (b *builder) attrInts(name string, def []int64) []int64 {
	if a, ok := b.attr(name, AttrInts); ok {
		return append([]int64{}, a.Ints...)
	}
	return def
}

func (b *builder) attrFloats(name string, def []float32) []float32 {
	if a, ok := b.attr(name, AttrFloats); ok {
		out := make([]float32, len(a.Floats))
		for i, f := range a.Floats {
			out[i] = float32(f)
		}
		return out
	}
	return def
}

// attrTensor returns a tensor attribute's value, or nil when absent.
func (b *builder) attrTensor(name string) *Tensor {
	a, ok := b.attr(name, AttrTensor)
	if !ok {
		return nil
	}
	t := b.tensor(a.T)
	if t == nil {
		b.bad("attribute %s names tensor %q, which the artifact does not have", name, printable(a.T))
	}
	return t
}

// constInput returns the value of input i when it is known at plan time.
// An input that is only known per request makes the planner key its plans
// on that value (see errNeedValue). It returns nil for an absent input.
func (b *builder) constInput(i int) *Tensor {
	v := b.input(i)
	if v == nil {
		return nil
	}
	if v.c == nil {
		b.fail(&errNeedValue{name: v.name})
		return nil
	}
	return v.c
}

// constInts returns the value of an integer input i (INT64 or INT32) known
// at plan time, ok false when the input is absent or an error was
// recorded.
func (b *builder) constInts(i int) ([]int64, bool) {
	t := b.constInput(i)
	if t == nil {
		return nil, false
	}
	switch t.DType {
	case Int64:
		return append([]int64{}, Data[int64](t)...), true
	case Int32:
		v := Data[int32](t)
		out := make([]int64, len(v))
		for i, x := range v {
			out[i] = int64(x)
		}
		return out, true
	}
	b.errf("input %d is %v, want INT64", i, t.DType)
	return nil, false
}

// setOut sets output i's type and shape (ignored when the node does not
// produce output i).
func (b *builder) setOut(i int, dt DType, shape []int) {
	if o := b.output(i); o != nil {
		if _, ok := numel(shape); !ok {
			b.errf("output %d would have shape %v, over the %d-element limit", i, shape, maxElements)
			return
		}
		o.dt, o.shape = dt, append([]int{}, shape...)
	}
}

// setConst sets output i to a value known at plan time.
func (b *builder) setConst(i int, t *Tensor) {
	if o := b.output(i); o != nil {
		o.dt, o.shape, o.c = t.DType, append([]int{}, t.Shape...), t
	}
}

// run sets the kernel that computes the outputs.
func (b *builder) run(k kernelFunc) { b.kernel = k }

// prepared returns what make builds from a constant (weights packed for
// a kernel, say), built once per model and shared by every plan: a new
// input shape must not pack the weights again. key says which
// preparation of t it is (an operator may prepare one constant two ways).
func (b *builder) prepared(t *Tensor, key string, make func() any) any {
	if b.model == nil {
		return make()
	}
	return b.model.prepare(t, key, make)
}

// state gives the kernel a value of its own per exec (kctx.state), made
// once by f: where a kernel keeps what it must not allocate per run.
func (b *builder) state(f func() any) { b.newState = f }

// aliasInput makes output 0 the same bytes as input i under the shape set
// by setOut (Reshape, Flatten, Squeeze, Identity …): no kernel runs.
func (b *builder) aliasInput(i int) { b.alias = i }

// wantType records an error unless input i is one of dts.
func (b *builder) wantType(i int, dts ...DType) bool {
	v := b.input(i)
	if v == nil || b.err != nil {
		return b.err == nil
	}
	for _, d := range dts {
		if v.dt == d {
			return true
		}
	}
	b.unsupported("input %d is %v, implemented for %v", i, v.dt, dts)
	return false
}

// sameType records an error unless inputs i and j have the same type.
func (b *builder) sameType(i, j int) bool {
	x, y := b.input(i), b.input(j)
	if x == nil || y == nil || b.err != nil {
		return b.err == nil
	}
	if x.dt != y.dt {
		b.errf("inputs %d and %d are %v and %v; the operator needs one type", i, j, x.dt, y.dt)
		return false
	}
	return true
}

// isNeedValue reports whether err asks for a per-request value.
func isNeedValue(err error) (*errNeedValue, bool) {
	var e *errNeedValue
	ok := errors.As(err, &e)
	return e, ok
}

// normAxis maps an axis in [-rank, rank) to [0, rank), recording an error
// otherwise.
func (b *builder) normAxis(axis int64, rank int) int {
	if axis < -int64(rank) || axis >= int64(rank) {
		b.errf("axis %d out of range for rank %d", axis, rank)
		return 0
	}
	if axis < 0 {
		axis += int64(rank)
	}
	return int(axis)
}
