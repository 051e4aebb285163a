package platform

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aiaas/aiaas/internal/safetensors"
	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/nn/graph"
	"github.com/aiaas/aiaas/platform/internal/registry"
	"github.com/aiaas/aiaas/platform/training"
)

// Staged uploads: artifacts and datasets too large for one request
// (6 MiB on Lambda) go in parts straight to the store — S3 through
// presigned URLs, a local folder through this server's own signed part
// route — and a commit reads them back once, streaming, verifies their
// size and sha256, seals them under the tenant's data key and publishes
// them (docs/api.md, "Large uploads").

// UploadStore is what staged uploads need from storage; modelstore.Store
// provides it. A Store without it answers the upload routes with 501.
type UploadStore interface {
	CreateUpload(ctx context.Context, tenant string, u modelstore.Upload) (modelstore.Upload, error)
	Upload(ctx context.Context, tenant, id string) (modelstore.Upload, error)
	PresignUploadPart(ctx context.Context, tenant string, u modelstore.Upload, n int, expiry time.Duration) (string, error)
	PutUploadPart(ctx context.Context, tenant string, u modelstore.Upload, n int, r io.Reader) error
	ClaimUpload(ctx context.Context, tenant string, u modelstore.Upload) ([]byte, error)
	ReleaseUpload(ctx context.Context, tenant string, u modelstore.Upload)
	OpenUpload(ctx context.Context, tenant string, u modelstore.Upload, parts []modelstore.UploadPart) (io.ReadCloser, error)
	FinishUpload(ctx context.Context, tenant string, u modelstore.Upload, result []byte) error
	DeleteUpload(ctx context.Context, tenant string, u modelstore.Upload) error
	SweepUploads(ctx context.Context, tenant string, now time.Time) (int, error)
}

const (
	// uploadPartSize is the default part: an upload up to it is one PUT,
	// a larger one a multipart upload of parts this size (2 GiB: 32).
	uploadPartSize = 64 << 20
	// maxServerPart bounds a part the server receives itself (folder
	// stores); S3 parts may be up to 5 GiB.
	maxServerPart = 256 << 20
	// uploadTTL is how long an upload's URLs and record live. On Lambda a
	// presigned URL also dies with the role session that signed it.
	uploadTTL = 2 * time.Hour
)

// describeWhole: an artifact up to this size is read whole at commit and
// checked and measured as a one-request publish is; a larger dense
// artifact is checked from its header and its weights as they stream past
// (no latency measurement), so memory stays bounded. A variable for tests.
var describeWhole int64 = 64 << 20

// uploadNow is the clock of upload expiry (tests move it).
var uploadNow = time.Now

func (s *Server) uploadStore() (UploadStore, error) {
	us, ok := s.store.(UploadStore)
	if !ok {
		return nil, httpErr(http.StatusNotImplemented, "this server's store takes no staged uploads")
	}
	return us, nil
}

// createUpload is the body of POST …/uploads.
type createUpload struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// ContentType "application/onnx" marks an ONNX model (models only).
	ContentType string `json:"content_type,omitempty"`
	// PartSize overrides the part size (5 MiB at least).
	PartSize int64 `json:"part_size,omitempty"`
	// Task checks a dataset as PUT /v1/datasets/{name}?task= does.
	Task string `json:"task,omitempty"`
}

// uploadParams is what the upload record keeps for the commit.
type uploadParams struct {
	ContentType string `json:"content_type,omitempty"`
	Task        string `json:"task,omitempty"`
}

// decodeCreateUpload parses and checks an untrusted create body for kind
// ("models" or "datasets") with the size limit limit.
func decodeCreateUpload(body []byte, kind string, limit int64) (createUpload, error) {
	var c createUpload
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, httpErr(http.StatusBadRequest, "invalid JSON body: %v; send {\"size\": BYTES, \"sha256\": \"HEX\"}", err)
	}
	if dec.More() {
		return c, httpErr(http.StatusBadRequest, "invalid JSON body: data after the object")
	}
	switch {
	case c.Size < 1:
		return c, httpErr(http.StatusBadRequest, "\"size\" must be the upload's size in bytes (1 or more), got %d", c.Size)
	case c.Size > limit:
		return c, httpErr(http.StatusRequestEntityTooLarge, "\"size\" %d is over the limit of %d bytes", c.Size, limit)
	case len(c.SHA256) != 64 || !isLowerHex(c.SHA256):
		return c, httpErr(http.StatusBadRequest, "\"sha256\" must be the upload's SHA-256 as 64 lowercase hex digits")
	case c.PartSize != 0 && (c.PartSize < modelstore.MinPartSize || c.PartSize > modelstore.MaxPartSize):
		return c, httpErr(http.StatusBadRequest, "\"part_size\" must be between %d and %d bytes, got %d", modelstore.MinPartSize, modelstore.MaxPartSize, c.PartSize)
	}
	switch kind {
	case "models":
		if c.Task != "" {
			return c, httpErr(http.StatusBadRequest, "\"task\" is for datasets")
		}
		switch c.ContentType {
		case "", "application/octet-stream", "application/onnx":
		default:
			return c, httpErr(http.StatusBadRequest, "\"content_type\" must be application/octet-stream (a safetensors artifact) or application/onnx, got %q", truncate(c.ContentType, 64))
		}
	case "datasets":
		if c.ContentType != "" {
			return c, httpErr(http.StatusBadRequest, "\"content_type\" is for models")
		}
		if c.Task != "" && c.Task != "classification" && c.Task != "regression" {
			return c, httpErr(http.StatusBadRequest, "\"task\" must be classification or regression, got %q", truncate(c.Task, 32))
		}
	}
	return c, nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// commitUpload is the body of POST …/uploads/{id}/commit: the ETag of
// each part of a multipart upload (S3 answers each part's PUT with one).
type commitUpload struct {
	Parts []modelstore.UploadPart `json:"parts"`
}

// decodeCommitUpload parses an untrusted commit body; an empty body is
// no parts.
func decodeCommitUpload(body []byte) ([]modelstore.UploadPart, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	var raw struct {
		Parts []struct {
			Number int    `json:"number"`
			ETag   string `json:"etag"`
		} `json:"parts"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, httpErr(http.StatusBadRequest, "invalid JSON body: %v; send {\"parts\": [{\"number\": 1, \"etag\": \"…\"}, …]}", err)
	}
	if dec.More() {
		return nil, httpErr(http.StatusBadRequest, "invalid JSON body: data after the object")
	}
	if len(raw.Parts) > modelstore.MaxUploadParts {
		return nil, httpErr(http.StatusBadRequest, "%d parts, at most %d", len(raw.Parts), modelstore.MaxUploadParts)
	}
	out := make([]modelstore.UploadPart, len(raw.Parts))
	for i, p := range raw.Parts {
		if p.Number != i+1 {
			return nil, httpErr(http.StatusBadRequest, "parts[%d] has number %d: list every part, in order, from 1", i, p.Number)
		}
		if p.ETag == "" || len(p.ETag) > 256 {
			return nil, httpErr(http.StatusBadRequest, "parts[%d] needs the \"etag\" its PUT answered with", i)
		}
		out[i] = modelstore.UploadPart{Number: p.Number, ETag: p.ETag}
	}
	return out, nil
}

// uploadKind maps a route's path value to the store's kind.
func uploadTarget(r *http.Request) (kind, name string, err error) {
	if name = r.PathValue("model"); name != "" {
		return "models", name, checkName("model", name)
	}
	name = r.PathValue("dataset")
	if err := checkName("dataset", name); err != nil {
		return "", "", err
	}
	if name == training.MNIST {
		return "", "", httpErr(http.StatusBadRequest, "%q is reserved for the built-in MNIST data", name)
	}
	return "datasets", name, nil
}

type partURL struct {
	Number int    `json:"number"`
	URL    string `json:"url"`
	Size   int64  `json:"size"`
}

func (s *Server) handleCreateUpload(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	kind, name, err := uploadTarget(r)
	if err != nil {
		return err
	}
	us, err := s.uploadStore()
	if err != nil {
		return err
	}
	body, err := readAll(r)
	if err != nil {
		return err
	}
	limit := s.cfg.MaxArtifactBytes
	if kind == "datasets" {
		limit = maxDatasetBytes
	}
	c, err := decodeCreateUpload(body, kind, limit)
	if err != nil {
		return err
	}
	// Expired uploads of this tenant go now: on Lambda nothing else runs
	// between requests (the bucket's lifecycle rule is the backstop).
	if n, err := us.SweepUploads(r.Context(), p.Tenant, uploadNow()); err != nil {
		s.log.Warn("sweep of expired uploads failed", "tenant", p.Tenant, "err", err)
	} else if n > 0 {
		s.log.Info("expired uploads removed", "tenant", p.Tenant, "n", n)
	}
	params, _ := json.Marshal(uploadParams{ContentType: c.ContentType, Task: c.Task})
	u := modelstore.Upload{Kind: kind, Name: name, Size: c.Size, SHA256: c.SHA256,
		PartSize: c.PartSize, Expires: uploadNow().Add(uploadTTL), Params: params}
	if u.PartSize == 0 {
		u.PartSize = uploadPartSize
	}
	u, err = us.CreateUpload(r.Context(), p.Tenant, u)
	if err != nil {
		return err
	}
	if !u.Direct && u.PartSize > maxServerPart {
		_ = us.DeleteUpload(r.Context(), p.Tenant, u)
		return httpErr(http.StatusBadRequest, "\"part_size\" is at most %d bytes on this store", maxServerPart)
	}
	base := baseURL(r)
	parts := make([]partURL, u.Parts())
	for i := range parts {
		n := i + 1
		parts[i] = partURL{Number: n, Size: u.PartLen(n)}
		if u.Direct {
			if parts[i].URL, err = us.PresignUploadPart(r.Context(), p.Tenant, u, n, time.Until(u.Expires)); err != nil {
				_ = us.DeleteUpload(r.Context(), p.Tenant, u)
				return err
			}
			continue
		}
		exp := u.Expires.Unix()
		parts[i].URL = fmt.Sprintf("%s/v1/uploads/%s/parts/%d?tenant=%s&expires=%d&sig=%s", base, u.ID, n, p.Tenant, exp, partSig(u.Secret, p.Tenant, u.ID, n, exp))
	}
	dir := fmt.Sprintf("/v1/%s/%s/uploads/%s", kind, name, u.ID)
	setAuditObject(r, strings.TrimPrefix(dir, "/v1/"))
	writeJSON(w, http.StatusCreated, map[string]any{
		"id": u.ID, kind[:len(kind)-1]: name, "size": u.Size, "sha256": u.SHA256,
		"expires_at": u.Expires, "part_size": u.PartSize, "method": http.MethodPut, "parts": parts,
		"multipart": u.Multipart != "", "commit_url": base + dir + "/commit", "abort_url": base + dir,
	})
	return nil
}

// baseURL is the scheme and host the client reached this server at.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if fp := r.Header.Get("X-Forwarded-Proto"); fp == "https" || fp == "http" {
		scheme = fp
	}
	return scheme + "://" + r.Host
}

// partSig signs one part URL with the upload's own secret, which lives
// only in its sealed record: the URL is a bearer credential for that part
// of that upload until it expires, and for nothing else.
func partSig(secret []byte, tenant, id string, n int, expires int64) string {
	m := hmac.New(sha256.New, secret)
	fmt.Fprintf(m, "PUT\n%s\n%s\n%d\n%d", tenant, id, n, expires)
	return hex.EncodeToString(m.Sum(nil))
}

// handleUploadPart receives one part of an upload on a store that cannot
// presign: no API key, the signed URL is the credential.
func (s *Server) handleUploadPart(w http.ResponseWriter, r *http.Request) error {
	us, err := s.uploadStore()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	tenant, id := q.Get("tenant"), r.PathValue("id")
	n, nerr := strconv.Atoi(r.PathValue("n"))
	exp, eerr := strconv.ParseInt(q.Get("expires"), 10, 64)
	sig, serr := hex.DecodeString(q.Get("sig"))
	if nerr != nil || eerr != nil || serr != nil || len(sig) != sha256.Size || !modelstore.ValidName(tenant) || n < 1 || n > modelstore.MaxUploadParts {
		return httpErr(http.StatusForbidden, "not a valid signed part URL: use the URLs POST …/uploads returned, unchanged")
	}
	u, err := us.Upload(r.Context(), tenant, id)
	if err != nil {
		return notFoundAs(err, "upload %s not found (aborted, committed and expired, or never created)", truncate(id, 40))
	}
	want, _ := hex.DecodeString(partSig(u.Secret, tenant, u.ID, n, exp))
	if u.Direct || len(u.Secret) == 0 || !hmac.Equal(sig, want) {
		return httpErr(http.StatusForbidden, "the part URL's signature does not match: use the URLs POST …/uploads returned, unchanged")
	}
	if now := uploadNow(); now.Unix() > exp || now.After(u.Expires) {
		return httpErr(http.StatusForbidden, "this part URL expired at %s: start a new upload", time.Unix(exp, 0).UTC().Format(time.RFC3339))
	}
	size := u.PartLen(n)
	if size < 0 {
		return notFound("upload %s has %d parts, not %d", u.ID, u.Parts(), n)
	}
	if r.ContentLength >= 0 && r.ContentLength != size {
		return httpErr(http.StatusBadRequest, "part %d must be exactly %d bytes, the request says %d", n, size, r.ContentLength)
	}
	ex := &exactReader{r: r.Body, left: size}
	if err := us.PutUploadPart(r.Context(), tenant, u, n, ex); err != nil {
		if ex.err != nil {
			return httpErr(http.StatusBadRequest, "part %d must be exactly %d bytes: %v", n, size, ex.err)
		}
		return bodyErr(err)
	}
	etag := fmt.Sprintf("%q", fmt.Sprintf("%d-%d", n, size))
	w.Header().Set("ETag", etag)
	writeJSON(w, http.StatusOK, map[string]any{"number": n, "size": size, "etag": etag})
	return nil
}

// exactReader yields exactly left bytes of r, and fails when r has fewer
// or more.
type exactReader struct {
	r    io.Reader
	left int64
	err  error
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if e.left == 0 {
		var one [1]byte
		if n, _ := io.ReadFull(e.r, one[:]); n > 0 {
			e.err = errors.New("the body is longer")
			return 0, e.err
		}
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		e.err = fmt.Errorf("the body ended %d bytes short", e.left)
		return n, e.err
	}
	if err == io.EOF {
		err = nil
	}
	return n, err
}

// target is the upload a commit or abort names, with its store.
type target struct {
	us         UploadStore
	u          modelstore.Upload
	kind, name string
}

// ownUpload resolves the route's upload: its target and the upload id,
// refusing an id that is another target's (or another tenant's: the store
// keys them apart) exactly as a missing one.
func (s *Server) ownUpload(r *http.Request, tenant string) (target, error) {
	kind, name, err := uploadTarget(r)
	if err != nil {
		return target{}, err
	}
	us, err := s.uploadStore()
	if err != nil {
		return target{}, err
	}
	id := r.PathValue("id")
	u, err := us.Upload(r.Context(), tenant, id)
	if err == nil && (u.Kind != kind || u.Name != name) {
		err = modelstore.ErrNotFound
	}
	if err != nil {
		return target{}, notFoundAs(err, "upload %s of %s %q not found", truncate(id, 40), kind[:len(kind)-1], name)
	}
	return target{us, u, kind, name}, nil
}

func (s *Server) handleCommitUpload(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	t, err := s.ownUpload(r, p.Tenant)
	if err != nil {
		return err
	}
	us, u, kind, name := t.us, t.u, t.kind, t.name
	// 10,000 parts with their ETags take under 1 MiB.
	body, err := io.ReadAll(io.LimitReader(r.Body, 2<<20))
	if err != nil {
		return bodyErr(err)
	}
	parts, err := decodeCommitUpload(body)
	if err != nil {
		return err
	}
	if prev, err := us.ClaimUpload(r.Context(), p.Tenant, u); err != nil {
		if errors.Is(err, modelstore.ErrExists) {
			var done struct {
				Object string         `json:"object"`
				Result map[string]any `json:"result"`
			}
			if json.Unmarshal(prev, &done) == nil && done.Result != nil {
				// Committed before (its answer may have been lost): the same
				// answer again, 200 as nothing new was made.
				setAuditObject(r, done.Object)
				writeJSON(w, http.StatusOK, done.Result)
				return nil
			}
			return httpErr(http.StatusConflict, "upload %s is being committed by another request; retry shortly", u.ID)
		}
		return err
	}
	if uploadNow().After(u.Expires) {
		us.ReleaseUpload(r.Context(), p.Tenant, u)
		return httpErr(http.StatusGone, "upload %s expired at %s: start a new one", u.ID, u.Expires.Format(time.RFC3339))
	}
	var params uploadParams
	_ = json.Unmarshal(u.Params, &params)
	res, object, err := func() (map[string]any, string, error) {
		rc, err := us.OpenUpload(r.Context(), p.Tenant, u, parts)
		if err != nil {
			return nil, "", err
		}
		defer rc.Close()
		if kind == "datasets" {
			body, err := readVerified(rc, u)
			if err != nil {
				return nil, "", err
			}
			res, err := s.putDataset(r.Context(), p.Tenant, name, params.Task, body)
			return res, "datasets/" + name, err
		}
		info, vm, err := s.commitModel(r.Context(), p.Tenant, name, u, params, rc)
		if err != nil {
			return nil, "", err
		}
		return map[string]any{"model": name, "version": info.Version, "sha256": info.SHA256, "size": info.Size,
			"inputs": vm.Inputs, "outputs": vm.Outputs}, fmt.Sprintf("models/%s/versions/%d", name, info.Version), nil
	}()
	if err != nil {
		us.ReleaseUpload(r.Context(), p.Tenant, u)
		return err
	}
	done, _ := json.Marshal(map[string]any{"object": object, "result": res})
	if err := us.FinishUpload(r.Context(), p.Tenant, u, done); err != nil {
		s.log.Warn("committed upload not marked finished", "upload", u.ID, "err", err)
	}
	setAuditObject(r, object)
	writeJSON(w, http.StatusCreated, res)
	return nil
}

func (s *Server) handleAbortUpload(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	t, err := s.ownUpload(r, p.Tenant)
	if err != nil {
		return err
	}
	us, u, kind, name := t.us, t.u, t.kind, t.name
	if err := us.DeleteUpload(r.Context(), p.Tenant, u); err != nil {
		return err
	}
	setAuditObject(r, fmt.Sprintf("%s/%s/uploads/%s", kind, name, u.ID))
	writeJSON(w, http.StatusOK, map[string]any{"id": u.ID, "aborted": true})
	return nil
}

// readVerified reads a whole staged upload (bounded by its announced
// size, already within limits) and checks its sha256.
func readVerified(r io.Reader, u modelstore.Upload) ([]byte, error) {
	return io.ReadAll(newVerifier(r, u.Size, matchSHA256(u.SHA256)))
}

// matchSHA256 is a verifier's end check of a staged upload: the bytes are
// what the upload announced.
func matchSHA256(want string) func(sum []byte) error {
	return func(sum []byte) error {
		if got := hex.EncodeToString(sum); got != want {
			return errSHA256(got, want)
		}
		return nil
	}
}

// errSHA256 is a staged upload that is not what was announced.
func errSHA256(got, want string) error {
	return httpErr(http.StatusBadRequest, "the uploaded bytes have sha256 %s, the upload announced %s: nothing was published", got, want)
}

// verifier passes through exactly size bytes, hashing them, and fails
// the read that would deliver the last of them when end refuses them (a
// staged upload's sha256 that is not the one announced, a one-request
// body with bytes after its artifact) — so a consumer (the sealer) never
// sees the end of a wrong stream and nothing is published. From byte
// floatsFrom on (when > 0) it also checks that the bytes are finite
// little-endian float32s.
type verifier struct {
	r          io.Reader
	size, n    int64
	end        func(sum []byte) error
	h          hash.Hash
	floatsFrom int64
	carry      [4]byte
	k          int
	err        error
}

func newVerifier(r io.Reader, size int64, end func(sum []byte) error) *verifier {
	return &verifier{r: r, size: size, end: end, h: sha256.New()}
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	if v.n == v.size {
		return 0, io.EOF
	}
	if rem := v.size - v.n; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	if v.floatsFrom > 0 {
		if ferr := v.checkFloats(p[:n], v.n); ferr != nil {
			v.err = ferr
			return 0, ferr
		}
	}
	v.n += int64(n)
	if v.n == v.size {
		if v.end != nil {
			if v.err = v.end(v.h.Sum(nil)); v.err != nil {
				return 0, v.err
			}
		}
		return n, nil
	}
	switch {
	case err == io.EOF:
		v.err = httpErr(http.StatusBadRequest, "the artifact is cut short: it ended after %d of the %d bytes its header declares", v.n, v.size)
		return n, v.err
	case err != nil:
		v.err = err // the body's own (its size limit, the memory budget, the client gone)
	}
	return n, err
}

// checkFloats checks b, which starts at offset off of the stream.
func (v *verifier) checkFloats(b []byte, off int64) error {
	if skip := v.floatsFrom - off; skip > 0 {
		if skip >= int64(len(b)) {
			return nil
		}
		b, off = b[skip:], v.floatsFrom
	}
	for len(b) > 0 {
		if v.k == 0 && len(b) >= 4 {
			m := len(b) &^ 3
			for i := 0; i < m; i += 4 {
				if binary.LittleEndian.Uint32(b[i:])&0x7f800000 == 0x7f800000 {
					return httpErr(http.StatusBadRequest, "not a model artifact: the weight at byte %d is NaN or infinite", off+int64(i))
				}
			}
			b, off = b[m:], off+int64(m)
			continue
		}
		v.carry[v.k] = b[0]
		v.k++
		b, off = b[1:], off+1
		if v.k == 4 {
			v.k = 0
			if binary.LittleEndian.Uint32(v.carry[:])&0x7f800000 == 0x7f800000 {
				return httpErr(http.StatusBadRequest, "not a model artifact: the weight at byte %d is NaN or infinite", off-4)
			}
		}
	}
	return nil
}

// commitModel publishes a staged model artifact. Up to describeWhole
// bytes, graphs and ONNX files are read whole and published as a
// one-request upload is (graphs and ONNX cannot be checked in pieces);
// larger dense artifacts are checked from their header, and their weights
// as they stream through the sealer, so the commit holds the header and
// one segment whatever the artifact's size.
func (s *Server) commitModel(ctx context.Context, tenant, name string, u modelstore.Upload, params uploadParams, rc io.Reader) (VersionInfo, registry.Meta, error) {
	br := bufio.NewReaderSize(rc, 64<<10)
	peek, _ := br.Peek(9)
	whole := func(prefix []byte) (VersionInfo, registry.Meta, error) {
		body, err := readVerified(io.MultiReader(bytes.NewReader(prefix), br), u)
		if err != nil {
			return VersionInfo{}, registry.Meta{}, err
		}
		if isONNX(params.ContentType, body) {
			if !onnxStart(body[0]) {
				return VersionInfo{}, registry.Meta{}, httpErr(http.StatusBadRequest, "neither a safetensors model artifact (its 9th byte is not '{') nor an ONNX model (no ModelProto field at byte 0)")
			}
			if body, err = fromONNX(body); err != nil {
				return VersionInfo{}, registry.Meta{}, err
			}
		}
		return s.publish(ctx, tenant, name, body)
	}
	if isONNX(params.ContentType, peek) {
		return whole(nil)
	}
	prefix, dataLen, err := safetensors.ReadHeader(br, &safetensors.Limits{MaxHeaderBytes: 8 << 20, MaxRank: 8})
	if err != nil {
		if errors.Is(err, safetensors.ErrFormat) {
			return VersionInfo{}, registry.Meta{}, httpErr(http.StatusBadRequest, "not a model artifact: %v", err)
		}
		return VersionInfo{}, registry.Meta{}, err
	}
	if total := int64(len(prefix)) + dataLen; total != u.Size {
		return VersionInfo{}, registry.Meta{}, httpErr(http.StatusBadRequest, "the artifact's header declares %d bytes, the upload has %d", total, u.Size)
	}
	f, err := safetensors.DecodeHeader(prefix, dataLen, &safetensors.Limits{MaxHeaderBytes: 8 << 20, MaxRank: 8, MaxTensors: 4*nn.MaxLayers + 1})
	if err != nil {
		return VersionInfo{}, registry.Meta{}, httpErr(http.StatusBadRequest, "not a model artifact: %v", err)
	}
	if u.Size <= describeWhole || graph.IsArtifact(f.Metadata) {
		return whole(prefix)
	}
	return s.publishStreamed(ctx, tenant, name, streamedArtifact{
		header: f, prefix: prefix, rest: br, size: u.Size, end: matchSHA256(u.SHA256),
		why: fmt.Sprintf("staged upload of %d bytes: checked from its header and streamed weights; latency is measured at publish up to %d bytes", u.Size, describeWhole),
	})
}

// streamedArtifact is a dense safetensors artifact whose header was read
// and checked and whose weights are still to come.
type streamedArtifact struct {
	header *safetensors.File
	prefix []byte    // the header's bytes
	rest   io.Reader // the weights
	size   int64     // the whole artifact's
	end    func(sum []byte) error
	why    string // registry.Meta.LatencySkipped
}

// publishStreamed publishes a, checking its weights (finite float32s) as
// they stream through the sealer into the store: the request holds the
// header and one segment whatever the artifact's size, and a weight or an
// end check that fails stops the stream before its last byte, so nothing
// is published.
func (s *Server) publishStreamed(ctx context.Context, tenant, name string, a streamedArtifact) (VersionInfo, registry.Meta, error) {
	spec, meta, err := nn.CheckArtifactHeader(a.header, nil)
	if err != nil {
		return VersionInfo{}, registry.Meta{}, wrapStatus(http.StatusBadRequest, err)
	}
	params := 0
	for _, t := range a.header.Tensors {
		params += t.NumElements()
	}
	vm := registry.Meta{Architecture: registry.ArchDense, Inputs: spec.Inputs, Outputs: spec.Outputs, Layers: spec.Layers, Params: params,
		Metrics: meta.Metrics, Provenance: meta.Provenance, LatencySkipped: a.why}
	mb, err := registry.MarshalMeta(&vm)
	if err != nil {
		return VersionInfo{}, registry.Meta{}, err
	}
	v := newVerifier(io.MultiReader(bytes.NewReader(a.prefix), a.rest), a.size, a.end)
	v.floatsFrom = int64(len(a.prefix))
	info, err := s.store.PublishModel(ctx, tenant, name, v, a.size, mb)
	if v.err != nil {
		return VersionInfo{}, registry.Meta{}, v.err
	}
	if err != nil {
		return VersionInfo{}, registry.Meta{}, err
	}
	s.refs.Forget(tenant, name)
	return info, vm, nil
}
