package onnx

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/aiaas/aiaas/nn/graph"
	"github.com/aiaas/aiaas/nn/onnx/internal/onnxpb"
)

// The ONNX backend test data (Debian's libonnx-testdata, installed by
// scripts/deps.sh): one folder per case with model.onnx and
// test_data_set_*/input_*.pb, output_*.pb.
const onnxTestdata = "/usr/share/libonnx-testdata/data"

var updateDocs = flag.Bool("update-docs", false, "rewrite the operator table in docs/models.md from the conformance run")

// skipCases are cases of supported operators that are refused on purpose,
// each with the reason, so the list is reviewed rather than grown silently.
var skipCases = map[string]string{
	"node/test_batchnorm_epsilon_training_mode": "BatchNormalization training_mode=1 (batch statistics, running averages out): aiaas runs inference only",
	"node/test_batchnorm_example_training_mode": "BatchNormalization training_mode=1 (batch statistics, running averages out): aiaas runs inference only",
	"node/test_training_dropout":                "training-mode Dropout draws a random mask: refused at run time (training_mode is an input); ratio 0 is served",
	"node/test_training_dropout_default":        "training-mode Dropout draws a random mask: refused at run time (training_mode is an input); ratio 0 is served",
	"node/test_training_dropout_default_mask":   "training-mode Dropout draws a random mask: refused at run time (training_mode is an input); ratio 0 is served",
	"node/test_training_dropout_mask":           "training-mode Dropout draws a random mask: refused at run time (training_mode is an input); ratio 0 is served",
	// ONNX 1.12's data feed "like" as a [1] tensor to a model that
	// declares it [3, 4]; the runtime refuses the input's shape.
	"node/test_castlike_BFLOAT16_to_FLOAT":          "test data does not match the model's declared input shape",
	"node/test_castlike_BFLOAT16_to_FLOAT_expanded": "test data does not match the model's declared input shape",
	"node/test_castlike_FLOAT_to_BFLOAT16":          "test data does not match the model's declared input shape",
	"node/test_castlike_FLOAT_to_BFLOAT16_expanded": "test data does not match the model's declared input shape",
}

type caseResult struct {
	name    string
	ops     []string
	status  string // "pass", "fail", "refused"
	detail  string
	dataset int
}

func testdataDir(t *testing.T) string {
	dir := os.Getenv("AIAAS_ONNX_TESTDATA")
	if dir == "" {
		dir = onnxTestdata
	}
	if _, err := os.Stat(filepath.Join(dir, "node")); err != nil {
		if os.Getenv("AIAAS_REQUIRE_ONNX_TESTDATA") != "" {
			t.Fatalf("ONNX backend test data not found in %s (AIAAS_REQUIRE_ONNX_TESTDATA is set): %v", dir, err)
		}
		t.Skipf("ONNX backend test data not found in %s: install Debian's libonnx-testdata (scripts/deps.sh does)", dir)
	}
	return dir
}

// TestConformance runs every case of ONNX's own backend tests (node tests,
// and the PyTorch-exported operator and module tests) whose operators are
// all implemented, and requires each to match the expected outputs within
// the backend tests' own tolerance (rtol 1e-3, atol 1e-7). Cases with an
// operator the runtime does not implement must be refused with
// ErrUnsupported, never crash or answer wrongly.
func TestConformance(t *testing.T) {
	root := testdataDir(t)
	ops := graph.Operators()
	var results []caseResult
	for _, suite := range []string{"node", "pytorch-converted", "pytorch-operator", "simple"} {
		dirs, err := os.ReadDir(filepath.Join(root, suite))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dirs {
			dir := filepath.Join(root, suite, d.Name())
			if _, err := os.Stat(filepath.Join(dir, "model.onnx")); err != nil {
				continue
			}
			results = append(results, runCase(t, suite+"/"+d.Name(), dir, ops))
		}
	}
	var pass, fail, refused int
	for _, r := range results {
		switch r.status {
		case "pass":
			pass++
		case "fail":
			fail++
			t.Errorf("%s %v: %s", r.name, r.ops, r.detail)
		default:
			refused++
		}
	}
	t.Logf("conformance: %d passed, %d failed, %d refused as unsupported (of %d cases)", pass, fail, refused, len(results))
	table := opTable(results)
	path := filepath.Join("..", "..", "docs", "models.md")
	if *updateDocs {
		if err := writeTable(path, table); err != nil {
			t.Fatal(err)
		}
		return
	}
	if doc, err := os.ReadFile(path); err == nil && !strings.Contains(string(doc), table) {
		t.Errorf("the operator table in docs/models.md is not the one this run produces; regenerate it with\n\tgo test ./nn/onnx -run TestConformance -update-docs")
	}
}

func runCase(t *testing.T, name, dir string, ops map[string][]int) caseResult {
	r := caseResult{name: name}
	b, err := os.ReadFile(filepath.Join(dir, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	mp := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(b, mp); err != nil {
		t.Fatalf("%s: the test data itself does not decode: %v", name, err)
	}
	inScope := true
	for _, n := range mp.GetGraph().GetNode() {
		if !slices.Contains(r.ops, n.GetOpType()) {
			r.ops = append(r.ops, n.GetOpType())
		}
		if _, ok := ops[n.GetOpType()]; !ok || (n.GetDomain() != "" && n.GetDomain() != "ai.onnx") {
			inScope = false
		}
	}
	sort.Strings(r.ops)
	g, tensors, err := Parse(b, nil)
	var m *graph.Model
	if err == nil {
		m, err = graph.Load(g, tensors, nil)
	}
	if err != nil {
		if !errors.Is(err, ErrUnsupported) && inScope {
			r.status, r.detail = "fail", "load: "+err.Error()
			return r
		}
		if errors.Is(err, ErrUnsupported) && !strings.Contains(err.Error(), "unsupported model") {
			r.status, r.detail = "fail", "error does not say it is unsupported: "+err.Error()
			return r
		}
		r.status, r.detail = "refused", err.Error()
		if inScope && !isAcceptedRefusal(name, err) {
			r.status, r.detail = "fail", "refused: "+err.Error()
		}
		return r
	}
	sets, _ := filepath.Glob(filepath.Join(dir, "test_data_set_*"))
	if len(sets) == 0 {
		r.status, r.detail = "fail", "no test data sets"
		return r
	}
	for _, set := range sets {
		ins, err := readTensors(set, "input")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want, err := readTensors(set, "output")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(ins) != len(m.Inputs()) {
			r.status, r.detail = "fail", fmt.Sprintf("%d input files for %d graph inputs", len(ins), len(m.Inputs()))
			return r
		}
		// ONNX up to 1.13 wrote BFLOAT16 test tensors as UINT16 (numpy
		// has no bfloat16): the same bits, relabelled.
		for i, v := range m.Inputs() {
			if v.DType == graph.BFloat16 && ins[i].DType == graph.Uint16 {
				ins[i].DType = graph.BFloat16
			}
		}
		for i, v := range m.Outputs() {
			if i < len(want) && v.DType == graph.BFloat16 && want[i].DType == graph.Uint16 {
				want[i].DType = graph.BFloat16
			}
		}
		got, err := m.Run(context.Background(), ins, nil)
		if err != nil {
			// A refusal that depends on an input's value (a Dropout's
			// training_mode fed as an input) can only come at run time.
			if errors.Is(err, ErrUnsupported) && (!inScope || isAcceptedRefusal(name, err)) {
				r.status, r.detail = "refused", err.Error()
				return r
			}
			if reason, ok := skipCases[name]; ok {
				r.status, r.detail = "refused", reason+": "+err.Error()
				return r
			}
			r.status, r.detail = "fail", "run: "+err.Error()
			return r
		}
		if len(got) != len(want) {
			r.status, r.detail = "fail", fmt.Sprintf("%d outputs, want %d", len(got), len(want))
			return r
		}
		for i := range want {
			if msg := compare(got[i], want[i]); msg != "" {
				r.status, r.detail = "fail", fmt.Sprintf("%s: output %d: %s", filepath.Base(set), i, msg)
				return r
			}
		}
	}
	r.status = "pass"
	if !inScope {
		r.status, r.detail = "fail", "passes although an operator is not registered"
	}
	return r
}

// isAcceptedRefusal lists the refusals of cases whose operators are
// implemented: element types and attribute values outside what the
// runtime implements (named in skipCases), and opsets outside 7–18.
func isAcceptedRefusal(name string, err error) bool {
	if _, ok := skipCases[name]; ok {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "opset") && strings.Contains(msg, "aiaas runs ai.onnx opsets") ||
		strings.Contains(msg, "element type") || strings.Contains(msg, "implemented for") ||
		strings.Contains(msg, "is not a tensor")
}

func readTensors(dir, prefix string) ([]*graph.Tensor, error) {
	var out []*graph.Tensor
	for i := 0; ; i++ {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%s_%d.pb", prefix, i)))
		if errors.Is(err, os.ErrNotExist) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		tp := &onnxpb.TensorProto{}
		if err := proto.Unmarshal(b, tp); err != nil {
			return nil, fmt.Errorf("%s_%d.pb: %v", prefix, i, err)
		}
		t, err := tensorOf(tp, fmt.Sprintf("%s_%d", prefix, i), 1<<28)
		if err != nil {
			return nil, fmt.Errorf("%s_%d.pb: %v", prefix, i, err)
		}
		out = append(out, t)
	}
}

// compare checks got against want as numpy's assert_allclose(rtol=1e-3,
// atol=1e-7) does, NaN matching NaN; integers and booleans exactly.
func compare(got, want *graph.Tensor) string {
	if got.DType != want.DType {
		return fmt.Sprintf("type %v, want %v", got.DType, want.DType)
	}
	if !slices.Equal(got.Shape, want.Shape) {
		return fmt.Sprintf("shape %v, want %v", got.Shape, want.Shape)
	}
	const rtol, atol = 1e-3, 1e-7
	switch got.DType {
	case graph.Float32, graph.Float64, graph.Float16, graph.BFloat16:
		g, w := floats(got), floats(want)
		for i := range w {
			if math.IsNaN(w[i]) && math.IsNaN(g[i]) {
				continue
			}
			if math.IsInf(w[i], 0) && g[i] == w[i] {
				continue
			}
			if !(math.Abs(g[i]-w[i]) <= atol+rtol*math.Abs(w[i])) {
				return fmt.Sprintf("element %d is %g, want %g", i, g[i], w[i])
			}
		}
	default:
		if !slices.Equal(got.Bytes(), want.Bytes()) {
			return fmt.Sprintf("bytes differ: %v, want %v", head(got.Bytes()), head(want.Bytes()))
		}
	}
	return ""
}

func head(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}

func floats(t *graph.Tensor) []float64 {
	out := make([]float64, t.Numel())
	switch t.DType {
	case graph.Float32:
		for i, v := range t.Float32s() {
			out[i] = float64(v)
		}
	case graph.Float64:
		copy(out, graph.Data[float64](t))
	case graph.Float16:
		for i, v := range graph.Data[uint16](t) {
			out[i] = float64(graph.HalfToFloat32(v))
		}
	case graph.BFloat16:
		for i, v := range graph.Data[uint16](t) {
			out[i] = float64(math.Float32frombits(uint32(v) << 16))
		}
	}
	return out
}

// opTable renders, per operator, the cases that ran and passed.
func opTable(results []caseResult) string {
	type stat struct{ run, pass int }
	stats := map[string]*stat{}
	for _, r := range results {
		if r.status == "refused" {
			continue
		}
		for _, op := range r.ops {
			s := stats[op]
			if s == nil {
				s = &stat{}
				stats[op] = s
			}
			s.run++
			if r.status == "pass" {
				s.pass++
			}
		}
	}
	ops := graph.Operators()
	names := make([]string, 0, len(ops))
	for op := range ops {
		names = append(names, op)
	}
	sort.Strings(names)
	var sb strings.Builder
	sb.WriteString("| operator | versions implemented (each used from that opset on) | ONNX backend cases passed / run |\n|---|---|---:|\n")
	for _, op := range names {
		vs := make([]string, len(ops[op]))
		for i, v := range ops[op] {
			vs[i] = fmt.Sprint(v)
		}
		s := stats[op]
		cell := "—"
		if s != nil {
			cell = fmt.Sprintf("%d / %d", s.pass, s.run)
		}
		fmt.Fprintf(&sb, "| %s | %s | %s |\n", op, strings.Join(vs, ", "), cell)
	}
	return sb.String()
}

const (
	tableBegin = "<!-- operator table: generated by go test ./nn/onnx -run TestConformance -update-docs -->\n"
	tableEnd   = "<!-- end of operator table -->"
)

func writeTable(path, table string) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(doc)
	i, j := strings.Index(s, tableBegin), strings.Index(s, tableEnd)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no operator table markers", path)
	}
	s = s[:i+len(tableBegin)] + table + s[j:]
	return os.WriteFile(path, []byte(s), 0o644)
}
