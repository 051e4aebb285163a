package nn

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"
)

// TestResumeIsBitIdentical stops training at several points as a deadline
// would, stores the model and the checkpoint, reads both back and resumes:
// the weights and the history (times aside) equal one uninterrupted run,
// for Adam with dropout and batch normalisation, and for SGD with momentum,
// weight decay, a schedule and early stopping with restored best weights.
func TestResumeIsBitIdentical(t *testing.T) {
	spec := imageSpec(1, 6, 6, 3,
		Layer{Type: LayerConv2D, Filters: 3, KernelSize: []int{3}, Activation: ActReLU},
		Layer{Type: LayerBatchNorm},
		Layer{Type: LayerMaxPool2D},
		Layer{Type: LayerFlatten},
		Layer{Type: LayerDropout, Rate: 0.3},
		Layer{Type: LayerDense, Units: 3, Activation: ActSoftmax})
	const n = 50 // 7 batches of 8, the last of 2 (after the validation split: 45 → 6 batches)
	r := rand.New(rand.NewPCG(5, 5))
	x := randVec(r, n*36)
	y := make([]int32, n)
	for i := range y {
		y[i] = int32(r.IntN(3))
	}
	configs := map[string]TrainConfig{
		"adam": {Epochs: 3, BatchSize: 8, Seed: 4},
		"momentum": {Epochs: 4, BatchSize: 8, Seed: 4, Optimizer: OptMomentum, LearningRate: 0.05, WeightDecay: 1e-3,
			Schedule: &Schedule{Kind: ScheduleStep, StepEpochs: 2, Gamma: 0.5}, ValidationSplit: 0.1,
			EarlyStopping: &EarlyStopping{Monitor: "val_loss", Patience: 10, RestoreBestWeights: true}},
	}
	for name, cfg := range configs {
		whole, err := New(spec, 9)
		if err != nil {
			t.Fatal(err)
		}
		want, err := Train(context.Background(), whole, x, y, nil, n, cfg)
		if err != nil {
			t.Fatal(err)
		}
		wantArt := artifactBytes(t, whole)
		for _, stop := range []int{1, 5, 6, 7, 13} { // first batch, mid-epoch, epoch boundaries
			m, _ := New(spec, 9)
			testStopAt = stop
			h, err := Train(context.Background(), m, x, y, nil, n, cfg)
			testStopAt = 0
			if err != nil || h.Stopped != StoppedDeadline || h.Checkpoint == nil {
				t.Fatalf("%s stop %d: %v %+v", name, stop, err, h)
			}
			ck, err := h.Checkpoint.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			m2, _, err := ReadArtifact(artifactBytes(t, m), nil)
			if err != nil {
				t.Fatal(err)
			}
			var c Checkpoint
			if err := c.UnmarshalBinary(ck); err != nil {
				t.Fatal(err)
			}
			rcfg := cfg
			rcfg.Resume = &c
			got, err := Train(context.Background(), m2, x, y, nil, n, rcfg)
			if err != nil {
				t.Fatalf("%s stop %d: resume: %v", name, stop, err)
			}
			if !bytes.Equal(artifactBytes(t, m2), wantArt) {
				t.Errorf("%s stop %d: resumed weights differ from the uninterrupted run", name, stop)
			}
			if len(got.Epochs) != len(want.Epochs) || got.Stopped != want.Stopped {
				t.Fatalf("%s stop %d: %d epochs (%q), want %d (%q)", name, stop, len(got.Epochs), got.Stopped, len(want.Epochs), want.Stopped)
			}
			for i := range got.Epochs {
				g, w := got.Epochs[i], want.Epochs[i]
				g.Seconds, w.Seconds = 0, 0
				if g.Loss != w.Loss || g.Accuracy != w.Accuracy || (w.ValLoss != nil && *g.ValLoss != *w.ValLoss) {
					t.Errorf("%s stop %d: epoch %d: %+v, want %+v", name, stop, i+1, g, w)
				}
			}
		}
	}
}

// TestResumeRefusesAMismatch: a checkpoint of other data, another batch
// size or another optimizer is refused, not silently misapplied.
func TestResumeRefusesAMismatch(t *testing.T) {
	s := MLP("m", 4, []int{5}, ActReLU, 2, ActSoftmax)
	m, _ := New(s, 1)
	r := rand.New(rand.NewPCG(1, 1))
	x, y := randVec(r, 40*4), make([]int32, 40)
	testStopAt = 2
	h, err := Train(context.Background(), m, x, y, nil, 40, TrainConfig{BatchSize: 8, Epochs: 2})
	testStopAt = 0
	if err != nil || h.Checkpoint == nil {
		t.Fatal(err)
	}
	for _, cfg := range []TrainConfig{
		{BatchSize: 16, Epochs: 2, Resume: h.Checkpoint},
		{BatchSize: 8, Epochs: 2, Optimizer: OptSGD, Resume: h.Checkpoint},
	} {
		if _, err := Train(context.Background(), m, x, y, nil, 40, cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	if _, err := Train(context.Background(), m, x[:36*4], y[:36], nil, 36, TrainConfig{BatchSize: 8, Epochs: 2, Resume: h.Checkpoint}); err == nil {
		t.Error("resume on other data accepted")
	}
	var c Checkpoint
	if err := c.UnmarshalBinary([]byte("not a checkpoint")); err == nil {
		t.Error("garbage checkpoint accepted")
	}
}

func artifactBytes(t *testing.T, m *Model) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := m.WriteArtifact(&b, Metadata{}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
