package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// SingleRequestLimit is the largest body worth sending in one request
// everywhere: API Gateway and Lambda cap a request near 6 MiB (less after
// base64). Above it, [Client.UploadModel] and [Client.UploadDataset] send
// the bytes in parts, straight to the store.
const SingleRequestLimit = 5 << 20

// UploadOptions tune a staged upload. The zero value (or nil) means
// defaults.
type UploadOptions struct {
	// ContentType "application/onnx" marks an ONNX model.
	ContentType string
	// Task checks a dataset as "classification" (default) or "regression".
	Task string
	// PartSize overrides the server's part size (at least 5 MiB).
	PartSize int64
	// SHA256 of the content, hex, if the caller knows it; otherwise it is
	// computed first (one extra read of r).
	SHA256 string
	// Progress gets the bytes sent so far (may be nil).
	Progress func(sent int64)
}

// StagedUpload is the server's answer to POST …/uploads.
type StagedUpload struct {
	ID        string       `json:"id"`
	Size      int64        `json:"size"`
	SHA256    string       `json:"sha256"`
	ExpiresAt time.Time    `json:"expires_at"`
	PartSize  int64        `json:"part_size"`
	Method    string       `json:"method"`
	Multipart bool         `json:"multipart"`
	Parts     []UploadPart `json:"parts"`
	CommitURL string       `json:"commit_url"`
	AbortURL  string       `json:"abort_url"`
}

// UploadPart is one part of a staged upload: PUT Size bytes to URL (no
// API key: the URL is signed), keep the ETag it answers with.
type UploadPart struct {
	Number int    `json:"number"`
	URL    string `json:"url"`
	Size   int64  `json:"size"`
}

type committedPart struct {
	Number int    `json:"number"`
	ETag   string `json:"etag"`
}

// UploadModel publishes a model artifact of size bytes through a staged
// upload: it asks for upload URLs, PUTs the parts of r to them (straight
// to S3 on Lambda), and commits, which verifies and publishes the version.
// Any size up to the server's limit works; above [SingleRequestLimit] it is
// the only way through API Gateway. On failure the upload is aborted.
// Goroutine-safe.
func (c *Client) UploadModel(ctx context.Context, name string, r io.ReaderAt, size int64, opts *UploadOptions) (*PushedModel, error) {
	n, err := seg("model", name)
	if err != nil {
		return nil, err
	}
	var v PushedModel
	if err := c.staged(ctx, "/v1/models/"+n, r, size, opts, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// UploadDataset stores a dataset through a staged upload, as UploadModel
// does a model. Goroutine-safe.
func (c *Client) UploadDataset(ctx context.Context, name string, r io.ReaderAt, size int64, opts *UploadOptions) (*Dataset, error) {
	n, err := seg("dataset", name)
	if err != nil {
		return nil, err
	}
	var v Dataset
	if err := c.staged(ctx, "/v1/datasets/"+n, r, size, opts, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

func (c *Client) staged(ctx context.Context, base string, r io.ReaderAt, size int64, opts *UploadOptions, out any) error {
	var o UploadOptions
	if opts != nil {
		o = *opts
	}
	if r == nil || size < 1 {
		return fmt.Errorf("%w: a staged upload needs a reader and its size (1 byte or more)", ErrInvalidArgument)
	}
	if o.SHA256 == "" {
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(r, 0, size)); err != nil {
			return fmt.Errorf("hashing the upload: %w", err)
		}
		o.SHA256 = hex.EncodeToString(h.Sum(nil))
	}
	req := map[string]any{"size": size, "sha256": o.SHA256}
	if o.ContentType != "" {
		req["content_type"] = o.ContentType
	}
	if o.Task != "" {
		req["task"] = o.Task
	}
	if o.PartSize > 0 {
		req["part_size"] = o.PartSize
	}
	b, err := jsonBody(req)
	if err != nil {
		return err
	}
	var up StagedUpload
	if err := c.doJSON(ctx, &call{method: http.MethodPost, path: base + "/uploads", body: b}, &up); err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			// Best effort: the server expires it anyway.
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			_ = c.doJSON(actx, &call{method: http.MethodDelete, path: base + "/uploads/" + up.ID}, nil)
		}
	}()
	var sent atomic.Int64
	parts := make([]committedPart, len(up.Parts))
	var off int64
	for i, p := range up.Parts {
		if p.Size < 0 || off+p.Size > size {
			return fmt.Errorf("%w: part %d of %d bytes does not fit the %d-byte upload", ErrInvalidResponse, p.Number, p.Size, size)
		}
		etag, err := c.putPart(ctx, p, io.NewSectionReader(r, off, p.Size), &sent, o.Progress)
		if err != nil {
			return err
		}
		parts[i] = committedPart{Number: p.Number, ETag: etag}
		off += p.Size
	}
	if off != size {
		return fmt.Errorf("%w: parts cover %d of %d bytes", ErrInvalidResponse, off, size)
	}
	var cb *body
	if up.Multipart {
		if cb, err = jsonBody(map[string]any{"parts": parts}); err != nil {
			return err
		}
	}
	// A commit is idempotent — a repeated one answers what the first one
	// published — so a lost answer is retried like a GET's.
	if err := c.doJSON(ctx, &call{method: http.MethodPost, path: base + "/uploads/" + up.ID + "/commit", body: cb, safe: true}, out); err != nil {
		return err
	}
	done = true
	return nil
}

// putPart PUTs one part to its signed URL, retrying transport errors and
// 5xx (a part can be sent again; the last one wins).
func (c *Client) putPart(ctx context.Context, p UploadPart, sr *io.SectionReader, sent *atomic.Int64, progress func(int64)) (string, error) {
	base := sent.Load()
	for attempt := 1; ; attempt++ {
		if _, err := sr.Seek(0, io.SeekStart); err != nil {
			return "", err
		}
		sent.Store(base)
		var body io.Reader = sr
		if progress != nil {
			body = &countingReader{r: sr, progress: func(n int64) { progress(base + n) }}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, p.URL, body)
		if err != nil {
			return "", fmt.Errorf("%w: part %d URL: %v", ErrInvalidResponse, p.Number, err)
		}
		req.ContentLength = p.Size
		if p.Size == 0 {
			req.Body = http.NoBody
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("User-Agent", c.ua)
		resp, err := c.hc.Do(req)
		var perr error
		if err != nil {
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			perr = fmt.Errorf("PUT part %d: %w", p.Number, err)
		} else if resp.StatusCode >= 300 {
			perr = c.apiError(resp)
		} else {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			sent.Store(base + p.Size)
			return resp.Header.Get("ETag"), nil
		}
		if attempt >= max(c.retry.MaxAttempts, 1) || (err == nil && resp.StatusCode < 500) {
			return "", fmt.Errorf("upload part %d: %w", p.Number, perr)
		}
		if werr := c.sleep(ctx, c.backoff(attempt, 0)); werr != nil {
			return "", werr
		}
	}
}
