package deadline

import (
	"context"
	"errors"
	"testing"
	"time"
)

type key struct{}

// closed reports whether ch is closed now.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// waitClosed fails t with msg unless ch closes within 10 s.
func waitClosed(t *testing.T, ch <-chan struct{}, msg string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal(msg)
	}
}

func TestErrWithoutTimer(t *testing.T) {
	parent := context.WithValue(context.Background(), key{}, "v")
	ctx := New(parent, time.Hour)
	defer ctx.Release()
	if err := ctx.Err(); err != nil {
		t.Fatalf("Err = %v before the deadline", err)
	}
	if v := ctx.Value(key{}); v != "v" {
		t.Fatalf("Value = %v, want the parent's", v)
	}
	if d, ok := ctx.Deadline(); !ok || time.Until(d) < 50*time.Minute {
		t.Fatalf("Deadline = %v, %v", d, ok)
	}
	if ctx.Armed() {
		t.Fatal("Err and Value armed a timer")
	}
}

func TestDeadlinePassesUnarmed(t *testing.T) {
	ctx := New(context.Background(), time.Millisecond)
	defer ctx.Release()
	for ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err = %v, want DeadlineExceeded", err)
	}
	// Once Err reported the end, Done is closed and Cause agrees.
	if !closed(ctx.Done()) {
		t.Fatal("Done open after Err reported the deadline")
	}
	if c := context.Cause(ctx); !errors.Is(c, context.DeadlineExceeded) {
		t.Fatalf("Cause = %v", c)
	}
}

func TestDoneArmsTimer(t *testing.T) {
	ctx := New(context.Background(), 20*time.Millisecond)
	defer ctx.Release()
	waitClosed(t, ctx.Done(), "Done never closed")
	if !ctx.Armed() {
		t.Fatal("Done did not arm the timer")
	}
	if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err = %v", err)
	}
}

func TestParentEnds(t *testing.T) {
	cause := errors.New("client went away")
	parent, cancel := context.WithCancelCause(context.Background())
	ctx := New(parent, time.Hour)
	defer ctx.Release()
	cancel(cause)
	if err := ctx.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Err = %v, want Canceled", err)
	}
	if c := context.Cause(ctx); c != cause {
		t.Fatalf("Cause = %v, want the parent's", c)
	}
	if !closed(ctx.Done()) {
		t.Fatal("Done open after the parent ended")
	}
}

func TestParentEndsWhileArmed(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	ctx := New(parent, time.Hour)
	defer ctx.Release()
	done := ctx.Done()
	cancel()
	waitClosed(t, done, "the parent's end did not reach Done")
}

func TestParentDeadlineEarlier(t *testing.T) {
	parent, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pd, _ := parent.Deadline()
	ctx := New(parent, time.Hour)
	defer ctx.Release()
	if d, _ := ctx.Deadline(); !d.Equal(pd) {
		t.Fatalf("Deadline = %v, want the parent's %v", d, pd)
	}
}

func TestRelease(t *testing.T) {
	t.Run("unarmed", func(t *testing.T) {
		ctx := New(context.Background(), time.Hour)
		ctx.Release()
		if err := ctx.Err(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Err after release = %v, want Canceled", err)
		}
		if !closed(ctx.Done()) {
			t.Fatal("Done open after release")
		}
	})
	t.Run("armed", func(t *testing.T) {
		ctx := New(context.Background(), time.Hour)
		done := ctx.Done()
		ctx.Release()
		if !closed(done) {
			t.Fatal("release did not close an armed Done")
		}
		if err := ctx.Err(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Err = %v", err)
		}
	})
	t.Run("after deadline", func(t *testing.T) {
		ctx := New(context.Background(), time.Nanosecond)
		time.Sleep(time.Millisecond)
		ctx.Release()
		if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Err = %v, want DeadlineExceeded (it ended before the release)", err)
		}
	})
}

// A child context and AfterFunc hang off the armed timer context: they
// end with it.
func TestChildren(t *testing.T) {
	ctx := New(context.Background(), time.Hour)
	child, cancel := context.WithCancel(ctx)
	defer cancel()
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { close(fired) })
	defer stop()
	ctx.Release()
	for _, c := range []<-chan struct{}{child.Done(), fired} {
		waitClosed(t, c, "a child did not end with its parent")
	}
}

func TestConcurrentArm(t *testing.T) {
	ctx := New(context.Background(), time.Hour)
	defer ctx.Release()
	chans := make(chan (<-chan struct{}), 8)
	for range 8 {
		go func() { chans <- ctx.Done() }()
	}
	first := <-chans
	for range 7 {
		if c := <-chans; c != first {
			t.Fatal("two Done channels")
		}
	}
}

func BenchmarkNew(b *testing.B) {
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.Run("deadline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx := New(parent, time.Minute)
			_ = ctx.Err()
			ctx.Release()
		}
	})
	b.Run("WithTimeout", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx, release := context.WithTimeout(parent, time.Minute)
			_ = ctx.Err()
			release()
		}
	})
}
