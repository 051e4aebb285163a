package platform_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
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
