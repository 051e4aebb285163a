package onnx

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aiaas/aiaas/nn/graph"
)

// The whole-network fixtures: real architectures (torchvision's ResNet-18
// and MobileNetV2, a U-Net, and a tiny Conv+Relu+Add network) with random
// weights, exported by PyTorch at opsets 9, 11 and 13, each with a fixed
// input and PyTorch's output for it. scripts/onnx-fixtures.sh generates
// them once (scripts/gen-onnx-fixtures.py says exactly what they are) and
// prints their folder.

// fixtureDepsMissing is onnx-fixtures.sh's exit status when the system
// Python lacks torch, torchvision or onnx.
const fixtureDepsMissing = 3

// networkFixture is a fixture's NAME.json, as gen-onnx-fixtures.py writes it.
type networkFixture struct {
	Name         string       `json:"name"`
	Model        string       `json:"model"`
	Opset        int          `json:"opset"`
	File         string       `json:"file"`
	DynamicBatch bool         `json:"dynamic_batch"`
	Ops          []string     `json:"ops"`
	Reference    string       `json:"reference"`
	Input        fixtureArray `json:"input"`
	Output       fixtureArray `json:"output"`
	Batch2       *struct {
		Input  fixtureArray `json:"input"`
		Output fixtureArray `json:"output"`
	} `json:"batch2"`
}

type fixtureArray struct {
	Name   string  `json:"name"`
	File   string  `json:"file"`
	Shape  []int   `json:"shape"`
	MaxAbs float64 `json:"max_abs"`
}

// networkTol is the tolerance on max |Δ| against PyTorch, relative to the
// scale of the output: float32 results summed in another order through a
// few dozen layers.
func networkTol(maxAbs float64) float64 { return 1e-4 * math.Max(1, maxAbs) }

// networkFixtures returns the fixtures' folder, generating it if needed.
// It skips the test when the generator's Python modules are missing,
// unless AIAAS_REQUIRE_FIXTURES is set (make test sets it).
// AIAAS_ONNX_FIXTURES names a folder to use instead (one generated
// elsewhere, or edited to see the harness fail).
func networkFixtures(t *testing.T) string {
	t.Helper()
	return scriptFixtures(t, "AIAAS_ONNX_FIXTURES", "ONNX network")
}

// scriptFixtures returns the folder named by env, or the one
// scripts/onnx-fixtures.sh (with args) prints after making it: skipped
// when the generator's Python modules are missing (fixtureDepsMissing),
// unless AIAAS_REQUIRE_FIXTURES is set. what names them in messages.
func scriptFixtures(t *testing.T, env, what string, args ...string) string {
	t.Helper()
	if dir := os.Getenv(env); dir != "" {
		return dir
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(root, "scripts", "onnx-fixtures.sh")
	if _, err := os.Stat(script); err != nil {
		t.Fatalf("the fixtures' script: %v", err)
	}
	cmd := exec.Command("bash", append([]string{script}, args...)...)
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	msg := strings.TrimSpace(stderr.String())
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == fixtureDepsMissing {
		if os.Getenv("AIAAS_REQUIRE_FIXTURES") != "" {
			t.Fatalf("no %s fixtures and AIAAS_REQUIRE_FIXTURES is set: %s", what, msg)
		}
		t.Skipf("no %s fixtures: %s", what, msg)
	}
	if err != nil {
		t.Fatalf("scripts/onnx-fixtures.sh %s: %v\n%s", strings.Join(args, " "), err, msg)
	}
	dir := strings.TrimSpace(stdout.String())
	if msg != "" {
		t.Logf("%s (%.1f s)", msg, time.Since(start).Seconds())
	}
	if _, err := os.Stat(filepath.Join(dir, "fixtures.json")); err != nil {
		t.Fatalf("scripts/onnx-fixtures.sh printed %q, which is not a complete fixtures folder: %v", dir, err)
	}
	return dir
}

// TestNetworks converts each fixture as an upload does (Convert, then
// graph.ReadArtifact of the artifact), runs its input and compares the
// output with PyTorch's: max |Δ| ≤ 1e-4·max(1, max |ref|). The exports with
// a dynamic batch dimension must declare it (-1) and are also run on a
// batch of two, whose first row is the batch-1 input. One subtest per
// fixture, named model-opN; a summary table closes the log.
func TestNetworks(t *testing.T) {
	dir := networkFixtures(t)
	var index struct {
		Fixtures []string `json:"fixtures"`
	}
	readJSON(t, filepath.Join(dir, "fixtures.json"), &index)
	if len(index.Fixtures) == 0 {
		t.Fatalf("%s lists no fixtures", filepath.Join(dir, "fixtures.json"))
	}
	start := time.Now()
	var summary []string
	for _, name := range index.Fixtures {
		var fx networkFixture
		readJSON(t, filepath.Join(dir, name+".json"), &fx)
		if networksRace && (!fx.DynamicBatch || fileSize(t, filepath.Join(dir, fx.File)) > 20<<20) {
			// The race detector's pass is about the parallel kernels, not
			// the numerics: the dynamic-batch export of each network but
			// ResNet-18 (46 MB, whose parsing alone takes ~10 s under the
			// race detector; the others have all its operators).
			summary = append(summary, fmt.Sprintf("skip %-18s not under the race detector", name))
			continue
		}
		var line string
		ok := t.Run(name, func(t *testing.T) { runNetwork(t, dir, &fx, &line) })
		status := "ok  "
		if !ok {
			status = "FAIL"
		}
		summary = append(summary, fmt.Sprintf("%s %-18s %s", status, name, line))
	}
	t.Logf("ONNX networks (%s, %.1f s):\n\t%s", dir, time.Since(start).Seconds(), strings.Join(summary, "\n\t"))
}

// runNetwork checks one fixture and keeps its summary line in *line, up
// to date even when it stops at a fatal error.
func runNetwork(t *testing.T, dir string, fx *networkFixture, line *string) {
	what := fmt.Sprintf("%s (opset %d; operators %s)", fx.Name, fx.Opset, strings.Join(fx.Ops, " "))
	*line = fmt.Sprintf("opset %d: did not finish", fx.Opset)
	if missing := missingOps(fx.Ops, fx.Opset); len(missing) > 0 {
		*line = fmt.Sprintf("opset %d: the runtime lacks %s", fx.Opset, strings.Join(missing, ", "))
	}
	b, err := os.ReadFile(filepath.Join(dir, fx.File))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	art, err := Convert(b, nil)
	if err != nil {
		t.Fatalf("%s: Convert: %v%s", what, err, lacking(fx))
	}
	m, meta, err := graph.ReadArtifact(art, nil)
	if err != nil {
		t.Fatalf("%s: graph.ReadArtifact of the converted artifact: %v%s", what, err, lacking(fx))
	}
	load := time.Since(start)
	*line = fmt.Sprintf("opset %d: loaded in %.2f s, then failed", fx.Opset, load.Seconds())
	if m.Opset() != fx.Opset {
		t.Errorf("%s: the model says opset %d", what, m.Opset())
	}
	if got := meta.Provenance["onnx_opset"]; got != fmt.Sprint(fx.Opset) {
		t.Errorf("%s: provenance onnx_opset %q", what, got)
	}
	checkDeclared(t, what, m, fx)

	x := readFixtureTensor(t, dir, fx.Input)
	start = time.Now()
	y1 := runAndCompare(t, what+", batch 1", m, x, dir, fx.Output)
	run := time.Since(start)
	l := fmt.Sprintf("opset %d: batch 1 %s", fx.Opset, y1.report)
	*line = l
	if fx.DynamicBatch {
		if fx.Batch2 == nil {
			t.Fatalf("%s: a dynamic-batch export without a batch-2 pair", what)
		}
		x2 := readFixtureTensor(t, dir, fx.Batch2.Input)
		y2 := runAndCompare(t, what+", batch 2", m, x2, dir, fx.Batch2.Output)
		l += "; batch 2 " + y2.report
		*line = l
		// Row 0 of the batch is the batch-1 input: the runtime must agree
		// with itself across batch sizes.
		if y1.out != nil && y2.out != nil {
			a := y1.out.Float32s()
			bb := y2.out.Float32s()[:len(a)]
			if d, i := maxAbsDiff(a, bb); !(d <= networkTol(fx.Output.MaxAbs)) {
				t.Errorf("%s: row 0 of batch 2 differs from batch 1 by %.3g at %d (tol %.3g)", what, d, i, networkTol(fx.Output.MaxAbs))
			}
		}
	}
	// A warm run with the caller's output tensors allocates nothing: the
	// arena comes from the plan's free list, the weights were packed at
	// load, the kernels' buffers from their own free lists. (Not under the
	// race detector, whose instrumentation allocates.)
	if y1.out != nil && !networksRace {
		outs := []*graph.Tensor{y1.out.Clone()}
		in := []*graph.Tensor{x}
		ctx := context.Background()
		if n := testing.AllocsPerRun(3, func() {
			if _, err := m.Run(ctx, in, outs); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: %v heap allocations per warm run, want 0", what, n)
		}
	}
	l += fmt.Sprintf("; load %.2f s, run %.3f s", load.Seconds(), run.Seconds())
	if fx.Reference != "PyTorch" {
		l += " (reference: see " + fx.Name + ".json)"
	}
	*line = l
	t.Logf("%s: %s", fx.Name, l)
}

// checkDeclared checks the model's declared input and output: names,
// FLOAT, and the shapes, with -1 on the batch dimension of the dynamic
// exports and the reference's size on every other dimension.
func checkDeclared(t *testing.T, what string, m *graph.Model, fx *networkFixture) {
	t.Helper()
	check := func(kind string, vs []graph.Value, want fixtureArray) {
		if len(vs) != 1 {
			t.Errorf("%s: %d %ss, want 1", what, len(vs), kind)
			return
		}
		v := vs[0]
		wantShape := make([]int64, len(want.Shape))
		for i, d := range want.Shape {
			wantShape[i] = int64(d)
		}
		if fx.DynamicBatch {
			wantShape[0] = -1
		}
		if v.Name != kind || v.DType != graph.Float32 || !slices.Equal(v.Shape, wantShape) {
			t.Errorf("%s: %s declared as %q %v %v, want %q %v %v", what, kind, v.Name, v.DType, v.Shape, kind, graph.Float32, wantShape)
		}
	}
	check("input", m.Inputs(), fx.Input)
	check("output", m.Outputs(), fx.Output)
}

type networkResult struct {
	out    *graph.Tensor
	report string
}

// runAndCompare runs x and compares the one output with the reference in
// want.File, reporting the first failure with its place.
func runAndCompare(t *testing.T, what string, m *graph.Model, x *graph.Tensor, dir string, want fixtureArray) networkResult {
	t.Helper()
	ref := readFixture(t, dir, want)
	outs, err := m.Run(context.Background(), []*graph.Tensor{x}, nil)
	if err != nil {
		t.Errorf("%s: Run: %v", what, err)
		return networkResult{report: "Run failed"}
	}
	if len(outs) != 1 {
		t.Errorf("%s: %d outputs, want 1", what, len(outs))
		return networkResult{report: "wrong outputs"}
	}
	y := outs[0]
	if y.DType != graph.Float32 || !slices.Equal(y.Shape, want.Shape) {
		t.Errorf("%s: output %v %v, PyTorch's is FLOAT %v", what, y.DType, y.Shape, want.Shape)
		return networkResult{report: "wrong shape"}
	}
	tol := networkTol(want.MaxAbs)
	d, i := maxAbsDiff(y.Float32s(), ref)
	r := fmt.Sprintf("max |Δ| %.2g (tol %.2g, max |ref| %.3g)", d, tol, want.MaxAbs)
	if !(d <= tol) {
		t.Errorf("%s: max |Δ| %.3g at %v (got %g, PyTorch %g), tolerance %.3g = 1e-4·max(1, max |ref| %.4g)",
			what, d, unravel(i, want.Shape), y.Float32s()[i], ref[i], tol, want.MaxAbs)
		return networkResult{out: y, report: "FAIL " + r}
	}
	return networkResult{out: y, report: r}
}

// maxAbsDiff returns max |a-b| and where; a NaN anywhere counts as +Inf.
func maxAbsDiff(a, b []float32) (float64, int) {
	worst, at := 0.0, 0
	for i := range a {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		if d > worst {
			worst, at = d, i
		}
	}
	return worst, at
}

func unravel(i int, shape []int) []int {
	idx := make([]int, len(shape))
	for k := len(shape) - 1; k >= 0; k-- {
		idx[k] = i % shape[k]
		i /= shape[k]
	}
	return idx
}

// missingOps lists the operators of ops the runtime has no version of at
// opset.
func missingOps(ops []string, opset int) []string {
	have := graph.Operators()
	var out []string
	for _, op := range ops {
		vs := have[op]
		if len(vs) == 0 || vs[0] > opset {
			out = append(out, op)
		}
	}
	return out
}

// lacking completes a load error with every operator of the file the
// runtime does not implement (the error names only the first).
func lacking(fx *networkFixture) string {
	if m := missingOps(fx.Ops, fx.Opset); len(m) > 0 {
		return fmt.Sprintf("\n\tthe runtime lacks, at opset %d: %s", fx.Opset, strings.Join(m, ", "))
	}
	return ""
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// readFixture reads a little-endian float32 file of the given shape.
func readFixture(t *testing.T, dir string, a fixtureArray) []float32 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, a.File))
	if err != nil {
		t.Fatal(err)
	}
	n := 1
	for _, d := range a.Shape {
		n *= d
	}
	if len(b) != 4*n {
		t.Fatalf("%s: %d bytes, want %d for %v float32", a.File, len(b), 4*n, a.Shape)
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

func readFixtureTensor(t *testing.T, dir string, a fixtureArray) *graph.Tensor {
	t.Helper()
	return graph.TensorFrom(a.Shape, readFixture(t, dir, a))
}
