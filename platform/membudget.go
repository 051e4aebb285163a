package platform

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/aiaas/aiaas/internal/yield"
	"github.com/aiaas/aiaas/platform/internal/share"
)

// bodyBudget bounds the request bytes the process holds at once
// (AIAAS_BODY_BUDGET_BYTES), and each tenant to half of it, so that
// concurrent large uploads cannot take the process's memory and one
// tenant's cannot take all of the budget. Bytes are reserved as a body is
// read, in granules, before they are read; a request that would pass a
// limit fails at once — 429 with Retry-After when it is its tenant's share,
// 503 when it is the process's — and everything a request reserved is
// released when it ends. It is safe for concurrent use.
type bodyBudget struct {
	limit, share int64 // process, per tenant; 0: unlimited

	mu       sync.Mutex
	used     int64
	byTenant map[string]int64
}

// bodyGranule is how much a body reserves at a time: small bodies (an
// inference) take one granule, an upload one per 256 KiB read.
const bodyGranule = 256 << 10

func newBodyBudget(limit int64) *bodyBudget {
	return &bodyBudget{limit: limit, share: limit / 2, byTenant: map[string]int64{}}
}

// budgetError is a refused reservation.
type budgetError struct {
	status int
	msg    string
}

func (e *budgetError) Error() string { return e.msg }

func (b *bodyBudget) reserve(tenant string, n int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.limit > 0 && b.used+n > b.limit {
		return &budgetError{http.StatusServiceUnavailable,
			fmt.Sprintf("the server holds %d MiB of request bodies and data parsed from them, its budget (AIAAS_BODY_BUDGET_BYTES) is %d MiB: retry shortly", b.used>>20, b.limit>>20)}
	}
	if tenant != "" && b.share > 0 && b.byTenant[tenant]+n > b.share {
		return &budgetError{http.StatusTooManyRequests,
			fmt.Sprintf("this tenant's requests hold %d MiB of bodies and data parsed from them, its share of the server's budget is %d MiB: retry when they finish", b.byTenant[tenant]>>20, b.share>>20)}
	}
	b.used += n
	if tenant != "" {
		b.byTenant[tenant] += n
	}
	return nil
}

// held is the bytes reserved now.
func (b *bodyBudget) held() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

func (b *bodyBudget) release(tenant string, n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	if tenant != "" {
		if b.byTenant[tenant] -= n; b.byTenant[tenant] <= 0 {
			delete(b.byTenant, tenant)
		}
	}
}

// budgetedBody is a request body that reserves from a bodyBudget before
// it reads; Close (or the end of the request) gives it all back.
type budgetedBody struct {
	io.ReadCloser
	b        *bodyBudget
	share    *share.Gate // nil: reads never step aside
	tenant   string
	reserved int64 // bytes reserved
	read     int64 // bytes read
	once     sync.Once
	// streamed: the handler passes what it reads on (to the store) rather
	// than holding it, so only one read's bytes are held at a time.
	streamed bool
	// y yields the processor between reads: a fast client's upload,
	// hashed, checked and sealed as it arrives, never blocks on the
	// network, and would hold its processor for Go's 10 ms slices.
	y yield.Point
}

// stream tells the body that its reader holds no more than one read's
// bytes from now on: what was reserved past one granule is given back,
// and reads reserve only what they are about to fill.
func (r *budgetedBody) stream() {
	r.streamed = true
	if r.reserved > bodyGranule {
		r.b.release(r.tenant, r.reserved-bodyGranule)
		r.reserved = bodyGranule
	}
}

func (r *budgetedBody) Read(p []byte) (int, error) {
	r.y.Maybe()
	held := r.read
	if r.streamed {
		held = 0
	}
	if held+int64(len(p)) > r.reserved {
		need := max(int64(bodyGranule), held+int64(len(p))-r.reserved)
		if need > int64(len(p)) && len(p) < bodyGranule {
			need = bodyGranule
		}
		if err := r.b.reserve(r.tenant, need); err != nil {
			return 0, err
		}
		r.reserved += need
	}
	var (
		n   int
		err error
	)
	if r.share != nil && r.read >= shareBodyAfter {
		// A large body from a slow client: a read that waits on the
		// network steps aside from the tenant's share of the CPUs.
		r.share.Await(r.tenant, shareAwaitAfter, func() { n, err = r.ReadCloser.Read(p) })
	} else {
		n, err = r.ReadCloser.Read(p)
	}
	r.read += int64(n)
	return n, err
}

// A request body's reads step aside from the tenant's CPU share
// (share.Gate.Await) once shareBodyAfter bytes have been read and a read
// has waited shareAwaitAfter: small bodies arrive whole and pay nothing.
const (
	shareBodyAfter  = 64 << 10
	shareAwaitAfter = 2 * time.Millisecond
)

// done releases what the body reserved; the route calls it when the
// request ends, whether or not the handler closed the body.
func (r *budgetedBody) done() {
	r.once.Do(func() { r.b.release(r.tenant, r.reserved) })
}

// budgetRetry is the Retry-After of a refused reservation: bodies are
// released as requests end, which for uploads takes seconds.
const budgetRetry = 2 * time.Second
