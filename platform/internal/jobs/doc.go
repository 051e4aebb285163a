// Package jobs holds the mechanics that training jobs and evaluations
// share: the local worker pool with its queue and per-tenant shares, the
// share's slot records when jobs are dispatched to another worker (the
// Lambda train function), the heartbeats and the stale-job rule that keep
// a dead worker's job from staying "running" for good, the statuses of a
// job's life, and the time a job keeps before its deadline ([Reserve]).
//
// # Overview
//
// A [Queue] admits a [Submission] into its tenant's share of [PerTenant]
// places, writes its record through the submission's own Save, and either
// queues it for the local workers or hands it to a [Dispatcher]. Whatever
// fails gives the place back, and a job that could not start is recorded
// as failed through the submission's Fail. The workers call the Run
// function the platform supplies, which tells a training job from an
// evaluation by its id.
//
// While a job runs, [Queue.Heartbeat] writes its heartbeat record, and
// readers ask [Queue.StaleReason] whether a queued or running record
// belongs to a worker that died.
//
// # What this package must not do
//
// It knows nothing of HTTP, training or evaluation: the records it queues
// are the platform's, stored and read by the platform's functions, so
// their JSON stays exactly what other processes (the Lambda functions)
// read. It returns sentinel errors ([ErrShareFull], [ErrQueueFull],
// [ErrDispatch]) and the platform's status table turns them into
// statuses. It reads and writes only the records of kinds
// "job-heartbeats" and "jobs-active", through the small [Store] it needs.
package jobs
