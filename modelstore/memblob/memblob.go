// Package memblob is an in-memory [driver.Bucket] for tests and demos.
//
// # Overview
//
// Objects live in a map guarded by one mutex; content is copied in and out
// so callers cannot alias stored bytes. Nothing survives the process.
package memblob

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aiaas/aiaas/modelstore/driver"
)

type object struct {
	data []byte
	etag string
	mod  time.Time
}

// Bucket is an in-memory bucket. It is safe for concurrent use.
type Bucket struct {
	mu   sync.Mutex
	objs map[string]object
	gen  uint64
}

// New returns an empty bucket.
func New() *Bucket { return &Bucket{objs: map[string]object{}} }

// Get implements driver.Bucket. It is goroutine-safe.
func (b *Bucket) Get(ctx context.Context, key string) (io.ReadCloser, driver.Attrs, error) {
	if err := ctx.Err(); err != nil {
		return nil, driver.Attrs{}, err
	}
	b.mu.Lock()
	o, ok := b.objs[key]
	b.mu.Unlock()
	if !ok {
		return nil, driver.Attrs{}, fmt.Errorf("memblob: %s: %w", key, driver.ErrNotFound)
	}
	// Stored slices are never mutated after insertion, so sharing is safe.
	return io.NopCloser(bytes.NewReader(o.data)), attrs(key, o), nil
}

// Stat implements driver.Bucket. It is goroutine-safe.
func (b *Bucket) Stat(ctx context.Context, key string) (driver.Attrs, error) {
	if err := ctx.Err(); err != nil {
		return driver.Attrs{}, err
	}
	b.mu.Lock()
	o, ok := b.objs[key]
	b.mu.Unlock()
	if !ok {
		return driver.Attrs{}, fmt.Errorf("memblob: %s: %w", key, driver.ErrNotFound)
	}
	return attrs(key, o), nil
}

func attrs(key string, o object) driver.Attrs {
	return driver.Attrs{Key: key, Size: int64(len(o.data)), ETag: o.etag, ModTime: o.mod}
}

// Put implements driver.Bucket. It is goroutine-safe.
func (b *Bucket) Put(ctx context.Context, key string, r io.Reader, size int64, opts *driver.PutOptions) error {
	if size < 0 {
		return fmt.Errorf("memblob: %s: negative size", key)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(r, data); err != nil {
		return fmt.Errorf("memblob: %s: short body: %w", key, err)
	}
	var one [1]byte
	if n, _ := r.Read(one[:]); n > 0 {
		return fmt.Errorf("memblob: %s: body longer than %d bytes", key, size)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if opts != nil && opts.IfNotExists {
		if _, ok := b.objs[key]; ok {
			return fmt.Errorf("memblob: %s: %w", key, driver.ErrExists)
		}
	}
	b.gen++
	b.objs[key] = object{data: data, etag: strconv.FormatUint(b.gen, 16), mod: time.Now()}
	return nil
}

// Delete implements driver.Bucket. It is goroutine-safe.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	delete(b.objs, key)
	b.mu.Unlock()
	return nil
}

// List implements driver.Bucket. It is goroutine-safe.
func (b *Bucket) List(ctx context.Context, prefix string, opts *driver.ListOptions) ([]driver.Attrs, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var o driver.ListOptions
	if opts != nil {
		o = *opts
	}
	b.mu.Lock()
	var out []driver.Attrs
	seen := map[string]bool{}
	for k, obj := range b.objs {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		if o.Delimiter != "" {
			if i := strings.Index(k[len(prefix):], o.Delimiter); i >= 0 {
				p := k[:len(prefix)+i+len(o.Delimiter)]
				if !seen[p] {
					seen[p] = true
					out = append(out, driver.Attrs{Key: p})
				}
				continue
			}
		}
		out = append(out, attrs(k, obj))
	}
	b.mu.Unlock()
	return driver.Finish(out, &o), nil
}

// Close implements driver.Bucket.
func (b *Bucket) Close() error { return nil }

// Raw returns a copy of the stored bytes of key, for tests that inspect
// what is at rest. It is goroutine-safe.
func (b *Bucket) Raw(key string) ([]byte, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	o, ok := b.objs[key]
	return bytes.Clone(o.data), ok
}

var _ driver.Bucket = (*Bucket)(nil)
