package plugins

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// memShared is a SharedCache in memory, counting calls; failPut makes
// every Put fail, as for a read-only role.
type memShared struct {
	mu      sync.Mutex
	m       map[string][]byte
	gets    int
	puts    int
	failPut bool
}

func (c *memShared) List(_ context.Context, prefix string) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for k := range c.m {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out, nil
}

func (c *memShared) Get(_ context.Context, name string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gets++
	b, ok := c.m[name]
	if !ok {
		return nil, fmt.Errorf("%s: %w", name, os.ErrNotExist)
	}
	return bytes.Clone(b), nil
}

func (c *memShared) Put(_ context.Context, name string, data []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failPut {
		return errors.New("Access Denied")
	}
	c.puts++
	c.m[name] = bytes.Clone(data)
	return nil
}

// TestSharedCompiledCode: a process that compiles a module shares its
// code; a fresh process (empty CacheDir) fetches it and compiles nothing;
// one that may not write still works.
func TestSharedCompiledCode(t *testing.T) {
	ctx := context.Background()
	m := mod(t, "identity")
	body := make([]byte, 16)
	sc := &memShared{m: map[string][]byte{}}
	first := newHost(t, &Options{CacheDir: t.TempDir(), Prewarm: -1, Shared: sc})
	if _, err := first.Validate(ctx, built["identity"]); err != nil {
		t.Fatal(err)
	}
	if sc.puts == 0 || len(sc.m) == 0 {
		t.Fatalf("the first process shared nothing (%d puts)", sc.puts)
	}
	for name := range sc.m {
		if len(name) > 114 || !strings.HasPrefix(name, first.shared.tag+".") {
			t.Errorf("shared name %q", name)
		}
	}
	putsBefore := sc.puts

	// A fresh environment: the code comes from the shared cache, and the
	// call works without a compilation adding files.
	dir := t.TempDir()
	fresh := newHost(t, &Options{CacheDir: dir, Prewarm: -1, Shared: sc})
	before := len(fresh.shared.files())
	if _, err := fresh.Preprocess(ctx, "acme", m, "application/octet-stream", body); err != nil {
		t.Fatal(err)
	}
	if sc.gets == 0 || len(fresh.shared.files()) != before+len(sc.m) {
		t.Errorf("fresh process: %d gets, %d files (had %d), want the %d shared ones", sc.gets, len(fresh.shared.files()), before, len(sc.m))
	}
	if sc.puts != putsBefore {
		t.Errorf("the fresh process compiled and shared %d files; it should have loaded the shared code", sc.puts-putsBefore)
	}
	for name, b := range sc.m {
		got, err := os.ReadFile(filepath.Join(fresh.shared.dir, name[strings.LastIndexByte(name, '.')+1:]))
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("%s: fetched file differs (%v)", name, err)
		}
	}
	// Asked once: a second tenant's runtime does not list again.
	gets := sc.gets
	if _, err := fresh.Preprocess(ctx, "other", m, "application/octet-stream", body); err != nil {
		t.Fatal(err)
	}
	if sc.gets != gets {
		t.Errorf("the store was asked again for a module this process has")
	}

	// Read-only: compiles locally, says so once, keeps working.
	ro := &memShared{m: map[string][]byte{}, failPut: true}
	h := newHost(t, &Options{CacheDir: t.TempDir(), Prewarm: -1, Shared: ro})
	for _, tenant := range []string{"a", "b"} {
		if _, err := h.Preprocess(ctx, tenant, m, "application/octet-stream", body); err != nil {
			t.Fatal(err)
		}
	}
	if !h.shared.readOnly {
		t.Error("a failed put did not make the process read-only")
	}
}
