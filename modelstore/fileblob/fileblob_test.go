package fileblob_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aiaas/aiaas/modelstore/driver"
	"github.com/aiaas/aiaas/modelstore/drivertest"
	"github.com/aiaas/aiaas/modelstore/fileblob"
)

func TestConformance(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) driver.Bucket {
		b, err := fileblob.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return b
	}, nil)
}

// A failed write leaves no temporary file behind and no object.
func TestNoTempLeftovers(t *testing.T) {
	dir := t.TempDir()
	b, err := fileblob.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := b.Put(ctx, "a/b", bytes.NewReader([]byte("abc")), 10, nil); err == nil {
		t.Fatal("short body accepted")
	}
	if err := b.Put(ctx, "a/c", bytes.NewReader([]byte("abc")), 3, nil); err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if strings.HasPrefix(d.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
	if _, err := os.Stat(b.Path("a/b")); !os.IsNotExist(err) {
		t.Errorf("failed Put left %s", b.Path("a/b"))
	}
}

// Sweep removes the temporary files of writes that died before the
// cutoff, keeps younger ones (a write may still be running) and never
// touches objects.
func TestSweep(t *testing.T) {
	dir := t.TempDir()
	b, err := fileblob.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := b.Put(ctx, "t/m/v1", bytes.NewReader([]byte("abc")), 3, nil); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(dir, "t", "m", ".tmp-dead")
	young := filepath.Join(dir, "t", ".tmp-running")
	for _, p := range []string{old, young} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	day := time.Now().Add(-24 * time.Hour)
	if err := os.Chtimes(old, day, day); err != nil {
		t.Fatal(err)
	}
	n, err := b.Sweep(ctx, time.Now().Add(-time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("Sweep: %d, %v; want 1 removed", n, err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("the day-old temporary file is still there: %v", err)
	}
	if _, err := os.Stat(young); err != nil {
		t.Errorf("the young temporary file was removed: %v", err)
	}
	if rc, _, err := b.Get(ctx, "t/m/v1"); err != nil {
		t.Errorf("the object is gone: %v", err)
	} else {
		rc.Close()
	}
	if n, err := b.Sweep(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Errorf("second Sweep: %d, %v; want 0", n, err)
	}
}
