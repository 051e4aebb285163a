package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/nn/onnx"
)

var cmdModelExport = &command{
	name:    "model export",
	args:    "FILE",
	summary: "convert a trained artifact (dense or convolutional) to an ONNX model",
	detail: `
Reads a model artifact written by 'aiaas train' and writes it as ONNX
(opset 13, IR version 7): Gemm, Conv, MaxPool, AveragePool,
GlobalAveragePool, BatchNormalization and Flatten nodes with the weights
as initializers, dropout left out as at inference, the batch dimension
symbolic. ONNX Runtime, other runtimes and aiaas' own graph runtime run
it with the same outputs.`,
	examples: []string{
		"aiaas model export cnn.safetensors --out cnn.onnx",
	},
	setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		out := fs.String("out", "", "where to write the ONNX model (default: FILE with .onnx)")
		return func(ctx context.Context, c *cli, args []string) error {
			if len(args) != 1 {
				return usagef("want one artifact file")
			}
			b, err := os.ReadFile(args[0])
			if err != nil {
				return &exitError{exitInvalid, err}
			}
			m, _, err := nn.ReadArtifact(b, nil)
			if err != nil {
				return &exitError{exitInvalid, fmt.Errorf("%s: %w (only artifacts of 'aiaas train' export; a graph artifact came from ONNX already)", args[0], err)}
			}
			var buf bytes.Buffer
			if err := onnx.Export(&buf, m); err != nil {
				return err
			}
			path := *out
			if path == "" {
				path = args[0][:len(args[0])-len(filepath.Ext(args[0]))] + ".onnx"
			}
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				return err
			}
			spec := m.Spec()
			return c.emit(map[string]any{"artifact": args[0], "onnx": path, "bytes": buf.Len(),
				"input": spec.Inputs[0], "output": spec.Outputs[0]}, func(w io.Writer) {
				fmt.Fprintf(w, "wrote %s (%d bytes): %s %v → %s %v\n", path, buf.Len(),
					spec.Inputs[0].Name, spec.Inputs[0].Shape, spec.Outputs[0].Name, spec.Outputs[0].Shape)
			})
		}
	},
}
