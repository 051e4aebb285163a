package auth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aiaas/aiaas/internal/cache"
	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/platform/apikey"
)

// Store is what authentication needs of storage: the system records, where
// a key's record lives under "key.<hash>" and the local admin key's hash
// under "admin-key-hash", and each tenant's "keys" records, the index of
// its key ids (each holding the key's hash). The platform's Store
// implements it. Errors wrap modelstore's sentinels.
type Store interface {
	SystemGet(ctx context.Context, name string) ([]byte, error)
	SystemPut(ctx context.Context, name string, data []byte) error
	SystemCreate(ctx context.Context, name string, data []byte) error // modelstore.ErrExists if taken
	Get(ctx context.Context, tenant, kind, name string) ([]byte, error)
	Put(ctx context.Context, tenant, kind, name string, data []byte) error
	List(ctx context.Context, tenant, kind, prefix, after string, limit int) ([]string, error)
}

// CacheTTL is how long a verified (or unknown) key is remembered: the
// longest a key revoked through another process keeps working here.
const CacheTTL = 30 * time.Second

// keyHash is a key's hex SHA-256 as an array, so a cache hit allocates
// nothing.
type keyHash [2 * sha256.Size]byte

// Authenticator resolves API keys to principals and keeps the key
// records. It is safe for concurrent use.
type Authenticator struct {
	store Store
	admin atomic.Pointer[string] // the admin key's hash; LocalAdminKey may set it while serving

	// Known and unknown keys are kept apart: a flood of guessed keys
	// fills and resets only the unknown side, never evicting real
	// tenants' keys.
	known   *cache.Cache[keyHash, *KeyRecord]
	unknown *cache.Cache[keyHash, struct{}]
	guard   *Guard
}

// New returns an Authenticator over store, with no admin key until
// SetAdminHash or LocalAdminKey gives it one.
func New(store Store) *Authenticator {
	return &Authenticator{
		store: store,
		// A store outage keeps keys verified before working (no one
		// can revoke them while the store is down either).
		known:   cache.New[keyHash, *KeyRecord](cache.Options{TTL: CacheTTL, Stale: func(err error) bool { return errors.Is(err, modelstore.ErrUnavailable) }}),
		unknown: cache.New[keyHash, struct{}](cache.Options{TTL: CacheTTL}),
		guard:   NewGuard(),
	}
}

// SetAdminHash makes the key whose hash (apikey.Key.Hash) is hash the
// operator's admin key; "" means there is none. It may be called while
// requests are served.
func (a *Authenticator) SetAdminHash(hash string) { a.admin.Store(&hash) }

// LocalAdminKey makes the local mode's admin key: on the first start a key
// is generated, its hash kept in the store and the key returned once
// (created true); later starts load the hash and return no key. Either
// way the Authenticator accepts the key from then on.
func (a *Authenticator) LocalAdminKey(ctx context.Context) (key string, created bool, err error) {
	if b, err := a.store.SystemGet(ctx, "admin-key-hash"); err == nil {
		a.SetAdminHash(strings.TrimSpace(string(b)))
		return "", false, nil
	} else if !errors.Is(err, modelstore.ErrNotFound) {
		return "", false, err
	}
	k := apikey.New()
	if err := a.store.SystemCreate(ctx, "admin-key-hash", []byte(k.Hash())); err != nil {
		if errors.Is(err, modelstore.ErrExists) { // another process made it first
			return a.LocalAdminKey(ctx)
		}
		return "", false, err
	}
	a.SetAdminHash(k.Hash())
	return k.Reveal(), true, nil
}

// Authenticate resolves a presented key to its principal. clientAddr is
// the caller's address without the port: past its budget of unknown keys
// it gets a *ThrottledError, without a store read. A malformed, unknown or
// revoked key is an error wrapping ErrUnauthenticated; a store failure is
// returned as the store gave it. A cached key costs no store read, and its
// cache lookup no allocation.
func (a *Authenticator) Authenticate(ctx context.Context, key, clientAddr string) (Principal, error) {
	var hb [2 * sha256.Size]byte
	hashB := apikey.Key(key).AppendHash(hb[:0])
	if ah := a.admin.Load(); ah != nil && *ah != "" && apikey.Matches(hashB, *ah) {
		return Principal{Admin: true, KeyID: "admin", Scope: apikey.ScopeManage}, nil
	}
	if _, err := apikey.Parse(key); err != nil {
		return Principal{}, errBadKey
	}
	hk := keyHash(hashB)
	rec, ok := a.known.Get(hk) // a hit allocates nothing
	if !ok {
		if _, bad := a.unknown.Get(hk); bad {
			return Principal{}, errBadKey
		}
		now := time.Now()
		if wait := a.guard.Wait(clientAddr, now); wait > 0 {
			return Principal{}, &ThrottledError{Wait: wait}
		}
		var err error
		rec, err = a.known.Load(ctx, hk, func(ctx context.Context) (*KeyRecord, error) {
			b, err := a.store.SystemGet(ctx, "key."+string(hashB))
			if err != nil {
				return nil, err
			}
			var rec KeyRecord
			if err := json.Unmarshal(b, &rec); err != nil {
				return nil, fmt.Errorf("key record: %w", err)
			}
			return &rec, nil
		})
		if errors.Is(err, modelstore.ErrNotFound) {
			a.unknown.Put(hk, struct{}{})
			a.guard.Failed(clientAddr, now)
			return Principal{}, errBadKey
		}
		if err != nil {
			return Principal{}, err
		}
	}
	if rec.Revoked != nil || !apikey.Matches(hashB, rec.Hash) {
		return Principal{}, errBadKey
	}
	return Principal{Tenant: rec.Tenant, KeyID: rec.ID, Scope: rec.Scope}, nil
}

// Forget drops what the cache holds of the key with this hash, after its
// record changed; a lookup of it in flight is read again rather than
// cached (see the package doc).
func (a *Authenticator) Forget(hash string) {
	var h keyHash
	copy(h[:], hash)
	a.known.Forget(h)
	a.unknown.Forget(h)
}
