package platform

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/aiaas/aiaas/internal/lowprio"
	"github.com/aiaas/aiaas/platform/internal/serving"
	"github.com/aiaas/aiaas/platform/tracing"
)

// lineage is what every inference response says about where it came from.
type lineage struct {
	Model       string
	Version     int
	SHA256      string
	Alias, Side string
	PreSHA256   string
	PostSHA256  string
	loaded      *loadedModel
}

// setHeaders sets the lineage as X-Aiaas-* response headers, one per
// parameter (model_sha256 → X-Aiaas-Model-Sha256): what a postprocessed
// answer, whose body is the plugin's, carries instead of parameters.
func (l *lineage) setHeaders(h http.Header) {
	set := func(k, v string) {
		if v != "" {
			h[k] = []string{v} // k is in canonical form
		}
	}
	set("X-Aiaas-Model-Version", strconv.Itoa(l.Version))
	set("X-Aiaas-Model-Sha256", l.SHA256)
	set("X-Aiaas-Alias", l.Alias)
	set("X-Aiaas-Canary-Side", l.Side)
	set("X-Aiaas-Preprocess-Sha256", l.PreSHA256)
	set("X-Aiaas-Postprocess-Sha256", l.PostSHA256)
}

func (l *lineage) parameters() map[string]any {
	plain := l.Alias == "" && l.Side == "" && l.PreSHA256 == "" && l.PostSHA256 == "" && l.loaded != nil
	if plain {
		if p := l.loaded.params.Load(); p != nil && p.version == l.Version && p.sha == l.SHA256 {
			return p.m
		}
	}
	p := map[string]any{"model_version": strconv.Itoa(l.Version), "model_sha256": l.SHA256}
	if l.Alias != "" {
		p["alias"] = l.Alias
	}
	if l.Side != "" {
		p["canary_side"] = l.Side
	}
	if l.PreSHA256 != "" {
		p["preprocess_sha256"] = l.PreSHA256
	}
	if l.PostSHA256 != "" {
		p["postprocess_sha256"] = l.PostSHA256
	}
	if plain {
		l.loaded.params.Store(&plainParams{l.Version, l.SHA256, p})
	}
	return p
}

// load resolves a model ref and returns the decoded model, from the cache
// when warm.
func (s *Server) load(ctx context.Context, tenant, model, ref, sticky string, t *serving.Timings) (_ *lineage, err error) {
	start := time.Now()
	ctx, span := tracing.Start(ctx, s.tracer, "model.load")
	defer func() { t.Load += time.Since(start); tracing.End(span, err) }()
	if err := checkName("model", model); err != nil {
		return nil, err
	}
	res, err := s.refs.Resolve(ctx, tenant, model, ref, sticky)
	if err != nil {
		return nil, err
	}
	lm, err := s.models.get(ctx, tenant, model, res.Info)
	if err != nil {
		return nil, err
	}
	infoOf(ctx).model = model
	return &lineage{Model: model, Version: res.Version, SHA256: res.Info.SHA256, Alias: res.Alias, Side: res.Side, loaded: lm}, nil
}

// forward runs the model on batch rows of x, through the batcher when
// adaptive batching is on.
func (s *Server) forward(ctx context.Context, tenant string, l *lineage, x []float32, batch int, t *serving.Timings) ([]float32, error) {
	start := time.Now()
	ctx, span := tracing.Start(ctx, s.tracer, "model.forward")
	defer span.End()
	m := l.loaded.model
	if batch < 1 || len(x) != batch*m.InputDim() {
		return nil, httpErr(http.StatusBadRequest, "input has %d values; the model takes rows of %d", len(x), m.InputDim())
	}
	var out []float32
	var err error
	if l.loaded.batcher != nil {
		out, err = l.loaded.batcher.Do(ctx, x, batch)
	} else {
		lowprio.Run(&l.loaded.rate, m.ForwardFLOPs(batch), func() {
			out, err = m.ForwardContext(ctx, nil, x, batch)
		})
	}
	s.observeCompute(tenant, l, time.Since(start), err, t)
	if err != nil {
		return nil, err
	}
	if err := finite(l, "its output", out); err != nil {
		return nil, err
	}
	return out, nil
}

// finite answers 422 when a model produced NaN or ±Inf in what: a
// property of this input on this model (values far outside what it was
// trained on overflow float32), not a server fault, and not a value JSON
// can carry.
func finite(l *lineage, what string, v []float32) error {
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return httpErr(http.StatusUnprocessableEntity, "model %s version %d produced %v in %s at index %d: the input is outside the range the model computes in float32", l.Model, l.Version, x, what, i)
		}
	}
	return nil
}

// observeCompute records a forward pass of d: in the request's timings,
// the compute histogram and, for a split alias, the canary metrics.
func (s *Server) observeCompute(tenant string, l *lineage, d time.Duration, err error, t *serving.Timings) {
	t.Compute += d
	s.metrics.Forward(tenant, l.Model, l.Alias, l.Side, d, err)
}

// --- explain ------------------------------------------------------------

type explainRequest struct {
	Version string    `json:"version"`
	Input   []float32 `json:"input"`
	Target  *int      `json:"target"`
	Method  string    `json:"method"`
	Steps   int       `json:"steps"`
	// Graph models: the input's shape (default: the signature with a
	// dynamic batch of 1), the occlusion patch size, and the value an
	// occluded or ablated element takes (default 0).
	Shape    []int64  `json:"shape"`
	Patch    int      `json:"patch"`
	Baseline *float32 `json:"baseline"`
}

const maxExplainSteps = 256

func (s *Server) handleExplain(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	var req explainRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	var t serving.Timings
	l, err := s.load(r.Context(), p.Tenant, r.PathValue("model"), req.Version, requestID(r.Context()), &t)
	if err != nil {
		return err
	}
	if l.loaded.graph != nil {
		return s.explainGraph(w, r, l, &req, &t)
	}
	if req.Method == "" {
		req.Method = "integrated_gradients"
	}
	if req.Method != "integrated_gradients" && req.Method != "gradient_x_input" {
		return httpErr(http.StatusBadRequest, `method must be "integrated_gradients" or "gradient_x_input"`)
	}
	if req.Steps == 0 {
		req.Steps = 32
	}
	if req.Steps < 1 || req.Steps > maxExplainSteps {
		return httpErr(http.StatusBadRequest, "steps must be between 1 and %d", maxExplainSteps)
	}
	m := l.loaded.model
	if len(req.Input) != m.InputDim() {
		return httpErr(http.StatusBadRequest, "input has %d values; model %s takes %d", len(req.Input), l.Model, m.InputDim())
	}
	start := time.Now()
	out, err := m.Forward(nil, req.Input, 1)
	if err != nil {
		return err
	}
	target := argmax(out)
	if req.Target != nil {
		target = *req.Target
		if target < 0 || target >= m.OutputDim() {
			return httpErr(http.StatusBadRequest, "target %d out of range: the model has %d outputs", target, m.OutputDim())
		}
	}
	attr, err := m.Attribute(r.Context(), req.Input, target, req.Method, req.Steps)
	if err != nil {
		return err
	}
	if err := finite(l, "its output", out); err != nil {
		return err
	}
	if err := finite(l, "the attributions", attr); err != nil {
		return err
	}
	t.Compute = time.Since(start)
	w.Header().Set("Server-Timing", t.Header())
	setAuditObject(r, fmt.Sprintf("models/%s/versions/%d", l.Model, l.Version))
	writeJSON(w, http.StatusOK, map[string]any{
		"model": l.Model, "version": l.Version, "target": target, "method": req.Method, "steps": req.Steps,
		"output": out, "attributions": attr, "parameters": l.parameters(),
	})
	return nil
}

func argmax(v []float32) int {
	best := 0
	for i := range v {
		if v[i] > v[best] {
			best = i
		}
	}
	return best
}
