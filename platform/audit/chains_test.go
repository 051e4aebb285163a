package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Four writers with chains of their own (four Lambda environments) write
// one tenant's log at once: no create ever conflicts, nothing is lost or
// duplicated, every chain verifies, and Read merges them by time.
func TestNamedChainsConcurrent(t *testing.T) {
	ctx := context.Background()
	st := &countingStore{memStore: newMem()}
	const writers, each = 4, 50
	base := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for w := range writers {
		l := mustNew(t, st, &Options{FlushInterval: time.Hour, Chain: fmt.Sprintf("env%d", w)})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer l.Close(ctx)
			for i := range each {
				// Interleaved times across writers: i*writers+w.
				l.Record("acme", Record{Time: base.Add(time.Duration(i*writers+w) * time.Millisecond),
					Actor: "k", Action: "infer", RequestID: fmt.Sprintf("w%d-%d", w, i), Status: 200})
				if err := l.Flush(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := st.conflicts.Load(); n != 0 {
		t.Errorf("%d conflicting creates between writers of their own chains", n)
	}
	r := mustNew(t, st, quiet())
	defer r.Close(ctx)
	res, err := r.Verify(ctx, "acme")
	if err != nil || !res.OK || res.Records != writers*each || len(res.Chains) != writers {
		t.Fatalf("verify: %+v %v", res, err)
	}
	for i, c := range res.Chains {
		if c.ID != fmt.Sprintf("env%d", i) || !c.OK || c.Records != each || c.First.IsZero() || c.Last.Before(c.First) {
			t.Errorf("chain %d: %+v", i, c)
		}
	}
	if !res.First.Equal(base) || !res.Last.Equal(base.Add((writers*each-1)*time.Millisecond)) {
		t.Errorf("first %v last %v", res.First, res.Last)
	}
	// Page through the merged log 7 records at a time.
	var all []Record
	cur := ""
	for range 100 {
		page, err := r.Read(ctx, "acme", Query{Cursor: cur, Limit: 7})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		cur = CursorOf(&page[len(page)-1])
	}
	if len(all) != writers*each {
		t.Fatalf("paged %d records, want %d", len(all), writers*each)
	}
	seen := map[string]bool{}
	for i, rec := range all {
		if want := base.Add(time.Duration(i) * time.Millisecond); !rec.Time.Equal(want) {
			t.Fatalf("record %d at %v, want %v (merged by time)", i, rec.Time, want)
		}
		if want := fmt.Sprintf("env%d", i%writers); rec.Chain != want {
			t.Fatalf("record %d from chain %q, want %q", i, rec.Chain, want)
		}
		seen[rec.RequestID] = true
	}
	if len(seen) != writers*each {
		t.Fatalf("%d distinct records", len(seen))
	}
	// A window.
	win, err := r.Read(ctx, "acme", Query{Since: base.Add(10 * time.Millisecond), Until: base.Add(20 * time.Millisecond)})
	if err != nil || len(win) != 10 || !win[0].Time.Equal(base.Add(10*time.Millisecond)) {
		t.Fatalf("window: %d records %v", len(win), err)
	}
}

// countingStore counts conflicting creates.
type countingStore struct {
	*memStore
	conflicts atomicInt
}

type atomicInt struct {
	mu sync.Mutex
	n  int
}

func (a *atomicInt) Add() { a.mu.Lock(); a.n++; a.mu.Unlock() }
func (a *atomicInt) Load() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n
}

func (c *countingStore) Create(ctx context.Context, tenant, name string, data []byte) error {
	err := c.memStore.Create(ctx, tenant, name, data)
	if errors.Is(err, ErrConflict) && !strings.HasPrefix(name, chainHeadPrefix) {
		c.conflicts.Add()
	}
	return err
}

// A server's single chain and environments' chains live side by side: a
// log written before chains had names reads (in sequence order, paged by
// AfterSeq) and verifies as before; once named chains join, Read merges.
func TestSingleChainUnchangedBesideNamed(t *testing.T) {
	ctx := context.Background()
	st := newMem()
	srv := mustNew(t, st, quiet())
	for i := range 5 {
		srv.Record("acme", record(i))
	}
	if err := srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// The objects are exactly those the single chain always had.
	for k := range st.objs {
		if !strings.HasPrefix(k, "acme/seg-") && k != "acme/head" {
			t.Errorf("object %s", k)
		}
	}
	// A head as old servers wrote it (no time bounds) still works.
	var h head
	if err := json.Unmarshal(st.objs["acme/head"], &h); err != nil || h.First.IsZero() {
		t.Fatalf("head %s: %v", st.objs["acme/head"], err)
	}
	st.objs["acme/head"], _ = json.Marshal(map[string]any{"next": h.Next, "last": h.Last})
	r := mustNew(t, st, quiet())
	defer r.Close(ctx)
	res, err := r.Verify(ctx, "acme")
	if err != nil || !res.OK || res.Records != 5 || res.Segments != 1 || len(res.Chains) != 1 || res.Chains[0].ID != "" {
		t.Fatalf("verify single chain: %+v %v", res, err)
	}
	page, err := r.Read(ctx, "acme", Query{AfterSeq: 2})
	if err != nil || len(page) != 3 || page[0].Seq != 3 || page[0].Chain != "" {
		t.Fatalf("AfterSeq: %+v %v", page, err)
	}

	env := mustNew(t, st, &Options{FlushInterval: time.Hour, Chain: "20261205T100000Z-infer-0a"})
	env.Record("acme", Record{Actor: "k", Action: "infer", Status: 200, RequestID: "env"})
	if err := env.Close(ctx); err != nil {
		t.Fatal(err)
	}
	res, err = r.Verify(ctx, "acme")
	if err != nil || !res.OK || res.Records != 6 || len(res.Chains) != 2 || res.Chains[1].Records != 1 {
		t.Fatalf("verify two chains: %+v %v", res, err)
	}
	all, err := r.Read(ctx, "acme", Query{})
	if err != nil || len(all) != 6 || all[5].RequestID != "env" || all[5].Chain != "20261205T100000Z-infer-0a" {
		t.Fatalf("merged: %+v %v", all, err)
	}
	// AfterSeq still pages the single chain alone.
	if page, _ := r.Read(ctx, "acme", Query{AfterSeq: 4}); len(page) != 1 || page[0].Seq != 5 || page[0].Chain != "" {
		t.Fatalf("AfterSeq beside named chains: %+v", page)
	}
}

// Tampering in one chain is reported with that chain's name; the other
// chains stay intact.
func TestVerifyNamesTheBrokenChain(t *testing.T) {
	ctx := context.Background()
	for i, tc := range []struct {
		name   string
		tamper func(st *memStore)
		want   string
	}{
		{"altered", func(st *memStore) {
			k := "acme/cseg-b." + strings.Repeat("0", 19) + "2"
			st.objs[k] = []byte(strings.Replace(string(st.objs[k]), `"status":200`, `"status":201`, 1))
		}, "chain b: record 2: altered"},
		{"removed", func(st *memStore) { delete(st.objs, "acme/cseg-b."+strings.Repeat("0", 19)+"2") }, "chain b: record 2 missing"},
		{"cut off the end", func(st *memStore) { delete(st.objs, "acme/cseg-b."+strings.Repeat("0", 19)+"3") }, "chain b: records 3 to 3 missing from the end"},
	} {
		st := newMem()
		for _, c := range []string{"a", "b", "c"} {
			l := mustNew(t, st, &Options{FlushInterval: time.Hour, Chain: c})
			for j := range 3 {
				l.Record("acme", record(j))
				if err := l.Flush(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.Close(ctx); err != nil {
				t.Fatal(err)
			}
		}
		tc.tamper(st)
		l := mustNew(t, st, quiet())
		res, err := l.Verify(ctx, "acme")
		l.Close(ctx)
		if err != nil || res.OK || len(res.Chains) != 3 {
			t.Fatalf("case %d (%s): %+v %v", i, tc.name, res, err)
		}
		if !slices.ContainsFunc(res.Problems, func(p string) bool { return strings.HasPrefix(p, tc.want) }) {
			t.Errorf("case %d (%s): problems %q, want one starting %q", i, tc.name, res.Problems, tc.want)
		}
		if !res.Chains[0].OK || res.Chains[1].OK || !res.Chains[2].OK {
			t.Errorf("case %d (%s): chains %+v", i, tc.name, res.Chains)
		}
	}
}

// A record of a long request (its time is its start) written after newer
// ones still lands in its place in the merged order, across pages.
func TestMergedReadToleratesLateRecords(t *testing.T) {
	ctx := context.Background()
	st := newMem()
	base := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	a := mustNew(t, st, &Options{FlushInterval: time.Hour, Chain: "a"})
	b := mustNew(t, st, &Options{FlushInterval: time.Hour, Chain: "b"})
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	// Chain a writes 0,2,4,...,18 but the request started at 1 ends last.
	for i := 0; i < 20; i += 2 {
		a.Record("acme", Record{Time: at(i), Actor: "k", Action: "infer", Status: 200})
		b.Record("acme", Record{Time: at(i + 1), Actor: "k", Action: "infer", Status: 200})
	}
	a.Record("acme", Record{Time: at(1).Add(time.Microsecond), Actor: "k", Action: "slow", Status: 200})
	for _, l := range []*Log{a, b} {
		if err := l.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	r := mustNew(t, st, quiet())
	defer r.Close(ctx)
	var all []Record
	cur := ""
	for {
		page, err := r.Read(ctx, "acme", Query{Cursor: cur, Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		cur = CursorOf(&page[len(page)-1])
	}
	if len(all) != 21 || all[2].Action != "slow" {
		t.Fatalf("%d records; third %+v", len(all), all[2])
	}
	if !slices.IsSortedFunc(all, func(x, y Record) int { return compareMerged(&x, &y) }) {
		t.Fatal("not in merged order")
	}
}

// Read and Verify refuse more than they are bound to read, with ErrTooMuch.
func TestBoundsAreErrors(t *testing.T) {
	ctx := context.Background()
	st := newMem()
	for i := range 5 {
		l := mustNew(t, st, &Options{FlushInterval: time.Hour, Chain: fmt.Sprint("c", i)})
		for j := range 3 {
			l.Record("acme", record(j))
			_ = l.Flush(ctx)
		}
		_ = l.Close(ctx)
	}
	r := mustNew(t, st, &Options{FlushInterval: time.Hour, MaxChains: 4})
	defer r.Close(ctx)
	if _, err := r.Verify(ctx, "acme"); !errors.Is(err, ErrTooMuch) {
		t.Errorf("verify over MaxChains: %v", err)
	}
	if _, err := r.Read(ctx, "acme", Query{}); !errors.Is(err, ErrTooMuch) {
		t.Errorf("read over MaxChains: %v", err)
	}
	r2 := mustNew(t, st, &Options{FlushInterval: time.Hour, MaxReads: 10})
	defer r2.Close(ctx)
	if _, err := r2.Read(ctx, "acme", Query{Limit: 1000}); !errors.Is(err, ErrTooMuch) {
		t.Errorf("read over MaxReads: %v", err)
	}
	if _, err := r2.Read(ctx, "acme", Query{Cursor: "nope"}); !errors.Is(err, ErrBadCursor) {
		t.Errorf("bad cursor: %v", err)
	}
	if _, err := New(st, &Options{Chain: "a.b"}); err == nil {
		t.Error("a chain name with a dot was accepted")
	}
}

// A chain whose head says it ended before the window is not read; one
// whose head is behind its segments is.
func TestReadSkipsChainsOutsideTheWindow(t *testing.T) {
	ctx := context.Background()
	st := newMem()
	base := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	old := mustNew(t, st, &Options{FlushInterval: time.Hour, Chain: "old"})
	old.Record("acme", Record{Time: base, Actor: "k", Action: "infer", Status: 200})
	_ = old.Close(ctx)
	cur := mustNew(t, st, &Options{FlushInterval: time.Hour, Chain: "new"})
	cur.Record("acme", Record{Time: base.Add(time.Hour), Actor: "k", Action: "infer", Status: 200})
	_ = cur.Close(ctx)
	r := mustNew(t, st, quiet())
	defer r.Close(ctx)
	before := st.reads()
	recs, err := r.Read(ctx, "acme", Query{Since: base.Add(time.Minute)})
	if err != nil || len(recs) != 1 || recs[0].Chain != "new" {
		t.Fatalf("%+v %v", recs, err)
	}
	// The single chain's head (absent), two chain heads, one segment.
	if n := st.reads() - before; n != 4 {
		t.Errorf("%d reads, want 4 (the old chain's segment skipped)", n)
	}
}
