package platform

import (
	"fmt"
	"testing"
	"time"
)

// A flood of unknown keys resets only the unknown side of the cache: a
// tenant's verified key stays cached (before, the whole cache was dropped
// at 100,000 entries, and every tenant paid a store read again).
func TestAuthCacheFloodKeepsKnownKeys(t *testing.T) {
	c := authCache{maxEntry: 10}
	now := time.Now()
	c.put("good", authEntry{rec: &keyRecord{Tenant: "acme"}, expires: now.Add(time.Minute)}, c.generation())
	for i := range 1000 {
		c.put(fmt.Sprint("guess", i), authEntry{expires: now.Add(time.Minute)}, c.generation())
	}
	if e, ok := c.get([]byte("good"), now); !ok || e.rec == nil || e.rec.Tenant != "acme" {
		t.Fatalf("the known key was evicted by the flood: %+v %v", e, ok)
	}
	if len(c.unknown) > 10 {
		t.Errorf("unknown side holds %d entries, bound 10", len(c.unknown))
	}
	// A key that becomes known (created after a miss) moves sides.
	c.put("guess999", authEntry{rec: &keyRecord{Tenant: "new"}, expires: now.Add(time.Minute)}, c.generation())
	if e, ok := c.get([]byte("guess999"), now); !ok || e.rec == nil {
		t.Fatalf("a key found after a miss still reads as unknown")
	}
	c.forget("good")
	if _, ok := c.get([]byte("good"), now); ok {
		t.Fatal("forget left the key")
	}
}

// A lookup that read the store before a forget cannot put its entry back.
func TestAuthCacheForgetWinsOverOlderRead(t *testing.T) {
	var c authCache
	now := time.Now()
	gen := c.generation() // a lookup starts, reads the record…
	c.forget("k")         // …the key is revoked meanwhile…
	if c.put("k", authEntry{rec: &keyRecord{Tenant: "acme"}, expires: now.Add(time.Minute)}, gen) {
		t.Fatal("a read from before the revocation was cached")
	}
	if _, ok := c.get([]byte("k"), now); ok {
		t.Fatal("the revoked key is cached")
	}
	if !c.put("k", authEntry{expires: now.Add(time.Minute)}, c.generation()) {
		t.Fatal("a read after the revocation was refused")
	}
}
