package jobs

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Store is what the jobs need from storage: a tenant's small records, by
// kind. The platform's store implements it. Errors wrap the store's
// sentinels; Create returns one wrapping modelstore.ErrExists when the
// name is taken.
type Store interface {
	Get(ctx context.Context, tenant, kind, name string) ([]byte, error)
	Put(ctx context.Context, tenant, kind, name string, data []byte) error
	Create(ctx context.Context, tenant, kind, name string, data []byte) error
	Delete(ctx context.Context, tenant, kind, name string) error
}

// Dispatcher hands a queued job to a worker elsewhere (the Lambda train
// function).
type Dispatcher func(ctx context.Context, tenant, id string) error

// Options configure a [Queue]. Run is required; the zero value of every
// other field means the default.
type Options struct {
	// Workers is the number of local workers. It is ignored, and no
	// worker started, when Dispatch is set.
	Workers int
	// Dispatch, when set, sends every job to another worker instead of
	// the local pool, and tenants' shares are kept in slot records.
	Dispatch Dispatcher
	// Run runs a queued job to its end; the local workers call it. Its
	// error is logged: Run records the outcome in the job itself.
	Run func(ctx context.Context, tenant, id string) error
	// Status reads a job's status, to free the share slots of jobs that
	// have ended; stale jobs must read as failed. Needed with Dispatch.
	Status func(ctx context.Context, tenant, id string) (string, error)
	// Stale is how long a running job may go without a sign of life
	// before readers call it dead (config JobStale). Default 10 minutes.
	Stale time.Duration
	// Logger receives failed jobs and heartbeats not written. Default:
	// discard.
	Logger *slog.Logger
}

// Queue is the job machinery of one process: the local worker pool, the
// tenants' shares, the live state of the jobs running here, heartbeats
// and the stale-job rule. It is safe for concurrent use.
type Queue struct {
	store    Store
	dispatch Dispatcher
	status   func(ctx context.Context, tenant, id string) (string, error)
	stale    time.Duration
	log      *slog.Logger

	tasks chan task
	wg    sync.WaitGroup
	stop  context.CancelFunc

	mu sync.Mutex
	// live holds the jobs of both kinds queued or running here, by
	// tenant/id, as their owner last set them; cancels how to stop a
	// running one that can be stopped.
	live    map[string]any
	cancels map[string]func()
}

type task struct{ tenant, id string }

// New starts a Queue over store; Close stops it.
func New(store Store, opts Options) *Queue {
	ctx, cancel := context.WithCancel(context.Background())
	q := &Queue{
		store: store, dispatch: opts.Dispatch, status: opts.Status, stale: opts.Stale, log: opts.Logger,
		tasks: make(chan task, QueueSize), stop: cancel, live: map[string]any{}, cancels: map[string]func(){},
	}
	if q.stale <= 0 {
		q.stale = 10 * time.Minute
	}
	if q.log == nil {
		q.log = slog.New(slog.DiscardHandler)
	}
	workers := opts.Workers
	if q.dispatch != nil {
		workers = 0
	}
	for i := 0; i < workers; i++ {
		q.wg.Add(1)
		go func() {
			defer q.wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case t := <-q.tasks:
					if err := opts.Run(ctx, t.tenant, t.id); err != nil {
						q.log.Warn("job failed", "tenant", t.tenant, "job", t.id, "err", err)
					}
				}
			}
		}()
	}
	return q
}

// Close cancels the running jobs' context (Run records them as it
// decides, canceled as a rule) and waits for the workers.
func (q *Queue) Close() {
	q.stop()
	q.wg.Wait()
}

// Submission is a job (training or evaluation) being submitted.
type Submission struct {
	ID string
	// What names the kind in messages: "training" or "evaluation".
	What string
	// Live is the record as [Queue.Live] returns it while the job waits
	// in the local pool: a copy the caller will not write again.
	Live any
	// Save writes the queued record.
	Save func(ctx context.Context) error
	// Fail records that the job could not start, with the reason.
	Fail func(ctx context.Context, reason string)
}

// Submit takes one of the tenant's PerTenant places (the local pool's
// count, or with a Dispatcher a slot record), writes the record, and
// queues the job locally or dispatches it. Whatever fails gives the place
// back, and a job that could not start is recorded as failed with the
// reason. Errors: [ErrShareFull], [ErrQueueFull], one wrapping
// [ErrDispatch], or the store's.
func (q *Queue) Submit(ctx context.Context, tenant string, sub Submission) error {
	local := q.dispatch == nil
	if local && !q.admit(tenant, sub.ID, sub.Live) {
		return ErrShareFull
	}
	if !local {
		ok, err := q.claimSlot(ctx, tenant, sub.ID)
		if err != nil {
			return err
		}
		if !ok {
			return ErrShareFull
		}
	}
	undo := func() {
		if local {
			q.DropLive(tenant, sub.ID)
		} else {
			q.releaseSlot(context.WithoutCancel(ctx), tenant, sub.ID)
		}
	}
	if err := sub.Save(ctx); err != nil {
		undo()
		return err
	}
	if !local {
		if err := q.dispatch(ctx, tenant, sub.ID); err != nil {
			undo()
			sub.Fail(context.WithoutCancel(ctx), "could not start: "+err.Error())
			return &dispatchError{what: sub.What, err: err}
		}
		return nil
	}
	select {
	case q.tasks <- task{tenant, sub.ID}:
		return nil
	default:
		undo()
		sub.Fail(context.WithoutCancel(ctx), "queue full")
		return ErrQueueFull
	}
}

// admit records v as id's live state unless its tenant already has
// PerTenant jobs queued or running here.
func (q *Queue) admit(tenant, id string, v any) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for k := range q.live {
		if strings.HasPrefix(k, tenant+"/") {
			n++
		}
	}
	if n >= PerTenant {
		return false
	}
	q.live[tenant+"/"+id] = v
	return true
}

// SetLive records v as the state of job id, running or queued here, for
// [Queue.Live]'s readers, and cancel (when not nil) as the way to stop
// it. v must be a copy the caller will not write again. A job set live
// counts in its tenant's share until [Queue.DropLive].
func (q *Queue) SetLive(tenant, id string, v any, cancel func()) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.live[tenant+"/"+id] = v
	if cancel != nil {
		q.cancels[tenant+"/"+id] = cancel
	}
}

// Live returns the state last set for job id, if it is queued or running
// here.
func (q *Queue) Live(tenant, id string) (any, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	v, ok := q.live[tenant+"/"+id]
	return v, ok
}

// DropLive forgets job id: it has ended here, and its place in the
// tenant's share is free.
func (q *Queue) DropLive(tenant, id string) {
	q.mu.Lock()
	delete(q.live, tenant+"/"+id)
	delete(q.cancels, tenant+"/"+id)
	q.mu.Unlock()
}

// Cancel stops job id if it is running here with a cancel function, and
// reports whether it was.
func (q *Queue) Cancel(tenant, id string) bool {
	q.mu.Lock()
	c := q.cancels[tenant+"/"+id]
	q.mu.Unlock()
	if c != nil {
		c()
	}
	return c != nil
}
