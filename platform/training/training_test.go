package training

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aiaas/aiaas/nn/dataset"
)

func TestValidate(t *testing.T) {
	for i, tc := range []struct {
		mut  func(*Request)
		want string
	}{
		{func(r *Request) { r.Dataset = "" }, "dataset"},
		{func(r *Request) { r.Epochs = MaxEpochs + 1 }, "epochs"},
		{func(r *Request) { r.BatchSize = -1 }, "batch_size"},
		{func(r *Request) { r.Layers = []int{0} }, "widths"},
		{func(r *Request) { r.Layers = make([]int, MaxLayers+1) }, "hidden layers"},
		{func(r *Request) { r.Optimizer = "rmsprop" }, "optimizer"},
		{func(r *Request) { r.Activation = "gelu" }, "activation"},
		{func(r *Request) { r.Loss = "hinge" }, "loss"},
		{func(r *Request) { r.EarlyStopping = 3 }, "early_stopping"},
		{func(r *Request) { r.ValidationSplit = 1 }, "validation_split"},
		{func(r *Request) { r.LearningRate = -1 }, "learning_rate"},
		{func(r *Request) { r.Dropout = 1 }, "dropout"},
	} {
		r := Request{Dataset: "d", Layers: []int{8}}
		r.Defaults()
		tc.mut(&r)
		err := r.Validate()
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("case %d: %v, want an ErrInvalid about %q", i, err, tc.want)
		}
	}
	r := Request{Dataset: "mnist", Layers: []int{128, 128}}
	r.Defaults()
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if r.Optimizer != "adam" || r.LearningRate != 0.001 || r.BatchSize != 32 || r.Epochs != 5 {
		t.Fatalf("defaults are not the reference recipe: %+v", r)
	}
}

func TestClassifier(t *testing.T) {
	s := Classifier("m", 4, 3, []int{8, 8}, "tanh", 0.5)
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, l := range s.Layers {
		got = append(got, fmt.Sprint(l.Type, l.Units, l.Activation))
	}
	if strings.Join(got, " ") != "dense8tanh dropout0 dense8tanh dropout0 dense3softmax" {
		t.Fatalf("layers: %v", got)
	}
	if s.Outputs[0].Name != "probabilities" || s.Inputs[0].Shape[1] != 4 {
		t.Fatalf("signature: %+v", s)
	}
}

func TestSplitTestShufflesSortedData(t *testing.T) {
	set := &dataset.Set{N: 100, Features: 1, Classes: 2, X: make([]float32, 100), Y: make([]int32, 100)}
	for i := 50; i < 100; i++ {
		set.Y[i] = 1 // sorted by class, like iris.csv
		set.X[i] = float32(i)
	}
	train, test := SplitTest(set, 0.2, 1)
	if train.N != 80 || test.N != 20 {
		t.Fatalf("sizes %d/%d", train.N, test.N)
	}
	ones := 0
	for _, y := range test.Y {
		ones += int(y)
	}
	if ones == 0 || ones == 20 {
		t.Fatalf("the test set is one class: %d ones of 20", ones)
	}
	for i := 0; i < test.N; i++ { // rows keep their labels
		if (test.X[i] >= 50) != (test.Y[i] == 1) {
			t.Fatalf("row %d lost its label", i)
		}
	}
}

func TestRunLearnsAndCancels(t *testing.T) {
	set := &dataset.Set{N: 400, Features: 2, Classes: 2}
	for i := 0; i < set.N; i++ {
		a, b := float32(i%20)/20, float32(i%7)/7
		set.X = append(set.X, a, b)
		y := int32(0)
		if a > b {
			y = 1
		}
		set.Y = append(set.Y, y)
	}
	train, test := SplitTest(set, 0.25, 1)
	req := Request{Model: "m", Dataset: "x", Layers: []int{16}, Epochs: 40, Seed: 2}
	m, meta, res, err := Run(context.Background(), req, train, test, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.TestAccuracy < 0.85 || len(res.Epochs) != 40 || m.NumParams() != 2*16+16+16*2+2 {
		t.Fatalf("result %+v params %d", res, m.NumParams())
	}
	if meta.Metrics["test_accuracy"] != res.TestAccuracy || meta.Provenance["seed"] != "2" {
		t.Fatalf("metadata: %+v", meta)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, _, err := Run(ctx, req, train, test, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled run: %v", err)
	}
}

// RunUntil stops between batches at stopAt: the model so far comes back
// marked as stopped at the deadline; with no complete epoch, an ErrNoEpoch.
func TestRunUntil(t *testing.T) {
	var csv strings.Builder
	for i := 0; i < 2000; i++ {
		a, b := float32(i%13)/13, float32(i%7)/7
		fmt.Fprintf(&csv, "%g,%g,%d\n", a, b, i%2)
	}
	all, err := ParseCSV([]byte(csv.String()))
	if err != nil {
		t.Fatal(err)
	}
	train, test := SplitTest(all, 0.2, 1)
	req := Request{Model: "m", Dataset: "d", Layers: []int{32}, BatchSize: 4, Epochs: MaxEpochs}
	_, meta, res, err := RunUntil(context.Background(), req, train, test, nil, time.Now().Add(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != "deadline" || len(res.Epochs) < 1 || len(res.Epochs) >= MaxEpochs ||
		res.StoppedEpoch != len(res.Epochs)+1 || res.BatchesPerEpoch != 400 || res.StoppedBatch >= 400 {
		t.Fatalf("result: stopped %q, %d epochs, at epoch %d batch %d of %d", res.Stopped, len(res.Epochs), res.StoppedEpoch, res.StoppedBatch, res.BatchesPerEpoch)
	}
	if !strings.HasPrefix(meta.Provenance["stopped"], fmt.Sprintf("deadline: %d of %d epochs", len(res.Epochs), MaxEpochs)) {
		t.Errorf("provenance: %q", meta.Provenance["stopped"])
	}
	_, _, _, err = RunUntil(context.Background(), req, train, test, nil, time.Now().Add(-time.Second))
	if !errors.Is(err, ErrNoEpoch) || !strings.Contains(err.Error(), "0 of 400 batches") {
		t.Fatalf("stop time already passed: %v", err)
	}
}
