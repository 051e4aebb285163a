package platform

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestBodyBudget: reservations stop at the tenant's share (429) and at the
// process's limit (503), before the bytes are read, and everything comes
// back when requests end, also under concurrent use.
func TestBodyBudget(t *testing.T) {
	b := newBodyBudget(4 << 20) // 4 MiB, 2 MiB a tenant
	read := func(tenant string, n int) (*budgetedBody, error) {
		bb := &budgetedBody{ReadCloser: io.NopCloser(strings.NewReader(strings.Repeat("x", n))), b: b, tenant: tenant}
		_, err := io.ReadAll(bb)
		return bb, err
	}
	a1, err := read("a", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	// a's second body passes its share (the reservation runs ahead of the
	// read by at most a granule plus the reader's buffer).
	a2, err := read("a", 3<<20/2)
	var be *budgetError
	if !errors.As(err, &be) || be.status != http.StatusTooManyRequests {
		t.Fatalf("over the tenant's share: %v", err)
	}
	// b and c fill the process.
	b1, err := read("b", 3<<19)
	if err != nil {
		t.Fatal(err)
	}
	c1, err := read("c", 2<<20)
	if !errors.As(err, &be) || be.status != http.StatusServiceUnavailable {
		t.Fatalf("over the process's budget: %v", err)
	}
	// The requests end, refused ones too (the route releases every body).
	for _, bb := range []*budgetedBody{a1, a2, b1, c1, a1} { // a1 twice: harmless
		bb.done()
	}
	if b.used != 0 || len(b.byTenant) != 0 {
		t.Fatalf("after the requests ended: %d bytes held by %v", b.used, b.byTenant)
	}
	// Concurrent tenants: everything reserved is released.
	b2 := newBodyBudget(64 << 20)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			bb := &budgetedBody{ReadCloser: io.NopCloser(strings.NewReader(strings.Repeat("y", 300<<10))), b: b2, tenant: string(rune('a' + i%3))}
			if _, err := io.ReadAll(bb); err != nil {
				t.Error(err)
			}
			bb.done()
		})
	}
	wg.Wait()
	if b2.used != 0 || len(b2.byTenant) != 0 {
		t.Fatalf("after all requests: %d bytes held by %v", b2.used, b2.byTenant)
	}
}
