package platform

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/aiaas/aiaas/internal/safetensors"
	"github.com/aiaas/aiaas/nn/graph"
	"github.com/aiaas/aiaas/platform/internal/records"
	"github.com/aiaas/aiaas/platform/internal/serving"
	"github.com/aiaas/aiaas/platform/oip"
	"github.com/aiaas/aiaas/platform/tracing"
	"github.com/aiaas/aiaas/plugins"
)

// The tenant records of plugins and endpoints live in package records;
// the aliases keep them platform types for the programs and clients that
// build them (their JSON is the API's).
type (
	// PluginRecord is what the store keeps of an uploaded plugin; the
	// module itself is a content-addressed blob.
	PluginRecord = records.Plugin
	// Endpoint binds a model ref to optional plugins.
	Endpoint = records.Endpoint
	// GenerationConfig is an endpoint's generation settings.
	GenerationConfig = records.GenerationConfig
)

var errNoPlugins = httpErr(http.StatusNotImplemented, "plugins are disabled on this server")

// PluginsEnabled reports whether this server runs plugins; without a
// plugin runtime, storing a plugin or an endpoint that names one fails
// with status 501.
func (s *Server) PluginsEnabled() bool { return s.plugins != nil }

// PutPlugin stores a WebAssembly module as a tenant's (by id) plugin name.
// A module already stored under that name with the same sha256 is kept as
// it is, without being validated again (validating compiles and starts
// it, which a program that stores its plugins at every start need not
// pay). An invalid module wraps plugins.ErrInvalidModule.
func (s *Server) PutPlugin(ctx context.Context, tenant, name string, wasm []byte) (*PluginRecord, error) {
	if s.plugins == nil {
		return nil, errNoPlugins
	}
	if err := checkName("plugin", name); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(wasm)
	if old, err := s.pluginRecord(ctx, tenant, name); err == nil && old.SHA256 == hex.EncodeToString(sum[:]) {
		return old, nil
	}
	return s.putPlugin(ctx, tenant, name, wasm)
}

// putPlugin validates a module and stores it under name.
func (s *Server) putPlugin(ctx context.Context, tenant, name string, wasm []byte) (*PluginRecord, error) {
	if s.plugins == nil {
		return nil, errNoPlugins
	}
	info, err := s.plugins.ValidateFor(ctx, tenant, wasm)
	if err != nil {
		return nil, err
	}
	if old, err := s.pluginRecord(ctx, tenant, name); err == nil && old.SHA256 == info.SHA256 {
		return old, nil // same module again: nothing to do
	}
	sum, err := s.store.PutBlob(ctx, tenant, "plugin-blobs", info.SHA256, bytes.NewReader(wasm), int64(len(wasm)))
	if err != nil {
		return nil, err
	}
	if sum != info.SHA256 {
		return nil, fmt.Errorf("plugin %s: stored sha256 %s differs from validated %s", name, sum, info.SHA256)
	}
	return s.records.PutPlugin(ctx, tenant, PluginRecord{Name: name, SHA256: info.SHA256, Size: int64(len(wasm)),
		Exports: info.Exports, ABIVersion: info.ABIVersion})
}

// pluginRecord reads a tenant's plugin record through the cache.
func (s *Server) pluginRecord(ctx context.Context, tenant, name string) (*PluginRecord, error) {
	return s.records.Plugin(ctx, tenant, name)
}

func (s *Server) module(tenant string, rec *PluginRecord) plugins.Module {
	return plugins.Module{SHA256: rec.SHA256, Load: func(ctx context.Context) ([]byte, error) {
		return s.store.GetBlob(ctx, tenant, "plugin-blobs", rec.SHA256)
	}}
}

func (s *Server) handlePutPlugin(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	name := r.PathValue("plugin")
	if err := checkName("plugin", name); err != nil {
		return err
	}
	wasm, err := readAll(r)
	if err != nil {
		return err
	}
	rec, err := s.putPlugin(r.Context(), p.Tenant, name, wasm)
	if err != nil {
		return err
	}
	setAuditObject(r, "plugins/"+name)
	writeJSON(w, http.StatusCreated, rec)
	return nil
}

func (s *Server) handleGetPlugin(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	name := r.PathValue("plugin")
	if err := checkName("plugin", name); err != nil {
		return err
	}
	rec, err := s.pluginRecord(r.Context(), p.Tenant, name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rec)
	return nil
}

func (s *Server) handleListPlugins(w http.ResponseWriter, r *http.Request) error {
	out, err := s.records.Plugins(r.Context(), principalOf(r.Context()).Tenant)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"plugins": out})
	return nil
}

// --- endpoints ------------------------------------------------------------

// PutEndpoint validates ep and stores it as a tenant's (by id) endpoint,
// replacing one of the same name. Its model and version must resolve and
// its plugins be stored; a missing one wraps modelstore.ErrNotFound.
func (s *Server) PutEndpoint(ctx context.Context, tenant string, ep Endpoint) error {
	_, _, err := s.putEndpoint(ctx, tenant, ep)
	return err
}

// putEndpoint validates and stores an endpoint; created reports a new one.
func (s *Server) putEndpoint(ctx context.Context, tenant string, ep Endpoint) (*Endpoint, bool, error) {
	if err := checkName("endpoint", ep.Name); err != nil {
		return nil, false, err
	}
	if err := checkName("model", ep.Model); err != nil {
		return nil, false, err
	}
	if err := records.CheckEndpoint(&ep); err != nil {
		return nil, false, err
	}
	if _, err := s.refs.Resolve(ctx, tenant, ep.Model, ep.Version, ""); err != nil {
		return nil, false, err
	}
	for _, pl := range []string{ep.Preprocess, ep.Postprocess} {
		if pl == "" {
			continue
		}
		if s.plugins == nil {
			return nil, false, errNoPlugins
		}
		if err := checkName("plugin", pl); err != nil {
			return nil, false, err
		}
		if _, err := s.pluginRecord(ctx, tenant, pl); err != nil {
			return nil, false, err
		}
	}
	return s.records.PutEndpoint(ctx, tenant, ep)
}

// endpoint reads a tenant's endpoint through the cache.
func (s *Server) endpoint(ctx context.Context, tenant, name string) (*Endpoint, error) {
	return s.records.Endpoint(ctx, tenant, name)
}

func (s *Server) handlePutEndpoint(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	var req struct {
		Model         string            `json:"model"`
		Version       string            `json:"version"`
		Preprocess    string            `json:"preprocess"`
		Postprocess   string            `json:"postprocess"`
		ForwardInputs []string          `json:"forward_inputs"`
		Generation    *GenerationConfig `json:"generation"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	ep, created, err := s.putEndpoint(r.Context(), p.Tenant, Endpoint{Name: r.PathValue("endpoint"), Model: req.Model,
		Version: req.Version, Preprocess: req.Preprocess, Postprocess: req.Postprocess,
		ForwardInputs: req.ForwardInputs, Generation: req.Generation})
	if err != nil {
		return err
	}
	setAuditObject(r, "endpoints/"+ep.Name)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, ep)
	return nil
}

func (s *Server) handleGetEndpoint(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	name := r.PathValue("endpoint")
	if err := checkName("endpoint", name); err != nil {
		return err
	}
	ep, err := s.endpoint(r.Context(), p.Tenant, name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ep)
	return nil
}

func (s *Server) handleListEndpoints(w http.ResponseWriter, r *http.Request) error {
	out, err := s.records.Endpoints(r.Context(), principalOf(r.Context()).Tenant)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"endpoints": out})
	return nil
}

func (s *Server) handleDeleteEndpoint(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	name := r.PathValue("endpoint")
	if err := checkName("endpoint", name); err != nil {
		return err
	}
	if err := s.records.DeleteEndpoint(r.Context(), p.Tenant, name); err != nil {
		return err
	}
	setAuditObject(r, "endpoints/"+name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleInvoke runs raw bytes → preprocess → forward → postprocess.
func (s *Server) handleInvoke(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	name := r.PathValue("endpoint")
	if err := checkName("endpoint", name); err != nil {
		return err
	}
	ep, err := s.endpoint(r.Context(), p.Tenant, name)
	if err != nil {
		return err
	}
	setAuditObject(r, "endpoints/"+name)
	body, put, err := readBody(r)
	if err != nil {
		return err
	}
	defer put()
	var t serving.Timings
	var oipReq *oip.InferenceRequest
	id := ""
	if ep.Preprocess == "" {
		if oipReq, err = s.decodeInfer(r, body); err != nil {
			return err
		}
		id = oipReq.ID
	}
	l, err := s.load(r.Context(), p.Tenant, ep.Model, ep.Version, stickyKey(r, id), &t)
	if err != nil {
		return err
	}
	lm := l.loaded
	var tensors []safetensors.Tensor
	if ep.Preprocess != "" {
		rec, err := s.pluginRecord(r.Context(), p.Tenant, ep.Preprocess)
		if err != nil {
			return err
		}
		l.PreSHA256 = rec.SHA256
		start := time.Now()
		pctx, span := tracing.Start(r.Context(), s.tracer, "plugin.preprocess")
		tensors, err = s.plugins.Preprocess(pctx, p.Tenant, s.module(p.Tenant, rec), r.Header.Get("Content-Type"), body)
		tracing.End(span, err)
		t.Pre = time.Since(start)
		s.observePlugin(p.Tenant, "preprocess", t.Pre, err)
		if err != nil {
			return err
		}
	}
	var outTensors []safetensors.Tensor
	switch {
	case ep.Preprocess == "" && ep.Postprocess == "":
		outs, err := s.infer(r.Context(), p.Tenant, l, oipReq, &t)
		if err != nil {
			return err
		}
		writeInferResponse(w, &oip.InferenceResponse{ModelName: l.Model, ModelVersion: strconv.Itoa(l.Version),
			ID: id, Parameters: l.parameters(), Outputs: outs}, &t)
		return nil
	case lm.graph != nil:
		var in []*graph.Tensor
		if ep.Preprocess != "" {
			in, err = pluginGraphInputs(lm, tensors)
		} else {
			in, err = graphInputs(lm, oipReq.Inputs)
		}
		if err != nil {
			return err
		}
		out, err := s.runGraph(r.Context(), p.Tenant, l, in, &t)
		if err != nil {
			return err
		}
		if ep.Postprocess == "" {
			outs, err := graphOutputs(lm, out, &oip.InferenceRequest{})
			if err != nil {
				return err
			}
			writeInferResponse(w, &oip.InferenceResponse{ModelName: l.Model, ModelVersion: strconv.Itoa(l.Version),
				ID: id, Parameters: l.parameters(), Outputs: outs}, &t)
			return nil
		}
		outTensors = graphTensors(lm, out)
	default:
		var x []float32
		var batch int
		if ep.Preprocess != "" {
			x, batch, err = tensorInput(lm, tensors)
		} else {
			x, batch, err = modelInput(lm.model, &lm.spec, oipReq.Inputs)
		}
		if err != nil {
			return err
		}
		out, err := s.forward(r.Context(), p.Tenant, l, x, batch, &t)
		if err != nil {
			return err
		}
		if ep.Postprocess == "" {
			outs, err := modelOutputs(lm.model, &lm.spec, out, batch, &oip.InferenceRequest{})
			if err != nil {
				return err
			}
			writeInferResponse(w, &oip.InferenceResponse{ModelName: l.Model, ModelVersion: strconv.Itoa(l.Version),
				ID: id, Parameters: l.parameters(), Outputs: outs}, &t)
			return nil
		}
		outTensors = []safetensors.Tensor{safetensors.F32(lm.spec.Outputs[0].Name, []int{batch, lm.model.OutputDim()}, out)}
	}
	rec, err := s.pluginRecord(r.Context(), p.Tenant, ep.Postprocess)
	if err != nil {
		return err
	}
	l.PostSHA256 = rec.SHA256
	start := time.Now()
	outF := &safetensors.File{Metadata: postprocessParams(r), Tensors: withInputs(outTensors, tensors, ep.ForwardInputs)}
	outF.Metadata["model"], outF.Metadata["model_version"] = l.Model, strconv.Itoa(l.Version)
	pctx, span := tracing.Start(r.Context(), s.tracer, "plugin.postprocess")
	resp, ctype, err := s.plugins.Postprocess(pctx, p.Tenant, s.module(p.Tenant, rec), outF)
	tracing.End(span, err)
	t.Post = time.Since(start)
	s.observePlugin(p.Tenant, "postprocess", t.Post, err)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.Itoa(len(resp)))
	h.Set("Server-Timing", t.Header())
	l.setHeaders(h)
	w.WriteHeader(http.StatusOK)
	w.Write(resp)
	return nil
}

// withInputs adds to the model's outputs, for the postprocess plugin, the
// preprocess plugin's tensors the endpoint forwards (its forward_inputs)
// that no output shadows: a pooling plugin needs the attention mask the
// tokenizer made, which the model does not return.
func withInputs(outs, ins []safetensors.Tensor, names []string) []safetensors.Tensor {
	if len(ins) == 0 || len(names) == 0 {
		return outs
	}
	res := slices.Clip(outs)
	for _, in := range ins {
		if slices.Contains(names, in.Name) && !slices.ContainsFunc(outs, func(o safetensors.Tensor) bool { return o.Name == in.Name }) {
			res = append(res, in)
		}
	}
	return res
}

// postprocessParams passes the invoke's query parameters (?k=5) to the
// postprocess plugin as the safetensors metadata it receives; bounded,
// since they come from the client.
func postprocessParams(r *http.Request) map[string]string {
	m := map[string]string{}
	for k, vs := range r.URL.Query() {
		if len(m) == 32 || len(k) > 64 || len(vs) == 0 || len(vs[0]) > 4096 {
			continue
		}
		m[k] = vs[0]
	}
	return m
}

func (s *Server) observePlugin(tenant, stage string, d time.Duration, err error) {
	s.metrics.PluginCall(tenant, stage, d, err)
}

// tensorInput maps a preprocess plugin's tensors to the model's input: the
// tensor named like the model's input, or the only tensor there is.
func tensorInput(lm *loadedModel, ts []safetensors.Tensor) ([]float32, int, error) {
	want := lm.spec.Inputs[0].Name
	var t *safetensors.Tensor
	for i := range ts {
		if ts[i].Name == want {
			t = &ts[i]
		}
	}
	if t == nil && len(ts) == 1 {
		t = &ts[0]
	}
	if t == nil {
		return nil, 0, httpErr(http.StatusUnprocessableEntity, "the preprocess plugin returned %d tensors and none is named %q", len(ts), want)
	}
	if t.DType != "F32" {
		return nil, 0, httpErr(http.StatusUnprocessableEntity, "the preprocess plugin returned %s data; the model takes F32", t.DType)
	}
	shape := make([]int64, len(t.Shape))
	for i, v := range t.Shape {
		shape[i] = int64(v)
	}
	batch, ok := batchOf(shape, lm.spec.Inputs[0].Shape)
	if !ok {
		return nil, 0, httpErr(http.StatusUnprocessableEntity, "the preprocess plugin returned shape %v; the model takes %v", t.Shape, lm.spec.Inputs[0].Shape)
	}
	// The tensor's bytes are this call's copy of the plugin's output and
	// nothing writes them: the model may read them in place.
	x, err := t.Float32View()
	if err != nil {
		return nil, 0, httpErr(http.StatusUnprocessableEntity, "the preprocess plugin's tensor: %v", err)
	}
	return x, batch, nil
}
