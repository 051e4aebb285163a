package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aiaas/aiaas/internal/safetensors"
	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/nn/graph"
	"github.com/aiaas/aiaas/nn/nnbench"
	"github.com/aiaas/aiaas/nn/onnx"
)

// shapeFlags collects --shape values: "1,3,224,224" for a model with one
// input, "name=1,128" per input otherwise.
type shapeFlags []string

func (s *shapeFlags) String() string     { return strings.Join(*s, " ") }
func (s *shapeFlags) Set(v string) error { *s = append(*s, v); return nil }

var cmdModelBench = &command{
	name:    "model bench",
	args:    "FILE",
	summary: "measure a model's forward-pass latency per batch size",
	detail: `
Loads a model — a safetensors artifact (dense or graph) or an ONNX file,
converted as an upload would be — and times its forward pass on random
inputs at each batch size: the median and the 99th percentile of single
calls, after a warm-up. The same figures are recorded in a version's
metadata when it is published, next to its accuracy.

For a graph model, --shape gives the input's shape (repeat it as
--shape NAME=DIMS for a model with several inputs); --batch then replaces
the first dimension of inputs whose first dimension is dynamic. Inputs
whose dimensions are all static need no --shape.`,
	examples: []string{
		"aiaas model bench mnist.safetensors --batch 1,8,64 --output json",
		"aiaas model bench resnet18.onnx --shape 1,3,224,224",
		"aiaas model bench bert.safetensors --shape input_ids=1,128 --shape attention_mask=1,128",
	},
	setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		batches := fs.String("batch", "", "batch sizes, comma separated (default 1,8,64; for graph models: the --shape as given)")
		dur := fs.Duration("duration", time.Second, "time spent per batch size")
		var shapes shapeFlags
		fs.Var(&shapes, "shape", "input shape of a graph model, e.g. 1,3,224,224 or NAME=1,128 (repeatable)")
		profile := fs.Bool("profile", false, "graph models: also time each operator (at the first --batch size)")
		return func(ctx context.Context, c *cli, args []string) error {
			if len(args) != 1 {
				return usagef("want one model file")
			}
			bs, err := parseInts(*batches)
			if err != nil {
				return usagef("--batch: want sizes like 1,8,64")
			}
			if *dur <= 0 {
				return usagef("--duration must be positive")
			}
			b, err := os.ReadFile(args[0])
			if err != nil {
				return &exitError{exitNotFound, err}
			}
			if !isSafetensors(b) {
				if b, err = onnx.Convert(b, nil); err != nil {
					return &exitError{exitInvalid, err}
				}
			}
			if isGraphArtifact(b) {
				return benchGraph(ctx, c, args[0], b, shapes, bs, *dur, *profile)
			}
			if len(shapes) > 0 || *profile {
				return usagef("--shape and --profile are for graph models; %s is a dense model (use --batch)", args[0])
			}
			if len(bs) == 0 {
				bs = []int{1, 8, 64}
			}
			m, _, err := nn.ReadArtifact(b, nil)
			if err != nil {
				return &exitError{exitInvalid, err}
			}
			res, err := nnbench.Measure(m, bs, &nnbench.Options{Budget: *dur})
			if err != nil {
				return usagef("%v", err)
			}
			return emitBench(c, args[0], int64(m.NumParams()), nil, res, nil)
		}
	},
}

// isSafetensors tells an artifact from an ONNX file: safetensors starts
// with a little-endian header length and then '{'.
func isSafetensors(b []byte) bool { return len(b) > 8 && b[8] == '{' }

func isGraphArtifact(b []byte) bool {
	f, err := safetensors.Decode(b, nil)
	return err == nil && graph.IsArtifact(f.Metadata)
}

func benchGraph(ctx context.Context, c *cli, file string, b []byte, shapes shapeFlags, bs []int, dur time.Duration, profile bool) error {
	m, _, err := graph.ReadArtifact(b, nil)
	if err != nil {
		return &exitError{exitInvalid, err}
	}
	ins := m.Inputs()
	sh, err := graphShapes(ins, shapes)
	if err != nil {
		return usagef("%v", err)
	}
	res, err := nnbench.MeasureGraph(m, sh, bs, &nnbench.Options{Budget: dur})
	if err != nil {
		if errors.Is(err, nn.ErrShape) {
			return &exitError{exitInvalid, err}
		}
		return usagef("%v", err)
	}
	var prof []opTime
	if profile {
		in := make([]*graph.Tensor, len(sh))
		for i, v := range m.Inputs() {
			shape := append([]int{}, sh[i]...)
			if len(bs) > 0 && len(shape) > 0 && len(v.Shape) > 0 && v.Shape[0] < 0 {
				shape[0] = bs[0]
			}
			in[i] = graph.NewTensor(v.DType, shape...)
		}
		steps, err := m.Profile(ctx, in, 10)
		if err != nil {
			return &exitError{exitInvalid, err}
		}
		prof = byOperator(steps, 10)
	}
	return emitBench(c, file, m.NumParams(), sh, res, prof)
}

// opTime is one operator's share of a profiled run.
type opTime struct {
	Op      string  `json:"op"`
	Nodes   int     `json:"nodes"`
	MeanNS  int64   `json:"mean_ns"` // per run, all its nodes
	Share   float64 `json:"share"`
	GFLOPs  float64 `json:"gflop_per_s,omitempty"`
	Slowest string  `json:"slowest_node"`
}

// byOperator sums a profile per operator, largest first.
func byOperator(steps []graph.StepProfile, runs int) []opTime {
	idx := map[string]int{}
	var out []opTime
	var total time.Duration
	slowest := map[string]time.Duration{}
	flops := map[string]float64{}
	for _, s := range steps {
		i, ok := idx[s.Op]
		if !ok {
			i = len(out)
			idx[s.Op] = i
			out = append(out, opTime{Op: s.Op})
		}
		out[i].Nodes++
		out[i].MeanNS += int64(s.Time)
		flops[s.Op] += s.FLOPs * float64(runs)
		if s.Time > slowest[s.Op] {
			slowest[s.Op], out[i].Slowest = s.Time, s.Node
		}
		total += s.Time
	}
	for i := range out {
		if out[i].MeanNS > 0 {
			out[i].GFLOPs = flops[out[i].Op] / float64(out[i].MeanNS)
		}
		if total > 0 {
			out[i].Share = float64(out[i].MeanNS) / float64(total)
		}
		out[i].MeanNS /= int64(runs)
	}
	slices.SortFunc(out, func(a, b opTime) int { return int(b.MeanNS - a.MeanNS) })
	return out
}

// graphShapes resolves --shape values against the model's inputs: a
// static input needs none; a dynamic one needs one.
func graphShapes(ins []graph.Value, flags shapeFlags) ([][]int, error) {
	named := map[string][]int{}
	var anon []int
	for _, f := range flags {
		name, dims, hasName := strings.Cut(f, "=")
		if !hasName {
			dims, name = name, ""
		}
		d, err := parseShape(dims)
		if err != nil {
			return nil, fmt.Errorf("--shape %q: %v", f, err)
		}
		if name == "" {
			if anon != nil {
				return nil, fmt.Errorf("--shape given twice without an input name")
			}
			anon = d
			continue
		}
		named[name] = d
	}
	if anon != nil && len(ins) != 1 {
		return nil, fmt.Errorf("the model has %d inputs: name them, --shape NAME=DIMS", len(ins))
	}
	out := make([][]int, len(ins))
	for i, v := range ins {
		d, ok := named[v.Name]
		delete(named, v.Name)
		if anon != nil {
			d, ok = anon, true
		}
		if !ok {
			d = make([]int, len(v.Shape))
			for j, x := range v.Shape {
				switch {
				case x >= 0:
					d[j] = int(x)
				case j == 0:
					d[j] = 1
				default:
					return nil, fmt.Errorf("input %q has shape %v: give --shape %s=DIMS", v.Name, v.Shape, v.Name)
				}
			}
		}
		out[i] = d
	}
	for name := range named {
		return nil, fmt.Errorf("the model has no input %q", name)
	}
	return out, nil
}

func parseShape(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("want dimensions like 1,3,224,224")
		}
		out = append(out, n)
	}
	return out, nil
}

func emitBench(c *cli, file string, params int64, shapes [][]int, res []nnbench.Batch, prof []opTime) error {
	out := struct {
		Model   string          `json:"model"`
		Params  int64           `json:"params"`
		Kernel  string          `json:"kernel"`
		Shapes  [][]int         `json:"shapes,omitempty"`
		Batches []nnbench.Batch `json:"batches"`
		Profile []opTime        `json:"profile,omitempty"`
	}{file, params, kernelName(), shapes, res, prof}
	return c.emit(out, func(w io.Writer) {
		fmt.Fprintf(w, "%s: %d parameters, kernel %s\n", file, params, out.Kernel)
		fmt.Fprintf(w, "%8s %12s %12s %14s\n", "batch", "median", "p99", "rows/s")
		for _, r := range res {
			fmt.Fprintf(w, "%8d %12s %12s %14.0f\n", r.Batch, time.Duration(r.MedianNS), time.Duration(r.P99NS), r.RowsPerSecond)
		}
		if len(prof) > 0 {
			fmt.Fprintf(w, "\n%-24s %6s %12s %7s %10s  %s\n", "operator", "nodes", "per run", "share", "GFLOP/s", "slowest node")
			for _, p := range prof {
				fmt.Fprintf(w, "%-24s %6d %12s %6.1f%% %10.1f  %s\n", p.Op, p.Nodes, time.Duration(p.MeanNS), 100*p.Share, p.GFLOPs, p.Slowest)
			}
		}
	})
}
