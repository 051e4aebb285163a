// Package nnbench measures a model's forward-pass latency per batch size.
//
// # Overview
//
// [Measure] times individual Forward calls of a dense model on random
// inputs, and [MeasureGraph] individual Run calls of a graph model, and
// both report the median and the 99th percentile per batch size. The CLI's `aiaas model
// bench` prints it, and the platform records it in a version's metadata at
// publish time, so users see a model's latency next to its accuracy.
//
// It is a measurement tool, not a test: figures depend on the machine and
// on what else runs on it. Kernel names which matrix kernel ran.
package nnbench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/aiaas/aiaas/internal/yield"
	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/nn/graph"
)

// Batch is the latency of one batch size.
type Batch struct {
	Batch    int   `json:"batch"`
	MedianNS int64 `json:"median_ns"`
	P99NS    int64 `json:"p99_ns"`
	MeanNS   int64 `json:"mean_ns"`
	Calls    int   `json:"calls"`
	// RowsPerSecond is Batch / median: the throughput at this batch size.
	RowsPerSecond float64 `json:"rows_per_second"`
}

// Options bounds a measurement; nil means the defaults.
type Options struct {
	// Budget is the time spent per batch size (default 1s).
	Budget time.Duration
	// MinCalls and MaxCalls bound the timed calls per batch size
	// (defaults 20 and 100,000); MinCalls wins over Budget.
	MinCalls, MaxCalls int
	// Seed makes the inputs reproducible.
	Seed uint64
}

// MaxBatch bounds the batch sizes Measure accepts.
const MaxBatch = 1 << 14

// Measure times m.Forward at each batch size.
func Measure(m *nn.Model, batches []int, opts *Options) ([]Batch, error) {
	o := opts.withDefaults()
	if len(batches) == 0 {
		return nil, errors.New("nnbench: no batch sizes")
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0))
	out := make([]Batch, 0, len(batches))
	for _, b := range batches {
		if b < 1 || b > MaxBatch {
			return nil, fmt.Errorf("nnbench: batch %d out of range 1..%d", b, MaxBatch)
		}
		x := make([]float32, b*m.InputDim())
		for i := range x {
			x[i] = rng.Float32()
		}
		dst := make([]float32, b*m.OutputDim())
		r, err := timeCalls(b, &o, func() error {
			_, err := m.Forward(dst, x, b)
			return err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func (o *Options) withDefaults() Options {
	d := Options{Budget: time.Second, MinCalls: 20, MaxCalls: 100_000, Seed: 1}
	if o != nil {
		if o.Budget > 0 {
			d.Budget = o.Budget
		}
		if o.MinCalls > 0 {
			d.MinCalls = o.MinCalls
		}
		if o.MaxCalls > 0 {
			d.MaxCalls = o.MaxCalls
		}
		d.Seed = o.Seed
	}
	return d
}

// timeCalls warms up and then times run, single calls, within o's budget.
func timeCalls(batch int, o *Options, run func() error) (Batch, error) {
	// Between calls (never inside a timed one), the loops give their
	// processor to whatever waits for it: a publish's measurement must
	// not hold the server's other requests for Go's 10 ms slices.
	var y yield.Point
	// Warm up: plans, pools, caches, branch predictors.
	warm := time.Now()
	for i := 0; i < 3 || time.Since(warm) < o.Budget/10; i++ {
		y.Maybe()
		if err := run(); err != nil {
			return Batch{}, err
		}
		if i > 1000 {
			break
		}
	}
	var times []int64
	start := time.Now()
	for len(times) < o.MaxCalls && (len(times) < o.MinCalls || time.Since(start) < o.Budget) {
		y.Maybe()
		t0 := time.Now()
		if err := run(); err != nil {
			return Batch{}, err
		}
		times = append(times, int64(time.Since(t0)))
	}
	return summarize(batch, times), nil
}

// MeasureGraph times m.Run on random inputs: shapes gives each graph
// input's shape (in the order of m.Inputs), and each entry of batches
// replaces the first dimension of every input whose first dimension is
// dynamic (-1); with no batches, the shapes are timed as given. Float
// inputs get uniform values in [0, 1), integer inputs zeros, so token ids
// and indices stay in range. The Batch's Batch field is the first
// dimension of the first input.
func MeasureGraph(m *graph.Model, shapes [][]int, batches []int, opts *Options) ([]Batch, error) {
	o := opts.withDefaults()
	ins := m.Inputs()
	if len(shapes) != len(ins) {
		return nil, fmt.Errorf("nnbench: %d shapes for a model with %d inputs", len(shapes), len(ins))
	}
	if len(batches) == 0 {
		batches = []int{0}
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0))
	var out []Batch
	for _, b := range batches {
		if b < 0 || b > MaxBatch {
			return nil, fmt.Errorf("nnbench: batch %d out of range 1..%d", b, MaxBatch)
		}
		x := make([]*graph.Tensor, len(ins))
		for i, v := range ins {
			shape := append([]int{}, shapes[i]...)
			if b > 0 && len(shape) > 0 && len(v.Shape) > 0 && v.Shape[0] < 0 {
				shape[0] = b
			}
			n := 1
			for _, d := range shape {
				if d < 0 || (d > 0 && n > (1<<28)/d) {
					return nil, fmt.Errorf("nnbench: input %q: shape %v too large", v.Name, shape)
				}
				n *= d
			}
			x[i] = graph.NewTensor(v.DType, shape...)
			if v.DType == graph.Float32 {
				for j := range x[i].Float32s() {
					x[i].Float32s()[j] = rng.Float32()
				}
			}
		}
		batch := 1
		if len(x) > 0 && len(x[0].Shape) > 0 {
			batch = x[0].Shape[0]
		}
		ctx := context.Background()
		var dst []*graph.Tensor
		r, err := timeCalls(batch, &o, func() error {
			var err error
			dst, err = m.Run(ctx, x, dst)
			return err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func summarize(batch int, times []int64) Batch {
	slices.Sort(times)
	var sum int64
	for _, t := range times {
		sum += t
	}
	med := times[len(times)/2]
	p99 := times[min(len(times)-1, (len(times)*99)/100)]
	r := Batch{Batch: batch, MedianNS: med, P99NS: p99, MeanNS: sum / int64(len(times)), Calls: len(times)}
	if med > 0 {
		r.RowsPerSecond = float64(batch) / (float64(med) / 1e9)
	}
	return r
}
