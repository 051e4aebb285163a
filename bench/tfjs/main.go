// Command tfjs compares aiaas training with the TensorFlow.js port of the
// same Keras recipe, back to back on the same MNIST files: 784-128-128-10,
// relu, softmax, Adam 0.001, batch 32, the same number of epochs.
//
// aiaas runs twice: as the `aiaas train` command (-aiaas, whatever BLAS the
// CLI registers) and in process through platform/training — the code the
// CLI calls — with nn/kernels registered, so the effect of the SIMD kernels
// shows before the CLI adopts them. Then node runs mnist_tfjs.js. Wall time
// per epoch (median over epochs, the first included) and test accuracy go
// to -out with the ratios.
//
//	go build -o bin/aiaas ../cmd/aiaas && go run ./tfjs -aiaas bin/aiaas -epochs 5
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aiaas/aiaas/bench/internal/machine"
	"github.com/aiaas/aiaas/nn/dataset"
	"github.com/aiaas/aiaas/platform/training"
)

type epoch struct {
	Epoch    int     `json:"epoch"`
	Loss     float64 `json:"loss"`
	Accuracy float64 `json:"accuracy"`
	Seconds  float64 `json:"seconds"`
}

type run struct {
	Engine         string  `json:"engine"`
	Command        string  `json:"command"`
	TestAccuracy   float64 `json:"test_accuracy"`
	WallSeconds    float64 `json:"wall_seconds"`
	Epochs         []epoch `json:"epochs"`
	MedianEpochSec float64 `json:"median_epoch_seconds"`
	SpeedupVsTFJS  float64 `json:"speedup_vs_tfjs"` // tfjs median epoch / this median epoch: > 1 means faster than TF.js
	GFLOPs         float64 `json:"gflops"`          // training FLOPs per second of the median epoch
	FracPeak       float64 `json:"fraction_of_theoretical_peak"`
	Extra          any     `json:"extra,omitempty"`
}

type result struct {
	Command string       `json:"command"`
	Date    string       `json:"date"`
	Machine machine.Info `json:"machine"`
	Recipe  string       `json:"recipe"`
	Runs    []*run       `json:"runs"`
}

func main() {
	bin := flag.String("aiaas", "", "aiaas binary (go build -o bin/aiaas ./cmd/aiaas); empty skips the CLI run")
	epochs := flag.Int("epochs", 5, "epochs for every engine")
	dir := flag.String("mnist", "", "MNIST folder (default: dataset.MNISTDir)")
	script := flag.String("script", "tfjs/mnist_tfjs.js", "the TF.js script (run from bench/)")
	out := flag.String("out", "results/train.json", "results file")
	flag.Parse()
	log.SetFlags(0)
	if *dir == "" {
		d, err := dataset.MNISTDir()
		if err != nil {
			log.Fatal(err)
		}
		*dir = d
	}
	// "mnist" is the train/t10k pair of the folder dataset.MNISTDir finds,
	// which -mnist pins through AIAAS_MNIST_DIR for the CLI too.
	os.Setenv("AIAAS_MNIST_DIR", *dir)
	res := result{
		Command: "go run ./tfjs " + strings.Join(os.Args[1:], " "),
		Date:    time.Now().UTC().Format(time.RFC3339), Machine: machine.Describe(),
		Recipe: fmt.Sprintf("MNIST 784-128(relu)-128(relu)-10(softmax), Adam 0.001/0.9/0.999/1e-7, Glorot uniform, batch 32, %d epochs, 60000 train / 10000 test", *epochs),
	}
	// FLOPs of one training epoch: forward + backward ≈ 3 × forward GEMMs.
	perSample := 2.0 * (784*128 + 128*128 + 128*10)
	epochFLOPs := 3 * perSample * 60000

	if *bin != "" {
		args := []string{"train", "--dataset", "mnist", "--layers", "128,128", "--activation", "relu", "--optimizer", "adam",
			"--lr", "0.001", "--batch-size", "32", "--epochs", strconv.Itoa(*epochs), "--seed", "1",
			"--out", filepath.Join(os.TempDir(), "bench-mnist.safetensors"), "--output", "json"}
		var r run
		if err := runJSON(*bin, args, &r); err != nil {
			log.Fatalf("aiaas train: %v", err)
		}
		r.Engine, r.Command = "aiaas train (CLI)", *bin+" "+strings.Join(args, " ")
		res.Runs = append(res.Runs, &r)
	}

	if err := machine.UseBLAS("kernels"); err != nil {
		log.Fatal(err)
	}
	train, test, name, err := training.LoadLocal("mnist", "", 0, 1)
	if err != nil {
		log.Fatal(err)
	}
	req := training.Request{Model: name, Dataset: "mnist", Layers: []int{128, 128}, Activation: "relu", Optimizer: "adam",
		LearningRate: 0.001, BatchSize: 32, Epochs: *epochs, Seed: 1}
	req.Defaults()
	if err := req.Validate(); err != nil {
		log.Fatal(err)
	}
	inproc := func(when string) {
		_, _, tr, err := training.Run(context.Background(), req, train, test, nil)
		if err != nil {
			log.Fatal(err)
		}
		r := &run{Engine: "aiaas in process, nn/kernels (" + when + " TF.js)", Command: "training.Run (same request as the CLI)", TestAccuracy: tr.TestAccuracy, WallSeconds: tr.WallSeconds}
		for _, e := range tr.Epochs {
			r.Epochs = append(r.Epochs, epoch{e.Epoch, e.Loss, e.Accuracy, e.Seconds})
		}
		res.Runs = append(res.Runs, r)
	}
	// aiaas runs before and after TF.js: the load of a shared machine
	// drifts over the minutes a TF.js run takes, and bracketing it shows
	// by how much.
	inproc("before")
	var t run
	var extra map[string]any
	if err := runJSON("node", []string{*script, *dir, strconv.Itoa(*epochs)}, &t, &extra); err != nil {
		log.Fatalf("tfjs: %v", err)
	}
	t.Engine, t.Command = "TensorFlow.js wasm", "node "+*script+" "+*dir+" "+strconv.Itoa(*epochs)
	delete(extra, "epochs")
	t.Extra = extra
	res.Runs = append(res.Runs, &t)
	inproc("after")

	for _, r := range res.Runs {
		if len(r.Epochs) == 0 {
			log.Fatalf("%s: no epochs reported", r.Engine)
		}
		r.MedianEpochSec = medianEpoch(r.Epochs)
		r.GFLOPs = epochFLOPs / r.MedianEpochSec / 1e9
		r.FracPeak = r.GFLOPs / res.Machine.TheoreticalGFLOP
	}
	for _, r := range res.Runs {
		r.SpeedupVsTFJS = t.MedianEpochSec / r.MedianEpochSec
	}
	fmt.Printf("Training, %s; %s, nproc %d\n\n", res.Recipe, res.Machine.CPU, res.Machine.NProc)
	fmt.Println("| engine | median s/epoch | speed-up vs TF.js | test accuracy | GFLOP/s | % of theoretical peak |")
	fmt.Println("|---|---:|---:|---:|---:|---:|")
	for _, r := range res.Runs {
		fmt.Printf("| %s | %.2f | %.2f× | %.4f | %.2f | %.1f %% |\n", r.Engine, r.MedianEpochSec, r.SpeedupVsTFJS, r.TestAccuracy, r.GFLOPs, 100*r.FracPeak)
	}
	js, _ := json.MarshalIndent(res, "", "  ")
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, append(js, '\n'), 0o644); err != nil {
		log.Fatal(err)
	}
}

// runJSON runs a command whose stdout is one JSON object, passing its
// stderr through, and decodes stdout into every v.
func runJSON(name string, args []string, v ...any) error {
	cmd := exec.Command(name, args...)
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return err
	}
	for _, x := range v {
		if err := json.Unmarshal(stdout.Bytes(), x); err != nil {
			return fmt.Errorf("%w in %q", err, stdout.String())
		}
	}
	return nil
}

func medianEpoch(e []epoch) float64 {
	s := make([]float64, len(e))
	for i, x := range e {
		s[i] = x.Seconds
	}
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}
