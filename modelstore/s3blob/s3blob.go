// Package s3blob is a [driver.Bucket] over Amazon S3 or any S3-compatible
// server (MinIO, SeaweedFS …) through minio-go.
//
// # Overview
//
// Only plain S3 semantics are used: PutObject (multipart above PartSize,
// always with the size known so minio-go sizes its buffers to PartSize and
// not to a 5 TiB object), GetObject, StatObject, RemoveObject,
// ListObjectsV2 and the standard conditional write "If-None-Match: *",
// which AWS S3 and MinIO answer with 412 PreconditionFailed when the key is
// taken.
//
// Retries: minio-go already retries transient S3 codes (SlowDown,
// InternalError, RequestTimeout …), retryable HTTP statuses (5xx, 429) and
// network errors with capped exponential back-off and full jitter. This
// driver does not add a second loop on top; it bounds minio-go's loop with
// [Options.MaxRetries] so that a dead endpoint fails in about a second, and
// the caller's context bounds every call. What still fails after that is
// reported as [driver.ErrUnavailable].
package s3blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/encrypt"

	"github.com/aiaas/aiaas/modelstore/driver"
)

// DefaultPartSize is the multipart part size: one buffer of this size is
// the upload's memory.
const DefaultPartSize = 16 << 20

// Options configure a bucket. The zero value means defaults.
type Options struct {
	Endpoint  string // host:port; empty means s3.amazonaws.com
	Secure    bool   // HTTPS
	Region    string
	AccessKey string // empty: the standard chain (env AWS_*, MINIO_*, ~/.aws, IAM/IRSA/ECS)
	SecretKey string
	// SSE is "" or "none", "sse-s3", or "sse-kms:KEYID".
	SSE string
	// PartSize of multipart uploads; 0 means DefaultPartSize (min 5 MiB).
	PartSize uint64
	// MaxRetries bounds minio-go's own retry loop; 0 means 3.
	MaxRetries int
	// CreateBucket creates the bucket if it does not exist.
	CreateBucket bool
	// Transport overrides the HTTP transport (tests).
	Transport http.RoundTripper
}

// Bucket is an S3 bucket. It is safe for concurrent use.
type Bucket struct {
	c        *minio.Client
	name     string
	sse      encrypt.ServerSide
	partSize uint64
}

// ParseSSE turns an SSE mode string into minio-go's form (nil for none).
func ParseSSE(mode string) (encrypt.ServerSide, error) {
	switch {
	case mode == "" || mode == "none":
		return nil, nil
	case mode == "sse-s3":
		return encrypt.NewSSE(), nil
	case len(mode) > 8 && mode[:8] == "sse-kms:":
		return encrypt.NewSSEKMS(mode[8:], nil)
	}
	return nil, fmt.Errorf("s3blob: unknown SSE mode %q (want none, sse-s3 or sse-kms:KEYID)", mode)
}

// Open connects to bucket name. It checks the bucket exists (or creates
// it), so a wrong endpoint or credentials fail here rather than on first
// use.
func Open(ctx context.Context, name string, opts *Options) (*Bucket, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if name == "" {
		return nil, errors.New("s3blob: empty bucket name")
	}
	if o.Endpoint == "" {
		o.Endpoint, o.Secure = "s3.amazonaws.com", true
	}
	if o.PartSize == 0 {
		o.PartSize = DefaultPartSize
	}
	if o.PartSize < 5<<20 {
		return nil, fmt.Errorf("s3blob: part size %d below the S3 minimum of 5 MiB", o.PartSize)
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = 3
	}
	sse, err := ParseSSE(o.SSE)
	if err != nil {
		return nil, err
	}
	var creds *credentials.Credentials
	if o.AccessKey != "" {
		creds = credentials.NewStaticV4(o.AccessKey, o.SecretKey, "")
	} else {
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{}, &credentials.EnvMinio{},
			&credentials.FileAWSCredentials{}, &credentials.IAM{},
		})
	}
	c, err := minio.New(o.Endpoint, &minio.Options{Creds: creds, Secure: o.Secure, Region: o.Region,
		MaxRetries: o.MaxRetries, Transport: o.Transport})
	if err != nil {
		return nil, fmt.Errorf("s3blob: %w", err)
	}
	b := &Bucket{c: c, name: name, sse: sse, partSize: o.PartSize}
	ok, err := c.BucketExists(ctx, name)
	if err != nil {
		return nil, b.mapErr(ctx, name, err)
	}
	if !ok {
		if !o.CreateBucket {
			return nil, fmt.Errorf("s3blob: bucket %s: %w", name, driver.ErrNotFound)
		}
		if err := c.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: o.Region}); err != nil {
			if r := minio.ToErrorResponse(err); r.Code != "BucketAlreadyOwnedByYou" && r.Code != "BucketAlreadyExists" {
				return nil, b.mapErr(ctx, name, err)
			}
		}
	}
	return b, nil
}

func (b *Bucket) mapErr(ctx context.Context, key string, err error) error {
	if err == nil {
		return nil
	}
	r := minio.ToErrorResponse(err)
	switch {
	case r.Code == "NoSuchKey" || r.Code == "NoSuchBucket" || r.StatusCode == http.StatusNotFound:
		return fmt.Errorf("s3blob: %s: %w", key, driver.ErrNotFound)
	case r.Code == "PreconditionFailed" || r.StatusCode == http.StatusPreconditionFailed ||
		// Some servers answer a racing conditional write with 409.
		r.Code == "ConditionalRequestConflict":
		return fmt.Errorf("s3blob: %s: %w", key, driver.ErrExists)
	case r.StatusCode >= 500 || r.StatusCode == http.StatusTooManyRequests ||
		r.Code == "SlowDown" || r.Code == "RequestTimeout" || r.Code == "InternalError":
		return fmt.Errorf("s3blob: %s: %w: %v", key, driver.ErrUnavailable, err)
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("s3blob: %s: %w: %v", key, driver.ErrUnavailable, err)
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return fmt.Errorf("s3blob: %s: %w: %v", key, driver.ErrUnavailable, err)
	}
	return fmt.Errorf("s3blob: %s: %w", key, err)
}

// Get implements driver.Bucket. It is goroutine-safe.
func (b *Bucket) Get(ctx context.Context, key string) (io.ReadCloser, driver.Attrs, error) {
	// One plain GET whose body is streamed: minio-go's lazy Object would
	// stat first and then re-GET with If-Match, failing with 412 when an
	// alias is replaced in between, where S3 semantics give the old or the
	// new object.
	body, info, _, err := minio.Core{Client: b.c}.GetObject(ctx, b.name, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, driver.Attrs{}, b.mapErr(ctx, key, err)
	}
	a := driver.Attrs{Key: key, Size: info.Size, ETag: info.ETag, ModTime: info.LastModified}
	return &reader{b: b, ctx: ctx, key: key, o: body}, a, nil
}

type reader struct {
	b   *Bucket
	ctx context.Context
	key string
	o   io.ReadCloser
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.o.Read(p)
	if err != nil && err != io.EOF {
		err = r.b.mapErr(r.ctx, r.key, err)
	}
	return n, err
}

func (r *reader) Close() error { return r.o.Close() }

// Stat implements driver.Bucket. It is goroutine-safe.
func (b *Bucket) Stat(ctx context.Context, key string) (driver.Attrs, error) {
	info, err := b.c.StatObject(ctx, b.name, key, minio.StatObjectOptions{})
	if err != nil {
		return driver.Attrs{}, b.mapErr(ctx, key, err)
	}
	return driver.Attrs{Key: key, Size: info.Size, ETag: info.ETag, ModTime: info.LastModified}, nil
}

// Put implements driver.Bucket. It is goroutine-safe.
func (b *Bucket) Put(ctx context.Context, key string, r io.Reader, size int64, opts *driver.PutOptions) error {
	if size < 0 {
		return fmt.Errorf("s3blob: %s: negative size", key)
	}
	po := minio.PutObjectOptions{
		PartSize:             b.partSize,
		ServerSideEncryption: b.sse,
		ContentType:          "application/octet-stream",
		// One part buffer at a time: memory stays at PartSize.
		NumThreads: 1,
	}
	if opts != nil && opts.IfNotExists {
		// Standard S3 conditional write (AWS since 2024, MinIO): 412 when
		// the key exists, and of racing creates only one succeeds.
		po.SetMatchETagExcept("*")
	}
	_, err := b.c.PutObject(ctx, b.name, key, r, size, po)
	return b.mapErr(ctx, key, err)
}

// Delete implements driver.Bucket. It is goroutine-safe.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	err := b.c.RemoveObject(ctx, b.name, key, minio.RemoveObjectOptions{})
	if err = b.mapErr(ctx, key, err); errors.Is(err, driver.ErrNotFound) {
		return nil
	}
	return err
}

// List implements driver.Bucket. It is goroutine-safe.
func (b *Bucket) List(ctx context.Context, prefix string, opts *driver.ListOptions) ([]driver.Attrs, error) {
	var o driver.ListOptions
	if opts != nil {
		o = *opts
	}
	lo := minio.ListObjectsOptions{Prefix: prefix, Recursive: o.Delimiter == "", StartAfter: o.StartAfter}
	if o.Limit > 0 && o.Limit < 1000 {
		lo.MaxKeys = o.Limit
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops minio-go's listing goroutine when we leave early
	var out []driver.Attrs
	for obj := range b.c.ListObjects(ctx, b.name, lo) {
		if obj.Err != nil {
			return nil, b.mapErr(ctx, prefix, obj.Err)
		}
		out = append(out, driver.Attrs{Key: obj.Key, Size: obj.Size, ETag: obj.ETag, ModTime: obj.LastModified})
		if o.Limit > 0 && len(out) >= o.Limit {
			break
		}
	}
	return driver.Finish(out, &o), nil
}

// Close implements driver.Bucket.
func (b *Bucket) Close() error { return nil }

// Sweep implements driver.Sweeper: it aborts the multipart uploads
// started before cutoff, which a process killed mid-Put leaves behind
// (minio-go aborts the upload itself on any other failure). Each is
// aborted by its upload id, so a newer upload of the same key goes on.
// On AWS a bucket lifecycle rule (AbortIncompleteMultipartUpload) does
// the same; MinIO and others may have none.
func (b *Bucket) Sweep(ctx context.Context, cutoff time.Time) (int, error) {
	// Cancelled on return: the listing goroutine stops when we leave
	// early.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	core := minio.Core{Client: b.c}
	n := 0
	for u := range b.c.ListIncompleteUploads(ctx, b.name, "", true) {
		if u.Err != nil {
			return n, b.mapErr(ctx, "", u.Err)
		}
		if !u.Initiated.Before(cutoff) {
			continue
		}
		if err := core.AbortMultipartUpload(ctx, b.name, u.Key, u.UploadID); err != nil {
			if minio.ToErrorResponse(err).Code == "NoSuchUpload" {
				continue // completed or aborted meanwhile
			}
			return n, b.mapErr(ctx, u.Key, err)
		}
		n++
	}
	return n, nil
}

var _ driver.Bucket = (*Bucket)(nil)

// PresignPut implements driver.Presigner. The signature covers the method,
// the key, the expiry and the Content-Length (a signed header: S3 refuses a
// body of any other length with 403). It does not carry this driver's SSE
// headers (the client would have to repeat them): the bucket's default
// encryption (SSE-KMS in the template) encrypts what the client sends. It
// is goroutine-safe.
func (b *Bucket) PresignPut(ctx context.Context, key string, size int64, expiry time.Duration) (string, error) {
	u, err := b.c.PresignHeader(ctx, http.MethodPut, b.name, key, expiry, nil, lengthHeader(size))
	if err != nil {
		return "", b.mapErr(ctx, key, err)
	}
	return u.String(), nil
}

func lengthHeader(size int64) http.Header {
	return http.Header{"Content-Length": []string{strconv.FormatInt(size, 10)}}
}

// NewMultipart implements driver.Presigner. It is goroutine-safe.
func (b *Bucket) NewMultipart(ctx context.Context, key string) (string, error) {
	id, err := minio.Core{Client: b.c}.NewMultipartUpload(ctx, b.name, key, minio.PutObjectOptions{
		ServerSideEncryption: b.sse, ContentType: "application/octet-stream"})
	if err != nil {
		return "", b.mapErr(ctx, key, err)
	}
	return id, nil
}

// PresignPart implements driver.Presigner: a presigned UploadPart (PUT
// with partNumber and uploadId in the signed query, and its length signed
// as PresignPut's). It is goroutine-safe.
func (b *Bucket) PresignPart(ctx context.Context, key, uploadID string, number int, size int64, expiry time.Duration) (string, error) {
	q := url.Values{}
	q.Set("partNumber", strconv.Itoa(number))
	q.Set("uploadId", uploadID)
	u, err := b.c.PresignHeader(ctx, http.MethodPut, b.name, key, expiry, q, lengthHeader(size))
	if err != nil {
		return "", b.mapErr(ctx, key, err)
	}
	return u.String(), nil
}

// CompleteMultipart implements driver.Presigner. It is goroutine-safe.
func (b *Bucket) CompleteMultipart(ctx context.Context, key, uploadID string, parts []driver.Part) error {
	cp := make([]minio.CompletePart, len(parts))
	for i, p := range parts {
		cp[i] = minio.CompletePart{PartNumber: p.Number, ETag: p.ETag}
	}
	_, err := minio.Core{Client: b.c}.CompleteMultipartUpload(ctx, b.name, key, uploadID, cp, minio.PutObjectOptions{})
	switch minio.ToErrorResponse(err).Code {
	case "NoSuchUpload":
		return fmt.Errorf("s3blob: %s upload %s: %w", key, uploadID, driver.ErrNotFound)
	case "InvalidPart", "InvalidPartOrder", "EntityTooSmall", "MalformedXML":
		return fmt.Errorf("s3blob: %s upload %s: %w: %v", key, uploadID, driver.ErrInvalidParts, err)
	}
	return b.mapErr(ctx, key, err)
}

// AbortMultipart implements driver.Presigner. It is goroutine-safe.
func (b *Bucket) AbortMultipart(ctx context.Context, key, uploadID string) error {
	err := minio.Core{Client: b.c}.AbortMultipartUpload(ctx, b.name, key, uploadID)
	if err != nil && minio.ToErrorResponse(err).Code == "NoSuchUpload" {
		return nil
	}
	return b.mapErr(ctx, key, err)
}

var _ driver.Presigner = (*Bucket)(nil)
