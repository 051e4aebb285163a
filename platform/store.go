package platform

import (
	"context"
	"io"

	"github.com/aiaas/aiaas/modelstore"
)

// Store is what the platform needs from storage: the four parts below.
// *modelstore.Store implements it ([StoreFrom]); the platform never sees
// keys, drivers or encryption. The parts exist for their consumers: a
// piece that needs only records (the audit log's adapter, the record
// cache) or only models (the ref cache) takes only that part.
//
// Names are validated by the store. Errors wrap the store's sentinels
// (modelstore.ErrNotFound, ErrExists, ErrInvalidName, ErrTooLarge,
// ErrUnavailable, ErrCorrupt); errors.go maps them to statuses.
type Store interface {
	SystemStore
	ModelStore
	RecordStore
	BlobStore
}

// SystemStore holds the records outside every tenant: tenants and API
// keys.
type SystemStore interface {
	SystemGet(ctx context.Context, name string) ([]byte, error)
	SystemPut(ctx context.Context, name string, data []byte) error
	SystemCreate(ctx context.Context, name string, data []byte) error // ErrExists if taken
	SystemList(ctx context.Context, prefix string) ([]string, error)
}

// ModelStore holds a tenant's models: immutable numbered versions with
// metadata, and aliases.
type ModelStore interface {
	PublishModel(ctx context.Context, tenant, model string, r io.Reader, size int64, meta []byte) (VersionInfo, error)
	OpenModel(ctx context.Context, tenant, model string, version int) ([]byte, VersionInfo, error) // verified sha256
	Versions(ctx context.Context, tenant, model string) ([]VersionInfo, error)                     // ErrNotFound if no model
	Models(ctx context.Context, tenant string) ([]string, error)
	SetAlias(ctx context.Context, tenant, model, alias string, a Alias) error
	Aliases(ctx context.Context, tenant, model string) (map[string]Alias, error)
}

// RecordStore holds a tenant's small records, by kind ("plugins",
// "endpoints", "jobs", "keys", "audit" …). Get returns a buffer the
// caller owns: the audit log's records share its bytes.
type RecordStore interface {
	Get(ctx context.Context, tenant, kind, name string) ([]byte, error)
	Put(ctx context.Context, tenant, kind, name string, data []byte) error
	Create(ctx context.Context, tenant, kind, name string, data []byte) error // ErrExists if taken
	Delete(ctx context.Context, tenant, kind, name string) error
	List(ctx context.Context, tenant, kind, prefix, after string, limit int) ([]string, error)
}

// BlobStore holds a tenant's blobs, streamed: plugin modules and datasets.
type BlobStore interface {
	PutBlob(ctx context.Context, tenant, kind, name string, r io.Reader, size int64) (sha256 string, err error)
	GetBlob(ctx context.Context, tenant, kind, name string) ([]byte, error)
	StatBlob(ctx context.Context, tenant, kind, name string) (BlobInfo, error)
	ListBlobs(ctx context.Context, tenant, kind string) ([]BlobInfo, error)
}

// The store's value types, shared as they are.
type (
	// VersionInfo describes one published model version.
	VersionInfo = modelstore.VersionInfo
	// Alias points at a version, optionally splitting traffic with a canary.
	Alias = modelstore.Alias
	// BlobInfo describes a stored blob.
	BlobInfo = modelstore.BlobInfo
)

// StoreFrom adapts a modelstore.Store to the platform.
func StoreFrom(ms *modelstore.Store) Store { return ms }
