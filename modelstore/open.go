package modelstore

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/aiaas/aiaas/modelstore/fileblob"
	"github.com/aiaas/aiaas/modelstore/memblob"
	"github.com/aiaas/aiaas/modelstore/s3blob"
)

// DefaultURL is the embedded default store: a folder next to the process.
const DefaultURL = "file://./data"

// Open returns a Store for a URL:
//
//	file://PATH                      a local folder (relative or absolute)
//	s3://BUCKET?endpoint=HOST:PORT&secure=false&region=R&create=true
//	mem://                           memory, for tests
//
// An empty url means DefaultURL. S3 credentials come from
// Options.S3AccessKey/S3SecretKey or the standard AWS chain; Options.SSE
// adds server-side encryption headers.
func Open(ctx context.Context, rawURL string, opts *Options) (*Store, error) {
	if rawURL == "" {
		rawURL = DefaultURL
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	switch {
	case strings.HasPrefix(rawURL, "file://"):
		// Not url.Parse: "file://./data" would put "." in the host.
		b, err := fileblob.Open(strings.TrimPrefix(rawURL, "file://"))
		if err != nil {
			return nil, err
		}
		return New(b, &o)
	case rawURL == "mem://" || strings.HasPrefix(rawURL, "mem://"):
		return New(memblob.New(), &o)
	case strings.HasPrefix(rawURL, "s3://"):
		u, err := url.Parse(rawURL)
		if err != nil {
			return nil, fmt.Errorf("modelstore: store URL: %w", err)
		}
		q := u.Query()
		so := &s3blob.Options{
			Endpoint:     q.Get("endpoint"),
			Secure:       q.Get("secure") != "false",
			Region:       q.Get("region"),
			AccessKey:    o.S3AccessKey,
			SecretKey:    o.S3SecretKey,
			SSE:          o.SSE,
			CreateBucket: q.Get("create") == "true",
		}
		if so.Endpoint == "" {
			so.Secure = q.Get("secure") != "false"
		}
		tctx, cancel := context.WithTimeout(ctx, timeoutOf(o))
		defer cancel()
		b, err := s3blob.Open(tctx, u.Host, so)
		if err != nil {
			return nil, wrap("open", "s3://"+u.Host, err)
		}
		return New(b, &o)
	}
	return nil, fmt.Errorf("modelstore: store URL %q: want file://PATH, s3://BUCKET?… or mem://", rawURL)
}

func timeoutOf(o Options) time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return DefaultTimeout
}
