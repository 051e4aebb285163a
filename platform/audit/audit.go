// Package audit keeps each tenant's tamper-evident audit log.
//
// # Overview
//
// Every control-plane action and every invocation becomes a [Record]: who
// (the key's public id), what (action and object), when, the result status,
// the latency and the request id — never the payload and never the key.
// Records are hash-chained: each one's Hash covers its own fields and the
// previous record's hash, so altering or removing a record breaks the chain
// at that point, and [Log.Verify] names it.
//
// # Chains
//
// A tenant's log is one or more hash chains. A server writes the single
// chain every log began with; a writer of which many run at once — each
// Lambda execution environment — names a chain of its own
// (Options.Chain), so writers never contend. [Log.Verify] checks every
// chain and reports each; [Log.ReadPage] merges them by time (then chain,
// then sequence number) and pages them with a cursor, or pages the single
// chain by sequence number as it always did. Both are bounded
// (Options.MaxChains, MaxReads) and fail with [ErrTooMuch] past the bound,
// never by reading without end.
//
// # Storage
//
// Records are written in segments: one object per flush, named by the
// chain and the sequence number of its first record (seg-N for the single
// chain, cseg-CHAIN.N for a named one) and holding the records as JSON
// lines. A segment is created with a conditional create, so two processes
// can never both write sequence N of one chain: the loser reloads the head
// of the chain, renumbers its pending records behind the winner's and
// tries again (only writers sharing the single chain ever do). A separate
// head object per chain (head, chead-CHAIN) records the last sequence
// number and hash, so cutting records off the end is detected too, and the
// times of the chain's first and last record, so readers skip chains
// outside their window. A named chain's head is created before its first
// segment: listing heads lists the chains.
//
// # Buffering
//
// [Log.Record] queues a record and returns at once; a background loop
// writes queued records every FlushInterval. [Log.Flush] writes everything
// queued now — the Lambda functions call it after each invocation's
// response (from an internal extension) or before it, the server on
// shutdown; [Log.FlushTenant] one tenant's records, which the
// server calls before it answers a control-plane action. If the store is down, records stay queued (up to
// MaxPending per tenant) and are retried; past that bound the oldest are
// dropped and counted, because an audit log must not take the service down
// with it.
//
// # Reading
//
// A segment never changes once written (it is created, never replaced),
// so pages read it through a byte-bounded cache of opened segments
// (Options.SegmentCacheBytes): a client polling a page reads the store
// once, not on every call. [Log.Verify] never uses the cache: it reads
// every segment from the store, so a segment altered there is named even
// if a page read it before.
//
// A Log is safe for concurrent use.
package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aiaas/aiaas/internal/cache"
	cpuyield "github.com/aiaas/aiaas/internal/yield"
)

// Record is one audited event.
type Record struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	RequestID string    `json:"request_id,omitempty"`
	Actor     string    `json:"actor"`            // key id, or "admin"
	Action    string    `json:"action"`           // e.g. "model.publish", "infer"
	Object    string    `json:"object,omitempty"` // e.g. "models/mnist/versions/3"
	Status    int       `json:"status"`           // HTTP status of the outcome
	LatencyMS float64   `json:"latency_ms"`
	Prev      string    `json:"prev"` // hash of record Seq-1 ("" for the first)
	Hash      string    `json:"hash"`
	// Justification is what the caller cited for the action, e.g. the
	// evaluation ("evaluations/e…") behind an alias move. It is encoded
	// after the object; records without one encode, and hash, exactly as
	// before the field existed.
	Justification string `json:"justification,omitempty"`
	// Chain is the chain the record was read from ("" for the single
	// chain of a server). It is set by Read and never stored nor hashed:
	// the chain is where the record lives.
	Chain string `json:"chain,omitempty"`
}

// Store is what the log needs from object storage, per tenant. Names are
// plain ASCII; List returns names in ascending order.
type Store interface {
	// Create writes name only if it does not exist yet; otherwise it
	// returns an error wrapping ErrConflict. data is the log's buffer,
	// reused once Create returns: Create must not keep it.
	Create(ctx context.Context, tenant, name string, data []byte) error
	// Put writes name, replacing it.
	Put(ctx context.Context, tenant, name string, data []byte) error
	// Read returns the object, or an error wrapping ErrMissing, in a
	// buffer the store never touches again: records read from it share
	// its bytes.
	Read(ctx context.Context, tenant, name string) ([]byte, error)
	// List returns up to limit names with the prefix, greater than after.
	List(ctx context.Context, tenant, prefix, after string, limit int) ([]string, error)
}

var (
	// ErrConflict is returned by Store.Create when the name is taken.
	ErrConflict = errors.New("audit: object exists")
	// ErrMissing is returned by Store.Read when the name does not exist.
	ErrMissing = errors.New("audit: object missing")
	// ErrTooMuch is returned by Read and Verify when a call would read
	// more than the Options bounds allow.
	ErrTooMuch = errors.New("audit: over the read bounds")
	// ErrBadCursor is returned by Read for a Query.Cursor that CursorOf
	// did not make.
	ErrBadCursor = errors.New("audit: bad cursor")
)

const (
	maxConflicts = 100
	segPrefix    = "seg-"
	headName     = "head"
	seqDigits    = 20
	// Objects of named chains (Options.Chain).
	chainSegPrefix  = "cseg-"
	chainHeadPrefix = "chead-"
	maxChainLen     = 64
)

// ValidChain reports whether id may name a chain (Options.Chain): 1-64
// characters of [A-Za-z0-9_-], starting with a letter or digit. A dot is
// not allowed: it ends the chain's name in its segments' names.
func ValidChain(id string) bool {
	if id == "" || len(id) > maxChainLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// chainObjects names the objects of one chain: the single chain ("") as
// it always was, a named chain under its own prefixes.
type chainObjects string

func (c chainObjects) segPrefix() string {
	if c == "" {
		return segPrefix
	}
	return chainSegPrefix + string(c) + "."
}

func (c chainObjects) seg(first uint64) string {
	s := strconv.FormatUint(first, 10)
	return c.segPrefix() + strings.Repeat("0", seqDigits-len(s)) + s
}

func (c chainObjects) head() string {
	if c == "" {
		return headName
	}
	return chainHeadPrefix + string(c)
}

// Options tunes a Log; nil means the defaults.
type Options struct {
	FlushInterval time.Duration // default 1s
	MaxPending    int           // per tenant, default 100,000
	MaxSegment    int           // records per segment, default 10,000
	// MaxSegmentBytes bounds one segment object (the store caps records;
	// modelstore's default cap is 1 MiB). Default 768 KiB.
	MaxSegmentBytes int
	Logger          *slog.Logger
	// Dropped is called when records are dropped (for a metric).
	Dropped func(tenant string, n int)
	// PromiseLease is how long a promise (see Promise) lasts unrenewed.
	// Default 1 minute.
	PromiseLease time.Duration
	// NoPromise turns promises off, for a writer that flushes before it
	// answers each request (the Lambda functions): it has no window.
	NoPromise bool
	// Chain names this Log's own hash chain of each tenant's log. Empty
	// (a server, the default) is the single chain every log began with:
	// objects seg-<first seq> and head. A writer of which many run at
	// once — each Lambda execution environment — names a chain of its
	// own (1-64 of [A-Za-z0-9_-], starting with a letter or digit; see
	// [ValidChain]): objects cseg-<chain>.<first seq> and chead-<chain>,
	// written by that writer alone, so writers never contend. It is also
	// the writer's id in promises.
	Chain string
	// MaxSkew bounds how much earlier than the records written before it
	// a record's time may be (a record carries its request's start and is
	// written when the request ends): Read stops reading a chain once it
	// is past the page by more than this. Default 15 minutes, the longest
	// a Lambda invocation runs; the platform passes its request timeout.
	MaxSkew time.Duration
	// MaxChains bounds the chains Read and Verify look at for one tenant;
	// past it they fail with ErrTooMuch. Default 10,000.
	MaxChains int
	// MaxReads bounds the segment reads of one Read call over many
	// chains; past it Read fails with ErrTooMuch (narrow the window with
	// Since and Until). Default 20,000.
	MaxReads int
	// SegmentCacheBytes bounds the opened segments kept for pages (see
	// Reading in the package doc), all tenants together. Default 8 MiB;
	// negative: no cache.
	SegmentCacheBytes int64
}

// Log is the audit log of every tenant.
type Log struct {
	st     Store
	opts   Options
	log    *slog.Logger
	writer string // this Log's id among the log's writers (promises)
	chain  chainObjects

	mu      sync.Mutex
	tenants map[string]*tenantLog

	segs *cache.LRU[segKey, []byte] // nil: Options.SegmentCacheBytes < 0

	stop      chan struct{}
	closeOnce sync.Once // Close may be called concurrently
	done      chan struct{}
}

type tenantLog struct {
	mu     sync.Mutex // serialises flushes of this tenant
	loaded bool
	next   uint64 // sequence number of the next record
	last   string // hash of record next-1
	// first and lastTime bound the times of the chain's records (for
	// readers to skip a chain outside their window); zero: unknown.
	// bounded: they are known for the whole chain (it began under this
	// code, or its head had them).
	first, lastTime time.Time
	bounded         bool
	pmu             sync.Mutex
	pending         []Record
	// inflight is how many records a flush took from pending and is
	// writing (under pmu); spare is the emptied array of the last flush,
	// the next queue's (under mu).
	inflight int
	spare    []Record

	// Promises (promise.go): until when this writer promised the log, in
	// Unix nanoseconds (0: never), and, under prom, whether it adopted
	// other writers' expired promises yet and since when it promises.
	promisedUntil atomic.Int64
	prom          sync.Mutex
	adopted       bool
	since         time.Time
}

// New returns a Log writing to st and starts its flush loop; Close stops
// it. It fails only for an invalid Options.Chain.
func New(st Store, opts *Options) (*Log, error) {
	l := &Log{st: st, tenants: map[string]*tenantLog{}, stop: make(chan struct{}), done: make(chan struct{}), writer: newWriterID()}
	if opts != nil {
		l.opts = *opts
	}
	if c := l.opts.Chain; c != "" {
		if !ValidChain(c) {
			return nil, fmt.Errorf("audit: chain %q: want 1-%d of [A-Za-z0-9_-], starting with a letter or digit", c, maxChainLen)
		}
		l.chain, l.writer = chainObjects(c), c
	}
	if l.opts.MaxSkew <= 0 {
		l.opts.MaxSkew = 15 * time.Minute
	}
	if l.opts.MaxChains <= 0 {
		l.opts.MaxChains = 10_000
	}
	if l.opts.MaxReads <= 0 {
		l.opts.MaxReads = 20_000
	}
	if l.opts.FlushInterval <= 0 {
		l.opts.FlushInterval = time.Second
	}
	if l.opts.MaxPending <= 0 {
		l.opts.MaxPending = 100_000
	}
	if l.opts.MaxSegment <= 0 {
		l.opts.MaxSegment = 10_000
	}
	if l.opts.MaxSegmentBytes <= 0 {
		l.opts.MaxSegmentBytes = 768 << 10
	}
	if l.opts.PromiseLease <= 0 {
		l.opts.PromiseLease = time.Minute
	}
	if l.opts.SegmentCacheBytes == 0 {
		l.opts.SegmentCacheBytes = 8 << 20
	}
	if l.opts.SegmentCacheBytes > 0 {
		l.segs = cache.NewLRU[segKey, []byte](&cache.LRUOptions{MaxBytes: l.opts.SegmentCacheBytes})
	}
	l.log = l.opts.Logger
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	go l.loop()
	return l, nil
}

func (l *Log) tenant(id string) *tenantLog {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.tenants[id]
	if t == nil {
		t = &tenantLog{}
		l.tenants[id] = t
	}
	return t
}

// Record queues r for tenant. Seq, Prev and Hash are assigned when written.
func (l *Log) Record(tenant string, r Record) {
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	r.Time = r.Time.UTC()
	t := l.tenant(tenant)
	t.pmu.Lock()
	t.pending = append(t.pending, r)
	dropped := 0
	if over := len(t.pending) - l.opts.MaxPending; over > 0 {
		t.pending = append(t.pending[:0], t.pending[over:]...)
		dropped = over
	}
	t.pmu.Unlock()
	if dropped > 0 {
		l.log.Error("audit records dropped: store unavailable too long", "tenant", tenant, "dropped", dropped)
		if l.opts.Dropped != nil {
			l.opts.Dropped(tenant, dropped)
		}
	}
}

// Flush writes every queued record of every tenant. It returns the first
// error; records that could not be written stay queued.
func (l *Log) Flush(ctx context.Context) error {
	l.mu.Lock()
	ids := make([]string, 0, len(l.tenants))
	for id := range l.tenants {
		ids = append(ids, id)
	}
	l.mu.Unlock()
	var first error
	for _, id := range ids {
		if err := l.flushTenant(ctx, id); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// FlushTenant writes every queued record of one tenant: what a server
// calls before it acknowledges a control-plane action, so the action
// cannot be answered and then lost with the process.
func (l *Log) FlushTenant(ctx context.Context, tenant string) error {
	return l.flushTenant(ctx, tenant)
}

// FlushTenantIf is FlushTenant when at least one of the tenant's queued
// records satisfies need; otherwise the queue waits for the periodic flush.
// A read of the log flushes first so that the reader sees its own actions,
// but not when all that is queued is its earlier reads: a tenant paging
// its log in a loop would otherwise write a segment and the head (two
// synced writes) per page, and the folder it lists would grow by a
// segment a page.
func (l *Log) FlushTenantIf(ctx context.Context, tenant string, need func(*Record) bool) error {
	t := l.tenant(tenant)
	wanted := func() (found, flying bool) {
		t.pmu.Lock()
		defer t.pmu.Unlock()
		for i := len(t.pending) - 1; i >= 0 && !found; i-- { // newest first: the likeliest match
			found = need(&t.pending[i])
		}
		return found, t.inflight > 0
	}
	found, flying := wanted()
	if !found && flying {
		// Records a flush is writing are in neither the queue nor the
		// store yet: wait for that flush, as if they were wanted, but do
		// not write what came meanwhile unless it is wanted. Flushing
		// here instead wrote a segment and the head (synced writes,
		// milliseconds each, a processor held through each) for most
		// pages read while the periodic flush ran.
		t.mu.Lock()
		t.mu.Unlock() //nolint:staticcheck // waits for the flush that holds it
		found, _ = wanted()
	}
	if !found {
		return nil
	}
	return l.flushTenant(ctx, tenant)
}

// Close flushes what it can within ctx, stops the flush loop and, when
// everything was written, closes this writer's promises.
func (l *Log) Close(ctx context.Context) error {
	l.closeOnce.Do(func() { close(l.stop) })
	<-l.done
	if err := l.Flush(ctx); err != nil {
		return err // promises stay open: the records are not all written
	}
	return l.closePromises(ctx)
}

func (l *Log) loop() {
	defer close(l.done)
	tick := time.NewTicker(l.opts.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-tick.C:
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := l.Flush(ctx); err != nil {
				l.log.Warn("audit flush failed; will retry", "err", err)
			}
			cancel()
		}
	}
}

func (l *Log) flushTenant(ctx context.Context, id string) error {
	t := l.tenant(id)
	t.mu.Lock()
	defer t.mu.Unlock()
	// The head is written once, after the flush's last segment: under load
	// a flush writes several segments, and each object write is a sync.
	wrote := false
	defer func() {
		if wrote {
			l.writeHead(ctx, id, t)
			l.renew(ctx, id, t)
		}
	}()
	// A flush takes the queue as it is when it begins and writes it;
	// records queued meanwhile wait for the next flush. Under steady load
	// a flush that chased the queue never ended, and wrote a segment (a
	// synced object) for every few records that arrived during the
	// previous one's sync. Taking the whole queue also spares copying it
	// per segment and shifting what is left after each (a third of a
	// 20,000-record flush's time).
	t.pmu.Lock()
	batch := t.pending
	t.pending, t.spare = t.spare[:0], nil
	t.inflight = len(batch)
	t.pmu.Unlock()
	rest := batch
	for len(rest) > 0 {
		written, err := l.writeSegment(ctx, id, t, rest[:min(len(rest), l.opts.MaxSegment)])
		if err != nil {
			// What was not written goes back in front of what came
			// meanwhile, in order.
			t.pmu.Lock()
			t.pending = append(append(make([]Record, 0, len(rest)+len(t.pending)), rest...), t.pending...)
			t.inflight = 0
			t.pmu.Unlock()
			return err
		}
		wrote = true
		rest = rest[written:]
	}
	t.pmu.Lock()
	t.inflight = 0
	t.pmu.Unlock()
	// The array becomes the next flush's queue while it fits the load:
	// small, or at least a quarter used by this flush. An idle tenant's
	// large array goes with its next flush.
	if cap(batch) <= maxSpare || len(batch) >= cap(batch)/4 {
		clear(batch) // the records' strings
		t.spare = batch[:0]
	}
	return nil
}

// maxSpare is the queue array (in records) a tenant keeps between
// flushes whatever its load.
const maxSpare = 1024

// writeSegment chains as many records of batch as fit in one segment behind
// the head and creates the segment, reloading the head and retrying when
// another writer got there first. It returns how many records it wrote.
func (l *Log) writeSegment(ctx context.Context, id string, t *tenantLog, batch []Record) (int, error) {
	for attempt := 0; ; attempt++ {
		if !t.loaded {
			if err := l.loadHead(ctx, id, t); err != nil {
				return 0, err
			}
		}
		prev := t.last
		bp := segmentBufs.Get().(*[]byte)
		buf := (*bp)[:0]
		var scratch []byte
		n := 0
		for i := range batch {
			batch[i].Seq = t.next + uint64(i)
			batch[i].Prev = prev
			end := len(buf)
			buf = appendHashed(buf, &scratch, &batch[i])
			if n > 0 && len(buf)+1 > l.opts.MaxSegmentBytes {
				buf = buf[:end]
				break
			}
			prev = batch[i].Hash
			buf = append(buf, '\n')
			n++
		}
		err := l.st.Create(ctx, id, l.chain.seg(t.next), buf)
		if cap(buf) <= maxPooledSegment {
			*bp = buf
			segmentBufs.Put(bp)
		}
		if errors.Is(err, ErrConflict) && attempt < maxConflicts {
			// Someone else wrote here: back off a little (jittered, so
			// writers stop colliding), reload the head and renumber.
			t.loaded = false
			select {
			case <-time.After(time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 5)))):
			case <-ctx.Done():
				return 0, ctx.Err()
			}
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("audit: write segment %d of %s: %w", t.next, id, err)
		}
		t.next += uint64(n)
		t.last = prev
		for i := range batch[:n] {
			t.widen(batch[i].Time)
		}
		return n, nil
	}
}

// writeHead records where the log ends, for Verify to detect records cut
// off the end. A head behind the segments is valid (a flush wrote
// segments but not yet the head), so a failure here only delays that
// detection until the next flush.
func (l *Log) writeHead(ctx context.Context, id string, t *tenantLog) {
	h := head{Next: t.next, Last: t.last}
	if t.bounded {
		h.First, h.LastTime = t.first, t.lastTime
	}
	hb, _ := json.Marshal(h)
	if err := l.st.Put(ctx, id, l.chain.head(), hb); err != nil {
		l.log.Warn("audit head not updated", "tenant", id, "err", err)
	}
}

type head struct {
	Next uint64 `json:"next"`
	Last string `json:"last"`
	// First and LastTime bound the times of the chain's records up to
	// Next (absent from heads written before chains had names).
	First    time.Time `json:"first,omitzero"`
	LastTime time.Time `json:"last_time,omitzero"`
}

// widen extends the chain's time bounds to tm.
func (t *tenantLog) widen(tm time.Time) {
	if t.first.IsZero() || tm.Before(t.first) {
		t.first = tm
	}
	if tm.After(t.lastTime) {
		t.lastTime = tm
	}
}

// loadHead finds the end of the log. The head object says where it ended
// at the last flush, so only segments named after that are listed (none,
// or those of a flush that stopped before writing the head); without a
// readable head every segment is listed. A restarted server or a cold
// Lambda instance used to list the whole log here, a List call per 1,000
// segments, before its first flush.
//
// A head ahead of the segments (records cut off the end) is trusted: new
// records continue its chain, so Verify keeps reporting the missing ones
// instead of a rewritten head hiding them.
func (l *Log) loadHead(ctx context.Context, id string, t *tenantLog) error {
	t.next, t.last = 1, ""
	t.first, t.lastTime = time.Time{}, time.Time{}
	c := l.chain
	after := ""
	hb, err := l.st.Read(ctx, id, c.head())
	switch {
	case errors.Is(err, ErrMissing):
		if c != "" {
			// A named chain registers itself by its head, before its
			// first segment: readers list chains by their heads.
			h, _ := json.Marshal(head{Next: 1})
			if err := l.st.Create(ctx, id, c.head(), h); err != nil && !errors.Is(err, ErrConflict) {
				return fmt.Errorf("audit: create the head of chain %s of %s: %w", c, id, err)
			}
		}
	case err != nil:
		return fmt.Errorf("audit: read head of %s: %w", id, err)
	default:
		var h head
		if json.Unmarshal(hb, &h) == nil && h.Next > 1 && h.Last != "" {
			t.next, t.last = h.Next, h.Last
			t.first, t.lastTime = h.First, h.LastTime
			after = c.seg(h.Next - 1)
		}
	}
	last, past := "", 0
	for name, err := range l.segmentsAfter(ctx, id, c, after, 0) {
		if err != nil {
			return err
		}
		last = name
		past++
	}
	// Only the last segment past the head is read: with more, the time
	// bounds would miss the others', so the chain keeps none.
	t.bounded = (t.next == 1 && last == "") || (!t.first.IsZero() && past <= 1)
	if last != "" {
		recs, err := l.readSegment(ctx, id, last, false)
		if err != nil {
			return err
		}
		if len(recs) > 0 {
			r := recs[len(recs)-1]
			t.next, t.last = r.Seq+1, r.Hash
			for i := range recs {
				t.widen(recs[i].Time)
			}
		}
	}
	t.loaded = true
	return nil
}

// segmentsAfter yields the names of the segments of tenant id's chain c
// after the name after ("" for all), in order, listing a page at a time as
// the caller goes, so a caller that stops early lists no further.
//
// The first List asks for first names (at most 1000; 0: 1000), the next
// for 1000 each: a page of n records needs at most n+1 segments, so a
// caller reading a page passes that, and a small page lists little of a
// long log.
func (l *Log) segmentsAfter(ctx context.Context, id string, c chainObjects, after string, first int) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		page := first
		if page <= 0 || page > 1000 {
			page = 1000
		}
		// Callers read (open, decode) each segment as it comes: a long
		// read gives its processor to other requests between them.
		var y cpuyield.Point
		for {
			y.Maybe()
			names, err := l.st.List(ctx, id, c.segPrefix(), after, page)
			if err != nil {
				yield("", fmt.Errorf("audit: list %s: %w", id, err))
				return
			}
			for _, n := range names {
				y.Maybe()
				if !yield(n, nil) {
					return
				}
			}
			if len(names) < page {
				return
			}
			after = names[len(names)-1]
			page = 1000
		}
	}
}

// allSegments lists every segment of tenant id's chain c after the name
// after ("" for all).
func (l *Log) allSegments(ctx context.Context, id string, c chainObjects, after string) ([]string, error) {
	var all []string
	for name, err := range l.segmentsAfter(ctx, id, c, after, 0) {
		if err != nil {
			return nil, err
		}
		all = append(all, name)
	}
	return all, nil
}

// readSegment returns the records of one segment, read from the store
// (cached: false; Verify) or through the segment cache (pages).
func (l *Log) readSegment(ctx context.Context, id, name string, cached bool) ([]Record, error) {
	var out []Record
	err := l.eachRecord(ctx, id, name, 0, cached, func(r *Record) bool {
		out = append(out, *r)
		return true
	})
	return out, err
}

// eachRecord calls f with the records of one segment in order until f
// returns false; f must not keep the pointer (the record is reused). Records numbered at most skipTo are passed over without
// being decoded (their number is read from the line's canonical prefix),
// so a page deep into a segment of thousands of records decodes only the
// records it returns; a line not in the canonical form is decoded whole.
// With cached, the segment is read through the segment cache.
func (l *Log) eachRecord(ctx context.Context, id, name string, skipTo uint64, cached bool, f func(*Record) bool) error {
	b, err := l.segment(ctx, id, name, cached)
	if err != nil {
		return fmt.Errorf("audit: read %s: %w", name, err)
	}
	var (
		y cpuyield.Point
		r Record // one for the segment: f copies what it keeps
	)
	for i := 1; len(b) > 0; i++ {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		if len(line) == 0 {
			continue
		}
		if seq, ok := lineSeq(line); ok && seq <= skipTo {
			continue
		}
		r = Record{}
		if err := decodeRecord(line, &r); err != nil {
			return fmt.Errorf("audit: %s line %d: %w", name, i, err)
		}
		if !f(&r) {
			return nil
		}
		y.Maybe()
	}
	return nil
}

// segKey names a segment in the cache.
type segKey struct{ tenant, name string }

// segment returns the lines of segment name of tenant id, trimmed; with
// cached, through the segment cache. The bytes are shared: callers only
// read them.
func (l *Log) segment(ctx context.Context, id, name string, cached bool) ([]byte, error) {
	if !cached || l.segs == nil {
		b, err := l.st.Read(ctx, id, name)
		return bytes.TrimSpace(b), err
	}
	return l.segs.Get(ctx, segKey{id, name}, func(ctx context.Context) ([]byte, int64, error) {
		b, err := l.st.Read(ctx, id, name)
		if err != nil {
			return nil, 0, err
		}
		b = bytes.TrimSpace(b)
		return b, int64(cap(b)) + int64(len(id)+len(name)) + 64, nil
	})
}

// lineSeq reads the record number from a line that starts the way
// appendRecord writes it: {"seq":N,
func lineSeq(line []byte) (uint64, bool) {
	rest, ok := bytes.CutPrefix(line, []byte(`{"seq":`))
	if !ok {
		return 0, false
	}
	end := bytes.IndexByte(rest, ',')
	if end <= 0 || end > 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(rest[:end]), 10, 64)
	return n, err == nil
}

// segName names a segment of the single chain.
func segName(first uint64) string { return chainObjects("").seg(first) }

// hashRecord is sha256 over the previous hash, a newline, and the record's
// canonical JSON (appendRecord) with an empty Hash field.
func hashRecord(r *Record) string {
	c := *r
	c.Hash = ""
	var buf [512]byte
	b := append(buf[:0], r.Prev...)
	b = append(b, '\n')
	b = appendRecord(b, &c)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// appendHashed sets r.Hash (as hashRecord does) and appends r's line to
// b, encoding the record once: the hashed form is the line itself with an
// empty hash, so the hash is taken over that and then put in place of its
// last three bytes (`""}`). scratch is a buffer it reuses.
func appendHashed(b []byte, scratch *[]byte, r *Record) []byte {
	r.Hash = ""
	start := len(b)
	b = appendRecord(b, r)
	h := append((*scratch)[:0], r.Prev...)
	h = append(h, '\n')
	h = append(h, b[start:]...)
	*scratch = h
	sum := sha256.Sum256(h)
	b = b[:len(b)-3]
	b = append(b, '"')
	at := len(b)
	b = hex.AppendEncode(b, sum[:])
	r.Hash = string(b[at:])
	return append(b, '"', '}')
}

// segmentBufs holds segment buffers between flushes; one larger than
// maxPooledSegment (a segment of very long records) is left to the
// collector.
var segmentBufs = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

const maxPooledSegment = 1 << 20

// appendRecord writes r as JSON in a fixed field order, without
// reflection: records are written for every request, so this is on the
// server's hot path, and a canonical form makes the hash reproducible from
// a decoded record.
func appendRecord(b []byte, r *Record) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	b = append(b, `,"time":"`...)
	b = r.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if r.RequestID != "" {
		b = append(b, `,"request_id":`...)
		b = appendString(b, r.RequestID)
	}
	b = append(b, `,"actor":`...)
	b = appendString(b, r.Actor)
	b = append(b, `,"action":`...)
	b = appendString(b, r.Action)
	if r.Object != "" {
		b = append(b, `,"object":`...)
		b = appendString(b, r.Object)
	}
	if r.Justification != "" {
		b = append(b, `,"justification":`...)
		b = appendString(b, r.Justification)
	}
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	b = append(b, `,"latency_ms":`...)
	b = strconv.AppendFloat(b, r.LatencyMS, 'g', -1, 64)
	b = append(b, `,"prev":`...)
	b = appendString(b, r.Prev)
	b = append(b, `,"hash":`...)
	b = appendString(b, r.Hash)
	return append(b, '}')
}

// appendString writes s as a JSON string: control characters escaped,
// invalid UTF-8 replaced, so that decoding and re-encoding is stable.
func appendString(b []byte, s string) []byte {
	const hexd = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hexd[c>>4], hexd[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = utf8.AppendRune(b, utf8.RuneError) // raw, so a decode round-trips
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// Query selects records for [Log.Read].
type Query struct {
	// AfterSeq pages the single chain by sequence number: only records of
	// that chain with Seq > AfterSeq, in sequence order. Named chains are
	// paged with Cursor instead; set at most one of the two.
	AfterSeq uint64
	// Cursor pages every chain merged by time: only records after the
	// one [CursorOf] named. "" starts at the beginning.
	Cursor string
	Since  time.Time // only records at or after Since
	Until  time.Time // only records before Until (zero: no bound)
	Limit  int       // at most Limit records (default 100, at most 1000)
}

// Read returns written records of tenant matching q, oldest first: the
// records of [Log.ReadPage].
func (l *Log) Read(ctx context.Context, tenant string, q Query) ([]Record, error) {
	p, err := l.ReadPage(ctx, tenant, q)
	if err != nil {
		return nil, err
	}
	return p.Records, nil
}

// Page is one page of [Log.ReadPage]: its records and where the next
// page starts — NextCursor when the page was merged from chains (pass it
// as Query.Cursor), else NextAfter (pass it as Query.AfterSeq).
type Page struct {
	Records    []Record
	NextAfter  uint64
	NextCursor string
}

// ReadPage returns written records of tenant matching q, oldest first.
// Queued, unwritten records are not included.
//
// A log with the single chain only (every server's) is read in sequence
// order, as it always was, and paged by AfterSeq. Once a tenant has named
// chains, a query without AfterSeq merges every chain by (time, chain,
// seq) and is paged by Cursor; AfterSeq still pages the single chain
// alone.
func (l *Log) ReadPage(ctx context.Context, tenant string, q Query) (*Page, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	q.Limit = min(q.Limit, 1000)
	if q.AfterSeq > 0 && q.Cursor != "" {
		return nil, fmt.Errorf("%w: a query takes AfterSeq or Cursor, not both", ErrBadCursor)
	}
	if q.AfterSeq == 0 {
		cur, err := parseCursor(q.Cursor)
		if err != nil {
			return nil, err
		}
		named, err := l.namedChains(ctx, tenant, 1)
		if err != nil {
			return nil, err
		}
		if len(named) > 0 || q.Cursor != "" {
			recs, err := l.readMerged(ctx, tenant, q, cur)
			if err != nil {
				return nil, err
			}
			p := &Page{Records: recs, NextCursor: q.Cursor}
			if len(recs) > 0 {
				p.NextCursor = CursorOf(&recs[len(recs)-1])
			} else if p.NextCursor == "" {
				// Nothing yet: a cursor before every record of the window,
				// for a client that polls for more.
				start := q.Since
				if start.IsZero() {
					start = time.Unix(0, 0)
				}
				p.NextCursor = CursorOf(&Record{Time: start})
			}
			return p, nil
		}
	}
	out, found, err := l.read(ctx, tenant, q, true)
	if err == nil && !found {
		// No segment starts within MaxSegment records before AfterSeq+1:
		// the log was written with larger segments, or has a gap there.
		out, _, err = l.read(ctx, tenant, q, false)
	}
	if err != nil {
		return nil, err
	}
	p := &Page{Records: out, NextAfter: q.AfterSeq}
	if len(out) > 0 {
		p.NextAfter = out[len(out)-1].Seq
	}
	return p, nil
}

// read lists segments a page at a time, reads from the one holding
// AfterSeq+1 and stops at the limit, so a page of the log costs a List
// call or two, not a listing of the whole log. A segment holds at most
// MaxSegment records, so with bounded set the listing starts at the first
// name that can hold AfterSeq+1; found is false when the first segment
// listed there starts after AfterSeq+1, which only a log written with
// larger segments, or with a gap, shows (the caller then reads unbounded).
func (l *Log) read(ctx context.Context, tenant string, q Query, bounded bool) (out []Record, found bool, err error) {
	first := q.AfterSeq + 1
	after := ""
	// A page is usually full: grow it once, not from one record up (a
	// tenant paging its log in a loop allocated more for that than for
	// the segments it read).
	out = make([]Record, 0, min(q.Limit, 128))
	if m := uint64(l.opts.MaxSegment); bounded && q.AfterSeq > 0 && first > m {
		after = segName(first - m)
	} else {
		bounded = false
	}
	// take reads one segment; it reports true once the limit is reached.
	take := func(name string) (bool, error) {
		done := false
		err := l.eachRecord(ctx, tenant, name, q.AfterSeq, true, func(r *Record) bool {
			if r.Seq <= q.AfterSeq || r.Time.Before(q.Since) || (!q.Until.IsZero() && !r.Time.Before(q.Until)) {
				return true
			}
			out = append(out, *r)
			done = len(out) == q.Limit
			return !done
		})
		return done, err
	}
	// prev is the last segment starting at or before first: the one that
	// holds it. Reading starts there, at the first name past first.
	prev, started, firstName := "", false, segName(first)
	for name, err := range l.segmentsAfter(ctx, tenant, "", after, q.Limit+1) {
		if err != nil {
			return nil, false, err
		}
		if !started {
			if name <= firstName {
				prev = name
				continue
			}
			started = true
			if prev == "" && bounded {
				return nil, false, nil
			}
			if prev != "" {
				if done, err := take(prev); err != nil || done {
					return out, true, err
				}
			}
		}
		if done, err := take(name); err != nil || done {
			return out, true, err
		}
	}
	if !started && prev != "" {
		if _, err := take(prev); err != nil {
			return nil, false, err
		}
	}
	if bounded && prev == "" && !started {
		// Nothing listed past the bound: a client polling the log's end,
		// unless a segment larger than the bound reaches past first. The
		// head says which, without listing the whole log.
		var h head
		hb, err := l.st.Read(ctx, tenant, headName)
		if err != nil || json.Unmarshal(hb, &h) != nil || h.Next > first {
			return nil, false, nil
		}
	}
	return out, true, nil
}
