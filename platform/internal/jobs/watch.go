package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aiaas/aiaas/modelstore"
)

// Jobs never hang. A job (training or evaluation) whose worker dies — the
// process killed, out of memory, a Lambda timeout — would otherwise stay
// "running" for good. Three things prevent it:
//
//   - While a job runs, its worker writes a heartbeat record
//     (job-heartbeats/ID) every Stale/5, independently of the job record,
//     so a long epoch does not look like a dead worker and the heartbeat
//     never races the job's own saves.
//   - Readers report a queued or running job whose last sign of life (its
//     record or its heartbeat) is older than Stale as failed, with the
//     reason. A job dispatched to another worker (Lambda) may wait in
//     Lambda's asynchronous queue before it starts, so a queued one gets
//     QueuedStale (the queue's maximum event age, one hour in the template)
//     plus Stale.
//   - The Lambda train function is its own failure destination: Lambda
//     sends it the record of an invocation that crashed, timed out or ran
//     out of memory, and the platform's FailJob records that reason at once.

const heartbeatKind = "job-heartbeats"

// lastAlive is the latest of updated and the job's heartbeat.
func (q *Queue) lastAlive(ctx context.Context, tenant, id string, updated time.Time) time.Time {
	b, err := q.store.Get(ctx, tenant, heartbeatKind, id)
	if err != nil {
		return updated
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil || t.Before(updated) {
		return updated
	}
	return t
}

// StaleReason says why job id, in status and whose record was last
// updated at updated, is dead, or "" while it may still be alive. Readers
// show a dead job as failed with this reason.
func (q *Queue) StaleReason(ctx context.Context, tenant, id, status string, updated time.Time) string {
	if !active(status) {
		return ""
	}
	bound := q.stale
	if status == Queued && q.dispatch != nil {
		bound += QueuedStale
	}
	if time.Since(updated) <= bound {
		return ""
	}
	last := q.lastAlive(ctx, tenant, id, updated)
	if time.Since(last) <= bound {
		return ""
	}
	if status == Queued {
		return fmt.Sprintf("interrupted: never started (queued since %s); submit it again", last.Format(time.RFC3339))
	}
	return fmt.Sprintf("interrupted: the worker stopped at %s (no heartbeat for %s: killed, out of memory or timed out); submit it again",
		last.Format(time.RFC3339), time.Since(last).Round(time.Second))
}

// Heartbeat writes job id's heartbeat every Stale/5 until stop is called,
// which removes it. Write errors are logged; the next beat tries again.
// ctx's cancellation does not stop the beats: only stop does.
func (q *Queue) Heartbeat(ctx context.Context, tenant, id string) (stop func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	every := max(q.stale/5, 10*time.Millisecond)
	beat := func(now time.Time) {
		if err := q.store.Put(ctx, tenant, heartbeatKind, id, []byte(now.UTC().Format(time.RFC3339Nano))); err != nil && ctx.Err() == nil {
			q.log.Warn("job heartbeat not written", "tenant", tenant, "job", id, "err", err)
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
		_ = q.store.Delete(context.WithoutCancel(ctx), tenant, heartbeatKind, id)
	}
}

// A tenant's share of jobs dispatched to another worker (the Lambda train
// function, where no process sees them all): PerTenant slot records
// (jobs-active/slot-K, holding a job or evaluation id), each claimed by a
// conditional create, so concurrent submits in different environments
// cannot take more. A slot is given back lazily: when all are taken, the
// slots of jobs that have ended (or died: staleness applies) are freed
// and the claim tried once more.
const activeKind = "jobs-active"

func slotName(k int) string { return fmt.Sprintf("slot-%d", k) }

// claimSlot reserves a slot for id; false when the tenant's share is used.
func (q *Queue) claimSlot(ctx context.Context, tenant, id string) (bool, error) {
	for pass := 0; pass < 2; pass++ {
		for k := 0; k < PerTenant; k++ {
			err := q.store.Create(ctx, tenant, activeKind, slotName(k), []byte(id+" "+time.Now().UTC().Format(time.RFC3339Nano)))
			if err == nil {
				return true, nil
			}
			if !errors.Is(err, modelstore.ErrExists) {
				return false, err
			}
		}
		if pass == 0 {
			q.reapSlots(ctx, tenant)
		}
	}
	return false, nil
}

// reapSlots frees the slots whose job has ended or cannot be read.
func (q *Queue) reapSlots(ctx context.Context, tenant string) {
	for k := 0; k < PerTenant; k++ {
		b, err := q.store.Get(ctx, tenant, activeKind, slotName(k))
		if err != nil {
			continue
		}
		id, at, _ := strings.Cut(string(b), " ")
		claimed, _ := time.Parse(time.RFC3339Nano, at)
		var status string
		var err2 error
		if q.status != nil {
			status, err2 = q.status(ctx, tenant, id)
		}
		// A slot claimed moments ago may belong to a job whose record is
		// being written: not found counts as ended only after a minute.
		if err2 != nil && time.Since(claimed) < time.Minute {
			continue
		}
		if !active(status) {
			_ = q.store.Delete(ctx, tenant, activeKind, slotName(k))
		}
	}
}

// releaseSlot gives back id's slot at once (a job that could not start).
func (q *Queue) releaseSlot(ctx context.Context, tenant, id string) {
	for k := 0; k < PerTenant; k++ {
		if b, err := q.store.Get(ctx, tenant, activeKind, slotName(k)); err == nil && strings.HasPrefix(string(b), id+" ") {
			_ = q.store.Delete(ctx, tenant, activeKind, slotName(k))
			return
		}
	}
}
