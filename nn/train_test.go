package nn

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// blobs returns n samples of k well-separated Gaussian clusters in d
// dimensions: a task every optimizer should solve.
func blobs(n, d, k int, seed uint64) ([]float32, []int32) {
	r := rand.New(rand.NewPCG(seed, 1))
	centres := make([]float64, k*d)
	for i := range centres {
		centres[i] = r.NormFloat64() * 3
	}
	x := make([]float32, n*d)
	y := make([]int32, n)
	for i := range y {
		c := r.IntN(k)
		y[i] = int32(c)
		for j := 0; j < d; j++ {
			x[i*d+j] = float32(centres[c*d+j] + r.NormFloat64()*0.5)
		}
	}
	return x, y
}

func TestTrainOptimizersAndLosses(t *testing.T) {
	const n, d, k = 600, 8, 4
	x, y := blobs(n, d, k, 1)
	cases := []struct {
		opt, loss, out string
		lr             float64
		targets        bool
	}{
		{opt: "adam", loss: LossSparseCategoricalCrossentropy, out: "softmax"},
		{opt: "sgd", loss: LossSparseCategoricalCrossentropy, out: "softmax", lr: 0.1},
		{opt: "momentum", loss: LossSparseCategoricalCrossentropy, out: "softmax"},
		{opt: "adam", loss: LossCategoricalCrossentropy, out: "softmax", targets: true},
		{opt: "adam", loss: LossCategoricalCrossentropy, out: "softmax"}, // labels one-hot encoded
		{opt: "adam", loss: LossMSE, out: "linear", targets: true},
		{opt: "sgd", loss: LossMSE, out: "sigmoid", lr: 0.5},
	}
	for i, c := range cases {
		m := testModel(t, MLP("m", d, []int{16}, "tanh", k, c.out), 1)
		var tg []float32
		if c.targets {
			tg = make([]float32, n*k)
			for s, v := range y {
				tg[s*k+int(v)] = 1
			}
		}
		h, err := Train(context.Background(), m, x, y, tg, n, TrainConfig{
			Loss: c.loss, Optimizer: c.opt, LearningRate: c.lr, Epochs: 15, BatchSize: 16, Seed: 2, ValidationSplit: 0.2,
		})
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		first, last := h.Epochs[0], h.Epochs[len(h.Epochs)-1]
		if !(last.Loss < first.Loss) || last.Accuracy < 0.95 || *last.ValAccuracy < 0.95 || last.ValLoss == nil {
			t.Errorf("case %d (%s/%s): did not learn: first %+v last loss %v acc %v val_acc %v", i, c.opt, c.loss, first, last.Loss, last.Accuracy, *last.ValAccuracy)
		}
	}
}

func TestTrainReproducible(t *testing.T) {
	x, y := blobs(300, 5, 3, 2)
	spec := MLP("m", 5, []int{12}, "relu", 3, "softmax")
	spec.Layers = append([]Layer{spec.Layers[0], {Type: "dropout", Rate: 0.3}}, spec.Layers[1:]...)
	run := func(seed int64) (*Model, *History) {
		m := testModel(t, spec, 9)
		h, err := Train(context.Background(), m, x, y, nil, 300, TrainConfig{Epochs: 3, BatchSize: 10, Seed: seed, ValidationSplit: 0.1})
		if err != nil {
			t.Fatal(err)
		}
		for i := range h.Epochs {
			h.Epochs[i].Seconds = 0
		}
		return m, h
	}
	a, ha := run(1)
	b, hb := run(1)
	c, _ := run(2)
	if !reflect.DeepEqual(ha, hb) {
		t.Errorf("same seed, different history:\n%+v\n%+v", ha, hb)
	}
	same := func(p, q *Model) bool {
		for i := range p.layers {
			for j := range p.layers[i].w {
				if math.Float32bits(p.layers[i].w[j]) != math.Float32bits(q.layers[i].w[j]) {
					return false
				}
			}
			for j := range p.layers[i].b {
				if math.Float32bits(p.layers[i].b[j]) != math.Float32bits(q.layers[i].b[j]) {
					return false
				}
			}
		}
		return true
	}
	if !same(a, b) {
		t.Error("same seed, different weights")
	}
	if same(a, c) {
		t.Error("different shuffle seeds, same weights")
	}
}

func TestTrainEarlyStopping(t *testing.T) {
	x, y := blobs(200, 4, 2, 3)
	// A learning rate of zero is refused, so stall with a tiny one: the
	// loss cannot improve by MinDelta and training stops after 1+Patience
	// epochs (Keras counting), restoring the first epoch's weights.
	m := testModel(t, MLP("m", 4, []int{6}, "relu", 2, "softmax"), 1)
	before := append([]float32(nil), m.layers[0].w...)
	h, err := Train(context.Background(), m, x, y, nil, 200, TrainConfig{
		Optimizer: "sgd", LearningRate: 1e-9, Epochs: 50, Seed: 1, ValidationSplit: 0.25,
		EarlyStopping: &EarlyStopping{Patience: 2, MinDelta: 0.01, RestoreBestWeights: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if h.Stopped != StoppedEarly || len(h.Epochs) != 3 {
		t.Fatalf("stopped %q after %d epochs, want early_stopping after 3", h.Stopped, len(h.Epochs))
	}
	for i := range before {
		if math.Abs(float64(before[i]-m.layers[0].w[i])) > 1e-6 {
			t.Fatal("weights moved more than a 1e-9 step allows")
		}
	}
	// A learning problem keeps improving and runs all its epochs.
	m = testModel(t, MLP("m", 4, []int{6}, "relu", 2, "softmax"), 1)
	h, err = Train(context.Background(), m, x, y, nil, 200, TrainConfig{
		Epochs: 5, Seed: 1, EarlyStopping: &EarlyStopping{Monitor: "loss", Patience: 1},
	})
	if err != nil || h.Stopped != "" || len(h.Epochs) != 5 {
		t.Fatalf("improving run stopped: %q after %d epochs, err %v", h.Stopped, len(h.Epochs), err)
	}
}

func TestTrainCancel(t *testing.T) {
	x, y := blobs(400, 4, 2, 4)
	m := testModel(t, MLP("m", 4, []int{6}, "relu", 2, "softmax"), 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	start := time.Now()
	h, err := Train(ctx, m, x, y, nil, 400, TrainConfig{
		Epochs: 100, BatchSize: 4, Seed: 1,
		Progress: func(p Progress) {
			calls++
			if p.Epoch == 3 && p.Batch == p.Batches {
				cancel()
			}
			if p.Batch < 1 || p.Batch > p.Batches || p.Epochs != 100 || p.Batches != 100 {
				t.Errorf("bad progress %+v", p)
			}
		},
	})
	if !errors.Is(err, context.Canceled) || h == nil || h.Stopped != StoppedCanceled || len(h.Epochs) != 3 {
		t.Fatalf("got %v, %+v; want context.Canceled after 3 epochs", err, h)
	}
	// One call per epoch end, plus at most one per 100 ms of work: the
	// callback is throttled, not called per batch (300 batches ran).
	if limit := 3 + int(time.Since(start)/(100*time.Millisecond)) + 1; calls < 3 || calls > limit {
		t.Errorf("%d progress calls, want 3 to %d", calls, limit)
	}
	// Already cancelled: nothing runs.
	h, err = Train(ctx, m, x, y, nil, 400, TrainConfig{Epochs: 1})
	if !errors.Is(err, context.Canceled) || len(h.Epochs) != 0 {
		t.Fatalf("got %v, %+v", err, h)
	}
}

func TestTrainErrors(t *testing.T) {
	m := testModel(t, MLP("m", 4, []int{6}, "relu", 3, "softmax"), 1)
	x := make([]float32, 10*4)
	y := make([]int32, 10)
	cases := []struct {
		x       []float32
		y       []int32
		targets []float32
		n       int
		cfg     TrainConfig
		want    error
		msg     string
	}{
		{x, y, nil, 10, TrainConfig{Loss: "hinge"}, ErrSpec, "unknown loss"},
		{x, y, nil, 10, TrainConfig{Optimizer: "rmsprop"}, ErrSpec, "unknown optimizer"},
		{x, y, nil, 10, TrainConfig{LearningRate: -1}, ErrSpec, "learning rate"},
		{x, y, nil, 10, TrainConfig{LearningRate: math.NaN()}, ErrSpec, "learning rate"},
		{x, y, nil, 10, TrainConfig{Optimizer: "sgd", Momentum: 1}, ErrSpec, "momentum"},
		{x, y, nil, 10, TrainConfig{Momentum: 0.5}, ErrSpec, "adam"},
		{x, y, nil, 10, TrainConfig{BatchSize: -1}, ErrSpec, "batch size"},
		{x, y, nil, 10, TrainConfig{BatchSize: MaxBatchSize + 1}, ErrSpec, "batch size"},
		{x, y, nil, 10, TrainConfig{Epochs: -2}, ErrSpec, "epochs"},
		{x, y, nil, 10, TrainConfig{ValidationSplit: 1}, ErrSpec, "validation split"},
		{x, y, nil, 10, TrainConfig{EarlyStopping: &EarlyStopping{Monitor: "val_loss"}}, ErrSpec, "without a validation split"},
		{x, y, nil, 10, TrainConfig{EarlyStopping: &EarlyStopping{Monitor: "f1"}}, ErrSpec, "monitor"},
		{x, y, nil, 10, TrainConfig{EarlyStopping: &EarlyStopping{Patience: -1}}, ErrSpec, "negative"},
		{x, y, nil, 0, TrainConfig{}, ErrShape, "0 samples"},
		{x, y, nil, 11, TrainConfig{}, ErrShape, "features"},
		{x[:39], y, nil, 10, TrainConfig{}, ErrShape, "features"},
		{x, y[:9], nil, 10, TrainConfig{}, ErrShape, "labels"},
		{x, nil, nil, 10, TrainConfig{}, ErrShape, "needs labels"},
		{x, nil, nil, 10, TrainConfig{Loss: LossMSE}, ErrShape, "neither"},
		{x, nil, make([]float32, 29), 10, TrainConfig{Loss: LossMSE}, ErrShape, "targets"},
		{x, []int32{0, 1, 2, 3, 0, 0, 0, 0, 0, 0}, nil, 10, TrainConfig{}, ErrShape, "label 3"},
		{x, []int32{0, -1, 2, 0, 0, 0, 0, 0, 0, 0}, nil, 10, TrainConfig{}, ErrShape, "label -1"},
		{append([]float32{float32(math.NaN())}, x[1:]...), y, nil, 10, TrainConfig{}, ErrShape, "feature 0 of sample 0 is NaN"},
		{x, nil, append(make([]float32, 29), float32(math.Inf(1))), 10, TrainConfig{Loss: LossMSE}, ErrShape, "target 2 of sample 9 is +Inf"},
		{x[:4], y[:1], nil, 1, TrainConfig{ValidationSplit: 0.99}, nil, ""}, // ceil keeps one sample
	}
	for i, c := range cases {
		_, err := Train(context.Background(), m, c.x, c.y, c.targets, c.n, c.cfg)
		if c.want == nil {
			if err != nil {
				t.Errorf("case %d: %v", i, err)
			}
			continue
		}
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("case %d: error %v, want %v containing %q", i, err, c.want, c.msg)
		}
	}
	wide := testModel(t, MLP("wide", 4, []int{MaxUnits}, "relu", 2, "softmax"), 1)
	if _, err := Train(context.Background(), wide, make([]float32, 4*4096), make([]int32, 4096), nil, 4096,
		TrainConfig{BatchSize: 4096}); !errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), "too large") {
		t.Errorf("huge workspace: %v", err)
	}
	if _, _, err := m.Evaluate(x, y[:3], 10); !errors.Is(err, ErrShape) {
		t.Errorf("Evaluate: %v", err)
	}
}

func TestTrainDiverges(t *testing.T) {
	x, _ := blobs(64, 4, 1, 5)
	tg := make([]float32, 64)
	for i := range tg {
		tg[i] = 1e3
	}
	m := testModel(t, MLP("m", 4, []int{8}, "linear", 1, "linear"), 1)
	h, err := Train(context.Background(), m, x, nil, tg, 64, TrainConfig{Loss: LossMSE, Optimizer: "sgd", LearningRate: 10, Epochs: 20})
	if !errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), "diverged") || h == nil {
		t.Fatalf("got %v", err)
	}
	if err := m.WriteArtifact(io.Discard, Metadata{}); err == nil || !strings.Contains(err.Error(), "NaN") && !strings.Contains(err.Error(), "Inf") {
		t.Fatalf("non-finite model written: %v", err)
	}
}

func TestEvaluate(t *testing.T) {
	// One dense softmax layer with zero weights outputs 1/k everywhere:
	// loss ln k, and argmax picks class 0.
	m := testModel(t, MLP("m", 2, nil, "", 4, "softmax"), 1)
	clear(m.layers[0].w)
	m.pack() // weights set directly, not through Train
	x := make([]float32, 5*2)
	y := []int32{0, 1, 0, 3, 0}
	loss, acc, err := m.Evaluate(x, y, 5)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(loss-math.Log(4)) > 1e-6 || acc != 0.6 {
		t.Fatalf("loss %v acc %v, want %v 0.6", loss, acc, math.Log(4))
	}
}

// The validation metrics are those of the last fraction of the samples,
// evaluated after the epoch's last batch, as in Keras.
func TestValidationSplitIsTheTail(t *testing.T) {
	x, y := blobs(100, 4, 3, 6)
	m := testModel(t, MLP("m", 4, []int{6}, "relu", 3, "softmax"), 1)
	h, err := Train(context.Background(), m, x, y, nil, 100, TrainConfig{Epochs: 1, Seed: 1, ValidationSplit: 0.25})
	if err != nil {
		t.Fatal(err)
	}
	loss, acc, err := m.Evaluate(x[75*4:], y[75:], 25)
	if err != nil {
		t.Fatal(err)
	}
	e := h.Epochs[0]
	if *e.ValLoss != loss || *e.ValAccuracy != acc {
		t.Fatalf("val %v/%v, Evaluate on the last 25 samples %v/%v", *e.ValLoss, *e.ValAccuracy, loss, acc)
	}
}

// History is printed by `aiaas train --output json` and stored in artifact
// metrics: its JSON names are part of the contract.
func TestHistoryJSON(t *testing.T) {
	v := 0.5
	h := History{Epochs: []EpochMetrics{{Epoch: 1, Loss: 0.25, Accuracy: 0.75, Seconds: 2}, {Epoch: 2, ValLoss: &v, ValAccuracy: &v}}, Stopped: StoppedEarly}
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"epochs":[{"epoch":1,"loss":0.25,"accuracy":0.75,"seconds":2},{"epoch":2,"loss":0,"accuracy":0,"val_loss":0.5,"val_accuracy":0.5,"seconds":0}],"stopped":"early_stopping"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}
