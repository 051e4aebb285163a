package platform

import (
	"encoding/json"
	"fmt"

	"github.com/aiaas/aiaas/modelstore"
)

// marshalMeta encodes a version's metadata within the store's bound
// (modelstore.MaxMetaSize). What can outgrow it is the training history: a
// 1000-epoch job's per-epoch curves are ~80 KB. They are thinned to evenly
// spaced epochs (the first and last kept, each point keeps its epoch
// number, so curves plot the same) until the metadata fits;
// history.epochs_recorded says how many there were. The artifact and the
// training job keep every epoch.
func marshalMeta(vm *versionMeta) ([]byte, error) {
	b, err := json.Marshal(vm)
	if err != nil || len(b) <= modelstore.MaxMetaSize {
		return b, err
	}
	hist, epochs := historyEpochs(vm.Metrics)
	for keep := 512; keep >= 16 && len(epochs) > keep; keep /= 2 {
		thin := make([]any, keep)
		for i := range thin {
			thin[i] = epochs[i*(len(epochs)-1)/(keep-1)]
		}
		h := make(map[string]any, len(hist)+1)
		for k, v := range hist {
			h[k] = v
		}
		h["epochs"], h["epochs_recorded"] = thin, len(epochs)
		m := make(map[string]any, len(vm.Metrics))
		for k, v := range vm.Metrics {
			m[k] = v
		}
		m["history"] = h
		out := *vm
		out.Metrics = m
		if b, err = json.Marshal(&out); err != nil || len(b) <= modelstore.MaxMetaSize {
			*vm = out
			return b, err
		}
	}
	return nil, fmt.Errorf("the model's metadata is %d bytes, more than the %d a version keeps: %w", len(b), modelstore.MaxMetaSize, modelstore.ErrTooLarge)
}

// historyEpochs finds metrics.history.epochs however it was built: decoded
// from an artifact (generic JSON) or in process (a typed struct).
func historyEpochs(metrics map[string]any) (map[string]any, []any) {
	raw, ok := metrics["history"]
	if !ok {
		return nil, nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, nil
	}
	var h map[string]any
	if json.Unmarshal(b, &h) != nil {
		return nil, nil
	}
	epochs, _ := h["epochs"].([]any)
	return h, epochs
}
