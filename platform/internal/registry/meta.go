package registry

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/aiaas/aiaas/internal/safetensors"
	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/nn/graph"
	"github.com/aiaas/aiaas/nn/nnbench"
)

// The architectures a version can have, as [Meta.Architecture] records
// them.
const (
	// ArchDense is a chain of dense layers (nn.Model).
	ArchDense = "dense"
	// ArchGraph is an imported graph (nn/graph.Model).
	ArchGraph = "graph"
)

// Meta is what the platform stores beside a version at publish, so
// listings never read weights. Its JSON is what every process reads back
// from the store: fields are only ever added.
type Meta struct {
	// Architecture is "dense" or "graph"; empty in versions published
	// before graphs existed (dense).
	Architecture string          `json:"architecture,omitempty"`
	Inputs       []nn.TensorSpec `json:"inputs"`
	Outputs      []nn.TensorSpec `json:"outputs"`
	Layers       []nn.Layer      `json:"layers,omitempty"`
	// Opset and Operators describe a graph: its ONNX opset and how many
	// nodes of each operator it has.
	Opset      int               `json:"opset,omitempty"`
	Operators  map[string]int    `json:"operators,omitempty"`
	Params     int               `json:"params"`
	Metrics    map[string]any    `json:"metrics,omitempty"`
	Provenance map[string]string `json:"provenance,omitempty"`
	Latency    *Latency          `json:"latency,omitempty"`
	// LatencySkipped says why Latency was not measured (a large staged
	// upload is not loaded whole at publish).
	LatencySkipped string `json:"latency_skipped,omitempty"`
}

// Latency is the forward-pass latency measured at publish, per batch size.
type Latency struct {
	Batches []nnbench.Batch `json:"batches"`
}

// publishBudget bounds the latency measurement done at publish.
const publishBudget = 40 * time.Millisecond

// Describe validates an artifact of either architecture and returns what
// is recorded beside it, its forward-pass latency measured (within a small
// budget, so publishing stays quick). An artifact that is not a model is
// [ErrInvalidArtifact], with the decoder's message and error.
func Describe(body []byte) (Meta, error) {
	if IsGraphArtifact(body) {
		g, meta, err := graph.ReadArtifact(body, nil)
		if err != nil {
			return Meta{}, invalidArtifact(err)
		}
		vm := Meta{Architecture: ArchGraph, Inputs: Signature(g.Inputs()), Outputs: Signature(g.Outputs()),
			Params: int(g.NumParams()), Opset: g.Opset(), Operators: map[string]int{},
			Metrics: meta.Metrics, Provenance: meta.Provenance}
		for _, n := range meta.Graph.Nodes {
			vm.Operators[n.Op]++
		}
		// Latency at batch 1, where every other dimension is static.
		shapes := make([][]int, 0, len(vm.Inputs))
		for _, in := range vm.Inputs {
			shape := make([]int, len(in.Shape))
			for j, d := range in.Shape {
				shape[j] = int(d)
				if d < 0 && j == 0 {
					shape[j] = 1
				} else if d < 0 {
					shapes = nil
					break
				}
			}
			if shapes == nil {
				break
			}
			shapes = append(shapes, shape)
		}
		if shapes != nil {
			if lat, err := nnbench.MeasureGraph(g, shapes, nil, &nnbench.Options{Budget: publishBudget, MinCalls: 3}); err == nil {
				vm.Latency = &Latency{Batches: lat}
			}
		}
		return vm, nil
	}
	m, meta, err := nn.ReadArtifact(body, nil)
	if err != nil {
		return Meta{}, invalidArtifact(err)
	}
	spec := m.Spec()
	vm := Meta{Architecture: ArchDense, Inputs: spec.Inputs, Outputs: spec.Outputs, Layers: spec.Layers, Params: m.NumParams()}
	if meta != nil {
		vm.Metrics, vm.Provenance = meta.Metrics, meta.Provenance
	}
	if lat, err := nnbench.Measure(m, []int{1, 8, 64}, &nnbench.Options{Budget: publishBudget, MinCalls: 5}); err == nil {
		vm.Latency = &Latency{Batches: lat}
	}
	return vm, nil
}

// IsGraphArtifact tells a graph artifact by its metadata (only the
// safetensors header is parsed).
func IsGraphArtifact(b []byte) bool {
	f, err := safetensors.Decode(b, nil)
	return err == nil && graph.IsArtifact(f.Metadata)
}

// Signature turns a graph's inputs or outputs into the tensor specs a
// dense model has, so both architectures describe themselves alike. A
// scalar's shape is empty, never nil, so it encodes as [].
func Signature(vs []graph.Value) []nn.TensorSpec {
	out := make([]nn.TensorSpec, len(vs))
	for i, v := range vs {
		out[i] = nn.TensorSpec{Name: v.Name, Datatype: v.DType.String(), Shape: slices.Clone(v.Shape)}
		if out[i].Shape == nil {
			out[i].Shape = []int64{}
		}
	}
	return out
}

// MarshalMeta encodes a version's metadata within the store's bound
// (modelstore.MaxMetaSize). What can outgrow it is the training history: a
// 1000-epoch job's per-epoch curves are ~80 KB. They are thinned to evenly
// spaced epochs (the first and last kept, each point keeps its epoch
// number, so curves plot the same) until the metadata fits, and vm is
// updated to what was encoded; history.epochs_recorded says how many there
// were. The artifact and the training job keep every epoch. Metadata that
// cannot be made to fit wraps modelstore.ErrTooLarge.
func MarshalMeta(vm *Meta) ([]byte, error) {
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
