package registry

import (
	"context"

	"github.com/aiaas/aiaas/internal/cache"
)

// Lookup is how a [ModelCache] lookup went, for the platform's metrics
// (which it reports under these names).
type Lookup string

// The outcomes of a model cache lookup.
const (
	// Hit found the version decoded already (or joined a load another
	// request had started).
	Hit Lookup = "hit"
	// Miss loaded and decoded the version.
	Miss Lookup = "miss"
	// Failed is a lookup whose load failed; nothing was cached.
	Failed Lookup = "error"
)

// ModelCache keeps decoded model versions warm: a byte-bounded LRU with one
// load per version when many requests miss at once. Versions are
// immutable, so an entry never goes stale; aliases are resolved before
// the cache ([Registry.Resolve]). M is the caller's decoded model: the
// registry neither decodes nor serves models, the loader does. It is safe
// for concurrent use.
type ModelCache[M any] struct {
	c *cache.LRU[versionKey, M]
}

// versionKey names a decoded version.
type versionKey struct {
	tenant, model string
	version       int
}

// Loader loads and decodes a version, returning it with the bytes it
// holds (what the cache's bound counts).
type Loader[M any] func(ctx context.Context) (m M, size int64, err error)

// NewModelCache returns a cache that holds at most maxBytes of decoded
// models, as their loaders size them.
func NewModelCache[M any](maxBytes int64) *ModelCache[M] {
	return &ModelCache[M]{c: cache.NewLRU[versionKey, M](&cache.LRUOptions{MaxBytes: maxBytes})}
}

// Get returns a tenant's (by id) model version, calling load on a miss,
// and says how the lookup went. A failed load is returned as load gave
// it, and is not cached.
func (c *ModelCache[M]) Get(ctx context.Context, tenant, model string, version int, load Loader[M]) (M, Lookup, error) {
	hit := true
	m, err := c.c.Get(ctx, versionKey{tenant, model, version}, func(ctx context.Context) (M, int64, error) {
		hit = false
		return load(ctx)
	})
	switch {
	case err != nil:
		return m, Failed, err
	case hit:
		return m, Hit, nil
	}
	return m, Miss, nil
}

// Bytes is what the cached models hold, as their loaders sized them.
func (c *ModelCache[M]) Bytes() int64 { return c.c.Bytes() }
