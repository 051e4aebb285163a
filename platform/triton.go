package platform

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/platform/internal/registry"
	"github.com/aiaas/aiaas/platform/internal/serving"
	"github.com/aiaas/aiaas/platform/oip"
)

// Triton's read-only model configuration and statistics extensions
// (docs/protocol/extension_model_configuration.md and
// extension_statistics.md in triton-inference-server/server): tools built
// on tritonclient (perf_analyzer, model_analyzer, dashboards) read them.

// --- model configuration ----------------------------------------------------

// tritonConfig is the JSON form of Triton's ModelConfig message, the fields
// a client reads to build requests: the batch contract and the tensors.
type tritonConfig struct {
	Name            string             `json:"name"`
	Platform        string             `json:"platform"`
	Backend         string             `json:"backend"`
	VersionPolicy   map[string]any     `json:"version_policy"`
	MaxBatchSize    int                `json:"max_batch_size"`
	Input           []tritonTensor     `json:"input"`
	Output          []tritonTensor     `json:"output"`
	DynamicBatching map[string]any     `json:"dynamic_batching,omitempty"`
	InstanceGroup   []map[string]any   `json:"instance_group"`
	Parameters      map[string]tritonP `json:"parameters,omitempty"`
}

type tritonTensor struct {
	Name          string  `json:"name"`
	DataType      string  `json:"data_type"`
	Format        string  `json:"format,omitempty"`
	Dims          []int64 `json:"dims"`
	LabelFilename string  `json:"label_filename,omitempty"`
}

type tritonP struct {
	StringValue string `json:"string_value"`
}

// tritonType maps an OIP datatype to model_config.proto's DataType name.
func tritonType(dt string) string {
	if dt == oip.BYTES {
		return "TYPE_STRING"
	}
	return "TYPE_" + dt
}

// defaultMaxBatch is the max_batch_size reported when adaptive batching is
// off: requests of any batch size are taken (up to the body and element
// limits); Triton's clients only need it to be positive to send [batch, …].
const defaultMaxBatch = 1024

func (s *Server) handleModelConfig(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	model := r.PathValue("model")
	if err := checkName("model", model); err != nil {
		return err
	}
	// Loaded (or found warm) rather than read from what was recorded at
	// publish: the labels are in the artifact, and a client asks for the
	// configuration before it infers anyway.
	// A split alias answers with its primary version.
	res, err := s.refs.ResolvePrimary(r.Context(), p.Tenant, model, r.PathValue("version"))
	if err != nil {
		return err
	}
	var t serving.Timings
	l, err := s.load(r.Context(), p.Tenant, model, strconv.Itoa(res.Version), "", &t)
	if err != nil {
		return err
	}
	lm := l.loaded
	vm := registry.Meta{Inputs: lm.inputs, Outputs: lm.outputs}
	platform := "aiaas_gonum"
	if lm.graph != nil {
		platform = "aiaas_onnx"
	}
	labels := lm.labels
	// Triton's dims leave out the batch dimension when max_batch_size is
	// positive: every tensor must then lead with a free (-1) dimension.
	batched := len(vm.Inputs) > 0
	for _, ts := range append(slices.Clip(vm.Inputs), vm.Outputs...) {
		if len(ts.Shape) == 0 || ts.Shape[0] != -1 {
			batched = false
		}
	}
	cfg := tritonConfig{Name: model, Platform: platform, Backend: "aiaas",
		VersionPolicy: map[string]any{"all": map[string]any{}},
		InstanceGroup: []map[string]any{{"name": model, "kind": "KIND_CPU", "count": 1}},
		Parameters:    map[string]tritonP{"aiaas_version": {StringValue: strconv.Itoa(res.Version)}}}
	if batched {
		cfg.MaxBatchSize = defaultMaxBatch
		if s.cfg.BatchWindow > 0 {
			cfg.MaxBatchSize = s.cfg.BatchMax
			cfg.DynamicBatching = map[string]any{"max_queue_delay_microseconds": s.cfg.BatchWindow.Microseconds()}
		}
	}
	tensor := func(ts nn.TensorSpec) tritonTensor {
		dims := ts.Shape
		if batched {
			dims = dims[1:]
		}
		return tritonTensor{Name: ts.Name, DataType: tritonType(ts.Datatype), Dims: append([]int64{}, dims...)}
	}
	for _, in := range vm.Inputs {
		t := tensor(in)
		t.Format = "FORMAT_NONE"
		cfg.Input = append(cfg.Input, t)
	}
	for i, o := range vm.Outputs {
		t := tensor(o)
		if i == 0 && len(labels) > 0 {
			// Triton names a labels file; ours are in the artifact.
			t.LabelFilename = nn.MetaLabels
		}
		cfg.Output = append(cfg.Output, t)
	}
	if cfg.Input == nil {
		cfg.Input = []tritonTensor{}
	}
	if cfg.Output == nil {
		cfg.Output = []tritonTensor{}
	}
	writeJSON(w, http.StatusOK, cfg)
	return nil
}

// --- statistics -------------------------------------------------------------

// durationStat is Triton's $duration_stat.
type durationStat struct {
	Count uint64 `json:"count"`
	NS    uint64 `json:"ns"`
}

func (d *durationStat) add(dur time.Duration) {
	d.Count++
	d.NS += uint64(max(dur, 0))
}

// inferenceStats is Triton's $inference_stats.
type inferenceStats struct {
	Success       durationStat `json:"success"`
	Fail          durationStat `json:"fail"`
	Queue         durationStat `json:"queue"`
	ComputeInput  durationStat `json:"compute_input"`
	ComputeInfer  durationStat `json:"compute_infer"`
	ComputeOutput durationStat `json:"compute_output"`
	CacheHit      durationStat `json:"cache_hit"`
	CacheMiss     durationStat `json:"cache_miss"`
}

// modelStat is Triton's $model_stat.
type modelStat struct {
	Name           string         `json:"name"`
	Version        string         `json:"version"`
	LastInference  int64          `json:"last_inference"`
	InferenceCount uint64         `json:"inference_count"`
	ExecutionCount uint64         `json:"execution_count"`
	InferenceStats inferenceStats `json:"inference_stats"`
	BatchStats     []any          `json:"batch_stats"`
}

type statKey struct {
	tenant, model string
	version       int
}

// statsTable holds the OIP inference counters of one process, per tenant,
// model and version. Goroutine-safe. Entries are made only for versions
// that resolved (that exist), and at most maxStatEntries of them, so a
// flood of requests cannot grow it without bound.
type statsTable struct {
	m sync.Map // statKey → *statEntry
	n atomic.Int64
}

const maxStatEntries = 1 << 16

type statEntry struct {
	mu sync.Mutex
	st modelStat
}

func (t *statsTable) entry(k statKey, create bool) *statEntry {
	if e, ok := t.m.Load(k); ok {
		return e.(*statEntry)
	}
	if !create || t.n.Load() >= maxStatEntries {
		return nil
	}
	e, loaded := t.m.LoadOrStore(k, &statEntry{})
	if !loaded {
		t.n.Add(1)
	}
	return e.(*statEntry)
}

// success records a served inference request of rows rows.
func (t *statsTable) success(tenant string, l *lineage, rows int, total, input, infer, output time.Duration) {
	e := t.entry(statKey{tenant, l.Model, l.Version}, true)
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	st := &e.st
	st.LastInference = time.Now().UnixMilli()
	st.InferenceCount += uint64(max(rows, 1))
	st.ExecutionCount++
	st.InferenceStats.Success.add(total)
	st.InferenceStats.Queue.add(0)
	st.InferenceStats.ComputeInput.add(input)
	st.InferenceStats.ComputeInfer.add(infer)
	st.InferenceStats.ComputeOutput.add(output)
}

// fail records an inference request that failed once its model version
// was known.
func (t *statsTable) fail(tenant string, l *lineage, total time.Duration) {
	e := t.entry(statKey{tenant, l.Model, l.Version}, true)
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.st.InferenceStats.Fail.add(total)
}

// get returns the counters of one version (zeros if it has none).
func (t *statsTable) get(tenant, model string, version int) modelStat {
	var st modelStat
	if e := t.entry(statKey{tenant, model, version}, false); e != nil {
		e.mu.Lock()
		st = e.st
		e.mu.Unlock()
	}
	st.Name, st.Version, st.BatchStats = model, strconv.Itoa(version), []any{}
	return st
}

// tenant returns every version of the tenant's models with counters.
func (t *statsTable) tenant(tenant string) []modelStat {
	out := []modelStat{}
	t.m.Range(func(k, _ any) bool {
		if sk := k.(statKey); sk.tenant == tenant {
			out = append(out, t.get(tenant, sk.model, sk.version))
		}
		return true
	})
	slices.SortFunc(out, func(a, b modelStat) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		x, _ := strconv.Atoi(a.Version)
		y, _ := strconv.Atoi(b.Version)
		return cmp.Compare(x, y)
	})
	return out
}

// handleModelStats answers GET /v2/models/stats (every model of the
// tenant that this process has served), /v2/models/{model}/stats (every
// version of it) and …/versions/{version}/stats.
func (s *Server) handleModelStats(w http.ResponseWriter, r *http.Request) error {
	if s.noProcMet {
		return notFound("this deployment runs many processes and one process's statistics would mislead: see the CloudWatch embedded metrics (namespace aiaas) in infra/README.md")
	}
	p := principalOf(r.Context())
	model := r.PathValue("model")
	var stats []modelStat
	switch {
	case model == "":
		stats = s.stats.tenant(p.Tenant)
	case r.PathValue("version") != "":
		if err := checkName("model", model); err != nil {
			return err
		}
		res, err := s.refs.ResolvePrimary(r.Context(), p.Tenant, model, r.PathValue("version"))
		if err != nil {
			return err
		}
		stats = []modelStat{s.stats.get(p.Tenant, model, res.Version)}
	default:
		if err := checkName("model", model); err != nil {
			return err
		}
		refs, err := s.refs.Refs(r.Context(), p.Tenant, model)
		if err != nil {
			return notFoundAs(err, "model %q not found", model)
		}
		for _, v := range refs.VersionList() {
			n, _ := strconv.Atoi(v)
			stats = append(stats, s.stats.get(p.Tenant, model, n))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"model_stats": stats})
	return nil
}
