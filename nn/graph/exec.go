package graph

import (
	"runtime"
	"sync"

	"github.com/aiaas/aiaas/internal/offheap"
)

// exec is one run's state for a plan: a tensor header per value, whose
// bytes point into an arena, into a constant or into a graph input, and
// each step's kernel state. It belongs to one run at a time, and holds an
// arena only during that run (see arenaPool).
type exec struct {
	mem     *offheap.Block // the arena, while running
	t       []Tensor
	stepIn  [][]*Tensor
	stepOut [][]*Tensor
	stepCtx []kctx
}

// execPool keeps a plan's execs between runs, so a warm plan allocates
// nothing. It is a bounded free list rather than a sync.Pool, which every
// other garbage collection empties. It keeps at most maxIdleExecs idle
// execs; more concurrent runs than that build theirs and let them go.
// Goroutine-safe.
type execPool struct {
	once sync.Once
	ch   chan *exec
}

// maxIdleExecs bounds the idle execs a plan keeps and the idle arenas a
// model keeps: enough for every core to run the model at once, twice
// over.
var maxIdleExecs = max(2, 2*runtime.GOMAXPROCS(0))

// arenaPool keeps a model's idle arenas, for the runs of all its plans.
//
// Arenas belong to the model, not to a plan, because a model that sees
// many shapes — a decoder whose cache grows by one position per token, a
// CNN served at several image sizes — gets a new plan for each: with an
// arena per plan, every new shape mapped fresh memory, and its first run
// paid a page fault per 4 KiB of activations (at GPT-2's context 128,
// about 30 ms of a 55 ms step), while the cached plans each held an arena
// of their own. A run takes the smallest idle arena that fits; a new one
// is rounded up to a size class (arenaClass), so that the slightly larger
// plan of the next decoding step fits in it too. At most maxIdleExecs
// arenas stay idle, the largest ones; one dropped is unmapped at once.
type arenaPool struct {
	mu   sync.Mutex
	idle []*offheap.Block
}

// get returns an arena of at least n bytes. Its bytes are not zeroed:
// plans write every arena value before reading it.
func (a *arenaPool) get(n int) *offheap.Block {
	a.mu.Lock()
	best := -1
	for i, b := range a.idle {
		if c := len(b.Bytes()); c >= n && (best < 0 || c < len(a.idle[best].Bytes())) {
			best = i
		}
	}
	if best >= 0 {
		b := a.idle[best]
		last := len(a.idle) - 1
		a.idle[best] = a.idle[last]
		a.idle[last] = nil
		a.idle = a.idle[:last]
		a.mu.Unlock()
		return b
	}
	a.mu.Unlock()
	return offheap.Alloc(arenaClass(n))
}

// put returns an arena nothing refers to any more.
func (a *arenaPool) put(b *offheap.Block) {
	a.mu.Lock()
	if len(a.idle) < maxIdleExecs {
		a.idle = append(a.idle, b)
		a.mu.Unlock()
		return
	}
	small := 0
	for i, c := range a.idle {
		if len(c.Bytes()) < len(a.idle[small].Bytes()) {
			small = i
		}
	}
	if len(b.Bytes()) > len(a.idle[small].Bytes()) {
		a.idle[small], b = b, a.idle[small]
	}
	a.mu.Unlock()
	b.Free()
}

// bytes returns the bytes of the idle arenas.
func (a *arenaPool) bytes() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, b := range a.idle {
		n += len(b.Bytes())
	}
	return n
}

// arenaClass rounds an arena size up to a multiple of an eighth of the
// power of two below it (at least 64 KiB): at most 12.5% more than asked.
func arenaClass(n int) int {
	if n <= 64<<10 {
		return n
	}
	g := 1
	for g*2 <= n {
		g *= 2
	}
	g = max(g/8, 64<<10)
	return (n + g - 1) / g * g
}

// poisonArenas makes every run start on an arena of 0xff bytes, for tests:
// a kernel that reads arena bytes it did not write this run (relying on a
// fresh mapping's zeros, or on what an earlier run left) then fails.
var poisonArenas = false

func (p *plan) getExec() *exec {
	p.pool.once.Do(func() { p.pool.ch = make(chan *exec, maxIdleExecs) })
	var x *exec
	select {
	case x = <-p.pool.ch:
	default:
		x = p.newExec()
	}
	if p.arenaSize > 0 {
		x.mem = p.arenas.get(p.arenaSize)
		arena := x.mem.Bytes()
		if poisonArenas {
			for i := range arena {
				arena[i] = 0xff // NaN as float32, -1 as an integer
			}
		}
		for _, id := range p.arenaVals {
			v := &p.vals[id]
			if v.arena {
				x.t[id].data = arena[v.offset : v.offset+v.size : v.offset+v.size]
			} else {
				x.t[id].data = x.t[v.alias].data[:v.size:v.size]
			}
		}
		for si, s := range p.steps {
			if s.scratch >= 0 {
				x.stepCtx[si].scratch = x.t[s.scratch].data
			}
		}
	}
	return x
}

// putExec ends a run: the exec forgets the run's inputs and arena, and
// both go back to their pools.
func (p *plan) putExec(x *exec) {
	for _, id := range p.inputs {
		x.t[id].data = nil
	}
	for _, id := range p.aliases {
		x.t[id].data = nil
	}
	if x.mem != nil {
		for _, id := range p.arenaVals {
			x.t[id].data = nil
		}
		for si := range x.stepCtx {
			x.stepCtx[si].scratch = nil
		}
		p.arenas.put(x.mem)
		x.mem = nil
	}
	select {
	case p.pool.ch <- x:
	default:
	}
}

func (p *plan) newExec() *exec {
	x := &exec{t: make([]Tensor, len(p.vals))}
	for i := range p.vals {
		v := &p.vals[i]
		t := &x.t[i]
		t.DType, t.Shape = v.dt, v.shape
		if v.c != nil {
			t.data = v.c.data
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
		if s.state != nil {
			x.stepCtx[si].state = s.state()
		}
	}
	return x
}
