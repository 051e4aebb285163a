package platform

import (
	"context"
	"sync"
	"time"

	"github.com/aiaas/aiaas/nn"
)

// batcher coalesces concurrent forward passes on one model version into
// one batched pass: one GEMM over 32 rows costs far less than 32 GEMVs.
//
// There is no background goroutine: the first request to arrive while no
// batch is open becomes the leader, waits up to the window (or until the
// batch is full), runs the batch and hands each follower its rows. So an
// evicted model leaves nothing running, and a lone request pays at most the
// window. It is safe for concurrent use.
type batcher struct {
	m       *nn.Model
	window  time.Duration
	maxRows int
	rows    func(n int) // observes batch sizes (metrics)

	mu      sync.Mutex
	pending []*batchReq
	nrows   int
	full    chan struct{} // closed when the open batch reaches maxRows
}

type batchReq struct {
	x    []float32
	rows int
	out  []float32
	err  error
	done chan struct{}
}

func newBatcher(m *nn.Model, window time.Duration, maxRows int, rows func(int)) *batcher {
	return &batcher{m: m, window: window, maxRows: maxRows, rows: rows}
}

// do runs x (rows × InputDim) and returns rows × OutputDim outputs.
func (b *batcher) do(ctx context.Context, x []float32, rows int) ([]float32, error) {
	if rows >= b.maxRows {
		b.rows(rows)
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
func (b *batcher) run(batch []*batchReq) {
	if len(batch) == 0 {
		return
	}
	if len(batch) == 1 {
		r := batch[0]
		b.rows(r.rows)
		r.out, r.err = b.m.Forward(nil, r.x, r.rows)
		close(r.done)
		return
	}
	in, out := b.m.InputDim(), b.m.OutputDim()
	total := 0
	for _, r := range batch {
		total += r.rows
	}
	b.rows(total)
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
