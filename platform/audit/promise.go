package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Promises make a crash inside the flush window visible.
//
// A server acknowledges a request before the request's audit record is
// written (records are flushed every FlushInterval). If it dies in between,
// the record is gone. So before it handles a tenant's requests, a writer
// (a Log, one per process) promises them: it writes the object
// promise-<writer> with open set and a lease (Options.PromiseLease),
// renews the lease while it keeps writing, and closes the promise in
// Close, after its last flush. A promise found open after its lease
// expired belongs to a writer that stopped without closing its log: the
// records it acknowledged after its last flush may be missing. Verify
// reports such promises; the next writer of the tenant records the gap in
// the chain itself (an "audit.gap" record naming the writer) and closes
// the promise, so the gap stays visible in the log for good.
//
// A server that flushes before every answer (the Lambda functions) has no
// window and sets Options.NoPromise.

const (
	promisePrefix = "promise-"
	// gapClaimPrefix names the marker a writer creates, conditionally,
	// before it records another writer's gap: one gap record per promise.
	gapClaimPrefix = "gapclaim-"
	// GapAction is the action of the record a writer appends when it
	// finds that another writer stopped without closing the log.
	GapAction = "audit.gap"
)

type promise struct {
	Writer string    `json:"writer"`
	Open   bool      `json:"open"`
	Until  time.Time `json:"until"`
	Since  time.Time `json:"since"`
}

func newWriterID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Promise makes sure the tenant's log is promised by this writer for at
// least half a lease more: a no-op (an atomic load) while it is, otherwise
// one store write, and, the first time in this writer, the adoption of
// other writers' expired open promises (their gaps are queued as records).
// Call it before handling a request whose record is written later. An
// error means the promise could not be stored; the request may go on (an
// audit log must not take the service down), but a crash before the next
// flush would then be silent.
func (l *Log) Promise(ctx context.Context, tenant string) error {
	if l.opts.NoPromise {
		return nil
	}
	t := l.tenant(tenant)
	now := time.Now()
	if now.Add(l.opts.PromiseLease/2).UnixNano() < t.promisedUntil.Load() {
		return nil
	}
	t.prom.Lock()
	defer t.prom.Unlock()
	if now.Add(l.opts.PromiseLease/2).UnixNano() < t.promisedUntil.Load() {
		return nil
	}
	if !t.adopted {
		if err := l.adopt(ctx, tenant); err != nil {
			return err
		}
		t.adopted = true
	}
	until := now.Add(l.opts.PromiseLease)
	since := now
	if t.since.IsZero() {
		t.since = now
	} else {
		since = t.since
	}
	b, _ := json.Marshal(promise{Writer: l.writer, Open: true, Until: until.UTC(), Since: since.UTC()})
	if err := l.st.Put(ctx, tenant, promisePrefix+l.writer, b); err != nil {
		return fmt.Errorf("audit: promise for %s: %w", tenant, err)
	}
	t.promisedUntil.Store(until.UnixNano())
	return nil
}

// openPromises lists the tenant's open promises of other writers whose
// lease has expired.
func (l *Log) openPromises(ctx context.Context, tenant string) ([]promise, error) {
	var out []promise
	after := ""
	for {
		names, err := l.st.List(ctx, tenant, promisePrefix, after, 1000)
		if err != nil {
			return nil, fmt.Errorf("audit: list promises of %s: %w", tenant, err)
		}
		for _, n := range names {
			if n == promisePrefix+l.writer {
				continue
			}
			b, err := l.st.Read(ctx, tenant, n)
			if err != nil {
				if errors.Is(err, ErrMissing) {
					continue
				}
				return nil, err
			}
			var p promise
			if json.Unmarshal(b, &p) != nil || !p.Open || time.Now().Before(p.Until) {
				continue // closed, or a writer that may still be alive
			}
			if p.Writer == "" {
				p.Writer = strings.TrimPrefix(n, promisePrefix)
			}
			out = append(out, p)
		}
		if len(names) < 1000 {
			return out, nil
		}
		after = names[len(names)-1]
	}
}

// adopt records every expired open promise of another writer as a gap
// in the chain and closes it.
func (l *Log) adopt(ctx context.Context, tenant string) error {
	ps, err := l.openPromises(ctx, tenant)
	if err != nil {
		return err
	}
	t := l.tenant(tenant)
	for _, p := range ps {
		// Two writers may find the same expired promise at once (two
		// Lambda environments starting together): the one that creates
		// the claim records the gap, the other leaves it.
		claim := gapClaimPrefix + p.Writer + "-" + strconv.FormatInt(p.Until.UnixNano(), 10)
		if err := l.st.Create(ctx, tenant, claim, []byte(l.writer)); err != nil {
			if errors.Is(err, ErrConflict) {
				continue
			}
			return fmt.Errorf("audit: claim the gap of %s: %w", p.Writer, err)
		}
		t.pmu.Lock()
		t.pending = append([]Record{{Time: time.Now().UTC(), Actor: "system", Action: GapAction,
			Object: "writers/" + p.Writer + "/until/" + p.Until.Format(time.RFC3339Nano)}}, t.pending...)
		t.pmu.Unlock()
		p.Open = false
		b, _ := json.Marshal(p)
		if err := l.st.Put(ctx, tenant, promisePrefix+p.Writer, b); err != nil {
			return fmt.Errorf("audit: close the promise of %s: %w", p.Writer, err)
		}
		l.log.Warn("audit: a writer stopped without closing the log; gap recorded", "tenant", tenant, "writer", p.Writer, "promised_until", p.Until)
	}
	return nil
}

// renew extends this writer's promise during a flush that wrote the
// tenant's records, so an active tenant never pays Promise's store write
// on a request.
func (l *Log) renew(ctx context.Context, tenant string, t *tenantLog) {
	if l.opts.NoPromise || t.promisedUntil.Load() == 0 {
		return
	}
	if time.Now().Add(l.opts.PromiseLease/2).UnixNano() < t.promisedUntil.Load() {
		return
	}
	_ = l.Promise(ctx, tenant)
}

// closePromises closes this writer's promises after its last flush.
func (l *Log) closePromises(ctx context.Context) error {
	l.mu.Lock()
	ids := make([]string, 0, len(l.tenants))
	for id, t := range l.tenants {
		if t.promisedUntil.Load() != 0 {
			ids = append(ids, id)
		}
	}
	l.mu.Unlock()
	var first error
	for _, id := range ids {
		t := l.tenant(id)
		b, _ := json.Marshal(promise{Writer: l.writer, Open: false, Until: time.Now().UTC(), Since: t.since.UTC()})
		if err := l.st.Put(ctx, id, promisePrefix+l.writer, b); err != nil && first == nil {
			first = fmt.Errorf("audit: close the promise for %s: %w", id, err)
		}
	}
	return first
}

// gapProblem describes a gap record for Verify.
func gapProblem(r *Record) string {
	writer, until, _ := strings.Cut(strings.TrimPrefix(r.Object, "writers/"), "/until/")
	return fmt.Sprintf("record %d: writer %s stopped without closing the log (its promise ran until %s): records it acknowledged after its last flush are missing", r.Seq, writer, until)
}
