package graph

import (
	"runtime"
	"sync"

	"github.com/aiaas/aiaas/internal/offheap"
)

// exec is one run's state for a plan: the arena and a tensor header per
// value, whose bytes point into the arena, into a constant or into a graph
// input. It belongs to one run at a time.
type exec struct {
	mem     *offheap.Block // owns arena: outside the Go heap when large
	arena   []byte
	t       []Tensor
	stepIn  [][]*Tensor
	stepOut [][]*Tensor
	stepCtx []kctx
}

// execPool keeps a plan's execs between runs, so a warm plan allocates
// nothing. It is a bounded free list rather than a sync.Pool, which every
// other garbage collection empties: a served model would then allocate
// its arena again after each one. It keeps at most maxIdleExecs idle
// execs (arenas); more concurrent runs than that allocate theirs and let
// them go. Goroutine-safe.
type execPool struct {
	once sync.Once
	ch   chan *exec
}

// maxIdleExecs bounds the idle arenas a plan keeps: enough for every core
// to run the model at once, twice over.
var maxIdleExecs = max(2, 2*runtime.GOMAXPROCS(0))

func (p *plan) getExec() *exec {
	p.pool.once.Do(func() { p.pool.ch = make(chan *exec, maxIdleExecs) })
	select {
	case x := <-p.pool.ch:
		return x
	default:
		return p.newExec()
	}
}

func (p *plan) putExec(x *exec) {
	for _, id := range p.inputs {
		x.t[id].data = nil
	}
	for _, id := range p.aliases {
		x.t[id].data = nil
	}
	select {
	case p.pool.ch <- x:
	default:
	}
}

func (p *plan) newExec() *exec {
	x := &exec{t: make([]Tensor, len(p.vals))}
	if p.arenaSize > 0 {
		x.mem = offheap.Alloc(p.arenaSize)
		x.arena = x.mem.Bytes()
	}
	for i := range p.vals {
		v := &p.vals[i]
		t := &x.t[i]
		t.DType, t.Shape = v.dt, v.shape
		switch {
		case v.c != nil:
			t.data = v.c.data
		case v.arena:
			t.data = x.arena[v.offset : v.offset+v.size : v.offset+v.size]
		}
	}
	// Views of arena values and constants have fixed bytes; views of
	// graph inputs are bound per run (plan.aliases).
	for i := range p.vals {
		v := &p.vals[i]
		if v.alias >= 0 && v.c == nil {
			r := v.alias
			for p.vals[r].alias >= 0 {
				r = p.vals[r].alias
			}
			if p.vals[r].arena {
				x.t[i].data = x.t[r].data[:v.size:v.size]
			}
		}
	}
	x.stepIn = make([][]*Tensor, len(p.steps))
	x.stepOut = make([][]*Tensor, len(p.steps))
	x.stepCtx = make([]kctx, len(p.steps))
	for si, s := range p.steps {
		x.stepIn[si] = make([]*Tensor, len(s.in))
		for j, id := range s.in {
			if id >= 0 {
				x.stepIn[si][j] = &x.t[id]
			}
		}
		x.stepOut[si] = make([]*Tensor, len(s.out))
		for j, id := range s.out {
			if id >= 0 {
				x.stepOut[si][j] = &x.t[id]
			}
		}
		if s.scratch >= 0 {
			x.stepCtx[si].scratch = x.t[s.scratch].data
		}
		if s.state != nil {
			x.stepCtx[si].state = s.state()
		}
	}
	return x
}
