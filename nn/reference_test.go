package nn

import (
	"encoding/json"
	"os"
	"strconv"
	"testing"
	"time"
)

// TestReferenceRun is the full reference run of the issue: the seed's Keras
// MNIST recipe (784 → 128 relu → 128 relu → 10 softmax, Adam 0.001, batch
// 32, 5 epochs, seed 1) on all 60,000 training images, tested on the
// 10,000 test images. It takes tens of seconds, so it runs only with
// AIAAS_NN_REFERENCE=1:
//
//	AIAAS_NN_REFERENCE=1 go test -run TestReferenceRun -v -timeout 30m ./nn/
//
// With AIAAS_NN_REFERENCE_OUT=file it also writes the figures as JSON and
// the artifact next to it (file + ".safetensors"). AIAAS_NN_REFERENCE_SEED
// overrides the seed (default 1) to measure the spread over seeds; the
// accuracy target is checked for the reference seed only.
func TestReferenceRun(t *testing.T) {
	if os.Getenv("AIAAS_NN_REFERENCE") != "1" {
		t.Skip("set AIAAS_NN_REFERENCE=1 to run the full reference training")
	}
	seed := int64(1)
	if v := os.Getenv("AIAAS_NN_REFERENCE_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseInt(v, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	d := loadMNIST(t)
	m, err := New(mnistSpec(), seed)
	if err != nil {
		t.Fatal(err)
	}
	n := len(d.trainY)
	start := time.Now()
	h, err := Train(t.Context(), m, d.trainX, d.trainY, nil, n, TrainConfig{
		Loss: LossSparseCategoricalCrossentropy, Optimizer: OptAdam, LearningRate: 0.001,
		BatchSize: 32, Epochs: 5, Seed: seed,
	})
	if err != nil {
		t.Fatal(err)
	}
	wall := time.Since(start).Seconds()
	testLoss, acc, err := m.Evaluate(d.testX, d.testY, len(d.testY))
	if err != nil {
		t.Fatal(err)
	}
	flops := m.TrainFLOPs(n)
	for _, e := range h.Epochs {
		t.Logf("epoch %d: loss %.4f accuracy %.4f  %.2fs  %.2f GFLOP/s", e.Epoch, e.Loss, e.Accuracy, e.Seconds, flops/e.Seconds/1e9)
	}
	t.Logf("seed %d: test loss %.4f, test accuracy %.4f, wall %.2fs, %.3g FLOP/epoch", seed, testLoss, acc, wall, flops)
	if out := os.Getenv("AIAAS_NN_REFERENCE_OUT"); out != "" {
		b, _ := json.MarshalIndent(map[string]any{
			"test_accuracy": acc, "test_loss": testLoss, "wall_seconds": wall,
			"flops_per_epoch": flops, "epochs": h.Epochs,
		}, "", "  ")
		if err := os.WriteFile(out, b, 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(out + ".safetensors")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := m.WriteArtifact(f, Metadata{Metrics: map[string]any{"test_accuracy": acc, "history": h}}); err != nil {
			t.Fatal(err)
		}
	}
	// The target is 97.8 %; Keras reaches about 97.7 % on this
	// recipe, and five seeds here gave 97.26–97.68 %. The assertion is a
	// regression floor below that spread; whether the target was met is
	// logged, not asserted, since tuning the recipe to meet it is out of
	// bounds.
	t.Logf("target 97.8 %% met: %v", acc >= 0.978)
	if acc < 0.970 {
		t.Errorf("test accuracy %.4f < 0.970: the engine regressed", acc)
	}
}
