package platform_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/platform"
	"github.com/aiaas/aiaas/platform/config"
	"github.com/aiaas/aiaas/plugins"
)

var (
	wasmOnce  sync.Once
	wasmFiles map[string][]byte
	wasmErr   error
)

// examplePlugins builds the example plugins from source, once per test
// binary (the Go build cache makes a rebuild cheap).
func examplePlugins(t *testing.T) map[string][]byte {
	t.Helper()
	wasmOnce.Do(func() {
		dir, err := os.MkdirTemp("", "aiaas-platform-plugins")
		if err != nil {
			wasmErr = err
			return
		}
		wasmFiles = map[string][]byte{}
		// The tokenizer plugins embed vocabularies fetched and compiled
		// by scripts/fetch-vocab.sh (make test's deps run it too).
		fetch := exec.Command("scripts/fetch-vocab.sh")
		fetch.Dir = ".."
		if b, err := fetch.CombinedOutput(); err != nil {
			wasmErr = fmt.Errorf("scripts/fetch-vocab.sh: %v\n%s", err, b)
			return
		}
		for _, name := range []string{"png-to-tensor", "top-k", "wordpiece", "bpe", "pool"} {
			out := filepath.Join(dir, name+".wasm")
			cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "./examples/plugins/"+name)
			cmd.Dir = ".."
			cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
			if b, err := cmd.CombinedOutput(); err != nil {
				wasmErr = fmt.Errorf("build %s: %v\n%s", name, err, b)
				return
			}
			if wasmFiles[name], err = os.ReadFile(out); err != nil {
				wasmErr = err
				return
			}
		}
	})
	if wasmErr != nil {
		t.Fatal(wasmErr)
	}
	return wasmFiles
}

func newEnvWithPlugins(t *testing.T, mutate ...func(*config.Config)) *env {
	t.Helper()
	ctx := context.Background()
	cfg := config.Default()
	cfg.AdminKey = adminKey
	cfg.MasterKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	for _, f := range mutate {
		f(&cfg)
	}
	key, _ := cfg.MasterKeyBytes()
	ms, err := modelstore.Open(ctx, "mem://", &modelstore.Options{MasterKey: key})
	if err != nil {
		t.Fatal(err)
	}
	// Generous guest deadlines: these tests are about behaviour, and a Go
	// module's first start under -race on a busy 2-core machine has taken
	// longer than the 5 s default.
	host, err := plugins.New(ctx, &plugins.Options{CacheDir: filepath.Join(os.TempDir(), "aiaas-platform-test-wazero"),
		InitTimeout: time.Minute, CallTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := platform.New(ctx, platform.Options{Config: cfg, Store: platform.StoreFrom(ms), Plugins: host})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvFor(t, srv, ms)
	t.Cleanup(func() { host.Close(context.Background()) })
	return e
}

// mnistLike publishes a model with the MNIST signature (784 → 10).
func mnistLike(t *testing.T, e *env, key string) {
	t.Helper()
	spec := mnistSpec()
	r := e.do("POST", "/v1/models/digits/versions", key, artifactOf(t, spec, 1))
	if r.status != 201 {
		t.Fatalf("publish: %d %s", r.status, r.body)
	}
}

func digitPNG(t *testing.T) []byte {
	img := image.NewGray(image.Rect(0, 0, 112, 112))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	for y := 20; y < 92; y++ { // a thick vertical stroke: a "1"
		for x := 50; x < 62; x++ {
			img.SetGray(x, y, color.Gray{Y: 0})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestEndpointWithPlugins(t *testing.T) {
	e := newEnvWithPlugins(t)
	key := e.tenant("acme")
	mnistLike(t, e, key)
	wasm := examplePlugins(t)
	for _, name := range []string{"png-to-tensor", "top-k"} {
		r := e.do("PUT", "/v1/plugins/"+name, key, wasm[name], "Content-Type", "application/wasm")
		if r.status != 201 || !strings.Contains(string(r.body), `"abi_version":1`) {
			t.Fatalf("upload %s: %d %s", name, r.status, r.body)
		}
	}
	if r := e.do("PUT", "/v1/plugins/garbage", key, []byte("\x00asm garbage")); r.status != 400 {
		t.Fatalf("garbage plugin: %d %s", r.status, r.body)
	}
	if r := e.do("PUT", "/v1/endpoints/digits", key, map[string]string{"model": "digits", "preprocess": "png-to-tensor", "postprocess": "top-k"}); r.status != 201 {
		t.Fatalf("endpoint: %d %s", r.status, r.body)
	}
	r := e.do("POST", "/v1/endpoints/digits/invoke?k=5", key, digitPNG(t), "Content-Type", "image/png")
	if r.status != 200 || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("invoke: %d %s", r.status, r.body)
	}
	var out struct {
		Predictions []struct {
			Label string  `json:"label"`
			Score float64 `json:"score"`
		} `json:"predictions"`
	}
	if err := json.Unmarshal(r.body, &out); err != nil || len(out.Predictions) != 5 {
		t.Fatalf("predictions (k=5): %s", r.body)
	}
	if len(r.header.Get("X-Aiaas-Preprocess-Sha256")) != 64 || !strings.Contains(r.header.Get("Server-Timing"), "preprocess;dur=") {
		t.Fatalf("lineage/timing headers: %v", r.header)
	}
	// The lineage headers are the lineage parameters an infer answer
	// carries, named as docs/api.md says.
	for _, h := range []string{"X-Aiaas-Model-Sha256", "X-Aiaas-Postprocess-Sha256"} {
		if len(r.header.Get(h)) != 64 {
			t.Fatalf("%s: %q", h, r.header.Get(h))
		}
	}
	if v := r.header.Get("X-Aiaas-Model-Version"); v != "1" {
		t.Fatalf("X-Aiaas-Model-Version: %q", v)
	}
	// A body the plugin refuses fails only that call, with a 4xx.
	bad := e.do("POST", "/v1/endpoints/digits/invoke", key, []byte("not an image"), "Content-Type", "image/png")
	if bad.status != 422 || !strings.Contains(string(bad.body), "error") {
		t.Fatalf("bad image: %d %s", bad.status, bad.body)
	}
	if r := e.do("POST", "/v1/endpoints/digits/invoke", key, digitPNG(t), "Content-Type", "image/png"); r.status != 200 {
		t.Fatalf("after a refused call: %d %s", r.status, r.body)
	}
	// Another tenant cannot use acme's plugins or endpoint.
	other := e.tenant("other")
	if r := e.do("POST", "/v1/endpoints/digits/invoke", other, digitPNG(t), "Content-Type", "image/png"); r.status != 404 {
		t.Fatalf("other tenant invokes acme's endpoint: %d", r.status)
	}
	if r := e.do("GET", "/v1/plugins/top-k", other, nil); r.status != 404 {
		t.Fatalf("other tenant sees acme's plugin: %d", r.status)
	}
	// The operator sees acme's instances and their memory, labelled by
	// tenant id; the other tenant, which never ran a plugin, has no series.
	met := string(e.do("GET", "/metrics", adminKey, nil).body)
	idle := regexp.MustCompile(`(?m)^aiaas_plugin_instances\{state="idle",tenant="([^"]+)"\} (\d+)$`).FindAllStringSubmatch(met, -1)
	mem := regexp.MustCompile(`(?m)^aiaas_plugin_memory_bytes\{tenant="([^"]+)"\} (\S+)$`).FindAllStringSubmatch(met, -1)
	if len(idle) != 1 || idle[0][2] == "0" || len(mem) != 1 || mem[0][1] != idle[0][1] {
		t.Fatalf("want one tenant's plugin series: %q", regexp.MustCompile(`(?m)^aiaas_plugin_(instances|memory).*$`).FindAllString(met, -1))
	}
	if b, _ := strconv.ParseFloat(mem[0][2], 64); b < 1<<20 {
		t.Errorf("acme's plugin memory %s bytes: not counted", mem[0][2])
	}
}
