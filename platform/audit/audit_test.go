package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// memStore is the Store contract in memory; the platform runs the same
// tests against modelstore through its adapter.
type memStore struct {
	mu    sync.Mutex
	objs  map[string][]byte
	down  bool
	puts  int // Put calls
	lists int // List calls
	rd    int // Read calls
}

func (m *memStore) reads() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rd
}

func newMem() *memStore { return &memStore{objs: map[string][]byte{}} }

var errDown = errors.New("store down")

func (m *memStore) Create(_ context.Context, tenant, name string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return errDown
	}
	k := tenant + "/" + name
	if _, ok := m.objs[k]; ok {
		return fmt.Errorf("create %s: %w", k, ErrConflict)
	}
	m.objs[k] = append([]byte(nil), data...)
	return nil
}

func (m *memStore) Put(_ context.Context, tenant, name string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return errDown
	}
	m.puts++
	m.objs[tenant+"/"+name] = append([]byte(nil), data...)
	return nil
}

func (m *memStore) Read(_ context.Context, tenant, name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return nil, errDown
	}
	m.rd++
	b, ok := m.objs[tenant+"/"+name]
	if !ok {
		return nil, ErrMissing
	}
	return append([]byte(nil), b...), nil
}

func (m *memStore) List(_ context.Context, tenant, prefix, after string, limit int) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return nil, errDown
	}
	m.lists++
	var out []string
	for k := range m.objs {
		name, ok := strings.CutPrefix(k, tenant+"/")
		if ok && strings.HasPrefix(name, prefix) && name > after {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func quiet() *Options { return &Options{FlushInterval: time.Hour} }

// writeThreeSegments writes records 1-30 of acme in three flushes: the
// segments seg(1), seg(11) and seg(21).
func writeThreeSegments(t *testing.T, l *Log) {
	t.Helper()
	for j := range 30 {
		l.Record("acme", record(j))
		if j%10 == 9 {
			if err := l.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func record(i int) Record {
	return Record{Actor: "key1", Action: "infer", Object: fmt.Sprintf("models/m/versions/%d", i), Status: 200, LatencyMS: 1.5, RequestID: fmt.Sprint("r", i)}
}

func TestAppendReadVerify(t *testing.T) {
	ctx := context.Background()
	st := newMem()
	l := mustNew(t, st, quiet())
	defer l.Close(ctx)
	for i := 0; i < 25; i++ {
		l.Record("acme", record(i))
		if i%10 == 9 {
			if err := l.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	recs, err := l.Read(ctx, "acme", Query{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 25 {
		t.Fatalf("read %d records, want 25", len(recs))
	}
	for i, r := range recs {
		if r.Seq != uint64(i+1) || r.RequestID != fmt.Sprint("r", i) {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	page, _ := l.Read(ctx, "acme", Query{AfterSeq: 20, Limit: 3})
	if len(page) != 3 || page[0].Seq != 21 {
		t.Fatalf("paging: %+v", page)
	}
	res, err := l.Verify(ctx, "acme")
	if err != nil || !res.OK || res.Records != 25 || res.Segments != 3 {
		t.Fatalf("verify: %+v %v", res, err)
	}
	// Another tenant's log is separate.
	if recs, _ := l.Read(ctx, "other", Query{}); len(recs) != 0 {
		t.Fatalf("other tenant sees %d records", len(recs))
	}
}

// FlushTenantIf writes the queue only when a queued record needs it, and
// then the whole queue, in order.
func TestFlushTenantIf(t *testing.T) {
	ctx := context.Background()
	st := newMem()
	l := mustNew(t, st, quiet())
	defer l.Close(ctx)
	read := func(r *Record) bool { return r.Action != "read" }
	for i := range 3 {
		r := record(i)
		r.Action = "read"
		l.Record("acme", r)
	}
	if err := l.FlushTenantIf(ctx, "acme", read); err != nil {
		t.Fatal(err)
	}
	if recs, _ := l.Read(ctx, "acme", Query{}); len(recs) != 0 {
		t.Fatalf("a queue of reads only was written: %d records", len(recs))
	}
	l.Record("acme", record(3))
	l.Record("other", record(4))
	if err := l.FlushTenantIf(ctx, "acme", read); err != nil {
		t.Fatal(err)
	}
	recs, _ := l.Read(ctx, "acme", Query{})
	if len(recs) != 4 || recs[0].Action != "read" || recs[3].RequestID != "r3" {
		t.Fatalf("after a record that needs the flush: %+v", recs)
	}
	if recs, _ := l.Read(ctx, "other", Query{}); len(recs) != 0 {
		t.Fatalf("another tenant's queue was written: %d records", len(recs))
	}
}

// A page decodes only the records it returns: lines before AfterSeq are
// passed over by their number (here one that would not decode), and a
// line not in the canonical form is decoded whole.
func TestReadSkipsWithoutDecoding(t *testing.T) {
	ctx := context.Background()
	st := newMem()
	l := mustNew(t, st, quiet())
	defer l.Close(ctx)
	for i := range 5 {
		l.Record("acme", record(i))
	}
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	k := "acme/" + segName(1)
	lines := strings.Split(string(st.objs[k]), "\n")
	lines[0] = `{"seq":1,"not json`
	lines[3] = " " + strings.Replace(lines[3], `"seq":4,`, `"seq" : 4 ,`, 1)
	st.objs[k] = []byte(strings.Join(lines, "\n"))
	recs, err := l.Read(ctx, "acme", Query{AfterSeq: 1, Limit: 10})
	if err != nil || len(recs) != 4 || recs[0].Seq != 2 || recs[2].Seq != 4 || recs[2].RequestID != "r3" {
		t.Fatalf("page after 1: %+v %v", recs, err)
	}
	if _, err := l.Read(ctx, "acme", Query{Limit: 10}); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("the whole segment read without an error: %v", err)
	}
	for _, tc := range []struct {
		line string
		seq  uint64
		ok   bool
	}{{`{"seq":12,"time":"x"}`, 12, true}, {`{"seq":,`, 0, false}, {`{"seq":-1,`, 0, false}, {`{ "seq":1,`, 0, false}, {`{"seq":1}`, 0, false}} {
		if seq, ok := lineSeq([]byte(tc.line)); seq != tc.seq || ok != tc.ok {
			t.Errorf("lineSeq(%s) = %d, %v", tc.line, seq, ok)
		}
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	ctx := context.Background()
	for i, tc := range []struct {
		name   string
		tamper func(st *memStore)
		want   string
	}{
		{"alter", func(st *memStore) {
			k := "acme/" + segName(11)
			st.objs[k] = []byte(strings.Replace(string(st.objs[k]), `"status":200`, `"status":201`, 1))
		}, "record 11: altered"},
		{"remove middle segment", func(st *memStore) { delete(st.objs, "acme/"+segName(11)) }, "record 11 missing"},
		{"cut the end", func(st *memStore) { delete(st.objs, "acme/"+segName(21)) }, "missing from the end"},
		{"drop a line", func(st *memStore) {
			k := "acme/" + segName(1)
			lines := strings.SplitN(string(st.objs[k]), "\n", 3)
			st.objs[k] = []byte(lines[0] + "\n" + lines[2])
		}, "record 2 missing"},
	} {
		st := newMem()
		l := mustNew(t, st, quiet())
		writeThreeSegments(t, l)
		tc.tamper(st)
		res, err := l.Verify(ctx, "acme")
		if err != nil {
			t.Fatalf("case %d (%s): %v", i, tc.name, err)
		}
		if res.OK || !strings.Contains(strings.Join(res.Problems, "; "), tc.want) {
			t.Errorf("case %d (%s): got %+v, want a problem with %q", i, tc.name, res, tc.want)
		}
		l.Close(ctx)
	}
}

// Two processes writing one tenant's log never take the same sequence
// number and lose nothing.
func TestConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	st := newMem()
	logs := []*Log{mustNew(t, st, quiet()), mustNew(t, st, quiet()), mustNew(t, st, quiet())}
	var wg sync.WaitGroup
	for w, l := range logs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				l.Record("acme", Record{Actor: fmt.Sprint("w", w), Action: "infer", RequestID: fmt.Sprintf("w%d-%d", w, i), Status: 200})
				if err := l.Flush(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	res, err := logs[0].Verify(ctx, "acme")
	if err != nil || !res.OK || res.Records != 120 {
		t.Fatalf("verify after concurrent writers: %+v %v", res, err)
	}
	recs, _ := logs[0].Read(ctx, "acme", Query{Limit: 1000})
	seen := map[string]bool{}
	for _, r := range recs {
		seen[r.RequestID] = true
	}
	if len(seen) != 120 {
		t.Fatalf("%d distinct records, want 120", len(seen))
	}
}

func TestStoreOutageKeepsRecords(t *testing.T) {
	ctx := context.Background()
	st := newMem()
	dropped := 0
	l := mustNew(t, st, &Options{FlushInterval: time.Hour, MaxPending: 5, Dropped: func(_ string, n int) { dropped += n }})
	defer l.Close(ctx)
	st.down = true
	for i := 0; i < 7; i++ {
		l.Record("acme", record(i))
	}
	if err := l.Flush(ctx); !errors.Is(err, errDown) {
		t.Fatalf("flush with the store down: %v", err)
	}
	if dropped != 2 {
		t.Fatalf("dropped %d, want 2 (bound 5)", dropped)
	}
	st.down = false
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	recs, _ := l.Read(ctx, "acme", Query{})
	if len(recs) != 5 || recs[0].RequestID != "r2" {
		t.Fatalf("after recovery: %d records, first %+v", len(recs), recs)
	}
}

func TestBackgroundFlush(t *testing.T) {
	ctx := context.Background()
	st := newMem()
	l := mustNew(t, st, &Options{FlushInterval: 10 * time.Millisecond})
	defer l.Close(ctx)
	l.Record("acme", record(1))
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if recs, _ := l.Read(ctx, "acme", Query{}); len(recs) == 1 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("background flush never wrote the record")
}

// A flush under load is split into segments that fit the store's object
// limit, and nothing is lost.
func TestSegmentsBoundedByBytes(t *testing.T) {
	ctx := context.Background()
	st := newMem()
	l := mustNew(t, st, &Options{FlushInterval: time.Hour, MaxSegmentBytes: 4 << 10})
	defer l.Close(ctx)
	for i := 0; i < 500; i++ {
		l.Record("acme", record(i))
	}
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for k, v := range st.objs {
		if len(v) > 4<<10 {
			t.Fatalf("%s is %d bytes", k, len(v))
		}
	}
	res, err := l.Verify(ctx, "acme")
	if err != nil || !res.OK || res.Records != 500 || res.Segments < 10 {
		t.Fatalf("verify: %+v %v", res, err)
	}
	// Each object write is a sync: the head is written once per flush, not
	// once per segment.
	if st.puts != 1 {
		t.Fatalf("%d segments written with %d head writes, want 1", res.Segments, st.puts)
	}
}

// The canonical encoding decodes with encoding/json and re-encodes to the
// same bytes, whatever the strings hold; that is what makes Verify work.
func FuzzRecordEncoding(f *testing.F) {
	f.Add("req-1", "3f2a", "infer", "models/m/versions/1", 200, 1.25)
	f.Add("\x00\"\\\xff", "é", "\u2028", "", -1, 1e300)
	f.Fuzz(func(t *testing.T, id, actor, action, object string, status int, lat float64) {
		if math.IsNaN(lat) || math.IsInf(lat, 0) {
			return
		}
		r := Record{Seq: 7, Time: time.Unix(1700000000, 123456789), RequestID: id, Actor: actor, Action: action,
			Object: object, Status: status, LatencyMS: lat, Prev: "p"}
		if status%2 != 0 {
			r.Justification = action + object
		}
		r.Hash = hashRecord(&r)
		line := appendRecord(nil, &r)
		var back Record
		if err := json.Unmarshal(line, &back); err != nil {
			t.Fatalf("not JSON: %q: %v", line, err)
		}
		if got := appendRecord(nil, &back); !bytes.Equal(got, line) {
			t.Fatalf("re-encoding differs:\n%q\n%q", line, got)
		}
		if hashRecord(&back) != r.Hash {
			t.Fatal("hash changed through a decode")
		}
		// The writer's one-pass form gives the same hash and line.
		c := r
		c.Hash = "stale"
		var scratch []byte
		got := appendHashed([]byte("before\n"), &scratch, &c)
		if c.Hash != r.Hash || !bytes.Equal(got, append([]byte("before\n"), line...)) {
			t.Fatalf("appendHashed: hash %s want %s\n%q\n%q", c.Hash, r.Hash, got, line)
		}
	})
}

// A restarted writer (a new server process, a cold Lambda instance) finds
// the end of a long log from its head object, listing only segments
// written after the head, not the whole log.
func TestRestartReadsHeadNotWholeLog(t *testing.T) {
	ctx := context.Background()
	st := newMem()
	opts := &Options{FlushInterval: time.Hour, MaxSegment: 1} // one record a segment
	l := mustNew(t, st, opts)
	for i := 0; i < 2500; i++ {
		l.Record("acme", record(i))
	}
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	l.Close(ctx)

	st.lists = 0
	l = mustNew(t, st, opts)
	defer l.Close(ctx)
	l.Record("acme", record(2500))
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if st.lists != 1 {
		t.Errorf("the restarted writer made %d List calls for 2,500 segments, want 1", st.lists)
	}
	res, err := l.Verify(ctx, "acme")
	if err != nil || !res.OK || res.Records != 2501 {
		t.Fatalf("verify: %+v %v", res, err)
	}
}

// The head may lag (a flush that stopped after its segments) or be missing
// (a log written before heads existed, or a failed head write): a
// restarted writer still continues the chain where the segments end.
func TestRestartWithStaleOrMissingHead(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		tamper func(st *memStore, staleHead []byte)
	}{
		{"stale head", func(st *memStore, h []byte) { st.objs["acme/"+headName] = h }},
		{"no head", func(st *memStore, _ []byte) { delete(st.objs, "acme/"+headName) }},
		{"unreadable head", func(st *memStore, _ []byte) { st.objs["acme/"+headName] = []byte("{") }},
	} {
		st := newMem()
		l := mustNew(t, st, quiet())
		for i := 0; i < 10; i++ {
			l.Record("acme", record(i))
		}
		if err := l.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		stale := st.objs["acme/"+headName]
		for i := 10; i < 20; i++ {
			l.Record("acme", record(i))
		}
		if err := l.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		l.Close(ctx)
		tc.tamper(st, stale)

		l = mustNew(t, st, quiet())
		l.Record("acme", record(20))
		if err := l.Flush(ctx); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		res, err := l.Verify(ctx, "acme")
		if err != nil || !res.OK || res.Records != 21 {
			t.Errorf("%s: verify: %+v %v", tc.name, res, err)
		}
		l.Close(ctx)
	}
}

// Records cut off the end stay reported after a restart: the new writer
// continues the head's chain instead of rewriting the head to hide them.
func TestRestartAfterTruncationKeepsEvidence(t *testing.T) {
	ctx := context.Background()
	st := newMem()
	l := mustNew(t, st, quiet())
	for i := 0; i < 20; i++ {
		l.Record("acme", record(i))
		if i == 9 {
			if err := l.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	l.Close(ctx)
	delete(st.objs, "acme/"+segName(11)) // the second segment: records 11-20

	l = mustNew(t, st, quiet())
	defer l.Close(ctx)
	l.Record("acme", record(20))
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := l.Verify(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if res.OK || !strings.Contains(strings.Join(res.Problems, "; "), "missing") {
		t.Fatalf("truncated log verified after a restart: %+v", res)
	}
}

// Reading a page of a long log lists and reads only what the page needs,
// and pages through it without losing or repeating a record — across the
// store's 1,000-name List pages, and for a log written with larger
// segments than the reader's MaxSegment (the bound it starts from).
func TestReadPagesLongLog(t *testing.T) {
	ctx := context.Background()
	st := newMem()
	w := mustNew(t, st, &Options{FlushInterval: time.Hour, MaxSegment: 2})
	for i := 0; i < 2500; i++ {
		w.Record("acme", record(i))
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	w.Close(ctx)
	for _, maxSeg := range []int{2, 1} { // 1: the log's segments are larger than the bound
		l := mustNew(t, st, &Options{FlushInterval: time.Hour, MaxSegment: maxSeg})
		for _, after := range []uint64{0, 1, 2, 999, 1000, 1999, 2000, 2001, 2490, 2499, 2500, 3000} {
			st.lists = 0
			recs, err := l.Read(ctx, "acme", Query{AfterSeq: after, Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			want := min(1000, max(0, 2500-int(after)))
			if len(recs) != want {
				t.Fatalf("MaxSegment %d, after %d: %d records, want %d", maxSeg, after, len(recs), want)
			}
			for i, r := range recs {
				if r.Seq != after+1+uint64(i) {
					t.Fatalf("MaxSegment %d, after %d: record %d has seq %d", maxSeg, after, i, r.Seq)
				}
			}
			// With the bound holding, a page costs at most two List calls
			// (its 500 segments may straddle one List page); the end of
			// the log, one.
			if maxSeg == 2 && st.lists > 2 {
				t.Errorf("after %d: %d List calls for one page", after, st.lists)
			}
		}
		l.Close(ctx)
	}
	// Paging by the last seq seen walks the whole log once.
	l := mustNew(t, st, &Options{FlushInterval: time.Hour, MaxSegment: 2})
	defer l.Close(ctx)
	var after uint64
	for {
		recs, err := l.Read(ctx, "acme", Query{AfterSeq: after, Limit: 333})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		if recs[0].Seq != after+1 {
			t.Fatalf("page after %d starts at %d", after, recs[0].Seq)
		}
		after = recs[len(recs)-1].Seq
	}
	if after != 2500 {
		t.Fatalf("paging ended at %d, want 2500", after)
	}
}

// Close may be called from several goroutines (a server shutting down on
// a signal while a test closes it): once closes, the others wait.
func TestConcurrentClose(t *testing.T) {
	l := mustNew(t, newMem(), quiet())
	l.Record("acme", Record{Actor: "k", Action: "x"})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Close(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	recs, err := l.Read(context.Background(), "acme", Query{})
	if err != nil || len(recs) != 1 {
		t.Fatalf("after Close: %d records, %v", len(recs), err)
	}
}

func mustNew(t testing.TB, st Store, opts *Options) *Log {
	t.Helper()
	l, err := New(st, opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Pages read a segment from the store once; Verify reads the store every
// time, so a segment altered after a page read it is still named.
func TestPagesReadSegmentsOnce(t *testing.T) {
	ctx := context.Background()
	for _, cacheBytes := range []int64{0, -1} {
		st := newMem()
		l := mustNew(t, st, &Options{FlushInterval: time.Hour, SegmentCacheBytes: cacheBytes})
		writeThreeSegments(t, l)
		page := func() []Record {
			t.Helper()
			recs, err := l.Read(ctx, "acme", Query{Limit: 100})
			if err != nil || len(recs) != 30 {
				t.Fatalf("cache %d: read %d records, %v", cacheBytes, len(recs), err)
			}
			return recs
		}
		page()
		before := st.reads()
		if recs := page(); st.reads() != before && cacheBytes == 0 {
			t.Errorf("the second page read the store %d times; want 0", st.reads()-before)
		} else if cacheBytes < 0 && st.reads()-before != 3 {
			t.Errorf("without a cache the second page read %d segments; want 3", st.reads()-before)
		} else if recs[10].Status != 200 {
			t.Fatalf("record 11: %+v", recs[10])
		}
		k := "acme/" + segName(11)
		st.mu.Lock()
		st.objs[k] = []byte(strings.Replace(string(st.objs[k]), `"status":200`, `"status":201`, 1))
		st.mu.Unlock()
		if got, want := page()[10].Status, map[bool]int{true: 200, false: 201}[cacheBytes == 0]; got != want {
			t.Errorf("cache %d: record 11 after the change reads status %d; want %d", cacheBytes, got, want)
		}
		res, err := l.Verify(ctx, "acme")
		if err != nil || res.OK || !strings.Contains(strings.Join(res.Problems, "; "), "record 11: altered") {
			t.Errorf("cache %d: verify after a page read the segment: %+v, %v", cacheBytes, res, err)
		}
		l.Close(ctx)
	}
}

// flushDuringList is a store whose first listing misses the last segment,
// as one made just before a flush ended would.
type flushDuringList struct {
	*memStore
	listed bool
}

func (f *flushDuringList) List(ctx context.Context, tenant, prefix, after string, limit int) ([]string, error) {
	names, err := f.memStore.List(ctx, tenant, prefix, after, limit)
	if !f.listed && prefix == segPrefix && limit > 1 && len(names) > 0 {
		f.listed = true
		names = names[:len(names)-1]
	}
	return names, err
}

// A flush that ends between Verify's listing and its read of the head is
// not a cut-off log (e2e saw "records 35 to 35 missing from the end"
// beside the periodic flush); a log really cut off still is.
func TestVerifyBesideAFlush(t *testing.T) {
	ctx := context.Background()
	st := newMem()
	w := mustNew(t, st, quiet())
	writeThreeSegments(t, w)
	w.Close(ctx)
	l := mustNew(t, &flushDuringList{memStore: st}, quiet())
	defer l.Close(ctx)
	res, err := l.Verify(ctx, "acme")
	if err != nil || !res.OK || res.Records != 30 || res.Segments != 3 {
		t.Fatalf("verify beside a flush: %+v, %v", res, err)
	}
	st.mu.Lock()
	delete(st.objs, "acme/"+segName(21))
	st.mu.Unlock()
	res, err = l.Verify(ctx, "acme")
	if err != nil || res.OK || !strings.Contains(strings.Join(res.Problems, "; "), "missing from the end") {
		t.Fatalf("verify of a log cut off: %+v, %v", res, err)
	}
}
