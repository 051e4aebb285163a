package serving

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aiaas/aiaas/nn"
)

// Batcher coalesces concurrent forward passes on one dense model into
// one batched pass: one GEMM over 32 rows costs far less than 32 GEMVs.
//
// There is no background goroutine: the first request to arrive while no
// batch is open becomes the leader, waits up to the window (or until the
// batch is full), runs the batch and hands each follower its rows. So an
// evicted model leaves nothing running, and a lone request pays at most the
// window. A Batcher is safe for concurrent use.
type Batcher struct {
	m       *nn.Model
	window  time.Duration
	maxRows int
	observe func(rows int)

	mu      sync.Mutex
	pending []*batchReq
	nrows   int
	full    chan struct{} // closed when the open batch reaches maxRows
}

// batchReq is one caller's rows in a batch, and where its answer goes.
type batchReq struct {
	x    []float32
	rows int
	out  []float32
	err  error
	done chan struct{}
}

// NewBatcher returns a Batcher over m. Options.Lanes does not apply: a
// dense model's batch spreads its GEMM over every core by itself.
func NewBatcher(m *nn.Model, o Options) *Batcher {
	o = o.withDefaults()
	return &Batcher{m: m, window: o.Window, maxRows: o.MaxRows, observe: o.Observe}
}

// Do runs rows rows of x (rows × InputDim values) and returns their
// rows × OutputDim outputs, computed alone or in one pass with other
// callers' rows. Input of the wrong size is refused before it can join a
// batch, where it would shift every other caller's rows.
//
// When ctx ends first Do returns ctx.Err(); a batch that already holds the
// rows still computes them, and drops the result.
func (b *Batcher) Do(ctx context.Context, x []float32, rows int) ([]float32, error) {
	if rows < 1 || len(x) != rows*b.m.InputDim() {
		return nil, fmt.Errorf("serving: %d input values for %d rows; the model takes rows of %d", len(x), rows, b.m.InputDim())
	}
	if rows >= b.maxRows {
		b.observe(rows)
		return b.m.Forward(nil, x, rows)
	}
	req := &batchReq{x: x, rows: rows, done: make(chan struct{})}
	b.mu.Lock()
	leader := b.full == nil
	if leader {
		b.full = make(chan struct{})
	}
	full := b.full
	b.pending = append(b.pending, req)
	b.nrows += rows
	if b.nrows >= b.maxRows {
		close(b.full)
		b.full = nil // the next arrival opens a new batch
	}
	b.mu.Unlock()

	if leader {
		t := time.NewTimer(b.window)
		select {
		case <-full:
		case <-t.C:
		}
		t.Stop()
		b.mu.Lock()
		batch := b.pending
		b.pending, b.nrows = nil, 0
		if b.full == full {
			b.full = nil
		}
		b.mu.Unlock()
		b.run(batch)
	}
	select {
	case <-req.done:
		return req.out, req.err
	case <-ctx.Done():
		// The batch still computes this request's rows; its result is
		// dropped.
		return nil, ctx.Err()
	}
}

// run computes one coalesced batch and answers every request in it.
func (b *Batcher) run(batch []*batchReq) {
	if len(batch) == 0 {
		return
	}
	if len(batch) == 1 {
		r := batch[0]
		b.observe(r.rows)
		r.out, r.err = b.m.Forward(nil, r.x, r.rows)
		close(r.done)
		return
	}
	in, out := b.m.InputDim(), b.m.OutputDim()
	total := 0
	for _, r := range batch {
		total += r.rows
	}
	b.observe(total)
	x := make([]float32, 0, total*in)
	for _, r := range batch {
		x = append(x, r.x...)
	}
	y, err := b.m.Forward(nil, x, total)
	off := 0
	for _, r := range batch {
		if err != nil {
			r.err = err
		} else {
			r.out = y[off*out : (off+r.rows)*out : (off+r.rows)*out]
		}
		off += r.rows
		close(r.done)
	}
}
