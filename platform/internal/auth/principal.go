package auth

import (
	"errors"
	"fmt"

	"github.com/aiaas/aiaas/platform/apikey"
)

// The kinds of refusal, for errors.Is; each error also carries a message
// written for the client.
var (
	// ErrUnauthenticated means the presented key is malformed, unknown or
	// revoked.
	ErrUnauthenticated = errors.New("auth: unauthenticated")
	// ErrForbidden means the key is valid but may not use the route.
	ErrForbidden = errors.New("auth: forbidden")
	// ErrThrottled means the client address has spent its budget of
	// unknown keys; the error is a *[ThrottledError] that says how long
	// to wait.
	ErrThrottled = errors.New("auth: too many unknown keys")
	// ErrKeyLimit means a tenant is at its cap of active keys or of key
	// records.
	ErrKeyLimit = errors.New("auth: key limit")
)

// kindError is a refusal of one kind with a message for the client: its
// text is the message alone, so the client reads what it always read.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func refuse(kind error, format string, a ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, a...)}
}

// errBadKey is the one answer for every key that does not work, so a
// caller learns nothing about which keys exist.
var errBadKey error = &kindError{kind: ErrUnauthenticated, msg: "invalid or revoked API key"}

// Access is who may call a route.
type Access int

// The access classes of routes, from open to closed.
const (
	Public Access = iota // no key: health, server metadata
	Invoke               // a tenant key with scope invoke or manage
	Manage               // a tenant key with scope manage
	Admin                // the operator's admin key
)

// Principal is who a request acts as: the operator (Admin) or one key of
// one tenant. It is a plain value, safe to copy and share.
type Principal struct {
	Admin  bool         // the operator's admin key; Tenant is then ""
	Tenant string       // the tenant id the key belongs to
	KeyID  string       // the key's id ("admin" for the admin key), the audit actor
	Scope  apikey.Scope // what the key may do
}

// May reports why p may not use a route of class acc (an error wrapping
// ErrForbidden), or nil: the admin key only the admin routes, a tenant's
// key only the others, and the management routes only with scope manage.
func (p *Principal) May(acc Access) error {
	switch {
	case acc == Admin && !p.Admin:
		return refuse(ErrForbidden, "this route needs the operator's admin key")
	case acc != Admin && p.Admin:
		return refuse(ErrForbidden, "the admin key manages tenants only; use a tenant's key")
	case acc == Manage && !p.Scope.Allows(apikey.ScopeManage):
		return refuse(ErrForbidden, "this key has scope %q; this route needs scope \"manage\"", p.Scope)
	}
	return nil
}
