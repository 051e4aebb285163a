package jobs

import (
	"errors"
	"fmt"
	"time"
)

// The statuses of a job's life, as its record shows them: queued, then
// running, then one of the three final ones. A continued training job
// goes from running back to queued.
const (
	Queued    = "queued"
	Running   = "running"
	Succeeded = "succeeded"
	Failed    = "failed"
	Canceled  = "canceled"
)

// Done reports whether status is final: succeeded, failed or canceled.
func Done(status string) bool {
	return status == Succeeded || status == Failed || status == Canceled
}

// active reports whether a job in status may still hold a worker.
func active(status string) bool { return status == Queued || status == Running }

// Before a deadline (the Lambda function's), a job stops early enough to
// evaluate, write and publish its model and record itself: Reserve(the
// time left when the job starts) before the deadline.
const (
	minReserve      = 5 * time.Second
	reserveFraction = 10 // percent of the time left
)

// Reserve is the time a job keeps before a deadline that is remaining
// away: max(5 s, 10 % of remaining).
func Reserve(remaining time.Duration) time.Duration {
	return max(minReserve, remaining*reserveFraction/100)
}

// PerTenant bounds one tenant's jobs (training and evaluation together)
// queued or running: a tenant that submits in a loop fills its own share,
// not the queue every tenant waits in.
const PerTenant = 8

// QueueSize is how many jobs the local pool holds waiting for a worker.
const QueueSize = 64

// QueuedStale is how long a dispatched job may wait to start: the train
// function's maximum event age (infra/template.yaml).
const QueuedStale = time.Hour

var (
	// ErrShareFull is returned by [Queue.Submit] when the tenant already
	// has PerTenant jobs queued or running. Its message is the client's.
	ErrShareFull = fmt.Errorf("the tenant has %d training or evaluation jobs queued or running, its share; retry when one has finished", PerTenant)
	// ErrQueueFull is returned by [Queue.Submit] when the local pool's
	// queue has no room. Its message is the client's.
	ErrQueueFull = errors.New("the job queue is full; retry later")
	// ErrDispatch is wrapped by the error of [Queue.Submit] when the
	// [Dispatcher] could not hand the job to its worker.
	ErrDispatch = errors.New("backend unavailable")
)

// dispatchError is a failed dispatch: "<what> backend unavailable: <err>",
// wrapping both ErrDispatch and the dispatcher's error.
type dispatchError struct {
	what string
	err  error
}

func (e *dispatchError) Error() string   { return e.what + " backend unavailable: " + e.err.Error() }
func (e *dispatchError) Unwrap() []error { return []error{ErrDispatch, e.err} }
