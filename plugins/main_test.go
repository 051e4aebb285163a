package plugins

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
)

// Modules built from source in TestMain, by name.
var built = map[string][]byte{}

// guestSources are the packages built into test modules, relative to the
// module root.
var guestSources = map[string]string{
	"identity":      "examples/plugins/identity",
	"png-to-tensor": "examples/plugins/png-to-tensor",
	"top-k":         "examples/plugins/top-k",
	"hostile":       "plugins/testdata/hostile",
}

func TestMain(m *testing.M) {
	_, err := buildGuests()
	if err != nil {
		fmt.Fprintln(os.Stderr, "building test plugins:", err)
		os.Exit(1)
	}

	os.Exit(m.Run())
}

// buildGuests builds every guest with GOOS=wasip1, caching the result
// under os.TempDir by a hash of everything that goes into it, so reruns
// skip the (multi-second) builds.
func buildGuests() ([]string, error) {
	root, err := filepath.Abs("..")
	if err != nil {
		return nil, err
	}
	var paths []string
	// Inputs common to every guest: the SDK, the codec, go.mod, the toolchain.
	common := sha256.New()
	fmt.Fprintln(common, runtime.Version())
	for _, dir := range []string{"sdk/plugin", "internal/safetensors", "go.mod"} {
		if err := hashTree(common, filepath.Join(root, dir)); err != nil {
			return nil, err
		}
	}
	cacheDir := filepath.Join(os.TempDir(), "aiaas-plugin-builds")
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		return nil, err
	}
	for name, src := range guestSources {
		h := sha256.New()
		h.Write(common.Sum(nil))
		if err := hashTree(h, filepath.Join(root, src)); err != nil {
			return nil, err
		}
		out := filepath.Join(cacheDir, name+"-"+hex.EncodeToString(h.Sum(nil))[:16]+".wasm")
		paths = append(paths, out)
		if b, err := os.ReadFile(out); err == nil {
			built[name] = b
			continue
		}
		tmp := out + ".tmp" + fmt.Sprint(os.Getpid())
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", tmp, "./"+src)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build %s: %v\n%s", src, err, b)
		}
		if err := os.Rename(tmp, out); err != nil {
			return nil, err
		}
		if built[name], err = os.ReadFile(out); err != nil {
			return nil, err
		}
	}
	return paths, nil
}

func hashTree(h interface{ Write([]byte) (int, error) }, path string) error {
	var files []string
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".go") || strings.HasSuffix(p, ".mod")) && !strings.HasSuffix(p, "_test.go") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %d\n", filepath.Base(f), len(b))
		h.Write(b)
	}
	return nil
}

// moduleOf returns a Module for wasm bytes.
func moduleOf(wasm []byte) Module {
	sum := sha256.Sum256(wasm)
	return Module{
		SHA256: hex.EncodeToString(sum[:]),
		Load:   func(context.Context) ([]byte, error) { return wasm, nil },
	}
}

func mod(t testing.TB, name string) Module {
	t.Helper()
	b, ok := built[name]
	if !ok {
		t.Fatalf("no built module %q", name)
	}
	return moduleOf(b)
}

// sharedCacheDir keeps compiled machine code across test runs; tests that
// measure cold compilation use their own folder.
var sharedCacheDir = filepath.Join(os.TempDir(), "aiaas-plugin-test-wazero-cache")

func newHost(t testing.TB, o *Options) *Host {
	t.Helper()
	var opts Options
	if o != nil {
		opts = *o
	}
	if opts.CacheDir == "" {
		opts.CacheDir = sharedCacheDir
	}
	if opts.Logger == nil {
		opts.Logger = discardLogger
	}
	h, err := New(context.Background(), &opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return h
}
