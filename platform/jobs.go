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
	"sync"
	"time"

	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/nn/dataset"
	"github.com/aiaas/aiaas/platform/internal/jobs"
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

// The statuses of a job's or an evaluation's life (package jobs).
const (
	jobQueued    = jobs.Queued
	jobRunning   = jobs.Running
	jobSucceeded = jobs.Succeeded
	jobFailed    = jobs.Failed
	jobCanceled  = jobs.Canceled
)

// JobReserve is the time RunJob keeps before a deadline that is remaining
// away, to evaluate, write and publish the model and record the job:
// max(5 s, 10 % of remaining). The Lambda train function sizes its
// timeouts with it; the rule lives in package jobs.
func JobReserve(remaining time.Duration) time.Duration { return jobs.Reserve(remaining) }

// errJobDeadline: the job's deadline came before a model worth publishing.
var errJobDeadline = errors.New("no model to publish")

// JobDispatcher hands a queued job to a worker elsewhere (the Lambda train
// function). Nil runs jobs in the local pool.
type JobDispatcher func(ctx context.Context, tenant, jobID string) error

// newJobQueue starts the job machinery of s: the local workers run
// RunJob, and a dispatched job's share slot is freed once its record (a
// training job's or an evaluation's) says it has ended.
func newJobQueue(s *Server) *jobs.Queue {
	return jobs.New(s.store, jobs.Options{
		Workers:  s.cfg.TrainWorkers,
		Dispatch: jobs.Dispatcher(s.dispatch),
		Run:      s.RunJob,
		Status: func(ctx context.Context, tenant, id string) (string, error) {
			if isEvalID(id) {
				e, err := s.loadEval(ctx, tenant, id)
				if err != nil {
					return "", err
				}
				return e.Status, nil
			}
			j, err := s.loadJob(ctx, tenant, id)
			if err != nil {
				return "", err
			}
			return j.Status, nil
		},
		Stale:  s.cfg.JobStale,
		Logger: s.log,
	})
}

// setLiveJob shows readers j as it is now, while it runs here.
func (s *Server) setLiveJob(tenant string, j *Job) {
	cp := *j
	s.jobs.SetLive(tenant, j.ID, &cp, nil)
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
	if v, ok := s.jobs.Live(tenant, id); ok {
		if j, ok := v.(*Job); ok {
			cp := *j
			return &cp, nil
		}
	}
	b, err := s.store.Get(ctx, tenant, "jobs", id)
	if err != nil {
		return nil, notFoundAs(err, "training job %q not found", id)
	}
	var j Job
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("job %s: %w", id, err)
	}
	if reason := s.jobs.StaleReason(ctx, tenant, id, j.Status, j.Updated); reason != "" {
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
		if _, err := s.store.StatBlob(r.Context(), p.Tenant, "datasets", d); err != nil {
			return notFoundAs(err, "dataset %q not found: upload it with PUT /v1/datasets/%s", d, d)
		}
	}
	now := time.Now().UTC()
	j := &Job{ID: newJobID(), Status: jobQueued, Model: req.Model, Request: req, Created: now, Epochs: []nn.EpochMetrics{}}
	live := *j
	err := s.jobs.Submit(r.Context(), p.Tenant, jobs.Submission{
		ID: j.ID, What: "training", Live: &live,
		Save: func(ctx context.Context) error { return s.saveJob(ctx, p.Tenant, j) },
		Fail: func(ctx context.Context, reason string) {
			j.Status, j.Error = jobFailed, reason
			_ = s.saveJob(ctx, p.Tenant, j)
		},
	})
	if err != nil {
		return err
	}
	setAuditObject(r, "training-jobs/"+j.ID)
	writeJSON(w, http.StatusAccepted, j)
	return nil
}

func (s *Server) handleGetJob(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	id := r.PathValue("id")
	if err := checkName("job", id); err != nil {
		return notFound("training job %q not found", truncate(id, 32))
	}
	j, err := s.loadJob(r.Context(), p.Tenant, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, j)
	return nil
}

func (s *Server) handleListJobs(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	ids, err := s.store.List(r.Context(), p.Tenant, "jobs", "", "", 1000)
	if err != nil {
		return err
	}
	out := []*Job{}
	for _, id := range ids {
		j, err := s.loadJob(r.Context(), p.Tenant, id)
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
	s.setLiveJob(tenant, j)
	defer s.jobs.DropLive(tenant, id)
	// Outcomes are recorded even when ctx is done: that is when it matters.
	record := context.WithoutCancel(ctx)
	if err := s.saveJob(ctx, tenant, j); err != nil {
		return err
	}
	defer s.jobs.Heartbeat(ctx, tenant, id)()
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
		s.setLiveJob(tenant, j)
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
