// Package deadline gives a context a deadline without a timer until
// something waits for it.
//
// context.WithTimeout arms a runtime timer and registers the new context
// with its parent's canceler on every call: eight allocations and a timer
// heap insert and delete. A short request that never blocks pays that for
// nothing: it only asks Err between steps. A Context from New answers Err
// from the clock and its parent, and makes the real timer context the
// first time something calls Done (a select on it, a child context, an
// AfterFunc); from then on everything is that context's.
//
// The Context contract holds either way: Err is nil until the deadline
// passes or the parent ends, then DeadlineExceeded or the parent's error,
// and stays so; once Done has been asked for, Err is the timer context's,
// which closes the channel before it reports an error.
package deadline

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Context is a context with a deadline; see the package comment.
type Context struct {
	parent   context.Context
	deadline time.Time

	mu       sync.Mutex
	timed    atomic.Pointer[timed] // made by the first Done, or an Err once ended
	released atomic.Bool
}

type timed struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// New returns a context that ends at the earlier of now+d and parent's own
// deadline, or when parent ends. Call Release when the work is done, as
// the cancel function of context.WithTimeout (a method rather than a
// returned func: a method value would be one more allocation).
func New(parent context.Context, d time.Duration) *Context {
	dl := time.Now().Add(d)
	if pd, ok := parent.Deadline(); ok && pd.Before(dl) {
		dl = pd
	}
	return &Context{parent: parent, deadline: dl}
}

// Deadline reports the deadline; it always has one.
func (c *Context) Deadline() (time.Time, bool) { return c.deadline, true }

// Done returns the channel that closes when the context ends. The first
// call arms the timer.
func (c *Context) Done() <-chan struct{} { return c.arm().Done() }

// Err is nil while the deadline is ahead and the parent has not ended;
// then context.DeadlineExceeded or the parent's error.
func (c *Context) Err() error {
	if t := c.timed.Load(); t != nil {
		return t.ctx.Err()
	}
	if !c.released.Load() && c.parent.Err() == nil && time.Now().Before(c.deadline) {
		return nil
	}
	// Ended: let the timer context say how (it is made already ended), so
	// that Err, Done and context.Cause agree from here on.
	return c.arm().Err()
}

// Value returns parent's value for key, or the timer context's once it
// exists (context.Cause and child contexts find its canceler there).
func (c *Context) Value(key any) any {
	if t := c.timed.Load(); t != nil {
		return t.ctx.Value(key)
	}
	return c.parent.Value(key)
}

// String names the context, as the standard ones do.
func (c *Context) String() string { return "deadline.Context" }

// Armed reports whether the timer context was made (for tests and
// benchmarks of the path that avoids it).
func (c *Context) Armed() bool { return c.timed.Load() != nil }

func (c *Context) arm() context.Context {
	if t := c.timed.Load(); t != nil {
		return t.ctx
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.timed.Load(); t != nil {
		return t.ctx
	}
	ctx, cancel := context.WithDeadline(c.parent, c.deadline)
	if c.released.Load() {
		cancel()
	}
	c.timed.Store(&timed{ctx: ctx, cancel: cancel})
	return ctx
}

// Release ends the context as a cancel function does (Err is then
// context.Canceled unless it had ended already) and stops the timer if
// one was armed. An unarmed context holds nothing to stop. It may be
// called more than once.
func (c *Context) Release() {
	c.mu.Lock()
	c.released.Store(true)
	t := c.timed.Load()
	c.mu.Unlock()
	if t != nil {
		t.cancel()
	}
}
