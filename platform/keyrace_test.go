package platform_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/platform"
	"github.com/aiaas/aiaas/platform/apikey"
	"github.com/aiaas/aiaas/platform/config"
)

// pausingStore holds the first read of one system record after the read
// is done, until released: the window in which a revocation can run
// between a key lookup's store read and its cache put.
type pausingStore struct {
	platform.Store
	mu      sync.Mutex
	name    string        // the record to pause on ("" once used)
	read    chan struct{} // closed when the paused read has its bytes
	release chan struct{}
}

func (p *pausingStore) SystemGet(ctx context.Context, name string) ([]byte, error) {
	b, err := p.Store.SystemGet(ctx, name)
	p.mu.Lock()
	pause := name == p.name
	if pause {
		p.name = ""
	}
	p.mu.Unlock()
	if pause {
		close(p.read)
		<-p.release
	}
	return b, err
}

// TestRevocationRacesFirstUse: a key's first request reads its record;
// before that request caches what it read, the key is revoked and DELETE
// answers 204. From then on the key must fail — the request that read
// the record first must not put the unrevoked record back in the cache.
func TestRevocationRacesFirstUse(t *testing.T) {
	ctx := context.Background()
	cfg := config.Default()
	cfg.AdminKey = adminKey
	cfg.MasterKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	mk, _ := cfg.MasterKeyBytes()
	ms, err := modelstore.Open(ctx, "mem://", &modelstore.Options{MasterKey: mk})
	if err != nil {
		t.Fatal(err)
	}
	ps := &pausingStore{Store: platform.StoreFrom(ms), read: make(chan struct{}), release: make(chan struct{})}
	srv, err := platform.New(ctx, platform.Options{Config: cfg, Store: ps})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvFor(t, srv, ms)
	owner := e.tenant("acme")
	r := e.do("POST", "/v1/keys", owner, map[string]string{"name": "ci", "scope": "invoke"})
	if r.status != 201 {
		t.Fatalf("create key: %d %s", r.status, r.body)
	}
	key, id := r.json(t)["api_key"].(string), r.json(t)["id"].(string)

	ps.mu.Lock()
	ps.name = "key." + apikey.Key(key).Hash()
	ps.mu.Unlock()
	first := make(chan int, 1)
	go func() { first <- e.do("GET", "/v2/models/clf", key, nil).status }()
	<-ps.read // the first use has read the unrevoked record
	if r := e.do("DELETE", "/v1/keys/"+id, owner, nil); r.status != 204 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	close(ps.release)
	if s := <-first; s != http.StatusUnauthorized && s != http.StatusNotFound {
		t.Fatalf("the racing request: %d", s)
	}
	if r := e.do("GET", "/v2/models/clf", key, nil); r.status != http.StatusUnauthorized {
		t.Fatalf("the key works after DELETE answered 204: %d %s", r.status, r.body)
	}
}
