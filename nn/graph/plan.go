package graph

import (
	"slices"
	"sort"
)

// step is one kernel call of a plan.
type step struct {
	node    *Node
	kernel  kernelFunc
	in, out []int // value ids, -1 for an absent input
	scratch int   // value id of the step's scratch, -1 for none
	state   func() any
	flops   float64
}

// plan is the execution plan of a model for one set of input types and
// shapes (and the values of the inputs it is keyed on): the kernels to run,
// in order, and where every value lives in one arena. It is immutable and
// shared by concurrent runs, each with its own arena (see exec).
type plan struct {
	vals      []planVal
	steps     []step
	inputs    []int // value id of each graph input
	outputs   []int // value id of each graph output
	arenaSize int
	flops     float64
	aliases   []int // ids of values that share a graph input's bytes, in dependency order
	arenaVals []int // ids of values in the arena or views of them, in dependency order
	arenas    *arenaPool
	pool      execPool
}

// planVal is what a run needs of one value.
type planVal struct {
	name   string
	dt     DType
	shape  []int
	size   int     // bytes
	c      *Tensor // constant
	input  int     // graph input index or -1
	alias  int     // id of the value whose bytes this one shares, or -1
	offset int     // in the arena, when arena
	arena  bool
}

// planner builds one plan.
type planner struct {
	m     *Model
	vals  map[string]*val
	list  []*val
	steps []*pstep
}

type pstep struct {
	node    *Node
	kernel  kernelFunc
	in, out []*val
	scratch *val
	state   func() any
	alias   int
	flops   float64
}

// planFor builds the plan for inputs ins (types and shapes; the values of
// those whose index keyed reports).
func (m *Model) buildPlan(ins []*Tensor, keyed []bool) (*plan, error) {
	p := &planner{m: m, vals: make(map[string]*val, 2*len(m.nodes)+len(ins))}
	for i, v := range m.inputs {
		t := ins[i]
		pv := &val{name: v.Name, dt: t.DType, shape: slices.Clone(t.Shape), input: i, def: -1}
		if keyed[i] {
			pv.c = t.Clone()
		}
		p.add(pv)
	}
	for i := range m.nodes {
		if err := p.node(&m.nodes[i]); err != nil {
			return nil, err
		}
	}
	outs := make([]*val, len(m.outputs))
	for i, o := range m.outputs {
		v, err := p.get(o.Name)
		if err != nil {
			return nil, err
		}
		outs[i] = v
	}
	return p.finish(outs)
}

func (p *planner) add(v *val) {
	v.id = len(p.list)
	p.list = append(p.list, v)
	p.vals[v.name] = v
}

// get returns the value named name: produced earlier, or a constant of
// the model.
func (p *planner) get(name string) (*val, error) {
	if v, ok := p.vals[name]; ok {
		return v, nil
	}
	if t, ok := p.m.consts[name]; ok {
		v := &val{name: name, dt: t.DType, shape: t.Shape, c: t, def: -1, input: -1}
		p.add(v)
		return v, nil
	}
	return nil, graphErr("value %q is not defined", printable(name))
}

// node plans one node: builds it, folds it when its inputs are known, or
// adds it as a step.
func (p *planner) node(n *Node) error {
	build, err := lookupOp(n.Op, p.m.opset)
	if err != nil {
		return err
	}
	b := &builder{node: n, opset: p.m.opset, in: make([]*val, len(n.Inputs)), out: make([]*val, len(n.Outputs)), tensor: p.m.tensor, model: p.m, alias: -1}
	for i, name := range n.Inputs {
		if name == "" {
			continue
		}
		if b.in[i], err = p.get(name); err != nil {
			return err
		}
	}
	for i, name := range n.Outputs {
		if name != "" {
			b.out[i] = &val{name: name, def: -1, input: -1}
		}
	}
	build(b)
	if b.err != nil {
		return b.err
	}
	allConst := true
	for _, v := range b.in {
		if v != nil && v.c == nil {
			allConst = false
		}
	}
	for i, o := range b.out {
		if o != nil && o.dt == Undefined {
			return graphErr("node %q (%s): output %d was not planned", printable(n.Name), n.Op, i)
		}
	}
	switch {
	case b.alias >= 0 && b.in[b.alias].c != nil:
		// A view of a constant is a constant.
		src := b.in[b.alias].c
		o := b.out[0]
		if o.bytes() != len(src.data) {
			return graphErr("node %q (%s): view of %d bytes as %v", printable(n.Name), n.Op, len(src.data), o.shape)
		}
		o.c = &Tensor{DType: o.dt, Shape: o.shape, data: src.data}
	case b.kernel != nil && allConst && !b.noFold:
		if err := p.fold(b); err != nil {
			return err
		}
	}
	done := true
	for _, o := range b.out {
		if o != nil && o.c == nil {
			done = false
		}
	}
	for _, o := range b.out {
		if o != nil {
			if _, dup := p.vals[o.name]; dup {
				return graphErr("value %q defined twice", printable(o.name))
			}
			p.add(o)
		}
	}
	if done {
		return nil
	}
	if b.kernel == nil && b.alias < 0 {
		return graphErr("node %q (%s): no kernel for a value known only at run time", printable(n.Name), n.Op)
	}
	s := &pstep{node: n, kernel: b.kernel, in: b.in, out: b.out, alias: b.alias, flops: b.flops, state: b.newState}
	if b.scratch > 0 {
		s.scratch = &val{name: "\x00scratch", dt: Uint8, shape: []int{b.scratch}, def: -1, input: -1}
	}
	p.steps = append(p.steps, s)
	return nil
}

// fold runs a node whose inputs are all known while planning, so its
// outputs become constants.
func (p *planner) fold(b *builder) error {
	ins := make([]*Tensor, len(b.in))
	for i, v := range b.in {
		if v != nil {
			ins[i] = v.c
		}
	}
	outs := make([]*Tensor, len(b.out))
	for i, o := range b.out {
		if o != nil {
			outs[i] = NewTensor(o.dt, o.shape...)
		}
	}
	k := &kctx{}
	if b.scratch > 0 {
		k.scratch = alignedBytes(b.scratch)
	}
	if b.newState != nil {
		k.state = b.newState()
	}
	if err := b.kernel(ins, outs, k); err != nil {
		// Data-dependent: an index out of range in a constant.
		return shapeErr("node %q (%s): %v", printable(b.node.Name), b.node.Op, err)
	}
	for i, o := range b.out {
		if o != nil {
			o.c = outs[i]
		}
	}
	return nil
}

// finish drops steps whose outputs nobody reads, assigns every value its
// storage and lays out the arena.
func (p *planner) finish(outs []*val) (*plan, error) {
	// Liveness, backwards: a step is needed if one of its outputs is a
	// graph output or read by a needed step.
	needed := map[*val]bool{}
	for _, o := range outs {
		needed[o] = true
	}
	var steps []*pstep
	for i := len(p.steps) - 1; i >= 0; i-- {
		s := p.steps[i]
		use := false
		for _, o := range s.out {
			if o != nil && needed[o] {
				use = true
			}
		}
		if !use {
			continue
		}
		for _, v := range s.in {
			if v != nil {
				needed[v] = true
			}
		}
		steps = append(steps, s)
	}
	slices.Reverse(steps)

	// Lifetimes, in the order of the kept steps.
	for _, v := range p.list {
		v.def, v.last = -1, -1
	}
	root := func(v *val) *val {
		for v.aliasOf != nil {
			v = v.aliasOf
		}
		return v
	}
	for si, s := range steps {
		if s.alias >= 0 {
			s.out[0].aliasOf = s.in[s.alias]
		}
		for _, o := range s.out {
			if o != nil && o.c == nil {
				o.def = si
				o.last = max(o.last, si)
			}
		}
		for _, v := range s.in {
			if v != nil {
				r := root(v)
				r.last = max(r.last, si)
				v.last = max(v.last, si)
			}
		}
		if s.scratch != nil {
			s.scratch.id = len(p.list)
			p.list = append(p.list, s.scratch)
			s.scratch.def, s.scratch.last = si, si
		}
	}
	end := len(steps)
	for _, o := range outs {
		r := root(o)
		r.last = end
		o.last = end
	}
	// An alias keeps its root alive as long as it is read.
	for _, v := range p.list {
		if v.aliasOf != nil {
			r := root(v)
			r.last = max(r.last, v.last)
		}
	}

	// Arena: values produced by a kernel (not views, not constants, not
	// inputs), greedy by size (the TFLite/ONNX Runtime planners' strategy):
	// largest first, each into the tightest gap among values alive at the
	// same time.
	var items []*val
	for _, v := range p.list {
		if v.c == nil && v.input < 0 && v.aliasOf == nil && v.def >= 0 {
			v.arena = true
			items = append(items, v)
		}
	}
	sort.SliceStable(items, func(i, j int) bool {
		if a, b := items[i].bytes(), items[j].bytes(); a != b {
			return a > b
		}
		return items[i].def < items[j].def
	})
	var placed []*val
	arena := 0
	for _, v := range items {
		size := alignUp(v.bytes(), arenaAlign)
		var live []*val
		for _, o := range placed {
			if o.def <= v.last && v.def <= o.last {
				live = append(live, o)
			}
		}
		sort.Slice(live, func(i, j int) bool { return live[i].offset < live[j].offset })
		best, bestGap, prev := -1, 0, 0
		for _, o := range live {
			if gap := o.offset - prev; gap >= size && (best < 0 || gap < bestGap) {
				best, bestGap = prev, gap
			}
			prev = max(prev, o.offset+alignUp(o.bytes(), arenaAlign))
		}
		if best < 0 {
			best = prev
		}
		v.offset = best
		arena = max(arena, best+size)
		placed = append(placed, v)
	}

	if arena > p.m.maxArena {
		return nil, shapeErr("inputs of these shapes need %d MiB of activations, over the limit of %d MiB", arena>>20, p.m.maxArena>>20)
	}
	pl := &plan{arenaSize: arena, vals: make([]planVal, len(p.list)), arenas: &p.m.arenas}
	for i, v := range p.list {
		pv := planVal{name: v.name, dt: v.dt, shape: v.shape, size: v.bytes(), c: v.c, input: v.input, alias: -1, offset: v.offset, arena: v.arena}
		if v.aliasOf != nil {
			pv.alias = v.aliasOf.id
		}
		pl.vals[i] = pv
	}
	for i := range p.m.inputs {
		pl.inputs = append(pl.inputs, p.vals[p.m.inputs[i].Name].id)
	}
	for _, o := range outs {
		pl.outputs = append(pl.outputs, o.id)
	}
	// Views of graph inputs get their bytes per run, in order.
	for _, v := range p.list {
		if v.aliasOf != nil && v.c == nil && root(v).input >= 0 {
			pl.aliases = append(pl.aliases, v.id)
		}
	}
	sort.Ints(pl.aliases) // ids follow definition order, so a view's root comes first
	for _, v := range p.list {
		if v.c == nil && (v.arena || v.aliasOf != nil && root(v).arena) {
			pl.arenaVals = append(pl.arenaVals, v.id)
		}
	}
	sort.Ints(pl.arenaVals)
	for _, s := range steps {
		st := step{node: s.node, kernel: s.kernel, scratch: -1, flops: s.flops, state: s.state}
		for _, v := range s.in {
			id := -1
			if v != nil {
				id = v.id
			}
			st.in = append(st.in, id)
		}
		for _, v := range s.out {
			id := -1
			if v != nil {
				id = v.id
			}
			st.out = append(st.out, id)
		}
		if s.scratch != nil {
			st.scratch = s.scratch.id
		}
		if s.kernel == nil {
			continue // a view: nothing to run
		}
		pl.flops += s.flops
		pl.steps = append(pl.steps, st)
	}
	return pl, nil
}

// arenaAlign aligns every arena value to a cache line, which is also what
// the widest vector loads like.
const arenaAlign = 64

func alignUp(n, a int) int { return (n + a - 1) / a * a }
