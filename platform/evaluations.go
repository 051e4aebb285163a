package platform

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"runtime"
	rtmetrics "runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aiaas/aiaas/nn/dataset"
	"github.com/aiaas/aiaas/nn/graph"
	"github.com/aiaas/aiaas/nn/nnbench"
	"github.com/aiaas/aiaas/platform/evaluation"
	"github.com/aiaas/aiaas/platform/internal/jobs"
	"github.com/aiaas/aiaas/platform/internal/registry"
	"github.com/aiaas/aiaas/platform/tracing"
	"github.com/aiaas/aiaas/platform/training"
)

// Evaluation jobs run candidate model versions over one labelled dataset
// and report their quality, latency, memory and estimated Lambda cost
// side by side. They share the training jobs' machinery: the same local
// worker pool and per-tenant share (jobs.PerTenant counts both), the same
// dispatcher to the Lambda train function (RunJob hands an evaluation id
// to RunEvaluation), the same stale-worker rule. A finished evaluation's
// record is never written again.

// Evaluation is an evaluation job as the API shows it and the store keeps it.
type Evaluation struct {
	ID       string              `json:"id"`
	Status   string              `json:"status"` // queued, running, succeeded, failed, canceled
	Request  evaluation.Request  `json:"request"`
	Dataset  *EvalDataset        `json:"dataset,omitempty"`
	Progress *EvalProgress       `json:"progress,omitempty"`
	Results  []evaluation.Result `json:"results"`
	Error    string              `json:"error,omitempty"`
	Created  time.Time           `json:"created"`
	Started  *time.Time          `json:"started,omitempty"`
	Finished *time.Time          `json:"finished,omitempty"`
	Updated  time.Time           `json:"updated"`
}

// EvalDataset describes the data an evaluation ran on.
type EvalDataset struct {
	Name     string `json:"name"`
	Rows     int    `json:"rows"`
	Features int    `json:"features"`
	Classes  int    `json:"classes,omitempty"`
	Shape    []int  `json:"shape,omitempty"`
	Task     string `json:"task"`
}

// EvalProgress is where a running evaluation is.
type EvalProgress struct {
	Candidate  int    `json:"candidate"` // 1-based
	Candidates int    `json:"candidates"`
	Model      string `json:"model"`
	Phase      string `json:"phase"` // loading, quality, latency
	Rows       int    `json:"rows"`
	RowsTotal  int    `json:"rows_total"`
}

// evalKind is the store kind of evaluation records; evalCancelKind holds
// a marker per cancel request, read by whichever process runs the job.
const (
	evalKind       = "evaluations"
	evalCancelKind = "evaluation-cancels"
)

// evalChunk is the rows per forward pass of the quality pass.
const evalChunk = 256

// evalBudget is the time spent timing each batch size of a candidate.
const evalBudget = 300 * time.Millisecond

// evalSaveEvery is how often a running evaluation persists its progress
// and looks for a cancel request from another process.
const evalSaveEvery = 2 * time.Second

func newEvalID() string {
	var b [8]byte
	rand.Read(b[:])
	return "e" + hex.EncodeToString(b[:])
}

// isEvalID tells an evaluation's id from a training job's ("j…").
func isEvalID(id string) bool { return strings.HasPrefix(id, "e") }

func (s *Server) saveEval(ctx context.Context, tenant string, e *Evaluation) error {
	e.Updated = time.Now().UTC()
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return s.store.Put(ctx, tenant, evalKind, e.ID, b)
}

func (s *Server) loadEval(ctx context.Context, tenant, id string) (*Evaluation, error) {
	if v, ok := s.jobs.Live(tenant, id); ok {
		if e, ok := v.(*Evaluation); ok {
			return e.snapshot(), nil
		}
	}
	b, err := s.store.Get(ctx, tenant, evalKind, id)
	if err != nil {
		return nil, notFoundAs(err, "evaluation %q not found", id)
	}
	var e Evaluation
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("evaluation %s: %w", id, err)
	}
	if reason := s.jobs.StaleReason(ctx, tenant, id, e.Status, e.Updated); reason != "" {
		e.Status, e.Error = jobFailed, reason
	}
	return &e, nil
}

// snapshot is a copy of e that shares nothing a running job writes.
func (e *Evaluation) snapshot() *Evaluation {
	cp := *e
	cp.Results = slices.Clone(e.Results)
	if e.Progress != nil {
		pr := *e.Progress
		cp.Progress = &pr
	}
	return &cp
}

func evalDone(status string) bool { return jobs.Done(status) }

func (s *Server) handleSubmitEvaluation(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	var req evaluation.Request
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	req.Defaults()
	if err := req.Validate(); err != nil {
		return wrapStatus(http.StatusBadRequest, err)
	}
	if req.Dataset != training.MNIST {
		if err := checkName("dataset", req.Dataset); err != nil {
			return err
		}
		if _, err := s.store.StatBlob(r.Context(), p.Tenant, "datasets", req.Dataset); err != nil {
			return notFoundAs(err, "dataset %q not found: upload it with PUT /v1/datasets/%s", req.Dataset, req.Dataset)
		}
	}
	// Refs are resolved now: the evaluation compares exactly these
	// versions, whatever the aliases do meanwhile.
	results := make([]evaluation.Result, len(req.Candidates))
	for i, c := range req.Candidates {
		if err := checkName("model", c.Model); err != nil {
			return err
		}
		res, err := s.refs.ResolvePrimary(r.Context(), p.Tenant, c.Model, c.Version)
		if err != nil {
			return err
		}
		results[i] = evaluation.Result{Model: c.Model, Version: c.Version, ResolvedVersion: res.Version,
			SHA256: res.Info.SHA256, ArtifactBytes: res.Info.Size, Status: evaluation.StatusPending}
	}
	now := time.Now().UTC()
	e := &Evaluation{ID: newEvalID(), Status: jobQueued, Request: req, Results: results, Created: now}
	err := s.jobs.Submit(r.Context(), p.Tenant, jobs.Submission{
		ID: e.ID, What: "evaluation", Live: e.snapshot(),
		Save: func(ctx context.Context) error { return s.saveEval(ctx, p.Tenant, e) },
		Fail: func(ctx context.Context, reason string) {
			e.Status, e.Error = jobFailed, reason
			_ = s.saveEval(ctx, p.Tenant, e)
		},
	})
	if err != nil {
		return err
	}
	setAuditObject(r, "evaluations/"+e.ID)
	writeJSON(w, http.StatusAccepted, e)
	return nil
}

func (s *Server) evalFromPath(r *http.Request) (*Evaluation, error) {
	p := principalOf(r.Context())
	id := r.PathValue("id")
	if checkName("evaluation", id) != nil || !isEvalID(id) {
		return nil, notFound("evaluation %q not found", truncate(id, 32))
	}
	return s.loadEval(r.Context(), p.Tenant, id)
}

func (s *Server) handleGetEvaluation(w http.ResponseWriter, r *http.Request) error {
	e, err := s.evalFromPath(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}

func (s *Server) handleListEvaluations(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	ids, err := s.store.List(r.Context(), p.Tenant, evalKind, "", "", 1000)
	if err != nil {
		return err
	}
	// The list has each evaluation as GET has it, less the per-class
	// detail, the confusion matrices and the per-batch latencies.
	out := []*Evaluation{}
	for _, id := range ids {
		e, err := s.loadEval(r.Context(), p.Tenant, id)
		if err != nil {
			continue
		}
		sum := e.snapshot()
		for i := range sum.Results {
			if c := sum.Results[i].Classification; c != nil {
				cc := *c
				cc.PerClass, cc.ConfusionMatrix = nil, nil
				sum.Results[i].Classification = &cc
			}
			if l := sum.Results[i].Latency; l != nil {
				ll := *l
				ll.Batches = nil
				sum.Results[i].Latency = &ll
			}
		}
		out = append(out, sum)
	}
	writeJSON(w, http.StatusOK, map[string]any{"evaluations": out})
	return nil
}

// handleCancelEvaluation stops a queued or running evaluation: the local
// pool's at once, one running in another process (a Lambda function) at
// its next progress save. It answers 202 with the record as it is; a
// finished evaluation is 409.
func (s *Server) handleCancelEvaluation(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	e, err := s.evalFromPath(r)
	if err != nil {
		return err
	}
	if evalDone(e.Status) {
		return httpErr(http.StatusConflict, "evaluation %s has already %s", e.ID, e.Status)
	}
	if err := s.store.Put(r.Context(), p.Tenant, evalCancelKind, e.ID, []byte(`{"canceled":true}`)); err != nil {
		return err
	}
	setAuditObject(r, "evaluations/"+e.ID)
	if s.jobs.Cancel(p.Tenant, e.ID) || s.dispatch != nil || e.Status != jobQueued {
		// Running here (stopping now), or elsewhere (it reads the marker).
		writeJSON(w, http.StatusAccepted, e)
		return nil
	}
	// Still in the local queue: it ends now and frees the tenant's share;
	// the worker that dequeues it finds it canceled and skips it.
	fin := time.Now().UTC()
	e.Status, e.Error, e.Finished = jobCanceled, "canceled on request", &fin
	for i := range e.Results {
		if e.Results[i].Status == evaluation.StatusPending {
			e.Results[i].Status = evaluation.StatusSkipped
		}
	}
	if err := s.saveEval(r.Context(), p.Tenant, e); err != nil {
		return err
	}
	s.jobs.DropLive(p.Tenant, e.ID)
	writeJSON(w, http.StatusAccepted, e)
	return nil
}

// cancelRequested reports whether a cancel marker exists for id.
func (s *Server) cancelRequested(ctx context.Context, tenant, id string) bool {
	_, err := s.store.Get(ctx, tenant, evalCancelKind, id)
	return err == nil
}

// errEvalCanceled: a cancel request stopped the evaluation.
var errEvalCanceled = errors.New("canceled on request")

// RunEvaluation runs a queued evaluation to the end and records it. The
// local pool calls it, and the Lambda train function through RunJob.
func (s *Server) RunEvaluation(ctx context.Context, tenant, id string) (err error) {
	e, err := s.loadEval(ctx, tenant, id)
	if err != nil {
		return err
	}
	if e.Status == jobCanceled {
		return nil // canceled while it was queued
	}
	if e.Status != jobQueued {
		return fmt.Errorf("evaluation %s is %s, not queued", id, e.Status)
	}
	record := context.WithoutCancel(ctx)
	if dl, ok := ctx.Deadline(); ok {
		// The worker's deadline (the Lambda function's): stop early
		// enough to record what was measured, as training jobs do.
		var stop context.CancelFunc
		ctx, stop = context.WithDeadline(ctx, dl.Add(-JobReserve(time.Until(dl))))
		defer stop()
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	started := time.Now().UTC()
	e.Status, e.Started = jobRunning, &started
	s.jobs.SetLive(tenant, id, e.snapshot(), func() { cancel(errEvalCanceled) })
	defer s.jobs.DropLive(tenant, id)
	if err := s.saveEval(record, tenant, e); err != nil {
		return err
	}
	defer s.jobs.Heartbeat(ctx, tenant, id)()
	// Canceled while it was queued: the deferred bookkeeping records it.
	if s.cancelRequested(ctx, tenant, id) {
		cancel(errEvalCanceled)
	}
	var mu sync.Mutex // guards e against the progress saves
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("evaluation crashed: %v", v)
		}
		mu.Lock()
		defer mu.Unlock()
		fin := time.Now().UTC()
		e.Finished, e.Progress = &fin, nil
		if cause := context.Cause(ctx); err != nil && cause != nil && ctx.Err() != nil {
			err = cause
		}
		switch {
		case err == nil:
			e.Status = jobSucceeded
		case errors.Is(err, errEvalCanceled):
			e.Status, e.Error = jobCanceled, "canceled on request"
		case errors.Is(err, context.DeadlineExceeded):
			e.Status, e.Error = jobFailed, "stopped at the worker's deadline: the candidates measured before it are kept, the others skipped; raise the function timeout, or lower limit, candidates or batches"
		case errors.Is(err, context.Canceled):
			e.Status, e.Error = jobCanceled, "stopped before the end: "+err.Error()
		default:
			e.Status, e.Error = jobFailed, err.Error()
		}
		for i := range e.Results {
			if e.Results[i].Status == evaluation.StatusPending {
				e.Results[i].Status = evaluation.StatusSkipped
			}
		}
		if x := s.saveEval(record, tenant, e); x != nil && err == nil {
			err = x
		}
	}()

	set, err := s.evalData(ctx, tenant, e.Request)
	if err != nil {
		return err
	}
	mu.Lock()
	e.Dataset = &EvalDataset{Name: e.Request.Dataset, Rows: set.N, Features: set.Features, Classes: set.Classes,
		Shape: set.Shape, Task: e.Request.Task}
	mu.Unlock()

	lastSave := time.Now()
	progress := func(pr EvalProgress) {
		mu.Lock()
		defer mu.Unlock()
		e.Progress = &pr
		s.jobs.SetLive(tenant, e.ID, e.snapshot(), nil)
		if time.Since(lastSave) > evalSaveEvery {
			lastSave = time.Now()
			_ = s.saveEval(ctx, tenant, e)
			if s.cancelRequested(ctx, tenant, id) {
				cancel(errEvalCanceled)
			}
		}
	}
	for i := range e.Results {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		mu.Lock()
		res := e.Results[i]
		mu.Unlock()
		cctx, span := tracing.Start(ctx, s.tracer, "evaluation.candidate")
		err := s.evalCandidate(cctx, tenant, &res, set, &e.Request, func(phase string, rows int) {
			progress(EvalProgress{Candidate: i + 1, Candidates: len(e.Results), Model: res.Model, Phase: phase, Rows: rows, RowsTotal: set.N})
		})
		tracing.End(span, err)
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			res.Status, res.Reason = evaluation.StatusFailed, err.Error()
			var he *Error
			if errors.As(err, &he) && he.Status >= 500 && !he.public {
				res.Reason = "internal error"
				s.log.Warn("evaluation candidate failed", "tenant", tenant, "evaluation", id, "model", res.Model, "err", err)
			}
		}
		mu.Lock()
		e.Results[i] = res
		s.jobs.SetLive(tenant, e.ID, e.snapshot(), nil)
		mu.Unlock()
	}
	return nil
}

// evalData loads an evaluation's dataset: all of it, or its first Limit rows.
func (s *Server) evalData(ctx context.Context, tenant string, req evaluation.Request) (*dataset.Set, error) {
	var set *dataset.Set
	if req.Dataset == training.MNIST {
		if req.Task == evaluation.TaskRegression {
			return nil, errors.New("the built-in MNIST data is labelled with classes; task regression needs a CSV with a numeric last column")
		}
		dir, err := dataset.MNISTDir()
		if err != nil {
			return nil, fmt.Errorf("dataset mnist is not available on this server (%v); upload a dataset instead", err)
		}
		if _, set, err = dataset.LoadMNIST(dir); err != nil {
			return nil, err
		}
	} else {
		b, err := s.store.GetBlob(ctx, tenant, "datasets", req.Dataset)
		if err != nil {
			return nil, notFoundAs(err, "dataset %q not found", req.Dataset)
		}
		if req.Task == evaluation.TaskRegression {
			set, err = training.ParseRegressionCSV(b)
		} else {
			set, err = training.ParseDataset(b)
		}
		if err != nil {
			return nil, fmt.Errorf("dataset %q: %w", req.Dataset, err)
		}
	}
	if req.Limit > 0 && req.Limit < set.N {
		set = set.Subset(req.Limit)
	}
	if set.N == 0 {
		return nil, fmt.Errorf("dataset %q has no rows", req.Dataset)
	}
	return set, nil
}

// evalRunner runs one candidate on rows of the dataset.
type evalRunner struct {
	outputs  int // values per row of the (first) output
	maxBatch int // rows per call (1 for a graph with a fixed batch of 1)
	run      func(ctx context.Context, x []float32, rows int) ([]float32, error)
	bench    func(batches []int) ([]nnbench.Batch, error)
}

// incompatible is a candidate whose signature does not fit the data.
type incompatible struct{ reason string }

func (e *incompatible) Error() string { return e.reason }

func incompat(format string, a ...any) error { return &incompatible{fmt.Sprintf(format, a...)} }

// evalCandidate evaluates one candidate into res.
func (s *Server) evalCandidate(ctx context.Context, tenant string, res *evaluation.Result, set *dataset.Set, req *evaluation.Request, progress func(phase string, rows int)) error {
	progress("loading", 0)
	refs, err := s.refs.Refs(ctx, tenant, res.Model)
	if err != nil {
		return notFoundAs(err, "model %q not found", res.Model)
	}
	info, ok := refs.Versions[res.ResolvedVersion]
	if !ok {
		return fmt.Errorf("model %q has no version %d", res.Model, res.ResolvedVersion)
	}
	lm, err := s.models.get(ctx, tenant, res.Model, info)
	if err != nil {
		return err
	}
	res.Architecture = registry.ArchDense
	if lm.graph != nil {
		res.Architecture = registry.ArchGraph
	}
	er, err := evalRunnerFor(lm, set, req.Task)
	var inc *incompatible
	if errors.As(err, &inc) {
		res.Status, res.Reason = evaluation.StatusIncompatible, inc.reason
		return nil
	}
	if err != nil {
		return err
	}
	peak := startHeapPeak()
	defer peak.stop()
	if req.Wants(evaluation.MetricQuality) {
		start := time.Now()
		if err := evalQuality(ctx, er, set, req, res, progress); err != nil {
			if errors.As(err, &inc) {
				res.Status, res.Reason = evaluation.StatusIncompatible, inc.reason
				return nil
			}
			return err
		}
		res.QualitySeconds = time.Since(start).Seconds()
	}
	if req.Wants(evaluation.MetricLatency) {
		progress("latency", set.N)
		batches := req.TimedBatches()
		if er.maxBatch == 1 {
			batches = []int{1}
		}
		bs, err := er.bench(batches)
		if err != nil {
			return fmt.Errorf("timing: %w", err)
		}
		res.Latency = latencyOf(bs)
	}
	if req.Wants(evaluation.MetricMemory) {
		res.Memory = &evaluation.Memory{ModelBytes: lm.bytes(), PeakWorkingBytes: peak.stop(),
			Source: "model_bytes: estimate of weights and buffers, as the model cache counts them; peak_working_bytes: measured heap growth during the runs (process-wide)"}
	}
	if req.Wants(evaluation.MetricCost) && res.Latency != nil {
		l := res.Latency
		c := evaluation.Estimate(int64(l.P50MS*1e6), int64(l.BestP50MS*1e6), l.BestBatch, req.MemoryMB, req.PricePerGBSecond, *req.PricePerMillionRequests)
		res.Cost = &c
	}
	res.Status = evaluation.StatusOK
	return nil
}

// heapPeak samples the heap's object bytes every millisecond and keeps
// the highest value above the live heap at its start. The start is taken
// right after a collection: sampled on a heap full of other requests'
// garbage, the next collection could drop every later sample below it
// and a run that allocated would read as growing by nothing. One forced
// collection per evaluated model is cheap next to the runs it measures.
type heapPeak struct {
	base, max int64
	done      chan struct{}
	stopped   chan struct{}
	once      sync.Once
}

func heapLive() int64 {
	s := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	rtmetrics.Read(s)
	if s[0].Value.Kind() != rtmetrics.KindUint64 {
		return 0
	}
	return int64(s[0].Value.Uint64())
}

func startHeapPeak() *heapPeak {
	runtime.GC()
	h := &heapPeak{base: heapLive(), done: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(h.stopped)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-h.done:
				return
			case <-t.C:
				if d := heapLive() - h.base; d > h.max {
					h.max = d
				}
			}
		}
	}()
	return h
}

// stop ends the sampling (once) and returns the peak growth.
func (h *heapPeak) stop() int64 {
	h.once.Do(func() {
		close(h.done)
		<-h.stopped
		if d := heapLive() - h.base; d > h.max {
			h.max = d
		}
	})
	return h.max
}

// evalRunnerFor checks a model's signature against the dataset and
// returns how to run it, or an *incompatible error saying why it cannot.
func evalRunnerFor(lm *loadedModel, set *dataset.Set, task string) (*evalRunner, error) {
	var er *evalRunner
	if lm.model != nil {
		m := lm.model
		if m.InputDim() != set.Features {
			return nil, incompat("the model takes rows of %d values (input %s); the dataset's rows have %d features", m.InputDim(), names(lm.inputs), set.Features)
		}
		er = &evalRunner{outputs: m.OutputDim(), maxBatch: evalChunk,
			run: func(ctx context.Context, x []float32, rows int) ([]float32, error) {
				return m.ForwardContext(ctx, nil, x, rows)
			},
			bench: func(batches []int) ([]nnbench.Batch, error) {
				return nnbench.Measure(m, batches, &nnbench.Options{Budget: evalBudget, MinCalls: 5})
			}}
	} else {
		g := lm.graph
		if len(lm.inputs) != 1 {
			return nil, incompat("the model takes %d inputs (%s); a dataset row feeds one", len(lm.inputs), names(lm.inputs))
		}
		in := lm.inputs[0]
		dt, _ := graph.ParseDType(in.Datatype)
		if dt != graph.Float32 && dt != graph.Float64 {
			return nil, incompat("the model's input %q is %s; dataset rows are numbers (FP32)", in.Name, in.Datatype)
		}
		per, fixed := rowShape(in.Shape)
		if per != set.Features {
			return nil, incompat("the model's input %q has shape %v; the dataset's rows have %d features", in.Name, in.Shape, set.Features)
		}
		maxBatch := evalChunk
		if fixed {
			maxBatch = 1
		}
		sample := append([]int{1}, int64sToInts(in.Shape[1:])...)
		er = &evalRunner{maxBatch: maxBatch,
			run: func(ctx context.Context, x []float32, rows int) ([]float32, error) {
				shape := append([]int64{int64(rows)}, in.Shape[1:]...)
				t, err := tensorOf(dt, shape, x, in.Name)
				if err != nil {
					return nil, err
				}
				outs, err := g.Run(ctx, []*graph.Tensor{t}, nil)
				if err != nil {
					return nil, err
				}
				if len(outs) == 0 || len(outs[0].Shape) == 0 || outs[0].Shape[0] != rows {
					return nil, incompat("the model's first output %s does not have one row per input row", names(lm.outputs[:min(1, len(lm.outputs))]))
				}
				return floatsOf(outs[0]), nil
			},
			bench: func(batches []int) ([]nnbench.Batch, error) {
				if fixed {
					batches = nil
				}
				return nnbench.MeasureGraph(g, [][]int{sample}, batches, &nnbench.Options{Budget: evalBudget, MinCalls: 5})
			}}
		// The outputs per row, from the signature when static, else from
		// a trial row.
		if len(lm.outputs) == 0 {
			return nil, incompat("the model has no outputs")
		}
		o, ok := perRow(lm.outputs[0].Shape)
		if !ok {
			out, err := er.run(context.Background(), set.X[:set.Features], 1)
			if err != nil {
				var inc *incompatible
				if errors.As(err, &inc) {
					return nil, err
				}
				return nil, incompat("the model cannot run a dataset row: %v", err)
			}
			o = len(out)
		}
		er.outputs = o
	}
	switch task {
	case evaluation.TaskRegression:
		if er.outputs != 1 {
			return nil, incompat("the model has %d outputs per row; a regression dataset needs one", er.outputs)
		}
	default:
		if er.outputs < 2 {
			return nil, incompat("the model has %d output per row; a classifier needs one per class (the dataset has %d classes) — for a numeric target use task regression", er.outputs, set.Classes)
		}
		if er.outputs < set.Classes {
			return nil, incompat("the model has %d outputs per row; the dataset has %d classes", er.outputs, set.Classes)
		}
	}
	return er, nil
}

// rowShape is the values per row of an input signature whose first
// dimension is the batch: -1 (any) or 1 (fixed). per is -1 when another
// dimension is dynamic or the first is neither.
func rowShape(shape []int64) (per int, fixed bool) {
	if len(shape) < 2 || (shape[0] != -1 && shape[0] != 1) {
		return -1, false
	}
	n := int64(1)
	for _, d := range shape[1:] {
		if d < 1 || d > math.MaxInt32 || n > math.MaxInt32/d {
			return -1, false
		}
		n *= d
	}
	return int(n), shape[0] == 1
}

// perRow is the values per row of an output signature, when static.
func perRow(shape []int64) (int, bool) {
	if len(shape) < 1 {
		return 0, false
	}
	n := int64(1)
	for _, d := range shape[1:] {
		if d < 1 || n > math.MaxInt32/d {
			return 0, false
		}
		n *= d
	}
	return int(n), true
}

func int64sToInts(s []int64) []int {
	out := make([]int, len(s))
	for i, d := range s {
		out[i] = int(d)
	}
	return out
}

// evalQuality runs the model over every row of set and tallies it.
func evalQuality(ctx context.Context, er *evalRunner, set *dataset.Set, req *evaluation.Request, res *evaluation.Result, progress func(phase string, rows int)) error {
	var tally *evaluation.Tally
	if req.Task == evaluation.TaskRegression {
		tally = evaluation.NewRegressionTally()
	} else {
		var err error
		if tally, err = evaluation.NewClassTally(max(1, set.Classes), er.outputs, req.TopK); err != nil {
			return err
		}
	}
	F := set.Features
	for i := 0; i < set.N; i += er.maxBatch {
		rows := min(er.maxBatch, set.N-i)
		out, err := er.run(ctx, set.X[i*F:(i+rows)*F], rows)
		if err != nil {
			return err
		}
		if len(out) != rows*er.outputs {
			return fmt.Errorf("the model returned %d values for %d rows of %d outputs", len(out), rows, er.outputs)
		}
		for r := range rows {
			row := out[r*er.outputs : (r+1)*er.outputs]
			for _, v := range row {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					return fmt.Errorf("the model produced %v for row %d of the dataset", v, i+r)
				}
			}
			if req.Task == evaluation.TaskRegression {
				tally.AddRegression(row[0], set.Targets[i+r])
			} else {
				tally.AddClass(row, int(set.Y[i+r]))
			}
		}
		progress("quality", i+rows)
	}
	if req.Task == evaluation.TaskRegression {
		r := tally.Regression()
		res.Regression = &r
	} else {
		c := tally.Classification(set.ClassNames)
		res.Classification = &c
	}
	return nil
}

// latencyOf summarises timed batch sizes: batch 1's figures and those of
// the batch size with the most rows per second.
func latencyOf(bs []nnbench.Batch) *evaluation.Latency {
	ms := func(ns int64) float64 { return float64(ns) / 1e6 }
	l := &evaluation.Latency{}
	best := -1
	for i, b := range bs {
		l.Batches = append(l.Batches, evaluation.BatchLatency{Batch: b.Batch, P50MS: ms(b.MedianNS), P99MS: ms(b.P99NS),
			Calls: b.Calls, RowsPerSecond: b.RowsPerSecond})
		if b.Batch == 1 {
			l.P50MS, l.P99MS, l.RowsPerSecond = ms(b.MedianNS), ms(b.P99NS), b.RowsPerSecond
		}
		if best < 0 || b.RowsPerSecond > bs[best].RowsPerSecond {
			best = i
		}
	}
	if best >= 0 {
		b := bs[best]
		l.BestBatch, l.BestP50MS, l.BestP99MS, l.BestRowsPerSecond = b.Batch, ms(b.MedianNS), ms(b.P99NS), b.RowsPerSecond
	}
	return l
}

// setAuditJustification records what the caller cited for its action in
// the request's audit record.
func setAuditJustification(r *http.Request, j string) { infoOf(r.Context()).justification = j }

// checkEvaluationFor validates an evaluation cited as the justification
// of moving model's alias to version: it exists in the tenant, has
// succeeded, and evaluated that version of the model.
func (s *Server) checkEvaluationFor(ctx context.Context, tenant, id, model string, version int) error {
	if checkName("evaluation", id) != nil || !isEvalID(id) {
		return notFound("evaluation %q not found", truncate(id, 32))
	}
	e, err := s.loadEval(ctx, tenant, id)
	if err != nil {
		return err
	}
	if e.Status != jobSucceeded {
		return httpErr(http.StatusConflict, "evaluation %s is %s; only a succeeded evaluation can justify an alias move", id, e.Status)
	}
	var evaluated []string
	for _, r := range e.Results {
		if r.Model == model {
			if r.ResolvedVersion == version {
				return nil
			}
			evaluated = append(evaluated, strconv.Itoa(r.ResolvedVersion))
		}
	}
	if len(evaluated) == 0 {
		return httpErr(http.StatusBadRequest, "evaluation %s did not evaluate model %q", id, model)
	}
	return httpErr(http.StatusBadRequest, "evaluation %s evaluated model %q version %s, not version %d", id, model, strings.Join(evaluated, ", "), version)
}
