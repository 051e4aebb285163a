package platform

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

func TestAcceptedEncoding(t *testing.T) {
	for i, tc := range []struct{ header, want string }{
		{"", ""},
		{"gzip", "gzip"},
		{"GZIP", "gzip"},
		{"deflate", "deflate"},
		{"deflate, gzip", "gzip"},
		{"gzip;q=0, deflate", "deflate"},
		{"gzip; q=0.0", ""},
		{"gzip;q=0.5", "gzip"},
		{"gzip;q=x", ""},
		{"br", ""},
		{"*", "gzip"},
		{"identity", ""},
		{"x-gzip", "gzip"},
		{" , ,", ""},
	} {
		if got := acceptedEncoding(tc.header); got != tc.want {
			t.Errorf("%d: acceptedEncoding(%q) = %q, want %q", i, tc.header, got, tc.want)
		}
	}
}

// TestCompressWriterAlone: the wrapper by itself — a streamed answer
// (no Content-Length, flushed as it goes) passes through untouched and
// still flushes; a large JSON one is compressed whether the handler calls
// WriteHeader or only Write; a body already encoded is left alone.
func TestCompressWriterAlone(t *testing.T) {
	big := bytes.Repeat([]byte(`{"a":1}`), 400)
	for i, tc := range []struct {
		h    http.HandlerFunc
		want string // Content-Encoding
	}{
		{func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Write([]byte("data: 1\n\n"))
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Errorf("flush: %v", err)
			}
			w.Write(big)
		}, ""},
		{func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
			w.Write(big)
		}, "gzip"},
		{func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Encoding", "br")
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
			w.WriteHeader(200)
			w.Write(big)
		}, "br"},
		{func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "image/png")
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
			w.Write(big)
		}, ""},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		compressResponses(tc.h).ServeHTTP(rec, req)
		if got := rec.Header().Get("Content-Encoding"); got != tc.want {
			t.Errorf("%d: Content-Encoding %q, want %q", i, got, tc.want)
			continue
		}
		if tc.want == "gzip" {
			zr, err := gzip.NewReader(rec.Body)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(zr)
			if err != nil || !bytes.Equal(b, big) || rec.Header().Get("Content-Length") != "" {
				t.Errorf("%d: inflated %d bytes, %v, Content-Length %q", i, len(b), err, rec.Header().Get("Content-Length"))
			}
		}
	}
}

// FuzzAcceptedEncoding: any header value (clients send what they like)
// picks gzip, deflate or nothing, without panicking.
func FuzzAcceptedEncoding(f *testing.F) {
	for _, s := range []string{"gzip", "deflate, gzip;q=0", "*;q=0.1", "gzip;q=", ";;,,", "br;q=1.0, identity"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		switch got := acceptedEncoding(h); got {
		case "", "gzip", "deflate":
		default:
			t.Fatalf("acceptedEncoding(%q) = %q", h, got)
		}
	})
}

// TestCompressionEndsInHandle: the innermost middleware ends the
// compressed answer (so its last block is compressed inside the tenant's
// share of the CPUs, not after withShare let go), through the recorder
// that wraps the compressing writer; a later write is refused rather than
// sent as plain bytes after the stream. A body over several pieces
// inflates back whole.
func TestCompressionEndsInHandle(t *testing.T) {
	big := bytes.Repeat([]byte(`{"seq":1,"action":"infer"},`), 10000) // 270 KB: several pieces
	rec := httptest.NewRecorder()
	s := &Server{}
	ended := false
	inner := s.handle(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(big)))
		_, err := w.Write(big)
		return err
	})
	h := compressResponses(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sr := &statusRecorder{ResponseWriter: w}
		inner.ServeHTTP(sr, r)
		// handle has returned: the stream must be complete already.
		zr, err := gzip.NewReader(bytes.NewReader(rec.Body.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(b, big) {
			t.Fatalf("after handle: inflated %d of %d bytes, %v", len(b), len(big), err)
		}
		if _, err := sr.Write([]byte("x")); !errors.Is(err, errWriteAfterClose) {
			t.Fatalf("a write after the end: %v, want errWriteAfterClose", err)
		}
		ended = true
	}))
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	h.ServeHTTP(rec, req)
	if !ended || rec.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q", rec.Header().Get("Content-Encoding"))
	}
}
