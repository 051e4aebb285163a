package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/nn/graph"
	"github.com/aiaas/aiaas/platform"
)

// The demo's text endpoints run two tiny graphs with random weights, made
// here at start so trying the text routes and the console's Text page
// needs no download. They are plumbing, not language models: the encoder
// looks each token up in a random table (so sentences sharing words come
// out similar), the decoder picks random-looking GPT-2 tokens.
const (
	demoEmbedModel    = "text-embed"
	demoEmbedEndpoint = "text-embed"
	demoGenModel      = "text-gen"
	demoGenEndpoint   = "text-gen"

	bertVocab = 30522 // all-MiniLM-L6-v2's WordPiece ids (the wordpiece plugin)
	gpt2Vocab = 50257 // GPT-2's byte-level BPE ids (the bpe plugin)

	demoEmbedDim = 64
	demoGenDim   = 16
)

// demoTextPlugins are what the text endpoints need from --plugins-dir.
var demoTextPlugins = []string{"wordpiece", "bpe", "pool"}

func randomTensor(r *rand.Rand, rows, cols int) *graph.Tensor {
	t := graph.NewTensor(graph.Float32, rows, cols)
	x := t.Float32s()
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return t
}

// demoEncoder is a BERT-shaped encoder: input_ids, attention_mask and
// token_type_ids [batch, seq] in, last_hidden_state [batch, seq, 64] out,
// each token's vector a row of a random table (a Gather). Mean pooling
// then gives a sentence the direction of the sum of its tokens' rows.
func demoEncoder() (*graph.Graph, map[string]*graph.Tensor) {
	r := rand.New(rand.NewPCG(7, 1))
	g := &graph.Graph{Opset: 13,
		Inputs: []graph.Value{
			{Name: "input_ids", DType: graph.Int64, Shape: []int64{-1, -1}},
			{Name: "attention_mask", DType: graph.Int64, Shape: []int64{-1, -1}},
			{Name: "token_type_ids", DType: graph.Int64, Shape: []int64{-1, -1}},
		},
		Outputs: []graph.Value{{Name: "last_hidden_state", DType: graph.Float32, Shape: []int64{-1, -1, demoEmbedDim}}},
		Nodes:   []graph.Node{{Name: "embed", Op: "Gather", Inputs: []string{"E", "input_ids"}, Outputs: []string{"last_hidden_state"}}},
	}
	return g, map[string]*graph.Tensor{"E": randomTensor(r, bertVocab, demoEmbedDim)}
}

// demoDecoder is a GPT-2-shaped decoder with a one-layer key/value cache:
// a token's vector (a row of a random table) plus the mean of the cache,
// times a random projection, gives the next token's logits. nn/generate
// drives it exactly as an exported GPT-2 (past_key_values.0.key/value in,
// present.0.key/value out).
func demoDecoder() (*graph.Graph, map[string]*graph.Tensor) {
	r := rand.New(rand.NewPCG(42, 1))
	axis := func(i int64) map[string]graph.Attr { return map[string]graph.Attr{"axis": {Kind: graph.AttrInt, I: i}} }
	g := &graph.Graph{Opset: 13,
		Inputs: []graph.Value{
			{Name: "input_ids", DType: graph.Int64, Shape: []int64{1, -1}},
			{Name: "attention_mask", DType: graph.Int64, Shape: []int64{1, -1}},
			{Name: "past_key_values.0.key", DType: graph.Float32, Shape: []int64{1, 1, -1, demoGenDim}},
			{Name: "past_key_values.0.value", DType: graph.Float32, Shape: []int64{1, 1, -1, demoGenDim}},
		},
		Outputs: []graph.Value{
			{Name: "logits", DType: graph.Float32, Shape: []int64{1, -1, gpt2Vocab}},
			{Name: "present.0.key", DType: graph.Float32},
			{Name: "present.0.value", DType: graph.Float32},
		},
		Nodes: []graph.Node{
			{Name: "embed", Op: "Gather", Inputs: []string{"E", "input_ids"}, Outputs: []string{"x"}},
			{Name: "heads", Op: "Unsqueeze", Inputs: []string{"x", "axis1"}, Outputs: []string{"xk"}},
			{Name: "key", Op: "Concat", Inputs: []string{"past_key_values.0.key", "xk"}, Outputs: []string{"present.0.key"}, Attrs: axis(2)},
			{Name: "value", Op: "Concat", Inputs: []string{"past_key_values.0.value", "xk"}, Outputs: []string{"present.0.value"}, Attrs: axis(2)},
			{Name: "context", Op: "ReduceMean", Inputs: []string{"present.0.key"}, Outputs: []string{"m"},
				Attrs: map[string]graph.Attr{"axes": {Kind: graph.AttrInts, Ints: []int64{2}}, "keepdims": {Kind: graph.AttrInt, I: 0}}},
			{Name: "mix", Op: "Add", Inputs: []string{"x", "m"}, Outputs: []string{"h"}},
			{Name: "lm_head", Op: "MatMul", Inputs: []string{"h", "W"}, Outputs: []string{"logits"}},
		},
	}
	return g, map[string]*graph.Tensor{
		"E":     randomTensor(r, gpt2Vocab, demoGenDim),
		"W":     randomTensor(r, demoGenDim, gpt2Vocab),
		"axis1": graph.TensorFrom([]int{1}, []int64{1}),
	}
}

// demoText makes the text-embed and text-gen models and endpoints when
// the tokenizer and pooling plugins are in dir. It returns the endpoints
// made, or none and why not.
func demoText(ctx context.Context, s *platform.Server, tenant, dir string, logf func(string, ...any)) (embed, gen, skipped string, err error) {
	if !s.PluginsEnabled() {
		return "", "", "this server runs no plugins", nil
	}
	wasm := map[string][]byte{}
	for _, name := range demoTextPlugins {
		b, err := os.ReadFile(filepath.Join(dir, name+".wasm"))
		if err != nil {
			return "", "", fmt.Sprintf("%s has no %s.wasm (build the example plugins with 'make plugins')", dir, name), nil
		}
		wasm[name] = b
	}
	for _, name := range demoTextPlugins {
		if _, err := s.PutPlugin(ctx, tenant, name, wasm[name]); err != nil {
			return "", "", "", fmt.Errorf("plugin %s: %w", name, err)
		}
	}
	models := []struct {
		name  string
		build func() (*graph.Graph, map[string]*graph.Tensor)
	}{{demoEmbedModel, demoEncoder}, {demoGenModel, demoDecoder}}
	for _, m := range models {
		if _, err := s.LatestVersion(ctx, tenant, m.name); err == nil {
			continue
		} else if !errors.Is(err, modelstore.ErrNotFound) {
			return "", "", "", err
		}
		g, ts := m.build()
		var buf bytes.Buffer
		meta := graph.Metadata{Provenance: map[string]string{
			"trainer": "aiaas serve --demo",
			"weights": "random: a model for trying the text plumbing, not a language model",
		}}
		if err := graph.WriteArtifact(&buf, g, ts, meta); err != nil {
			return "", "", "", err
		}
		info, err := s.Publish(ctx, tenant, m.name, buf.Bytes())
		if err != nil {
			return "", "", "", fmt.Errorf("model %s: %w", m.name, err)
		}
		logf("published %s version %d (random weights, %.1f MB)", m.name, info.Version, float64(buf.Len())/1e6)
	}
	eps := []platform.Endpoint{
		{Name: demoEmbedEndpoint, Model: demoEmbedModel, Preprocess: "wordpiece", Postprocess: "pool", ForwardInputs: []string{"attention_mask"}},
		{Name: demoGenEndpoint, Model: demoGenModel, Preprocess: "bpe", Postprocess: "bpe", Generation: &platform.GenerationConfig{EOS: []int64{50256}, MaxContext: 1024}},
	}
	for _, ep := range eps {
		if err := s.PutEndpoint(ctx, tenant, ep); err != nil {
			return "", "", "", fmt.Errorf("endpoint %s: %w", ep.Name, err)
		}
	}
	return demoEmbedEndpoint, demoGenEndpoint, "", nil
}
