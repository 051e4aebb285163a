package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/nn/nnbench"
)

func init() {
	register(&command{
		name:    "model bench",
		args:    "FILE",
		summary: "measure a model artifact's forward-pass latency per batch size",
		detail: `
Loads a safetensors model artifact and times its forward pass on random
inputs at each batch size: the median and the 99th percentile of single
calls, after a warm-up. The same figures are recorded in a version's
metadata when it is published, next to its accuracy.`,
		examples: []string{
			"aiaas model bench mnist.safetensors --batch 1,8,64 --output json",
			"aiaas model bench mnist.safetensors --batch 256 --duration 5s",
		},
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			batches := fs.String("batch", "1,8,64", "batch sizes, comma separated")
			dur := fs.Duration("duration", time.Second, "time spent per batch size")
			return func(ctx context.Context, c *cli, args []string) error {
				if len(args) != 1 {
					return usagef("want one model artifact file")
				}
				bs, err := parseInts(*batches)
				if err != nil || len(bs) == 0 {
					return usagef("--batch: want sizes like 1,8,64")
				}
				if *dur <= 0 {
					return usagef("--duration must be positive")
				}
				b, err := os.ReadFile(args[0])
				if err != nil {
					return &exitError{exitNotFound, err}
				}
				m, _, err := nn.ReadArtifact(b, nil)
				if err != nil {
					return &exitError{exitInvalid, err}
				}
				res, err := nnbench.Measure(m, bs, &nnbench.Options{Budget: *dur})
				if err != nil {
					return usagef("%v", err)
				}
				out := struct {
					Model   string          `json:"model"`
					Params  int             `json:"params"`
					Kernel  string          `json:"kernel"`
					Batches []nnbench.Batch `json:"batches"`
				}{args[0], m.NumParams(), kernelName(), res}
				return c.emit(out, func(w io.Writer) {
					fmt.Fprintf(w, "%s: %d parameters, kernel %s\n", args[0], m.NumParams(), out.Kernel)
					fmt.Fprintf(w, "%8s %12s %12s %14s\n", "batch", "median", "p99", "rows/s")
					for _, r := range res {
						fmt.Fprintf(w, "%8d %12s %12s %14.0f\n", r.Batch, time.Duration(r.MedianNS), time.Duration(r.P99NS), r.RowsPerSecond)
					}
				})
			}
		},
	})
}
