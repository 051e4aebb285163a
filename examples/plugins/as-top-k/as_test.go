// Package astopk_test builds the AssemblyScript top-k plugin with npm and
// asc, and runs it through the real plugin host next to the Go top-k
// plugin built from source: same input, same predictions. It is the proof
// that plugin ABI v1 is language-neutral (no Go runtime, no WASI).
package astopk_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aiaas/aiaas/internal/safetensors"
	"github.com/aiaas/aiaas/plugins"
)

var (
	buildOnce      sync.Once
	asWasm, goWasm []byte
	buildErr       error
	npmMissing     bool
)

// modules builds both plugins once per test binary: the AssemblyScript one
// with `npm ci` + build.sh in a temporary copy of this folder (so the
// source tree gets no node_modules), the Go one with GOOS=wasip1.
func modules(t testing.TB) (as, gowasm []byte) {
	t.Helper()
	buildOnce.Do(func() {
		if _, err := exec.LookPath("npm"); err != nil {
			npmMissing = true
			return
		}
		dir, err := os.MkdirTemp("", "as-top-k-")
		if err != nil {
			buildErr = err
			return
		}
		defer os.RemoveAll(dir)
		for _, f := range []string{"package.json", "package-lock.json", "build.sh"} {
			b, err := os.ReadFile(f)
			if err != nil {
				buildErr = err
				return
			}
			if err := os.WriteFile(filepath.Join(dir, f), b, 0o755); err != nil {
				buildErr = err
				return
			}
		}
		if buildErr = os.CopyFS(filepath.Join(dir, "assembly"), os.DirFS("assembly")); buildErr != nil {
			return
		}
		run := func(name string, env []string, args ...string) bool {
			cmd := exec.Command(name, args...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), env...)
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = errors.New(strings.Join(append([]string{name}, args...), " ") + ": " + err.Error() + "\n" + string(out))
				return false
			}
			return true
		}
		// --prefer-offline: the lock file pins the exact tarballs, so the
		// npm cache serves them without a registry round trip once warm.
		if !run("npm", nil, "ci", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts") ||
			!run("sh", nil, "./build.sh", "out/as-top-k.wasm") {
			return
		}
		if asWasm, buildErr = os.ReadFile(filepath.Join(dir, "out/as-top-k.wasm")); buildErr != nil {
			return
		}
		root, err := filepath.Abs("../../..")
		if err != nil {
			buildErr = err
			return
		}
		goOut := filepath.Join(dir, "top-k.wasm")
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", goOut, "./examples/plugins/top-k")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = errors.New("go build top-k: " + err.Error() + "\n" + string(out))
			return
		}
		goWasm, buildErr = os.ReadFile(goOut)
	})
	if npmMissing {
		t.Skip("npm is not installed: cannot build the AssemblyScript plugin (make test installs it)")
	}
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return asWasm, goWasm
}

func moduleOf(wasm []byte) plugins.Module {
	sum := sha256.Sum256(wasm)
	return plugins.Module{
		SHA256: hex.EncodeToString(sum[:]),
		Load:   func(context.Context) ([]byte, error) { return wasm, nil },
	}
}

func newHost(t testing.TB) *plugins.Host {
	t.Helper()
	h, err := plugins.New(context.Background(), &plugins.Options{
		CacheDir: filepath.Join(os.TempDir(), "aiaas-as-top-k-test-wazero"),
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

func TestValidate(t *testing.T) {
	as, _ := modules(t)
	h := newHost(t)
	info, err := h.Validate(context.Background(), as)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Kind.Has(plugins.Postprocess) || info.Kind.Has(plugins.Preprocess) || info.ABIVersion != 1 {
		t.Errorf("kind %v, ABI %d; want postprocess, 1", info.Kind, info.ABIVersion)
	}
	for _, e := range []string{"aiaas_abi_v1", "aiaas_alloc", "aiaas_postprocess", "memory"} {
		if !slices.Contains(info.Exports, e) {
			t.Errorf("exports %v lack %s", info.Exports, e)
		}
	}
	// The point of the exercise: no WASI, no env.abort, only the host's functions.
	for _, imp := range info.Imports {
		if !strings.HasPrefix(imp, "aiaas_v1.") {
			t.Errorf("import %s; want only aiaas_v1 functions (imports %v)", imp, info.Imports)
		}
	}
	t.Logf("%d bytes, exports %v, imports %v", info.Size, info.Exports, info.Imports)

	// The module declares no memory maximum, so a host with a small cap
	// takes it (a Go-built module needs 3–8 MiB just to start).
	small, err := plugins.New(context.Background(), &plugins.Options{
		CacheDir:         filepath.Join(os.TempDir(), "aiaas-as-top-k-test-wazero"),
		Logger:           slog.New(slog.NewTextHandler(io.Discard, nil)),
		MemoryLimitPages: 4, // 256 KiB
	})
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close(context.Background())
	if _, err := small.Validate(context.Background(), as); err != nil {
		t.Fatalf("256 KiB host: %v", err)
	}
	body, _, err := small.Postprocess(context.Background(), "t", moduleOf(as), &safetensors.File{Tensors: []safetensors.Tensor{f32("output", []int{1, 10}, probs...)}})
	if err != nil || !bytes.Contains(body, []byte(`"index":7`)) {
		t.Errorf("256 KiB host: %s, %v", body, err)
	}
	// Over the cap: a limit error, not a trap or a hang.
	_, _, err = small.Postprocess(context.Background(), "t", moduleOf(as), &safetensors.File{Tensors: []safetensors.Tensor{f32("output", []int{1, 100000}, make([]float32, 100000)...)}})
	if !errors.Is(err, plugins.ErrLimit) {
		t.Errorf("400 KB input in a 256 KiB host: %v; want ErrLimit (aiaas_alloc returns 0)", err)
	}
	t.Logf("400 KB input in a 256 KiB host: %v", err)
}

type prediction struct {
	Label string  `json:"label"`
	Index int     `json:"index"`
	Score float64 `json:"score"`
}

func decode(t *testing.T, i int, body []byte) []prediction {
	t.Helper()
	var got struct {
		Predictions []prediction `json:"predictions"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("%d: %v: %s", i, err, body)
	}
	return got.Predictions
}

// cases are shared by the comparison test and the benchmark.
var probs = []float32{.01, .02, .05, .01, .01, .05, .01, .80, .02, .02}

func f32(name string, shape []int, v ...float32) safetensors.Tensor {
	return safetensors.F32(name, shape, v)
}

func TestSameAsGo(t *testing.T) {
	as, gw := modules(t)
	h := newHost(t)
	ctx := context.Background()
	asMod, goMod := moduleOf(as), moduleOf(gw)
	ramp := make([]float32, 1000)
	for i := range ramp {
		ramp[i] = float32((i*7919)%1000) / 100 // logits, a permutation of 0..9.99
	}
	big := make([]float32, 100000)
	for i := range big {
		big[i] = float32((i*7919)%100003) / 1000
	}
	cases := []struct {
		ts   []safetensors.Tensor
		meta map[string]string
	}{
		0:  {[]safetensors.Tensor{f32("output", []int{1, 10}, probs...)}, nil},
		1:  {[]safetensors.Tensor{f32("output", []int{1, 10}, probs...)}, map[string]string{"k": "5"}},
		2:  {[]safetensors.Tensor{f32("output", []int{1, 10}, probs...)}, map[string]string{"k": "100"}}, // K=10 < k
		3:  {[]safetensors.Tensor{f32("logits", []int{1, 3}, -5, 20, 3)}, map[string]string{"k": "+2"}},  // softmax
		4:  {[]safetensors.Tensor{f32("output", []int{1, 1}, 42)}, nil},                                  // K=1, softmax → 1
		5:  {[]safetensors.Tensor{f32("output", []int{1}, 1)}, map[string]string{"k": "1"}},              // K=1, already a distribution
		6:  {[]safetensors.Tensor{f32("output", []int{1, 10}, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9)}, map[string]string{"k": "10"}},
		7:  {[]safetensors.Tensor{f32("x", []int{1, 1000}, ramp...)}, map[string]string{"k": "7"}},
		8:  {[]safetensors.Tensor{f32("output", []int{1, 4}, .25, .25, .25, .25)}, map[string]string{"k": "4"}}, // ties to the lower index
		9:  {[]safetensors.Tensor{f32("a", []int{2}, .5, .5), f32("output", []int{10}, probs...)}, map[string]string{"labels": " zero, one,two,three,four,five,six,seven \t", "k": "3"}},
		10: {[]safetensors.Tensor{f32("a", []int{2}, .5, .5), f32("b", []int{1, 3}, 1, 2, 3)}, map[string]string{"output": "b", "labels": `q"uote,back\slash,ctl` + "\x01,é ü,😀"}},
		11: {[]safetensors.Tensor{f32("output", []int{1, 3}, float32(math.NaN()), 1, 2)}, nil},
		12: {[]safetensors.Tensor{f32("output", []int{1, 4}, 1e-9, 1e-7, 1-1.1e-7, 0)}, map[string]string{"k": "4"}}, // exponent formatting
		13: {[]safetensors.Tensor{f32("output", []int{1, 3}, 1000, 0, -1000)}, map[string]string{"k": "3"}},
		14: {[]safetensors.Tensor{f32("output", []int{1, 2}, .3, .7)}, map[string]string{"k": "3", "unused": `{"not":"parsed"}`}},
		15: {[]safetensors.Tensor{f32("output", []int{1, 2}, .5, .505)}, nil},     // sum 1.005: softmax
		16: {[]safetensors.Tensor{f32("output", []int{1, 2}, .4995, .4995)}, nil}, // sum 0.999: kept
		17: {[]safetensors.Tensor{f32("output", []int{1, 2}, -.1, 1.1)}, nil},     // a negative: softmax
	}
	for i, c := range cases {
		in := &safetensors.File{Tensors: c.ts, Metadata: c.meta}
		want, wct, err := h.Postprocess(ctx, "tenant", goMod, in)
		if err != nil {
			t.Fatalf("%d: go: %v", i, err)
		}
		got, gct, err := h.Postprocess(ctx, "tenant", asMod, in)
		if err != nil {
			t.Errorf("%d: as: %v", i, err)
			continue
		}
		if gct != wct || gct != "application/json" {
			t.Errorf("%d: content type %q, go %q", i, gct, wct)
		}
		g, w := decode(t, i, got), decode(t, i, want)
		if len(g) != len(w) {
			t.Errorf("%d: as %s\ngo %s", i, got, want)
			continue
		}
		for j := range g {
			if g[j].Label != w[j].Label || g[j].Index != w[j].Index ||
				math.Abs(g[j].Score-w[j].Score) > 1e-6*math.Max(1, math.Abs(w[j].Score)) {
				t.Errorf("%d: prediction %d: as %+v, go %+v\nas %s\ngo %s", i, j, g[j], w[j], got, want)
			}
		}
		if !bytes.Equal(got, want) {
			// The AssemblyScript score formatting reproduces Go's
			// strconv 'g' with 6 digits; on these inputs it is exact.
			t.Errorf("%d: bytes differ\nas %s\ngo %s", i, got, want)
		}
	}
}

// TestErrors: inputs that the host accepts (valid safetensors) but the
// plugin must refuse, with the Go plugin's message, as ErrPluginError.
func TestErrors(t *testing.T) {
	as, gw := modules(t)
	h := newHost(t)
	ctx := context.Background()
	cases := []struct {
		ts   []safetensors.Tensor
		meta map[string]string
		want string
	}{
		0: {[]safetensors.Tensor{f32("a", []int{2}, 1, 2), f32("b", []int{2}, 1, 2)}, nil, `top-k: no tensor named "output" among 2`},
		1: {[]safetensors.Tensor{f32("output", []int{2}, 1, 2)}, map[string]string{"output": "zz"}, `top-k: no tensor named "zz" among 1`},
		2: {[]safetensors.Tensor{f32("output", []int{2, 5}, probs...)}, nil, "want [K] or [1,K]"},
		3: {[]safetensors.Tensor{f32("output", []int{}, 1)}, nil, "want [K] or [1,K]"},
		4: {[]safetensors.Tensor{{Name: "output", DType: "U8", Shape: []int{1}, Data: []byte{1}}}, nil, "want F32"},
		5: {[]safetensors.Tensor{f32("output", []int{0})}, nil, "top-k: no scores"},
		6: {[]safetensors.Tensor{f32("output", []int{2}, 1, 2)}, map[string]string{"k": "x"}, `top-k: parameter k="x"; want an integer in 1..100`},
		7: {[]safetensors.Tensor{f32("output", []int{2}, 1, 2)}, map[string]string{"k": "101"}, "want an integer in 1..100"},
		8: {[]safetensors.Tensor{f32("output", []int{2}, 1, 2)}, map[string]string{"k": "0"}, "want an integer in 1..100"},
		9: {[]safetensors.Tensor{f32("output", []int{2}, 1, 2)}, map[string]string{"k": ""}, "want an integer in 1..100"},
	}
	for i, c := range cases {
		in := &safetensors.File{Tensors: c.ts, Metadata: c.meta}
		for _, m := range []struct {
			lang string
			wasm []byte
		}{{"as", as}, {"go", gw}} {
			_, _, err := h.Postprocess(ctx, "tenant", moduleOf(m.wasm), in)
			if !errors.Is(err, plugins.ErrPluginError) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%d: %s: err %v; want ErrPluginError with %q", i, m.lang, err, c.want)
			}
		}
	}
}

// BenchmarkPostprocess is one postprocess call through the host, MNIST
// sized ([1,10] probabilities, k=3): the AssemblyScript plugin against the
// Go one, same host, same input. Instances are pooled, so this measures
// the steady state, not instantiation.
func BenchmarkPostprocess(b *testing.B) {
	as, gw := modules(b)
	h := newHost(b)
	in := &safetensors.File{Tensors: []safetensors.Tensor{f32("output", []int{1, 10}, probs...)}}
	for _, m := range []struct {
		name string
		wasm []byte
	}{{"as", as}, {"go", gw}} {
		b.Run(m.name, func(b *testing.B) {
			mod := moduleOf(m.wasm)
			ctx := context.Background()
			if _, _, err := h.Postprocess(ctx, "bench", mod, in); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			var d []time.Duration
			for b.Loop() {
				t0 := time.Now()
				if _, _, err := h.Postprocess(ctx, "bench", mod, in); err != nil {
					b.Fatal(err)
				}
				d = append(d, time.Since(t0))
			}
			slices.Sort(d)
			b.ReportMetric(float64(d[len(d)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(d[len(d)*99/100].Nanoseconds()), "p99-ns")
			b.ReportMetric(float64(len(m.wasm)), "module-bytes")
		})
	}
}

// BenchmarkValidate is an upload's validation: decode and compile (machine
// code from the on-disk cache after the first run), one instantiation
// with _initialize, the ABI checks.
func BenchmarkValidate(b *testing.B) {
	as, gw := modules(b)
	h := newHost(b)
	for _, m := range []struct {
		name string
		wasm []byte
	}{{"as", as}, {"go", gw}} {
		b.Run(m.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := h.Validate(context.Background(), m.wasm); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
