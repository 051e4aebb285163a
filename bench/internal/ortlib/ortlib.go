// Package ortlib finds and starts the ONNX Runtime the benchmarks compare
// against (the CPU library inside the npm package onnxruntime-node, loaded
// through github.com/yalue/onnxruntime_go) and measures its SGEMM, the
// best matrix product on this machine, for the harnesses' "peak".
//
// # Overview
//
// Find looks for the library under node_modules from the working directory
// and its parents, so a harness finds it from bench/, from the repository's
// root and from its own folder under go test. Init loads it (the library is
// opened with dlopen at that moment, not at program start: a process that
// never calls Init has no ONNX Runtime in it). Options builds the session
// options of the comparisons; PeakSGEMM times a square product in a session.
package ortlib

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/nn/onnx"
)

// libGlob is where onnxruntime-node keeps its CPU library, relative to a
// folder holding node_modules.
const libGlob = "node_modules/onnxruntime-node/bin/napi-v*/linux/x64/libonnxruntime.so*"

// Find returns the path of libonnxruntime.so under node_modules (or
// bench/node_modules) of the working directory or one of its parents, or
// "" when npm ci has not been run in bench/.
func Find() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		for _, pat := range []string{libGlob, filepath.Join("bench", libGlob)} {
			if m, _ := filepath.Glob(filepath.Join(dir, pat)); len(m) > 0 {
				return m[0]
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Init loads the library at lib (Find's when empty) and starts ONNX
// Runtime's environment. Call ort.DestroyEnvironment when done.
func Init(lib string) error {
	if lib == "" {
		lib = Find()
	}
	if lib == "" {
		return fmt.Errorf("libonnxruntime.so not found under node_modules/onnxruntime-node: run `npm ci --ignore-scripts` in bench/ (ONNXRUNTIME_NODE_INSTALL=skip) or pass -lib")
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(); err != nil {
		return fmt.Errorf("onnxruntime %s: %w", lib, err)
	}
	return nil
}

// Options returns session options for the CPU provider with intra intra-op
// threads (0: ONNX Runtime's default pool) and one inter-op thread when
// intra > 0, graph optimizations at their default level, all.
func Options(intra int) (*ort.SessionOptions, error) {
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	if err := opts.SetGraphOptimizationLevel(ort.GraphOptimizationLevelEnableAll); err != nil {
		opts.Destroy()
		return nil, err
	}
	if intra > 0 {
		if err := opts.SetIntraOpNumThreads(intra); err != nil {
			opts.Destroy()
			return nil, err
		}
		if err := opts.SetInterOpNumThreads(1); err != nil {
			opts.Destroy()
			return nil, err
		}
	}
	return opts, nil
}

// PeakSGEMM returns ONNX Runtime's median GFLOP/s over reps runs (after a
// warm-up) of an n×n·n×n float32 product: a one-layer linear model exported
// by nn/onnx (a Gemm node, which MLAS computes), with intra intra-op
// threads as in Options.
func PeakSGEMM(n, intra, reps int) (float64, error) {
	pm, err := nn.New(nn.MLP("gemm", n, nil, nn.ActLinear, n, nn.ActLinear), 1)
	if err != nil {
		return 0, err
	}
	var b bytes.Buffer
	if err := onnx.Export(&b, pm); err != nil {
		return 0, err
	}
	spec := pm.Spec()
	x := make([]float32, n*n)
	for i := range x {
		x[i] = float32(i%7) / 7
	}
	xt, err := ort.NewTensor(ort.NewShape(int64(n), int64(n)), x)
	if err != nil {
		return 0, err
	}
	defer xt.Destroy()
	yt, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(n), int64(n)))
	if err != nil {
		return 0, err
	}
	defer yt.Destroy()
	opts, err := Options(intra)
	if err != nil {
		return 0, err
	}
	defer opts.Destroy()
	s, err := ort.NewAdvancedSessionWithONNXData(b.Bytes(), []string{spec.Inputs[0].Name}, []string{spec.Outputs[0].Name},
		[]ort.Value{xt}, []ort.Value{yt}, opts)
	if err != nil {
		return 0, err
	}
	defer s.Destroy()
	if err := s.Run(); err != nil {
		return 0, err
	}
	g := make([]float64, max(reps, 1))
	for i := range g {
		t := time.Now()
		if err := s.Run(); err != nil {
			return 0, err
		}
		g[i] = 2 * float64(n) * float64(n) * float64(n) / time.Since(t).Seconds() / 1e9
	}
	sort.Float64s(g)
	return g[len(g)/2], nil
}
