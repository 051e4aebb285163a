package hardening

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aiaas/aiaas/internal/safetensors"
	"github.com/aiaas/aiaas/internal/testserver"
	"github.com/aiaas/aiaas/internal/wasmasm"
	"github.com/aiaas/aiaas/nn"
)

// TestFairness: each class of shared resource of issue #20, abused by
// tenant A while tenant B is measured (see fairness_test.go for how, and
// the bounds). About 2 min; AIAAS_FAIRNESS_STRICT=1 for the 2× bound and
// three longer abuse windows per class (about 10 min), as BENCHMARKS.md's
// figures were made; AIAAS_FAIRNESS_CLASSES="idle plugins,deadlines" runs
// only the classes named.
func TestFairness(t *testing.T) {
	if raceEnabled {
		// The server under test is a plain build either way; the race
		// detector would only slow the load generator that measures it.
		// make test's plain pass runs this.
		t.Skip("a latency measurement: run without -race")
	}
	if testing.Short() {
		t.Skip("about 80 s of measured load")
	}
	// A budget small enough to mean something next to A's 265 MB uploads:
	// A's share is half of it.
	const budget = 1 << 30
	w := newFairWorld(t, budget,
		// Jobs stay queued: the class is the queue, not the CPU a running
		// job takes (that is AIAAS_TRAIN_WORKERS' to bound).
		"AIAAS_TRAIN_WORKERS=0")
	ctx := context.Background()
	goodEndpoint(t, ctx, w.b) // B's "invoke" probe's

	// A's endpoint whose preprocess spins until the plugin deadline.
	spin := wasmasm.Spinning().Bytes()
	if st, b, err := w.call(ctx, "PUT", "/v1/plugins/spin", w.keyA, "application/wasm", bytes.NewReader(spin), int64(len(spin))); st/100 != 2 {
		t.Fatalf("A's spinning plugin: %d %v %s", st, err, b)
	}
	if st, b, err := w.call(ctx, "PUT", "/v1/endpoints/spin", w.keyA, "application/json", strings.NewReader(`{"model":"digits","preprocess":"spin"}`), -1); st/100 != 2 {
		t.Fatalf("A's endpoint: %d %v %s", st, err, b)
	}
	small := artifact(t, 5)

	// A's requests; each returns its status.
	a := func(method, path, ctype string, body func(g int) []byte) func(context.Context, int) int {
		return func(ctx context.Context, g int) int {
			b := body(g)
			st, _, _ := w.call(ctx, method, path, w.keyA, ctype, bytes.NewReader(b), int64(len(b)))
			return st
		}
	}
	fixed := func(b []byte) func(int) []byte { return func(int) []byte { return b } }

	var results []fairResult
	// AIAAS_FAIRNESS_CLASSES, a comma-separated list of class names, runs
	// only those (while working on one).
	only := os.Getenv("AIAAS_FAIRNESS_CLASSES")
	selected := func(name string) bool {
		return only == "" || slices.Contains(strings.Split(only, ","), name)
	}
	run := func(c fairClass) {
		if selected(c.name) {
			results = append(results, w.run(t, c))
		}
	}

	run(fairClass{name: "plugin slots", what: "8 calls in flight whose preprocess spins until the 2 s plugin deadline",
		probes: []string{"invoke", "infer"},
		abuse:  abuse{8, a("POST", "/v1/endpoints/spin/invoke", "application/octet-stream", fixed([]byte("x")))}})

	// A's six plugins that each grow an instance to 60 MiB and write it
	// all, behind six endpoints, called from 4 connections: kept warm, 4
	// instances each, they would hold 1.4 GiB. The host keeps a tenant's
	// idle instances within 256 MiB and its calls within its share of the
	// guest slots.
	const hogs = 6
	for i := range hogs {
		m := wasmasm.MemoryHog(960)
		m.Funcs = append(m.Funcs, wasmasm.Func{Type: wasmasm.TyVoid, Body: bytes.Repeat([]byte{0x01}, i+1)}) // six modules, not one
		hog := m.Bytes()
		if st, b, err := w.call(ctx, "PUT", fmt.Sprintf("/v1/plugins/hog-%d", i), w.keyA, "application/wasm", bytes.NewReader(hog), int64(len(hog))); st/100 != 2 {
			t.Fatalf("A's plugin hog-%d: %d %v %s", i, st, err, b)
		}
		if st, b, err := w.call(ctx, "PUT", fmt.Sprintf("/v1/endpoints/hog-%d", i), w.keyA, "application/json", strings.NewReader(fmt.Sprintf(`{"model":"digits","preprocess":"hog-%d"}`, i)), -1); st/100 != 2 {
			t.Fatalf("A's endpoint hog-%d: %d %v %s", i, st, err, b)
		}
	}
	digitsInput := safetensors.Encode(&safetensors.File{Tensors: []safetensors.Tensor{safetensors.F32("input", []int{1, 784}, make([]float32, 784))}})
	var nHog atomic.Int64
	run(fairClass{name: "idle plugins", what: "6 plugins whose calls grow their instance to 60 MiB and write it, invoked round robin from 4 connections (1.4 GiB if every instance stayed warm)",
		probes:        []string{"invoke", "infer"},
		latencyDefect: "instances that each write 60 MiB, created and closed in turn, stall the whole process for hundreds of ms on this microVM (BENCHMARKS.md, \"Fairness\"); RSS and B's failures are held",
		abuse: abuse{4, func(ctx context.Context, g int) int {
			st, _, _ := w.call(ctx, "POST", fmt.Sprintf("/v1/endpoints/hog-%d/invoke", nHog.Add(1)%hogs), w.keyA, "application/octet-stream", bytes.NewReader(digitsInput), int64(len(digitsInput)))
			return st
		}}})

	startLoop := wasmasm.StartLoop().Bytes()
	run(fairClass{name: "upload checks", what: "3 uploads at once of modules whose start function loops (each refused at the 5 s init deadline)",
		probes: []string{"upload", "infer"}, window: 6 * time.Second,
		abuse: abuse{3, func(ctx context.Context, g int) int {
			st, _, _ := w.call(ctx, "PUT", fmt.Sprintf("/v1/plugins/start-loop-%d", g), w.keyA, "application/wasm", bytes.NewReader(startLoop), int64(len(startLoop)))
			return st
		}}})

	var nA atomic.Int64
	run(fairClass{name: "compile budget", what: "3 uploads at once of compile bombs: 5,000 locals × 100 loops, 6,000 nested loops, 185 functions of 160 locals × 400 loops (just under the module's budgets, so it compiles)",
		probes: []string{"upload", "infer"},
		abuse: abuse{3, func(ctx context.Context, g int) int {
			b := compileBomb(g, int(nA.Add(1)))
			st, _, _ := w.call(ctx, "PUT", fmt.Sprintf("/v1/plugins/bomb-%d", g), w.keyA, "application/wasm", bytes.NewReader(b), int64(len(b)))
			return st
		}}})

	job := []byte(`{"model":"m","dataset":"mnist","epochs":1}`)
	run(fairClass{name: "training queue", what: "training jobs submitted in a loop from 4 connections (its 8 queued, the rest 429)",
		probes: []string{"infer"},
		abuse:  abuse{4, a("POST", "/v1/training-jobs", "application/json", fixed(job))},
		during: func(ctx context.Context) error {
			time.Sleep(time.Second) // A's share is full by now
			for i := range 2 {
				st, b, err := w.call(ctx, "POST", "/v1/training-jobs", w.keyB, "application/json", bytes.NewReader(job), int64(len(job)))
				if st != 202 {
					return fmt.Errorf("B's training job %d: %d %v %.200s", i, st, err, b)
				}
			}
			return nil
		}})

	run(fairClass{name: "audit reads", what: "GET /v1/audit?limit=100 in a loop from 4 connections",
		probes: []string{"infer", "audit"},
		abuse: abuse{4, func(ctx context.Context, g int) int {
			st, _, _ := w.call(ctx, "GET", "/v1/audit?limit=100", w.keyA, "", nil, -1)
			return st
		}}})

	run(fairClass{name: "API keys", what: "POST /v1/keys in a loop from 3 connections (100 created, the rest 409) and GET /v1/keys from a fourth",
		probes: []string{"ready", "infer", "keys"},
		abuse: abuse{4, func(ctx context.Context, g int) int {
			if g == 3 {
				st, _, _ := w.call(ctx, "GET", "/v1/keys", w.keyA, "", nil, -1)
				return st
			}
			b := []byte(`{"name":"k","scope":"invoke"}`)
			st, _, _ := w.call(ctx, "POST", "/v1/keys", w.keyA, "application/json", bytes.NewReader(b), int64(len(b)))
			return st
		}}})

	var models atomic.Int64
	newModel := func(ctx context.Context, name string) int {
		if st, _, _ := w.call(ctx, "POST", "/v1/models/"+name+"/versions", w.keyA, "application/octet-stream", bytes.NewReader(small), int64(len(small))); st/100 != 2 {
			return st
		}
		st, _, _ := w.call(ctx, "POST", "/v2/models/"+name+"/infer", w.keyA, "application/json", bytes.NewReader(inferBody), -1)
		return st
	}
	run(fairClass{name: "metrics labels", what: "models created and each inferred once, in a loop from 2 connections (up to 120; then inferences on them)",
		probes: []string{"infer", "metrics"},
		abuse: abuse{2, func(ctx context.Context, g int) int {
			i := models.Add(1)
			if i <= 120 {
				return newModel(ctx, fmt.Sprintf("m%d", i))
			}
			st, _, _ := w.call(ctx, "POST", fmt.Sprintf("/v2/models/m%d/infer", i%120+1), w.keyA, "application/json", bytes.NewReader(inferBody), -1)
			return st
		}}})
	// Past 50 models, a tenant's new models add no series to /metrics
	// (they are counted under _other): 10 more models add under 10 KiB,
	// where each added ~7 KB before.
	metricsBytes := func() int {
		st, b, err := w.call(ctx, "GET", "/metrics", testserver.AdminKey, "", nil, -1)
		if st != 200 {
			t.Fatalf("GET /metrics: %d %v", st, err)
		}
		return len(b)
	}
	for i := models.Load() + 1; i <= 60; i = models.Add(1) {
		newModel(ctx, fmt.Sprintf("m%d", i))
	}
	m0 := metricsBytes()
	for i := range 10 {
		newModel(ctx, fmt.Sprintf("extra%d", i))
	}
	m1 := metricsBytes()
	t.Logf("metrics labels   | /metrics %d bytes with A's %d models, %d bytes after 10 more (+%d)", m0, min(models.Load(), 120), m1, m1-m0)
	if m1-m0 > 10<<10 {
		t.Errorf("/metrics grew by %d bytes for 10 more models of a tenant past its 50 labels", m1-m0)
	}

	// Large bodies: a dataset's values are checked, not held, and a large
	// dense artifact streams to the store. Before, each allocated hundreds
	// of MB at once, stalled every other request of the process for
	// 0.3–7 s and took RSS to 1.3 and 2.5 GiB (BENCHMARKS.md).
	bomb := gzipBomb(t)
	run(fairClass{name: "dataset bombs", what: fmt.Sprintf("2 uploads at once, repeated, of a %d KiB gzip CSV inflating to 300 MB (64 Mi values checked before the dataset limit's 413)", len(bomb)>>10),
		probes: []string{"infer", "publish"}, window: 6 * time.Second,
		abuse: abuse{2, func(ctx context.Context, g int) int {
			st, _, _ := w.call(ctx, "PUT", fmt.Sprintf("/v1/datasets/bomb-%d", g), w.keyA, "text/csv", bytes.NewReader(bomb), int64(len(bomb)))
			return st
		}}})
	big := bigUpload(t)
	run(fairClass{name: "model uploads", what: fmt.Sprintf("3 uploads at once, repeated, of a %d MB model with one byte too many (refused at its end)", big.size/1e6),
		probes: []string{"infer", "publish"}, window: 6 * time.Second,
		abuse: abuse{3, func(ctx context.Context, g int) int {
			f, err := os.Open(big.path)
			if err != nil {
				return 0
			}
			defer f.Close()
			st, _, _ := w.call(ctx, "POST", "/v1/models/huge/versions", w.keyA, "application/octet-stream", io.MultiReader(f, strings.NewReader("x")), big.size+1)
			return st
		}}})

	if selected("deadlines") {
		results = append(results, deadlineClass(t)...)
	}
	t.Logf("figures (BENCHMARKS.md):\n%s", fairTable(results))
}

// compileBomb is a valid module built to make wazero's compiler work,
// made unique by n (so no compilation cache answers it): kind 0 and 1 are
// refused before compiling, kind 2 is just under the module's compile
// budget and compiles.
func compileBomb(kind, n int) []byte {
	m := wasmasm.Echo()
	switch kind % 3 {
	case 0:
		m.Funcs = append(m.Funcs, wasmasm.Loops(5000, 100))
	case 1:
		m.Funcs = append(m.Funcs, wasmasm.Loops(0, 6000))
	default:
		for range 185 {
			m.Funcs = append(m.Funcs, wasmasm.Loops(160, 400))
		}
	}
	m.Funcs = append(m.Funcs, wasmasm.Func{Type: wasmasm.TyVoid, Body: bytes.Repeat([]byte{0x01}, n)})
	return m.Bytes()
}

// gzipBomb is a CSV of 300 MB of zeros (100 columns), gzipped.
func gzipBomb(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	row := []byte(strings.Repeat("0,", 99) + "0\n")
	chunk := bytes.Repeat(row, (1<<20)/len(row))
	for n := 0; n < 300e6; n += len(chunk) {
		zw.Write(chunk)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type bigFile struct {
	path string
	size int64
}

// bigUpload writes a valid artifact of a 1000→65536→10 MLP (66 M
// parameters, 265 MB: as large as the network limits allow) to a file.
func bigUpload(t *testing.T) bigFile {
	t.Helper()
	spec := nn.MLP("huge", 1000, []int{65536}, "relu", 10, "softmax")
	m, err := nn.New(spec, 1)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "huge.safetensors")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := m.WriteArtifact(f, nn.Metadata{Spec: spec}); err != nil {
		t.Fatal(err)
	}
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return bigFile{path, fi.Size()}
}

// deadlineClass runs on a server of its own, whose request deadline is
// short (AIAAS_REQUEST_TIMEOUT=1s, for every route): A sends inferences on a
// 16.8 M-parameter model (4096→4096→10), 700 rows each, from 2
// connections, each stopped at the deadline with 504.
func deadlineClass(t *testing.T) []fairResult {
	const budget = 1 << 30
	w := newFairWorld(t, budget)
	spec := nn.MLP("wide", 4096, []int{4096}, "relu", 10, "softmax")
	m, err := nn.New(spec, 1)
	if err != nil {
		t.Fatal(err)
	}
	var art bytes.Buffer
	if err := m.WriteArtifact(&art, nn.Metadata{Spec: spec}); err != nil {
		t.Fatal(err)
	}
	if st, b, err := w.call(context.Background(), "POST", "/v1/models/wide/versions", w.keyA, "application/octet-stream", bytes.NewReader(art.Bytes()), int64(art.Len())); st/100 != 2 {
		t.Fatalf("A's wide model: %d %v %.200s", st, err, b)
	}
	// The deadline is every route's: the 67 MB upload above may take
	// longer, so the server restarts with it.
	w.restart(t, "AIAAS_REQUEST_TIMEOUT=1s")
	const rows = 700
	req, _ := json.Marshal(map[string]any{"inputs": []map[string]any{{"name": "input", "shape": []int{rows, 4096}, "datatype": "FP32", "data": make([]float32, rows*4096)}}})
	return []fairResult{w.run(t, fairClass{name: "deadlines", what: fmt.Sprintf("inferences of %d rows on a 16.8 M-parameter model from 2 connections, with a 1 s request deadline", rows),
		probes: []string{"infer"},
		abuse: abuse{2, func(ctx context.Context, g int) int {
			st, _, _ := w.call(ctx, "POST", "/v2/models/wide/infer", w.keyA, "application/json", bytes.NewReader(req), int64(len(req)))
			return st
		}}})}
}
