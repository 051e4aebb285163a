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
	"github.com/aiaas/aiaas/modelstore/driver"
	"github.com/aiaas/aiaas/modelstore/memblob"
)

var master = bytes.Repeat([]byte{42}, 32)

func newMem(t testing.TB) *modelstore.Store {
	t.Helper()
	s, err := modelstore.New(memblob.New(), &modelstore.Options{MasterKey: master})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOpenURLs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for i, tc := range []struct {
		url string
		ok  bool
	}{
		{"mem://", true},
		{"file://" + dir, true},
		{"file://" + dir + "/sub", true},
		{"ftp://x", false},
		{"s3://", false},
	} {
		s, err := modelstore.Open(ctx, tc.url, &modelstore.Options{MasterKey: master, Timeout: time.Second})
		if (err == nil) != tc.ok {
			t.Errorf("case %d: Open(%q) = %v, want ok=%v", i, tc.url, err, tc.ok)
		}
		if s != nil {
			s.Close()
		}
	}
	if _, err := modelstore.Open(ctx, "mem://", nil); err == nil {
		t.Error("Open without a master key succeeded")
	}
}

// The folder store survives a restart: a second Store over the same folder
// reads what the first wrote.
func TestFileReopen(t *testing.T) {
	ctx := context.Background()
	url := "file://" + t.TempDir()
	s1, err := modelstore.Open(ctx, url, &modelstore.Options{MasterKey: master})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s1.PublishModel(ctx, "acme", "m", strings.NewReader("w1"), 2, []byte(`{"acc":0.9}`)); err != nil {
		t.Fatal(err)
	}
	s2, _ := modelstore.Open(ctx, url, &modelstore.Options{MasterKey: master})
	got, info, err := s2.OpenModel(ctx, "acme", "m", 1)
	if err != nil || string(got) != "w1" || string(info.Meta) != `{"acc":0.9}` {
		t.Errorf("reopened: %q %s %v", got, info.Meta, err)
	}
	s3, _ := modelstore.Open(ctx, url, &modelstore.Options{MasterKey: bytes.Repeat([]byte{1}, 32)})
	if _, _, err := s3.OpenModel(ctx, "acme", "m", 1); !errors.Is(err, modelstore.ErrCorrupt) {
		t.Errorf("wrong master key: %v, want ErrCorrupt", err)
	}
}

func TestInvalidNames(t *testing.T) {
	s := newMem(t)
	ctx := context.Background()
	bad := []string{"", "..", ".", "a/b", "../x", "-x", ".hidden", "a\x00b", "a b", "ü", strings.Repeat("a", 129), "a\\b"}
	for i, n := range bad {
		if err := s.Put(ctx, n, "k", "n", nil); !errors.Is(err, modelstore.ErrInvalidName) {
			t.Errorf("case %d: tenant %q: %v", i, n, err)
		}
		if err := s.Put(ctx, "t", n, "n", nil); !errors.Is(err, modelstore.ErrInvalidName) {
			t.Errorf("case %d: kind %q: %v", i, n, err)
		}
		if _, err := s.Get(ctx, "t", "k", n); !errors.Is(err, modelstore.ErrInvalidName) {
			t.Errorf("case %d: name %q: %v", i, n, err)
		}
		if _, err := s.PublishModel(ctx, "t", n, strings.NewReader(""), 0, nil); !errors.Is(err, modelstore.ErrInvalidName) {
			t.Errorf("case %d: model %q: %v", i, n, err)
		}
	}
	for i, n := range []string{"a", "mnist-v2", "A.b_c", strings.Repeat("z", 128), "0abc"} {
		if !modelstore.ValidName(n) {
			t.Errorf("case %d: %q rejected", i, n)
		}
	}
}

func TestRecords(t *testing.T) {
	s := newMem(t)
	ctx := context.Background()
	if _, err := s.Get(ctx, "acme", "endpoints", "e1"); !errors.Is(err, modelstore.ErrNotFound) {
		t.Errorf("missing tenant: %v, want ErrNotFound", err)
	}
	for _, n := range []string{"e3", "e1", "e2", "f1"} {
		if err := s.Put(ctx, "acme", "endpoints", n, []byte("v-"+n)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Get(ctx, "acme", "endpoints", "nope"); !errors.Is(err, modelstore.ErrNotFound) {
		t.Errorf("missing record: %v", err)
	}
	if got, err := s.Get(ctx, "acme", "endpoints", "e2"); err != nil || string(got) != "v-e2" {
		t.Errorf("Get = %q, %v", got, err)
	}
	for i, tc := range []struct {
		prefix, after string
		limit         int
		want          string
	}{
		{"", "", 0, "e1 e2 e3 f1"},
		{"e", "", 0, "e1 e2 e3"},
		{"", "e2", 0, "e3 f1"},
		{"", "", 2, "e1 e2"},
		{"x", "", 0, ""},
	} {
		got, err := s.List(ctx, "acme", "endpoints", tc.prefix, tc.after, tc.limit)
		if err != nil || strings.Join(got, " ") != tc.want {
			t.Errorf("case %d: List = %q, %v; want %q", i, got, err, tc.want)
		}
	}
	if err := s.Create(ctx, "acme", "endpoints", "e1", []byte("x")); !errors.Is(err, modelstore.ErrExists) {
		t.Errorf("Create over existing: %v", err)
	}
	if err := s.Delete(ctx, "acme", "endpoints", "e1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, "acme", "endpoints", "e1", []byte("x")); err != nil {
		t.Errorf("Create after delete: %v", err)
	}
	// Tenants are apart: the same names under another tenant are empty.
	if got, _ := s.List(ctx, "other", "endpoints", "", "", 0); len(got) != 0 {
		t.Errorf("other tenant sees %q", got)
	}
	if err := s.Put(ctx, "acme", "jobs", "big", make([]byte, modelstore.DefaultMaxRecord+1)); !errors.Is(err, modelstore.ErrTooLarge) {
		t.Errorf("oversized record: %v", err)
	}
	tenants, err := s.Tenants(ctx)
	if err != nil || strings.Join(tenants, ",") != "acme" {
		t.Errorf("Tenants = %q, %v", tenants, err)
	}
}

func TestSystem(t *testing.T) {
	s := newMem(t)
	ctx := context.Background()
	if err := s.SystemCreate(ctx, "tenant-acme", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := s.SystemCreate(ctx, "tenant-acme", []byte("2")); !errors.Is(err, modelstore.ErrExists) {
		t.Errorf("second create: %v", err)
	}
	if err := s.SystemPut(ctx, "key-abc", []byte("hash")); err != nil {
		t.Fatal(err)
	}
	if got, err := s.SystemGet(ctx, "tenant-acme"); err != nil || string(got) != "1" {
		t.Errorf("SystemGet = %q, %v", got, err)
	}
	if got, err := s.SystemList(ctx, "tenant-"); err != nil || strings.Join(got, ",") != "tenant-acme" {
		t.Errorf("SystemList = %q, %v", got, err)
	}
	if err := s.SystemDelete(ctx, "key-abc"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SystemGet(ctx, "key-abc"); !errors.Is(err, modelstore.ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
}

func TestModels(t *testing.T) {
	s := newMem(t)
	ctx := context.Background()
	if _, err := s.Versions(ctx, "acme", "m"); !errors.Is(err, modelstore.ErrNotFound) {
		t.Errorf("no versions: %v", err)
	}
	for i, w := range []string{"one", "two", "three"} {
		info, err := s.PublishModel(ctx, "acme", "m", strings.NewReader(w), int64(len(w)), []byte(`{"n":1}`))
		if err != nil || info.Version != i+1 || info.Size != int64(len(w)) || len(info.SHA256) != 64 {
			t.Fatalf("case %d: %+v, %v", i, info, err)
		}
	}
	if _, err := s.PublishVersion(ctx, "acme", "m", 2, strings.NewReader("x"), 1, nil); !errors.Is(err, modelstore.ErrExists) {
		t.Errorf("republish v2: %v", err)
	}
	if info, err := s.PublishVersion(ctx, "acme", "m", 10, strings.NewReader("ten"), 3, nil); err != nil || info.Version != 10 {
		t.Errorf("explicit v10: %+v %v", info, err)
	}
	vs, err := s.Versions(ctx, "acme", "m")
	if err != nil || len(vs) != 4 || vs[3].Version != 10 || string(vs[0].Meta) != `{"n":1}` {
		t.Fatalf("Versions = %+v, %v", vs, err)
	}
	if info, _ := s.PublishModel(ctx, "acme", "m", strings.NewReader("eleven"), 6, nil); info.Version != 11 {
		t.Errorf("next after 10 = %d", info.Version)
	}
	if names, err := s.Models(ctx, "acme"); err != nil || strings.Join(names, ",") != "m" {
		t.Errorf("Models = %q, %v", names, err)
	}
	if _, _, err := s.OpenModel(ctx, "acme", "m", 4); !errors.Is(err, modelstore.ErrNotFound) {
		t.Errorf("missing version: %v", err)
	}
	// Sizes and bodies are checked.
	if _, err := s.PublishModel(ctx, "acme", "m", strings.NewReader("abc"), 10, nil); err == nil {
		t.Error("short body published")
	}
	if _, err := s.PublishModel(ctx, "acme", "m", strings.NewReader("abcdef"), 3, nil); !errors.Is(err, modelstore.ErrTooLarge) {
		t.Errorf("long body: %v", err)
	}
	if _, err := s.PublishModel(ctx, "acme", "m", strings.NewReader(""), 3<<30, nil); !errors.Is(err, modelstore.ErrTooLarge) {
		t.Errorf("3 GiB: %v", err)
	}
	if _, err := s.PublishModel(ctx, "acme", "m", strings.NewReader("a"), 1, []byte("{not json")); !errors.Is(err, modelstore.ErrInvalidName) {
		t.Errorf("bad meta: %v", err)
	}
	if vs, _ := s.Versions(ctx, "acme", "m"); len(vs) != 5 {
		t.Errorf("failed publishes left versions: %d", len(vs))
	}
}

func TestAliases(t *testing.T) {
	s := newMem(t)
	ctx := context.Background()
	for _, w := range []string{"a", "b", "c"} {
		if _, err := s.PublishModel(ctx, "acme", "m", strings.NewReader(w), 1, nil); err != nil {
			t.Fatal(err)
		}
	}
	for i, tc := range []struct {
		alias string
		a     modelstore.Alias
		ok    bool
	}{
		{"prod", modelstore.Alias{Version: 1}, true},
		{"staging", modelstore.Alias{Version: 2, CanaryVersion: 3, CanaryWeight: 10}, true},
		{"prod", modelstore.Alias{Version: 2}, true}, // move
		{"x", modelstore.Alias{Version: 9}, false},
		{"x", modelstore.Alias{Version: 1, CanaryVersion: 2, CanaryWeight: 101}, false},
		{"x", modelstore.Alias{Version: 1, CanaryWeight: 5}, false},
		{"latest", modelstore.Alias{Version: 1}, false},
		{"7", modelstore.Alias{Version: 1}, false},
		{"a/b", modelstore.Alias{Version: 1}, false},
	} {
		if err := s.SetAlias(ctx, "acme", "m", tc.alias, tc.a); (err == nil) != tc.ok {
			t.Errorf("case %d: SetAlias(%s, %+v) = %v", i, tc.alias, tc.a, err)
		}
	}
	all, err := s.Aliases(ctx, "acme", "m")
	if err != nil || len(all) != 2 || all["prod"].Version != 2 || all["staging"].CanaryWeight != 10 {
		t.Errorf("Aliases = %+v, %v", all, err)
	}
	for i, tc := range []struct {
		ref  string
		want int
	}{{"1", 1}, {"latest", 3}, {"prod", 2}, {"staging", 2}} {
		info, err := s.Resolve(ctx, "acme", "m", tc.ref)
		if err != nil || info.Version != tc.want {
			t.Errorf("case %d: Resolve(%q) = %d, %v; want %d", i, tc.ref, info.Version, err, tc.want)
		}
	}
	for i, ref := range []string{"9", "nope", "0"} {
		if _, err := s.Resolve(ctx, "acme", "m", ref); !errors.Is(err, modelstore.ErrNotFound) {
			t.Errorf("case %d: Resolve(%q) = %v, want ErrNotFound", i, ref, err)
		}
	}
	if err := s.DeleteAlias(ctx, "acme", "m", "prod"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAlias(ctx, "acme", "m", "prod"); !errors.Is(err, modelstore.ErrNotFound) {
		t.Errorf("deleted alias: %v", err)
	}
}

func TestBlobs(t *testing.T) {
	s := newMem(t)
	ctx := context.Background()
	data := bytes.Repeat([]byte("dataset,"), 20000)
	sum, err := s.PutBlob(ctx, "acme", "datasets", "train", bytes.NewReader(data), int64(len(data)))
	if err != nil || len(sum) != 64 {
		t.Fatal(sum, err)
	}
	got, err := s.GetBlob(ctx, "acme", "datasets", "train")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GetBlob: %v", err)
	}
	// Replacing removes the old content object.
	before := countKeys(t, s)
	if _, err := s.PutBlob(ctx, "acme", "datasets", "train", strings.NewReader("v2"), 2); err != nil {
		t.Fatal(err)
	}
	if after := countKeys(t, s); after != before {
		t.Errorf("replacing a blob changed the object count %d → %d", before, after)
	}
	info, err := s.StatBlob(ctx, "acme", "datasets", "train")
	if err != nil || info.Size != 2 || info.Name != "train" {
		t.Errorf("StatBlob = %+v, %v", info, err)
	}
	list, err := s.ListBlobs(ctx, "acme", "datasets")
	if err != nil || len(list) != 1 {
		t.Errorf("ListBlobs = %+v, %v", list, err)
	}
	if err := s.DeleteBlob(ctx, "acme", "datasets", "train"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetBlob(ctx, "acme", "datasets", "train"); !errors.Is(err, modelstore.ErrNotFound) {
		t.Errorf("deleted blob: %v", err)
	}
}

func countKeys(t *testing.T, s *modelstore.Store) int {
	list, err := s.Bucket().List(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return len(list)
}

func TestRewrapKeys(t *testing.T) {
	ctx := context.Background()
	b := memblob.New()
	old, _ := modelstore.New(b, &modelstore.Options{MasterKey: master})
	if err := old.Put(ctx, "acme", "endpoints", "e", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := old.SystemPut(ctx, "tenants", []byte("y")); err != nil {
		t.Fatal(err)
	}
	newKey := bytes.Repeat([]byte{43}, 32)
	rot, _ := modelstore.New(b, &modelstore.Options{MasterKey: newKey, OldMasterKeys: [][]byte{master}})
	n, err := rot.RewrapKeys(ctx)
	if err != nil || n != 2 {
		t.Fatalf("RewrapKeys = %d, %v; want 2", n, err)
	}
	if n, _ := rot.RewrapKeys(ctx); n != 0 {
		t.Errorf("second RewrapKeys rewrote %d", n)
	}
	only, _ := modelstore.New(b, &modelstore.Options{MasterKey: newKey})
	if got, err := only.Get(ctx, "acme", "endpoints", "e"); err != nil || string(got) != "x" {
		t.Errorf("after rotation with only the new key: %q, %v", got, err)
	}
	stale, _ := modelstore.New(b, &modelstore.Options{MasterKey: master})
	if _, err := stale.Get(ctx, "acme", "endpoints", "e"); !errors.Is(err, modelstore.ErrCorrupt) {
		t.Errorf("retired key still opens: %v", err)
	}
}

// TestTimeout: a store that hangs answers ErrUnavailable after Timeout.
func TestTimeout(t *testing.T) {
	s, _ := modelstore.New(hang{memblob.New()}, &modelstore.Options{MasterKey: master, Timeout: 50 * time.Millisecond})
	start := time.Now()
	_, err := s.Get(context.Background(), "acme", "k", "n")
	if !errors.Is(err, modelstore.ErrUnavailable) {
		t.Errorf("hung store: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v", d)
	}
}

// hang is a driver whose Get blocks until the context ends, like a
// black-holed network.
type hang struct{ *memblob.Bucket }

func (h hang) Get(ctx context.Context, key string) (io.ReadCloser, driver.Attrs, error) {
	<-ctx.Done()
	return nil, driver.Attrs{}, ctx.Err()
}

// TestCompiled: shared compiled code is stored sealed, beyond the record
// size, bounded, listed by prefix, and a changed object does not open.
func TestCompiled(t *testing.T) {
	b := memblob.New()
	s, err := modelstore.New(b, &modelstore.Options{MasterKey: master})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	code := bytes.Repeat([]byte{0xc3, 0x90}, 1<<20) // 2 MiB: more than a record may be
	if err := s.CompiledPut(ctx, "abcd.0123.ff", code); err != nil {
		t.Fatal(err)
	}
	if got, err := s.CompiledGet(ctx, "abcd.0123.ff"); err != nil || !bytes.Equal(got, code) {
		t.Fatalf("CompiledGet: %d bytes, %v", len(got), err)
	}
	if names, err := s.CompiledList(ctx, "abcd.0123."); err != nil || strings.Join(names, ",") != "abcd.0123.ff" {
		t.Errorf("CompiledList = %q, %v", names, err)
	}
	if _, err := s.CompiledGet(ctx, "abcd.0123.00"); !errors.Is(err, modelstore.ErrNotFound) {
		t.Errorf("missing: %v", err)
	}
	if err := s.CompiledPut(ctx, "big", make([]byte, modelstore.MaxCompiledSize+1)); !errors.Is(err, modelstore.ErrTooLarge) {
		t.Errorf("too large: %v", err)
	}
	if err := s.CompiledPut(ctx, "../x", code); !errors.Is(err, modelstore.ErrInvalidName) {
		t.Errorf("bad name: %v", err)
	}
	// Machine code must come from this store's own seal: flip one byte.
	raw, ok := b.Raw("_system/compiled/abcd.0123.ff")
	if !ok {
		t.Fatal("no object _system/compiled/abcd.0123.ff")
	}
	raw = bytes.Clone(raw)
	raw[len(raw)/2] ^= 1
	if err := b.Put(ctx, "_system/compiled/abcd.0123.ff", bytes.NewReader(raw), int64(len(raw)), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CompiledGet(ctx, "abcd.0123.ff"); !errors.Is(err, modelstore.ErrCorrupt) {
		t.Errorf("tampered: %v, want ErrCorrupt", err)
	}
}
