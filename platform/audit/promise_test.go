package audit

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// crash stops a Log as a killed process would: no last flush, no closed
// promises.
func (l *Log) crash() {
	l.closeOnce.Do(func() { close(l.stop) })
	<-l.done
}

// TestCrashInTheFlushWindowIsVisible: a writer that acknowledged a record
// and died before flushing it leaves its promise open; once the lease
// expires Verify says records may be missing, and the next writer records
// the gap in the chain, where Verify keeps reporting it. A writer that
// closes cleanly leaves nothing to report, and a live writer's own promise
// is not a problem.
func TestCrashInTheFlushWindowIsVisible(t *testing.T) {
	ctx := context.Background()
	st := newMem()
	const lease = 50 * time.Millisecond
	opts := &Options{FlushInterval: time.Hour, PromiseLease: lease}

	// A clean writer: promised, written, closed.
	l0 := mustNew(t, st, opts)
	if err := l0.Promise(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	l0.Record("t", Record{Actor: "k1", Action: "infer", Status: 200})
	if err := l0.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// A writer that acknowledges one record more than it flushes, and dies.
	l1 := mustNew(t, st, opts)
	if err := l1.Promise(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if v, _ := l1.Verify(ctx, "t"); !v.OK {
		t.Fatalf("the live writer's own promise is reported: %v", v.Problems)
	}
	l1.Record("t", Record{Actor: "k1", Action: "infer", Status: 200})
	if err := l1.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	l1.Record("t", Record{Actor: "k1", Action: "infer", Status: 200}) // acknowledged, never written
	l1.crash()

	time.Sleep(2 * lease) // the crashed writer's lease expires
	l2 := mustNew(t, st, opts)
	defer l2.Close(ctx)
	v, err := l2.Verify(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	if v.OK || len(v.Problems) != 1 || !strings.Contains(v.Problems[0], "writer "+l1.writer) || !strings.Contains(v.Problems[0], "may be missing") {
		t.Fatalf("after the crash: %+v", v)
	}
	// The next writer of the tenant records the gap in the chain.
	if err := l2.Promise(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	l2.Record("t", Record{Actor: "k1", Action: "infer", Status: 200})
	if err := l2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	recs, err := l2.Read(ctx, "t", Query{})
	if err != nil {
		t.Fatal(err)
	}
	var gaps int
	for _, r := range recs {
		if r.Action == GapAction {
			gaps++
		}
	}
	v, _ = l2.Verify(ctx, "t")
	if gaps != 1 || v.OK || len(v.Problems) != 1 || !strings.Contains(v.Problems[0], "stopped without closing the log") || v.Records != 4 {
		t.Fatalf("after adoption: %d gap records, %+v", gaps, v)
	}
	// Adopting once: a third writer finds the promise closed.
	l3 := mustNew(t, st, opts)
	defer l3.Close(ctx)
	if err := l3.Promise(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if err := l3.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := l3.Verify(ctx, "t"); len(v.Problems) != 1 {
		t.Fatalf("the gap was recorded twice: %v", v.Problems)
	}
	// Another tenant of the crashed process's store is untouched.
	if v, _ := l3.Verify(ctx, "u"); !v.OK {
		t.Fatalf("tenant u: %v", v.Problems)
	}
}

// TestPromiseRenewedByFlushes: an active tenant's promise is renewed by
// the flushes that write its records, so requests find it valid and cost
// no store write.
func TestPromiseRenewedByFlushes(t *testing.T) {
	ctx := context.Background()
	st := newMem()
	l := mustNew(t, st, &Options{FlushInterval: time.Hour, PromiseLease: 200 * time.Millisecond})
	defer l.Close(ctx)
	if err := l.Promise(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	first := l.tenant("t").promisedUntil.Load()
	time.Sleep(120 * time.Millisecond) // past half the lease
	l.Record("t", Record{Actor: "k", Action: "infer", Status: 200})
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := l.tenant("t").promisedUntil.Load(); got <= first {
		t.Fatalf("the flush did not renew the promise (%d, was %d)", got, first)
	}
	st.mu.Lock()
	puts := st.puts
	st.mu.Unlock()
	if err := l.Promise(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.puts != puts {
		t.Fatalf("a request after the renewal wrote to the store (%d puts, was %d)", st.puts, puts)
	}
}

// barrierStore holds the first n Reads of one name until all n have
// read it, so that n writers certainly see the same open promise before
// any of them closes it. Later reads pass.
type barrierStore struct {
	Store
	name string
	n    int
	mu   sync.Mutex
	seen int
	all  chan struct{} // closed when n have read
}

func (b *barrierStore) Read(ctx context.Context, tenant, name string) ([]byte, error) {
	data, err := b.Store.Read(ctx, tenant, name)
	if name == b.name {
		b.mu.Lock()
		b.seen++
		if b.seen == b.n {
			close(b.all)
		}
		b.mu.Unlock()
		<-b.all
	}
	return data, err
}

// TestGapRecordedOnce: two writers that find the same expired promise at
// once (two Lambda environments starting together, each with a chain of
// its own) record its gap once between them.
func TestGapRecordedOnce(t *testing.T) {
	ctx := context.Background()
	mem := newMem()
	const lease = 50 * time.Millisecond
	dead := mustNew(t, mem, &Options{FlushInterval: time.Hour, PromiseLease: lease})
	if err := dead.Promise(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	dead.crash()
	time.Sleep(2 * lease)

	const writers = 2
	st := &barrierStore{Store: mem, name: promisePrefix + dead.writer, n: writers, all: make(chan struct{})}
	var logs [writers]*Log
	for i := range logs {
		logs[i] = mustNew(t, st, &Options{FlushInterval: time.Hour, PromiseLease: time.Minute, Chain: "env" + strconv.Itoa(i)})
	}
	var wg sync.WaitGroup
	for _, l := range logs {
		wg.Go(func() {
			if err := l.Promise(ctx, "t"); err != nil {
				t.Error(err)
			}
			if err := l.Flush(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	page, err := logs[0].ReadPage(ctx, "t", Query{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	gaps := 0
	for _, r := range page.Records {
		if r.Action == GapAction {
			gaps++
		}
	}
	if gaps != 1 {
		t.Fatalf("%d gap records for one dead writer's promise, want 1", gaps)
	}
	for _, l := range logs {
		l.Close(ctx)
	}
}
