package platform

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/platform/apikey"
	"github.com/aiaas/aiaas/platform/internal/auth"
)

// Tenant is one customer: everything it owns lives under its id.
type Tenant struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
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
	key, _, err := s.auth.CreateKey(ctx, t.ID, "default", apikey.ScopeManage)
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
	return s.auth.LocalAdminKey(ctx)
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
	if err := s.auth.CheckKeyCap(ctx, tenant); err != nil {
		return "", err
	}
	k, _, err := s.auth.CreateKey(ctx, tenant, name, scope)
	return k, err
}

// KeyTenant returns the id of the tenant that key belongs to. A malformed,
// unknown or revoked key is an error wrapping modelstore.ErrNotFound. It
// reads the store, not the authentication cache, so a key revoked through
// another process is seen at once.
func (s *Server) KeyTenant(ctx context.Context, key string) (string, error) {
	return s.auth.KeyTenant(ctx, key)
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

// authenticate resolves the request's bearer key to a principal.
func (s *Server) authenticate(r *http.Request) (auth.Principal, error) {
	h := r.Header.Get("Authorization")
	const bearer = "Bearer "
	if len(h) <= len(bearer) || !equalFoldASCII(h[:len(bearer)], bearer) {
		return auth.Principal{}, errNoKey
	}
	return s.auth.Authenticate(r.Context(), h[len(bearer):], clientAddr(r))
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
	if err := s.auth.CheckKeyCap(r.Context(), p.Tenant); err != nil {
		return err
	}
	k, rec, err := s.auth.CreateKey(r.Context(), p.Tenant, req.Name, scope)
	if err != nil {
		return err
	}
	setAuditObject(r, "keys/"+rec.ID)
	writeJSON(w, http.StatusCreated, keyView{ID: rec.ID, Name: rec.Name, Scope: rec.Scope, Created: rec.Created, APIKey: k.Reveal()})
	return nil
}

// keysPage is the default page of GET /v1/keys.
const keysPage = 100

// handleListKeys lists the tenant's keys a page at a time, in id order:
// ?limit (1–1000, default 100) and ?after=ID; next_after is set when more
// may follow.
func (s *Server) handleListKeys(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	limit := keysPage
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > auth.MaxKeyRecords {
			return httpErr(http.StatusBadRequest, "limit must be between 1 and %d", auth.MaxKeyRecords)
		}
		limit = n
	}
	after := r.URL.Query().Get("after")
	if len(after) > 64 {
		return httpErr(http.StatusBadRequest, "after: not a key id")
	}
	recs, next, err := s.auth.Keys(r.Context(), p.Tenant, after, limit)
	if err != nil {
		return err
	}
	out := []keyView{}
	for _, rec := range recs {
		out = append(out, keyView{ID: rec.ID, Name: rec.Name, Scope: rec.Scope, Created: rec.Created, Revoked: rec.Revoked})
	}
	resp := map[string]any{"keys": out}
	if next != "" {
		resp["next_after"] = next
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) handleRevokeKey(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	id := r.PathValue("id")
	rec, err := s.auth.Revoke(r.Context(), p.Tenant, id)
	if err != nil {
		return err
	}
	setAuditObject(r, "keys/"+rec.ID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

var errNotJSON = errors.New("request body must be a JSON object")
