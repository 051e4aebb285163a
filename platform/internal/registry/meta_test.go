package registry

import (
	"encoding/json"
	"testing"

	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/nn"
)

// TestMarshalMetaThinsLongHistories: a 1000-epoch history (over the
// store's metadata bound) is thinned to evenly spaced epochs, first and
// last kept, numbered as before; a short one is left whole.
func TestMarshalMetaThinsLongHistories(t *testing.T) {
	hist := nn.History{}
	for i := 1; i <= 1000; i++ {
		v := 0.5
		hist.Epochs = append(hist.Epochs, nn.EpochMetrics{Epoch: i, Loss: 1 / float64(i), Accuracy: 0.9, ValLoss: &v, ValAccuracy: &v, Seconds: 0.123456})
	}
	vm := Meta{Metrics: map[string]any{"history": hist, "test_accuracy": 0.9}}
	if b, _ := json.Marshal(vm); len(b) <= modelstore.MaxMetaSize {
		t.Fatalf("the fixture fits already (%d bytes)", len(b))
	}
	b, err := MarshalMeta(&vm)
	if err != nil || len(b) > modelstore.MaxMetaSize {
		t.Fatalf("%d bytes, %v", len(b), err)
	}
	var back struct {
		Metrics struct {
			History struct {
				Epochs   []nn.EpochMetrics `json:"epochs"`
				Recorded int               `json:"epochs_recorded"`
			} `json:"history"`
			TestAccuracy float64 `json:"test_accuracy"`
		} `json:"metrics"`
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	h := back.Metrics.History
	if h.Recorded != 1000 || len(h.Epochs) < 16 || h.Epochs[0].Epoch != 1 || h.Epochs[len(h.Epochs)-1].Epoch != 1000 || back.Metrics.TestAccuracy != 0.9 {
		t.Fatalf("thinned: %d points of %d, first %d last %d", len(h.Epochs), h.Recorded, h.Epochs[0].Epoch, h.Epochs[len(h.Epochs)-1].Epoch)
	}
	for i := 1; i < len(h.Epochs); i++ {
		if h.Epochs[i].Epoch <= h.Epochs[i-1].Epoch || h.Epochs[i].Loss != 1/float64(h.Epochs[i].Epoch) {
			t.Fatalf("point %d: %+v after %+v", i, h.Epochs[i], h.Epochs[i-1])
		}
	}
	short := Meta{Metrics: map[string]any{"history": nn.History{Epochs: hist.Epochs[:5]}}}
	b, err = MarshalMeta(&short)
	if want, _ := json.Marshal(short); err != nil || string(b) != string(want) {
		t.Errorf("a short history changed: %s", b)
	}
}
