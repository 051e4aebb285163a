package audit

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// slowStore is a memStore whose segment writes take a while, as a synced
// write does, and which counts them.
type slowStore struct {
	*memStore
	delay time.Duration
	segs  atomic.Int64
}

func (s *slowStore) Create(ctx context.Context, tenant, name string, data []byte) error {
	if strings.Contains(name, "seg-") {
		s.segs.Add(1)
	}
	time.Sleep(s.delay)
	return s.memStore.Create(ctx, tenant, name, data)
}

// TestFlushUnderLoad: a flush writes what was queued when it began and
// ends, however fast records keep coming. It used to chase the queue,
// writing a segment for the few records that arrived during each
// segment's write, for as long as the load lasted.
func TestFlushUnderLoad(t *testing.T) {
	st := &slowStore{memStore: newMem(), delay: 2 * time.Millisecond}
	l := mustNew(t, st, &Options{FlushInterval: time.Hour})
	defer l.Close(context.Background())
	for i := range 100 {
		l.Record("t1", Record{Action: "infer", Object: "m", Status: 200 + i%2})
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // a steady stream beside the flush
		for {
			select {
			case <-stop:
				return
			default:
			}
			l.Record("t1", Record{Action: "infer", Object: "m", Status: 200})
			time.Sleep(50 * time.Microsecond)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := l.FlushTenant(ctx, "t1")
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("flush under load: %v", err)
	}
	// The 100 queued fit one segment.
	if n := st.segs.Load(); n != 1 {
		t.Fatalf("the flush wrote %d segments for 100 queued records", n)
	}
	// What came during the flush is still queued, for the next one.
	if err := l.FlushTenant(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	if v, err := l.Verify(ctx, "t1"); err != nil || !v.OK || v.Records <= 100 {
		t.Fatalf("verify: %+v %v", v, err)
	}
}
