package platform

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/nn/dataset"
	"github.com/aiaas/aiaas/platform/tracing"
	"github.com/aiaas/aiaas/platform/training"
)

// Job is a training job as the API shows it and the store keeps it.
type Job struct {
	ID       string            `json:"id"`
	Status   string            `json:"status"` // queued, running, succeeded, failed, canceled
	Model    string            `json:"model"`
	Request  training.Request  `json:"request"`
	Progress *JobProgress      `json:"progress,omitempty"`
	Epochs   []nn.EpochMetrics `json:"epochs"`
	Result   *JobResult        `json:"result,omitempty"`
	Error    string            `json:"error,omitempty"`
	Created  time.Time         `json:"created"`
	Started  *time.Time        `json:"started,omitempty"`
	Finished *time.Time        `json:"finished,omitempty"`
	Updated  time.Time         `json:"updated"`
	// Continuations counts the invocations after the first: a job its
	// worker's deadline stopped is checkpointed and continued by a new
	// invocation of the worker (the Lambda train function), up to
	// MaxJobContinuations times.
	Continuations int `json:"continuations,omitempty"`
}

// MaxJobContinuations bounds how many times a job continues after a
// deadline: 47 more 15-minute Lambda invocations, 12 hours of training
// in all. Past it the job publishes what it trained, marked as stopped.
const MaxJobContinuations = 47

// Checkpoints are blobs of kind "checkpoints": the model as it stopped
// (an ordinary artifact) and the trainer's state (nn.Checkpoint).
const checkpointKind = "checkpoints"

func checkpointNames(id string) (model, state string) { return id + ".model", id + ".state" }

// JobProgress is where a running job is.
type JobProgress struct {
	Epoch    int     `json:"epoch"`
	Epochs   int     `json:"epochs"`
	Batch    int     `json:"batch"`
	Batches  int     `json:"batches"`
	Loss     float64 `json:"loss"`
	Accuracy float64 `json:"accuracy"`
}

// JobResult is a succeeded job's outcome.
type JobResult struct {
	Version      int     `json:"version"`
	SHA256       string  `json:"sha256"`
	TestAccuracy float64 `json:"test_accuracy"`
	TestLoss     float64 `json:"test_loss"`
	WallSeconds  float64 `json:"wall_seconds"`
	// Stopped is why training ended before its last epoch: early_stopping,
	// or deadline (the worker's time limit, see StoppedAt).
	Stopped   string        `json:"stopped,omitempty"`
	StoppedAt *JobStoppedAt `json:"stopped_at,omitempty"`
}

// JobStoppedAt is where a job stopped at its deadline and how much time it
// kept for evaluation, publishing and this record.
type JobStoppedAt struct {
	Epochs          int     `json:"epochs_completed"`
	Epoch           int     `json:"epoch"` // under way when it stopped
	Batch           int     `json:"batch"` // batches of that epoch done
	BatchesPerEpoch int     `json:"batches_per_epoch"`
	ReserveSeconds  float64 `json:"reserve_seconds"`
	// TimeLeftSeconds is the time that was left before the deadline once
	// the model was published, just before the job record was written.
	TimeLeftSeconds float64 `json:"time_left_seconds"`
	Note            string  `json:"note"`
}

const (
	jobQueued    = "queued"
	jobRunning   = "running"
	jobSucceeded = "succeeded"
	jobFailed    = "failed"
	jobCanceled  = "canceled"
)

// Before a deadline (the Lambda function's), RunJob stops training early
// enough to evaluate, write and publish the model and record the job:
// JobReserve(the time left when the job starts) before the deadline.
const (
	minJobReserve      = 5 * time.Second
	jobReserveFraction = 10 // percent of the time left
)

// JobReserve is the time RunJob keeps before a deadline that is remaining
// away: max(5 s, 10 % of remaining).
func JobReserve(remaining time.Duration) time.Duration {
	return max(minJobReserve, remaining*jobReserveFraction/100)
}

// errJobDeadline: the job's deadline came before a model worth publishing.
var errJobDeadline = errors.New("no model to publish")

// JobDispatcher hands a queued job to a worker elsewhere (the Lambda train
// function). Nil runs jobs in the local pool.
type JobDispatcher func(ctx context.Context, tenant, jobID string) error

type jobTask struct{ tenant, id string }

// jobRunner is the local worker pool. It is safe for concurrent use.
type jobRunner struct {
	s     *Server
	queue chan jobTask
	wg    sync.WaitGroup
	stop  context.CancelFunc
	ctx   context.Context

	mu   sync.Mutex
	live map[string]*Job // tenant/id → job running or queued here
	// evals and cancels are the evaluation jobs queued or running here,
	// and how to stop a running one.
	evals   map[string]*Evaluation
	cancels map[string]func()
}

const jobQueueSize = 64

// jobsPerTenant bounds one tenant's jobs queued or running in the local
// pool: a tenant that submits in a loop fills its own share, not the
// queue every tenant waits in.
const jobsPerTenant = 8

func newJobRunner(s *Server, workers int) *jobRunner {
	ctx, cancel := context.WithCancel(context.Background())
	r := &jobRunner{s: s, queue: make(chan jobTask, jobQueueSize), stop: cancel, ctx: ctx, live: map[string]*Job{},
		evals: map[string]*Evaluation{}, cancels: map[string]func(){}}
	for i := 0; i < workers; i++ {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case t := <-r.queue:
					if err := s.RunJob(ctx, t.tenant, t.id); err != nil {
						s.log.Warn("job failed", "tenant", t.tenant, "job", t.id, "err", err)
					}
				}
			}
		}()
	}
	return r
}

// close cancels running jobs (they are recorded as canceled) and waits.
func (r *jobRunner) close() {
	r.stop()
	r.wg.Wait()
}

func (r *jobRunner) setLive(tenant string, j *Job) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if j == nil {
		return
	}
	cp := *j
	r.live[tenant+"/"+j.ID] = &cp
}

// admit records j as live unless its tenant already has jobsPerTenant
// jobs (training and evaluation) queued or running here.
func (r *jobRunner) admit(tenant string, j *Job) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.countLocked(tenant) >= jobsPerTenant {
		return false
	}
	cp := *j
	r.live[tenant+"/"+j.ID] = &cp
	return true
}

// countLocked counts tenant's jobs of both kinds live here; r.mu is held.
func (r *jobRunner) countLocked(tenant string) int {
	n := 0
	for k := range r.live {
		if strings.HasPrefix(k, tenant+"/") {
			n++
		}
	}
	for k := range r.evals {
		if strings.HasPrefix(k, tenant+"/") {
			n++
		}
	}
	return n
}

// admitEval is admit for an evaluation.
func (r *jobRunner) admitEval(tenant string, e *Evaluation) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.countLocked(tenant) >= jobsPerTenant {
		return false
	}
	r.evals[tenant+"/"+e.ID] = e.snapshot()
	return true
}

// setLiveEval records e's state for readers, and cancel (when not nil)
// as the way to stop it.
func (r *jobRunner) setLiveEval(tenant string, e *Evaluation, cancel func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evals[tenant+"/"+e.ID] = e.snapshot()
	if cancel != nil {
		r.cancels[tenant+"/"+e.ID] = cancel
	}
}

func (r *jobRunner) dropLiveEval(tenant, id string) {
	r.mu.Lock()
	delete(r.evals, tenant+"/"+id)
	delete(r.cancels, tenant+"/"+id)
	r.mu.Unlock()
}

func (r *jobRunner) getLiveEval(tenant, id string) (Evaluation, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.evals[tenant+"/"+id]
	if !ok {
		return Evaluation{}, false
	}
	return *e.snapshot(), true
}

// cancelEval stops an evaluation running here and reports whether it was.
func (r *jobRunner) cancelEval(tenant, id string) bool {
	r.mu.Lock()
	c := r.cancels[tenant+"/"+id]
	r.mu.Unlock()
	if c != nil {
		c()
	}
	return c != nil
}

func (r *jobRunner) dropLive(tenant, id string) {
	r.mu.Lock()
	delete(r.live, tenant+"/"+id)
	r.mu.Unlock()
}

func (r *jobRunner) getLive(tenant, id string) (Job, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	j, ok := r.live[tenant+"/"+id]
	if !ok {
		return Job{}, false
	}
	return *j, true
}

func newJobID() string {
	var b [8]byte
	rand.Read(b[:])
	return "j" + hex.EncodeToString(b[:])
}

func (s *Server) saveJob(ctx context.Context, tenant string, j *Job) error {
	j.Updated = time.Now().UTC()
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	return s.store.Put(ctx, tenant, "jobs", j.ID, b)
}

func (s *Server) loadJob(ctx context.Context, tenant, id string) (*Job, error) {
	if j, ok := s.jobs.getLive(tenant, id); ok {
		return &j, nil
	}
	b, err := s.store.Get(ctx, tenant, "jobs", id)
	if err != nil {
		return nil, notFoundAs(err, "training job %q not found", id)
	}
	var j Job
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("job %s: %w", id, err)
	}
	if reason := s.staleReason(ctx, tenant, id, j.Status, j.Updated); reason != "" {
		j.Status, j.Error = jobFailed, reason
	}
	return &j, nil
}

func (s *Server) handleSubmitJob(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	var req training.Request
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := checkName("model", req.Model); err != nil {
		return err
	}
	req.Defaults()
	if err := req.Validate(); err != nil {
		return wrapStatus(http.StatusBadRequest, err)
	}
	for _, d := range []string{req.Dataset, req.TestDataset} {
		if d == "" || d == training.MNIST {
			continue
		}
		if err := checkName("dataset", d); err != nil {
			return err
		}
		if _, err := s.store.StatBlob(r.Context(), p.tenant, "datasets", d); err != nil {
			return notFoundAs(err, "dataset %q not found: upload it with PUT /v1/datasets/%s", d, d)
		}
	}
	now := time.Now().UTC()
	j := &Job{ID: newJobID(), Status: jobQueued, Model: req.Model, Request: req, Created: now, Epochs: []nn.EpochMetrics{}}
	err := s.enqueue(r.Context(), p.tenant, enqueued{
		id: j.ID, what: "training",
		admit: func() bool { return s.jobs.admit(p.tenant, j) },
		drop:  func() { s.jobs.dropLive(p.tenant, j.ID) },
		save:  func(ctx context.Context) error { return s.saveJob(ctx, p.tenant, j) },
		fail: func(ctx context.Context, reason string) {
			j.Status, j.Error = jobFailed, reason
			_ = s.saveJob(ctx, p.tenant, j)
		},
	})
	if err != nil {
		return err
	}
	setAuditObject(r, "training-jobs/"+j.ID)
	writeJSON(w, http.StatusAccepted, j)
	return nil
}

// enqueued is a training job or an evaluation being submitted.
type enqueued struct {
	id    string
	what  string                                   // "training" or "evaluation", for messages
	admit func() bool                              // take a place in the local pool's tenant share
	drop  func()                                   // give it back
	save  func(ctx context.Context) error          // write the queued record
	fail  func(ctx context.Context, reason string) // record that it could not start
}

// enqueue submits a job or evaluation: it takes one of the tenant's 8
// places (the local pool's count, or on Lambda a slot record), writes the
// record, and queues it locally or dispatches it to the train function.
// Whatever fails gives the place back, and a job that could not start is
// recorded as failed with the reason.
func (s *Server) enqueue(ctx context.Context, tenant string, e enqueued) error {
	local := s.dispatch == nil
	if local && !e.admit() {
		return &Error{Status: http.StatusTooManyRequests, RetryAfter: 30 * time.Second,
			Msg: fmt.Sprintf("the tenant has %d training or evaluation jobs queued or running, its share; retry when one has finished", jobsPerTenant)}
	}
	if !local {
		ok, err := s.claimSlot(ctx, tenant, e.id)
		if err != nil {
			return err
		}
		if !ok {
			return shareExceeded()
		}
	}
	undo := func() {
		if local {
			e.drop()
		} else {
			s.releaseSlot(context.WithoutCancel(ctx), tenant, e.id)
		}
	}
	if err := e.save(ctx); err != nil {
		undo()
		return err
	}
	if !local {
		if err := s.dispatch(ctx, tenant, e.id); err != nil {
			undo()
			e.fail(context.WithoutCancel(ctx), "could not start: "+err.Error())
			return wrapStatus(http.StatusServiceUnavailable, fmt.Errorf("%s backend unavailable: %w", e.what, err))
		}
		return nil
	}
	select {
	case s.jobs.queue <- jobTask{tenant, e.id}:
		return nil
	default:
		undo()
		e.fail(context.WithoutCancel(ctx), "queue full")
		return &Error{Status: http.StatusServiceUnavailable, RetryAfter: 30 * time.Second, Msg: "the job queue is full; retry later"}
	}
}

func (s *Server) handleGetJob(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	id := r.PathValue("id")
	if err := checkName("job", id); err != nil {
		return notFound("training job %q not found", truncate(id, 32))
	}
	j, err := s.loadJob(r.Context(), p.tenant, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, j)
	return nil
}

func (s *Server) handleListJobs(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	ids, err := s.store.List(r.Context(), p.tenant, "jobs", "", "", 1000)
	if err != nil {
		return err
	}
	out := []*Job{}
	for _, id := range ids {
		j, err := s.loadJob(r.Context(), p.tenant, id)
		if err != nil {
			continue
		}
		out = append(out, j)
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": out})
	return nil
}

// RunJob runs a queued job to the end: load its data, train, publish a new
// version, record the outcome. The local pool calls it, and so does the
// Lambda train function (with ctx carrying the function's deadline).
// The error is also recorded in the job; RunJob returns it for logging.
func (s *Server) RunJob(ctx context.Context, tenant, id string) (err error) {
	if isEvalID(id) {
		return s.RunEvaluation(ctx, tenant, id)
	}
	j, err := s.loadJob(ctx, tenant, id)
	if err != nil {
		return err
	}
	if j.Status != jobQueued {
		return fmt.Errorf("job %s is %s, not queued", id, j.Status)
	}
	started := time.Now().UTC()
	// Training stops early enough before ctx's deadline (the Lambda
	// function's) to evaluate, publish and record the job.
	var stopAt, deadline time.Time
	var reserve time.Duration
	if dl, ok := ctx.Deadline(); ok {
		deadline, reserve = dl, JobReserve(dl.Sub(started))
		stopAt = dl.Add(-reserve)
	}
	j.Status, j.Started = jobRunning, &started
	s.jobs.setLive(tenant, j)
	defer s.jobs.dropLive(tenant, id)
	// Outcomes are recorded even when ctx is done: that is when it matters.
	record := context.WithoutCancel(ctx)
	if err := s.saveJob(ctx, tenant, j); err != nil {
		return err
	}
	defer s.heartbeat(ctx, tenant, id)()
	defer s.metrics.JobRunning()()
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("training crashed: %v", v)
		}
		if errors.Is(err, errJobContinues) {
			j.Status, j.Progress = jobQueued, nil
			if err = s.saveJob(record, tenant, j); err != nil {
				return
			}
			if err = s.dispatch(record, tenant, j.ID); err != nil {
				// Nobody will continue it: say so rather than leave it queued.
				j.Status, j.Error = jobFailed, "checkpointed at the deadline, but the next invocation could not be started: "+err.Error()
				fin := time.Now().UTC()
				j.Finished = &fin
				_ = s.saveJob(record, tenant, j)
			}
			return
		}
		if j.Continuations > 0 {
			s.dropCheckpoint(record, tenant, j.ID)
		}
		fin := time.Now().UTC()
		j.Finished = &fin
		switch {
		case err == nil:
			j.Status = jobSucceeded
		case errors.Is(err, errJobDeadline):
			j.Status, j.Error = jobFailed, err.Error()
		case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
			j.Status, j.Error = jobCanceled, "stopped before the end: "+err.Error()
		default:
			j.Status, j.Error = jobFailed, err.Error()
		}
		s.metrics.JobFinished(j.Status)
		if e := s.saveJob(record, tenant, j); e != nil && err == nil {
			err = e
		}
	}()

	train, test, err := s.jobData(ctx, tenant, j.Request)
	if err != nil {
		return err
	}
	var from *training.Resume
	if j.Continuations > 0 {
		if from, err = s.loadCheckpoint(ctx, tenant, j.ID); err != nil {
			return err
		}
	}
	var mu sync.Mutex
	lastSave := time.Now()
	progress := func(pr nn.Progress) {
		mu.Lock()
		defer mu.Unlock()
		j.Progress = &JobProgress{Epoch: pr.Epoch, Epochs: pr.Epochs, Batch: pr.Batch, Batches: pr.Batches, Loss: pr.Loss, Accuracy: pr.Accuracy}
		s.jobs.setLive(tenant, j)
		// Persist about every 10 s, so other processes see progress.
		if time.Since(lastSave) > 10*time.Second {
			lastSave = time.Now()
			_ = s.saveJob(ctx, tenant, j)
		}
	}
	tctx, span := tracing.Start(ctx, s.tracer, "job.train")
	canContinue := s.dispatch != nil && j.Continuations < MaxJobContinuations
	m, meta, res, ckpt, err := training.RunFrom(tctx, j.Request, train, test, progress, stopAt,
		training.RunOptions{From: from, Continue: canContinue})
	tracing.End(span, err)
	if ckpt != nil && canContinue {
		// The deadline came first: keep the state, and hand the job to a
		// new invocation of the worker, which continues it.
		return s.continueJob(record, tenant, j, m, ckpt, &mu)
	}
	if errors.Is(err, training.ErrNoEpoch) {
		return fmt.Errorf("%w: %v; the job had %.1f s before its deadline and keeps %.0f s of it for evaluation and publishing — raise the function timeout, or lower epochs or the dataset size (limit)",
			errJobDeadline, err, deadline.Sub(started).Seconds(), reserve.Seconds())
	}
	if err != nil {
		return err
	}
	meta.Provenance["trainer"] = "training job " + j.ID
	var buf bytes.Buffer
	if err := m.WriteArtifact(&buf, meta); err != nil {
		return err
	}
	pctx, span := tracing.Start(ctx, s.tracer, "job.publish")
	info, _, err := s.publish(pctx, tenant, j.Model, buf.Bytes())
	tracing.End(span, err)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	mu.Lock()
	j.Epochs = res.Epochs
	j.Result = &JobResult{Version: info.Version, SHA256: info.SHA256, TestAccuracy: res.TestAccuracy,
		TestLoss: res.TestLoss, WallSeconds: res.WallSeconds, Stopped: res.Stopped}
	if res.Stopped == nn.StoppedDeadline {
		j.Result.StoppedAt = &JobStoppedAt{
			Epochs: len(res.Epochs), Epoch: res.StoppedEpoch, Batch: res.StoppedBatch, BatchesPerEpoch: res.BatchesPerEpoch,
			ReserveSeconds: reserve.Seconds(), TimeLeftSeconds: time.Until(deadline).Seconds(),
			Note: fmt.Sprintf("stopped at the worker's deadline after %d of %d epochs; version %d holds the model trained so far — raise the function timeout or lower epochs for a full run",
				len(res.Epochs), j.Request.Epochs, info.Version),
		}
	}
	mu.Unlock()
	s.audit.Record(tenant, auditRecord("system", "model.publish", fmt.Sprintf("models/%s/versions/%d", j.Model, info.Version), http.StatusCreated))
	return nil
}

// errJobContinues: not an error — the job was checkpointed and handed to
// a new invocation (RunJob's deferred bookkeeping leaves it queued).
var errJobContinues = errors.New("job continues in a new invocation")

// continueJob stores the model and the checkpoint, puts the job back in
// the queue and dispatches it again.
func (s *Server) continueJob(ctx context.Context, tenant string, j *Job, m *nn.Model, ckpt *nn.Checkpoint, mu *sync.Mutex) error {
	var art bytes.Buffer
	if err := m.WriteArtifact(&art, nn.Metadata{}); err != nil {
		return err
	}
	state, err := ckpt.MarshalBinary()
	if err != nil {
		return err
	}
	mn, sn := checkpointNames(j.ID)
	if _, err := s.store.PutBlob(ctx, tenant, checkpointKind, mn, bytes.NewReader(art.Bytes()), int64(art.Len())); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if _, err := s.store.PutBlob(ctx, tenant, checkpointKind, sn, bytes.NewReader(state), int64(len(state))); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	mu.Lock()
	j.Continuations++
	j.Epochs = ckpt.History.Epochs
	mu.Unlock()
	return errJobContinues
}

// loadCheckpoint reads what continueJob stored.
func (s *Server) loadCheckpoint(ctx context.Context, tenant, id string) (*training.Resume, error) {
	mn, sn := checkpointNames(id)
	art, err := s.store.GetBlob(ctx, tenant, checkpointKind, mn)
	if err != nil {
		return nil, fmt.Errorf("the job's checkpoint is missing: %w", err)
	}
	state, err := s.store.GetBlob(ctx, tenant, checkpointKind, sn)
	if err != nil {
		return nil, fmt.Errorf("the job's checkpoint is missing: %w", err)
	}
	m, _, err := nn.ReadArtifact(art, nil)
	if err != nil {
		return nil, fmt.Errorf("the job's checkpoint: %w", err)
	}
	var c nn.Checkpoint
	if err := c.UnmarshalBinary(state); err != nil {
		return nil, fmt.Errorf("the job's checkpoint: %w", err)
	}
	return &training.Resume{Model: m, Checkpoint: &c}, nil
}

// dropCheckpoint empties a finished job's checkpoint blobs (the store
// frees their data).
func (s *Server) dropCheckpoint(ctx context.Context, tenant, id string) {
	mn, sn := checkpointNames(id)
	for _, n := range []string{mn, sn} {
		_, _ = s.store.PutBlob(ctx, tenant, checkpointKind, n, bytes.NewReader(nil), 0)
	}
}

// jobData loads a job's training and test sets.
func (s *Server) jobData(ctx context.Context, tenant string, req training.Request) (train, test *dataset.Set, err error) {
	if req.Dataset == training.MNIST {
		dir, err := dataset.MNISTDir()
		if err != nil {
			return nil, nil, fmt.Errorf("dataset mnist is not available on this server (%v); upload a dataset instead", err)
		}
		return dataset.LoadMNIST(dir)
	}
	load := func(name string) (*dataset.Set, error) {
		b, err := s.store.GetBlob(ctx, tenant, "datasets", name)
		if err != nil {
			return nil, notFoundAs(err, "dataset %q not found", name)
		}
		return training.ParseDataset(b)
	}
	all, err := load(req.Dataset)
	if err != nil {
		return nil, nil, err
	}
	if req.TestDataset != "" {
		test, err := load(req.TestDataset)
		return all, test, err
	}
	train, test = training.SplitTest(all, req.TestSplit, req.Seed)
	return train, test, nil
}
