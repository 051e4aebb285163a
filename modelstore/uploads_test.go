package modelstore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/modelstore/fileblob"
	"github.com/aiaas/aiaas/modelstore/memblob"
)

// TestStagedUploadLifecycle: parts received by the store come back as
// one stream; a wrong part size, a missing part and a second claim are
// refused; an expired upload is swept (by SweepUploads and by Sweep),
// staged bytes and record alike; another tenant never sees it.
func TestStagedUploadLifecycle(t *testing.T) {
	fb, err := fileblob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string]modelstore.Bucket{"mem": memblob.New(), "file": fb} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			s, err := modelstore.New(b, &modelstore.Options{MasterKey: master, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			data := bytes.Repeat([]byte("0123456789"), 1_100_000) // 11 MB: parts of 5, 5, 1 MiB-ish
			u, err := s.CreateUpload(ctx, "acme", modelstore.Upload{Kind: "models", Name: "m", Size: int64(len(data)),
				SHA256: strings.Repeat("a", 64), PartSize: 5 << 20, Expires: now.Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			if u.Direct || u.Parts() != 3 || len(u.Secret) != 32 {
				t.Fatalf("upload: direct %v, %d parts, %d-byte secret", u.Direct, u.Parts(), len(u.Secret))
			}
			if _, err := s.Upload(ctx, "globex", u.ID); !errors.Is(err, modelstore.ErrNotFound) {
				t.Errorf("another tenant reads the upload: %v", err)
			}
			off := int64(0)
			for n := 1; n <= u.Parts(); n++ {
				if n == 2 {
					if err := s.PutUploadPart(ctx, "acme", u, n, bytes.NewReader(data[off:off+10])); err == nil {
						t.Errorf("a short part was stored")
					}
				}
				if err := s.PutUploadPart(ctx, "acme", u, n, bytes.NewReader(data[off:off+u.PartLen(n)])); err != nil {
					t.Fatal(err)
				}
				off += u.PartLen(n)
			}
			rc, err := s.OpenUpload(ctx, "acme", u, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("staged bytes: %d bytes, %v", len(got), err)
			}
			if _, err := s.ClaimUpload(ctx, "acme", u); err != nil {
				t.Fatal(err)
			}
			if _, err := s.ClaimUpload(ctx, "acme", u); !errors.Is(err, modelstore.ErrExists) {
				t.Errorf("second claim: %v", err)
			}
			if err := s.FinishUpload(ctx, "acme", u, []byte(`{"object":"models/m/versions/1","result":{}}`)); err != nil {
				t.Fatal(err)
			}
			if res, err := s.ClaimUpload(ctx, "acme", u); !errors.Is(err, modelstore.ErrExists) || !strings.Contains(string(res), "versions/1") {
				t.Errorf("claim after finish: %s %v", res, err)
			}
			if _, err := s.OpenUpload(ctx, "acme", u, nil); !errors.Is(err, modelstore.ErrIncomplete) {
				t.Errorf("staged bytes left after finish: %v", err)
			}

			// A second upload, never finished: swept once expired.
			u2, err := s.CreateUpload(ctx, "acme", modelstore.Upload{Kind: "datasets", Name: "d", Size: 10,
				SHA256: strings.Repeat("b", 64), PartSize: 10, Expires: now.Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.PutUploadPart(ctx, "acme", u2, 1, strings.NewReader("0123456789")); err != nil {
				t.Fatal(err)
			}
			if n, err := s.SweepUploads(ctx, "acme", now.Add(time.Minute)); n != 0 || err != nil {
				t.Errorf("sweep before expiry: %d %v", n, err)
			}
			now = now.Add(2 * time.Hour)
			if n, err := s.Sweep(ctx, now.Add(-24*time.Hour)); n < 2 || err != nil {
				t.Errorf("sweep after expiry: %d %v", n, err)
			}
			for _, id := range []string{u.ID, u2.ID} {
				if _, err := s.Upload(ctx, "acme", id); !errors.Is(err, modelstore.ErrNotFound) {
					t.Errorf("upload %s survived the sweep: %v", id, err)
				}
			}
			if left, _ := b.List(ctx, "uploads/", nil); len(left) != 0 {
				t.Errorf("left after the sweep: %v", left)
			}

			// Bad requests.
			for i, bad := range []modelstore.Upload{
				{Kind: "models", Name: "m", Size: 0, SHA256: strings.Repeat("a", 64), PartSize: 5 << 20, Expires: now.Add(time.Hour)},
				{Kind: "models", Name: "m", Size: 10, SHA256: "xyz", PartSize: 10, Expires: now.Add(time.Hour)},
				{Kind: "models", Name: "m", Size: 10 << 20, SHA256: strings.Repeat("a", 64), PartSize: 1 << 20, Expires: now.Add(time.Hour)},
				{Kind: "models", Name: "m", Size: 10, SHA256: strings.Repeat("a", 64), PartSize: 10, Expires: now.Add(-time.Hour)},
				{Kind: "models", Name: "../x", Size: 10, SHA256: strings.Repeat("a", 64), PartSize: 10, Expires: now.Add(time.Hour)},
			} {
				if _, err := s.CreateUpload(ctx, "acme", bad); err == nil {
					t.Errorf("%d: bad upload accepted", i)
				}
			}
			for _, id := range []string{"", "../../x", strings.Repeat("A", 32), strings.Repeat("a", 33)} {
				if _, err := s.Upload(ctx, "acme", id); !errors.Is(err, modelstore.ErrNotFound) {
					t.Errorf("upload id %q: %v", id, err)
				}
			}
		})
	}
}
