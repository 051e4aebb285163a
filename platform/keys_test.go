package platform_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aiaas/aiaas/sdk/client"
)

// TestKeyCapAndPaging: a tenant holds at most 100 active keys (409 past
// it, a revoked key frees a slot), and GET /v1/keys pages through all of
// them; the Go client follows the pages.
func TestKeyCapAndPaging(t *testing.T) {
	e := newEnv(t, nil)
	key := e.tenant("acme") // its first key
	var last string
	for i := 1; i < 100; i++ {
		r := e.do("POST", "/v1/keys", key, map[string]string{"name": fmt.Sprint("k", i), "scope": "invoke"})
		if r.status != 201 {
			t.Fatalf("key %d: %d %s", i, r.status, r.body)
		}
		last = r.json(t)["id"].(string)
	}
	r := e.do("POST", "/v1/keys", key, map[string]string{"name": "one-too-many", "scope": "invoke"})
	if r.status != 409 || !strings.Contains(string(r.body), "100 active keys") {
		t.Fatalf("101st key: %d %s, want 409", r.status, r.body)
	}
	if r := e.do("DELETE", "/v1/keys/"+last, key, nil); r.status != 204 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/keys", key, map[string]string{"name": "after-revoke", "scope": "invoke"}); r.status != 201 {
		t.Fatalf("a key after a revocation: %d %s", r.status, r.body)
	}

	seen := map[string]bool{}
	after, pages := "", 0
	for {
		r := e.do("GET", "/v1/keys?limit=30&after="+after, key, nil)
		var page struct {
			Keys []struct {
				ID string `json:"id"`
			} `json:"keys"`
			NextAfter string `json:"next_after"`
		}
		if r.status != 200 || json.Unmarshal(r.body, &page) != nil || len(page.Keys) > 30 {
			t.Fatalf("page %d: %d %s", pages, r.status, r.body)
		}
		pages++
		for _, k := range page.Keys {
			if seen[k.ID] {
				t.Fatalf("key %s listed twice", k.ID)
			}
			seen[k.ID] = true
		}
		if page.NextAfter == "" {
			break
		}
		after = page.NextAfter
	}
	if len(seen) != 101 || pages != 4 {
		t.Fatalf("%d keys in %d pages, want 101 in 4", len(seen), pages)
	}
	c, err := client.New(e.ts.URL, &client.Options{APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	ks, err := c.Keys(context.Background())
	if err != nil || len(ks) != 101 {
		t.Fatalf("client.Keys: %d keys, %v", len(ks), err)
	}
	for _, bad := range []string{"?limit=0", "?limit=1001", "?limit=x"} {
		if r := e.do("GET", "/v1/keys"+bad, key, nil); r.status != 400 {
			t.Errorf("GET /v1/keys%s: %d", bad, r.status)
		}
	}
}
