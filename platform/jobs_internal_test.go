package platform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/modelstore/memblob"
	"github.com/aiaas/aiaas/platform/internal/jobs"
)

// TestJobErrors: the job queue's sentinels reach the client with the
// statuses, Retry-After and messages submits had before package jobs
// existed — a failed dispatch stays 503 even when it wraps a deadline.
func TestJobErrors(t *testing.T) {
	// A dispatch error as package jobs builds it, through a real Submit.
	ms, err := modelstore.New(memblob.New(), &modelstore.Options{MasterKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	q := jobs.New(StoreFrom(ms), jobs.Options{
		Dispatch: func(context.Context, string, string) error {
			return fmt.Errorf("invoke: %w", context.DeadlineExceeded)
		},
		Run: func(context.Context, string, string) error { return nil },
	})
	defer q.Close()
	dispatchErr := q.Submit(context.Background(), "a", jobs.Submission{ID: "j1", What: "training",
		Save: func(context.Context) error { return nil }, Fail: func(context.Context, string) {}})
	for i, c := range []struct {
		err        error
		status     int
		retryAfter string
		msg        string
	}{
		{jobs.ErrShareFull, 429, "30", "the tenant has 8 training or evaluation jobs queued or running, its share; retry when one has finished"},
		{jobs.ErrQueueFull, 503, "30", "the job queue is full; retry later"},
		{dispatchErr, 503, "1", "training backend unavailable: invoke: context deadline exceeded"},
	} {
		if c.err == nil {
			t.Fatalf("%d: no error", i)
		}
		w := httptest.NewRecorder()
		writeError(w, httptest.NewRequest("POST", "/v1/training-jobs", nil), c.err)
		var body map[string]string
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if w.Code != c.status || w.Header().Get("Retry-After") != c.retryAfter || body["error"] != c.msg {
			t.Errorf("%d: %d, Retry-After %q, %q; want %d, %q, %q", i, w.Code, w.Header().Get("Retry-After"), body["error"], c.status, c.retryAfter, c.msg)
		}
	}
	if !errors.Is(dispatchErr, jobs.ErrDispatch) {
		t.Errorf("dispatch error %v does not wrap ErrDispatch", dispatchErr)
	}
}
