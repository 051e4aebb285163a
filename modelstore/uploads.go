package modelstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aiaas/aiaas/modelstore/driver"
)

// Staged uploads carry artifacts too large for one request: the client
// sends the bytes in parts (straight to the backend through presigned URLs
// when the driver can presign, to the server otherwise), and a commit
// reads them back once, streaming, into a sealed version or blob.
//
// Key layout, beside the others (records.go):
//
//	uploads/T/ID/record       the Upload, sealed with tenant T's data key
//	uploads/T/ID/data         the staged bytes (presigning drivers: one PUT
//	                          or a completed multipart upload)
//	uploads/T/ID/part-NNNNN   a part the server received (other drivers)
//	uploads/T/ID/commit       the commit's claim, then its result
//
// The top-level "uploads/" prefix (not under tenants/T/) is what lets one
// S3 lifecycle rule expire every staged object: lifecycle filters are
// literal prefixes, without wildcards.
//
// Staged bytes are the tenant's plaintext until the commit seals them: on
// S3 the bucket's default encryption (SSE-KMS in the template) covers
// them at rest, on a folder the folder's permissions do. They live at most
// until the upload expires; [Store.SweepUploads] removes what is left, and
// on AWS a lifecycle rule on the prefix does too.

// Limits of staged uploads (S3's multipart rules).
const (
	MaxUploadParts = 10_000
	MinPartSize    = 5 << 20
	MaxPartSize    = 5 << 30
)

// ErrExpired: a staged upload whose time ran out.
var ErrExpired = errors.New("expired")

// UploadPart names one part a client PUT: its number and the ETag the
// backend answered (needed to complete an S3 multipart upload).
type UploadPart = driver.Part

// Upload is a staged upload's record.
type Upload struct {
	ID       string    `json:"id"`
	Kind     string    `json:"kind"` // "models", "datasets"
	Name     string    `json:"name"`
	Size     int64     `json:"size"`
	SHA256   string    `json:"sha256"`
	PartSize int64     `json:"part_size"`
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires"`
	// Direct: the client PUTs to the backend through presigned URLs;
	// otherwise the server receives the parts ([Store.PutUploadPart]).
	Direct bool `json:"direct"`
	// Multipart is the backend's multipart upload id, "" for one PUT.
	Multipart string `json:"multipart,omitempty"`
	// Secret signs the server's own part URLs; never shown to anyone.
	Secret []byte `json:"secret,omitempty"`
	// Params is what the caller keeps for the commit (JSON).
	Params json.RawMessage `json:"params,omitempty"`
}

// Parts is the number of parts.
func (u *Upload) Parts() int {
	if u.Size == 0 || u.PartSize <= 0 {
		return 1
	}
	return int((u.Size + u.PartSize - 1) / u.PartSize)
}

// PartLen is the exact size of part n (1-based), or -1 for no such part.
func (u *Upload) PartLen(n int) int64 {
	if n < 1 || n > u.Parts() {
		return -1
	}
	if n < u.Parts() {
		return u.PartSize
	}
	return u.Size - int64(n-1)*u.PartSize
}

func uploadDir(tenant, id string) string { return "uploads/" + tenant + "/" + id + "/" }

func validUploadID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil && strings.ToLower(id) == id
}

// CreateUpload records a new staged upload of u.Size bytes for
// u.Kind/u.Name and returns it with its ID, its mode (Direct when the
// driver presigns) and, for a multipart upload, the backend's upload id.
// u.Expires must lie ahead. It is goroutine-safe.
func (s *Store) CreateUpload(ctx context.Context, tenant string, u Upload) (Upload, error) {
	if err := checkNames([]string{"tenant", "kind", "name"}, tenant, u.Kind, u.Name); err != nil {
		return Upload{}, err
	}
	limit := s.opts.MaxBlobSize
	if u.Kind == "models" {
		limit = s.opts.MaxArtifactSize
	}
	now := s.opts.Now()
	switch {
	case u.Size < 1 || u.Size > limit:
		return Upload{}, fmt.Errorf("modelstore: create upload: size %d out of 1..%d: %w", u.Size, limit, ErrTooLarge)
	case len(u.SHA256) != 64 || !validHex(u.SHA256):
		return Upload{}, fmt.Errorf("modelstore: create upload: sha256 %q is not 64 lowercase hex digits: %w", u.SHA256, ErrInvalidName)
	case u.PartSize < MinPartSize && u.PartSize < u.Size, u.PartSize > MaxPartSize:
		return Upload{}, fmt.Errorf("modelstore: create upload: part size %d out of %d..%d: %w", u.PartSize, MinPartSize, MaxPartSize, ErrInvalidName)
	case !u.Expires.After(now):
		return Upload{}, fmt.Errorf("modelstore: create upload: expiry %v is not ahead: %w", u.Expires, ErrInvalidName)
	}
	if u.PartSize > u.Size {
		u.PartSize = u.Size
	}
	if u.Parts() > MaxUploadParts {
		return Upload{}, fmt.Errorf("modelstore: create upload: %d parts, limit %d: %w", u.Parts(), MaxUploadParts, ErrTooLarge)
	}
	u.ID, u.Created, u.Multipart, u.Secret = randHex(16), now.UTC(), "", nil
	u.Expires = u.Expires.UTC()
	dir := uploadDir(tenant, u.ID)
	_, u.Direct = s.b.(driver.Presigner)
	if u.Direct && u.Parts() > 1 {
		cctx, cancel := s.ctx(ctx)
		id, err := s.b.(driver.Presigner).NewMultipart(cctx, dir+"data")
		cancel()
		if err != nil {
			return Upload{}, wrap("create upload", dir+"data", err)
		}
		u.Multipart = id
	}
	if !u.Direct {
		u.Secret = make([]byte, 32)
		if _, err := rand.Read(u.Secret); err != nil {
			return Upload{}, err
		}
	}
	b, _ := json.Marshal(u)
	if err := s.putSealed(ctx, tenantOwner(tenant), dir+"record", b, true); err != nil {
		s.abortMultipart(ctx, dir, u.Multipart)
		return Upload{}, wrap("create upload", dir+"record", err)
	}
	return u, nil
}

func validHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Upload reads a staged upload's record, expired or not: an unknown id,
// another tenant's, or one already removed is [ErrNotFound]. It is
// goroutine-safe.
func (s *Store) Upload(ctx context.Context, tenant, id string) (Upload, error) {
	if err := checkNames([]string{"tenant"}, tenant); err != nil {
		return Upload{}, err
	}
	if !validUploadID(id) {
		return Upload{}, fmt.Errorf("modelstore: upload %q: %w", truncName(id), ErrNotFound)
	}
	k := uploadDir(tenant, id) + "record"
	b, err := s.getSealed(ctx, tenantOwner(tenant), k, 64<<10)
	if err != nil {
		return Upload{}, wrap("read upload", k, err)
	}
	var u Upload
	if err := json.Unmarshal(b, &u); err != nil || u.ID != id {
		return Upload{}, wrap("read upload", k, fmt.Errorf("bad record: %w", ErrCorrupt))
	}
	return u, nil
}

func truncName(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// PresignUploadPart returns the URL through which the client PUTs part n
// (1-based) of a Direct upload, valid for expiry. It is goroutine-safe.
func (s *Store) PresignUploadPart(ctx context.Context, tenant string, u Upload, n int, expiry time.Duration) (string, error) {
	p, ok := s.b.(driver.Presigner)
	if !ok || !u.Direct {
		return "", fmt.Errorf("modelstore: presign upload %s: the backend cannot presign: %w", u.ID, ErrInvalidName)
	}
	if u.PartLen(n) < 0 {
		return "", fmt.Errorf("modelstore: presign upload %s: no part %d: %w", u.ID, n, ErrNotFound)
	}
	key := uploadDir(tenant, u.ID) + "data"
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	var url string
	var err error
	if u.Multipart == "" {
		url, err = p.PresignPut(ctx, key, u.Size, expiry)
	} else {
		url, err = p.PresignPart(ctx, key, u.Multipart, n, u.PartLen(n), expiry)
	}
	return url, wrap("presign", key, err)
}

func partKey(tenant, id string, n int) string {
	return fmt.Sprintf("%spart-%05d", uploadDir(tenant, id), n)
}

// PutUploadPart stores part n of an upload the server receives itself:
// exactly u.PartLen(n) bytes from r, or an error (a reader that yields
// more or fewer fails, and nothing is stored). A part may be sent again;
// the last one wins. It is goroutine-safe.
func (s *Store) PutUploadPart(ctx context.Context, tenant string, u Upload, n int, r io.Reader) error {
	size := u.PartLen(n)
	if size < 0 {
		return fmt.Errorf("modelstore: upload %s: no part %d: %w", u.ID, n, ErrNotFound)
	}
	k := partKey(tenant, u.ID, n)
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout+time.Duration(size/(1<<20))*time.Second)
	defer cancel()
	return wrap("put part", k, s.b.Put(ctx, k, r, size, nil))
}

// ClaimUpload makes one commit of an upload the only one: of concurrent
// claims exactly one succeeds; the others, and any claim after a finished
// commit, get [ErrExists] with the finished commit's result (nil while it
// runs). It is goroutine-safe.
func (s *Store) ClaimUpload(ctx context.Context, tenant string, u Upload) ([]byte, error) {
	k := uploadDir(tenant, u.ID) + "commit"
	err := s.putSealed(ctx, tenantOwner(tenant), k, []byte("{}"), true)
	if errors.Is(err, driver.ErrExists) {
		res, gerr := s.getSealed(ctx, tenantOwner(tenant), k, 64<<10)
		if gerr != nil || string(res) == "{}" {
			res = nil
		}
		return res, wrap("claim upload", k, err)
	}
	return nil, wrap("claim upload", k, err)
}

// ReleaseUpload gives up a claim after a failed commit, so the client
// may fix what failed and commit again. It is goroutine-safe.
func (s *Store) ReleaseUpload(ctx context.Context, tenant string, u Upload) {
	s.remove(ctx, uploadDir(tenant, u.ID)+"commit")
}

// OpenUpload returns the staged bytes of u as one stream, after checking
// that exactly u.Size bytes are staged: for a multipart upload it first
// completes it with parts (the number and ETag of each, in order). The
// caller closes the stream. It is goroutine-safe.
func (s *Store) OpenUpload(ctx context.Context, tenant string, u Upload, parts []UploadPart) (io.ReadCloser, error) {
	dir := uploadDir(tenant, u.ID)
	if !u.Direct {
		var keys []string
		for n := 1; n <= u.Parts(); n++ {
			k := partKey(tenant, u.ID, n)
			sctx, cancel := s.ctx(ctx)
			a, err := s.b.Stat(sctx, k)
			cancel()
			if errors.Is(err, driver.ErrNotFound) {
				return nil, fmt.Errorf("modelstore: upload %s: part %d was never received: %w", u.ID, n, ErrIncomplete)
			}
			if err != nil {
				return nil, wrap("open upload", k, err)
			}
			if a.Size != u.PartLen(n) {
				return nil, fmt.Errorf("modelstore: upload %s: part %d has %d bytes, want %d: %w", u.ID, n, a.Size, u.PartLen(n), ErrIncomplete)
			}
			keys = append(keys, k)
		}
		return &partsReader{ctx: ctx, s: s, keys: keys}, nil
	}
	key := dir + "data"
	if u.Multipart != "" {
		if len(parts) != u.Parts() {
			return nil, fmt.Errorf("modelstore: upload %s: %d parts named, want %d (number and etag of each): %w", u.ID, len(parts), u.Parts(), ErrIncomplete)
		}
		for i, p := range parts {
			if p.Number != i+1 || p.ETag == "" || len(p.ETag) > 256 {
				return nil, fmt.Errorf("modelstore: upload %s: parts[%d] must be number %d with its etag: %w", u.ID, i, i+1, ErrIncomplete)
			}
		}
		cctx, cancel := context.WithTimeout(ctx, s.opts.Timeout+time.Duration(u.Size/(256<<20))*time.Second)
		err := s.b.(driver.Presigner).CompleteMultipart(cctx, key, u.Multipart, parts)
		cancel()
		switch {
		case errors.Is(err, driver.ErrNotFound):
			// Completed by an earlier commit that failed later on: the
			// data object says whether it is there.
		case errors.Is(err, driver.ErrInvalidParts):
			return nil, fmt.Errorf("modelstore: upload %s: %w: %v", u.ID, ErrIncomplete, err)
		case err != nil:
			return nil, wrap("complete upload", key, err)
		}
	}
	ctx2, cancel := s.ctx(ctx)
	a, err := s.b.Stat(ctx2, key)
	cancel()
	if errors.Is(err, driver.ErrNotFound) {
		return nil, fmt.Errorf("modelstore: upload %s: nothing was uploaded: %w", u.ID, ErrIncomplete)
	}
	if err != nil {
		return nil, wrap("open upload", key, err)
	}
	if a.Size != u.Size {
		return nil, fmt.Errorf("modelstore: upload %s: %d bytes uploaded, %d announced: %w", u.ID, a.Size, u.Size, ErrIncomplete)
	}
	r, _, err := s.b.Get(ctx, key)
	if err != nil {
		return nil, wrap("open upload", key, err)
	}
	return r, nil
}

// ErrIncomplete: the staged parts do not make the announced upload.
var ErrIncomplete = errors.New("upload incomplete")

// partsReader reads the parts one after the other, opening each when the
// previous one ends.
type partsReader struct {
	ctx  context.Context
	s    *Store
	keys []string
	cur  io.ReadCloser
}

func (p *partsReader) Read(b []byte) (int, error) {
	for {
		if p.cur == nil {
			if len(p.keys) == 0 {
				return 0, io.EOF
			}
			r, _, err := p.s.b.Get(p.ctx, p.keys[0])
			if err != nil {
				return 0, wrap("read part", p.keys[0], err)
			}
			p.cur, p.keys = r, p.keys[1:]
		}
		n, err := p.cur.Read(b)
		if err == io.EOF {
			p.cur.Close()
			p.cur = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (p *partsReader) Close() error {
	if p.cur != nil {
		return p.cur.Close()
	}
	return nil
}

// FinishUpload records a commit's result in its claim and removes the
// staged bytes; the record and the claim stay until the upload expires,
// so a repeated commit learns what the first one published. It is
// goroutine-safe.
func (s *Store) FinishUpload(ctx context.Context, tenant string, u Upload, result []byte) error {
	dir := uploadDir(tenant, u.ID)
	if err := s.putSealed(ctx, tenantOwner(tenant), dir+"commit", result, false); err != nil {
		return wrap("finish upload", dir+"commit", err)
	}
	s.removeStaged(ctx, tenant, u, false)
	return nil
}

// DeleteUpload aborts an upload: its staged bytes, any multipart upload
// and its record go. It is goroutine-safe.
func (s *Store) DeleteUpload(ctx context.Context, tenant string, u Upload) error {
	return s.removeStaged(ctx, tenant, u, true)
}

func (s *Store) removeStaged(ctx context.Context, tenant string, u Upload, all bool) error {
	dir := uploadDir(tenant, u.ID)
	s.abortMultipart(ctx, dir, u.Multipart)
	lctx, cancel := s.ctx(ctx)
	list, err := s.b.List(lctx, dir, nil)
	cancel()
	if err != nil {
		return wrap("delete upload", dir, err)
	}
	record := false
	for _, a := range list {
		switch a.Key {
		case dir + "record":
			record = true
			continue
		case dir + "commit":
			if !all {
				continue
			}
		}
		s.remove(ctx, a.Key)
	}
	if all && record {
		// The record last: while it exists a sweep finds the rest.
		dctx, cancel := s.ctx(ctx)
		defer cancel()
		return wrap("delete upload", dir+"record", s.b.Delete(dctx, dir+"record"))
	}
	return nil
}

func (s *Store) abortMultipart(ctx context.Context, dir, id string) {
	p, ok := s.b.(driver.Presigner)
	if !ok || id == "" {
		return
	}
	actx, cancel := s.ctx(context.WithoutCancel(ctx))
	defer cancel()
	if err := p.AbortMultipart(actx, dir+"data", id); err != nil {
		s.log.Warn("modelstore: multipart upload left behind", "key", dir+"data", "err", err)
	}
}

// SweepUploads removes the uploads of tenant ("" for every tenant) that
// expired before now — their staged bytes, multipart uploads and records —
// and returns how many. An upload directory without a record (a create
// that died half-way) goes once its objects are a day old. It is
// goroutine-safe.
func (s *Store) SweepUploads(ctx context.Context, tenant string, now time.Time) (int, error) {
	tenants := []string{tenant}
	if tenant == "" {
		lctx, cancel := s.ctx(ctx)
		list, err := s.b.List(lctx, "uploads/", &driver.ListOptions{Delimiter: "/"})
		cancel()
		if err != nil {
			return 0, wrap("sweep uploads", "uploads/", err)
		}
		tenants = tenants[:0]
		for _, a := range list {
			if t := trimDir(a.Key, "uploads/"); t != "" {
				tenants = append(tenants, t)
			}
		}
	}
	n := 0
	for _, t := range tenants {
		if err := checkNames([]string{"tenant"}, t); err != nil {
			return n, err
		}
		base := "uploads/" + t + "/"
		lctx, cancel := s.ctx(ctx)
		dirs, err := s.b.List(lctx, base, &driver.ListOptions{Delimiter: "/"})
		cancel()
		if err != nil {
			return n, wrap("sweep uploads", base, err)
		}
		for _, d := range dirs {
			id := trimDir(d.Key, base)
			if !validUploadID(id) {
				continue
			}
			u, err := s.Upload(ctx, t, id)
			switch {
			case errors.Is(err, ErrNotFound):
				if s.sweepOrphan(ctx, base+id+"/", now.Add(-24*time.Hour)) {
					n++
				}
				continue
			case err != nil:
				s.log.Warn("modelstore: sweep uploads", "upload", id, "err", err)
				continue
			case !u.Expires.Before(now):
				continue
			}
			if err := s.DeleteUpload(ctx, t, u); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

func (s *Store) sweepOrphan(ctx context.Context, dir string, cutoff time.Time) bool {
	lctx, cancel := s.ctx(ctx)
	list, err := s.b.List(lctx, dir, nil)
	cancel()
	if err != nil || len(list) == 0 {
		return false
	}
	for _, a := range list {
		if !a.ModTime.Before(cutoff) {
			return false
		}
	}
	for _, a := range list {
		s.remove(ctx, a.Key)
	}
	return true
}
