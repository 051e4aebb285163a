package generate

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/aiaas/aiaas/nn/graph"
)

// toy is a decoder small enough to check by hand: x = E[ids], the cache
// holds every x so far, and the logits of each position are
// (x + mean of the cache)·W. With an empty past and the whole sequence it
// computes what the cached steps compute, so generation with the cache
// can be checked against recomputing from scratch.
func toy(t *testing.T, vocab, dim int, seed uint64) *graph.Model {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	e, w := graph.NewTensor(graph.Float32, vocab, dim), graph.NewTensor(graph.Float32, dim, vocab)
	for _, x := range [][]float32{e.Float32s(), w.Float32s()} {
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
	}
	g := &graph.Graph{Opset: 13,
		Inputs: []graph.Value{
			{Name: "input_ids", DType: graph.Int64, Shape: []int64{1, -1}},
			{Name: "attention_mask", DType: graph.Int64, Shape: []int64{1, -1}},
			{Name: "past_key_values.0.key", DType: graph.Float32, Shape: []int64{1, 1, -1, int64(dim)}},
			{Name: "past_key_values.0.value", DType: graph.Float32, Shape: []int64{1, 1, -1, int64(dim)}},
		},
		Outputs: []graph.Value{
			{Name: "logits", DType: graph.Float32, Shape: []int64{1, -1, int64(vocab)}},
			{Name: "present.0.key", DType: graph.Float32},
			{Name: "present.0.value", DType: graph.Float32},
		},
		Nodes: []graph.Node{
			{Name: "emb", Op: "Gather", Inputs: []string{"E", "input_ids"}, Outputs: []string{"x"}},
			{Name: "unsq", Op: "Unsqueeze", Inputs: []string{"x", "axis1"}, Outputs: []string{"xk"}},
			{Name: "k", Op: "Concat", Inputs: []string{"past_key_values.0.key", "xk"}, Outputs: []string{"present.0.key"}, Attrs: map[string]graph.Attr{"axis": {Kind: graph.AttrInt, I: 2}}},
			{Name: "v", Op: "Concat", Inputs: []string{"past_key_values.0.value", "xk"}, Outputs: []string{"present.0.value"}, Attrs: map[string]graph.Attr{"axis": {Kind: graph.AttrInt, I: 2}}},
			{Name: "mean", Op: "ReduceMean", Inputs: []string{"present.0.key"}, Outputs: []string{"m"}, Attrs: map[string]graph.Attr{"axes": {Kind: graph.AttrInts, Ints: []int64{2}}, "keepdims": {Kind: graph.AttrInt, I: 0}}},
			{Name: "add", Op: "Add", Inputs: []string{"x", "m"}, Outputs: []string{"h"}},
			{Name: "lm", Op: "MatMul", Inputs: []string{"h", "W"}, Outputs: []string{"logits"}},
		},
	}
	m, err := graph.Load(g, map[string]*graph.Tensor{"E": e, "W": w, "axis1": graph.TensorFrom([]int{1}, []int64{1})}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// reference recomputes the whole sequence with an empty cache for each
// token, greedily.
func reference(t *testing.T, m *graph.Model, prompt []int64, n int) []int64 {
	t.Helper()
	seq := slices.Clone(prompt)
	var out []int64
	dim := int(m.Inputs()[2].Shape[3])
	for range n {
		ids := graph.TensorFrom([]int{1, len(seq)}, seq)
		mask := graph.TensorFrom([]int{1, len(seq)}, make([]int64, len(seq)))
		empty := graph.NewTensor(graph.Float32, 1, 1, 0, dim)
		res, err := m.Run(context.Background(), []*graph.Tensor{ids, mask, empty, empty}, nil)
		if err != nil {
			t.Fatal(err)
		}
		lg := res[0]
		v := lg.Shape[2]
		last := lg.Float32s()[(len(seq)-1)*v:]
		best := 0
		for i, x := range last[:v] {
			if x > last[best] {
				best = i
			}
		}
		out = append(out, int64(best))
		seq = append(seq, int64(best))
	}
	return out
}

func collect(t *testing.T, lm *Model, prompt []int64, o *Options) ([]int64, Result) {
	t.Helper()
	var got []int64
	res, err := lm.Generate(context.Background(), prompt, o, func(tk Token) error {
		got = append(got, tk.ID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, res.Tokens) {
		t.Fatalf("emitted %v, result %v", got, res.Tokens)
	}
	return got, res
}

func TestGreedyMatchesRecomputing(t *testing.T) {
	m := toy(t, 23, 8, 1)
	lm, err := New(m)
	if err != nil {
		t.Fatal(err)
	}
	if lm.Layers() != 1 {
		t.Errorf("%d layers", lm.Layers())
	}
	prompt := []int64{3, 1, 4, 1, 5}
	got, res := collect(t, lm, prompt, &Options{MaxTokens: 12})
	if want := reference(t, m, prompt, 12); !slices.Equal(got, want) {
		t.Fatalf("cached greedy %v, recomputed %v", got, want)
	}
	if res.FinishReason != FinishLength || res.PromptTokens != 5 {
		t.Errorf("result %+v", res)
	}
}

func TestSampling(t *testing.T) {
	lm, err := New(toy(t, 40, 6, 2))
	if err != nil {
		t.Fatal(err)
	}
	prompt := []int64{7, 8}
	greedy, _ := collect(t, lm, prompt, &Options{MaxTokens: 10})
	// TopK 1 is greedy whatever the temperature.
	if k1, _ := collect(t, lm, prompt, &Options{MaxTokens: 10, Temperature: 5, TopK: 1, Seed: 9}); !slices.Equal(k1, greedy) {
		t.Errorf("top-k 1 %v, greedy %v", k1, greedy)
	}
	// A tiny TopP keeps only the most likely token.
	if p0, _ := collect(t, lm, prompt, &Options{MaxTokens: 10, Temperature: 1, TopP: 1e-9, Seed: 9}); !slices.Equal(p0, greedy) {
		t.Errorf("top-p ~0 %v, greedy %v", p0, greedy)
	}
	// The same seed gives the same tokens; another seed, at a high
	// temperature, other ones.
	a, _ := collect(t, lm, prompt, &Options{MaxTokens: 20, Temperature: 2, Seed: 1})
	b, _ := collect(t, lm, prompt, &Options{MaxTokens: 20, Temperature: 2, Seed: 1})
	c, _ := collect(t, lm, prompt, &Options{MaxTokens: 20, Temperature: 2, Seed: 2})
	if !slices.Equal(a, b) {
		t.Errorf("seed 1 twice: %v and %v", a, b)
	}
	if slices.Equal(a, c) {
		t.Errorf("seeds 1 and 2 gave the same 20 tokens %v", a)
	}
	// Top-k 3 only ever picks among the 3 most likely of each step.
	for seed := range uint64(5) {
		toks, _ := collect(t, lm, prompt, &Options{MaxTokens: 8, Temperature: 3, TopK: 3, Seed: seed})
		if len(toks) != 8 {
			t.Fatalf("%d tokens", len(toks))
		}
	}
}

func TestStops(t *testing.T) {
	lm, err := New(toy(t, 23, 8, 1))
	if err != nil {
		t.Fatal(err)
	}
	prompt := []int64{3, 1, 4, 1, 5}
	greedy, _ := collect(t, lm, prompt, &Options{MaxTokens: 12})

	got, res := collect(t, lm, prompt, &Options{MaxTokens: 12, EOS: []int64{greedy[3]}})
	if first := slices.Index(greedy, greedy[3]); !slices.Equal(got, greedy[:first]) || res.FinishReason != FinishStop {
		t.Errorf("EOS: %v %q, want %v", got, res.FinishReason, greedy[:first])
	}
	stop := greedy[4:6]
	got, res = collect(t, lm, prompt, &Options{MaxTokens: 12, Stop: [][]int64{stop}})
	if res.FinishReason != FinishStop || !slices.Equal(got[len(got)-2:], stop) || len(got) > 6 {
		t.Errorf("stop sequence %v: %v %q", stop, got, res.FinishReason)
	}
	if got, res := collect(t, lm, prompt, &Options{MaxTokens: 12, MaxContext: 8}); len(got) != 3 || res.FinishReason != FinishLength {
		t.Errorf("MaxContext 8 after 5: %v %q", got, res.FinishReason)
	}
	n := 0
	res2, err := lm.Generate(context.Background(), prompt, &Options{MaxTokens: 12}, func(Token) error {
		if n++; n == 4 {
			return ErrStop
		}
		return nil
	})
	if err != nil || res2.FinishReason != FinishStop || len(res2.Tokens) != 4 {
		t.Errorf("ErrStop from emit: %+v %v", res2, err)
	}
	boom := errors.New("client gone")
	if _, err := lm.Generate(context.Background(), prompt, nil, func(Token) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("emit error: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n = 0
	_, err = lm.Generate(ctx, prompt, &Options{MaxTokens: 100}, func(Token) error {
		if n++; n == 2 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || n != 2 {
		t.Errorf("cancelled after 2 tokens: %v, %d tokens", err, n)
	}
	if _, err := lm.Generate(context.Background(), nil, nil, func(Token) error { return nil }); err == nil {
		t.Error("an empty prompt was accepted")
	}
	if _, err := lm.Generate(context.Background(), prompt, &Options{MaxContext: 5}, func(Token) error { return nil }); err == nil {
		t.Error("a prompt at the context limit was accepted")
	}
}

func TestNewRefuses(t *testing.T) {
	g := &graph.Graph{Opset: 13,
		Inputs:  []graph.Value{{Name: "x", DType: graph.Float32, Shape: []int64{-1, 4}}},
		Outputs: []graph.Value{{Name: "y", DType: graph.Float32}},
		Nodes:   []graph.Node{{Name: "r", Op: "Relu", Inputs: []string{"x"}, Outputs: []string{"y"}}},
	}
	m, err := graph.Load(g, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(m); !errors.Is(err, ErrNotDecoder) || !errors.Is(err, graph.ErrUnsupported) {
		t.Errorf("a classifier was taken for a decoder: %v", err)
	}
}
