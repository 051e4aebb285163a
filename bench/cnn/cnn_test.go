package main

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aiaas/aiaas/bench/internal/ortlib"
)

// asMain makes the test binary run the command itself, so the tests run
// the harness as a user does (its children included) without a go build.
const asMain = "AIAAS_BENCH_CNN_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMain) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// fixtures returns the ONNX fixtures' folder as nn/onnx's TestNetworks
// finds it ($AIAAS_ONNX_FIXTURES, else scripts/onnx-fixtures.sh), skipping
// when this machine cannot generate them unless AIAAS_REQUIRE_FIXTURES is
// set (make test sets it).
func fixtures(t *testing.T) string {
	t.Helper()
	dir, err := FixturesDir()
	if errors.Is(err, ErrNoFixtures) {
		if os.Getenv("AIAAS_REQUIRE_FIXTURES") != "" {
			t.Fatalf("%v (AIAAS_REQUIRE_FIXTURES is set)", err)
		}
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// needORT skips without ONNX Runtime's library: make test does not run
// npm; bench/run.sh does (npm ci --ignore-scripts in bench/).
func needORT(t *testing.T) {
	t.Helper()
	if ortlib.Find() == "" {
		t.Skip("no libonnxruntime.so under bench/node_modules: run `npm ci --ignore-scripts` in bench/ (ONNXRUNTIME_NODE_INSTALL=skip; bench/run.sh does)")
	}
}

// harness runs the command with args and returns its results file,
// decoded, and its output; wantOK says which exit status to expect.
func harness(t *testing.T, wantOK bool, args ...string) (result, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "cnn.json")
	cmd := exec.Command(os.Args[0], append(args, "-out", out)...)
	cmd.Env = append(os.Environ(), asMain+"=1")
	b, err := cmd.CombinedOutput()
	if (err == nil) != wantOK {
		t.Fatalf("cnn %s: %v (want success %v)\n%s", strings.Join(args, " "), err, wantOK, b)
	}
	var res result
	if err := readJSON(out, &res); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	md, err := os.ReadFile(strings.TrimSuffix(out, ".json") + ".md")
	if err != nil || len(md) == 0 {
		t.Fatalf("the Markdown results: %v", err)
	}
	return res, string(b)
}

// TestRSS serves the small fixture in a fresh process: no ONNX Runtime is
// needed, so it runs wherever the fixtures exist.
func TestRSS(t *testing.T) {
	dir := fixtures(t)
	res, log := harness(t, true, "-rss", "-fixtures", dir, "-models", "convrelu-op13", "-rss-runs", "5")
	if len(res.Runs) != 0 || len(res.RSS) != 1 {
		t.Fatalf("-rss: %d comparison runs, %d RSS rows, want 0 and 1\n%s", len(res.Runs), len(res.RSS), log)
	}
	r := res.RSS[0]
	if r.Status != "ok" || r.Runs != 5 || r.HWMServe <= 0 || r.ConstBytes <= 0 || r.ArenaBytes <= 0 ||
		r.BoundBytes != r.ConstBytes+int64(r.ArenaBytes)+rssSlack {
		t.Fatalf("RSS row %+v\n%s", r, log)
	}
	if r.ORTMapped {
		t.Error("libonnxruntime was mapped in the serving process")
	}
	// The bound, far from reach for a 0.5 MB network.
	if !r.Within {
		t.Errorf("VmHWM %d bytes serving, above the bound %d", r.HWMServe, r.BoundBytes)
	}
}

// TestCompare runs the whole comparison on the small fixture at two
// opsets, at GOMAXPROCS 1 and 2, quickly.
func TestCompare(t *testing.T) {
	dir := fixtures(t)
	needORT(t)
	models := []string{"convrelu-op13", "convrelu-op9"}
	res, log := harness(t, true, "-fixtures", dir, "-models", strings.Join(models, ","), "-procs", "1,2",
		"-rounds", "3", "-warmup", "1", "-allocs-runs", "2", "-peak-sizes", "64", "-rss-runs", "2")
	t.Logf("\n%s", log)
	if res.ORTVersion == "" || !(res.PeakGFLOPs > 0) || len(res.Runs) != 2 || len(res.RSS) != len(models) {
		t.Fatalf("results: ORT %q, peak %v, %d runs, %d RSS rows", res.ORTVersion, res.PeakGFLOPs, len(res.Runs), len(res.RSS))
	}
	for i, run := range res.Runs {
		if run.GOMAXPROCS != i+1 || len(run.Rows) != len(models) {
			t.Fatalf("run %d: GOMAXPROCS %d, %d rows", i, run.GOMAXPROCS, len(run.Rows))
		}
		for j, w := range run.Rows {
			if w.Model != models[j] || w.Status != "ok" || w.Aiaas == nil || w.ORT == nil {
				t.Fatalf("GOMAXPROCS=%d row %d: %+v", run.GOMAXPROCS, j, w)
			}
			if w.Aiaas.Samples != 3 || w.ORT.Samples != 3 || !(w.RatioAiaasORT > 0) || !(w.FLOPs > 0) ||
				!(w.Aiaas.FracPeak > 0) || !(w.ORT.GFLOPs > 0) || w.AllocsRuns != 2 || w.ConstBytes <= 0 || w.ArenaBytes <= 0 {
				t.Errorf("GOMAXPROCS=%d %s: %+v aiaas %+v ORT %+v", run.GOMAXPROCS, w.Model, w, *w.Aiaas, *w.ORT)
			}
			if !(w.DiffAiaasRef <= w.Tol && w.DiffORTRef <= w.Tol && w.DiffAiaasORT <= w.Tol) {
				t.Errorf("%s: differences %g %g %g above %g yet status ok", w.Model, w.DiffAiaasRef, w.DiffORTRef, w.DiffAiaasORT, w.Tol)
			}
		}
	}
}

// TestCompareCatchesWrongOutput gives the harness a fixture whose PyTorch
// output is off by more than the tolerance: the row fails, the command
// exits 1, and nothing is timed.
func TestCompareCatchesWrongOutput(t *testing.T) {
	src := fixtures(t)
	needORT(t)
	const name = "convrelu-op13"
	dir := t.TempDir()
	fx, err := readFixture(src, name)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{name + ".json", fx.File, fx.Input.File, fx.Output.File} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == fx.Output.File {
			binary.LittleEndian.PutUint32(b[len(b)-4:], math.Float32bits(1e3)) // the last value, far off
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "fixtures.json"), []byte(`{"fixtures": ["`+name+`"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	res, log := harness(t, false, "-fixtures", dir, "-models", name, "-procs", "1", "-rounds", "2", "-peak-sizes", "64", "-rss-runs", "0")
	if len(res.Runs) != 1 || len(res.Runs[0].Rows) != 1 {
		t.Fatalf("results: %+v\n%s", res, log)
	}
	w := res.Runs[0].Rows[0]
	if w.Status != "fail" || !strings.Contains(w.Error, "vs PyTorch") || w.Aiaas != nil || w.ORT != nil {
		t.Errorf("row %+v, want a failure against PyTorch and no timing\n%s", w, log)
	}
}
