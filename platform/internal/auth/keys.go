package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aiaas/aiaas/internal/yield"
	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/platform/apikey"
)

// KeyRecord is what the store keeps of an API key: its hash, never the
// key.
type KeyRecord struct {
	ID      string       `json:"id"`
	Hash    string       `json:"hash"`
	Tenant  string       `json:"tenant"`
	Name    string       `json:"name"`
	Scope   apikey.Scope `json:"scope"`
	Created time.Time    `json:"created"`
	Revoked *time.Time   `json:"revoked,omitempty"`
}

// Per-tenant key limits: active keys, and records kept (revoked ones stay
// listed). Each key costs a record in the store and a cache entry; without
// a cap one tenant could make every key lookup and listing slower.
const (
	MaxActiveKeys = 100
	MaxKeyRecords = 1000
)

// notFound is a not-found with a message for the client; it wraps
// modelstore.ErrNotFound, so every not-found is tested alike.
func notFound(format string, a ...any) error {
	return refuse(modelstore.ErrNotFound, format, a...)
}

// CreateKey makes a key of tenant with the given name and scope and stores
// its record and the tenant's index entry. It checks neither the name nor
// the tenant's cap (CheckKeyCap): callers do, where the request is. The
// key is returned once; only its hash is kept.
func (a *Authenticator) CreateKey(ctx context.Context, tenant, name string, scope apikey.Scope) (apikey.Key, KeyRecord, error) {
	k := apikey.New()
	rec := KeyRecord{ID: k.ID(), Hash: k.Hash(), Tenant: tenant, Name: name, Scope: scope, Created: time.Now().UTC()}
	b, _ := json.Marshal(rec)
	if err := a.store.SystemCreate(ctx, "key."+rec.Hash, b); err != nil {
		return "", KeyRecord{}, err
	}
	// The tenant's own index, so it can list and revoke its keys.
	if err := a.store.Put(ctx, tenant, "keys", rec.ID, []byte(rec.Hash)); err != nil {
		return "", KeyRecord{}, err
	}
	return k, rec, nil
}

// CheckKeyCap refuses a new key of tenant past its limits, with an error
// wrapping ErrKeyLimit.
func (a *Authenticator) CheckKeyCap(ctx context.Context, tenant string) error {
	ids, err := a.store.List(ctx, tenant, "keys", "", "", MaxKeyRecords)
	if err != nil {
		return err
	}
	if len(ids) >= MaxKeyRecords {
		return refuse(ErrKeyLimit, "the tenant has %d key records, the limit", MaxKeyRecords)
	}
	if len(ids) < MaxActiveKeys {
		return nil
	}
	active := 0
	var y yield.Point // a hundred records read: let other requests run between them
	for _, id := range ids {
		y.Maybe()
		if rec, err := a.Key(ctx, tenant, id); err == nil && rec.Revoked == nil {
			active++
		}
	}
	if active >= MaxActiveKeys {
		return refuse(ErrKeyLimit, "the tenant has %d active keys, the limit: revoke one first", active)
	}
	return nil
}

// Key returns the record of tenant's key id, read from the store.
func (a *Authenticator) Key(ctx context.Context, tenant, id string) (KeyRecord, error) {
	hash, err := a.store.Get(ctx, tenant, "keys", id)
	if err != nil {
		return KeyRecord{}, err
	}
	b, err := a.store.SystemGet(ctx, "key."+string(hash))
	if err != nil {
		return KeyRecord{}, err
	}
	var rec KeyRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return KeyRecord{}, err
	}
	if rec.Tenant != tenant { // never true unless the store was tampered with
		return KeyRecord{}, notFound("key %q not found", id)
	}
	return rec, nil
}

// Keys lists up to limit of tenant's key records in id order, after the
// id after; next is the id to list after for the next page, "" when this
// page was not full. Records that cannot be read are left out.
func (a *Authenticator) Keys(ctx context.Context, tenant, after string, limit int) (recs []KeyRecord, next string, err error) {
	ids, err := a.store.List(ctx, tenant, "keys", "", after, limit)
	if err != nil {
		return nil, "", err
	}
	recs = make([]KeyRecord, 0, len(ids))
	var y yield.Point
	for _, id := range ids {
		y.Maybe()
		rec, err := a.Key(ctx, tenant, id)
		if err != nil {
			continue
		}
		recs = append(recs, rec)
	}
	if len(ids) == limit {
		next = ids[len(ids)-1]
	}
	return recs, next, nil
}

// Revoke marks tenant's key id revoked (once: revoking again keeps the
// first time) and forgets it, so no request of this process is served
// with it after Revoke returns. Another tenant's key is not found, as a
// missing one.
func (a *Authenticator) Revoke(ctx context.Context, tenant, id string) (KeyRecord, error) {
	rec, err := a.Key(ctx, tenant, id)
	if err != nil {
		if errors.Is(err, modelstore.ErrNotFound) || errors.Is(err, modelstore.ErrInvalidName) {
			return KeyRecord{}, notFound("key %q not found", id)
		}
		return KeyRecord{}, err
	}
	if rec.Revoked == nil {
		now := time.Now().UTC()
		rec.Revoked = &now
		b, _ := json.Marshal(rec)
		if err := a.store.SystemPut(ctx, "key."+rec.Hash, b); err != nil {
			return KeyRecord{}, err
		}
	}
	a.Forget(rec.Hash)
	return rec, nil
}

// KeyTenant returns the id of the tenant that key belongs to. A malformed,
// unknown or revoked key is an error wrapping modelstore.ErrNotFound. It
// reads the store, not the cache, so a key revoked through another
// process is seen at once.
func (a *Authenticator) KeyTenant(ctx context.Context, key string) (string, error) {
	k, err := apikey.Parse(key)
	if err != nil {
		return "", notFound("API key not found")
	}
	b, err := a.store.SystemGet(ctx, "key."+k.Hash())
	if err != nil {
		if errors.Is(err, modelstore.ErrNotFound) {
			return "", notFound("API key not found")
		}
		return "", err
	}
	var rec KeyRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return "", fmt.Errorf("key record: %w", err)
	}
	if rec.Revoked != nil {
		return "", notFound("API key revoked")
	}
	return rec.Tenant, nil
}
