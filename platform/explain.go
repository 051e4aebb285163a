package platform

import (
	"fmt"
	"net/http"
	"time"

	"github.com/aiaas/aiaas/nn/graph"
	"github.com/aiaas/aiaas/platform/internal/serving"
)

// Model-agnostic attributions for graph models, which have no gradients
// here: occlusion (Zeiler & Fergus, 2014) for images — each patch of the
// H×W plane, across channels, replaced by a baseline value — and feature
// ablation for everything else — each element in turn. An element's
// attribution is how much the target output drops when its patch (or it)
// is taken away: f(x) − f(x with the patch at the baseline).
const (
	methodOcclusion = "occlusion"
	methodAblation  = "feature_ablation"
	// maxExplainEvals bounds the forward passes one explain costs.
	maxExplainEvals = 4096
	// explainChunk is how many perturbed copies run as one batch when the
	// model's first dimension is dynamic.
	explainChunk = 32
)

func (s *Server) explainGraph(w http.ResponseWriter, r *http.Request, l *lineage, req *explainRequest, t *serving.Timings) error {
	lm := l.loaded
	if len(lm.inputs) != 1 || lm.inputs[0].Datatype != "FP32" {
		return httpErr(http.StatusBadRequest, "explain needs a model with one FP32 input; %s has %s", l.Model, names(lm.inputs))
	}
	sig := lm.inputs[0].Shape
	shape := req.Shape
	if shape == nil {
		shape = make([]int64, len(sig))
		for i, d := range sig {
			shape[i] = d
			if d < 0 {
				shape[i] = 1
				if i > 0 {
					return httpErr(http.StatusBadRequest, "the model's input has shape %v: give \"shape\"", sig)
				}
			}
		}
	}
	if len(shape) == 0 || shape[0] != 1 {
		return httpErr(http.StatusBadRequest, "explain takes one sample: shape %v must start with 1", shape)
	}
	x, err := tensorOf(graph.Float32, shape, req.Input, lm.inputs[0].Name)
	if err != nil {
		return err
	}
	method := req.Method
	if method == "" {
		method = methodAblation
		if len(shape) == 4 {
			method = methodOcclusion
		}
	}
	var baseline float32
	if req.Baseline != nil {
		baseline = *req.Baseline
	}
	// The groups of elements perturbed together.
	n := len(req.Input)
	var groups [][]int
	patch := 0
	switch method {
	case methodOcclusion:
		if len(shape) != 4 {
			return httpErr(http.StatusBadRequest, "occlusion needs an NCHW image input; shape %v", shape)
		}
		c, h, wd := int(shape[1]), int(shape[2]), int(shape[3])
		patch = req.Patch
		if patch == 0 {
			patch = max(1, min(h, wd)/8)
		}
		if patch < 1 || patch > max(h, wd) {
			return httpErr(http.StatusBadRequest, "patch must be between 1 and %d", max(h, wd))
		}
		for py := 0; py < h; py += patch {
			for px := 0; px < wd; px += patch {
				var g []int
				for ch := 0; ch < c; ch++ {
					for y := py; y < min(h, py+patch); y++ {
						for xx := px; xx < min(wd, px+patch); xx++ {
							g = append(g, (ch*h+y)*wd+xx)
						}
					}
				}
				groups = append(groups, g)
			}
		}
	case methodAblation:
		groups = make([][]int, n)
		for i := range groups {
			groups[i] = []int{i}
		}
	default:
		return httpErr(http.StatusBadRequest, "method for graph models must be %q or %q (gradient methods need a dense model)", methodOcclusion, methodAblation)
	}
	if len(groups) > maxExplainEvals {
		return httpErr(http.StatusBadRequest, "%d forward passes needed, limit %d: use a larger patch", len(groups), maxExplainEvals)
	}
	start := time.Now()
	base, err := s.runGraph(r.Context(), principalOf(r.Context()).Tenant, l, []*graph.Tensor{x}, t)
	if err != nil {
		return err
	}
	out := floatsOf(base[0])
	target := argmax(out)
	if req.Target != nil {
		target = *req.Target
		if target < 0 || target >= len(out) {
			return httpErr(http.StatusBadRequest, "target %d out of range: the first output has %d values", target, len(out))
		}
	}
	chunk := 1
	if len(sig) > 0 && sig[0] < 0 {
		chunk = explainChunk
	}
	scores := make([]float32, len(groups))
	buf := make([]float32, chunk*n)
	for g0 := 0; g0 < len(groups); g0 += chunk {
		k := min(chunk, len(groups)-g0)
		for j := 0; j < k; j++ {
			row := buf[j*n : (j+1)*n]
			copy(row, req.Input)
			for _, i := range groups[g0+j] {
				row[i] = baseline
			}
		}
		bs := append([]int64{int64(k)}, shape[1:]...)
		in, err := tensorOf(graph.Float32, bs, buf[:k*n], lm.inputs[0].Name)
		if err != nil {
			return err
		}
		res, err := lm.graph.Run(r.Context(), []*graph.Tensor{in}, nil)
		if err != nil {
			return err
		}
		o := floatsOf(res[0])
		per := len(o) / k
		for j := 0; j < k; j++ {
			scores[g0+j] = o[j*per+target]
		}
	}
	attr := make([]float32, n)
	for gi, g := range groups {
		d := out[target] - scores[gi]
		for _, i := range g {
			attr[i] = d
		}
	}
	if err := finite(l, "the attributions", attr); err != nil {
		return err
	}
	t.Compute = time.Since(start)
	w.Header().Set("Server-Timing", t.Header())
	setAuditObject(r, fmt.Sprintf("models/%s/versions/%d", l.Model, l.Version))
	resp := map[string]any{
		"model": l.Model, "version": l.Version, "target": target, "method": method,
		"shape": shape, "baseline": baseline, "evaluations": len(groups) + 1,
		"output": out, "attributions": attr, "parameters": l.parameters(),
	}
	if patch > 0 {
		resp["patch"] = patch
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}
