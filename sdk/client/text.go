package client

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// Embeddings is the answer of Embed: one vector per text, in order.
type Embeddings struct {
	Model string `json:"model"`
	Data  []struct {
		Index     int       `json:"index"`
		Embedding []float32 `json:"embedding"`
	} `json:"data"`
	Usage struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

// Embed returns the embeddings of texts from an embedding endpoint (a
// tokenizer, an encoder and a pooling plugin): POST /openai/v1/embeddings.
// Goroutine-safe.
func (c *Client) Embed(ctx context.Context, endpoint string, texts []string) (*Embeddings, error) {
	if endpoint == "" || len(texts) == 0 {
		return nil, fmt.Errorf("%w: embed needs an endpoint and at least one text", ErrInvalidArgument)
	}
	b, err := jsonBody(map[string]any{"model": endpoint, "input": texts})
	if err != nil {
		return nil, err
	}
	var v Embeddings
	if err := c.doJSON(ctx, &call{method: http.MethodPost, path: "/openai/v1/embeddings", body: b, safe: true}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// GenerateRequest is a text generation request. Nil fields take the
// endpoint's and the server's defaults (greedy decoding, 16 tokens).
type GenerateRequest struct {
	TextInput   string   `json:"text_input"`
	MaxTokens   *int     `json:"max_tokens,omitempty"`
	Temperature *float64 `json:"temperature,omitempty"`
	TopK        *int     `json:"top_k,omitempty"`
	TopP        *float64 `json:"top_p,omitempty"`
	Seed        *int64   `json:"seed,omitempty"`
	Stop        []string `json:"stop,omitempty"`
}

// Generation is the answer of Generate.
type Generation struct {
	ModelName        string         `json:"model_name"`
	ModelVersion     string         `json:"model_version"`
	TextOutput       string         `json:"text_output"`
	FinishReason     string         `json:"finish_reason"`
	PromptTokens     int            `json:"prompt_tokens"`
	CompletionTokens int            `json:"completion_tokens"`
	Parameters       map[string]any `json:"parameters"`
}

// Generate runs a generation endpoint (a tokenizer, a decoder and a
// detokenizer): POST /v2/models/{endpoint}/generate, Triton's generate
// extension. Not retried (it is not cheap). Goroutine-safe.
func (c *Client) Generate(ctx context.Context, endpoint string, req *GenerateRequest) (*Generation, error) {
	ep, err := seg("endpoint", endpoint)
	if err != nil {
		return nil, err
	}
	if req == nil {
		return nil, fmt.Errorf("%w: generate needs a request", ErrInvalidArgument)
	}
	b, err := jsonBody(req)
	if err != nil {
		return nil, err
	}
	var v Generation
	if err := c.doJSON(ctx, &call{method: http.MethodPost, path: "/v2/models/" + ep + "/generate", body: b}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// GenerateStream is Generate through /generate_stream: onText gets each
// piece of text as the server sends it (server-sent events), and the
// finish reason ("stop" or "length") is returned at the end. An error
// from onText ends the stream (the server stops generating when the
// connection closes). Goroutine-safe.
func (c *Client) GenerateStream(ctx context.Context, endpoint string, req *GenerateRequest, onText func(string) error) (finish string, err error) {
	ep, err := seg("endpoint", endpoint)
	if err != nil {
		return "", err
	}
	if req == nil || onText == nil {
		return "", fmt.Errorf("%w: generate needs a request and a callback", ErrInvalidArgument)
	}
	b, err := jsonBody(req)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	resp, err := c.do(ctx, &call{method: http.MethodPost, path: "/v2/models/" + ep + "/generate_stream", body: b,
		header: http.Header{"Accept": {"text/event-stream"}}})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev struct {
			TextOutput   string `json:"text_output"`
			FinishReason string `json:"finish_reason"`
			Error        string `json:"error"`
		}
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			return "", fmt.Errorf("generate_stream: bad event %.80q: %w", data, err)
		}
		if ev.Error != "" {
			return "", &APIError{Status: http.StatusInternalServerError, Message: ev.Error, RequestID: resp.Header.Get("X-Request-Id")}
		}
		if ev.TextOutput != "" {
			if err := onText(ev.TextOutput); err != nil {
				return "", err
			}
		}
		if ev.FinishReason != "" {
			finish = ev.FinishReason
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("generate_stream: %w", err)
	}
	if finish == "" {
		return "", fmt.Errorf("generate_stream: the stream ended without a finish reason")
	}
	return finish, nil
}
