// Package modelstore keeps every tenant's models, plugins, datasets,
// endpoints, jobs and audit records in object storage: apart, encrypted,
// verified and never half-written.
//
// # Overview
//
// [Store] is a concrete, portable type holding all the logic — key layout,
// tenant prefixes, name validation, versions, aliases, checksums, envelope
// encryption — over a small [Bucket] driver with three implementations:
// S3 through minio-go (s3blob), a local folder (fileblob) and memory
// (memblob). [Open] picks one from a URL; [New] takes any Bucket.
//
// # Guarantees
//
//   - Model versions are numbered 1, 2, 3 … and immutable. Publishing writes
//     the encrypted artifact under a fresh random key, then creates the
//     version marker with a conditional create: of concurrent publishers of
//     the same version exactly one wins, and a reader that sees a marker
//     sees complete data.
//   - Every artifact's sha256 is recorded at publish and verified at load; a
//     mismatch or failed decryption is [ErrCorrupt] naming the object.
//   - Every object is encrypted with AES-256-GCM under a per-tenant data key
//     wrapped by the operator's master key (docs/storage.md has the format).
//   - A store that cannot be reached gives [ErrUnavailable] within the
//     configured timeout, never a hang.
//
// # What it must never do
//
// Panic on anything reachable from a request, read a whole large artifact
// into memory to upload it, or let one tenant's name reach another's keys.
package modelstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/aiaas/aiaas/modelstore/driver"
)

// Bucket is the driver interface; see package driver.
type Bucket = driver.Bucket

// Errors callers branch on. Every error returned by a Store wraps at most
// one of them, with the operation and the object named.
var (
	ErrNotFound    = errors.New("not found")
	ErrExists      = errors.New("already exists")
	ErrCorrupt     = errors.New("stored object is corrupt")
	ErrInvalidName = errors.New("invalid name")
	ErrUnavailable = errors.New("store unavailable")
	ErrTooLarge    = errors.New("too large")
)

// Defaults of Options.
const (
	DefaultTimeout        = 10 * time.Second
	DefaultMaxArtifact    = 2 << 30
	DefaultMaxRecord      = 1 << 20
	DefaultMaxBlob        = 2 << 30
	DefaultPublishRetries = 16
)

// Options configure a Store. The zero value (or nil) means defaults, except
// MasterKey which is required.
type Options struct {
	// MasterKey (32 bytes) wraps every data key. The platform reads it from
	// AIAAS_MASTER_KEY (base64).
	MasterKey []byte
	// OldMasterKeys are tried when unwrapping, so data keys wrapped before a
	// rotation still open; RewrapKeys moves them to MasterKey.
	OldMasterKeys [][]byte
	// SSE for S3: "", "none", "sse-s3" or "sse-kms:KEYID". Applied by Open.
	SSE string
	// S3AccessKey and S3SecretKey; empty means the standard AWS chain.
	S3AccessKey, S3SecretKey string
	// Timeout bounds each storage call (one Get, Put …); 0 means
	// DefaultTimeout. The caller's context can only shorten it.
	Timeout time.Duration
	// MaxArtifactSize bounds a model artifact; 0 means 2 GiB.
	MaxArtifactSize int64
	// MaxRecordSize bounds a record (Put/Get/Create); 0 means 1 MiB.
	MaxRecordSize int64
	// MaxBlobSize bounds a blob; 0 means 2 GiB.
	MaxBlobSize int64
	// Logger receives warnings (orphans left behind, slow calls); nil
	// discards them.
	Logger *slog.Logger
	// Now is the clock for Created times; nil means time.Now.
	Now func() time.Time
}

// Store is the portable store. It is safe for concurrent use.
type Store struct {
	b    Bucket
	opts Options
	log  *slog.Logger

	mu   sync.Mutex
	deks map[string][]byte // owner prefix → unwrapped data key
}

// New returns a Store over b.
func New(b Bucket, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if b == nil {
		return nil, errors.New("modelstore: nil bucket")
	}
	if len(o.MasterKey) != 32 {
		return nil, fmt.Errorf("modelstore: master key is %d bytes, want 32", len(o.MasterKey))
	}
	for i, k := range o.OldMasterKeys {
		if len(k) != 32 {
			return nil, fmt.Errorf("modelstore: old master key %d is %d bytes, want 32", i, len(k))
		}
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxArtifactSize <= 0 {
		o.MaxArtifactSize = DefaultMaxArtifact
	}
	if o.MaxRecordSize <= 0 {
		o.MaxRecordSize = DefaultMaxRecord
	}
	if o.MaxBlobSize <= 0 {
		o.MaxBlobSize = DefaultMaxBlob
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o.MasterKey = bytes.Clone(o.MasterKey)
	return &Store{b: b, opts: o, log: log, deks: map[string][]byte{}}, nil
}

// Bucket returns the driver under the store (tests inspect raw bytes).
// It is goroutine-safe.
func (s *Store) Bucket() Bucket { return s.b }

// Close closes the driver. It is goroutine-safe.
func (s *Store) Close() error { return s.b.Close() }

// Sweep removes the partial uploads that processes killed mid-write left
// in the backend, those last written before cutoff (see driver.Sweeper),
// and returns how many. Backends without such leftovers return 0. It
// lists the whole backend: run it in the background, bounded by ctx.
//
// It also removes the staged uploads that expired (see SweepUploads).
func (s *Store) Sweep(ctx context.Context, cutoff time.Time) (int, error) {
	n, err := s.SweepUploads(ctx, "", s.opts.Now())
	if err != nil {
		return n, err
	}
	sw, ok := s.b.(driver.Sweeper)
	if !ok {
		return n, nil
	}
	m, err := sw.Sweep(ctx, cutoff)
	return n + m, wrap("sweep", "", err)
}

// call runs one storage call under the per-call timeout.
func (s *Store) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.opts.Timeout)
}

// wrap turns a driver error into the store's error for op on object.
func wrap(op, object string, err error) error {
	if err == nil {
		return nil
	}
	var sentinel error
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrExists), errors.Is(err, ErrCorrupt),
		errors.Is(err, ErrInvalidName), errors.Is(err, ErrUnavailable), errors.Is(err, ErrTooLarge):
		return fmt.Errorf("modelstore: %s %s: %w", op, object, err)
	case errors.Is(err, driver.ErrNotFound):
		sentinel = ErrNotFound
	case errors.Is(err, driver.ErrExists):
		sentinel = ErrExists
	case errors.Is(err, errAuth):
		sentinel = ErrCorrupt
	case errors.Is(err, driver.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		sentinel = ErrUnavailable
	}
	if sentinel == nil {
		return fmt.Errorf("modelstore: %s %s: %w", op, object, err)
	}
	return fmt.Errorf("modelstore: %s %s: %w (%w)", op, object, sentinel, err)
}

// keyFile is what is stored at OWNER/_key: the data key wrapped by a
// master key.
type keyFile struct {
	V       int    `json:"v"`
	KeyID   string `json:"kid"`
	Wrapped []byte `json:"wrapped"`
}

// dataKey returns the data key of an owner prefix ("tenants/T" or
// "_system"), creating it on first use.
func (s *Store) dataKey(ctx context.Context, owner string, create bool) ([]byte, error) {
	s.mu.Lock()
	dk, ok := s.deks[owner]
	s.mu.Unlock()
	if ok {
		return dk, nil
	}
	k := owner + "/_key"
	for attempt := 0; attempt < 3; attempt++ {
		raw, err := s.getRaw(ctx, k, 64<<10)
		if err == nil {
			var kf keyFile
			if err := json.Unmarshal(raw, &kf); err != nil {
				return nil, wrap("read data key", k, fmt.Errorf("%w: %v", ErrCorrupt, err))
			}
			dk, err = s.unwrap(owner, kf.Wrapped)
			if err != nil {
				return nil, wrap("unwrap data key", k, err)
			}
			s.mu.Lock()
			s.deks[owner] = dk
			s.mu.Unlock()
			return dk, nil
		}
		if !errors.Is(err, driver.ErrNotFound) {
			return nil, wrap("read data key", k, err)
		}
		if !create {
			// Nothing was ever written for this owner.
			return nil, err
		}
		dk = make([]byte, 32)
		if _, err := randRead(dk); err != nil {
			return nil, err
		}
		w, err := wrapKey(s.opts.MasterKey, owner, dk)
		if err != nil {
			return nil, err
		}
		b, _ := json.Marshal(keyFile{V: 1, KeyID: keyID(s.opts.MasterKey), Wrapped: w})
		// Conditional: two processes creating the tenant's key at once must
		// agree on one, or one would encrypt under a key nobody keeps.
		err = s.putRaw(ctx, k, b, true)
		if err == nil {
			s.mu.Lock()
			s.deks[owner] = dk
			s.mu.Unlock()
			return dk, nil
		}
		if !errors.Is(err, driver.ErrExists) {
			return nil, wrap("create data key", k, err)
		}
		// Lost the race: read the winner's key.
	}
	return nil, wrap("create data key", k, ErrUnavailable)
}

func (s *Store) unwrap(owner string, w []byte) ([]byte, error) {
	if dk, err := unwrapKey(s.opts.MasterKey, owner, w); err == nil {
		return dk, nil
	}
	for _, m := range s.opts.OldMasterKeys {
		if dk, err := unwrapKey(m, owner, w); err == nil {
			return dk, nil
		}
	}
	return nil, fmt.Errorf("no configured master key opens it: %w", ErrCorrupt)
}

// RewrapKeys re-wraps every data key (system and tenants) with the current
// master key, after a rotation that moved the previous one to
// OldMasterKeys. Objects are not re-encrypted: only the small key files
// change. It returns how many key files it rewrote. It is goroutine-safe.
func (s *Store) RewrapKeys(ctx context.Context) (int, error) {
	owners := []string{"_system"}
	ts, err := s.Tenants(ctx)
	if err != nil {
		return 0, err
	}
	for _, t := range ts {
		owners = append(owners, "tenants/"+t)
	}
	kid := keyID(s.opts.MasterKey)
	n := 0
	for _, owner := range owners {
		k := owner + "/_key"
		raw, err := s.getRaw(ctx, k, 64<<10)
		if errors.Is(err, driver.ErrNotFound) {
			continue
		}
		if err != nil {
			return n, wrap("rewrap", k, err)
		}
		var kf keyFile
		if err := json.Unmarshal(raw, &kf); err != nil {
			return n, wrap("rewrap", k, fmt.Errorf("%w: %v", ErrCorrupt, err))
		}
		if kf.KeyID == kid {
			continue
		}
		dk, err := s.unwrap(owner, kf.Wrapped)
		if err != nil {
			return n, wrap("rewrap", k, err)
		}
		w, err := wrapKey(s.opts.MasterKey, owner, dk)
		if err != nil {
			return n, err
		}
		b, _ := json.Marshal(keyFile{V: 1, KeyID: kid, Wrapped: w})
		if err := s.putRaw(ctx, k, b, false); err != nil {
			return n, wrap("rewrap", k, err)
		}
		n++
	}
	return n, nil
}

// Tenants lists the tenants that have stored anything. It is goroutine-safe.
func (s *Store) Tenants(ctx context.Context) ([]string, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	list, err := s.b.List(ctx, "tenants/", &driver.ListOptions{Delimiter: "/"})
	if err != nil {
		return nil, wrap("list", "tenants", err)
	}
	var out []string
	for _, a := range list {
		if name := trimDir(a.Key, "tenants/"); name != "" {
			out = append(out, name)
		}
	}
	return out, nil
}

// getRaw reads a whole small object, refusing more than limit bytes.
func (s *Store) getRaw(ctx context.Context, key string, limit int64) ([]byte, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	r, a, err := s.b.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if a.Size > limit {
		return nil, fmt.Errorf("%d bytes stored: %w", a.Size, ErrTooLarge)
	}
	// Sized from the attributes, the body is read into one allocation
	// (io.ReadAll grows by doubling: about twice the object in garbage);
	// a body that differs from its size still reads whole.
	buf := bytes.NewBuffer(make([]byte, 0, max(a.Size, 0)+bytes.MinRead))
	if _, err := buf.ReadFrom(io.LimitReader(r, limit+1)); err != nil {
		return nil, err
	}
	if int64(buf.Len()) > limit {
		return nil, ErrTooLarge
	}
	return buf.Bytes(), nil
}

func (s *Store) putRaw(ctx context.Context, key string, b []byte, create bool) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	return s.b.Put(ctx, key, bytes.NewReader(b), int64(len(b)), &driver.PutOptions{IfNotExists: create})
}

// getSealed reads and decrypts a small object of owner.
func (s *Store) getSealed(ctx context.Context, owner, key string, limit int64) ([]byte, error) {
	dk, err := s.dataKey(ctx, owner, false)
	if err != nil {
		return nil, err
	}
	raw, err := s.getRaw(ctx, key, sealedSize(limit))
	if err != nil {
		return nil, err
	}
	return open(dk, key, raw)
}

// putSealed encrypts and writes a small object of owner.
func (s *Store) putSealed(ctx context.Context, owner, key string, plain []byte, create bool) error {
	dk, err := s.dataKey(ctx, owner, true)
	if err != nil {
		return err
	}
	b, err := seal(dk, key, plain)
	if err != nil {
		return err
	}
	return s.putRaw(ctx, key, b, create)
}
