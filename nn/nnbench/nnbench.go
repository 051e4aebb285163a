// Package nnbench measures a model's forward-pass latency per batch size.
//
// # Overview
//
// [Measure] times individual Forward calls on random inputs and reports the
// median and the 99th percentile per batch size. The CLI's `aiaas model
// bench` prints it, and the platform records it in a version's metadata at
// publish time, so users see a model's latency next to its accuracy.
//
// It is a measurement tool, not a test: figures depend on the machine and
// on what else runs on it. Kernel names which matrix kernel ran.
package nnbench

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/aiaas/aiaas/nn"
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
	o := Options{Budget: time.Second, MinCalls: 20, MaxCalls: 100_000, Seed: 1}
	if opts != nil {
		if opts.Budget > 0 {
			o.Budget = opts.Budget
		}
		if opts.MinCalls > 0 {
			o.MinCalls = opts.MinCalls
		}
		if opts.MaxCalls > 0 {
			o.MaxCalls = opts.MaxCalls
		}
		o.Seed = opts.Seed
	}
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
		// Warm up: pools, caches, branch predictors.
		warm := time.Now()
		for i := 0; i < 3 || time.Since(warm) < o.Budget/10; i++ {
			if _, err := m.Forward(dst, x, b); err != nil {
				return nil, err
			}
			if i > 1000 {
				break
			}
		}
		var times []int64
		start := time.Now()
		for len(times) < o.MaxCalls && (len(times) < o.MinCalls || time.Since(start) < o.Budget) {
			t0 := time.Now()
			if _, err := m.Forward(dst, x, b); err != nil {
				return nil, err
			}
			times = append(times, int64(time.Since(t0)))
		}
		out = append(out, summarize(b, times))
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
