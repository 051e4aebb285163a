package platform

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/platform/internal/registry"
	"github.com/aiaas/aiaas/platform/internal/serving"
	"github.com/aiaas/aiaas/platform/oip"
)

const headerLenHeader = "Inference-Header-Content-Length"

// bufPool recycles request and response buffers of the hot path.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// readBody reads a request body into a pooled buffer; call put when done.
func readBody(r *http.Request) (b []byte, put func(), err error) {
	bp := bufPool.Get().(*[]byte)
	buf := (*bp)[:0]
	if r.ContentLength > 0 && int64(cap(buf)) < r.ContentLength {
		buf = make([]byte, 0, r.ContentLength)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			// Closed once read whole, net/http has nothing left to
			// drain after the handler (it would allocate to find that).
			r.Body.Close()
			break
		}
		if err != nil {
			*bp = buf
			bufPool.Put(bp)
			return nil, func() {}, bodyErr(err)
		}
	}
	return buf, func() {
		if cap(buf) <= 8<<20 { // do not pin huge buffers
			*bp = buf[:0]
			bufPool.Put(bp)
		}
	}, nil
}

func readAll(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, bodyErr(err)
	}
	return b, nil
}

// oipErr maps the codec's errors to statuses.
func oipErr(err error) error {
	if errors.Is(err, oip.ErrTooLarge) {
		return wrapStatus(http.StatusRequestEntityTooLarge, err)
	}
	if errors.Is(err, oip.ErrBadRequest) {
		return wrapStatus(http.StatusBadRequest, err)
	}
	return err
}

// decodeInfer parses an OIP request, JSON or binary.
func (s *Server) decodeInfer(r *http.Request, body []byte) (*oip.InferenceRequest, error) {
	headerLen := -1
	if h := r.Header.Get(headerLenHeader); h != "" {
		n, err := strconv.Atoi(h)
		if err != nil || n < 0 {
			return nil, httpErr(http.StatusBadRequest, "%s must be the length of the JSON header in bytes (0..%d), got %q", headerLenHeader, len(body), truncate(h, 20))
		}
		if n > len(body) {
			// The inflated body when it came compressed, as Triton's
			// clients count it.
			return nil, httpErr(http.StatusBadRequest, "%s is %d but the body has only %d bytes", headerLenHeader, n, len(body))
		}
		headerLen = n
	}
	req, err := oip.DecodeRequest(body, headerLen, &oip.Limits{MaxBodyBytes: s.cfg.MaxBodyBytes})
	if err != nil {
		return nil, oipErr(err)
	}
	return req, nil
}

// modelInput checks a request's inputs against the model's signature and
// returns the batch: one input, named as the signature names it, shape
// [batch, features] (a lone sample may also come as [features]).
func modelInput(m *nn.Model, spec *nn.Spec, ins []oip.RequestInput) ([]float32, int, error) {
	want := spec.Inputs[0]
	var in *oip.RequestInput
	for i := range ins {
		if ins[i].Name == want.Name {
			in = &ins[i]
		} else {
			return nil, 0, httpErr(http.StatusBadRequest, "unknown input %q: the model's input is %q %s %v", truncate(ins[i].Name, 64), want.Name, want.Datatype, want.Shape)
		}
	}
	if in == nil {
		return nil, 0, httpErr(http.StatusBadRequest, "missing input %q (%s, shape %v)", want.Name, want.Datatype, want.Shape)
	}
	if in.Datatype == oip.BYTES || in.Bytes != nil {
		return nil, 0, httpErr(http.StatusBadRequest, "input %q: datatype BYTES is not accepted; send %s numbers", in.Name, want.Datatype)
	}
	if batch, ok := batchOf(in.Shape, want.Shape); ok {
		return in.F32, batch, nil
	}
	return nil, 0, httpErr(http.StatusBadRequest, "input %q has shape %v; the model takes %v (-1: any batch size ≥ 1)", in.Name, in.Shape, want.Shape)
}

// batchOf returns the batch size of an input of shape got for a model
// whose input signature is want ([-1, D] or [-1, C, H, W]): got is want
// with a batch size ≥ 1, or a lone sample without the batch dimension, or,
// for images, the flat [batch, C·H·W].
func batchOf(got, want []int64) (int, bool) {
	d := int64(1)
	for _, v := range want[1:] {
		d *= v
	}
	switch {
	case len(got) == len(want) && got[0] >= 1 && slices.Equal(got[1:], want[1:]):
		return int(got[0]), true
	case len(got) == len(want)-1 && slices.Equal(got, want[1:]):
		return 1, true
	case len(got) == 2 && got[0] >= 1 && got[1] == d:
		return int(got[0]), true
	case len(got) == 1 && got[0] == d:
		return 1, true
	}
	return 0, false
}

// modelOutputs builds the response outputs, honouring the request's output
// selection and binary flags.
func modelOutputs(m *nn.Model, spec *nn.Spec, out []float32, batch int, req *oip.InferenceRequest) ([]oip.ResponseOutput, error) {
	name := spec.Outputs[0].Name
	// The answer and its shape in one allocation.
	a := new(struct {
		outs  [1]oip.ResponseOutput
		shape [2]int64
	})
	a.shape = [2]int64{int64(batch), int64(m.OutputDim())}
	o := oip.ResponseOutput{Name: name, Shape: a.shape[:], Datatype: oip.FP32, F32: out, Binary: req.BinaryOutput}
	if len(req.Outputs) == 0 {
		a.outs[0] = o
		return a.outs[:], nil
	}
	res := a.outs[:0]
	for _, ro := range req.Outputs {
		if ro.Name != name {
			return nil, httpErr(http.StatusBadRequest, "unknown output %q: the model's output is %q", truncate(ro.Name, 64), name)
		}
		if len(res) > 0 {
			return nil, httpErr(http.StatusBadRequest, "output %q requested twice", name)
		}
		o.Binary = ro.Binary
		res = append(res, o)
	}
	return res, nil
}

// stickyKey is what pins a request to one side of a split alias: the
// inference request id, else a client-chosen X-Request-Id.
func stickyKey(r *http.Request, id string) string {
	if id != "" {
		return id
	}
	if h := r.Header.Get("X-Request-Id"); validRequestID(h) {
		return h
	}
	return ""
}

func (s *Server) handleInfer(w http.ResponseWriter, r *http.Request) error {
	start := time.Now()
	p := principalOf(r.Context())
	body, put, err := readBody(r)
	if err != nil {
		return err
	}
	defer put()
	req, err := s.decodeInfer(r, body)
	if err != nil {
		return err
	}
	decoded := time.Since(start)
	var t serving.Timings
	l, err := s.load(r.Context(), p.Tenant, r.PathValue("model"), r.PathValue("version"), stickyKey(r, req.ID), &t)
	if err != nil {
		return err
	}
	outs, err := s.infer(r.Context(), p.Tenant, l, req, &t)
	if err != nil {
		s.stats.fail(p.Tenant, l, time.Since(start))
		return err
	}
	resp := oip.InferenceResponse{ModelName: l.Model, ModelVersion: strconv.Itoa(l.Version), ID: req.ID,
		Parameters: l.parameters(), Outputs: outs}
	setAuditObject(r, "models/"+l.Model+"/versions/"+strconv.Itoa(l.Version))
	encodeStart := time.Now()
	writeInferResponse(w, &resp, &t)
	rows := 1
	if sh := req.Inputs[0].Shape; len(sh) >= 2 {
		rows = int(min(sh[0], 1<<30))
	}
	s.stats.success(p.Tenant, l, rows, time.Since(start), decoded, t.Compute, time.Since(encodeStart))
	return nil
}

// infer runs an OIP request on a loaded model of either architecture.
func (s *Server) infer(ctx context.Context, tenant string, l *lineage, req *oip.InferenceRequest, t *serving.Timings) ([]oip.ResponseOutput, error) {
	lm := l.loaded
	if lm.graph != nil {
		in, err := graphInputs(lm, req.Inputs)
		if err != nil {
			return nil, err
		}
		out, err := s.runGraph(ctx, tenant, l, in, t)
		if err != nil {
			return nil, err
		}
		outs, err := graphOutputs(lm, out, req)
		if err != nil {
			return nil, err
		}
		if len(lm.outputs) == 0 {
			return outs, nil
		}
		return outs, classifyOutputs(outs, req, lm.outputs[0].Name, lm.labels)
	}
	x, batch, err := modelInput(lm.model, &lm.spec, req.Inputs)
	if err != nil {
		return nil, err
	}
	out, err := s.forward(ctx, tenant, l, x, batch, t)
	if err != nil {
		return nil, err
	}
	outs, err := modelOutputs(lm.model, &lm.spec, out, batch, req)
	if err != nil {
		return nil, err
	}
	return outs, classifyOutputs(outs, req, lm.spec.Outputs[0].Name, lm.labels)
}

var (
	octetStream     = []string{"application/octet-stream"}
	applicationJSON = []string{"application/json"}
)

func writeInferResponse(w http.ResponseWriter, resp *oip.InferenceResponse, t *serving.Timings) {
	bp := bufPool.Get().(*[]byte)
	b, headerLen := oip.AppendResponse((*bp)[:0], resp)
	h := w.Header()
	// Direct assignment of canonical keys: Header.Set would allocate a
	// slice for each, on every response. The constant values' slices
	// are shared; net/http only reads them, and Add would copy.
	// One backing array for the three values set here.
	vals := make([]string, 3)
	if headerLen >= 0 {
		vals[2] = strconv.Itoa(headerLen)
		h[headerLenHeader] = vals[2:3:3]
		h["Content-Type"] = octetStream
	} else {
		h["Content-Type"] = applicationJSON
	}
	vals[0], vals[1] = strconv.Itoa(len(b)), t.Header()
	h["Content-Length"] = vals[0:1:1]
	h["Server-Timing"] = vals[1:2:2]
	w.WriteHeader(http.StatusOK)
	w.Write(b)
	if cap(b) <= 8<<20 {
		*bp = b[:0]
		bufPool.Put(bp)
	}
}

// --- model metadata and readiness -----------------------------------------

func (s *Server) handleModelMetadata(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	model := r.PathValue("model")
	if err := checkName("model", model); err != nil {
		return err
	}
	res, err := s.refs.Resolve(r.Context(), p.Tenant, model, r.PathValue("version"), "")
	if err != nil {
		return err
	}
	refs, err := s.refs.Refs(r.Context(), p.Tenant, model)
	if err != nil {
		return err
	}
	var vm registry.Meta
	if err := jsonUnmarshal(res.Info.Meta, &vm); err != nil || len(vm.Inputs) == 0 {
		// Old or foreign metadata: read the signature from the artifact.
		var t serving.Timings
		l, err := s.load(r.Context(), p.Tenant, model, strconv.Itoa(res.Version), "", &t)
		if err != nil {
			return err
		}
		vm.Inputs, vm.Outputs = l.loaded.inputs, l.loaded.outputs
		if l.loaded.graph != nil {
			vm.Architecture = registry.ArchGraph
		}
	}
	platform := "aiaas_gonum"
	if vm.Architecture == registry.ArchGraph {
		platform = "aiaas_onnx"
	}
	md := oip.ModelMetadata{Name: model, Versions: refs.VersionList(), Platform: platform}
	for _, in := range vm.Inputs {
		md.Inputs = append(md.Inputs, oip.TensorMetadata{Name: in.Name, Datatype: in.Datatype, Shape: in.Shape})
	}
	for _, o := range vm.Outputs {
		md.Outputs = append(md.Outputs, oip.TensorMetadata{Name: o.Name, Datatype: o.Datatype, Shape: o.Shape})
	}
	writeJSON(w, http.StatusOK, md)
	return nil
}

// handleModelReady loads the model (or finds it warm): ready means the
// next inference will not fail for want of the model.
func (s *Server) handleModelReady(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	model := r.PathValue("model")
	var t serving.Timings
	_, err := s.load(r.Context(), p.Tenant, model, r.PathValue("version"), "", &t)
	if err != nil {
		if st := statusOf(err); st == http.StatusNotFound || st == http.StatusBadRequest {
			return err
		}
		s.log.Warn("model not ready", "tenant", p.Tenant, "model", model, "err", err)
		writeJSON(w, http.StatusOK, map[string]any{"name": model, "ready": false})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": model, "ready": true})
	return nil
}

func jsonUnmarshal(b []byte, v any) error {
	if len(strings.TrimSpace(string(b))) == 0 {
		return errors.New("empty")
	}
	return json.Unmarshal(b, v)
}
