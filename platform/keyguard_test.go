package platform_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/platform"
	"github.com/aiaas/aiaas/platform/apikey"
	"github.com/aiaas/aiaas/platform/config"
)

// countingStore counts key lookups.
type countingStore struct {
	platform.Store
	gets atomic.Int64
}

func (c *countingStore) SystemGet(ctx context.Context, name string) ([]byte, error) {
	c.gets.Add(1)
	return c.Store.SystemGet(ctx, name)
}

// A client presenting unknown keys costs a bounded number of store reads:
// after the burst it gets 429 with Retry-After and no read; its cached
// good key, and other addresses, are unaffected.
func TestUnknownKeyFloodIsBounded(t *testing.T) {
	ctx := context.Background()
	cfg := config.Default()
	cfg.AdminKey = adminKey
	cfg.MasterKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	ms, err := modelstore.Open(ctx, "mem://", &modelstore.Options{MasterKey: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	st := &countingStore{Store: platform.StoreFrom(ms)}
	srv, err := platform.New(ctx, platform.Options{Config: cfg, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(context.Background()) })
	call := func(addr, key string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/v1/models", nil)
		r.RemoteAddr = addr
		r.Header.Set("Authorization", "Bearer "+key)
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		return w
	}
	_, good, err := srv.CreateTenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	const attacker, other = "203.0.113.7:5555", "198.51.100.2:6666"
	if w := call(attacker, string(good)); w.Code != 200 {
		t.Fatalf("good key: %d %s", w.Code, w.Body)
	}
	before := st.gets.Load()
	var unauthorized, limited int
	for range 200 {
		w := call(attacker, string(apikey.New()))
		switch w.Code {
		case http.StatusUnauthorized:
			unauthorized++
		case http.StatusTooManyRequests:
			limited++
			var e struct{ Error string }
			if json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Error == "" || w.Header().Get("Retry-After") == "" {
				t.Fatalf("429 without a JSON error or Retry-After: %v %s", w.Header(), w.Body)
			}
		default:
			t.Fatalf("unknown key: %d %s", w.Code, w.Body)
		}
	}
	reads := st.gets.Load() - before
	t.Logf("200 unknown keys: %d × 401, %d × 429, %d store reads", unauthorized, limited, reads)
	// The burst is 50, plus what refills while the loop runs (5/s).
	if reads > 60 || limited < 100 {
		t.Errorf("%d store reads and %d refusals for 200 unknown keys; want ≤ 60 reads", reads, limited)
	}
	if w := call(attacker, string(good)); w.Code != 200 {
		t.Errorf("the attacker's address lost its cached good key: %d %s", w.Code, w.Body)
	}
	if w := call(other, string(apikey.New())); w.Code != http.StatusUnauthorized {
		t.Errorf("another address is refused too: %d %s", w.Code, w.Body)
	}
}
