package fileblob_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
