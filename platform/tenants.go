package platform

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/aiaas/aiaas/internal/cache"
	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/platform/apikey"
)

// Tenant is one customer: everything it owns lives under its id.
type Tenant struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
}

// keyRecord is what the store keeps of an API key: its hash, never the key.
type keyRecord struct {
	ID      string       `json:"id"`
	Hash    string       `json:"hash"`
	Tenant  string       `json:"tenant"`
	Name    string       `json:"name"`
	Scope   apikey.Scope `json:"scope"`
	Created time.Time    `json:"created"`
	Revoked *time.Time   `json:"revoked,omitempty"`
}

// principal is who a request acts as.
type principal struct {
	admin  bool
	tenant string
	keyID  string
	scope  apikey.Scope
}

var tenantNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// CreateTenant registers a tenant and returns its first key (scope manage).
// The key is returned once and stored only as its hash.
func (s *Server) CreateTenant(ctx context.Context, name string) (Tenant, apikey.Key, error) {
	if !tenantNameRE.MatchString(name) {
		return Tenant{}, "", httpErr(http.StatusBadRequest, "tenant name must be 1-63 characters of a-z, 0-9 and '-', starting with a letter or digit")
	}
	var idb [6]byte
	rand.Read(idb[:])
	t := Tenant{ID: "t" + hex.EncodeToString(idb[:]), Name: name, Created: time.Now().UTC()}
	// The name is claimed first, with a conditional create, so two
	// concurrent creations of one name cannot both succeed.
	if err := s.store.SystemCreate(ctx, "tenant-name."+name, []byte(t.ID)); err != nil {
		if errors.Is(err, modelstore.ErrExists) {
			return Tenant{}, "", httpErr(http.StatusConflict, "tenant %q exists", name)
		}
		return Tenant{}, "", err
	}
	b, _ := json.Marshal(t)
	if err := s.store.SystemPut(ctx, "tenant."+t.ID, b); err != nil {
		return Tenant{}, "", err
	}
	key, _, err := s.createKey(ctx, t.ID, "default", apikey.ScopeManage)
	return t, key, err
}

// TenantByName looks a tenant up by name.
func (s *Server) TenantByName(ctx context.Context, name string) (Tenant, error) {
	id, err := s.store.SystemGet(ctx, "tenant-name."+name)
	if err != nil {
		return Tenant{}, err
	}
	b, err := s.store.SystemGet(ctx, "tenant."+string(id))
	if err != nil {
		return Tenant{}, err
	}
	var t Tenant
	return t, json.Unmarshal(b, &t)
}

// LocalAdminKey makes the local mode's admin key: on the first start a key
// is generated, its hash kept in the store and the key returned once
// (created true); later starts load the hash and return no key.
// Call it only when no admin key is configured.
func (s *Server) LocalAdminKey(ctx context.Context) (key string, created bool, err error) {
	if b, err := s.store.SystemGet(ctx, "admin-key-hash"); err == nil {
		s.adminHash.Store(strings.TrimSpace(string(b)))
		return "", false, nil
	} else if !errors.Is(err, modelstore.ErrNotFound) {
		return "", false, err
	}
	k := apikey.New()
	if err := s.store.SystemCreate(ctx, "admin-key-hash", []byte(k.Hash())); err != nil {
		if errors.Is(err, modelstore.ErrExists) { // another process made it first
			return s.LocalAdminKey(ctx)
		}
		return "", false, err
	}
	s.adminHash.Store(k.Hash())
	return k.Reveal(), true, nil
}

// CreateKey makes another API key of a tenant (by id) with the given name
// and scope, within the tenant's cap on active keys. The key is returned
// once and stored only as its hash.
func (s *Server) CreateKey(ctx context.Context, tenant, name string, scope apikey.Scope) (apikey.Key, error) {
	if len(name) > 64 {
		return "", httpErr(http.StatusBadRequest, "key name longer than 64 characters")
	}
	if _, err := apikey.ParseScope(string(scope)); err != nil {
		return "", httpErr(http.StatusBadRequest, "%v", err)
	}
	if err := s.checkKeyCap(ctx, tenant); err != nil {
		return "", err
	}
	k, _, err := s.createKey(ctx, tenant, name, scope)
	return k, err
}

// KeyTenant returns the id of the tenant that key belongs to. A malformed,
// unknown or revoked key is an error wrapping modelstore.ErrNotFound. It
// reads the store, not the authentication cache, so a key revoked through
// another process is seen at once.
func (s *Server) KeyTenant(ctx context.Context, key string) (string, error) {
	k, err := apikey.Parse(key)
	if err != nil {
		return "", notFound("API key not found")
	}
	b, err := s.store.SystemGet(ctx, "key."+k.Hash())
	if err != nil {
		return "", notFoundAs(err, "API key not found")
	}
	var rec keyRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return "", fmt.Errorf("key record: %w", err)
	}
	if rec.Revoked != nil {
		return "", notFound("API key revoked")
	}
	return rec.Tenant, nil
}

func (s *Server) createKey(ctx context.Context, tenant, name string, scope apikey.Scope) (apikey.Key, keyRecord, error) {
	k := apikey.New()
	rec := keyRecord{ID: k.ID(), Hash: k.Hash(), Tenant: tenant, Name: name, Scope: scope, Created: time.Now().UTC()}
	b, _ := json.Marshal(rec)
	if err := s.store.SystemCreate(ctx, "key."+rec.Hash, b); err != nil {
		return "", keyRecord{}, err
	}
	// The tenant's own index, so it can list and revoke its keys.
	if err := s.store.Put(ctx, tenant, "keys", rec.ID, []byte(rec.Hash)); err != nil {
		return "", keyRecord{}, err
	}
	return k, rec, nil
}

// authCache remembers verified keys briefly, so a warm request costs no
// store read. Revocation through this process takes effect at once (a
// lookup in flight is read again: internal/cache); through another
// process within authTTL. Known and unknown keys are kept apart: a flood
// of guessed keys fills and resets only the unknown side, never evicting
// real tenants' keys. Keys are the hex hashes, as arrays, so a hit
// allocates nothing.
type authCache struct {
	known   *cache.Cache[keyHash, *keyRecord]
	unknown *cache.Cache[keyHash, struct{}]
}

type keyHash [2 * sha256.Size]byte

const authTTL = 30 * time.Second

func newAuthCache() authCache {
	return authCache{
		// A store outage keeps keys verified before working (no one
		// can revoke them while the store is down either).
		known:   cache.New[keyHash, *keyRecord](cache.Options{TTL: authTTL, Stale: func(err error) bool { return errors.Is(err, modelstore.ErrUnavailable) }}),
		unknown: cache.New[keyHash, struct{}](cache.Options{TTL: authTTL}),
	}
}

func (c *authCache) forget(hash string) {
	var h keyHash
	copy(h[:], hash)
	c.known.Forget(h)
	c.unknown.Forget(h)
}

// keyGuard bounds, per client address, the store reads spent on keys that
// turn out not to exist. Every unknown key costs one read (S3: a GET, paid
// for) before it is cached as unknown; a client guessing keys, or a
// deployment with a wrong key behind a retry loop, would otherwise turn
// each request into one. Past the budget the address gets 429 for keys not
// already cached, without a read; keys it used before keep working.
type keyGuard struct {
	addrs *cache.Cache[string, *rate.Limiter]
}

const (
	badKeyRate  = 5  // unknown keys per second per address, sustained
	badKeyBurst = 50 // and at once
	guardAddrs  = 10_000
)

func newKeyGuard() keyGuard {
	// An address's limiter is dropped once its bucket would be full again:
	// a new one is the same.
	return keyGuard{addrs: cache.New[string, *rate.Limiter](cache.Options{
		TTL: badKeyBurst / badKeyRate * time.Second, MaxEntries: guardAddrs})}
}

// wait reports how long addr must wait before its next unknown-key
// lookup; 0 means it may look up now.
func (g *keyGuard) wait(addr string, now time.Time) time.Duration {
	l, ok := g.addrs.Get(addr)
	if !ok {
		return 0
	}
	if tok := l.TokensAt(now); tok < 1 {
		return time.Duration((1 - tok) / badKeyRate * float64(time.Second))
	}
	return 0
}

// failed charges addr for one lookup that found no key.
func (g *keyGuard) failed(addr string, now time.Time) {
	l, ok := g.addrs.Get(addr)
	if !ok {
		l = rate.NewLimiter(badKeyRate, badKeyBurst)
	}
	l.AllowN(now, 1)
	g.addrs.Put(addr, l) // and its time to live starts again
}

// clientAddr is the request's peer address without the port (on Lambda,
// API Gateway's source IP).
func clientAddr(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

var errNoKey = httpErr(http.StatusUnauthorized, "missing API key: send 'Authorization: Bearer <key>'")
var errBadKey = httpErr(http.StatusUnauthorized, "invalid or revoked API key")

// authenticate resolves the request's bearer key to a principal.
func (s *Server) authenticate(r *http.Request) (*principal, error) {
	h := r.Header.Get("Authorization")
	const bearer = "Bearer "
	if len(h) <= len(bearer) || !equalFoldASCII(h[:len(bearer)], bearer) {
		return nil, errNoKey
	}
	presented := h[len(bearer):]
	var hb [2 * sha256.Size]byte
	hashB := apikey.Key(presented).AppendHash(hb[:0])
	if ah, _ := s.adminHash.Load().(string); ah != "" && apikey.Matches(hashB, ah) {
		return &principal{admin: true, keyID: "admin", scope: apikey.ScopeManage}, nil
	}
	if _, err := apikey.Parse(presented); err != nil {
		return nil, errBadKey
	}
	hk := keyHash(hashB)
	rec, ok := s.auth.known.Get(hk) // a hit allocates nothing
	if !ok {
		if _, bad := s.auth.unknown.Get(hk); bad {
			return nil, errBadKey
		}
		now := time.Now()
		addr := clientAddr(r)
		if wait := s.keyGuard.wait(addr, now); wait > 0 {
			return nil, &Error{Status: http.StatusTooManyRequests, RetryAfter: wait,
				Msg: fmt.Sprintf("too many invalid API keys from this address; retry after %s", wait.Round(time.Millisecond))}
		}
		var err error
		rec, err = s.auth.known.Load(r.Context(), hk, func(ctx context.Context) (*keyRecord, error) {
			b, err := s.store.SystemGet(ctx, "key."+string(hashB))
			if err != nil {
				return nil, err
			}
			var rec keyRecord
			if err := json.Unmarshal(b, &rec); err != nil {
				return nil, fmt.Errorf("key record: %w", err)
			}
			return &rec, nil
		})
		if errors.Is(err, modelstore.ErrNotFound) {
			s.auth.unknown.Put(hk, struct{}{})
			s.keyGuard.failed(addr, now)
			return nil, errBadKey
		}
		if err != nil {
			return nil, err
		}
	}
	if rec.Revoked != nil || !apikey.Matches(hashB, rec.Hash) {
		return nil, errBadKey
	}
	return &principal{tenant: rec.Tenant, keyID: rec.ID, scope: rec.Scope}, nil
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// --- handlers ---------------------------------------------------------

func (s *Server) handleCreateTenant(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name string `json:"name"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	t, key, err := s.CreateTenant(r.Context(), req.Name)
	if err != nil {
		return err
	}
	setAuditObject(r, "tenants/"+t.ID)
	infoOf(r.Context()).tenant = t.ID // the new tenant's log records its creation
	writeJSON(w, http.StatusCreated, map[string]any{"id": t.ID, "name": t.Name, "created": t.Created, "api_key": key.Reveal()})
	return nil
}

func (s *Server) handleListTenants(w http.ResponseWriter, r *http.Request) error {
	names, err := s.store.SystemList(r.Context(), "tenant.")
	if err != nil {
		return err
	}
	out := []Tenant{}
	for _, n := range names {
		b, err := s.store.SystemGet(r.Context(), n)
		if err != nil {
			return err
		}
		var t Tenant
		if json.Unmarshal(b, &t) == nil {
			out = append(out, t)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tenants": out})
	return nil
}

type keyView struct {
	ID      string       `json:"id"`
	Name    string       `json:"name"`
	Scope   apikey.Scope `json:"scope"`
	Created time.Time    `json:"created"`
	Revoked *time.Time   `json:"revoked,omitempty"`
	APIKey  string       `json:"api_key,omitempty"`
}

func (s *Server) handleCreateKey(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	var req struct {
		Name  string `json:"name"`
		Scope string `json:"scope"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	scope, err := apikey.ParseScope(req.Scope)
	if err != nil {
		return httpErr(http.StatusBadRequest, "%v", err)
	}
	if len(req.Name) > 64 {
		return httpErr(http.StatusBadRequest, "key name longer than 64 characters")
	}
	if err := s.checkKeyCap(r.Context(), p.tenant); err != nil {
		return err
	}
	k, rec, err := s.createKey(r.Context(), p.tenant, req.Name, scope)
	if err != nil {
		return err
	}
	setAuditObject(r, "keys/"+rec.ID)
	writeJSON(w, http.StatusCreated, keyView{ID: rec.ID, Name: rec.Name, Scope: rec.Scope, Created: rec.Created, APIKey: k.Reveal()})
	return nil
}

func (s *Server) tenantKey(ctx context.Context, tenant, id string) (keyRecord, error) {
	hash, err := s.store.Get(ctx, tenant, "keys", id)
	if err != nil {
		return keyRecord{}, err
	}
	b, err := s.store.SystemGet(ctx, "key."+string(hash))
	if err != nil {
		return keyRecord{}, err
	}
	var rec keyRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return keyRecord{}, err
	}
	if rec.Tenant != tenant { // never true unless the store was tampered with
		return keyRecord{}, notFound("key %q not found", id)
	}
	return rec, nil
}

// Per-tenant key limits: active keys, and records kept (revoked ones stay
// listed). Each key costs a record in the store and a cache entry; without
// a cap one tenant could make every key lookup and listing slower.
const (
	maxActiveKeys = 100
	maxKeyRecords = 1000
	keysPage      = 100 // default page of GET /v1/keys
)

// checkKeyCap refuses a new key past the tenant's limits.
func (s *Server) checkKeyCap(ctx context.Context, tenant string) error {
	ids, err := s.store.List(ctx, tenant, "keys", "", "", maxKeyRecords)
	if err != nil {
		return err
	}
	if len(ids) >= maxKeyRecords {
		return httpErr(http.StatusConflict, "the tenant has %d key records, the limit", maxKeyRecords)
	}
	if len(ids) < maxActiveKeys {
		return nil
	}
	active := 0
	for _, id := range ids {
		if rec, err := s.tenantKey(ctx, tenant, id); err == nil && rec.Revoked == nil {
			active++
		}
	}
	if active >= maxActiveKeys {
		return httpErr(http.StatusConflict, "the tenant has %d active keys, the limit: revoke one first", active)
	}
	return nil
}

// handleListKeys lists the tenant's keys a page at a time, in id order:
// ?limit (1–1000, default 100) and ?after=ID; next_after is set when more
// may follow.
func (s *Server) handleListKeys(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	limit := keysPage
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxKeyRecords {
			return httpErr(http.StatusBadRequest, "limit must be between 1 and %d", maxKeyRecords)
		}
		limit = n
	}
	after := r.URL.Query().Get("after")
	if len(after) > 64 {
		return httpErr(http.StatusBadRequest, "after: not a key id")
	}
	ids, err := s.store.List(r.Context(), p.tenant, "keys", "", after, limit)
	if err != nil {
		return err
	}
	out := []keyView{}
	for _, id := range ids {
		rec, err := s.tenantKey(r.Context(), p.tenant, id)
		if err != nil {
			continue
		}
		out = append(out, keyView{ID: rec.ID, Name: rec.Name, Scope: rec.Scope, Created: rec.Created, Revoked: rec.Revoked})
	}
	resp := map[string]any{"keys": out}
	if len(ids) == limit {
		resp["next_after"] = ids[len(ids)-1]
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) handleRevokeKey(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	id := r.PathValue("id")
	rec, err := s.tenantKey(r.Context(), p.tenant, id)
	if err != nil {
		if errors.Is(err, modelstore.ErrNotFound) || errors.Is(err, modelstore.ErrInvalidName) {
			return notFound("key %q not found", id)
		}
		return err
	}
	if rec.Revoked == nil {
		now := time.Now().UTC()
		rec.Revoked = &now
		b, _ := json.Marshal(rec)
		if err := s.store.SystemPut(r.Context(), "key."+rec.Hash, b); err != nil {
			return err
		}
	}
	s.auth.forget(rec.Hash)
	setAuditObject(r, "keys/"+rec.ID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

var errNotJSON = errors.New("request body must be a JSON object")
