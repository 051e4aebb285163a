package platform

import (
	"context"
	"time"

	"github.com/aiaas/aiaas/platform/internal/jobs"
)

// Jobs never hang: package jobs keeps the heartbeats and the stale-job
// rule, and the Lambda train function, its own failure destination,
// reports a worker that crashed, timed out or ran out of memory through
// FailJob at once.

// QueuedStale is how long a dispatched job may wait to start: the train
// function's maximum event age (infra/template.yaml).
const QueuedStale = jobs.QueuedStale

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
