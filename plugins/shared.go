package plugins

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// SharedCache shares compiled plugin code between processes that use one
// store — the execution environments of a Lambda function, each of which
// would otherwise compile every plugin on its first call (half a second
// and more for a Go-built module). Names are up to 114 characters of
// [0-9a-f.]. Implementations must return an error wrapping
// os.ErrNotExist from Get for a missing name, and must guarantee that what
// Get returns is what this system's own Put stored: the bytes are machine
// code (the platform's implementation seals them with the store's system
// key, so a tampered object fails to open).
type SharedCache interface {
	List(ctx context.Context, prefix string) ([]string, error)
	Get(ctx context.Context, name string) ([]byte, error)
	Put(ctx context.Context, name string, data []byte) error
}

// sharedTimeout bounds each exchange with the shared cache: on a slow or
// failing store, compiling locally is the fallback, not waiting.
const sharedTimeout = 5 * time.Second

// shared is a Host's link to its SharedCache. wazero keeps its compiled
// code in one folder per wazero version, architecture and OS under
// CacheDir, a file per module named by a key that covers the module's
// bytes, the compiler's options and the CPU's features; those files are
// what is shared, under the module's sha256. A process on a CPU with
// other features finds no file with its key, compiles, and adds its own.
type shared struct {
	c   SharedCache
	dir string // wazero's folder for this version and platform
	tag string // short digest of that folder's name: the store's namespace
	log func(msg string, args ...any)

	// mu makes compilations one at a time while sharing is on, so the
	// files a compilation adds to dir are known to be its module's.
	mu sync.Mutex
	// putFailed: this process may not write (Lambda's infer role is
	// read-only but for audit records); say so once, then stop trying.
	putFailed sync.Once
	readOnly  bool
	// done: modules this process has fetched or compiled (guarded by mu);
	// wazero keeps their code in memory, so the store is asked once.
	done map[[32]byte]bool
}

func newShared(c SharedCache, cacheDir string, log func(string, ...any)) (*shared, error) {
	dirs, err := filepath.Glob(filepath.Join(cacheDir, "wazero-*"))
	if err != nil || len(dirs) != 1 {
		return nil, fmt.Errorf("plugins: shared cache: want one wazero folder in %s, found %v (%v)", cacheDir, dirs, err)
	}
	sum := sha256.Sum256([]byte(filepath.Base(dirs[0])))
	return &shared{c: c, dir: dirs[0], tag: hex.EncodeToString(sum[:4]), log: log, done: map[[32]byte]bool{}}, nil
}

func (s *shared) prefix(module [32]byte) string {
	return s.tag + "." + hex.EncodeToString(module[:20]) + "."
}

// compile runs fn, a compilation of module, with the module's shared code
// fetched first and the code it adds shared after.
func (s *shared) compile(ctx context.Context, module [32]byte, fn func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done[module] {
		return fn()
	}
	s.fetch(ctx, module)
	before := s.files()
	if err := fn(); err != nil {
		return err
	}
	s.done[module] = true
	s.share(context.WithoutCancel(ctx), module, before)
	return nil
}

// files lists the compiled-code files in dir.
func (s *shared) files() map[string]bool {
	out := map[string]bool{}
	ents, _ := os.ReadDir(s.dir)
	for _, e := range ents {
		if n := e.Name(); e.Type().IsRegular() && isHexName(n) {
			out[n] = true
		}
	}
	return out
}

// fetch writes the module's shared files missing from dir. Failures only
// mean a local compilation; they are logged.
func (s *shared) fetch(ctx context.Context, module [32]byte) (fetched int) {
	ctx, cancel := context.WithTimeout(ctx, sharedTimeout)
	defer cancel()
	p := s.prefix(module)
	names, err := s.c.List(ctx, p)
	if err != nil {
		s.log("plugin code: shared cache list failed; compiling here", "err", err)
		return 0
	}
	have := s.files()
	for _, n := range names {
		file := strings.TrimPrefix(n, p)
		if !isHexName(file) || have[file] {
			continue
		}
		b, err := s.c.Get(ctx, n)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				s.log("plugin code: shared cache get failed; compiling here", "name", n, "err", err)
			}
			continue
		}
		if err := writeAtomic(filepath.Join(s.dir, file), b); err != nil {
			s.log("plugin code: writing the compilation cache failed", "err", err)
			continue
		}
		fetched++
	}
	if fetched > 0 {
		s.log("plugin code from the shared cache", "module", hex.EncodeToString(module[:]), "files", fetched)
	}
	return fetched
}

// share puts the files a compilation added (those not in before).
func (s *shared) share(ctx context.Context, module [32]byte, before map[string]bool) (put int) {
	if s.readOnly {
		return 0
	}
	ctx, cancel := context.WithTimeout(ctx, sharedTimeout)
	defer cancel()
	for n := range s.files() {
		if before[n] {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.dir, n))
		if err != nil {
			continue
		}
		if err := s.c.Put(ctx, s.prefix(module)+n, b); err != nil {
			s.putFailed.Do(func() {
				s.readOnly = true
				s.log("plugin code: this process cannot write the shared cache; it only reads it from now on", "err", err)
			})
			return put
		}
		put++
	}
	return put
}

func isHexName(n string) bool {
	if len(n) != 64 {
		return false
	}
	for _, c := range n {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// writeAtomic writes path through a temporary file and a rename, as
// wazero's own cache does, so a reader never sees half a file.
func writeAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
