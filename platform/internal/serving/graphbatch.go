package serving

import (
	"context"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aiaas/aiaas/nn/graph"
)

// GraphBatcher coalesces concurrent runs of one graph model into one
// batched run: twenty sentences through a MiniLM encoder as one [20, seq]
// pass keep both cores busy on large products, where twenty [1, seq] passes
// each run small ones on one core.
//
// It batches continuously, as text-embeddings-inference does: at most
// Options.Lanes batches run at once (GOMAXPROCS: small batches run on one core
// each; large ones spread their products over all of them), and one
// forms at a time. Requests that arrive while every lane is busy queue;
// when a batch finishes, the oldest waiting request becomes the next
// leader and runs everything queued that fits with it. So batches grow
// with load by themselves, and a request that finds a lane free waits at
// most the window for company. There is no background goroutine:
// leadership passes from request to request, so an evicted model leaves
// nothing running.
//
// Requests fit together when their inputs have the same shapes but for
// the first (batch) dimension. For a text encoder — every input an integer
// [batch, seq] matrix, one of them named attention_mask — requests of
// different lengths fit too: each is padded to the longest with zeros
// (mask 0: the padding is attended by no real token), and every output
// whose second dimension is the sequence is cut back to the request's own
// length. A batched run that fails, or whose outputs do not keep the batch
// dimension, is rerun request by request, so one bad request never fails
// the others and a graph that mixes its rows is never answered wrongly.
//
// A GraphBatcher is safe for concurrent use.
type GraphBatcher struct {
	m       *graph.Model
	window  time.Duration
	maxRows int
	observe func(rows int)

	pad    bool   // text encoder: [batch, seq] integer inputs may be padded
	seqOut []bool // per output: dim 1 is the sequence (cut after padding)

	lanes int // batches that may run at once

	mu         sync.Mutex
	running    int         // leaders collecting, running or handed the lead
	collecting *graphReq   // the leader waiting out its window, if any
	queue      []*graphReq // FIFO of requests not yet taken into a batch
}

// graphReq is one caller's inputs, its place in the queue or a batch,
// and where its answer goes.
type graphReq struct {
	in   []*graph.Tensor
	key  string
	rows int
	seq  int // padded models: the request's sequence length

	out   []*graph.Tensor
	err   error
	leads bool        // a leader: never taken into another's batch (under mu)
	batch []*graphReq // a handed leader's batch, taken when it was handed
	done  chan struct{}
	lead  chan struct{} // buffered: this request was handed the lead
	full  chan struct{} // closed when a collecting leader's batch is full
}

// NewGraphBatcher returns a GraphBatcher over m, or nil for a model whose
// inputs do not all have a dynamic first dimension, or whose outputs
// declare another: those cannot be batched, and the caller runs them
// directly. (An output of undeclared shape is checked at each run.)
func NewGraphBatcher(m *graph.Model, o Options) *GraphBatcher {
	ins, outs := m.Inputs(), m.Outputs()
	for _, v := range ins {
		if len(v.Shape) == 0 || v.Shape[0] >= 0 {
			return nil
		}
	}
	for _, v := range outs {
		if v.Shape != nil && (len(v.Shape) == 0 || v.Shape[0] >= 0) {
			return nil
		}
	}
	if batchDim := dimName(ins[0], 0); batchDim != "" {
		for _, v := range append(slices.Clone(ins), outs...) {
			if v.Shape != nil && dimName(v, 0) != batchDim {
				return nil // named dims say some first dimension is not the batch
			}
		}
	}
	o = o.withDefaults()
	lanes := o.Lanes
	if lanes <= 0 {
		lanes = max(1, runtime.GOMAXPROCS(0))
	}
	b := &GraphBatcher{m: m, window: o.Window, maxRows: o.MaxRows, observe: o.Observe, lanes: lanes}
	b.pad, b.seqOut = textEncoder(ins, outs)
	return b
}

// dimName is v's name for dimension i, "" when unnamed.
func dimName(v graph.Value, i int) string {
	if i < len(v.Dims) {
		return v.Dims[i]
	}
	return ""
}

// textEncoder reports whether the model takes only integer [batch, seq]
// inputs, one named attention_mask, and declares the shape of every
// output; and which outputs carry the sequence as their second dimension:
// dynamic there and, when the export named its dimensions, named as the
// mask's. (An output of undeclared shape could be [batch, hidden] with
// hidden equal to the padded length: it turns padding off.)
func textEncoder(ins, outs []graph.Value) (bool, []bool) {
	mask := slices.IndexFunc(ins, func(v graph.Value) bool { return v.Name == "attention_mask" })
	if mask < 0 {
		return false, nil
	}
	seq := dimName(ins[mask], 1)
	for _, v := range ins {
		if len(v.Shape) != 2 || v.Shape[1] >= 0 || (v.DType != graph.Int64 && v.DType != graph.Int32) || dimName(v, 1) != seq {
			return false, nil
		}
	}
	seqOut := make([]bool, len(outs))
	for i, v := range outs {
		if v.Shape == nil {
			return false, nil
		}
		seqOut[i] = len(v.Shape) >= 2 && v.Shape[1] < 0 && dimName(v, 1) == seq
	}
	return true, seqOut
}

// Do runs the model on in, alone or in one batched run with other
// callers' inputs, and returns this caller's outputs: exactly what
// running in alone returns, to float32 rounding. Inputs the model would
// refuse run alone, for their own error.
//
// When ctx ends first Do returns ctx.Err(): a request still queued leaves
// the queue, one already in a batch has its rows computed and dropped.
// The batch itself runs under no caller's context.
func (b *GraphBatcher) Do(ctx context.Context, in []*graph.Tensor) ([]*graph.Tensor, error) {
	r, ok := b.request(in)
	if !ok || r.rows >= b.maxRows {
		b.observe(max(r.rows, 1))
		return b.m.Run(ctx, in, nil)
	}
	b.mu.Lock()
	b.queue = append(b.queue, r)
	fresh := false
	switch {
	case b.collecting != nil:
		// A batch is forming: join it, and say when it is full.
		if c := b.collecting; b.queuedRows(c) >= b.maxRows {
			close(c.full)
			b.collecting = nil
		}
	case b.running < b.lanes:
		b.running++
		r.leads, fresh = true, true
		if b.window > 0 {
			r.full = make(chan struct{})
			b.collecting = r
		}
	}
	b.mu.Unlock()
	if fresh {
		b.lead(r)
		return r.out, r.err
	}
	select {
	case <-r.done:
		return r.out, r.err
	case <-r.lead:
		b.lead(r)
		<-r.done
		return r.out, r.err
	case <-ctx.Done():
	}
	b.mu.Lock()
	if r.leads {
		// Handed the lead as the client left: lead anyway, it holds a
		// lane and the others wait on it.
		b.mu.Unlock()
		<-r.lead
		b.lead(r)
		return nil, ctx.Err()
	}
	if i := slices.Index(b.queue, r); i >= 0 {
		b.queue = slices.Delete(b.queue, i, i+1)
	}
	// Otherwise a batch holds it: its rows are computed and dropped.
	b.mu.Unlock()
	return nil, ctx.Err()
}

// request checks in against the signature and keys it; ok is false for
// inputs the model will refuse, which then run alone for their error.
func (b *GraphBatcher) request(in []*graph.Tensor) (*graphReq, bool) {
	ins := b.m.Inputs()
	if len(in) != len(ins) {
		return &graphReq{}, false
	}
	r := &graphReq{in: in, seq: -1}
	key := make([]byte, 0, 64)
	for i, t := range in {
		if t == nil || t.DType != ins[i].DType || len(t.Shape) != len(ins[i].Shape) || t.Shape[0] < 1 || len(t.Bytes()) != t.Numel()*t.DType.Size() {
			return r, false
		}
		if i == 0 {
			r.rows = t.Shape[0]
		} else if t.Shape[0] != r.rows {
			return r, false
		}
		for j, d := range t.Shape[1:] {
			if b.pad && j == 0 {
				if d < 1 || (r.seq >= 0 && d != r.seq) {
					return r, false // an empty text runs alone: padded, it would not fail as it does
				}
				r.seq = d
				continue
			}
			key = strconv.AppendInt(key, int64(d), 10)
			key = append(key, ',')
		}
		key = append(key, ';')
	}
	r.key = string(key)
	r.done = make(chan struct{})
	r.lead = make(chan struct{}, 1)
	return r, true
}

// queuedRows counts the queued rows that would batch with leader c. The
// caller holds mu.
func (b *GraphBatcher) queuedRows(c *graphReq) int {
	n := 0
	for _, q := range b.queue {
		if q.key == c.key && (q == c || !q.leads) {
			n += q.rows
		}
	}
	return n
}

// lead runs self's batch and passes the lead on. A leader that found a
// lane free (self.full set) first waits up to the window for company and
// then takes its batch; a handed leader's batch was taken when it was
// handed. Leaders hold a lane each; a lane is given up when nothing is
// left to run, and a free lane goes to the oldest queued request when a
// backlog builds.
func (b *GraphBatcher) lead(self *graphReq) {
	if self.full != nil {
		t := time.NewTimer(b.window)
		select {
		case <-self.full:
		case <-t.C:
		}
		t.Stop()
	}
	b.mu.Lock()
	if b.collecting == self {
		b.collecting = nil
	}
	batch := self.batch
	if batch == nil {
		batch = b.take(self)
	}
	if next := b.nextLeader(); next != nil && b.running < b.lanes && b.collecting == nil {
		b.running++
		b.hand(next)
	}
	b.mu.Unlock()

	b.run(batch)

	b.mu.Lock()
	if next := b.nextLeader(); next != nil {
		b.hand(next) // this lane passes to it
	} else {
		b.running--
	}
	b.mu.Unlock()
}

// take removes leader's batch from the queue: leader first, then every
// queued request with its key while the rows fit. The caller holds mu.
func (b *GraphBatcher) take(leader *graphReq) []*graphReq {
	batch := []*graphReq{leader}
	rows := leader.rows
	rest := b.queue[:0]
	for _, q := range b.queue {
		switch {
		case q == leader:
		case q.key == leader.key && !q.leads && rows+q.rows <= b.maxRows:
			batch = append(batch, q)
			rows += q.rows
		default:
			rest = append(rest, q)
		}
	}
	clear(b.queue[len(rest):])
	b.queue = rest
	return batch
}

// nextLeader is the oldest queued request that is not a leader (the one
// collecting is). The caller holds mu.
func (b *GraphBatcher) nextLeader() *graphReq {
	for _, q := range b.queue {
		if !q.leads {
			return q
		}
	}
	return nil
}

// hand makes q, a queued request, a leader with its batch. The caller
// holds mu.
func (b *GraphBatcher) hand(q *graphReq) {
	q.leads = true
	q.batch = b.take(q)
	q.lead <- struct{}{}
}

// run computes one batch and answers every request in it. The batch runs
// under no request's context: one client leaving does not cancel the
// others' work.
func (b *GraphBatcher) run(batch []*graphReq) {
	ctx := context.Background()
	rows := 0
	for _, r := range batch {
		rows += r.rows
	}
	b.observe(rows)
	if len(batch) == 1 {
		r := batch[0]
		r.out, r.err = b.m.Run(ctx, r.in, nil)
		close(r.done)
		return
	}
	seq := 0
	for _, r := range batch {
		seq = max(seq, r.seq)
	}
	in := make([]*graph.Tensor, len(batch[0].in))
	for i := range in {
		in[i] = b.stack(batch, i, rows, seq)
	}
	out, err := b.m.Run(ctx, in, nil)
	var parts [][]*graph.Tensor
	if err == nil {
		parts = b.split(batch, out, rows, seq)
	}
	for k, r := range batch {
		if parts == nil {
			// Rerun alone: each request gets its own answer or error.
			r.out, r.err = b.m.Run(ctx, r.in, nil)
		} else {
			r.out = parts[k]
		}
		close(r.done)
	}
}

// stack concatenates input i of every request along the first dimension,
// padding a text encoder's sequences to seq with zeros.
func (b *GraphBatcher) stack(batch []*graphReq, i, rows, seq int) *graph.Tensor {
	first := batch[0].in[i]
	shape := slices.Clone(first.Shape)
	shape[0] = rows
	if b.pad {
		shape[1] = seq
	}
	t := graph.NewTensor(first.DType, shape...)
	dst := t.Bytes()
	rowBytes := len(dst) / rows
	off := 0
	for _, r := range batch {
		src := r.in[i].Bytes()
		if !b.pad || r.seq == seq {
			off += copy(dst[off:], src)
			continue
		}
		n := len(src) / r.rows // a row's bytes, shorter than rowBytes
		for k := range r.rows {
			copy(dst[off:], src[k*n:(k+1)*n])
			off += rowBytes // the rest of the row stays zero
		}
	}
	return t
}

// split cuts the batched outputs back into each request's, or returns nil
// when an output lost the batch dimension.
func (b *GraphBatcher) split(batch []*graphReq, out []*graph.Tensor, rows, seq int) [][]*graph.Tensor {
	for _, o := range out {
		if len(o.Shape) == 0 || o.Shape[0] != rows {
			return nil
		}
	}
	parts := make([][]*graph.Tensor, len(batch))
	for k := range parts {
		parts[k] = make([]*graph.Tensor, len(out))
	}
	for j, o := range out {
		cut := b.pad && b.seqOut[j] && len(o.Shape) >= 2
		if cut && o.Shape[1] != seq {
			return nil
		}
		src := o.Bytes()
		rowBytes := len(src) / rows
		off := 0
		for k, r := range batch {
			shape := slices.Clone(o.Shape)
			shape[0] = r.rows
			if cut {
				shape[1] = r.seq
			}
			t := graph.NewTensor(o.DType, shape...)
			dst := t.Bytes()
			if !cut || r.seq == seq {
				off += copy(dst, src[off:off+len(dst)])
			} else {
				n := len(dst) / r.rows
				for i := range r.rows {
					copy(dst[i*n:(i+1)*n], src[off:])
					off += rowBytes
				}
			}
			parts[k][j] = t
		}
	}
	return parts
}
