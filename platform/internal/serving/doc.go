// Package serving holds the mechanics of running a loaded model for many
// requests at once: the batchers that coalesce concurrent forward passes
// on one model version, and the per-request timings that the
// Server-Timing header reports.
//
// # Batching
//
// One GEMM over 32 rows costs far less than 32 GEMVs, and one [20, seq]
// pass of a text encoder keeps both cores busy where twenty [1, seq]
// passes each run small products on one. A [Batcher] coalesces the
// requests on a dense [nn.Model]; a [GraphBatcher] those on a graph
// [graph.Model], padding texts of different lengths. Each caller gets
// exactly the rows it sent, computed as they would be alone (to float32
// rounding: a batched product sums in another order).
//
// Neither batcher starts a goroutine: the request that opens a batch
// leads it, so a model evicted from the cache leaves nothing running.
//
// # What this package must not do
//
// It knows nothing of HTTP, tenants, audit or metrics: it imports nn,
// nn/graph and the standard library only. Batch sizes leave through the
// [Options.Observe] callback, and errors are returned as the model gave
// them for the platform to turn into statuses.
package serving

import (
	"time"
)

// DefaultMaxRows is the cap on a batch's rows when Options.MaxRows is 0.
const DefaultMaxRows = 64

// Options configure a Batcher or a GraphBatcher. The zero value means
// defaults: no window, DefaultMaxRows, one lane per GOMAXPROCS, no
// observer.
type Options struct {
	// Window is how long a request that opens a batch waits for company
	// before running what it has. A batch that fills up runs at once. A
	// longer window makes larger batches under load and makes a lone
	// request pay up to the window.
	Window time.Duration
	// MaxRows caps the rows of one coalesced batch; 0 means
	// DefaultMaxRows. A request of MaxRows rows or more runs alone: it is
	// a full batch by itself.
	MaxRows int
	// Lanes is how many batches of one graph model may run at once; 0
	// means GOMAXPROCS. A Batcher runs one batch at a time and ignores it.
	Lanes int
	// Observe, when not nil, is told the rows of every forward pass the
	// batcher runs, batched or alone (the platform's batch-size
	// histogram). It is called from the goroutine that runs the pass, so
	// it must be safe for concurrent use and quick.
	Observe func(rows int)
}

// withDefaults fills in what o leaves zero.
func (o Options) withDefaults() Options {
	if o.MaxRows == 0 {
		o.MaxRows = DefaultMaxRows
	}
	if o.Observe == nil {
		o.Observe = func(int) {}
	}
	return o
}
