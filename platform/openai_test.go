package platform_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/ssestream"

	"github.com/aiaas/aiaas/internal/lowprio"
	"github.com/aiaas/aiaas/sdk/client"
)

// TestOfficialOpenAIClient runs the embeddings and completions routes
// with OpenAI's own Go client, pointed at base_url …/openai/v1.
func TestOfficialOpenAIClient(t *testing.T) {
	e, key := textEnv(t)
	client := openai.NewClient(option.WithBaseURL(e.ts.URL+"/openai/v1/"), option.WithAPIKey(key), option.WithMaxRetries(0))
	ctx := context.Background()

	emb, err := client.Embeddings.New(ctx, openai.EmbeddingNewParams{
		Model: "embed",
		Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"first text", "the second, longer text"}},
	})
	if err != nil {
		t.Fatalf("embeddings: %v", err)
	}
	if len(emb.Data) != 2 || len(emb.Data[0].Embedding) != 8 || emb.Data[1].Index != 1 || emb.Usage.PromptTokens == 0 {
		t.Fatalf("embeddings %+v", emb)
	}

	prompt := "Once upon a time"
	want := expectedCompletion(t, prompt, 10)
	params := openai.CompletionNewParams{
		Model:       "gen",
		Prompt:      openai.CompletionNewParamsPromptUnion{OfString: openai.String(prompt)},
		MaxTokens:   openai.Int(10),
		Temperature: openai.Float(0),
	}
	comp, err := client.Completions.New(ctx, params)
	if err != nil {
		t.Fatalf("completions: %v", err)
	}
	if len(comp.Choices) != 1 || comp.Choices[0].Text != want || comp.Choices[0].FinishReason != openai.CompletionChoiceFinishReasonLength || comp.Usage.CompletionTokens != 10 {
		t.Fatalf("completion %+v, want %q", comp, want)
	}

	stream := client.Completions.NewStreaming(ctx, params)
	var text strings.Builder
	chunks := 0
	for stream.Next() {
		c := stream.Current()
		chunks++
		for _, ch := range c.Choices {
			text.WriteString(ch.Text)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	if text.String() != want || chunks < 2 {
		t.Errorf("streamed %q in %d chunks, want %q", text.String(), chunks, want)
	}

	// Errors come back as the client's *openai.Error with our message.
	_, err = client.Completions.New(ctx, openai.CompletionNewParams{Model: "missing", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("x")}})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || !strings.Contains(apiErr.Message, "missing") {
		t.Errorf("unknown endpoint: %v", err)
	}
}

// TestGenerateStreamSSE reads Triton's generate_stream with an SSE decoder
// that is not ours (the OpenAI Go client's), over a real HTTP response as
// it streams.
func TestGenerateStreamSSE(t *testing.T) {
	e, key := textEnv(t)
	want := expectedCompletion(t, "Hello world", 8)
	req, err := http.NewRequest("POST", e.ts.URL+"/v2/models/gen/generate_stream", strings.NewReader(`{"text_input":"Hello world","parameters":{"max_tokens":8}}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("generate_stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	dec := ssestream.NewDecoder(resp)
	var text strings.Builder
	events, finish := 0, ""
	for dec.Next() {
		var c struct {
			ModelName    string `json:"model_name"`
			TextOutput   string `json:"text_output"`
			FinishReason string `json:"finish_reason"`
		}
		if err := json.Unmarshal(dec.Event().Data, &c); err != nil {
			t.Fatalf("event %q: %v", dec.Event().Data, err)
		}
		if c.ModelName != "gen" {
			t.Errorf("event for model %q", c.ModelName)
		}
		events++
		text.WriteString(c.TextOutput)
		finish = c.FinishReason
	}
	if err := dec.Err(); err != nil {
		t.Fatal(err)
	}
	if text.String() != want || events < 2 || finish != "length" {
		t.Errorf("streamed %q in %d events ending %q, want %q ending \"length\"", text.String(), events, finish, want)
	}
}

// TestGoClientText: the Go client's Embed, Generate and GenerateStream
// against the server.
func TestGoClientText(t *testing.T) {
	e, key := textEnv(t)
	c, err := client.New(e.ts.URL, &client.Options{APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	emb, err := c.Embed(ctx, "embed", []string{"a b c", "d"})
	if err != nil || len(emb.Data) != 2 || len(emb.Data[1].Embedding) != 8 {
		t.Fatalf("Embed: %+v %v", emb, err)
	}
	want := expectedCompletion(t, "Hello", 6)
	n := 6
	handed := lowprio.Handed()
	g, err := c.Generate(ctx, "gen", &client.GenerateRequest{TextInput: "Hello", MaxTokens: &n})
	if err != nil || g.TextOutput != want || g.FinishReason != "length" || g.CompletionTokens != 6 {
		t.Fatalf("Generate: %+v %v, want %q", g, err, want)
	}
	if lowprio.Handed() == handed {
		t.Error("the generation ran in place, not on a thread of lower priority")
	}
	var text strings.Builder
	finish, err := c.GenerateStream(ctx, "gen", &client.GenerateRequest{TextInput: "Hello", MaxTokens: &n}, func(s string) error {
		text.WriteString(s)
		return nil
	})
	if err != nil || text.String() != want || finish != "length" {
		t.Fatalf("GenerateStream: %q %q %v, want %q", text.String(), finish, err, want)
	}
	if _, err := c.Generate(ctx, "nope", &client.GenerateRequest{TextInput: "x"}); !client.IsNotFound(err) {
		t.Errorf("unknown endpoint: %v", err)
	}
}
