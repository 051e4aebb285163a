package auth

import (
	"testing"
	"time"

	"github.com/aiaas/aiaas/internal/cache"
)

// A flood of unknown keys resets only the unknown side of the cache: a
// tenant's verified key stays cached (before the sides were split, the
// whole cache was dropped at 100,000 entries, and every tenant paid a
// store read again).
func TestAuthCacheFloodKeepsKnownKeys(t *testing.T) {
	a := &Authenticator{
		known:   cache.New[keyHash, *KeyRecord](cache.Options{TTL: time.Minute, MaxEntries: 10}),
		unknown: cache.New[keyHash, struct{}](cache.Options{TTL: time.Minute, MaxEntries: 10}),
	}
	good := keyHash{'g'}
	a.known.Put(good, &KeyRecord{Tenant: "acme"})
	for i := range 1000 {
		a.unknown.Put(keyHash{byte(i), byte(i >> 8), 'x'}, struct{}{})
	}
	if rec, ok := a.known.Get(good); !ok || rec.Tenant != "acme" {
		t.Fatalf("the known key was evicted by the flood: %+v %v", rec, ok)
	}
	if n := a.unknown.Len(); n > 10 {
		t.Errorf("unknown side holds %d entries, bound 10", n)
	}
	a.Forget(string(good[:]))
	if _, ok := a.known.Get(good); ok {
		t.Fatal("forget left the key")
	}
}
