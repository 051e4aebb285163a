package s3blob_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aiaas/aiaas/modelstore/driver"
)

// TestPresign: a client without credentials PUTs through a presigned URL,
// and through presigned parts of a multipart upload that CompleteMultipart
// assembles; a wrong ETag is ErrInvalidParts, an unknown upload
// ErrNotFound, and an abort of an unknown upload is no error.
func TestPresign(t *testing.T) {
	e := liveEnv(t)
	b := e.open(t, randName(e.bucket+"-"), "", "")
	ctx := context.Background()
	put := func(url string, body []byte) string {
		t.Helper()
		req, _ := http.NewRequest("PUT", url, bytes.NewReader(body))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("PUT: %d %s", res.StatusCode, msg)
		}
		return res.Header.Get("ETag")
	}
	get := func(key string) []byte {
		t.Helper()
		r, _, err := b.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		got, _ := io.ReadAll(r)
		return got
	}

	url, err := b.PresignPut(ctx, "uploads/t/one/data", 5, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// The length is signed: any other is refused.
	for _, body := range []string{"hello world", "hell"} {
		req, _ := http.NewRequest("PUT", url, bytes.NewReader([]byte(body)))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("PUT of %d bytes through a URL signed for 5: %d", len(body), res.StatusCode)
		}
	}
	put(url, []byte("hello"))
	if got := get("uploads/t/one/data"); string(got) != "hello" {
		t.Fatalf("presigned PUT stored %q", got)
	}

	key := "uploads/t/two/data"
	id, err := b.NewMultipart(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	p1, p2 := bytes.Repeat([]byte{1}, 5<<20), []byte("tail")
	var parts []driver.Part
	for i, p := range [][]byte{p1, p2} {
		url, err := b.PresignPart(ctx, key, id, i+1, int64(len(p)), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, driver.Part{Number: i + 1, ETag: put(url, p)})
	}
	bad := []driver.Part{{Number: 1, ETag: parts[1].ETag}, parts[1]}
	if err := b.CompleteMultipart(ctx, key, id, bad); !errors.Is(err, driver.ErrInvalidParts) {
		t.Errorf("complete with a wrong etag: %v", err)
	}
	if err := b.CompleteMultipart(ctx, key, id, parts); err != nil {
		t.Fatal(err)
	}
	if got := get(key); !bytes.Equal(got, append(p1, p2...)) {
		t.Fatalf("assembled %d bytes", len(got))
	}
	if err := b.CompleteMultipart(ctx, key, id, parts); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("complete twice: %v", err)
	}
	if err := b.AbortMultipart(ctx, key, "no-such-upload"); err != nil {
		t.Errorf("abort of an unknown upload: %v", err)
	}
}
