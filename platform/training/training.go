// Package training runs one training job: a dataset and hyperparameters in,
// a trained model, its artifact metadata and its metrics out.
//
// # Overview
//
// The same [Run] serves `aiaas train` on a laptop, the local server's
// worker pool and the Lambda train function, so a model trained anywhere is
// trained the same way. [Request] is the job's wire form (POST
// /v1/training-jobs and the Lambda event); [Request.Validate] bounds every
// field, since requests come from tenants.
package training

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/nn/dataset"
)

// Request is one training job's parameters. Zero fields take the defaults
// of the Keras MNIST recipe (see [Request.Defaults]).
type Request struct {
	Model       string  `json:"model"`
	Dataset     string  `json:"dataset"`
	TestDataset string  `json:"test_dataset,omitempty"`
	TestSplit   float64 `json:"test_split,omitempty"`
	Layers      []int   `json:"layers"`
	// Network, instead of Layers, describes any sequential network the
	// trainer supports (convolutions, pooling, batch normalisation …):
	// see [Network].
	Network      *Network     `json:"network,omitempty"`
	Activation   string       `json:"activation,omitempty"`
	Dropout      float64      `json:"dropout,omitempty"`
	Optimizer    string       `json:"optimizer,omitempty"`
	LearningRate float64      `json:"learning_rate,omitempty"`
	Momentum     float64      `json:"momentum,omitempty"`
	WeightDecay  float64      `json:"weight_decay,omitempty"`
	Schedule     *nn.Schedule `json:"lr_schedule,omitempty"`
	// Augment shifts and flips training images at random (off by default).
	Augment         *nn.Augment `json:"augment,omitempty"`
	Loss            string      `json:"loss,omitempty"`
	BatchSize       int         `json:"batch_size,omitempty"`
	Epochs          int         `json:"epochs,omitempty"`
	Seed            int64       `json:"seed,omitempty"`
	ValidationSplit float64     `json:"validation_split,omitempty"`
	EarlyStopping   int         `json:"early_stopping,omitempty"` // patience in epochs; needs ValidationSplit
	Limit           int         `json:"limit,omitempty"`          // use only the first Limit training rows
}

// Network is a sequential network for [Request.Network]: the shape of one
// sample ([C, H, W] for images, [D] for a table; default the dataset's own)
// and the layers as in nn.Layer, the last a dense layer with one unit per
// class (softmax for classification).
type Network struct {
	InputShape []int      `json:"input_shape,omitempty"`
	Layers     []nn.Layer `json:"layers"`
}

// Limits on what a tenant may ask for; the network itself is bounded again
// by nn.Spec.Validate.
const (
	MaxEpochs    = 1000
	MaxBatchSize = 1 << 16
	MaxLayers    = 32
	MaxWidth     = 1 << 14
)

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("training: invalid request")

// ErrNoEpoch: the stop time came before the first epoch finished, so there
// is no model worth publishing.
var ErrNoEpoch = errors.New("training: stopped at the deadline before the first epoch finished")

// Defaults fills zero fields with the reference recipe's values.
func (r *Request) Defaults() {
	if r.Activation == "" {
		r.Activation = "relu"
	}
	if r.Optimizer == "" {
		r.Optimizer = "adam"
	}
	if r.LearningRate == 0 {
		r.LearningRate = 0.001
	}
	if r.Momentum == 0 && r.Optimizer == "momentum" {
		r.Momentum = 0.9
	}
	if r.Loss == "" {
		r.Loss = "sparse_categorical_crossentropy"
	}
	if r.BatchSize == 0 {
		r.BatchSize = 32
	}
	if r.Epochs == 0 {
		r.Epochs = 5
	}
	if r.TestSplit == 0 {
		r.TestSplit = 0.2
	}
}

// Validate checks r after Defaults.
func (r *Request) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
	}
	switch {
	case r.Dataset == "":
		return bad(`"dataset" is required`)
	case r.Epochs < 1 || r.Epochs > MaxEpochs:
		return bad("epochs must be between 1 and %d", MaxEpochs)
	case r.BatchSize < 1 || r.BatchSize > MaxBatchSize:
		return bad("batch_size must be between 1 and %d", MaxBatchSize)
	case len(r.Layers) > MaxLayers:
		return bad("at most %d hidden layers", MaxLayers)
	case r.Network != nil && r.Layers != nil:
		return bad(`give "layers" (a dense stack) or "network", not both`)
	case r.Network != nil && (r.Activation != "relu" || r.Dropout != 0):
		return bad(`"activation" and "dropout" apply to "layers"; set them per layer in "network"`)
	case r.Network != nil && len(r.Network.Layers) == 0:
		return bad(`"network" has no layers`)
	case r.Network != nil && len(r.Network.Layers) > nn.MaxLayers:
		return bad("network: at most %d layers", nn.MaxLayers)
	case r.Network != nil && len(r.Network.InputShape) != 0 && len(r.Network.InputShape) != 1 && len(r.Network.InputShape) != 3:
		return bad("network: input_shape %v, want [C, H, W] or [D]", r.Network.InputShape)
	case r.WeightDecay < 0 || r.WeightDecay >= 1:
		return bad("weight_decay must be in [0, 1)")
	case r.Augment != nil && (r.Augment.Shift < 0 || r.Augment.Shift > nn.MaxKernel):
		return bad("augment.shift must be in [0, %d]", nn.MaxKernel)
	case r.Augment != nil && r.Network == nil && (r.Augment.Shift > 0 || r.Augment.FlipHorizontal):
		return bad(`"augment" needs a "network" with an image input_shape`)
	case r.LearningRate <= 0 || r.LearningRate > 10:
		return bad("learning_rate must be in (0, 10]")
	case r.Momentum < 0 || r.Momentum >= 1:
		return bad("momentum must be in [0, 1)")
	case r.Dropout < 0 || r.Dropout >= 1:
		return bad("dropout must be in [0, 1)")
	case r.ValidationSplit < 0 || r.ValidationSplit >= 1:
		return bad("validation_split must be in [0, 1)")
	case r.TestSplit <= 0 || r.TestSplit >= 1:
		return bad("test_split must be in (0, 1)")
	case r.EarlyStopping < 0 || (r.EarlyStopping > 0 && r.ValidationSplit == 0):
		return bad("early_stopping needs validation_split > 0")
	case r.Limit < 0:
		return bad("limit must not be negative")
	}
	if r.Network != nil && len(r.Network.InputShape) > 0 {
		// Check the network's structure now, so the caller hears of a
		// mistake at once and not from a failed job; only the dataset's
		// size and classes are left to check when it runs.
		n, last := 1, r.Network.Layers[len(r.Network.Layers)-1]
		for _, d := range r.Network.InputShape {
			if d < 1 || d > nn.MaxActivation || n > nn.MaxActivation/d {
				return bad("network: input_shape %v outside [1, %d] values a sample", r.Network.InputShape, nn.MaxActivation)
			}
			n *= d
		}
		if last.Type != nn.LayerDense || last.Units < 1 {
			return bad("network: the last layer must be dense with one unit per class")
		}
		if _, err := NetworkSpec(r.Model, *r.Network, &dataset.Set{Features: n}, last.Units, ""); err != nil {
			return err
		}
	}
	for _, w := range r.Layers {
		if w < 1 || w > MaxWidth {
			return bad("layer widths must be between 1 and %d", MaxWidth)
		}
	}
	switch r.Optimizer {
	case "adam", "sgd", "momentum":
	default:
		return bad("optimizer must be adam, sgd or momentum")
	}
	switch r.Activation {
	case "relu", "tanh", "sigmoid", "linear":
	default:
		return bad("activation must be relu, tanh, sigmoid or linear")
	}
	switch r.Loss {
	case "sparse_categorical_crossentropy", "categorical_crossentropy", "mse":
	default:
		return bad("loss must be sparse_categorical_crossentropy, categorical_crossentropy or mse")
	}
	return nil
}

// Result is what a finished job reports.
type Result struct {
	Model        string            `json:"model"`
	TrainSamples int               `json:"train_samples"`
	TestSamples  int               `json:"test_samples"`
	Params       int               `json:"params"`
	TestAccuracy float64           `json:"test_accuracy"`
	TestLoss     float64           `json:"test_loss"`
	Epochs       []nn.EpochMetrics `json:"epochs"`
	Stopped      string            `json:"stopped,omitempty"`
	// StoppedEpoch and StoppedBatch say where a "deadline" stop happened:
	// the epoch under way and the batches of it done, of BatchesPerEpoch.
	StoppedEpoch    int     `json:"stopped_epoch,omitempty"`
	StoppedBatch    int     `json:"stopped_batch,omitempty"`
	BatchesPerEpoch int     `json:"batches_per_epoch,omitempty"`
	WallSeconds     float64 `json:"wall_seconds"`
}

// Classifier is the Keras-style Dense stack: the hidden layers, each
// optionally followed by dropout, then a softmax layer with one unit per
// class.
func Classifier(name string, features, classes int, hidden []int, act string, dropout float64) nn.Spec {
	s := nn.MLP(name, features, hidden, act, classes, "softmax")
	s.Outputs[0].Name = "probabilities"
	if dropout > 0 {
		layers := make([]nn.Layer, 0, 2*len(s.Layers))
		for i, l := range s.Layers {
			layers = append(layers, l)
			if i < len(s.Layers)-1 {
				layers = append(layers, nn.Layer{Type: "dropout", Rate: dropout})
			}
		}
		s.Layers = layers
	}
	return s
}

// NetworkSpec builds the spec of net for a dataset like train with classes
// classes: the input shape defaults to the dataset's, must hold as many
// values as a sample has features, and the last layer must be a dense layer
// with one unit per class (one unit for mse regression).
func NetworkSpec(name string, net Network, train *dataset.Set, classes int, loss string) (nn.Spec, error) {
	bad := func(format string, a ...any) (nn.Spec, error) {
		return nn.Spec{}, fmt.Errorf("%w: network: %s", ErrInvalid, fmt.Sprintf(format, a...))
	}
	shape := net.InputShape
	if len(shape) == 0 {
		shape = train.Shape
		if shape == nil {
			shape = []int{train.Features}
		}
	}
	n := 1
	for _, d := range shape {
		if d < 1 || d > nn.MaxActivation {
			return bad("input_shape %v: dimensions must be in [1, %d]", shape, nn.MaxActivation)
		}
		n *= d
		if n > nn.MaxActivation {
			return bad("input_shape %v: more than %d values a sample", shape, nn.MaxActivation)
		}
	}
	if n != train.Features {
		if train.Shape != nil {
			return bad("input_shape %v holds %d values, the dataset's samples are %v (%d values)", shape, n, train.Shape, train.Features)
		}
		return bad("input_shape %v holds %d values, the dataset's samples have %d features", shape, n, train.Features)
	}
	want := classes
	if loss == "mse" {
		want = 1
	}
	last := net.Layers[len(net.Layers)-1]
	if last.Type != nn.LayerDense || last.Units != want {
		return bad("the last layer must be dense with %d units (one per class), have %s with %d units", want, last.Type, last.Units)
	}
	in := make([]int64, 0, 4)
	in = append(in, -1)
	for _, d := range shape {
		in = append(in, int64(d))
	}
	s := nn.Spec{
		Name:    name,
		Inputs:  []nn.TensorSpec{{Name: "input", Datatype: nn.DatatypeFP32, Shape: in}},
		Outputs: []nn.TensorSpec{{Name: "probabilities", Datatype: nn.DatatypeFP32, Shape: []int64{-1, int64(want)}}},
		Layers:  net.Layers,
	}
	if err := s.Validate(); err != nil {
		return bad("%s", strings.TrimPrefix(err.Error(), nn.ErrSpec.Error()+": "))
	}
	return s, nil
}

// sameNetwork reports whether a and b have the same inputs, outputs and
// layers (names aside).
func sameNetwork(a, b nn.Spec) bool {
	ja, _ := json.Marshal(nn.Spec{Inputs: a.Inputs, Outputs: a.Outputs, Layers: a.Layers})
	jb, _ := json.Marshal(nn.Spec{Inputs: b.Inputs, Outputs: b.Outputs, Layers: b.Layers})
	return string(ja) == string(jb)
}

// SplitTest holds out frac of s as a test set after a seeded shuffle (a
// CSV is often sorted by class, so the last rows alone would be one class).
func SplitTest(s *dataset.Set, frac float64, seed int64) (train, test *dataset.Set) {
	perm := rand.New(rand.NewPCG(uint64(seed), 0x7e57)).Perm(s.N)
	sh := &dataset.Set{N: s.N, Features: s.Features, Classes: s.Classes, Shape: s.Shape, ClassNames: s.ClassNames, X: make([]float32, len(s.X))}
	if s.Y != nil {
		sh.Y = make([]int32, s.N)
	}
	if s.Targets != nil {
		sh.Targets = make([]float32, s.N)
	}
	for i, j := range perm {
		copy(sh.X[i*s.Features:(i+1)*s.Features], s.X[j*s.Features:(j+1)*s.Features])
		if s.Y != nil {
			sh.Y[i] = s.Y[j]
		}
		if s.Targets != nil {
			sh.Targets[i] = s.Targets[j]
		}
	}
	return sh.Split(frac, seed)
}

// Run trains a model on train and evaluates it on test. progress may be nil.
// Cancelling ctx stops between batches; the error then wraps ctx.Err().
func Run(ctx context.Context, req Request, train, test *dataset.Set, progress func(nn.Progress)) (*nn.Model, nn.Metadata, *Result, error) {
	return RunUntil(ctx, req, train, test, progress, time.Time{})
}

// RunUntil is Run that stops training between batches once stopAt passes
// (zero: never), leaving the time after it for evaluation and saving. The
// model trained so far is returned, with Result.Stopped "deadline" and the
// metadata saying so (provenance "stopped"), if at least one epoch
// finished; otherwise the error wraps ErrNoEpoch.
func RunUntil(ctx context.Context, req Request, train, test *dataset.Set, progress func(nn.Progress), stopAt time.Time) (*nn.Model, nn.Metadata, *Result, error) {
	m, meta, res, _, err := RunFrom(ctx, req, train, test, progress, stopAt, RunOptions{})
	return m, meta, res, err
}

// Resume is where a job stopped by its deadline continues: the model as it
// stopped and its checkpoint.
type Resume struct {
	Model      *nn.Model
	Checkpoint *nn.Checkpoint
}

// RunOptions are RunFrom's: From, when set, continues a stopped run;
// Continue says the caller will continue this one if the deadline stops
// it, so RunFrom then returns the model and the checkpoint at once,
// without evaluating it (nil metadata and result).
type RunOptions struct {
	From     *Resume
	Continue bool
}

// RunFrom is RunUntil that can continue from a checkpoint and, when the
// deadline stops it, also returns the checkpoint to continue from, with
// the model as it stopped. Without o.Continue the model, metadata and
// result are then those of a "deadline" stop, to publish; if not one epoch
// had finished, the error wraps ErrNoEpoch and the model and checkpoint
// are still returned. A continued run ends exactly as one uninterrupted
// run would.
func RunFrom(ctx context.Context, req Request, train, test *dataset.Set, progress func(nn.Progress), stopAt time.Time, o RunOptions) (*nn.Model, nn.Metadata, *Result, *nn.Checkpoint, error) {
	from := o.From
	start := time.Now()
	req.Defaults()
	if err := req.Validate(); err != nil {
		return nil, nn.Metadata{}, nil, nil, err
	}
	if train.Classes < 2 && req.Loss != "mse" {
		return nil, nn.Metadata{}, nil, nil, fmt.Errorf("%w: the dataset has %d classes; classification needs at least 2", ErrInvalid, train.Classes)
	}
	if test.Features != train.Features {
		return nil, nn.Metadata{}, nil, nil, fmt.Errorf("%w: test set has %d features, training set %d", ErrInvalid, test.Features, train.Features)
	}
	if req.Limit > 0 && req.Limit < train.N {
		train = train.Subset(req.Limit)
	}
	classes := max(train.Classes, test.Classes)
	spec := Classifier(req.Model, train.Features, classes, req.Layers, req.Activation, req.Dropout)
	if req.Network != nil {
		var err error
		if spec, err = NetworkSpec(req.Model, *req.Network, train, classes, req.Loss); err != nil {
			return nil, nn.Metadata{}, nil, nil, err
		}
	}
	m, err := nn.New(spec, req.Seed)
	if from != nil {
		m = from.Model
		if got, want := m.Spec(), spec; !sameNetwork(got, want) {
			return nil, nn.Metadata{}, nil, nil, fmt.Errorf("%w: the checkpoint's model is not the job's network", ErrInvalid)
		}
	}
	if err != nil {
		return nil, nn.Metadata{}, nil, nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	cfg := nn.TrainConfig{
		Loss: req.Loss, Optimizer: req.Optimizer, LearningRate: req.LearningRate, Momentum: req.Momentum,
		BatchSize: req.BatchSize, Epochs: req.Epochs, Seed: req.Seed, ValidationSplit: req.ValidationSplit,
		WeightDecay: req.WeightDecay, Schedule: req.Schedule, Augment: req.Augment,
		Progress: progress, StopAt: stopAt,
	}
	if req.EarlyStopping > 0 {
		cfg.EarlyStopping = &nn.EarlyStopping{Patience: req.EarlyStopping}
	}
	if from != nil {
		cfg.Resume = from.Checkpoint
	}
	hist, err := nn.Train(ctx, m, train.X, train.Y, nil, train.N, cfg)
	if err != nil {
		return nil, nn.Metadata{}, nil, nil, err
	}
	if o.Continue && hist.Checkpoint != nil {
		return m, nn.Metadata{}, nil, hist.Checkpoint, nil
	}
	if hist.Stopped == nn.StoppedDeadline && len(hist.Epochs) == 0 {
		// Nothing worth publishing; the model and the checkpoint can
		// still continue.
		return m, nn.Metadata{}, nil, hist.Checkpoint, fmt.Errorf("%w (%d of %d batches of epoch 1 done in %.1f s)",
			ErrNoEpoch, hist.StoppedBatch, hist.Batches, time.Since(start).Seconds())
	}
	loss, acc, err := m.Evaluate(test.X, test.Y, test.N)
	if err != nil {
		return nil, nn.Metadata{}, nil, nil, err
	}
	res := &Result{
		Model: req.Model, TrainSamples: train.N, TestSamples: test.N, Params: m.NumParams(),
		TestAccuracy: acc, TestLoss: loss, Epochs: hist.Epochs, Stopped: hist.Stopped,
		WallSeconds: time.Since(start).Seconds(),
	}
	if hist.Stopped == nn.StoppedDeadline {
		res.StoppedEpoch, res.StoppedBatch, res.BatchesPerEpoch = hist.StoppedEpoch, hist.StoppedBatch, hist.Batches
	}
	meta := nn.Metadata{
		Spec: spec,
		Metrics: map[string]any{
			"test_accuracy": acc, "test_loss": loss, "history": hist,
			"train_samples": train.N, "test_samples": test.N,
		},
		Provenance: map[string]string{
			"dataset": req.Dataset, "optimizer": req.Optimizer, "learning_rate": strconv.FormatFloat(req.LearningRate, 'g', -1, 64),
			"batch_size": strconv.Itoa(req.BatchSize), "epochs": strconv.Itoa(req.Epochs), "seed": strconv.FormatInt(req.Seed, 10),
			"loss": req.Loss, "trained_at": time.Now().UTC().Format(time.RFC3339),
		},
	}
	if len(train.ClassNames) == train.Classes && train.Classes > 0 {
		// Image folders name their classes: the served model answers
		// Triton's classification requests with them.
		meta.Labels = train.ClassNames
	}
	if hist.Stopped == nn.StoppedDeadline {
		// Whoever loads this model must see that it is not the full run.
		meta.Provenance["stopped"] = fmt.Sprintf("deadline: %d of %d epochs complete, stopped at batch %d of %d of epoch %d",
			len(hist.Epochs), req.Epochs, hist.StoppedBatch, hist.Batches, hist.StoppedEpoch)
	}
	return m, meta, res, hist.Checkpoint, nil
}
