package hardening

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aiaas/aiaas/internal/testserver"
	"github.com/aiaas/aiaas/sdk/client"
)

// TestCorruptArtifact flips one byte of a stored artifact behind the
// server's back: inference on that version is refused with an integrity
// error (never served, never a panic), and the previous version keeps
// serving through the alias.
func TestCorruptArtifact(t *testing.T) {
	dir := t.TempDir()
	s := testserver.Start(t, "file://"+dir)
	c, key := tenantClientKey(t, s, "corrupt")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	files := func() map[string]int64 {
		m := map[string]int64{}
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if fi, err := d.Info(); err == nil {
					m[p] = fi.Size()
				}
			}
			return nil
		})
		return m
	}
	var sums []string
	var before map[string]int64
	for i := 1; i <= 2; i++ {
		before = files()
		a := artifact(t, int64(i))
		pm, err := c.PushModel(ctx, "m", bytes.NewReader(a), int64(len(a)), nil)
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, pm.SHA256)
	}
	// Version 2's artifact is the largest file its publish added. Objects
	// are encrypted at rest, so it is found by what changed, not by content.
	var target string
	for p, n := range files() {
		if _, old := before[p]; !old && n > 1000 && (target == "" || n > before[target]) {
			target = p
			before[target] = n
		}
	}
	if target == "" {
		t.Fatalf("no new artifact file under %s", dir)
	}
	b, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(target, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// Restart so nothing is cached: the server must read the corrupted bytes.
	s.Stop()
	s = testserver.Start(t, "file://"+dir)
	c2, _ := client.New(s.URL, &client.Options{APIKey: key})
	req := &client.InferRequest{Inputs: []client.InferInput{{Name: "input", Shape: []int64{1, 784}, Datatype: "FP32", Data: make([]float32, 784)}}}
	_, err = c2.Infer(ctx, "m", "2", req)
	var ae *client.APIError
	if err == nil || !errors.As(err, &ae) || ae.Status < 400 || !mentionsIntegrity(err.Error()) {
		t.Fatalf("corrupted version answered: %v", err)
	}
	t.Logf("corrupted version: %v", err)
	if _, err := c2.SetAlias(ctx, "m", "prod", client.Alias{Version: 1}); err != nil {
		t.Fatal(err)
	}
	res, err := c2.Infer(ctx, "m", "prod", req)
	if err != nil {
		t.Fatalf("previous version through prod: %v", err)
	}
	if v, sum := res.Lineage(); v != "1" || sum != sums[0] {
		t.Fatalf("prod answered as %s/%s", v, sum)
	}
}

func mentionsIntegrity(msg string) bool {
	msg = strings.ToLower(msg)
	for _, w := range []string{"sha256", "checksum", "integrity", "corrupt", "authenticat", "tamper"} {
		if strings.Contains(msg, w) {
			return true
		}
	}
	return false
}
