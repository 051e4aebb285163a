package auth_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/platform/apikey"
	"github.com/aiaas/aiaas/platform/internal/auth"
)

// memStore is an auth.Store in memory. hook, when set, runs after a
// system read has its bytes and before it returns them.
type memStore struct {
	mu    sync.Mutex
	sys   map[string][]byte
	recs  map[string][]byte
	reads atomic.Int64
	hook  func(name string)
}

func newMemStore() *memStore {
	return &memStore{sys: map[string][]byte{}, recs: map[string][]byte{}}
}

func (m *memStore) SystemGet(ctx context.Context, name string) ([]byte, error) {
	m.reads.Add(1)
	m.mu.Lock()
	b, ok := m.sys[name]
	hook := m.hook
	m.mu.Unlock()
	if hook != nil {
		hook(name)
	}
	if !ok {
		return nil, modelstore.ErrNotFound
	}
	return b, nil
}

func (m *memStore) SystemPut(ctx context.Context, name string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sys[name] = data
	return nil
}

func (m *memStore) SystemCreate(ctx context.Context, name string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.sys[name]; ok {
		return modelstore.ErrExists
	}
	m.sys[name] = data
	return nil
}

func (m *memStore) Get(ctx context.Context, tenant, kind, name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.recs[tenant+"/"+kind+"/"+name]
	if !ok {
		return nil, modelstore.ErrNotFound
	}
	return b, nil
}

func (m *memStore) Put(ctx context.Context, tenant, kind, name string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs[tenant+"/"+kind+"/"+name] = data
	return nil
}

func (m *memStore) List(ctx context.Context, tenant, kind, prefix, after string, limit int) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	p := tenant + "/" + kind + "/" + prefix
	for k := range m.recs {
		if len(k) >= len(p) && k[:len(p)] == p && k[len(tenant)+len(kind)+2:] > after {
			out = append(out, k[len(tenant)+len(kind)+2:])
		}
	}
	// Sorted, as the real store lists.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	a := auth.New(newMemStore())
	admin := apikey.New()
	a.SetAdminHash(admin.Hash())
	k, rec, err := a.CreateKey(ctx, "tacme", "ci", apikey.ScopeInvoke)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range []struct {
		key  string
		want auth.Principal
		err  error
	}{
		{admin.Reveal(), auth.Principal{Admin: true, KeyID: "admin", Scope: apikey.ScopeManage}, nil},
		{k.Reveal(), auth.Principal{Tenant: "tacme", KeyID: rec.ID, Scope: apikey.ScopeInvoke}, nil},
		{k.Reveal(), auth.Principal{Tenant: "tacme", KeyID: rec.ID, Scope: apikey.ScopeInvoke}, nil}, // cached
		{apikey.New().Reveal(), auth.Principal{}, auth.ErrUnauthenticated},
		{"aiaas_nope", auth.Principal{}, auth.ErrUnauthenticated},
		{"", auth.Principal{}, auth.ErrUnauthenticated},
	} {
		p, err := a.Authenticate(ctx, c.key, "192.0.2.1")
		if !errors.Is(err, c.err) || (c.err == nil && err != nil) || p != c.want {
			t.Errorf("%d: %+v %v, want %+v %v", i, p, err, c.want, c.err)
		}
	}
	if _, err := a.Revoke(ctx, "tacme", rec.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, k.Reveal(), "192.0.2.1"); !errors.Is(err, auth.ErrUnauthenticated) || err.Error() != "invalid or revoked API key" {
		t.Errorf("revoked key: %v", err)
	}
	if _, err := a.Revoke(ctx, "tother", rec.ID); !errors.Is(err, modelstore.ErrNotFound) {
		t.Errorf("another tenant's key: %v, want ErrNotFound", err)
	}
	if _, err := a.KeyTenant(ctx, k.Reveal()); !errors.Is(err, modelstore.ErrNotFound) || err.Error() != "API key revoked" {
		t.Errorf("KeyTenant of a revoked key: %v", err)
	}
}

func TestMay(t *testing.T) {
	adm := auth.Principal{Admin: true, KeyID: "admin", Scope: apikey.ScopeManage}
	inv := auth.Principal{Tenant: "t1", Scope: apikey.ScopeInvoke}
	man := auth.Principal{Tenant: "t1", Scope: apikey.ScopeManage}
	for i, c := range []struct {
		p   auth.Principal
		acc auth.Access
		msg string // "" passes
	}{
		{adm, auth.Admin, ""},
		{adm, auth.Invoke, "the admin key manages tenants only; use a tenant's key"},
		{inv, auth.Admin, "this route needs the operator's admin key"},
		{inv, auth.Invoke, ""},
		{inv, auth.Manage, `this key has scope "invoke"; this route needs scope "manage"`},
		{man, auth.Manage, ""},
		{man, auth.Invoke, ""},
	} {
		err := c.p.May(c.acc)
		if c.msg == "" {
			if err != nil {
				t.Errorf("%d: %v, want nil", i, err)
			}
			continue
		}
		if !errors.Is(err, auth.ErrForbidden) || err.Error() != c.msg {
			t.Errorf("%d: %v, want %q wrapping ErrForbidden", i, err, c.msg)
		}
	}
}

// Past the burst an address is refused without a store read, and told how
// long to wait; another address is not.
func TestGuardBoundsUnknownKeys(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	a := auth.New(st)
	var throttled int
	for range 100 {
		_, err := a.Authenticate(ctx, apikey.New().Reveal(), "203.0.113.7")
		var te *auth.ThrottledError
		if errors.As(err, &te) {
			throttled++
			if !errors.Is(err, auth.ErrThrottled) || te.Wait <= 0 {
				t.Fatalf("throttled: %v (wait %v)", err, te.Wait)
			}
		}
	}
	if r := st.reads.Load(); r > 55 || throttled < 40 {
		t.Errorf("%d reads, %d throttled for 100 unknown keys", r, throttled)
	}
	if _, err := a.Authenticate(ctx, apikey.New().Reveal(), "198.51.100.2"); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("another address: %v", err)
	}
	g := auth.NewGuard()
	now := time.Now()
	if w := g.Wait("a", now); w != 0 {
		t.Errorf("a new address waits %v", w)
	}
}

// A lookup that read a key's record before Revoke and finishes after it
// must not put the record back: Forget wins. Hammered from many goroutines
// for -race.
func TestRevokeWinsAgainstLookupInFlight(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	a := auth.New(st)
	k, rec, err := a.CreateKey(ctx, "tacme", "ci", apikey.ScopeInvoke)
	if err != nil {
		t.Fatal(err)
	}
	read, release := make(chan struct{}), make(chan struct{})
	var paused atomic.Bool
	st.mu.Lock()
	st.hook = func(name string) {
		if name == "key."+rec.Hash && paused.CompareAndSwap(false, true) {
			close(read)
			<-release
		}
	}
	st.mu.Unlock()
	first := make(chan error, 1)
	go func() { _, err := a.Authenticate(ctx, k.Reveal(), "192.0.2.1"); first <- err }()
	<-read // the lookup holds the unrevoked record
	var wg sync.WaitGroup
	for range 8 { // lookups that join the one in flight, and revocations
		wg.Add(2)
		go func() { defer wg.Done(); a.Authenticate(ctx, k.Reveal(), "192.0.2.1") }()
		go func() { defer wg.Done(); a.Revoke(ctx, "tacme", rec.ID) }()
	}
	if _, err := a.Revoke(ctx, "tacme", rec.ID); err != nil {
		t.Fatal(err)
	}
	close(release)
	<-first
	wg.Wait()
	for range 100 {
		if p, err := a.Authenticate(ctx, k.Reveal(), "192.0.2.1"); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Fatalf("the key works after Revoke returned: %+v %v", p, err)
		}
	}
}

// A warm request's key costs no allocation here: the cache is keyed by
// the hash as an array and the principal is returned by value. The one
// allowed is apikey's hashing of a key longer than the compiler's stack
// buffer for []byte(key).
func TestAuthenticateCachedAllocatesNothing(t *testing.T) {
	ctx := context.Background()
	a := auth.New(newMemStore())
	k, _, err := a.CreateKey(ctx, "tacme", "ci", apikey.ScopeInvoke)
	if err != nil {
		t.Fatal(err)
	}
	key := k.Reveal()
	if _, err := a.Authenticate(ctx, key, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { a.Authenticate(ctx, key, "192.0.2.1") }); n > 1 {
		t.Errorf("a cached key costs %v allocations, want at most 1", n)
	}
}
