package fileblob

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/aiaas/aiaas/modelstore/driver"
	"github.com/aiaas/aiaas/modelstore/memblob"
)

// bigFolder fills a fileblob bucket and a memblob with the same keys: 600
// segments and a few subfolders in "t/log", and backdates the folder so
// its listing may be kept.
func bigFolder(t *testing.T) (*Bucket, *memblob.Bucket, string) {
	t.Helper()
	b, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := memblob.New()
	ctx := context.Background()
	put := func(key string) {
		for _, bk := range []driver.Bucket{b, m} {
			if err := bk.Put(ctx, key, bytes.NewReader([]byte(key)), int64(len(key)), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range 600 {
		put(fmt.Sprintf("t/log/seg-%06d", i*3))
	}
	for i := range 5 {
		put(fmt.Sprintf("t/log/seg-%06d-named/x", i*100))
		put(fmt.Sprintf("t/log/chain-%d", i))
	}
	dir := filepath.Dir(b.Path("t/log/seg-000000"))
	backdate(t, dir)
	return b, m, dir
}

func backdate(t *testing.T, dir string) {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(dir, old, old); err != nil {
		t.Fatal(err)
	}
}

func keys(as []driver.Attrs) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Key)
	}
	return out
}

// A kept listing answers every page exactly as a listing of the folder
// would: prefixes, StartAfter on and between names, limits, common
// prefixes, attributes.
func TestKeptListingAnswersLikeTheFolder(t *testing.T) {
	b, m, dir := bigFolder(t)
	ctx := context.Background()
	cases := []struct {
		prefix string
		o      driver.ListOptions
	}{
		{"t/log/", driver.ListOptions{Delimiter: "/"}},
		{"t/log/seg-", driver.ListOptions{Delimiter: "/", Limit: 100}},
		{"t/log/seg-", driver.ListOptions{Delimiter: "/", StartAfter: "t/log/seg-000300", Limit: 101}},
		{"t/log/seg-", driver.ListOptions{Delimiter: "/", StartAfter: "t/log/seg-000301", Limit: 3}},
		{"t/log/seg-", driver.ListOptions{Delimiter: "/", StartAfter: "t/log/seg-001797", Limit: 10}},
		{"t/log/seg-", driver.ListOptions{Delimiter: "/", StartAfter: "t/log/seg-9"}},
		{"t/log/seg-", driver.ListOptions{Delimiter: "/", StartAfter: "t/log/a", Limit: 2}},
		{"t/log/seg-", driver.ListOptions{Delimiter: "/", StartAfter: "t/", Limit: 2}},
		{"t/log/chain-", driver.ListOptions{Delimiter: "/", Limit: 1, KeysOnly: true}},
		{"t/log/seg-0001", driver.ListOptions{Delimiter: "/"}},
		{"t/log/seg-0006", driver.ListOptions{Delimiter: "/", StartAfter: "t/log/seg-000600", Limit: 3}},
		{"t/log/nothing", driver.ListOptions{Delimiter: "/"}},
		{"t/log/seg-000300", driver.ListOptions{Delimiter: "/"}},
	}
	for round := range 2 { // the first reads the folder, the second the kept listing
		for _, c := range cases {
			got, err := b.List(ctx, c.prefix, &c.o)
			if err != nil {
				t.Fatal(err)
			}
			want, err := m.List(ctx, c.prefix, &c.o)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(keys(got), keys(want)) {
				t.Errorf("round %d, List(%q, %+v):\n got %v\nwant %v", round, c.prefix, c.o, keys(got), keys(want))
			}
			for _, a := range got {
				if a.Key[len(a.Key)-1] != '/' && !c.o.KeysOnly && (a.Size != int64(len(a.Key)) || a.ETag == "" || a.ModTime.IsZero()) {
					t.Errorf("round %d: %s listed with %+v", round, a.Key, a)
				}
			}
		}
		if round == 0 && b.dirs.m[dir] == nil {
			t.Fatalf("a folder of 610 entries unchanged for an hour was not kept")
		}
	}
}

// A change by another process shows at once: the folder's time moves.
// A change that left the time as it was (a clock stepped back) shows
// once the listing's time to live has passed, and this process' own
// writes show at once whatever the time says.
func TestKeptListingSeesChanges(t *testing.T) {
	b, _, dir := bigFolder(t)
	now := time.Now()
	b.dirs.now = func() time.Time { return now }
	ctx := context.Background()
	list := func() []string {
		t.Helper()
		got, err := b.List(ctx, "t/log/seg-", &driver.ListOptions{Delimiter: "/", StartAfter: "t/log/seg-001790"})
		if err != nil {
			t.Fatal(err)
		}
		return keys(got)
	}
	list()
	if b.dirs.m[dir] == nil {
		t.Fatal("not kept")
	}

	// Another process writes: the folder's time moves on.
	if err := os.WriteFile(filepath.Join(dir, "seg-001798"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := list(); !slices.Contains(got, "t/log/seg-001798") {
		t.Fatalf("another writer's file not listed: %v", got)
	}
	backdate(t, dir)
	list() // kept again

	// Another process writes and the folder keeps its old time.
	old, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "seg-001799"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(dir, old.ModTime(), old.ModTime()); err != nil {
		t.Fatal(err)
	}
	now = now.Add(dirTTL)
	if got := list(); !slices.Contains(got, "t/log/seg-001799") {
		t.Fatalf("after the time to live, the listing is still the old one: %v", got)
	}

	// This process writes, and the folder keeps its old time.
	list()
	if b.dirs.m[dir] == nil {
		t.Fatal("not kept")
	}
	if err := b.Put(ctx, "t/log/seg-001800", bytes.NewReader([]byte("y")), 1, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(dir, old.ModTime(), old.ModTime()); err != nil {
		t.Fatal(err)
	}
	if got := list(); !slices.Contains(got, "t/log/seg-001800") {
		t.Fatalf("this process' own write not listed: %v", got)
	}
	if err := b.Delete(ctx, "t/log/seg-001800"); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(dir, old.ModTime(), old.ModTime()); err != nil {
		t.Fatal(err)
	}
	if got := list(); slices.Contains(got, "t/log/seg-001800") {
		t.Fatalf("this process' own delete still listed: %v", got)
	}
}

// A folder changed within the margin is listed from disk and not kept:
// a change in the same clock tick could not be told apart.
func TestRecentFolderNotKept(t *testing.T) {
	b, _, dir := bigFolder(t)
	now := time.Now()
	if err := os.Chtimes(dir, now, now); err != nil {
		t.Fatal(err)
	}
	b.dirs.now = func() time.Time { return now.Add(dirRacy / 2) }
	if _, err := b.List(context.Background(), "t/log/", &driver.ListOptions{Delimiter: "/", Limit: 5}); err != nil {
		t.Fatal(err)
	}
	if b.dirs.m[dir] != nil {
		t.Fatal("a folder changed within the margin was kept")
	}
	b.dirs.now = func() time.Time { return now.Add(2 * dirRacy) }
	if _, err := b.List(context.Background(), "t/log/", &driver.ListOptions{Delimiter: "/", Limit: 5}); err != nil {
		t.Fatal(err)
	}
	if b.dirs.m[dir] == nil {
		t.Fatal("a folder settled past the margin was not kept")
	}
}

// Kept listings stay within dirCacheMax names: the least recently used
// folder goes first.
func TestKeptListingsBounded(t *testing.T) {
	c := newDirCache()
	fi := func(dir string) os.FileInfo {
		t.Helper()
		st, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	names := make([]string, dirCacheMax/4)
	for i := range names {
		names[i] = fmt.Sprintf("n%07d", i)
	}
	var dirs []string
	for range 6 {
		d := t.TempDir()
		backdate(t, d)
		dirs = append(dirs, d)
		st := fi(d)
		if !c.keep(d, time.Now(), st, &dirList{files: names}) {
			t.Fatal("not kept")
		}
		if c.names > dirCacheMax {
			t.Fatalf("%d names held, bound %d", c.names, dirCacheMax)
		}
	}
	if c.m[dirs[0]] != nil || c.m[dirs[5]] == nil {
		t.Errorf("eviction kept the oldest folder or dropped the newest")
	}
}

// BenchmarkListPage reads a page of 100 keys from the middle of a folder
// of 10,000 (an audit log of 10,000 segments): "kept" with the folder
// settled, "changing" with the folder just changed, so that every List
// reads it from disk as before dirCache.
func BenchmarkListPage(b *testing.B) {
	bk, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	dir := filepath.Dir(bk.Path("t/log/x"))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	for i := range 10000 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seg-%08d", i)), []byte("x"), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	o := &driver.ListOptions{Delimiter: "/", StartAfter: "t/log/seg-00005000", Limit: 100, KeysOnly: true}
	for _, mode := range []string{"kept", "changing"} {
		b.Run(mode, func(b *testing.B) {
			old := time.Now().Add(-time.Hour)
			if mode == "changing" {
				old = time.Now()
				bk.dirs.now = func() time.Time { return old } // always within the margin
			}
			if err := os.Chtimes(dir, old, old); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				got, err := bk.List(context.Background(), "t/log/seg-", o)
				if err != nil || len(got) != 100 {
					b.Fatal(len(got), err)
				}
			}
		})
	}
}
