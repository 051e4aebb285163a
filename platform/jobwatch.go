package platform

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aiaas/aiaas/modelstore"
)

// Jobs never hang. A job (training or evaluation) whose worker dies — the
// process killed, out of memory, a Lambda timeout — would otherwise stay
// "running" for good. Three things prevent it:
//
//   - While a job runs, its worker writes a heartbeat record
//     (job-heartbeats/ID) every JobStale/5, independently of the job record,
//     so a long epoch does not look like a dead worker and the heartbeat
//     never races the job's own saves.
//   - Readers report a queued or running job whose last sign of life (its
//     record or its heartbeat) is older than JobStale as failed, with the
//     reason. A job dispatched to another worker (Lambda) may wait in
//     Lambda's asynchronous queue before it starts, so a queued one gets
//     QueuedStale (the queue's maximum event age, one hour in the template)
//     plus JobStale.
//   - The Lambda train function is its own failure destination: Lambda
//     sends it the record of an invocation that crashed, timed out or ran
//     out of memory, and FailJob records that reason at once.

// QueuedStale is how long a dispatched job may wait to start: the train
// function's maximum event age (infra/template.yaml).
const QueuedStale = time.Hour

const heartbeatKind = "job-heartbeats"

// lastAlive is the latest of updated and the job's heartbeat.
func (s *Server) lastAlive(ctx context.Context, tenant, id string, updated time.Time) time.Time {
	b, err := s.store.Get(ctx, tenant, heartbeatKind, id)
	if err != nil {
		return updated
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil || t.Before(updated) {
		return updated
	}
	return t
}

// staleReason says why a job in status, last updated at updated, is dead,
// or "" while it may still be alive.
func (s *Server) staleReason(ctx context.Context, tenant, id, status string, updated time.Time) string {
	if status != jobRunning && status != jobQueued {
		return ""
	}
	bound := s.cfg.JobStale
	if status == jobQueued && s.dispatch != nil {
		bound += QueuedStale
	}
	if time.Since(updated) <= bound {
		return ""
	}
	last := s.lastAlive(ctx, tenant, id, updated)
	if time.Since(last) <= bound {
		return ""
	}
	if status == jobQueued {
		return fmt.Sprintf("interrupted: never started (queued since %s); submit it again", last.Format(time.RFC3339))
	}
	return fmt.Sprintf("interrupted: the worker stopped at %s (no heartbeat for %s: killed, out of memory or timed out); submit it again",
		last.Format(time.RFC3339), time.Since(last).Round(time.Second))
}

// heartbeat writes the job's heartbeat every JobStale/5 until stop is
// called. Write errors are logged; the next beat tries again.
func (s *Server) heartbeat(ctx context.Context, tenant, id string) (stop func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	every := max(s.cfg.JobStale/5, 10*time.Millisecond)
	beat := func(now time.Time) {
		if err := s.store.Put(ctx, tenant, heartbeatKind, id, []byte(now.UTC().Format(time.RFC3339Nano))); err != nil && ctx.Err() == nil {
			s.log.Warn("job heartbeat not written", "tenant", tenant, "job", id, "err", err)
		}
	}
	go func() {
		defer close(done)
		beat(time.Now())
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				beat(now)
			}
		}
	}()
	return func() {
		cancel()
		<-done
		_ = s.store.Delete(context.WithoutCancel(ctx), tenant, heartbeatKind, id)
	}
}

// FailJob records that a job's worker failed, with reason, unless the job
// has ended already (a failure reported after a success is a late
// duplicate). The Lambda train function calls it with the reason from its
// failure destination's record. id is a training job's or an evaluation's.
func (s *Server) FailJob(ctx context.Context, tenant, id, reason string) error {
	if isEvalID(id) {
		e, err := s.loadEval(ctx, tenant, id)
		if err != nil {
			return err
		}
		if e.Status != jobRunning && e.Status != jobQueued {
			return nil
		}
		now := time.Now().UTC()
		e.Status, e.Error, e.Finished = jobFailed, reason, &now
		return s.saveEval(ctx, tenant, e)
	}
	j, err := s.loadJob(ctx, tenant, id)
	if err != nil {
		return err
	}
	if j.Status != jobRunning && j.Status != jobQueued {
		return nil
	}
	now := time.Now().UTC()
	j.Status, j.Error, j.Finished = jobFailed, reason, &now
	return s.saveJob(ctx, tenant, j)
}

// A tenant's share of jobs dispatched to another worker (the Lambda train
// function, where no process sees them all): jobsPerTenant slot records
// (jobs-active/slot-K, holding a job or evaluation id), each claimed by a
// conditional create, so concurrent submits in different environments
// cannot take more. A slot is given back lazily: when all are taken, the
// slots of jobs that have ended (or died: staleness applies) are freed
// and the claim tried once more.
const activeKind = "jobs-active"

func slotName(k int) string { return fmt.Sprintf("slot-%d", k) }

// claimSlot reserves a slot for id; false when the tenant's share is used.
func (s *Server) claimSlot(ctx context.Context, tenant, id string) (bool, error) {
	for pass := 0; pass < 2; pass++ {
		for k := 0; k < jobsPerTenant; k++ {
			err := s.store.Create(ctx, tenant, activeKind, slotName(k), []byte(id+" "+time.Now().UTC().Format(time.RFC3339Nano)))
			if err == nil {
				return true, nil
			}
			if !errors.Is(err, modelstore.ErrExists) {
				return false, err
			}
		}
		if pass == 0 {
			s.reapSlots(ctx, tenant)
		}
	}
	return false, nil
}

// reapSlots frees the slots whose job has ended or cannot be read.
func (s *Server) reapSlots(ctx context.Context, tenant string) {
	for k := 0; k < jobsPerTenant; k++ {
		b, err := s.store.Get(ctx, tenant, activeKind, slotName(k))
		if err != nil {
			continue
		}
		id, at, _ := strings.Cut(string(b), " ")
		claimed, _ := time.Parse(time.RFC3339Nano, at)
		var status string
		var err2 error
		if isEvalID(id) {
			var e *Evaluation
			if e, err2 = s.loadEval(ctx, tenant, id); err2 == nil {
				status = e.Status
			}
		} else {
			var j *Job
			if j, err2 = s.loadJob(ctx, tenant, id); err2 == nil {
				status = j.Status
			}
		}
		// A slot claimed moments ago may belong to a job whose record is
		// being written: not found counts as ended only after a minute.
		if err2 != nil && time.Since(claimed) < time.Minute {
			continue
		}
		if status != jobQueued && status != jobRunning {
			_ = s.store.Delete(ctx, tenant, activeKind, slotName(k))
		}
	}
}

// releaseSlot gives back id's slot at once (a job that could not start).
func (s *Server) releaseSlot(ctx context.Context, tenant, id string) {
	for k := 0; k < jobsPerTenant; k++ {
		if b, err := s.store.Get(ctx, tenant, activeKind, slotName(k)); err == nil && strings.HasPrefix(string(b), id+" ") {
			_ = s.store.Delete(ctx, tenant, activeKind, slotName(k))
			return
		}
	}
}

// shareExceeded is the 429 of a tenant whose share of jobs is in use.
func shareExceeded() error {
	return &Error{Status: http.StatusTooManyRequests, RetryAfter: 30 * time.Second,
		Msg: fmt.Sprintf("the tenant has %d training or evaluation jobs queued or running, its share; retry when one has finished", jobsPerTenant)}
}
