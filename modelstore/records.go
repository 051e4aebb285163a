package modelstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/aiaas/aiaas/modelstore/driver"
)

// Key layout (docs/storage.md):
//
//	_system/_key                          system data key, wrapped
//	_system/records/NAME                  system record
//	tenants/T/_key                        tenant data key, wrapped
//	tenants/T/records/KIND/NAME           record
//	tenants/T/blobs/KIND/NAME             blob descriptor (sha256, size, data key)
//	tenants/T/blobdata/KIND/RANDOM        blob content
//	tenants/T/models/M/versions/0000000007  version marker (+ metadata)
//	tenants/T/models/M/data/RANDOM        artifact content
//	tenants/T/models/M/aliases/A          alias

const systemOwner = "_system"

func tenantOwner(t string) string { return "tenants/" + t }

// Get returns the record kind/name of tenant. It is goroutine-safe.
func (s *Store) Get(ctx context.Context, tenant, kind, name string) ([]byte, error) {
	if err := checkNames([]string{"tenant", "kind", "name"}, tenant, kind, name); err != nil {
		return nil, err
	}
	k := tenantOwner(tenant) + "/records/" + kind + "/" + name
	b, err := s.getSealed(ctx, tenantOwner(tenant), k, s.opts.MaxRecordSize)
	return b, wrap("get", k, err)
}

// Put writes the record kind/name of tenant, replacing it atomically.
// It is goroutine-safe.
func (s *Store) Put(ctx context.Context, tenant, kind, name string, data []byte) error {
	return s.putRecord(ctx, tenant, kind, name, data, false)
}

// Create writes the record only if it does not exist ([ErrExists]
// otherwise); of concurrent creators exactly one succeeds. It is
// goroutine-safe.
func (s *Store) Create(ctx context.Context, tenant, kind, name string, data []byte) error {
	return s.putRecord(ctx, tenant, kind, name, data, true)
}

func (s *Store) putRecord(ctx context.Context, tenant, kind, name string, data []byte, create bool) error {
	if err := checkNames([]string{"tenant", "kind", "name"}, tenant, kind, name); err != nil {
		return err
	}
	k := tenantOwner(tenant) + "/records/" + kind + "/" + name
	if int64(len(data)) > s.opts.MaxRecordSize {
		return wrap("put", k, fmt.Errorf("%d bytes, limit %d: %w", len(data), s.opts.MaxRecordSize, ErrTooLarge))
	}
	return wrap("put", k, s.putSealed(ctx, tenantOwner(tenant), k, data, create))
}

// Delete removes a record; a missing record is not an error. It is
// goroutine-safe.
func (s *Store) Delete(ctx context.Context, tenant, kind, name string) error {
	if err := checkNames([]string{"tenant", "kind", "name"}, tenant, kind, name); err != nil {
		return err
	}
	k := tenantOwner(tenant) + "/records/" + kind + "/" + name
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	return wrap("delete", k, s.b.Delete(ctx, k))
}

// List returns record names of kind starting with prefix, after the name
// after, at most limit (0: all), sorted. It is goroutine-safe.
func (s *Store) List(ctx context.Context, tenant, kind, prefix, after string, limit int) ([]string, error) {
	if err := checkNames([]string{"tenant", "kind"}, tenant, kind); err != nil {
		return nil, err
	}
	return s.listNames(ctx, tenantOwner(tenant)+"/records/"+kind+"/", prefix, after, limit)
}

func (s *Store) listNames(ctx context.Context, dir, prefix, after string, limit int) ([]string, error) {
	if !validPrefix(prefix) || (after != "" && !ValidName(after)) {
		return nil, fmt.Errorf("modelstore: list %s: prefix %q or after %q: %w", dir, prefix, after, ErrInvalidName)
	}
	if limit < 0 {
		limit = 0
	}
	o := &driver.ListOptions{Delimiter: "/", Limit: limit, KeysOnly: true}
	if after != "" {
		o.StartAfter = dir + after
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	list, err := s.b.List(ctx, dir+prefix, o)
	if err != nil {
		return nil, wrap("list", dir+prefix, err)
	}
	out := make([]string, 0, len(list))
	for _, a := range list {
		// Folders (models/M/) come back as common prefixes.
		name := strings.TrimSuffix(strings.TrimPrefix(a.Key, dir), "/")
		if ValidName(name) {
			out = append(out, name)
		}
	}
	return out, nil
}

// Append stores data as the next record of an append-only log kind
// (audit): names are 20-digit sequence numbers taken by conditional create,
// so two writers never share one. It returns the sequence number. It is
// goroutine-safe.
func (s *Store) Append(ctx context.Context, tenant, kind string, data []byte) (int64, error) {
	if err := checkNames([]string{"tenant", "kind"}, tenant, kind); err != nil {
		return 0, err
	}
	dir := tenantOwner(tenant) + "/records/" + kind + "/"
	next := int64(1)
	for attempt := 0; attempt < DefaultPublishRetries*4; attempt++ {
		if attempt == 0 || attempt%4 == 0 {
			last, err := s.lastSeq(ctx, dir)
			if err != nil {
				return 0, err
			}
			if last+1 > next {
				next = last + 1
			}
		}
		name := fmt.Sprintf("%020d", next)
		err := s.putRecord(ctx, tenant, kind, name, data, true)
		if err == nil {
			return next, nil
		}
		if !errors.Is(err, ErrExists) {
			return 0, err
		}
		next++
	}
	return 0, wrap("append", dir, fmt.Errorf("too much contention: %w", ErrUnavailable))
}

// lastSeq finds the highest sequence number in dir.
func (s *Store) lastSeq(ctx context.Context, dir string) (int64, error) {
	names, err := s.listNames(ctx, dir, "", "", 0)
	if err != nil {
		return 0, err
	}
	for i := len(names) - 1; i >= 0; i-- {
		if n, err := strconv.ParseInt(names[i], 10, 64); err == nil && len(names[i]) == 20 {
			return n, nil
		}
	}
	return 0, nil
}

// System records live outside every tenant, encrypted with the system data
// key: the tenant registry, API-key hashes.

// SystemGet reads a system record. It is goroutine-safe.
func (s *Store) SystemGet(ctx context.Context, name string) ([]byte, error) {
	if err := checkNames([]string{"name"}, name); err != nil {
		return nil, err
	}
	k := systemOwner + "/records/" + name
	b, err := s.getSealed(ctx, systemOwner, k, s.opts.MaxRecordSize)
	return b, wrap("get", k, err)
}

// SystemPut writes a system record. It is goroutine-safe.
func (s *Store) SystemPut(ctx context.Context, name string, data []byte) error {
	return s.systemPut(ctx, name, data, false)
}

// SystemCreate writes a system record only if it does not exist. It is
// goroutine-safe.
func (s *Store) SystemCreate(ctx context.Context, name string, data []byte) error {
	return s.systemPut(ctx, name, data, true)
}

func (s *Store) systemPut(ctx context.Context, name string, data []byte, create bool) error {
	if err := checkNames([]string{"name"}, name); err != nil {
		return err
	}
	k := systemOwner + "/records/" + name
	if int64(len(data)) > s.opts.MaxRecordSize {
		return wrap("put", k, ErrTooLarge)
	}
	return wrap("put", k, s.putSealed(ctx, systemOwner, k, data, create))
}

// SystemDelete removes a system record. It is goroutine-safe.
func (s *Store) SystemDelete(ctx context.Context, name string) error {
	if err := checkNames([]string{"name"}, name); err != nil {
		return err
	}
	k := systemOwner + "/records/" + name
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	return wrap("delete", k, s.b.Delete(ctx, k))
}

// MaxCompiledSize bounds one object of shared compiled code.
const MaxCompiledSize = 64 << 20

// CompiledPut stores compiled plugin code shared between the processes of
// a deployment (plugins.SharedCache) as _system/compiled/NAME, sealed with
// the system data key like every system record: an object changed in the
// bucket fails to open rather than being run. It is goroutine-safe.
func (s *Store) CompiledPut(ctx context.Context, name string, data []byte) error {
	if err := checkNames([]string{"name"}, name); err != nil {
		return err
	}
	k := systemOwner + "/compiled/" + name
	if int64(len(data)) > MaxCompiledSize {
		return wrap("put", k, ErrTooLarge)
	}
	return wrap("put", k, s.putSealed(ctx, systemOwner, k, data, false))
}

// CompiledGet returns what CompiledPut stored (ErrNotFound if nothing;
// ErrCorrupt if it does not open). It is goroutine-safe.
func (s *Store) CompiledGet(ctx context.Context, name string) ([]byte, error) {
	if err := checkNames([]string{"name"}, name); err != nil {
		return nil, err
	}
	k := systemOwner + "/compiled/" + name
	b, err := s.getSealed(ctx, systemOwner, k, MaxCompiledSize)
	return b, wrap("get", k, err)
}

// CompiledList lists the names of shared compiled code starting with
// prefix. It is goroutine-safe.
func (s *Store) CompiledList(ctx context.Context, prefix string) ([]string, error) {
	return s.listNames(ctx, systemOwner+"/compiled/", prefix, "", 0)
}

// SystemList lists system record names starting with prefix. It is
// goroutine-safe.
func (s *Store) SystemList(ctx context.Context, prefix string) ([]string, error) {
	return s.listNames(ctx, systemOwner+"/records/", prefix, "", 0)
}

// BlobInfo describes a stored blob.
type BlobInfo struct {
	Name    string    `json:"name"`
	SHA256  string    `json:"sha256"`
	Size    int64     `json:"size"`
	Created time.Time `json:"created"`
	Data    string    `json:"-"` // storage key of the content (internal)
}

// blobDesc is BlobInfo as stored.
type blobDesc struct {
	Name    string    `json:"name"`
	SHA256  string    `json:"sha256"`
	Size    int64     `json:"size"`
	Created time.Time `json:"created"`
	Data    string    `json:"data"`
}

// PutBlob streams size bytes from r into the blob kind/name of tenant
// (plugin modules, datasets), replacing any previous content atomically:
// readers see the old blob or the new one. Memory stays bounded whatever
// the size. It returns the content's sha256 (hex). It is goroutine-safe.
func (s *Store) PutBlob(ctx context.Context, tenant, kind, name string, r io.Reader, size int64) (string, error) {
	if err := checkNames([]string{"tenant", "kind", "name"}, tenant, kind, name); err != nil {
		return "", err
	}
	owner := tenantOwner(tenant)
	k := owner + "/blobs/" + kind + "/" + name
	if size < 0 || size > s.opts.MaxBlobSize {
		return "", wrap("put blob", k, fmt.Errorf("size %d, limit %d: %w", size, s.opts.MaxBlobSize, ErrTooLarge))
	}
	dataKey := owner + "/blobdata/" + kind + "/" + randHex(16)
	sum, err := s.putStream(ctx, owner, dataKey, r, size)
	if err != nil {
		return "", wrap("put blob", k, err)
	}
	var old blobDesc
	oldb, oerr := s.getSealed(ctx, owner, k, 64<<10)
	if oerr == nil {
		_ = json.Unmarshal(oldb, &old)
	}
	info := BlobInfo{Name: name, SHA256: sum, Size: size, Created: s.opts.Now().UTC(), Data: dataKey}
	b, _ := json.Marshal(blobDesc(info))
	if err := s.putSealed(ctx, owner, k, b, false); err != nil {
		s.remove(ctx, dataKey)
		return "", wrap("put blob", k, err)
	}
	if old.Data != "" && old.Data != dataKey && strings.HasPrefix(old.Data, owner+"/blobdata/") {
		s.remove(ctx, old.Data)
	}
	return sum, nil
}

// remove deletes an object that is no longer referenced, logging failure:
// an orphan wastes space but never changes what readers see.
func (s *Store) remove(ctx context.Context, key string) {
	ctx, cancel := s.ctx(context.WithoutCancel(ctx))
	defer cancel()
	if err := s.b.Delete(ctx, key); err != nil {
		s.log.Warn("modelstore: orphan left behind", "key", key, "err", err)
	}
}

// putStream encrypts r (size bytes) into key and returns the plaintext's
// sha256. The timeout scales with size: a large upload is not one quick
// call.
func (s *Store) putStream(ctx context.Context, owner, key string, r io.Reader, size int64) (string, error) {
	dk, err := s.dataKey(ctx, owner, true)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	sl, err := newSealer(dk, key, io.TeeReader(r, h), size)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout+time.Duration(size/(1<<20))*time.Second)
	defer cancel()
	if err := s.b.Put(ctx, key, sl, sealedSize(size), nil); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// StatBlob describes a blob without reading its content. It is
// goroutine-safe.
func (s *Store) StatBlob(ctx context.Context, tenant, kind, name string) (BlobInfo, error) {
	if err := checkNames([]string{"tenant", "kind", "name"}, tenant, kind, name); err != nil {
		return BlobInfo{}, err
	}
	owner := tenantOwner(tenant)
	k := owner + "/blobs/" + kind + "/" + name
	b, err := s.getSealed(ctx, owner, k, 64<<10)
	if err != nil {
		return BlobInfo{}, wrap("stat blob", k, err)
	}
	var d blobDesc
	err = json.Unmarshal(b, &d)
	info := BlobInfo(d)
	if err != nil || !strings.HasPrefix(info.Data, owner+"/blobdata/") {
		return BlobInfo{}, wrap("stat blob", k, fmt.Errorf("bad descriptor: %w", ErrCorrupt))
	}
	return info, nil
}

// OpenBlob streams a blob's content. The reader verifies the sha256 at the
// end and fails with ErrCorrupt instead of io.EOF on a mismatch, so a
// caller that reads to EOF has verified data. It is goroutine-safe; the
// reader is not.
func (s *Store) OpenBlob(ctx context.Context, tenant, kind, name string) (io.ReadCloser, BlobInfo, error) {
	info, err := s.StatBlob(ctx, tenant, kind, name)
	if err != nil {
		return nil, info, err
	}
	rc, err := s.openStream(ctx, tenantOwner(tenant), info.Data, info.SHA256, info.Size)
	return rc, info, wrap("open blob", info.Data, err)
}

// GetBlob reads a whole blob, verified. It is goroutine-safe.
func (s *Store) GetBlob(ctx context.Context, tenant, kind, name string) ([]byte, error) {
	rc, info, err := s.OpenBlob(ctx, tenant, kind, name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b := make([]byte, 0, info.Size)
	b, err = readAll(rc, b)
	return b, wrap("get blob", info.Data, err)
}

// ListBlobs describes every blob of kind. It is goroutine-safe.
func (s *Store) ListBlobs(ctx context.Context, tenant, kind string) ([]BlobInfo, error) {
	if err := checkNames([]string{"tenant", "kind"}, tenant, kind); err != nil {
		return nil, err
	}
	names, err := s.listNames(ctx, tenantOwner(tenant)+"/blobs/"+kind+"/", "", "", 0)
	if err != nil {
		return nil, err
	}
	out := make([]BlobInfo, 0, len(names))
	for _, n := range names {
		info, err := s.StatBlob(ctx, tenant, kind, n)
		if errors.Is(err, ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

// DeleteBlob removes a blob. It is goroutine-safe.
func (s *Store) DeleteBlob(ctx context.Context, tenant, kind, name string) error {
	info, err := s.StatBlob(ctx, tenant, kind, name)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	k := tenantOwner(tenant) + "/blobs/" + kind + "/" + name
	dctx, cancel := s.ctx(ctx)
	defer cancel()
	if err := s.b.Delete(dctx, k); err != nil {
		return wrap("delete blob", k, err)
	}
	s.remove(ctx, info.Data)
	return nil
}

// openStream opens an encrypted content object and verifies sha256 and
// size as it is read.
func (s *Store) openStream(ctx context.Context, owner, key, sum string, size int64) (io.ReadCloser, error) {
	dk, err := s.dataKey(ctx, owner, false)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout+time.Duration(size/(1<<20))*time.Second)
	r, a, err := s.b.Get(ctx, key)
	if err != nil {
		cancel()
		return nil, err
	}
	if a.Size != sealedSize(size) {
		r.Close()
		cancel()
		return nil, fmt.Errorf("stored size %d, want %d: %w", a.Size, sealedSize(size), ErrCorrupt)
	}
	o, err := newOpener(dk, key, r)
	if err != nil {
		r.Close()
		cancel()
		return nil, err
	}
	return &verifier{r: o, c: r, cancel: cancel, h: sha256.New(), want: sum, left: size, key: key}, nil
}

type verifier struct {
	r      io.Reader
	c      io.Closer
	cancel context.CancelFunc
	h      hash.Hash
	want   string
	left   int64
	key    string
	err    error
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.left -= int64(n)
	if v.left < 0 {
		v.err = wrap("read", v.key, fmt.Errorf("longer than recorded: %w", ErrCorrupt))
		return 0, v.err
	}
	if err == io.EOF {
		if v.left != 0 {
			err = fmt.Errorf("shorter than recorded: %w", ErrCorrupt)
		} else if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want {
			err = fmt.Errorf("sha256 %s, recorded %s: %w", got, v.want, ErrCorrupt)
		}
		if err != io.EOF {
			err = wrap("verify", v.key, err)
		}
	} else if err != nil {
		err = wrap("read", v.key, err)
	}
	if err != nil {
		v.err = err
	}
	return n, err
}

func (v *verifier) Close() error {
	v.cancel()
	return v.c.Close()
}

func readAll(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}
