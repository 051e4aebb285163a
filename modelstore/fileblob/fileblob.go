// Package fileblob is a [driver.Bucket] over a local folder: the embedded
// default store.
//
// # Overview
//
// Each object is one file at ROOT/KEY. A write goes to a temporary file in
// the same folder, is fsynced, and is then moved into place with rename(2)
// (overwrite) or link(2) (conditional create: link fails with EEXIST when the
// name is taken, atomically, even between processes). The folder is fsynced
// afterwards so the new name survives a crash. Readers therefore see the old
// file or the new one, never a partial one.
//
// Temporary files start with ".tmp-"; listings skip every name starting with
// '.', which the Store never produces. A process killed mid-write leaves
// its temporary file; [Bucket.Sweep] removes those not written to since a
// cutoff.
package fileblob

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aiaas/aiaas/internal/yield"
	"github.com/aiaas/aiaas/modelstore/driver"
)

// Bucket stores objects under a root folder. It is safe for concurrent use
// by goroutines and by several processes sharing the folder.
type Bucket struct {
	root string
	dirs *dirCache // sorted listings of large folders
}

// Open returns a bucket rooted at dir, creating the folder if needed.
func Open(dir string) (*Bucket, error) {
	if dir == "" {
		return nil, errors.New("fileblob: empty folder")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("fileblob: %w", err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("fileblob: %w", err)
	}
	return &Bucket{root: abs, dirs: newDirCache()}, nil
}

func (b *Bucket) path(key string) string { return filepath.Join(b.root, filepath.FromSlash(key)) }

func mapErr(key string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("fileblob: %s: %w", key, driver.ErrNotFound)
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("fileblob: %s: %w", key, driver.ErrExists)
	}
	return fmt.Errorf("fileblob: %s: %w", key, err)
}

// etag is derived from size and modification time: a replaced file gets a
// new inode and, at nanosecond resolution, a new time.
func attrs(key string, fi fs.FileInfo) driver.Attrs {
	return driver.Attrs{Key: key, Size: fi.Size(), ModTime: fi.ModTime(),
		ETag: strconv.FormatInt(fi.Size(), 16) + "-" + strconv.FormatInt(fi.ModTime().UnixNano(), 16)}
}

// Get implements driver.Bucket. It is goroutine-safe.
func (b *Bucket) Get(ctx context.Context, key string) (io.ReadCloser, driver.Attrs, error) {
	if err := ctx.Err(); err != nil {
		return nil, driver.Attrs{}, err
	}
	f, err := os.Open(b.path(key))
	if err != nil {
		return nil, driver.Attrs{}, mapErr(key, err)
	}
	fi, err := f.Stat()
	if err != nil || fi.IsDir() {
		f.Close()
		if err == nil {
			err = fs.ErrNotExist
		}
		return nil, driver.Attrs{}, mapErr(key, err)
	}
	return f, attrs(key, fi), nil
}

// Stat implements driver.Bucket. It is goroutine-safe.
func (b *Bucket) Stat(ctx context.Context, key string) (driver.Attrs, error) {
	if err := ctx.Err(); err != nil {
		return driver.Attrs{}, err
	}
	fi, err := os.Stat(b.path(key))
	if err == nil && fi.IsDir() {
		err = fs.ErrNotExist
	}
	if err != nil {
		return driver.Attrs{}, mapErr(key, err)
	}
	return attrs(key, fi), nil
}

// ctxReader stops a long copy when the context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Put implements driver.Bucket. It is goroutine-safe.
func (b *Bucket) Put(ctx context.Context, key string, r io.Reader, size int64, opts *driver.PutOptions) (err error) {
	if size < 0 {
		return fmt.Errorf("fileblob: %s: negative size", key)
	}
	dst := b.path(key)
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return mapErr(key, err)
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(dir, ".tmp-"+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return mapErr(key, err)
	}
	defer func() {
		if f != nil {
			f.Close()
		}
		os.Remove(tmp) // after rename/link this removes only the spare name
	}()
	n, err := io.Copy(f, io.LimitReader(ctxReader{ctx, r}, size))
	if err != nil {
		return mapErr(key, err)
	}
	if n != size {
		return fmt.Errorf("fileblob: %s: body is %d bytes, want %d", key, n, size)
	}
	var one [1]byte
	if m, _ := r.Read(one[:]); m > 0 {
		return fmt.Errorf("fileblob: %s: body longer than %d bytes", key, size)
	}
	stepAside()
	if err := fsync(f); err != nil {
		return mapErr(key, err)
	}
	if err := f.Close(); err != nil {
		f = nil
		return mapErr(key, err)
	}
	f = nil
	if opts != nil && opts.IfNotExists {
		err = os.Link(tmp, dst)
	} else {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		return mapErr(key, err)
	}
	b.dirs.drop(b.root, dir)
	return syncDir(dir)
}

// Sweep implements driver.Sweeper: it removes the temporary files of
// writes that died, those last modified before cutoff (a running write
// keeps its file's modification time current).
func (b *Bucket) Sweep(ctx context.Context, cutoff time.Time) (int, error) {
	n := 0
	err := filepath.WalkDir(b.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we walked
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || !strings.HasPrefix(d.Name(), ".tmp-") {
			return nil
		}
		fi, err := d.Info()
		if err != nil || !fi.ModTime().Before(cutoff) {
			return nil
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		n++
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("fileblob: sweep: %w", err)
	}
	return n, nil
}

// stepAside hands the processor to the goroutines already queued on it
// before a call that blocks in the kernel for milliseconds (an fsync).
//
// A goroutine in a system call keeps its processor (P) until the
// runtime's monitor takes it back, after 20 µs to 10 ms, and the
// goroutines queued on that processor wait meanwhile: the other
// processors take work from the global queue before they steal from
// another's. Under one tenant's load, another tenant's request that the
// network had just made runnable sat behind a 1–8 ms fsync of a store
// write (a trace of the fairness test's audit-reads class: about half of
// B's waits of over a millisecond). runtime.Gosched puts this goroutine
// on the global queue, so this processor runs its queue first and the
// write starts when it is empty. Twice: once in 61 rounds the scheduler
// looks at the global queue first, and would find this goroutine there.
// Each costs a fraction of a microsecond, against an fsync's
// milliseconds.
func stepAside() {
	runtime.Gosched()
	runtime.Gosched()
}

// fsync is (*os.File).Sync; a test replaces it to see what ran first.
var fsync = (*os.File).Sync

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	stepAside()
	// Some file systems refuse fsync on folders; the rename is done anyway.
	if err := fsync(d); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

// Delete implements driver.Bucket. It is goroutine-safe.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p := b.path(key)
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return mapErr(key, err)
	}
	b.dirs.drop(b.root, filepath.Dir(p))
	return nil
}

// List implements driver.Bucket. It is goroutine-safe.
func (b *Bucket) List(ctx context.Context, prefix string, opts *driver.ListOptions) ([]driver.Attrs, error) {
	var o driver.ListOptions
	if opts != nil {
		o = *opts
	}
	// Walk from the folder that holds the prefix: "a/b/c" starts in a/b.
	base := ""
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		base = prefix[:i]
	}
	start := b.path(base)
	if o.Delimiter == "/" {
		return b.listLevel(ctx, prefix, base, start, &o)
	}
	// Without the delimiter: every file under the prefix, however deep.
	var files []file
	// A folder of many thousand objects (a long audit log) takes
	// milliseconds to walk: give the processor to other requests meanwhile.
	var y yield.Point
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		y.Maybe()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(b.root, p)
		key := filepath.ToSlash(rel)
		if p == start {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			// Prune folders that cannot hold a match.
			kd := key + "/"
			if !strings.HasPrefix(kd, prefix) && !strings.HasPrefix(prefix, kd) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		if o.StartAfter != "" && key <= o.StartAfter {
			// Finish would drop it; paging through a large folder must
			// not stat every file before the page on every call.
			return nil
		}
		// Stat later, only what the page keeps: an audit log's first
		// page of 1,000 segments must not stat the other 9,000.
		files = append(files, file{key, d})
		return nil
	})
	if err != nil {
		return nil, mapErr(prefix, err)
	}
	return b.finishList(nil, "", "", files, 0, &o), nil
}

// listLevel is List with the delimiter: one folder's entries. A large
// folder's sorted names are kept while it is unchanged (dirCache), so a
// page of a folder of many thousand objects (a long audit log) is a stat
// and a binary search; otherwise the entries are read in the folder's own
// order and only those that match are sorted. Subfolders under the prefix
// are common prefixes.
func (b *Bucket) listLevel(ctx context.Context, prefix, base, dir string, o *driver.ListOptions) ([]driver.Attrs, error) {
	// Names are matched and sorted as they are and made keys only when
	// kept: a folder of thousands of objects costs no string for each.
	join, rest, after := "", prefix, o.StartAfter
	if base != "" {
		join, rest = base+"/", prefix[len(base)+1:]
		switch {
		case strings.HasPrefix(after, join):
			after = after[len(join):]
		case after > join:
			return nil, nil // every key here sorts before it
		default:
			after = "" // every key here sorts after it
		}
	}
	start := b.dirs.now()
	before, err := os.Stat(dir)
	if err != nil || !before.IsDir() {
		if err == nil || errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, nil // no folder, or a file where the folder would be
		}
		return nil, mapErr(prefix, err)
	}
	if l := b.dirs.get(dir, before); l != nil {
		return b.fromList(l, join, rest, after, dir, o), nil
	}
	f, err := os.Open(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, nil
		}
		return nil, mapErr(prefix, err)
	}
	defer f.Close()
	// A folder changed just now cannot be kept (dirCache): match as the
	// entries come instead of sorting them all.
	keep := b.dirs.settled(start, before)
	var (
		out        []driver.Attrs
		files      []file
		all, alldr []string
		y          yield.Point
	)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ents, err := f.ReadDir(1024)
		for _, d := range ents {
			name := d.Name()
			switch {
			case strings.HasPrefix(name, "."):
				// temporary files of a Put in progress
			case keep && d.IsDir():
				alldr = append(alldr, name)
			case keep:
				all = append(all, name)
			case d.IsDir():
				if strings.HasPrefix(name+"/", rest) {
					out = append(out, driver.Attrs{Key: join + name + "/"})
				}
			case strings.HasPrefix(name, rest) && (after == "" || name > after):
				files = append(files, file{name, d})
			}
		}
		if err == io.EOF || (err == nil && len(ents) == 0) {
			break
		}
		if errors.Is(err, syscall.ENOTDIR) {
			return nil, nil // a file where the folder would be
		}
		if err != nil {
			return nil, mapErr(prefix, err)
		}
		y.Maybe()
	}
	if keep {
		slices.Sort(all)
		slices.Sort(alldr)
		l := &dirList{files: all, dirs: alldr}
		b.dirs.keep(dir, start, before, l)
		return b.fromList(l, join, rest, after, dir, o), nil
	}
	return b.finishList(out, join, dir, files, len(out), o), nil
}

// fromList answers listLevel from folder dir's sorted listing l.
func (b *Bucket) fromList(l *dirList, join, rest, after, dir string, o *driver.ListOptions) []driver.Attrs {
	var out []driver.Attrs
	for _, name := range l.dirs {
		if strings.HasPrefix(name+"/", rest) {
			out = append(out, driver.Attrs{Key: join + name + "/"})
		}
	}
	limit := 0
	if o.Limit > 0 {
		limit = o.Limit + len(out)
	}
	names := l.page(rest, after, limit)
	files := make([]file, len(names))
	for i, n := range names {
		files[i] = file{key: n}
	}
	return b.finishList(out, join, dir, files, len(out), o)
}

// finishList sorts the files, reads the attributes of those the page
// keeps and adds them to out, which holds seen common prefixes, their keys
// each join followed by the file's; dir is the folder of files without a
// directory entry.
func (b *Bucket) finishList(out []driver.Attrs, join, dir string, files []file, seen int, o *driver.ListOptions) []driver.Attrs {
	slices.SortFunc(files, func(a, b file) int { return strings.Compare(a.key, b.key) })
	var y yield.Point
	for _, f := range files {
		if o.Limit > 0 && len(out) >= o.Limit+seen {
			// Enough files for the page whatever the folders (common
			// prefixes) sort among them; Finish cuts it to Limit.
			break
		}
		key := join + f.key
		if o.KeysOnly {
			out = append(out, driver.Attrs{Key: key})
			continue
		}
		y.Maybe()
		var (
			fi  fs.FileInfo
			err error
		)
		if f.d != nil {
			fi, err = f.d.Info()
		} else {
			fi, err = os.Lstat(filepath.Join(dir, f.key))
		}
		if err != nil {
			continue // removed while listing: the next file takes its place
		}
		out = append(out, attrs(key, fi))
	}
	return driver.Finish(out, o)
}

// file is a listed file whose attributes are read once the page is known;
// key is its key, or its name in a folder listed by listLevel; d is its
// directory entry, nil when it comes from a kept listing.
type file struct {
	key string
	d   fs.DirEntry
}

// Close implements driver.Bucket.
func (b *Bucket) Close() error { return nil }

// Path returns the file that holds key, for tests that inspect what is at
// rest.
func (b *Bucket) Path(key string) string { return b.path(key) }

var _ driver.Bucket = (*Bucket)(nil)
