package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/platform/internal/jobs"
)

// memStore is a Store in memory, with the store's sentinels.
type memStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

func newMemStore() *memStore { return &memStore{m: map[string][]byte{}} }

func key(tenant, kind, name string) string { return tenant + "/" + kind + "/" + name }

func (s *memStore) Get(_ context.Context, tenant, kind, name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.m[key(tenant, kind, name)]
	if !ok {
		return nil, fmt.Errorf("%s: %w", name, modelstore.ErrNotFound)
	}
	return b, nil
}

func (s *memStore) Put(_ context.Context, tenant, kind, name string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key(tenant, kind, name)] = data
	return nil
}

func (s *memStore) Create(_ context.Context, tenant, kind, name string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[key(tenant, kind, name)]; ok {
		return fmt.Errorf("%s: %w", name, modelstore.ErrExists)
	}
	s.m[key(tenant, kind, name)] = data
	return nil
}

func (s *memStore) Delete(_ context.Context, tenant, kind, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key(tenant, kind, name))
	return nil
}

func (s *memStore) count(prefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k := range s.m {
		if strings.HasPrefix(k, prefix) {
			n++
		}
	}
	return n
}

// submission records what Submit did with it.
type submission struct {
	mu     sync.Mutex
	saved  bool
	failed string
}

func (r *submission) sub(id string) jobs.Submission {
	return jobs.Submission{ID: id, What: "training", Live: id,
		Save: func(context.Context) error { r.mu.Lock(); r.saved = true; r.mu.Unlock(); return nil },
		Fail: func(_ context.Context, reason string) { r.mu.Lock(); r.failed = reason; r.mu.Unlock() },
	}
}

func TestReserve(t *testing.T) {
	for i, c := range []struct{ remaining, want time.Duration }{
		{0, 5 * time.Second},
		{10 * time.Second, 5 * time.Second},
		{50 * time.Second, 5 * time.Second},
		{15 * time.Minute, 90 * time.Second},
	} {
		if got := jobs.Reserve(c.remaining); got != c.want {
			t.Errorf("%d: Reserve(%v) = %v, want %v", i, c.remaining, got, c.want)
		}
	}
}

func TestDone(t *testing.T) {
	for i, c := range []struct {
		status string
		want   bool
	}{{jobs.Queued, false}, {jobs.Running, false}, {jobs.Succeeded, true}, {jobs.Failed, true}, {jobs.Canceled, true}} {
		if got := jobs.Done(c.status); got != c.want {
			t.Errorf("%d: Done(%q) = %v", i, c.status, got)
		}
	}
}

// TestLocalShare: the local pool takes PerTenant jobs of one tenant and
// refuses the next with ErrShareFull; other tenants keep their share, and
// a dropped job frees its place.
func TestLocalShare(t *testing.T) {
	q := jobs.New(newMemStore(), jobs.Options{Run: func(context.Context, string, string) error { return nil }})
	defer q.Close()
	ctx := context.Background()
	for i := 0; i < jobs.PerTenant; i++ {
		var r submission
		if err := q.Submit(ctx, "a", r.sub(fmt.Sprintf("j%d", i))); err != nil {
			t.Fatalf("job %d: %v", i, err)
		}
		if v, ok := q.Live("a", fmt.Sprintf("j%d", i)); !ok || v != fmt.Sprintf("j%d", i) {
			t.Fatalf("job %d: live %v %v", i, v, ok)
		}
	}
	var r submission
	if err := q.Submit(ctx, "a", r.sub("jover")); !errors.Is(err, jobs.ErrShareFull) {
		t.Fatalf("past the share: %v, want ErrShareFull", err)
	}
	if r.saved {
		t.Error("a refused job was saved")
	}
	if err := q.Submit(ctx, "b", r.sub("jb")); err != nil {
		t.Fatalf("another tenant: %v", err)
	}
	q.DropLive("a", "j0")
	if err := q.Submit(ctx, "a", r.sub("jagain")); err != nil {
		t.Fatalf("after a job ended: %v", err)
	}
}

// TestQueueFull: with no worker, the queue takes QueueSize jobs; the next
// is refused with ErrQueueFull, recorded as failed, and gives its place
// back.
func TestQueueFull(t *testing.T) {
	q := jobs.New(newMemStore(), jobs.Options{Run: func(context.Context, string, string) error { return nil }})
	defer q.Close()
	ctx := context.Background()
	for i := 0; i < jobs.QueueSize; i++ {
		var r submission
		tenant := fmt.Sprintf("t%d", i/jobs.PerTenant)
		id := fmt.Sprintf("j%d", i)
		if err := q.Submit(ctx, tenant, r.sub(id)); err != nil {
			t.Fatalf("job %d: %v", i, err)
		}
		q.DropLive(tenant, id) // keep the shares out of the way
	}
	var r submission
	if err := q.Submit(ctx, "x", r.sub("jfull")); !errors.Is(err, jobs.ErrQueueFull) {
		t.Fatalf("full queue: %v, want ErrQueueFull", err)
	}
	if !r.saved || r.failed != "queue full" {
		t.Errorf("saved %v, failed %q; want saved and then failed with queue full", r.saved, r.failed)
	}
	if _, ok := q.Live("x", "jfull"); ok {
		t.Error("a job that could not start holds its place")
	}
}

// TestWorkersRun: the local workers run every queued job, and Close
// cancels the ones running.
func TestWorkersRun(t *testing.T) {
	ran := make(chan string, 4)
	block := make(chan struct{})
	q := jobs.New(newMemStore(), jobs.Options{Workers: 2, Run: func(ctx context.Context, tenant, id string) error {
		ran <- tenant + "/" + id
		if id == "jblock" {
			<-ctx.Done()
			close(block)
			return ctx.Err()
		}
		return nil
	}})
	ctx := context.Background()
	var r submission
	for _, id := range []string{"j1", "jblock"} {
		if err := q.Submit(ctx, "a", r.sub(id)); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]bool{<-ran: true, <-ran: true}
	if !got["a/j1"] || !got["a/jblock"] {
		t.Fatalf("ran %v", got)
	}
	q.Close()
	select {
	case <-block:
	default:
		t.Fatal("Close returned before the running job was canceled")
	}
}

// TestDispatchedShare: with a dispatcher, the share is kept in slot
// records; when all are taken, the slots of ended jobs are freed.
func TestDispatchedShare(t *testing.T) {
	st := newMemStore()
	var mu sync.Mutex
	status := map[string]string{}
	var dispatched []string
	q := jobs.New(st, jobs.Options{
		Dispatch: func(_ context.Context, tenant, id string) error {
			mu.Lock()
			defer mu.Unlock()
			dispatched = append(dispatched, id)
			status[id] = jobs.Queued
			return nil
		},
		Status: func(_ context.Context, tenant, id string) (string, error) {
			mu.Lock()
			defer mu.Unlock()
			if s, ok := status[id]; ok {
				return s, nil
			}
			return "", modelstore.ErrNotFound
		},
		Run: func(context.Context, string, string) error { t.Error("a local worker ran"); return nil },
	})
	defer q.Close()
	ctx := context.Background()
	for i := 0; i < jobs.PerTenant; i++ {
		var r submission
		if err := q.Submit(ctx, "a", r.sub(fmt.Sprintf("j%d", i))); err != nil {
			t.Fatalf("job %d: %v", i, err)
		}
	}
	if n := st.count("a/jobs-active/"); n != jobs.PerTenant {
		t.Fatalf("%d slot records, want %d", n, jobs.PerTenant)
	}
	var r submission
	if err := q.Submit(ctx, "a", r.sub("jover")); !errors.Is(err, jobs.ErrShareFull) {
		t.Fatalf("past the share: %v, want ErrShareFull", err)
	}
	mu.Lock()
	status["j3"] = jobs.Succeeded
	mu.Unlock()
	if err := q.Submit(ctx, "a", r.sub("jnext")); err != nil {
		t.Fatalf("after a job ended: %v", err)
	}
	if len(dispatched) != jobs.PerTenant+1 {
		t.Errorf("dispatched %v", dispatched)
	}
}

// TestDispatchFails: a job the dispatcher could not start gives its slot
// back, is recorded as failed, and the error names the kind and wraps
// both ErrDispatch and the dispatcher's error.
func TestDispatchFails(t *testing.T) {
	st := newMemStore()
	boom := errors.New("lambda says no")
	q := jobs.New(st, jobs.Options{
		Dispatch: func(context.Context, string, string) error { return boom },
		Status:   func(context.Context, string, string) (string, error) { return jobs.Queued, nil },
		Run:      func(context.Context, string, string) error { return nil },
	})
	defer q.Close()
	var r submission
	err := q.Submit(context.Background(), "a", r.sub("j1"))
	if !errors.Is(err, jobs.ErrDispatch) || !errors.Is(err, boom) {
		t.Fatalf("err %v, want ErrDispatch and the dispatcher's", err)
	}
	if want := "training backend unavailable: lambda says no"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	if r.failed != "could not start: lambda says no" {
		t.Errorf("recorded %q", r.failed)
	}
	if n := st.count("a/jobs-active/"); n != 0 {
		t.Errorf("%d slots held after a failed dispatch", n)
	}
}

// TestStaleReason: only a queued or running job with no sign of life for
// longer than Stale is dead; a fresh heartbeat keeps it alive, and a
// dispatched queued job gets QueuedStale more.
func TestStaleReason(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	local := jobs.New(st, jobs.Options{Stale: time.Second, Run: func(context.Context, string, string) error { return nil }})
	defer local.Close()
	remote := jobs.New(st, jobs.Options{Stale: time.Second, Dispatch: func(context.Context, string, string) error { return nil },
		Run: func(context.Context, string, string) error { return nil }})
	defer remote.Close()
	old := time.Now().Add(-time.Minute)
	if err := st.Put(ctx, "a", "job-heartbeats", "jalive", []byte(time.Now().UTC().Format(time.RFC3339Nano))); err != nil {
		t.Fatal(err)
	}
	for i, c := range []struct {
		q          *jobs.Queue
		id, status string
		updated    time.Time
		want       string // a substring; "" for alive
	}{
		{local, "jdead", jobs.Running, old, "no heartbeat"},
		{local, "jq", jobs.Queued, old, "never started"},
		{local, "jdone", jobs.Succeeded, old, ""},
		{local, "jfresh", jobs.Running, time.Now(), ""},
		{local, "jalive", jobs.Running, old, ""},
		{remote, "jq", jobs.Queued, old, ""},
		{remote, "jq", jobs.Queued, time.Now().Add(-jobs.QueuedStale - time.Minute), "never started"},
	} {
		got := c.q.StaleReason(ctx, "a", c.id, c.status, c.updated)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%d: %q", i, got)
		}
	}
}

// TestHeartbeat: a heartbeat is written at once and again every Stale/5,
// and removed by stop.
func TestHeartbeat(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	q := jobs.New(st, jobs.Options{Stale: 50 * time.Millisecond, Run: func(context.Context, string, string) error { return nil }})
	defer q.Close()
	stop := q.Heartbeat(ctx, "a", "j1")
	first, err := st.Get(ctx, "a", "job-heartbeats", "j1")
	for err != nil {
		time.Sleep(time.Millisecond)
		first, err = st.Get(ctx, "a", "job-heartbeats", "j1")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := st.Get(ctx, "a", "job-heartbeats", "j1")
		if string(b) != string(first) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the heartbeat was not renewed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	if _, err := st.Get(ctx, "a", "job-heartbeats", "j1"); !errors.Is(err, modelstore.ErrNotFound) {
		t.Errorf("heartbeat left after stop: %v", err)
	}
}

// TestCancel: Cancel calls the function set with the job, once it is
// live, and reports whether there was one.
func TestCancel(t *testing.T) {
	q := jobs.New(newMemStore(), jobs.Options{Run: func(context.Context, string, string) error { return nil }})
	defer q.Close()
	if q.Cancel("a", "e1") {
		t.Fatal("canceled a job that is not here")
	}
	called := false
	q.SetLive("a", "e1", "running", func() { called = true })
	q.SetLive("a", "e1", "progress", nil) // keeps the cancel function
	if !q.Cancel("a", "e1") || !called {
		t.Fatal("Cancel did not stop a live job")
	}
	q.DropLive("a", "e1")
	if q.Cancel("a", "e1") {
		t.Fatal("canceled a dropped job")
	}
}

// TestConcurrentSubmit hammers one tenant's share from many goroutines
// (run it with -race): exactly PerTenant submissions get in.
func TestConcurrentSubmit(t *testing.T) {
	q := jobs.New(newMemStore(), jobs.Options{Run: func(context.Context, string, string) error { return nil }})
	defer q.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, full := 0, 0
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r submission
			err := q.Submit(context.Background(), "a", r.sub(fmt.Sprintf("j%d", i)))
			q.Live("a", fmt.Sprintf("j%d", i))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, jobs.ErrShareFull):
				full++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok != jobs.PerTenant || full != 40-jobs.PerTenant {
		t.Errorf("%d admitted, %d refused; want %d and %d", ok, full, jobs.PerTenant, 40-jobs.PerTenant)
	}
}
