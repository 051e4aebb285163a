// Package driver defines the small interface a storage backend implements
// for [github.com/aiaas/aiaas/modelstore].
//
// # Overview
//
// A driver stores opaque bytes under slash-separated keys. It knows nothing
// about tenants, versions, aliases or encryption: the portable Store owns
// all of that, so every backend behaves the same. Drivers return errors that
// wrap [ErrNotFound], [ErrExists] or [ErrUnavailable] where those apply and
// otherwise raw errors; the Store wraps them once for its callers.
//
// Keys given to a driver have already been validated by the Store: they are
// non-empty, made of path segments separated by '/', and no segment is
// empty, "." or "..", or starts with '.'. Drivers may rely on this.
package driver

import (
	"context"
	"errors"
	"io"
	"sort"
	"time"
)

// Errors a driver wraps so the Store can tell the cases apart.
var (
	// ErrNotFound: the key does not exist.
	ErrNotFound = errors.New("driver: not found")
	// ErrExists: a conditional create found the key already taken.
	ErrExists = errors.New("driver: already exists")
	// ErrUnavailable: the backend cannot be reached or answered with a
	// transient failure after the driver's own retries.
	ErrUnavailable = errors.New("driver: unavailable")
	// ErrInvalidParts: a multipart upload cannot be completed with the
	// parts given (missing, wrong ETag, a part below the minimum size).
	ErrInvalidParts = errors.New("driver: invalid parts")
)

// Attrs describes a stored object.
type Attrs struct {
	Key     string
	Size    int64
	ETag    string // changes whenever the object is replaced
	ModTime time.Time
}

// PutOptions tune one Put. The zero value is an unconditional overwrite.
type PutOptions struct {
	// IfNotExists makes the write a conditional create: it fails with
	// ErrExists when the key is taken, and of two concurrent creates of
	// the same key at most one succeeds.
	IfNotExists bool
}

// ListOptions tune one List. The zero value lists everything under the
// prefix, recursively, in ascending key order.
type ListOptions struct {
	// Delimiter "/" lists one level: keys directly under the prefix and,
	// for deeper keys, their common prefix ending in "/" (as an Attrs with
	// only Key set).
	Delimiter string
	// StartAfter skips keys up to and including this one.
	StartAfter string
	// Limit caps the number of results; 0 means no limit.
	Limit int
	// KeysOnly says the caller reads only Key: a driver whose attributes
	// cost a call per object (a folder's stat) may leave the others zero.
	KeysOnly bool
}

// Bucket is the interface a storage backend implements. Implementations
// must be safe for concurrent use by multiple goroutines.
type Bucket interface {
	// Get opens an object for reading. The caller closes the reader.
	Get(ctx context.Context, key string) (io.ReadCloser, Attrs, error)
	// Stat returns an object's attributes without its content.
	Stat(ctx context.Context, key string) (Attrs, error)
	// Put stores exactly size bytes from r under key. Readers never see a
	// partly written object: either the old object (or none) or the new
	// one. A reader that yields fewer or more bytes than size fails the Put.
	Put(ctx context.Context, key string, r io.Reader, size int64, opts *PutOptions) error
	// Delete removes an object. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List returns the objects whose keys start with prefix, sorted.
	List(ctx context.Context, prefix string, opts *ListOptions) ([]Attrs, error)
	// Close releases the driver's resources.
	Close() error
}

// Sweeper is implemented by drivers where a process that dies in the
// middle of a Put leaves the partial upload behind — a temporary file, an
// S3 multipart upload. Readers never see one, but it takes space until it
// is removed.
type Sweeper interface {
	// Sweep removes the partial uploads last written (S3: started)
	// before cutoff and returns how many it removed. An upload still
	// running must not be older than cutoff, so cutoff must lie further
	// back than the longest upload.
	Sweep(ctx context.Context, cutoff time.Time) (int, error)
}

// Finish sorts a driver's raw listing by key and applies StartAfter and
// Limit, for drivers that cannot do so natively.
func Finish(list []Attrs, o *ListOptions) []Attrs {
	sort.Slice(list, func(i, j int) bool { return list[i].Key < list[j].Key })
	if o == nil {
		return list
	}
	if o.StartAfter != "" {
		i := sort.Search(len(list), func(i int) bool { return list[i].Key > o.StartAfter })
		list = list[i:]
	}
	if o.Limit > 0 && len(list) > o.Limit {
		list = list[:o.Limit]
	}
	return list
}

// Part is one uploaded part of a multipart upload: its number (1-based)
// and the ETag the backend answered its PUT with.
type Part struct {
	Number int
	ETag   string
}

// Presigner is implemented by drivers whose backend accepts uploads from
// clients that hold no credentials, through URLs signed for one object
// and a limited time (S3 presigned URLs). The Store uses it to let large
// artifacts bypass the server: the client PUTs straight to the backend.
// Keys are validated by the Store, as for Bucket.
type Presigner interface {
	// PresignPut returns a URL that PUTs exactly size bytes to key until
	// expiry passes: the length is part of the signature where the
	// backend allows, so a client cannot store more than announced.
	PresignPut(ctx context.Context, key string, size int64, expiry time.Duration) (string, error)
	// NewMultipart starts a multipart upload of key and returns its id.
	NewMultipart(ctx context.Context, key string) (uploadID string, err error)
	// PresignPart returns a URL that PUTs part number (size bytes) of
	// upload uploadID.
	PresignPart(ctx context.Context, key, uploadID string, number int, size int64, expiry time.Duration) (string, error)
	// CompleteMultipart assembles the parts, in order, into key. An upload
	// that is unknown (completed, aborted or never started) is ErrNotFound;
	// parts the backend refuses are ErrInvalidParts.
	CompleteMultipart(ctx context.Context, key, uploadID string, parts []Part) error
	// AbortMultipart discards an upload and its parts; an unknown upload
	// is not an error.
	AbortMultipart(ctx context.Context, key, uploadID string) error
}
