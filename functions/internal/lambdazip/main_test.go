package main

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bootstrap")
	payload := []byte("\x7fELF not really")
	if err := os.WriteFile(bin, payload, 0o755); err != nil {
		t.Fatal(err)
	}
	var zips [][]byte
	for i := 0; i < 2; i++ {
		out := filepath.Join(dir, "f.zip")
		if err := write(out, bin); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(out)
		zips = append(zips, b)
		zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		if len(zr.File) != 1 || zr.File[0].Name != "bootstrap" || zr.File[0].Mode().Perm() != 0o755 {
			t.Fatalf("case %d: entries %v mode %v", i, zr.File[0].Name, zr.File[0].Mode())
		}
		rc, _ := zr.File[0].Open()
		got, _ := io.ReadAll(rc)
		if !bytes.Equal(got, payload) {
			t.Fatalf("case %d: content %q", i, got)
		}
	}
	if !bytes.Equal(zips[0], zips[1]) {
		t.Fatal("zip is not reproducible")
	}
	if err := write(filepath.Join(dir, "g.zip"), filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing input accepted")
	}
}
