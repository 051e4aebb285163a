package records

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aiaas/aiaas/internal/cache"
	"github.com/aiaas/aiaas/modelstore"
)

// Store is what the records need from storage: a tenant's small records
// by kind. The platform's RecordStore (a *modelstore.Store) implements it;
// errors wrap the store's sentinels, modelstore.ErrNotFound above all.
type Store interface {
	Get(ctx context.Context, tenant, kind, name string) ([]byte, error)
	Put(ctx context.Context, tenant, kind, name string, data []byte) error
	Delete(ctx context.Context, tenant, kind, name string) error
	List(ctx context.Context, tenant, kind, prefix, after string, limit int) ([]string, error)
}

// The record kinds this package keeps in the store; their names are the
// store's layout, shared with every process that reads it.
const (
	kindPlugins   = "plugins"
	kindEndpoints = "endpoints"
)

// maxList bounds how many records a listing reads.
const maxList = 1000

// DefaultTTL is how long a record read stays cached when Options.TTL is
// zero: the same as the model refs', so an endpoint and the alias it
// names are seen changed by other processes within the same time.
const DefaultTTL = 2 * time.Second

// Options configure [New]; a nil *Options means the defaults.
type Options struct {
	// TTL is how long a record read (or its absence) stays cached;
	// 0 means DefaultTTL.
	TTL time.Duration
}

// Records reads and writes a tenant's endpoint and plugin records through
// a short-lived cache. It is safe for concurrent use.
type Records struct {
	st Store
	c  *cache.Cache[key, entry]
}

type key struct{ tenant, kind, name string }

// entry is a record, decoded once when it is read from the store, or its
// not-found or decoding error: absence is cached too, so a client asking
// again and again for a missing endpoint costs no reads, and an endpoint
// invoked thousands of times a second is not decoded every time.
type entry struct {
	v   any // *Plugin or *Endpoint, by the key's kind
	err error
}

// New returns Records over st.
func New(st Store, opts *Options) *Records {
	ttl := DefaultTTL
	if opts != nil && opts.TTL > 0 {
		ttl = opts.TTL
	}
	return &Records{st: st, c: cache.New[key, entry](cache.Options{TTL: ttl})}
}

// forget drops a record from this process's cache after a write, so the
// next read sees it.
func (r *Records) forget(tenant, kind, name string) { r.c.Forget(key{tenant, kind, name}) }

// put stores v as a record and forgets the cached one.
func (r *Records) put(ctx context.Context, tenant, kind, name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := r.st.Put(ctx, tenant, kind, name, b); err != nil {
		return err
	}
	r.forget(tenant, kind, name)
	return nil
}

// read reads one record through the cache; a missing one wraps
// modelstore.ErrNotFound with a message naming it as the client did.
// Outages are not cached: the next request tries the store again. The
// result is the caller's own copy, but its slices and pointers are shared
// with the cache: callers must not modify what they point to.
func read[T any](ctx context.Context, r *Records, tenant, kind, what, name string) (*T, error) {
	e, err := r.c.Load(ctx, key{tenant, kind, name}, func(ctx context.Context) (entry, error) {
		b, err := r.st.Get(ctx, tenant, kind, name)
		switch {
		case errors.Is(err, modelstore.ErrNotFound):
			return entry{err: &kindError{kind: modelstore.ErrNotFound, msg: fmt.Sprintf("%s %q not found", what, name)}}, nil
		case err != nil:
			return entry{}, err
		}
		v := new(T)
		if err := json.Unmarshal(b, v); err != nil {
			return entry{err: fmt.Errorf("%s record %s: %w", what, name, err)}, nil
		}
		return entry{v: v}, nil
	})
	if err != nil {
		return nil, err
	}
	if e.err != nil {
		return nil, e.err
	}
	v := *e.v.(*T)
	return &v, nil
}

// list reads a tenant's records of one kind, skipping those that cannot
// be read (one removed between the listing and its read, or damaged): a
// listing shows what works.
func list[T any](ctx context.Context, r *Records, tenant, kind, what string) ([]*T, error) {
	names, err := r.st.List(ctx, tenant, kind, "", "", maxList)
	if err != nil {
		return nil, err
	}
	out := []*T{}
	for _, n := range names {
		if v, err := read[T](ctx, r, tenant, kind, what, n); err == nil {
			out = append(out, v)
		}
	}
	return out, nil
}

// Plugin reads a tenant's plugin record; a missing one wraps
// modelstore.ErrNotFound. Its Exports slice is shared with the cache:
// read it, do not modify it.
func (r *Records) Plugin(ctx context.Context, tenant, name string) (*Plugin, error) {
	return read[Plugin](ctx, r, tenant, kindPlugins, "plugin", name)
}

// Plugins lists a tenant's plugin records (at most 1000), never nil.
func (r *Records) Plugins(ctx context.Context, tenant string) ([]*Plugin, error) {
	return list[Plugin](ctx, r, tenant, kindPlugins, "plugin")
}

// PutPlugin stores rec, stamped with the time now as its Created, as a
// tenant's plugin record, replacing one of the same name. The caller has
// validated and stored the module rec describes.
func (r *Records) PutPlugin(ctx context.Context, tenant string, rec Plugin) (*Plugin, error) {
	rec.Created = time.Now().UTC()
	if err := r.put(ctx, tenant, kindPlugins, rec.Name, &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

// Endpoint reads a tenant's endpoint; a missing one wraps
// modelstore.ErrNotFound. Its ForwardInputs and Generation are shared
// with the cache: read them, do not modify them.
func (r *Records) Endpoint(ctx context.Context, tenant, name string) (*Endpoint, error) {
	return read[Endpoint](ctx, r, tenant, kindEndpoints, "endpoint", name)
}

// Endpoints lists a tenant's endpoints (at most 1000), never nil.
func (r *Records) Endpoints(ctx context.Context, tenant string) ([]*Endpoint, error) {
	return list[Endpoint](ctx, r, tenant, kindEndpoints, "endpoint")
}

// PutEndpoint stores ep as a tenant's endpoint, replacing one of the same
// name, whose Created it keeps; created reports a new one. The caller has
// checked ep ([CheckEndpoint]) and what it refers to.
func (r *Records) PutEndpoint(ctx context.Context, tenant string, ep Endpoint) (stored *Endpoint, created bool, err error) {
	now := time.Now().UTC()
	ep.Created, ep.Updated = now, now
	created = true
	if old, err := r.Endpoint(ctx, tenant, ep.Name); err == nil {
		ep.Created, created = old.Created, false
	}
	if err := r.put(ctx, tenant, kindEndpoints, ep.Name, &ep); err != nil {
		return nil, false, err
	}
	return &ep, created, nil
}

// DeleteEndpoint removes a tenant's endpoint; a missing one wraps
// modelstore.ErrNotFound.
func (r *Records) DeleteEndpoint(ctx context.Context, tenant, name string) error {
	if _, err := r.Endpoint(ctx, tenant, name); err != nil {
		return err
	}
	if err := r.st.Delete(ctx, tenant, kindEndpoints, name); err != nil {
		return err
	}
	r.forget(tenant, kindEndpoints, name)
	return nil
}
