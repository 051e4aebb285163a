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
	mu   sync.Mutex
	objs map[string][]byte
	down bool
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
	m.objs[tenant+"/"+name] = append([]byte(nil), data...)
	return nil
}

func (m *memStore) Read(_ context.Context, tenant, name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return nil, errDown
	}
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

func record(i int) Record {
	return Record{Actor: "key1", Action: "infer", Object: fmt.Sprintf("models/m/versions/%d", i), Status: 200, LatencyMS: 1.5, RequestID: fmt.Sprint("r", i)}
}

func TestAppendReadVerify(t *testing.T) {
	ctx := context.Background()
	st := newMem()
	l := New(st, quiet())
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
		l := New(st, quiet())
		for j := 0; j < 30; j++ {
			l.Record("acme", record(j))
			if j%10 == 9 {
				if err := l.Flush(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
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
	logs := []*Log{New(st, quiet()), New(st, quiet()), New(st, quiet())}
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
	l := New(st, &Options{FlushInterval: time.Hour, MaxPending: 5, Dropped: func(_ string, n int) { dropped += n }})
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
	l := New(st, &Options{FlushInterval: 10 * time.Millisecond})
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
	l := New(st, &Options{FlushInterval: time.Hour, MaxSegmentBytes: 4 << 10})
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
	})
}
