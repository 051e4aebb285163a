package audit

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Many chains, one log.
//
// A tenant's log is the union of its chains: the single chain (seg-…,
// head) that servers write, and one named chain per writer that set
// Options.Chain (cseg-<chain>.…, chead-<chain>) — on Lambda, one per
// execution environment. Each chain is a hash chain of its own, written by
// one writer, so no writer ever waits for another; Verify checks every
// chain and Read merges them by time.

// namedChains lists up to limit named chains of tenant (0: up to
// MaxChains, and ErrTooMuch past it), in name order, by their heads.
func (l *Log) namedChains(ctx context.Context, tenant string, limit int) ([]string, error) {
	const page = 1000
	bound := limit
	if bound <= 0 {
		bound = l.opts.MaxChains
	}
	var out []string
	after := ""
	for {
		names, err := l.st.List(ctx, tenant, chainHeadPrefix, after, page)
		if err != nil {
			return nil, fmt.Errorf("audit: list the chains of %s: %w", tenant, err)
		}
		for _, n := range names {
			id := strings.TrimPrefix(n, chainHeadPrefix)
			if !ValidChain(id) {
				continue
			}
			if len(out) == bound {
				if limit > 0 {
					return out, nil
				}
				return nil, fmt.Errorf("%w: tenant %s has more than %d audit chains (Options.MaxChains)", ErrTooMuch, tenant, bound)
			}
			out = append(out, id)
		}
		if len(names) < page {
			return out, nil
		}
		after = names[len(names)-1]
	}
}

// chains lists every chain of tenant: the single chain when it has any
// object, then the named ones.
func (l *Log) chains(ctx context.Context, tenant string) ([]chainObjects, error) {
	var out []chainObjects
	segs, err := l.st.List(ctx, tenant, segPrefix, "", 1)
	if err != nil {
		return nil, fmt.Errorf("audit: list %s: %w", tenant, err)
	}
	if len(segs) > 0 {
		out = append(out, "")
	} else if _, err := l.st.Read(ctx, tenant, headName); err == nil {
		out = append(out, "") // a head without segments: Verify says so
	} else if !errors.Is(err, ErrMissing) {
		return nil, fmt.Errorf("audit: read head of %s: %w", tenant, err)
	}
	named, err := l.namedChains(ctx, tenant, 0)
	if err != nil {
		return nil, err
	}
	for _, n := range named {
		out = append(out, chainObjects(n))
	}
	return out, nil
}

// cursor is a position in the merged order of a tenant's records: by
// time, then chain, then sequence number.
type cursor struct {
	time  time.Time
	chain string
	seq   uint64
}

// CursorOf returns the cursor just past r in the merged order of a
// tenant's chains (time, then chain, then seq): pass it as Query.Cursor
// for the records after r. r must come from Read (its Chain is set).
func CursorOf(r *Record) string {
	return strconv.FormatInt(r.Time.UnixNano(), 10) + "." + r.Chain + "." + strconv.FormatUint(r.Seq, 10)
}

func parseCursor(s string) (cursor, error) {
	if s == "" {
		return cursor{}, nil
	}
	bad := fmt.Errorf("%w: %q is not a cursor this log gave out", ErrBadCursor, s)
	ts, rest, ok1 := strings.Cut(s, ".")
	ch, sq, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || (ch != "" && !ValidChain(ch)) {
		return cursor{}, bad
	}
	ns, err1 := strconv.ParseInt(ts, 10, 64)
	seq, err2 := strconv.ParseUint(sq, 10, 64)
	if err1 != nil || err2 != nil {
		return cursor{}, bad
	}
	return cursor{time: time.Unix(0, ns).UTC(), chain: ch, seq: seq}, nil
}

// compareMerged orders records as Read merges them.
func compareMerged(a, b *Record) int {
	if c := a.Time.Compare(b.Time); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Chain, b.Chain); c != 0 {
		return c
	}
	return cmp.Compare(a.Seq, b.Seq)
}

func (c cursor) before(r *Record) bool {
	return compareMerged(&Record{Time: c.time, Chain: c.chain, Seq: c.seq}, r) < 0
}

// readMerged reads one page of every chain merged by time.
//
// A chain's records are in the order they were written, which is their
// time order but for records of requests that ran long (a record carries
// its request's start): a record is at most MaxSkew earlier than any
// written before it. So each chain is read from its start (its head's
// time bounds skip a chain wholly outside the window) until it is past
// the page by more than MaxSkew.
func (l *Log) readMerged(ctx context.Context, tenant string, q Query, cur cursor) ([]Record, error) {
	chains, err := l.chains(ctx, tenant)
	if err != nil {
		return nil, err
	}
	lo := q.Since
	if cur.time.After(lo) {
		lo = cur.time
	}
	reads := 0
	var out []Record
	for _, c := range chains {
		if skip, err := l.outside(ctx, tenant, c, lo, q.Until); err != nil {
			return nil, err
		} else if skip {
			continue
		}
		var page []Record // this chain's best Limit records so far
		var newest time.Time
		for name, err := range l.segmentsAfter(ctx, tenant, c, "", q.Limit+1) {
			if err != nil {
				return nil, err
			}
			if settled := newest.Add(-l.opts.MaxSkew); (len(page) == q.Limit && settled.After(page[len(page)-1].Time)) ||
				(!q.Until.IsZero() && !settled.Before(q.Until)) {
				break // nothing later in this chain can enter the page
			}
			if reads++; reads > l.opts.MaxReads {
				return nil, fmt.Errorf("%w: this page of %s's audit log needs more than %d segment reads; narrow it with since and until", ErrTooMuch, tenant, l.opts.MaxReads)
			}
			recs, err := l.readSegment(ctx, tenant, name, true)
			if err != nil {
				return nil, err
			}
			for i := range recs {
				r := &recs[i]
				r.Chain = string(c)
				if r.Time.After(newest) {
					newest = r.Time
				}
				if r.Time.Before(q.Since) || (!q.Until.IsZero() && !r.Time.Before(q.Until)) || !cur.before(r) {
					continue
				}
				if len(page) < q.Limit {
					page = append(page, *r)
					if len(page) == q.Limit {
						slices.SortFunc(page, func(a, b Record) int { return compareMerged(&a, &b) })
					}
					continue
				}
				// Full and sorted: r enters only if it is before the newest.
				if compareMerged(r, &page[q.Limit-1]) < 0 {
					at, _ := slices.BinarySearchFunc(page, r, func(a Record, b *Record) int { return compareMerged(&a, b) })
					copy(page[at+1:], page[at:q.Limit-1])
					page[at] = *r
				}
			}
		}
		out = append(out, page...)
	}
	slices.SortFunc(out, func(a, b Record) int { return compareMerged(&a, &b) })
	if len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

// outside reports whether chain c of tenant certainly has no record in
// [lo, until), from its head's time bounds. A head can be behind its
// chain (the writer stopped between a segment and the head), so the
// upper bound is trusted only when no segment follows the head.
func (l *Log) outside(ctx context.Context, tenant string, c chainObjects, lo, until time.Time) (bool, error) {
	hb, err := l.st.Read(ctx, tenant, c.head())
	if errors.Is(err, ErrMissing) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("audit: read head of chain %q of %s: %w", c, tenant, err)
	}
	var h head
	if json.Unmarshal(hb, &h) != nil || h.First.IsZero() || h.LastTime.IsZero() {
		return h.Next == 1 && c != "", nil // a named chain that has written nothing yet
	}
	if !until.IsZero() && !h.First.Before(until) {
		return true, nil
	}
	if !h.LastTime.Before(lo) {
		return false, nil
	}
	later, err := l.st.List(ctx, tenant, c.segPrefix(), c.seg(h.Next-1), 1)
	if err != nil {
		return false, fmt.Errorf("audit: list %s: %w", tenant, err)
	}
	return len(later) == 0, nil
}

// VerifyResult is the outcome of [Log.Verify]: the whole log (every
// chain) in the first fields, each chain in Chains.
type VerifyResult struct {
	Records  uint64 `json:"records"`
	Segments int    `json:"segments"`
	OK       bool   `json:"ok"`
	// Problems of every chain; a named chain's are prefixed with its name.
	Problems []string `json:"problems,omitempty"`
	// First and Last are the times of the oldest and newest record.
	First  time.Time     `json:"first,omitzero"`
	Last   time.Time     `json:"last,omitzero"`
	Chains []ChainResult `json:"chains"`
}

// ChainResult is the outcome of verifying one chain.
type ChainResult struct {
	ID       string    `json:"id"` // "" for the single chain of a server
	Records  uint64    `json:"records"`
	Segments int       `json:"segments"`
	First    time.Time `json:"first,omitzero"`
	Last     time.Time `json:"last,omitzero"`
	OK       bool      `json:"ok"`
	Problems []string  `json:"problems,omitempty"`
}

const maxProblems = 100

// Verify walks every chain of tenant's log and checks each one:
// contiguous sequence numbers from 1, each record's Prev equal to the
// previous Hash, each Hash recomputed, and the chain's head agreeing with
// its last record. It also reports writers that stopped without closing
// the log (promises). More chains than Options.MaxChains is ErrTooMuch.
func (l *Log) Verify(ctx context.Context, tenant string) (*VerifyResult, error) {
	chains, err := l.chains(ctx, tenant)
	if err != nil {
		return nil, err
	}
	res := &VerifyResult{Chains: []ChainResult{}}
	bad := func(format string, a ...any) {
		if len(res.Problems) < maxProblems {
			res.Problems = append(res.Problems, fmt.Sprintf(format, a...))
		}
	}
	for _, c := range chains {
		cr, err := l.verifyChain(ctx, tenant, c)
		if err != nil {
			return nil, err
		}
		res.Records += cr.Records
		res.Segments += cr.Segments
		if !cr.First.IsZero() && (res.First.IsZero() || cr.First.Before(res.First)) {
			res.First = cr.First
		}
		if cr.Last.After(res.Last) {
			res.Last = cr.Last
		}
		for _, p := range cr.Problems {
			if c == "" {
				bad("%s", p)
			} else {
				bad("chain %s: %s", c, p)
			}
		}
		res.Chains = append(res.Chains, cr)
	}
	ps, err := l.openPromises(ctx, tenant)
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		bad("writer %s promised records until %s and stopped without closing the log: records it acknowledged after its last flush may be missing", p.Writer, p.Until.Format(time.RFC3339))
	}
	res.OK = len(res.Problems) == 0
	return res, nil
}

func (l *Log) verifyChain(ctx context.Context, tenant string, c chainObjects) (ChainResult, error) {
	names, err := l.allSegments(ctx, tenant, c, "")
	if err != nil {
		return ChainResult{}, err
	}
	v := &chainCheck{res: ChainResult{ID: string(c), Segments: len(names)}, want: 1}
	l.checkSegments(ctx, tenant, c, v, names)
	var h head
	hb, err := l.st.Read(ctx, tenant, c.head())
	headErr := err
	if err == nil {
		headErr = json.Unmarshal(hb, &h)
	}
	if headErr == nil && h.Next > v.want {
		// A flush that ended after the listing wrote segments the head
		// now counts: it writes a segment before the head, so they are
		// there to list. Without this a Verify beside a flush reported
		// the newest records missing from the end.
		after := ""
		if len(names) > 0 {
			after = names[len(names)-1]
		}
		more, err := l.allSegments(ctx, tenant, c, after)
		if err != nil {
			return ChainResult{}, err
		}
		v.res.Segments += len(more)
		l.checkSegments(ctx, tenant, c, v, more)
	}
	switch {
	case errors.Is(err, ErrMissing):
		if v.res.Records > 0 {
			v.bad("head object missing")
		}
	case err != nil:
		return ChainResult{}, fmt.Errorf("audit: read head of %s: %w", tenant, err)
	case headErr != nil:
		v.bad("head object unreadable: %v", headErr)
	case h.Next > v.want:
		v.bad("records %d to %d missing from the end (head says %d)", v.want, h.Next-1, h.Next-1)
	case h.Next == v.want && h.Last != v.prev:
		v.bad("head hash does not match the last record")
	}
	// h.Next < want: a flush wrote a segment but not yet the head.
	v.res.OK = len(v.res.Problems) == 0
	return v.res, nil
}

// chainCheck is Verify's walk along one chain: what it found so far, and
// the sequence number and hash the next record must carry.
type chainCheck struct {
	res  ChainResult
	want uint64
	prev string
}

func (v *chainCheck) bad(format string, a ...any) {
	if len(v.res.Problems) < maxProblems {
		v.res.Problems = append(v.res.Problems, fmt.Sprintf(format, a...))
	}
}

// checkSegments checks the records of the named segments of chain c, in
// order, continuing v's walk.
func (l *Log) checkSegments(ctx context.Context, tenant string, c chainObjects, v *chainCheck, names []string) {
	for _, name := range names {
		recs, err := l.readSegment(ctx, tenant, name, false)
		if err != nil {
			v.bad("%v", err)
			continue
		}
		if len(recs) > 0 && name != c.seg(recs[0].Seq) {
			v.bad("segment %s starts with record %d", name, recs[0].Seq)
		}
		for _, r := range recs {
			if r.Action == GapAction && r.Actor == "system" {
				v.bad("%s", gapProblem(&r))
			}
			if r.Seq != v.want {
				v.bad("record %d missing (found %d next)", v.want, r.Seq)
			}
			if r.Prev != v.prev {
				v.bad("record %d: chain broken (prev hash does not match record %d)", r.Seq, r.Seq-1)
			}
			if h := hashRecord(&r); h != r.Hash {
				v.bad("record %d: altered (hash mismatch)", r.Seq)
			}
			if v.res.First.IsZero() || r.Time.Before(v.res.First) {
				v.res.First = r.Time
			}
			if r.Time.After(v.res.Last) {
				v.res.Last = r.Time
			}
			v.want, v.prev = r.Seq+1, r.Hash
			v.res.Records++
		}
	}
}
