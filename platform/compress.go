package platform

import (
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/aiaas/aiaas/internal/yield"
)

// minCompressBytes is the smallest response body worth compressing: below
// it the gzip header and trailer and the CPU cost buy nothing.
const minCompressBytes = 1024

// finishCompression ends the compressed answer of w, if w is or wraps a
// compressWriter; see compressWriter.close.
func finishCompression(w http.ResponseWriter) {
	for {
		switch x := w.(type) {
		case *compressWriter:
			x.close()
			return
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return
		}
	}
}

// compressResponses compresses a route's JSON answers (and the OIP binary
// tensor extension's, JSON header plus raw tensors) with gzip or deflate
// when the request's Accept-Encoding takes one — what Triton's clients send
// for response_compression_algorithm. Only bodies whose Content-Length is
// known and at least minCompressBytes are compressed, so a streamed answer
// (server-sent events) or a tiny one goes out as it is. The whole body is
// compressed: Inference-Header-Content-Length keeps counting the JSON
// header's uncompressed bytes, as Triton's clients, which inflate the body
// before they split it, expect. Safe for concurrent use; each request gets
// its own writer.
func compressResponses(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		enc := acceptedEncoding(r.Header.Get("Accept-Encoding"))
		if enc == "" || r.Method == http.MethodHead {
			h.ServeHTTP(w, r)
			return
		}
		cw := &compressWriter{ResponseWriter: w, enc: enc}
		defer cw.close()
		h.ServeHTTP(cw, r)
	})
}

// acceptedEncoding picks gzip, else deflate, from an Accept-Encoding value
// (RFC 9110 §12.5.3; a q of 0 refuses a coding); "" when neither is taken.
func acceptedEncoding(header string) string {
	if header == "" {
		return ""
	}
	gz, df := false, false
	for len(header) > 0 {
		var item string
		item, header, _ = strings.Cut(header, ",")
		name, params, _ := strings.Cut(item, ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if q, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if v, err := strconv.ParseFloat(strings.TrimSpace(q), 64); err != nil || v <= 0 {
				continue
			}
		}
		switch name {
		case "gzip", "x-gzip", "*":
			gz = true
		case "deflate":
			df = true
		}
	}
	switch {
	case gz:
		return "gzip"
	case df:
		return "deflate"
	}
	return ""
}

var (
	gzipPool = sync.Pool{New: func() any { w, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed); return w }}
	zlibPool = sync.Pool{New: func() any { w, _ := zlib.NewWriterLevel(io.Discard, zlib.BestSpeed); return w }}
)

// compressWriter decides at WriteHeader whether the body is compressed.
type compressWriter struct {
	http.ResponseWriter
	enc     string
	decided bool
	closed  bool
	zw      interface {
		io.WriteCloser
		Flush() error
	}
	y yield.Point
}

// compressPiece is how much of a Write goes to the compressor between
// yields: deflate at BestSpeed compresses a 64 KiB block at a time, and
// writes it to the connection as it goes.
const compressPiece = 64 << 10

// errWriteAfterClose is a write after the compressed body ended: sending
// it would put plain bytes after a gzip stream.
var errWriteAfterClose = errors.New("write after the compressed answer ended")

// compressible reports whether a response's type is one this wrapper
// compresses: JSON, or the binary tensor extension's JSON plus tensors.
func compressible(h http.Header) bool {
	return strings.HasPrefix(h.Get("Content-Type"), "application/json") || h.Get(headerLenHeader) != ""
}

func (c *compressWriter) WriteHeader(code int) {
	if c.decided || code < 200 {
		c.ResponseWriter.WriteHeader(code)
		return
	}
	c.decided = true
	h := c.ResponseWriter.Header()
	if compressible(h) && h.Get("Content-Encoding") == "" {
		// Whether this URL's answer is compressed depends on the header:
		// caches must know, small answers included.
		if !strings.Contains(strings.ToLower(strings.Join(h.Values("Vary"), ",")), "accept-encoding") {
			h.Add("Vary", "Accept-Encoding")
		}
		n, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64)
		if err == nil && n >= minCompressBytes && code != http.StatusNoContent && code != http.StatusNotModified {
			h.Del("Content-Length")
			h.Set("Content-Encoding", c.enc)
			if c.enc == "gzip" {
				zw := gzipPool.Get().(*gzip.Writer)
				zw.Reset(c.ResponseWriter)
				c.zw = zw
			} else {
				zw := zlibPool.Get().(*zlib.Writer)
				zw.Reset(c.ResponseWriter)
				c.zw = zw
			}
		}
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *compressWriter) Write(b []byte) (int, error) {
	if !c.decided {
		c.WriteHeader(http.StatusOK)
	}
	if c.closed {
		return 0, errWriteAfterClose
	}
	if c.zw == nil {
		return c.ResponseWriter.Write(b)
	}
	// A page of a thousand audit records or a large tensor is
	// milliseconds of deflate: give the processor to other requests
	// between blocks, as every long loop on a request path does.
	n := 0
	for len(b) > 0 {
		piece := b[:min(len(b), compressPiece)]
		m, err := c.zw.Write(piece)
		n += m
		if err != nil {
			return n, err
		}
		b = b[len(piece):]
		c.y.Maybe()
	}
	return n, nil
}

// FlushError flushes what is compressed so far, then the connection; for
// http.ResponseController.
func (c *compressWriter) FlushError() error {
	if c.zw != nil {
		if err := c.zw.Flush(); err != nil {
			return err
		}
	}
	return http.NewResponseController(c.ResponseWriter).Flush()
}

func (c *compressWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// close ends the compressed stream and returns the writer to its pool.
// The innermost middleware (handle) calls it, so that the last block is
// compressed and sent inside the tenant's share of the CPUs; the deferred
// call in compressResponses is for answers written outside handle.
func (c *compressWriter) close() {
	if c.zw == nil {
		return
	}
	c.closed = true
	c.zw.Close()
	switch zw := c.zw.(type) {
	case *gzip.Writer:
		zw.Reset(io.Discard)
		gzipPool.Put(zw)
	case *zlib.Writer:
		zw.Reset(io.Discard)
		zlibPool.Put(zw)
	}
	c.zw = nil
}
