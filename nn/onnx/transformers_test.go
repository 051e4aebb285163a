package onnx

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aiaas/aiaas/nn/generate"
	"github.com/aiaas/aiaas/nn/graph"
)

// The transformer fixtures: a MiniLM-L6-shaped BERT encoder and a
// GPT-2-small-shaped decoder with its key/value cache, written in plain
// torch with the structure of Hugging Face's models, random fixed-seed
// weights, exported at opsets 14 and 17, with torch's outputs for fixed
// inputs. `scripts/onnx-fixtures.sh transformers` generates them once
// (scripts/gen-transformer-fixtures.py says exactly what they are).

// transformerFixture is a fixture's NAME.json.
type transformerFixture struct {
	Name         string                   `json:"name"`
	Model        string                   `json:"model"`
	Opset        int                      `json:"opset"`
	File         string                   `json:"file"`
	Ops          []string                 `json:"ops"`
	Config       map[string]int           `json:"config"`
	MinGreedyGap float64                  `json:"min_greedy_gap"`
	Tensors      map[string]fixtureTensor `json:"tensors"`
}

type fixtureTensor struct {
	File   string  `json:"file"`
	DType  string  `json:"dtype"`
	Shape  []int   `json:"shape"`
	MaxAbs float64 `json:"max_abs"`
}

// transformerFixtures returns the fixtures' folder (AIAAS_TRANSFORMER_FIXTURES,
// or what scripts/onnx-fixtures.sh transformers prints), skipping as
// networkFixtures does when the generator's Python modules are missing.
func transformerFixtures(t *testing.T) string {
	t.Helper()
	return scriptFixtures(t, "AIAAS_TRANSFORMER_FIXTURES", "transformer", "transformers")
}

// TestTransformers converts each fixture as an upload does (Convert, then
// graph.ReadArtifact), runs torch's inputs and compares: BERT's hidden
// states and pooled embeddings, GPT-2's prompt logits, one cached decoding
// step (which must also equal the uncached logits at that position) and 32
// greedy tokens decoded with the cache fed back. max |Δ| ≤
// 1e-4·max(1, max |ref|). BERT is also loaded without fusions, and both
// must agree; warm runs allocate nothing. Under the race detector only
// bert-op17 runs, fused.
func TestTransformers(t *testing.T) {
	dir := transformerFixtures(t)
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
		var fx transformerFixture
		readJSON(t, filepath.Join(dir, name+".json"), &fx)
		if networksRace && (fx.Model == "gpt2" || fx.Opset != 17) {
			// The race detector's pass is about the parallel kernels: one
			// BERT export is enough (parsing GPT-2's 650 MB under it alone
			// takes minutes).
			summary = append(summary, fmt.Sprintf("skip %-10s not under the race detector", name))
			continue
		}
		var line string
		ok := t.Run(name, func(t *testing.T) {
			switch fx.Model {
			case "bert":
				runBert(t, dir, &fx, &line)
			case "gpt2":
				runGPT2(t, dir, &fx, &line)
			default:
				t.Fatalf("unknown model %q", fx.Model)
			}
		})
		status := "ok  "
		if !ok {
			status = "FAIL"
		}
		summary = append(summary, fmt.Sprintf("%s %-10s %s", status, name, line))
	}
	t.Logf("transformers (%s, %.1f s):\n\t%s", dir, time.Since(start).Seconds(), strings.Join(summary, "\n\t"))
}

// loadTransformer converts the fixture's file and loads it as serving
// does, and, with noFuse, also without the load-time fusions.
func loadTransformer(t *testing.T, dir string, fx *transformerFixture, noFuse bool) (fused, plain *graph.Model, load time.Duration) {
	t.Helper()
	what := fmt.Sprintf("%s (opset %d; operators %s)", fx.Name, fx.Opset, strings.Join(fx.Ops, " "))
	b, err := os.ReadFile(filepath.Join(dir, fx.File))
	if err != nil {
		t.Fatal(err)
	}
	lack := ""
	if m := missingOps(fx.Ops, fx.Opset); len(m) > 0 {
		lack = fmt.Sprintf("\n\tthe runtime lacks, at opset %d: %s", fx.Opset, strings.Join(m, ", "))
	}
	start := time.Now()
	art, err := Convert(b, nil)
	if err != nil {
		t.Fatalf("%s: Convert: %v%s", what, err, lack)
	}
	fused, _, err = graph.ReadArtifact(art, nil)
	if err != nil {
		t.Fatalf("%s: graph.ReadArtifact: %v%s", what, err, lack)
	}
	load = time.Since(start)
	art = nil
	if noFuse {
		g, ts, err := Parse(b, nil)
		if err != nil {
			t.Fatal(err)
		}
		if plain, err = graph.Load(g, ts, &graph.Options{NoFuse: true}); err != nil {
			t.Fatalf("%s: Load without fusions: %v", what, err)
		}
	}
	return fused, plain, load
}

func runBert(t *testing.T, dir string, fx *transformerFixture, line *string) {
	*line = "did not finish"
	m, plain, load := loadTransformer(t, dir, fx, !networksRace)
	ins := []*graph.Tensor{
		readTensor(t, dir, fx.Tensors["input_ids"]),
		readTensor(t, dir, fx.Tensors["attention_mask"]),
		readTensor(t, dir, fx.Tensors["token_type_ids"]),
	}
	for i, v := range m.Inputs() {
		want := []string{"input_ids", "attention_mask", "token_type_ids"}[i]
		if v.Name != want || v.DType != graph.Int64 || !slices.Equal(v.Shape, []int64{-1, -1}) {
			t.Errorf("input %d declared %q %v %v, want %q INT64 [-1 -1]", i, v.Name, v.DType, v.Shape, want)
		}
	}
	href, hw := fx.Tensors["last_hidden_state"], fx.Tensors["pooled"]
	start := time.Now()
	out := runOne(t, m, ins)
	run := time.Since(start)
	dh := compareRef(t, "last_hidden_state", out, readTensor(t, dir, href), href.MaxAbs)
	pooled := meanPool(out, ins[1])
	dp := compareRef(t, "pooled embeddings", pooled, readTensor(t, dir, hw), 1)

	// Without the fusions: the same within the tolerance.
	df := math.NaN()
	if plain != nil {
		df = compareRef(t, "fused vs unfused hidden states", out, runOne(t, plain, ins), href.MaxAbs)
	}

	// Batch 1, the first row alone (every row of the dynamic batch).
	row := func(x *graph.Tensor) *graph.Tensor {
		n := x.Numel() / x.Shape[0]
		sh := append([]int{1}, x.Shape[1:]...)
		tt, err := graph.TensorFromBytes(x.DType, sh, x.Bytes()[:n*x.DType.Size()])
		if err != nil {
			t.Fatal(err)
		}
		return tt
	}
	out1 := runOne(t, m, []*graph.Tensor{row(ins[0]), row(ins[1]), row(ins[2])})
	compareRef(t, "batch 1 (row 0)", out1, row(out), href.MaxAbs)

	checkNoAllocs(t, m, ins, []*graph.Tensor{out.Clone()})
	checkFused(t, m, ins, fx.Config["layers"])
	// 128 tokens, where the products split over the kernels' pool: no
	// allocation there either.
	long := make([]*graph.Tensor, 3)
	for i, x := range ins {
		v := make([]int64, 128)
		for j := range v {
			v[j] = x.Int64s()[j%x.Shape[1]]
		}
		long[i] = graph.TensorFrom([]int{1, 128}, v)
	}
	checkNoAllocs(t, m, long, []*graph.Tensor{runOne(t, m, long)})
	*line = fmt.Sprintf("hidden max |Δ| %.2g (max |ref| %.3g), pooled %.2g, fused vs not %.2g; load %.2f s, run %.3f s",
		dh, href.MaxAbs, dp, df, load.Seconds(), run.Seconds())
	t.Log(*line)
}

func runGPT2(t *testing.T, dir string, fx *transformerFixture, line *string) {
	*line = "did not finish"
	m, _, load := loadTransformer(t, dir, fx, false)
	layers, heads, hidden := fx.Config["layers"], fx.Config["heads"], fx.Config["hidden"]
	hd := hidden / heads
	ins := m.Inputs()
	if len(ins) != 2+2*layers || ins[0].Name != "input_ids" || ins[1].Name != "attention_mask" {
		t.Fatalf("inputs %v", ins)
	}
	outs := m.Outputs()
	if len(outs) != 1+2*layers || outs[0].Name != "logits" {
		t.Fatalf("outputs %v", outs)
	}
	for i := 0; i < 2*layers; i++ {
		v := ins[2+i]
		if v.DType != graph.Float32 || !slices.Equal(v.Shape, []int64{-1, int64(heads), -1, int64(hd)}) {
			t.Errorf("input %q declared %v %v", v.Name, v.DType, v.Shape)
		}
	}
	ones := func(n int) *graph.Tensor {
		v := make([]int64, n)
		for i := range v {
			v[i] = 1
		}
		return graph.TensorFrom([]int{1, n}, v)
	}
	// step runs ids with the cache past (nil: empty) and returns the
	// logits and the new cache.
	step := func(ids []int64, past []*graph.Tensor) (*graph.Tensor, []*graph.Tensor) {
		t.Helper()
		pastLen := 0
		if past == nil {
			past = make([]*graph.Tensor, 2*layers)
			for i := range past {
				past[i] = graph.NewTensor(graph.Float32, 1, heads, 0, hd)
			}
		} else {
			pastLen = past[0].Shape[2]
		}
		in := append([]*graph.Tensor{graph.TensorFrom([]int{1, len(ids)}, ids), ones(pastLen + len(ids))}, past...)
		o, err := m.Run(context.Background(), in, nil)
		if err != nil {
			t.Fatalf("Run (%d tokens, past %d): %v", len(ids), pastLen, err)
		}
		return o[0], o[1:]
	}
	prompt := readTensor(t, dir, fx.Tensors["prompt"]).Int64s()
	pref := fx.Tensors["prompt_logits"]
	start := time.Now()
	logits, cache := step(prompt, nil)
	prefill := time.Since(start)
	dPrompt := compareRef(t, "prompt logits", logits, readTensor(t, dir, pref), pref.MaxAbs)

	next := readTensor(t, dir, fx.Tensors["next_id"]).Int64s()
	if got := argmaxLast(logits); got != next[0] {
		t.Errorf("the prompt's next token is %d, torch's %d", got, next[0])
	}
	sref := fx.Tensors["step_logits"]
	stepLogits, _ := step(next, cache)
	dStep := compareRef(t, "cached step logits", stepLogits, readTensor(t, dir, sref), sref.MaxAbs)
	// The same position without the cache.
	full, _ := step(append(slices.Clone(prompt), next[0]), nil)
	v := full.Shape[2]
	last := graph.TensorFrom([]int{1, 1, v}, full.Float32s()[len(prompt)*v:])
	dCache := compareRef(t, "cached vs uncached step", stepLogits, last, sref.MaxAbs)

	// Greedy decoding, the cache fed back.
	want := readTensor(t, dir, fx.Tensors["generated"]).Int64s()
	var got []int64
	cur, past := logits, cache
	start = time.Now()
	for i := range want {
		id := argmaxLast(cur)
		got = append(got, id)
		if i == len(want)-1 {
			break
		}
		cur, past = step([]int64{id}, past)
	}
	decode := time.Since(start)
	if !slices.Equal(got, want) {
		t.Errorf("greedy tokens (min top-2 gap in torch %.3g):\n\tgot  %v\n\twant %v", fx.MinGreedyGap, got, want)
	}

	// The same through nn/generate, which keeps the cache in buffers of
	// its own and feeds each step's present back as the next past.
	lm, err := generate.New(m)
	if err != nil {
		t.Fatal(err)
	}
	res, err := lm.Generate(context.Background(), prompt, &generate.Options{MaxTokens: len(want)}, func(generate.Token) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Tokens, want) {
		t.Errorf("generate.Generate's greedy tokens:\n\tgot  %v\n\twant %v", res.Tokens, want)
	}

	// A warm decoding step with the caller's outputs allocates nothing.
	in := append([]*graph.Tensor{graph.TensorFrom([]int{1, 1}, next), ones(len(prompt) + 1)}, cache...)
	o, err := m.Run(context.Background(), in, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkNoAllocs(t, m, in, o)
	checkFused(t, m, in, layers)
	*line = fmt.Sprintf("prompt max |Δ| %.2g (max |ref| %.3g), step %.2g, cached vs not %.2g, %d greedy tokens equal; load %.2f s, prefill %d %.3f s, %.1f ms/token",
		dPrompt, pref.MaxAbs, dStep, dCache, len(want), load.Seconds(), len(prompt), prefill.Seconds(), 1e3*decode.Seconds()/float64(len(want)-1))
	t.Log(*line)
}

// checkFused checks that the load-time fusions took every LayerNorm,
// GELU and attention of the graph: its plan for ins has one
// aiaas.Attention per layer and none of the operators they are written
// with.
func checkFused(t *testing.T, m *graph.Model, ins []*graph.Tensor, layers int) {
	t.Helper()
	prof, err := m.Profile(context.Background(), ins, 0)
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]int{}
	for _, p := range prof {
		ops[p.Op]++
	}
	t.Logf("steps by operator: %v", ops)
	for _, op := range []string{"Softmax", "Erf", "Tanh", "ReduceMean", "Pow", "Sqrt"} {
		if ops[op] != 0 {
			t.Errorf("%d %s steps left after fusion", ops[op], op)
		}
	}
	if ops["aiaas.Attention"] != layers {
		t.Errorf("%d aiaas.Attention steps, want one per layer (%d)", ops["aiaas.Attention"], layers)
	}
}

func runOne(t *testing.T, m *graph.Model, ins []*graph.Tensor) *graph.Tensor {
	t.Helper()
	o, err := m.Run(context.Background(), ins, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return o[0]
}

func checkNoAllocs(t *testing.T, m *graph.Model, in, outs []*graph.Tensor) {
	t.Helper()
	if networksRace {
		return
	}
	ctx := context.Background()
	if n := testing.AllocsPerRun(3, func() {
		if _, err := m.Run(ctx, in, outs); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v heap allocations per warm run, want 0", n)
	}
}

// compareRef checks got against want (same shape) within 1e-4·max(1, scale)
// and returns max |Δ|.
func compareRef(t *testing.T, what string, got, want *graph.Tensor, scale float64) float64 {
	t.Helper()
	if got.DType != graph.Float32 || !slices.Equal(got.Shape, want.Shape) {
		t.Errorf("%s: %v %v, want FLOAT %v", what, got.DType, got.Shape, want.Shape)
		return math.Inf(1)
	}
	tol := networkTol(scale)
	d, i := maxAbsDiff(got.Float32s(), want.Float32s())
	if !(d <= tol) {
		t.Errorf("%s: max |Δ| %.3g at %v (got %g, want %g), tolerance %.3g", what, d, unravel(i, want.Shape), got.Float32s()[i], want.Float32s()[i], tol)
	}
	return d
}

// meanPool averages hidden [B, S, H] over the positions where mask is 1
// and L2-normalises each row, as sentence-transformers does.
func meanPool(hidden, mask *graph.Tensor) *graph.Tensor {
	b, s, h := hidden.Shape[0], hidden.Shape[1], hidden.Shape[2]
	x, mk := hidden.Float32s(), mask.Int64s()
	out := make([]float32, b*h)
	for i := 0; i < b; i++ {
		acc := make([]float64, h)
		n := 0.0
		for j := 0; j < s; j++ {
			if mk[i*s+j] == 0 {
				continue
			}
			n++
			for k := 0; k < h; k++ {
				acc[k] += float64(x[(i*s+j)*h+k])
			}
		}
		norm := 0.0
		for k := range acc {
			acc[k] /= max(n, 1e-9)
			norm += acc[k] * acc[k]
		}
		norm = max(math.Sqrt(norm), 1e-12)
		for k := range acc {
			out[i*h+k] = float32(acc[k] / norm)
		}
	}
	return graph.TensorFrom([]int{b, h}, out)
}

// argmaxLast returns the best token at the last position of logits
// [1, S, V] (the first of equal values, as torch's argmax).
func argmaxLast(logits *graph.Tensor) int64 {
	v := logits.Shape[2]
	x := logits.Float32s()
	x = x[len(x)-v:]
	best := 0
	for i, f := range x {
		if f > x[best] {
			best = i
		}
	}
	return int64(best)
}

// readTensor reads a fixture tensor file (little-endian FLOAT or INT64).
func readTensor(t *testing.T, dir string, a fixtureTensor) *graph.Tensor {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, a.File))
	if err != nil {
		t.Fatal(err)
	}
	n := 1
	for _, d := range a.Shape {
		n *= d
	}
	switch a.DType {
	case "FLOAT":
		if len(b) != 4*n {
			t.Fatalf("%s: %d bytes for %v FLOAT", a.File, len(b), a.Shape)
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return graph.TensorFrom(a.Shape, v)
	case "INT64":
		if len(b) != 8*n {
			t.Fatalf("%s: %d bytes for %v INT64", a.File, len(b), a.Shape)
		}
		v := make([]int64, n)
		for i := range v {
			v[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
		}
		return graph.TensorFrom(a.Shape, v)
	}
	t.Fatalf("%s: type %q", a.File, a.DType)
	return nil
}

// BenchmarkTransformer runs the bert-op17 fixture (TRANSFORMER=NAME for
// another; gpt2-* runs the prefill with an empty cache) on one sequence
// of SEQ tokens (default 128): for profiles (-cpuprofile) of the hot
// paths. bench/transformer compares with ONNX Runtime.
func BenchmarkTransformer(b *testing.B) {
	dir := os.Getenv("AIAAS_TRANSFORMER_FIXTURES")
	if dir == "" {
		b.Skip("AIAAS_TRANSFORMER_FIXTURES is not set")
	}
	name := cmp.Or(os.Getenv("TRANSFORMER"), "bert-op17")
	seq, _ := strconv.Atoi(cmp.Or(os.Getenv("SEQ"), "128"))
	raw, err := os.ReadFile(filepath.Join(dir, name+".onnx"))
	if err != nil {
		b.Fatal(err)
	}
	g, ts, err := Parse(raw, nil)
	if err != nil {
		b.Fatal(err)
	}
	m, err := graph.Load(g, ts, nil)
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]int64, seq)
	ones := make([]int64, seq)
	for i := range ids {
		ids[i], ones[i] = int64(1000+(i*7919)%20000), 1
	}
	ins := []*graph.Tensor{graph.TensorFrom([]int{1, seq}, ids), graph.TensorFrom([]int{1, seq}, ones)}
	for _, v := range m.Inputs()[2:] {
		if v.DType == graph.Int64 {
			ins = append(ins, graph.TensorFrom([]int{1, seq}, make([]int64, seq)))
		} else {
			ins = append(ins, graph.NewTensor(graph.Float32, 1, int(v.Shape[1]), 0, int(v.Shape[3])))
		}
	}
	ctx := context.Background()
	out, err := m.Run(ctx, ins, nil)
	if err != nil {
		b.Fatal(err)
	}
	flops, _, _ := m.Cost(ins)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if out, err = m.Run(ctx, ins, out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
