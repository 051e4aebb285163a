package audit

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkFlush: queuing and writing 1,000 records (one segment) to an
// in-memory store: the write path every served request's record takes.
func BenchmarkFlush(b *testing.B) {
	// 1,000 records: one segment; 20,000: a second of serving under
	// load, several segments (bounded by MaxSegmentBytes).
	for _, n := range []int{1000, 20_000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			ctx := context.Background()
			l := mustNew(b, newMem(), quiet())
			defer l.Close(ctx)
			recs := make([]Record, n)
			for i := range recs {
				recs[i] = record(i)
			}
			b.ReportAllocs()
			for b.Loop() {
				for _, r := range recs {
					l.Record("acme", r)
				}
				if err := l.Flush(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReadPage: a page of 100 records from the middle of a log of
// two full segments (10,000 records each), and the first page of it, as
// GET /v1/audit?after=…&limit=100 and ?limit=100 read them.
func BenchmarkReadPage(b *testing.B) {
	ctx := context.Background()
	l := mustNew(b, newMem(), quiet())
	defer l.Close(ctx)
	for i := range 20_000 {
		l.Record("acme", record(i))
	}
	if err := l.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		q    Query
	}{{"middle", Query{AfterSeq: 15_000, Limit: 100}}, {"first", Query{Limit: 100}}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p, err := l.ReadPage(ctx, "acme", tc.q)
				if err != nil || len(p.Records) != 100 {
					b.Fatalf("%d records, %v", len(p.Records), err)
				}
			}
		})
	}
}
