package fileblob

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Listing a folder reads every entry of it: there is no way to start a
// directory read at a name. A tenant's audit log is one folder of one
// segment per flush, so a page of it (a List with StartAfter and a Limit of
// 100) read and sorted ten thousand names to return a hundred, about 10 ms
// of CPU a page. dirCache keeps the sorted names of large folders and
// answers a page by binary search.
//
// A cached listing is used only while the folder is unchanged, which its
// modification time tells: creating, renaming or removing an entry sets it,
// from this process or any other sharing the folder. The time is stamped
// from the kernel's coarse clock, so two changes a few milliseconds apart
// can carry the same stamp, and a listing read between them would look
// current after the second. The rule git uses for its index avoids that:
// a listing is kept only if the folder's time is older than the moment the
// read began by more than the clock's granularity (dirRacy), so every
// later change stamps a later time. A folder changed within that margin is
// listed from disk and not kept; the next List, once the margin has
// passed, keeps it.
//
// Two more guards bound what the rule cannot see (a wall clock stepped
// backwards, a file system whose times lie): this process' own writes drop
// the folder's listing at once, and a listing is re-read from disk after
// dirTTL whatever the folder's time says.
type dirCache struct {
	now func() time.Time

	mu    sync.Mutex
	m     map[string]*dirList
	names int    // names held, all folders
	tick  uint64 // use counter for LRU eviction
}

// dirList is one folder's sorted listing.
type dirList struct {
	ino, dev uint64
	mtime    int64     // UnixNano of the folder's modification time
	read     time.Time // when it was read
	files    []string  // regular files (and anything not a folder), sorted
	dirs     []string  // subfolders, sorted
	used     uint64
}

const (
	// dirCacheMin is the smallest folder worth keeping: a few hundred
	// entries read faster than they are kept in sync.
	dirCacheMin = 256
	// dirCacheMax bounds the names held, all folders together (about 40
	// bytes each with their slice: ~10 MiB).
	dirCacheMax = 1 << 18
	// dirRacy is the margin by which a folder's modification time must
	// precede the start of its read for the listing to be kept; a tenth
	// of a second covers the kernel's timestamp granularity (one tick, at
	// most 10 ms) many times over. File systems that store whole seconds
	// (a zero nanosecond part) get dirRacyCoarse.
	dirRacy       = 100 * time.Millisecond
	dirRacyCoarse = 2 * time.Second
	// dirTTL is how long a listing is trusted at most.
	dirTTL = 2 * time.Second
)

func newDirCache() *dirCache {
	return &dirCache{now: time.Now, m: map[string]*dirList{}}
}

// identity returns what tells one state of a folder from another.
func identity(fi os.FileInfo) (ino, dev uint64, mtime int64) {
	mtime = fi.ModTime().UnixNano()
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino, dev = uint64(st.Ino), uint64(st.Dev)
	}
	return ino, dev, mtime
}

// get returns the listing of folder dir if one is kept and fi (the
// folder's attributes, read now) says it is unchanged.
func (c *dirCache) get(dir string, fi os.FileInfo) *dirList {
	ino, dev, mtime := identity(fi)
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.m[dir]
	if l == nil {
		return nil
	}
	if l.ino != ino || l.dev != dev || l.mtime != mtime || c.now().Sub(l.read) >= dirTTL {
		c.dropLocked(dir, l)
		return nil
	}
	c.tick++
	l.used = c.tick
	return l
}

// keep stores l, the sorted listing of folder dir read after start,
// before being the folder's attributes from before the read, if the
// folder is large enough to be worth it, was unchanged throughout (its
// attributes are read again now) and last changed long enough before
// start. It reports whether it did.
func (c *dirCache) keep(dir string, start time.Time, before os.FileInfo, l *dirList) bool {
	n := len(l.files) + len(l.dirs)
	if n < dirCacheMin || n > dirCacheMax/4 || !c.settled(start, before) {
		return false
	}
	after, err := os.Stat(dir)
	if err != nil {
		return false
	}
	ino, dev, mtime := identity(before)
	ino2, dev2, mtime2 := identity(after)
	if ino != ino2 || dev != dev2 || mtime != mtime2 {
		return false // changed while it was read
	}
	l.ino, l.dev, l.mtime, l.read = ino, dev, mtime, start
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[dir]; old != nil {
		c.dropLocked(dir, old)
	}
	for c.names+n > dirCacheMax && len(c.m) > 0 {
		var (
			lru  string
			oldl *dirList
		)
		for k, v := range c.m {
			if oldl == nil || v.used < oldl.used {
				lru, oldl = k, v
			}
		}
		c.dropLocked(lru, oldl)
	}
	c.tick++
	l.used = c.tick
	c.m[dir] = l
	c.names += n
	return true
}

// settled reports whether a folder with attributes fi, read at start,
// last changed long enough before start that any later change stamps a
// later time: only then may its listing be kept.
func (c *dirCache) settled(start time.Time, fi os.FileInfo) bool {
	racy := dirRacy
	if fi.ModTime().Nanosecond() == 0 {
		racy = dirRacyCoarse
	}
	return fi.ModTime().Before(start.Add(-racy))
}

// drop forgets the listings of folder dir and of the folders above it up
// to root: this process changed dir, and may have created it.
func (c *dirCache) drop(root, dir string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) == 0 {
		return
	}
	for {
		if l := c.m[dir]; l != nil {
			c.dropLocked(dir, l)
		}
		if len(dir) <= len(root) {
			return
		}
		up := filepath.Dir(dir)
		if up == dir {
			return
		}
		dir = up
	}
}

func (c *dirCache) dropLocked(dir string, l *dirList) {
	delete(c.m, dir)
	c.names -= len(l.files) + len(l.dirs)
}

// page returns the names of l's files that start with rest and sort after
// after, at most limit of them (0: all), in order.
func (l *dirList) page(rest, after string, limit int) []string {
	lo := rest
	i, _ := slices.BinarySearch(l.files, lo)
	if after >= rest {
		j, found := slices.BinarySearch(l.files, after)
		if found {
			j++
		}
		i = max(i, j)
	}
	end := i
	for end < len(l.files) && (limit <= 0 || end-i < limit) && strings.HasPrefix(l.files[end], rest) {
		end++
	}
	return l.files[i:end]
}
