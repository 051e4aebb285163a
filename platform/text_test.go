package platform_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aiaas/aiaas/nn/generate"
	"github.com/aiaas/aiaas/nn/graph"
	"github.com/aiaas/aiaas/platform/config"
	"github.com/aiaas/aiaas/sdk/plugin/tokenizer"
)

// toyDecoder is a decoder with a key/value cache over GPT-2's 50,257 ids
// (see nn/generate's test for what it computes): small, but it runs the
// whole pipeline — bpe in, the cache across steps, bpe out.
func toyDecoder(t *testing.T) (*graph.Graph, map[string]*graph.Tensor) {
	t.Helper()
	const vocab, dim = 50257, 4
	r := rand.New(rand.NewPCG(42, 1))
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
			{Name: "past_key_values.0.key", DType: graph.Float32, Shape: []int64{1, 1, -1, dim}},
			{Name: "past_key_values.0.value", DType: graph.Float32, Shape: []int64{1, 1, -1, dim}},
		},
		Outputs: []graph.Value{
			{Name: "logits", DType: graph.Float32, Shape: []int64{1, -1, vocab}},
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
	return g, map[string]*graph.Tensor{"E": e, "W": w, "axis1": graph.TensorFrom([]int{1}, []int64{1})}
}

// toyEncoder is an "encoder" whose token vectors are rows of E: the
// pooled embedding of a text is the unit mean of its tokens' rows.
func toyEncoder(t *testing.T) (*graph.Graph, map[string]*graph.Tensor) {
	t.Helper()
	const vocab, dim = 30522, 8
	r := rand.New(rand.NewPCG(7, 1))
	e := graph.NewTensor(graph.Float32, vocab, dim)
	for i := range e.Float32s() {
		e.Float32s()[i] = float32(r.NormFloat64())
	}
	g := &graph.Graph{Opset: 13,
		Inputs: []graph.Value{
			{Name: "input_ids", DType: graph.Int64, Shape: []int64{-1, -1}},
			{Name: "attention_mask", DType: graph.Int64, Shape: []int64{-1, -1}},
			{Name: "token_type_ids", DType: graph.Int64, Shape: []int64{-1, -1}},
		},
		Outputs: []graph.Value{{Name: "last_hidden_state", DType: graph.Float32}},
		Nodes:   []graph.Node{{Name: "emb", Op: "Gather", Inputs: []string{"E", "input_ids"}, Outputs: []string{"last_hidden_state"}}},
	}
	return g, map[string]*graph.Tensor{"E": e}
}

func artifactBytes(t *testing.T, g *graph.Graph, ts map[string]*graph.Tensor) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := graph.WriteArtifact(&buf, g, ts, graph.Metadata{}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func loadVocab(t *testing.T, path string) *tokenizer.Tokenizer {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.LoadBinary(b)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// textEnv publishes the toy models and the tokenizer plugins, and makes
// the endpoints "embed" (wordpiece → encoder → pool) and "gen" (bpe →
// decoder → bpe).
func textEnv(t *testing.T, mutate ...func(*config.Config)) (*env, string) {
	t.Helper()
	e := newEnvWithPlugins(t, mutate...)
	key := e.tenant("acme")
	wasm := examplePlugins(t)
	for _, name := range []string{"wordpiece", "bpe", "pool"} {
		if r := e.do("PUT", "/v1/plugins/"+name, key, wasm[name], "Content-Type", "application/wasm"); r.status != 201 {
			t.Fatalf("plugin %s: %d %s", name, r.status, r.body)
		}
	}
	g, ts := toyEncoder(t)
	if r := e.do("POST", "/v1/models/enc/versions", key, artifactBytes(t, g, ts)); r.status != 201 {
		t.Fatalf("publish enc: %d %s", r.status, r.body)
	}
	g, ts = toyDecoder(t)
	if r := e.do("POST", "/v1/models/dec/versions", key, artifactBytes(t, g, ts)); r.status != 201 {
		t.Fatalf("publish dec: %d %s", r.status, r.body)
	}
	if r := e.do("PUT", "/v1/endpoints/embed", key, map[string]any{"model": "enc", "preprocess": "wordpiece", "postprocess": "pool", "forward_inputs": []string{"attention_mask"}}); r.status != 201 {
		t.Fatalf("endpoint embed: %d %s", r.status, r.body)
	}
	if r := e.do("PUT", "/v1/endpoints/gen", key, map[string]any{"model": "dec", "preprocess": "bpe", "postprocess": "bpe", "generation": map[string]any{"max_context": 1024}}); r.status != 201 {
		t.Fatalf("endpoint gen: %d %s", r.status, r.body)
	}
	return e, key
}

func TestOpenAIEmbeddings(t *testing.T) {
	e, key := textEnv(t)
	texts := []string{"The cat sat on the mat.", "naïve façade café déjà vu, with a much longer tail of words"}
	r := e.do("POST", "/openai/v1/embeddings", key, map[string]any{"model": "embed", "input": texts})
	if r.status != 200 {
		t.Fatalf("embeddings: %d %s", r.status, r.body)
	}
	var resp struct {
		Object string `json:"object"`
		Data   []struct {
			Index     int       `json:"index"`
			Embedding []float64 `json:"embedding"`
		} `json:"data"`
		Model string `json:"model"`
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(r.body, &resp); err != nil {
		t.Fatal(err)
	}
	tok := loadVocab(t, "../examples/plugins/wordpiece/vocab/tokenizer.bin")
	g, ts := toyEncoder(t)
	table := ts["E"].Float32s()
	_ = g
	tokens := 0
	for i, text := range texts {
		enc, err := tok.Encode(text, nil)
		if err != nil {
			t.Fatal(err)
		}
		tokens += len(enc.IDs)
		want := make([]float64, 8)
		for _, id := range enc.IDs {
			for j := range want {
				want[j] += float64(table[int(id)*8+j])
			}
		}
		norm := 0.0
		for _, v := range want {
			norm += v * v
		}
		got := resp.Data[i].Embedding
		if len(got) != 8 || resp.Data[i].Index != i {
			t.Fatalf("row %d: %v", i, resp.Data[i])
		}
		for j := range want {
			if d := math.Abs(got[j] - want[j]/math.Sqrt(norm)); d > 1e-5 {
				t.Fatalf("text %d element %d: %v, want %v (the padded row must pool its own tokens only)", i, j, got[j], want[j]/math.Sqrt(norm))
			}
		}
	}
	if resp.Object != "list" || resp.Model != "embed" || resp.Usage.PromptTokens != tokens {
		t.Errorf("envelope %+v, want %d tokens", resp, tokens)
	}
	// base64 and a single string.
	b := e.do("POST", "/openai/v1/embeddings", key, map[string]any{"model": "embed", "input": "hello", "encoding_format": "base64"})
	if b.status != 200 || !strings.Contains(string(b.body), `"embedding":"`) {
		t.Fatalf("base64: %d %s", b.status, b.body)
	}
	// OpenAI-shaped errors.
	for _, c := range []struct {
		body   map[string]any
		status int
	}{
		{map[string]any{"model": "nope", "input": "x"}, 404},
		{map[string]any{"model": "embed", "input": []int{1, 2}}, 400},
		{map[string]any{"model": "embed", "input": "x", "encoding_format": "int8"}, 400},
	} {
		r := e.do("POST", "/openai/v1/embeddings", key, c.body)
		var eb struct {
			Error struct {
				Message string `json:"message"`
				Type    string `json:"type"`
			} `json:"error"`
		}
		if r.status != c.status || json.Unmarshal(r.body, &eb) != nil || eb.Error.Message == "" || eb.Error.Type == "" {
			t.Errorf("%v: %d %s, want %d with an OpenAI error object", c.body, r.status, r.body, c.status)
		}
	}
}

// TestEmbeddingsBatched: with adaptive batching on, concurrent embedding
// requests of texts of many lengths get what each gets alone.
func TestEmbeddingsBatched(t *testing.T) {
	words := strings.Fields("the cat sat on the naïve façade of a café déjà vu while 東京 rain fell softly")
	texts := make([]string, 24)
	for i := range texts {
		texts[i] = strings.Join(words[i%5:i%5+1+i%len(words[i%5:])], " ")
	}
	embed := func(e *env, key string, text string) (string, error) {
		r := e.do("POST", "/openai/v1/embeddings", key, map[string]any{"model": "embed", "input": text})
		if r.status != 200 {
			return "", fmt.Errorf("%q: %d %s", text, r.status, r.body)
		}
		var resp struct {
			Data []struct {
				Embedding []float32 `json:"embedding"`
			} `json:"data"`
		}
		if err := json.Unmarshal(r.body, &resp); err != nil || len(resp.Data) != 1 {
			return "", fmt.Errorf("%q: %s", text, r.body)
		}
		return fmt.Sprintf("%.5f", resp.Data[0].Embedding), nil
	}
	alone, key := textEnv(t)
	want := make([]string, len(texts))
	for i, text := range texts {
		var err error
		if want[i], err = embed(alone, key, text); err != nil {
			t.Fatal(err)
		}
	}
	e, key := textEnv(t, func(c *config.Config) { c.BatchWindow, c.BatchMax = 5*time.Millisecond, 16 })
	var wg sync.WaitGroup
	errs := make(chan error, len(texts))
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < len(texts)*3; i += 8 {
				got, err := embed(e, key, texts[i%len(texts)])
				if err == nil && got != want[i%len(texts)] {
					err = fmt.Errorf("%q batched: %s, alone: %s", texts[i%len(texts)], got, want[i%len(texts)])
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	met := e.do("GET", "/metrics", adminKey, nil)
	if !regexp.MustCompile(`(?m)^aiaas_batch_rows_count [1-9]`).Match(met.body) {
		t.Errorf("no forward pass went through the batcher:\n%s", met.body)
	}
}

// expectedCompletion is what greedy generation of n tokens gives, computed
// here without the server: the same tokenizer, the same graph, the same
// generator.
func expectedCompletion(t *testing.T, prompt string, n int) string {
	t.Helper()
	tok := loadVocab(t, "../examples/plugins/bpe/vocab/gpt2.bin")
	enc, err := tok.Encode(prompt, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, ts := toyDecoder(t)
	m, err := graph.Load(g, ts, nil)
	if err != nil {
		t.Fatal(err)
	}
	lm, err := generate.New(m)
	if err != nil {
		t.Fatal(err)
	}
	res, err := lm.Generate(context.Background(), enc.IDs, &generate.Options{MaxTokens: n}, func(generate.Token) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	return tok.Decode(res.Tokens, true)
}

func sseData(t *testing.T, body []byte) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			out = append(out, d)
		}
	}
	return out
}

func TestOpenAICompletions(t *testing.T) {
	e, key := textEnv(t)
	prompt := "Once upon a time"
	want := expectedCompletion(t, prompt, 12)
	if want == "" {
		t.Fatal("the toy model generated no text")
	}
	r := e.do("POST", "/openai/v1/completions", key, map[string]any{"model": "gen", "prompt": prompt, "max_tokens": 12, "temperature": 0})
	if r.status != 200 {
		t.Fatalf("completions: %d %s", r.status, r.body)
	}
	var resp struct {
		Object  string `json:"object"`
		Choices []struct {
			Text         string `json:"text"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
			TotalTokens      int `json:"total_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(r.body, &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Choices) != 1 || resp.Choices[0].Text != want || resp.Choices[0].FinishReason != "length" || resp.Object != "text_completion" {
		t.Fatalf("completion %s, want text %q", r.body, want)
	}
	if resp.Usage.CompletionTokens != 12 || resp.Usage.PromptTokens != 4 || resp.Usage.TotalTokens != 16 {
		t.Errorf("usage %+v", resp.Usage)
	}

	// Streamed: the chunks add up to the same text, then [DONE].
	s := e.do("POST", "/openai/v1/completions", key, map[string]any{"model": "gen", "prompt": prompt, "max_tokens": 12, "temperature": 0, "stream": true, "stream_options": map[string]bool{"include_usage": true}})
	if s.status != 200 || !strings.HasPrefix(s.header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("stream: %d %v %s", s.status, s.header, s.body)
	}
	events := sseData(t, s.body)
	if len(events) < 3 || events[len(events)-1] != "[DONE]" {
		t.Fatalf("events %q", events)
	}
	var text strings.Builder
	finish := ""
	for _, ev := range events[:len(events)-1] {
		var c struct {
			Choices []struct {
				Text         string  `json:"text"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
			Usage *struct {
				TotalTokens int `json:"total_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal([]byte(ev), &c); err != nil {
			t.Fatalf("event %q: %v", ev, err)
		}
		for _, ch := range c.Choices {
			text.WriteString(ch.Text)
			if ch.FinishReason != nil {
				finish = *ch.FinishReason
			}
		}
	}
	if text.String() != want || finish != "length" {
		t.Errorf("streamed %q (%q), want %q", text.String(), finish, want)
	}

	// A stop string ends the text before it.
	cut := strings.TrimSpace(want)
	if len(cut) > 6 {
		stop := cut[len(cut)/2 : len(cut)/2+3]
		r := e.do("POST", "/openai/v1/completions", key, map[string]any{"model": "gen", "prompt": prompt, "max_tokens": 12, "temperature": 0, "stop": stop})
		var sr struct {
			Choices []struct {
				Text         string `json:"text"`
				FinishReason string `json:"finish_reason"`
			} `json:"choices"`
		}
		json.Unmarshal(r.body, &sr)
		if r.status != 200 || len(sr.Choices) != 1 || sr.Choices[0].Text != want[:strings.Index(want, stop)] || sr.Choices[0].FinishReason != "stop" {
			t.Errorf("stop %q: %d %s, want %q", stop, r.status, r.body, want[:strings.Index(want, stop)])
		}
	}
	for _, bad := range []map[string]any{
		{"model": "gen", "prompt": prompt, "max_tokens": 100000},
		{"model": "gen", "prompt": prompt, "n": 2},
		{"model": "gen", "prompt": prompt, "temperature": 3},
		{"model": "embed", "prompt": prompt},
	} {
		if r := e.do("POST", "/openai/v1/completions", key, bad); r.status != 400 {
			t.Errorf("%v: %d %s, want 400", bad, r.status, r.body)
		}
	}
}

func TestTritonGenerate(t *testing.T) {
	e, key := textEnv(t)
	want := expectedCompletion(t, "Hello world", 8)
	r := e.do("POST", "/v2/models/gen/generate", key, map[string]any{"text_input": "Hello world", "parameters": map[string]any{"max_tokens": 8}})
	if r.status != 200 {
		t.Fatalf("generate: %d %s", r.status, r.body)
	}
	var g struct {
		ModelName  string `json:"model_name"`
		TextOutput string `json:"text_output"`
	}
	if err := json.Unmarshal(r.body, &g); err != nil || g.TextOutput != want || g.ModelName != "gen" {
		t.Fatalf("generate %s, want %q", r.body, want)
	}
	s := e.do("POST", "/v2/models/gen/generate_stream", key, map[string]any{"text_input": "Hello world", "max_tokens": 8})
	var text strings.Builder
	for _, ev := range sseData(t, s.body) {
		var c struct {
			TextOutput string `json:"text_output"`
		}
		if err := json.Unmarshal([]byte(ev), &c); err != nil {
			t.Fatalf("event %q: %v", ev, err)
		}
		text.WriteString(c.TextOutput)
	}
	if s.status != 200 || text.String() != want {
		t.Errorf("generate_stream: %d %q, want %q", s.status, text.String(), want)
	}
	if r := e.do("POST", "/v2/models/gen/generate", key, map[string]any{"max_tokens": 8}); r.status != 400 {
		t.Errorf("no text_input: %d", r.status)
	}
}
