package graph

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aiaas/aiaas/nn/kernels"
)

// Options configure Load. The zero value (or nil) means the defaults.
type Options struct {
	// Limits bound the graph; nil means the defaults.
	Limits *Limits
	// MaxPlans bounds the execution plans kept per model (one per input
	// shape seen); default 16. Past it, an arbitrary plan is dropped.
	MaxPlans int
	// NoFuse turns off the load-time fusions (tests compare both ways).
	NoFuse bool
	// MaxArenaBytes bounds the activation memory of one run (its arena):
	// inputs whose shapes would need more are refused with nn.ErrShape.
	// Default 1 GiB.
	MaxArenaBytes int
}

// MaxKeyedElements bounds a graph input whose value shapes the plan (a
// Reshape's shape fed as an input): plans are keyed on its value, so it
// must be small.
const MaxKeyedElements = 1024

// Model is a loaded graph, ready to run.
//
// A Model is immutable after Load and safe for concurrent use: Run builds
// an execution plan the first time it sees a set of input shapes, caches it
// (bounded by Options.MaxPlans), and runs each call in an arena of its own
// taken from the model's pool of idle arenas, so steady-state runs
// allocate nothing.
type Model struct {
	opset   int
	name    string
	inputs  []Value
	outputs []Value
	nodes   []Node             // what plans run: after folding and fusion
	consts  map[string]*Tensor // initializers and values folded at load
	attrs   map[string]*Tensor // the artifact's tensors, for tensor attributes
	params  int64              // elements of the artifact's float tensors
	bytes   int64              // bytes of every constant kept

	keyed    atomic.Pointer[[]bool] // inputs whose value is part of the plan key
	maxPlans int
	maxArena int
	mu       sync.RWMutex
	plans    map[string]*plan
	buildMu  sync.Mutex
	arenas   arenaPool

	prepMu sync.Mutex
	prep   map[prepKey]any // constants prepared for kernels (builder.prepared)
	// packOnly are convolution weights nothing but the convolution's
	// packed GEMM reads: once packed, their row-major bytes are dropped
	// (packSrc keeps the packed copy to unpack from, should a plan need
	// them again), so a served model holds its weights once.
	packOnly map[*Tensor]bool
	packSrc  map[*Tensor][]*kernels.PackedA
}

type prepKey struct {
	t   *Tensor
	key string
}

// rowMajorLocked returns a weight tensor's values, unpacked from its
// packed copy when the row-major bytes were dropped. Called with prepMu
// held.
func (m *Model) rowMajorLocked(w *Tensor) []float32 {
	if w.data != nil {
		return w.Float32s()
	}
	packs := m.packSrc[w]
	out := make([]float32, w.Numel())
	per := len(out) / len(packs)
	for gi, p := range packs {
		p.Unpack(out[gi*per : (gi+1)*per])
	}
	return out
}

// rowMajor is rowMajorLocked for callers that do not hold prepMu.
func (m *Model) rowMajor(w *Tensor) []float32 {
	m.prepMu.Lock()
	defer m.prepMu.Unlock()
	return m.rowMajorLocked(w)
}

// releasePacked drops the row-major bytes of a packOnly weight now that
// packs hold it.
func (m *Model) releasePacked(w *Tensor, packs []*kernels.PackedA) {
	m.prepMu.Lock()
	defer m.prepMu.Unlock()
	if !m.packOnly[w] || w.data == nil {
		return
	}
	if m.packSrc == nil {
		m.packSrc = map[*Tensor][]*kernels.PackedA{}
	}
	m.packSrc[w] = packs
	w.data = nil
}

// findPackOnly lists the constants read only as the weights of 1-D or
// 2-D, non-depthwise convolutions (the depthwise kernel reads them
// row-major), and not graph outputs.
func (m *Model) findPackOnly() {
	ok := map[string]bool{}
	bad := map[string]bool{}
	for _, o := range m.outputs {
		bad[o.Name] = true
	}
	for i := range m.nodes {
		n := &m.nodes[i]
		for j, in := range n.Inputs {
			t, isConst := m.consts[in]
			if !isConst {
				continue
			}
			conv := (n.Op == "Conv" || n.Op == opFusedConv) && j == 1 && t.DType == Float32 && (len(t.Shape) == 3 || len(t.Shape) == 4)
			if conv {
				group := int64(1)
				if a, has := n.Attrs["group"]; has {
					group = a.I
				}
				if t.Shape[1] == 1 && group == int64(t.Shape[0]) {
					conv = false // depthwise
				}
			}
			if conv {
				ok[in] = true
			} else {
				bad[in] = true
			}
		}
	}
	m.packOnly = map[*Tensor]bool{}
	for name := range ok {
		if !bad[name] {
			// A header of our own: dropping the bytes must not touch the
			// caller's tensor (tests load one set of weights twice).
			t := m.consts[name]
			own := &Tensor{DType: t.DType, Shape: t.Shape, data: t.data}
			m.consts[name] = own
			m.packOnly[own] = true
		}
	}
}

// prepare returns the cached preparation of t under key, making it once.
// Plans are built under buildMu, but folding at load is not, so the map
// has its own lock; make runs under it (it is pure and bounded).
func (m *Model) prepare(t *Tensor, key string, make func() any) any {
	m.prepMu.Lock()
	defer m.prepMu.Unlock()
	k := prepKey{t, key}
	if v, ok := m.prep[k]; ok {
		return v
	}
	if m.prep == nil {
		m.prep = map[prepKey]any{}
	}
	v := make()
	m.prep[k] = v
	return v
}

// Load checks g against the tensors it names (initializers and tensor
// attributes, by name), folds every node whose inputs are all constant,
// fuses what it can (see the package documentation) and plans the graph
// for its declared input shapes where they are static (or dynamic only in
// the first dimension), so that a graph that cannot run is refused here.
// Load takes ownership of tensors. Errors wrap nn.ErrArtifact (a
// malformed graph), ErrUnsupported or nn.ErrShape.
func Load(g *Graph, tensors map[string]*Tensor, opts *Options) (_ *Model, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: loading: %v", ErrInternal, r)
		}
	}()
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.MaxPlans <= 0 {
		o.MaxPlans = 16
	}
	if o.MaxArenaBytes <= 0 {
		o.MaxArenaBytes = 1 << 30
	}
	known := func(name string) bool { _, ok := tensors[name]; return ok }
	if err := g.Validate(known, o.Limits); err != nil {
		return nil, err
	}
	m := &Model{
		opset: g.Opset, name: g.Name,
		inputs: cloneValues(g.Inputs), outputs: cloneValues(g.Outputs),
		consts: make(map[string]*Tensor, len(tensors)), attrs: map[string]*Tensor{},
		maxPlans: o.MaxPlans, maxArena: o.MaxArenaBytes, plans: map[string]*plan{},
	}
	// Only tensors that attributes name stay reachable as attributes, so
	// that weights dropped after packing are not kept alive from here.
	for _, n := range g.Nodes {
		for _, a := range n.Attrs {
			if a.Kind == AttrTensor {
				m.attrs[a.T] = tensors[a.T]
			}
		}
	}
	for name, t := range tensors {
		m.consts[name] = t
		if t.DType == Float32 || t.DType == Float64 || t.DType == Float16 || t.DType == BFloat16 {
			m.params += int64(t.Numel())
		}
	}
	keyed := make([]bool, len(m.inputs))
	m.keyed.Store(&keyed)
	nodes := make([]Node, len(g.Nodes))
	copy(nodes, g.Nodes)
	if nodes, err = m.foldConstants(nodes); err != nil {
		return nil, err
	}
	if !o.NoFuse {
		nodes = m.fuse(nodes)
	}
	m.nodes = m.prune(nodes)
	m.findPackOnly()
	if err := m.probe(); err != nil {
		return nil, err
	}
	m.bytes = m.constBytes()
	return m, nil
}

func cloneValues(vs []Value) []Value {
	out := make([]Value, len(vs))
	for i, v := range vs {
		out[i] = v
		out[i].Shape = slices.Clone(v.Shape)
		out[i].Dims = slices.Clone(v.Dims)
	}
	return out
}

func (m *Model) tensor(name string) *Tensor { return m.attrs[name] }

// foldConstants evaluates, once, every node whose inputs are all known
// (weights' Transpose or Cast, Constant, shape arithmetic on constants)
// and returns the nodes left.
func (m *Model) foldConstants(nodes []Node) ([]Node, error) {
	p := &planner{m: m, vals: map[string]*val{}}
	var keep []Node
	produced := map[string]bool{}
	for i := range nodes {
		n := &nodes[i]
		all := true
		for _, in := range n.Inputs {
			if in == "" {
				continue
			}
			if _, ok := m.consts[in]; !ok || produced[in] {
				all = false
			}
		}
		if all {
			before := len(p.steps)
			if err := p.node(n); err != nil {
				if _, ok := isNeedValue(err); !ok {
					return nil, err
				}
			} else if len(p.steps) == before {
				for _, o := range n.Outputs {
					if o != "" {
						m.consts[o] = p.vals[o].c
					}
				}
				continue
			}
		}
		keep = append(keep, *n)
		for _, o := range n.Outputs {
			produced[o] = true
		}
	}
	return keep, nil
}

// prune drops nodes whose outputs nothing uses, and constants no node or
// output reads.
func (m *Model) prune(nodes []Node) []Node {
	used := map[string]bool{}
	for _, o := range m.outputs {
		used[o.Name] = true
	}
	var keep []Node
	for i := len(nodes) - 1; i >= 0; i-- {
		n := &nodes[i]
		any := false
		for _, o := range n.Outputs {
			if used[o] {
				any = true
			}
		}
		if !any {
			continue
		}
		for _, in := range n.Inputs {
			used[in] = true
		}
		keep = append(keep, *n)
	}
	slices.Reverse(keep)
	for name := range m.consts {
		if !used[name] {
			delete(m.consts, name)
		}
	}
	return keep
}

// probe plans the graph for its declared input shapes twice, with a
// dynamic first dimension (the batch) set to 1 and then 2, and any other
// dynamic dimension to 64 and then 96 (the same value for dimensions that
// share a name), so that a graph that cannot run is refused at load and
// outputs whose shapes the file did not declare get them: a dimension
// that differs between the two plans is dynamic (-1). Only a failure with
// nothing but the batch dynamic refuses the graph; guessed sizes that do
// not fit (a model that needs a particular width) leave the outputs as
// declared.
func (m *Model) probe() error {
	shapes := [2][][]int{}
	var dtypes []DType
	guessed := false
	for k, guess := range [2][2]int{{1, 64}, {2, 96}} {
		ins := make([]*Tensor, len(m.inputs))
		for i, v := range m.inputs {
			shape := make([]int, len(v.Shape))
			for j, d := range v.Shape {
				switch {
				case d >= 0:
					shape[j] = int(d)
				case j == 0:
					shape[j] = guess[0]
				default:
					shape[j] = guess[1]
					guessed = true
				}
			}
			n, ok := numel(shape)
			if !ok || n*v.DType.Size() > 1<<28 {
				return nil
			}
			ins[i] = &Tensor{DType: v.DType, Shape: shape} // no bytes: only shapes are planned
		}
		p, err := m.planFor(ins)
		if err != nil {
			if _, ok := isNeedValue(err); ok || guessed {
				m.dropPlans()
				return nil // planned per request
			}
			return fmt.Errorf("planning for inputs %s: %w", describe(ins), err)
		}
		dtypes = dtypes[:0]
		for _, id := range p.outputs {
			shapes[k] = append(shapes[k], p.vals[id].shape)
			dtypes = append(dtypes, p.vals[id].dt)
		}
		m.dropPlans()
	}
	// Check everything before changing anything: with guessed sizes a
	// disagreement only means the guess was not a size the model takes
	// its declared shapes at.
	found := make([][]int64, len(m.outputs))
	for i := range m.outputs {
		o := &m.outputs[i]
		a, b := shapes[0][i], shapes[1][i]
		fail := func(err error) error {
			if guessed {
				return nil
			}
			return err
		}
		if o.DType != dtypes[i] {
			return fail(graphErr("output %q is declared %v but the graph computes %v", printable(o.Name), o.DType, dtypes[i]))
		}
		if o.Shape != nil && len(o.Shape) != len(a) {
			return fail(graphErr("output %q is declared with rank %d but the graph computes rank %d", printable(o.Name), len(o.Shape), len(a)))
		}
		sh := make([]int64, len(a))
		for j := range a {
			switch {
			case a[j] != b[j]:
				sh[j] = -1
			case o.Shape != nil && o.Shape[j] >= 0 && o.Shape[j] != int64(a[j]):
				return fail(graphErr("output %q is declared with shape %v but the graph computes %v", printable(o.Name), o.Shape, a))
			default:
				sh[j] = int64(a[j])
			}
		}
		found[i] = sh
	}
	for i := range m.outputs {
		m.outputs[i].Shape = found[i]
	}
	return nil
}

func (m *Model) dropPlans() {
	m.mu.Lock()
	clear(m.plans)
	m.mu.Unlock()
}

func describe(ins []*Tensor) string {
	s := ""
	for i, t := range ins {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%v%v", t.DType, t.Shape)
	}
	return s
}

// Name returns the graph's name.
func (m *Model) Name() string { return m.name }

// Opset returns the graph's ai.onnx opset.
func (m *Model) Opset() int { return m.opset }

// Inputs returns the graph's inputs (a copy): names, types, and shapes
// with -1 for dynamic dimensions.
func (m *Model) Inputs() []Value { return cloneValues(m.inputs) }

// Outputs returns the graph's outputs (a copy), with the shapes declared
// by the file or found by planning.
func (m *Model) Outputs() []Value { return cloneValues(m.outputs) }

// NumParams returns the number of floating-point weights.
func (m *Model) NumParams() int64 { return m.params }

// constBytes adds up the constants' bytes and their packed copies.
func (m *Model) constBytes() int64 {
	m.prepMu.Lock()
	defer m.prepMu.Unlock()
	n := int64(0)
	for _, t := range m.consts {
		n += int64(len(t.data))
	}
	for _, v := range m.prep {
		switch p := v.(type) {
		case []*kernels.PackedA:
			for _, q := range p {
				n += int64(q.Bytes())
			}
		case []*kernels.Packed:
			for _, q := range p {
				n += int64(q.Bytes())
			}
		case *kernels.Packed:
			n += int64(p.Bytes())
		}
	}
	return n
}

// ConstBytes returns the bytes of the constants the model keeps (weights,
// packed or folded).
func (m *Model) ConstBytes() int64 { return m.bytes }

// Cost returns what a run on inputs of in's shapes costs: floating-point
// operations (multiply-adds count two; element-wise operations one) and the
// bytes of its activation arena. It plans (and caches the plan) but runs
// nothing; only the inputs whose values shape the plan need data.
func (m *Model) Cost(in []*Tensor) (flops float64, arenaBytes int, err error) {
	if err := m.checkInputs(in); err != nil {
		return 0, 0, err
	}
	p, err := m.planFor(in)
	if err != nil {
		return 0, 0, err
	}
	return p.flops, p.arenaSize, nil
}

// Run computes the graph's outputs for in, one tensor per graph input in
// the order of Inputs. Tensors of out are reused when out has one per
// output (their bytes when large enough); otherwise new ones are returned.
// Inputs must have the declared element type and rank, and the declared
// size on every static dimension; errors wrap nn.ErrShape. A cancelled ctx
// stops the run between kernels. Run is goroutine-safe; after the first
// run with given shapes it allocates nothing when out is given.
func (m *Model) Run(ctx context.Context, in []*Tensor, out []*Tensor) ([]*Tensor, error) {
	if err := m.checkInputs(in); err != nil {
		return nil, err
	}
	p, err := m.planFor(in)
	if err != nil {
		return nil, err
	}
	return p.run(ctx, in, out)
}

func (m *Model) checkInputs(in []*Tensor) error {
	if len(in) != len(m.inputs) {
		return shapeErr("%d inputs given, the model takes %d", len(in), len(m.inputs))
	}
	for i, v := range m.inputs {
		t := in[i]
		if t == nil {
			return shapeErr("input %q missing", printable(v.Name))
		}
		if t.DType != v.DType {
			return shapeErr("input %q is %v, the model takes %v", printable(v.Name), t.DType, v.DType)
		}
		if len(t.Shape) != len(v.Shape) {
			return shapeErr("input %q has shape %v, the model takes %v (-1: any size)", printable(v.Name), t.Shape, v.Shape)
		}
		for j, d := range v.Shape {
			if t.Shape[j] < 0 || (d >= 0 && int64(t.Shape[j]) != d) {
				return shapeErr("input %q has shape %v, the model takes %v (-1: any size)", printable(v.Name), t.Shape, v.Shape)
			}
		}
		n, ok := numel(t.Shape)
		if !ok || (t.data != nil && len(t.data) != n*t.DType.Size()) {
			return shapeErr("input %q: %d bytes for shape %v", printable(v.Name), len(t.data), t.Shape)
		}
	}
	return nil
}

// appendKey appends the plan key of in: every input's type and shape, and
// the bytes of the inputs whose values shape the plan.
func (m *Model) appendKey(k []byte, in []*Tensor, keyed []bool) []byte {
	for i, t := range in {
		k = append(k, byte(t.DType), byte(len(t.Shape)))
		for _, d := range t.Shape {
			k = binary.AppendUvarint(k, uint64(d))
		}
		if keyed[i] {
			k = binary.AppendUvarint(k, uint64(len(t.data)))
			k = append(k, t.data...)
		}
	}
	return k
}

// planFor returns the cached plan for in, building it on a miss.
func (m *Model) planFor(in []*Tensor) (*plan, error) {
	keyed := *m.keyed.Load()
	var kb [512]byte // on the stack: 26 inputs of rank 4 (GPT-2 with its cache) need ~200
	key := m.appendKey(kb[:0], in, keyed)
	m.mu.RLock()
	p := m.plans[string(key)]
	m.mu.RUnlock()
	if p != nil {
		return p, nil
	}
	m.buildMu.Lock()
	defer m.buildMu.Unlock()
	for attempt := 0; ; attempt++ {
		keyed = *m.keyed.Load()
		key = m.appendKey(kb[:0], in, keyed)
		m.mu.RLock()
		p = m.plans[string(key)]
		m.mu.RUnlock()
		if p != nil {
			return p, nil
		}
		var err error
		p, err = m.safeBuildPlan(in, keyed)
		if err == nil {
			break
		}
		nv, ok := isNeedValue(err)
		if !ok || attempt > len(m.inputs) {
			return nil, err
		}
		if err := m.markKeyed(nv.name, in); err != nil {
			return nil, err
		}
	}
	m.mu.Lock()
	if len(m.plans) >= m.maxPlans {
		for k := range m.plans {
			delete(m.plans, k)
			break
		}
	}
	m.plans[string(key)] = p
	m.mu.Unlock()
	return p, nil
}

// ErrInternal reports a bug of the runtime (a panic caught in a kernel or
// in planning): a server error, never the client's.
var ErrInternal = errors.New("graph: internal error")

// safeBuildPlan is buildPlan with a panic turned into ErrInternal: a bug in
// one operator's planning must fail the request, not the process.
func (m *Model) safeBuildPlan(in []*Tensor, keyed []bool) (p *plan, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("%w: planning: %v", ErrInternal, r)
		}
	}()
	return m.buildPlan(in, keyed)
}

// markKeyed makes the plan key include the values of the graph inputs
// that name is computed from. Called with buildMu held.
func (m *Model) markKeyed(name string, in []*Tensor) error {
	producer := map[string]*Node{}
	for i := range m.nodes {
		for _, o := range m.nodes[i].Outputs {
			producer[o] = &m.nodes[i]
		}
	}
	index := map[string]int{}
	for i, v := range m.inputs {
		index[v.Name] = i
	}
	old := *m.keyed.Load()
	keyed := slices.Clone(old)
	seen := map[string]bool{}
	stack := []string{name}
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[s] || s == "" {
			continue
		}
		seen[s] = true
		if i, ok := index[s]; ok {
			keyed[i] = true
			continue
		}
		if n := producer[s]; n != nil {
			stack = append(stack, n.Inputs...)
		}
	}
	changed := false
	for i := range keyed {
		if keyed[i] && !old[i] {
			changed = true
			if in[i].data == nil {
				return &errNeedValue{name: name} // planning shapes only (Load's probe)
			}
			if in[i].Numel() > MaxKeyedElements {
				return shapeErr("input %q decides the shapes of the graph (%s needs its value) and has %d elements; at most %d are supported",
					printable(m.inputs[i].Name), printable(name), in[i].Numel(), MaxKeyedElements)
			}
		}
	}
	if !changed {
		return shapeErr("the shapes of the graph depend on the value of %q, which is computed from the input data; aiaas needs shapes that follow from the input shapes", printable(name))
	}
	m.keyed.Store(&keyed)
	return nil
}

// run executes p on in. A panic in a kernel (a bug) fails the run with
// ErrInternal; the exec it used is dropped, not pooled.
func (p *plan) run(ctx context.Context, in []*Tensor, out []*Tensor) (_ []*Tensor, err error) {
	x := p.getExec()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrInternal, r)
		}
	}()
	p.bind(x, in)
	done := ctx.Done()
	for si := range p.steps {
		if done != nil {
			select {
			case <-done:
				p.putExec(x)
				return nil, ctx.Err()
			default:
			}
		}
		s := &p.steps[si]
		if err := s.kernel(x.stepIn[si], x.stepOut[si], &x.stepCtx[si]); err != nil {
			p.putExec(x)
			return nil, shapeErr("node %q (%s): %v", printable(s.node.Name), s.node.Op, err)
		}
	}
	if len(out) != len(p.outputs) {
		out = make([]*Tensor, len(p.outputs))
	}
	for i, id := range p.outputs {
		src := &x.t[id]
		t := out[i]
		if t == nil {
			t = &Tensor{}
			out[i] = t
		}
		t.DType = src.DType
		t.Shape = append(t.Shape[:0], src.Shape...)
		if cap(t.data) >= len(src.data) && t.data != nil {
			t.data = t.data[:len(src.data)]
		} else {
			t.data = alignedBytes(len(src.data))
		}
		copy(t.data, src.data)
	}
	p.putExec(x)
	return out, nil
}

// StepProfile is the time one node of a plan took, summed over the runs
// Profile made.
type StepProfile struct {
	Node  string        `json:"node"`
	Op    string        `json:"op"`
	Shape []int         `json:"shape"` // of its first output
	FLOPs float64       `json:"flops"` // per run
	Time  time.Duration `json:"time_ns"`
}

// Profile runs the graph runs times on in and returns how long each step
// (a kernel call; views and folded nodes cost nothing) took in all, in
// plan order: where a model spends its time, for `aiaas model bench
// --profile`. It is goroutine-safe and meant for tools, not serving: it
// times every step.
func (m *Model) Profile(ctx context.Context, in []*Tensor, runs int) ([]StepProfile, error) {
	if err := m.checkInputs(in); err != nil {
		return nil, err
	}
	p, err := m.planFor(in)
	if err != nil {
		return nil, err
	}
	prof := make([]StepProfile, len(p.steps))
	for i, s := range p.steps {
		prof[i] = StepProfile{Node: s.node.Name, Op: s.node.Op, FLOPs: s.flops}
		if len(s.out) > 0 && s.out[0] >= 0 {
			prof[i].Shape = slices.Clone(p.vals[s.out[0]].shape)
		}
	}
	for r := 0; r < runs; r++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := p.runTimed(in, prof); err != nil {
			return nil, err
		}
	}
	return prof, nil
}

// bind points the exec's graph inputs, and the views of them, at in.
func (p *plan) bind(x *exec, in []*Tensor) {
	for i, id := range p.inputs {
		x.t[id].data = in[i].data
	}
	for _, id := range p.aliases {
		v := &p.vals[id]
		x.t[id].data = x.t[v.alias].data[:v.size:v.size]
	}
}

// runTimed is run without outputs, timing each step into prof.
func (p *plan) runTimed(in []*Tensor, prof []StepProfile) (err error) {
	x := p.getExec()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrInternal, r)
		}
	}()
	p.bind(x, in)
	for si := range p.steps {
		s := &p.steps[si]
		start := time.Now()
		if err := s.kernel(x.stepIn[si], x.stepOut[si], &x.stepCtx[si]); err != nil {
			p.putExec(x)
			return shapeErr("node %q (%s): %v", printable(s.node.Name), s.node.Op, err)
		}
		prof[si].Time += time.Since(start)
	}
	p.putExec(x)
	return nil
}
