package modelstore_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/aiaas/aiaas/modelstore"
)

const mnistSize = (784*128 + 128 + 128*128 + 128 + 128*10 + 10) * 4

// BenchmarkColdLoadFileMNIST: a fresh Store (no cached data key) loads
// the MNIST-sized artifact from the folder driver: key, marker, data,
// decrypt, verify.
func BenchmarkColdLoadFileMNIST(b *testing.B) {
	ctx := context.Background()
	url := "file://" + b.TempDir()
	opts := &modelstore.Options{MasterKey: bytes.Repeat([]byte{5}, 32)}
	s, err := modelstore.Open(ctx, url, opts)
	if err != nil {
		b.Fatal(err)
	}
	w := make([]byte, mnistSize)
	if _, err := s.PublishModel(ctx, "acme", "mnist", bytes.NewReader(w), int64(len(w)), nil); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(mnistSize)
	b.ReportAllocs()
	for b.Loop() {
		s2, _ := modelstore.Open(ctx, url, opts)
		if _, _, err := s2.OpenModel(ctx, "acme", "mnist", 1); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPublishMNIST: encrypt, hash and write one version (folder).
func BenchmarkPublishMNIST(b *testing.B) {
	ctx := context.Background()
	s, err := modelstore.Open(ctx, "file://"+b.TempDir(), &modelstore.Options{MasterKey: bytes.Repeat([]byte{5}, 32)})
	if err != nil {
		b.Fatal(err)
	}
	w := make([]byte, mnistSize)
	b.SetBytes(mnistSize)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.PublishModel(ctx, "acme", "mnist", bytes.NewReader(w), int64(len(w)), nil); err != nil {
			b.Fatal(err)
		}
	}
}
