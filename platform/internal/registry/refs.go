package registry

import (
	"context"
	"errors"
	"hash/fnv"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"

	"github.com/aiaas/aiaas/internal/cache"
	"github.com/aiaas/aiaas/modelstore"
)

// Store is what the registry reads: a model's versions and its aliases.
// *modelstore.Store implements it; so does the platform's ModelStore.
type Store interface {
	// Versions lists a model's published versions; a missing model
	// wraps modelstore.ErrNotFound.
	Versions(ctx context.Context, tenant, model string) ([]modelstore.VersionInfo, error)
	// Aliases returns a model's aliases by name (nil when it has none).
	Aliases(ctx context.Context, tenant, model string) (map[string]modelstore.Alias, error)
}

// Refs is what resolving a ref needs: a model's versions and its aliases,
// cached briefly so a warm request reads nothing from the store. Callers
// must not modify it: it is shared by every request until it expires.
type Refs struct {
	// Latest is the highest published version.
	Latest int
	// Versions are the published versions by number.
	Versions map[int]modelstore.VersionInfo
	// Aliases are the model's aliases by name, never nil.
	Aliases map[string]modelstore.Alias
}

// VersionList lists the model's version numbers as strings, ascending, as
// the Open Inference Protocol's metadata gives them.
func (r *Refs) VersionList() []string {
	nums := make([]int, 0, len(r.Versions))
	for v := range r.Versions {
		nums = append(nums, v)
	}
	sort.Ints(nums)
	out := make([]string, len(nums))
	for i, v := range nums {
		out[i] = strconv.Itoa(v)
	}
	return out
}

// RefTTL is how long a model's refs are cached: a moved alias or a version
// published by another process is seen by every process within it. This
// process's own publishes and alias moves are seen at once ([Registry.Forget]).
const RefTTL = 2 * time.Second

// Registry resolves refs to versions through a short-lived cache of each
// model's [Refs]. It is safe for concurrent use.
type Registry struct {
	st Store
	c  *cache.Cache[refKey, *Refs]
}

type refKey struct{ tenant, model string }

// New returns a Registry reading st.
func New(st Store) *Registry {
	return &Registry{st: st, c: cache.New[refKey, *Refs](cache.Options{
		TTL: RefTTL,
		// Stale-if-error: the store is down, and a model that was
		// resolved before keeps serving from the last known refs (its
		// weights are cached); new models fail fast with 503.
		Stale: func(err error) bool { return errors.Is(err, modelstore.ErrUnavailable) },
	})}
}

// Refs returns a tenant's (by id) model's refs, from the cache when they
// are fresh. A model without versions is [ErrNoSuchModel]; a store error
// is returned as it is.
func (r *Registry) Refs(ctx context.Context, tenant, model string) (*Refs, error) {
	return r.c.Load(ctx, refKey{tenant, model}, func(ctx context.Context) (*Refs, error) {
		vs, err := r.st.Versions(ctx, tenant, model)
		if err != nil {
			return nil, err
		}
		if len(vs) == 0 {
			return nil, errorf(ErrNoSuchModel, "model %q has no versions", model)
		}
		aliases, err := r.st.Aliases(ctx, tenant, model)
		if err != nil {
			return nil, err
		}
		e := &Refs{Versions: map[int]modelstore.VersionInfo{}, Aliases: aliases}
		for _, v := range vs {
			e.Versions[v.Version] = v
			e.Latest = max(e.Latest, v.Version)
		}
		if e.Aliases == nil {
			e.Aliases = map[string]modelstore.Alias{}
		}
		return e, nil
	})
}

// Forget drops a model's cached refs. Call it after publishing a version
// or moving an alias, so this process sees the change at once (and wins
// over a load that was in flight).
func (r *Registry) Forget(tenant, model string) { r.c.Forget(refKey{tenant, model}) }

// Resolved is a ref turned into a version.
type Resolved struct {
	// Version is the version resolved to, and Info its store record.
	Version int
	Info    modelstore.VersionInfo
	// Alias is the alias used; "" for a number or latest.
	Alias string
	// Side is "primary" or "canary" when the alias splits traffic, ""
	// otherwise.
	Side string
}

// Resolve turns a ref — "", "latest", a version number or an alias — into
// a version. A split alias picks a side by weight, sticky per sticky key
// (the request id) when one is given, random without one. A missing
// model, version or alias wraps modelstore.ErrNotFound ([ErrNoSuchModel],
// [ErrNoSuchVersion], [ErrNoSuchAlias]); a ref that starts with a digit
// but is no version number is [ErrInvalidRef].
func (r *Registry) Resolve(ctx context.Context, tenant, model, ref, sticky string) (Resolved, error) {
	refs, err := r.Refs(ctx, tenant, model)
	if err != nil {
		return Resolved{}, modelNotFound(err, model)
	}
	var res Resolved
	switch {
	case ref == "" || ref == "latest":
		res.Version = refs.Latest
	case ref[0] >= '0' && ref[0] <= '9':
		n, err := strconv.Atoi(ref)
		if err != nil || n < 1 {
			return Resolved{}, errorf(ErrInvalidRef, "invalid version %q", truncate(ref, 32))
		}
		res.Version = n
	default:
		a, ok := refs.Aliases[ref]
		if !ok {
			return Resolved{}, errorf(ErrNoSuchAlias, "model %q has no version or alias %q", model, truncate(ref, 32))
		}
		res.Alias, res.Version = ref, a.Version
		if a.CanaryVersion != 0 && a.CanaryWeight > 0 {
			res.Side = "primary"
			if pick(sticky) < a.CanaryWeight {
				res.Version, res.Side = a.CanaryVersion, "canary"
			}
		}
	}
	info, ok := refs.Versions[res.Version]
	if !ok {
		// Maybe published a moment ago by another process.
		r.Forget(tenant, model)
		if refs, err = r.Refs(ctx, tenant, model); err == nil {
			info, ok = refs.Versions[res.Version]
		}
		if !ok {
			return Resolved{}, errorf(ErrNoSuchVersion, "model %q has no version %d", model, res.Version)
		}
	}
	res.Info = info
	return res, nil
}

// ResolvePrimary resolves a ref as [Registry.Resolve] does, except that a
// split alias means its primary version: evaluations are not traffic.
func (r *Registry) ResolvePrimary(ctx context.Context, tenant, model, ref string) (Resolved, error) {
	res, err := r.Resolve(ctx, tenant, model, ref, "")
	if err != nil || res.Side == "" {
		return res, err
	}
	refs, err := r.Refs(ctx, tenant, model)
	if err != nil {
		return Resolved{}, modelNotFound(err, model)
	}
	v := refs.Aliases[ref].Version
	info, ok := refs.Versions[v]
	if !ok {
		return Resolved{}, errorf(ErrNoSuchVersion, "model %q has no version %d", model, v)
	}
	return Resolved{Version: v, Info: info, Alias: ref}, nil
}

// modelNotFound rewrites a not-found into [ErrNoSuchModel] naming the
// model as the client named it; other errors pass unchanged.
func modelNotFound(err error, model string) error {
	if errors.Is(err, modelstore.ErrNotFound) {
		return errorf(ErrNoSuchModel, "model %q not found", model)
	}
	return err
}

// pick maps a sticky key to 0..99 (random without one).
func pick(sticky string) int {
	if sticky == "" {
		return rand.IntN(100)
	}
	h := fnv.New32a()
	h.Write([]byte(sticky))
	return int(h.Sum32() % 100)
}
