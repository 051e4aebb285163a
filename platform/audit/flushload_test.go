package audit

import (
	"context"
	"errors"
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

// TestReadWaitsForInflightFlush: records a flush has taken from the queue
// and is writing are not queued any more, yet a read that flushes first
// (read your writes) must still see them: FlushTenantIf waits for that
// flush.
func TestReadWaitsForInflightFlush(t *testing.T) {
	ctx := context.Background()
	st := &slowStore{memStore: newMem(), delay: 100 * time.Millisecond}
	l := mustNew(t, st, &Options{FlushInterval: time.Hour})
	defer l.Close(ctx)
	l.Record("t1", Record{Action: "model.publish", Object: "models/m/versions/1", Status: 201})
	done := make(chan error, 1)
	go func() { done <- l.FlushTenant(ctx, "t1") }()
	tl := l.tenant("t1")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		tl.pmu.Lock()
		n := tl.inflight
		tl.pmu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the flush never took the queue")
		}
	}
	// Nothing queued is wanted; the record in flight is. What is queued
	// meanwhile (the reader's own earlier reads) waits for the next
	// flush: writing it would cost a segment and the head per page.
	l.Record("t1", Record{Action: "audit.read", Status: 200})
	if err := l.FlushTenantIf(ctx, "t1", func(*Record) bool { return false }); err != nil {
		t.Fatal(err)
	}
	recs, err := l.Read(ctx, "t1", Query{})
	if err != nil || len(recs) != 1 || recs[0].Action != "model.publish" {
		t.Fatalf("read after FlushTenantIf: %d records %v", len(recs), err)
	}
	tl.pmu.Lock()
	queued := len(tl.pending)
	tl.pmu.Unlock()
	if queued != 1 {
		t.Fatalf("%d records queued after FlushTenantIf, want the unwanted one", queued)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// failingOnce fails its first segment write, after queuing another record
// as a request would while the flush writes.
type failingOnce struct {
	*memStore
	l      *Log
	failed bool
}

func (s *failingOnce) Create(ctx context.Context, tenant, name string, data []byte) error {
	if !s.failed && strings.Contains(name, "seg-") {
		s.failed = true
		s.l.Record(tenant, Record{Action: "infer", RequestID: "during", Status: 200})
		return errDown
	}
	return s.memStore.Create(ctx, tenant, name, data)
}

// TestFailedFlushKeepsOrder: a flush that fails puts what it took back in
// front of what was queued meanwhile.
func TestFailedFlushKeepsOrder(t *testing.T) {
	ctx := context.Background()
	st := &failingOnce{memStore: newMem()}
	l := mustNew(t, st, &Options{FlushInterval: time.Hour})
	defer l.Close(ctx)
	st.l = l
	for i := range 3 {
		l.Record("t1", record(i))
	}
	if err := l.FlushTenant(ctx, "t1"); !errors.Is(err, errDown) {
		t.Fatalf("first flush: %v", err)
	}
	if err := l.FlushTenant(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	recs, err := l.Read(ctx, "t1", Query{})
	if err != nil || len(recs) != 4 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	for i, want := range []string{"r0", "r1", "r2", "during"} {
		if recs[i].RequestID != want || recs[i].Seq != uint64(i+1) {
			t.Fatalf("record %d: %s seq %d, want %s seq %d", i, recs[i].RequestID, recs[i].Seq, want, i+1)
		}
	}
}
