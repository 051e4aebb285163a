package platform

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aiaas/aiaas/internal/lowprio"
	"github.com/aiaas/aiaas/internal/safetensors"
	"github.com/aiaas/aiaas/nn/generate"
	"github.com/aiaas/aiaas/platform/internal/serving"
	"github.com/aiaas/aiaas/platform/internal/share"
	"github.com/aiaas/aiaas/platform/tracing"
)

// Text routes: sentence embeddings and text generation, each through an
// endpoint whose preprocess plugin tokenizes (wordpiece, bpe), whose model
// is a graph (an encoder, or a decoder with a key/value cache), and whose
// postprocess plugin pools (pool) or detokenizes (bpe). The routes:
//
//	POST /openai/v1/embeddings          OpenAI's shapes; model = endpoint
//	POST /openai/v1/completions         OpenAI's shapes; stream → SSE … [DONE]
//	POST /v2/models/{model}/generate    Triton's generate extension; model = endpoint
//	POST /v2/models/{model}/generate_stream

// textEndpoint is an endpoint made ready for text: its record, its model
// and its plugins.
type textEndpoint struct {
	ep        *Endpoint
	l         *lineage
	pre, post *PluginRecord
}

func (s *Server) textEndpoint(ctx context.Context, tenant, name, sticky string, t *serving.Timings) (*textEndpoint, error) {
	if name == "" {
		return nil, httpErr(http.StatusBadRequest, "\"model\" must name an endpoint")
	}
	if err := checkName("endpoint", name); err != nil {
		return nil, err
	}
	ep, err := s.endpoint(ctx, tenant, name)
	if err != nil {
		return nil, err
	}
	if ep.Preprocess == "" || ep.Postprocess == "" {
		return nil, httpErr(http.StatusBadRequest, "endpoint %q needs a tokenizer preprocess plugin and a postprocess plugin for text (it has preprocess %q, postprocess %q)", name, ep.Preprocess, ep.Postprocess)
	}
	te := &textEndpoint{ep: ep}
	if te.pre, err = s.pluginRecord(ctx, tenant, ep.Preprocess); err != nil {
		return nil, err
	}
	if te.post, err = s.pluginRecord(ctx, tenant, ep.Postprocess); err != nil {
		return nil, err
	}
	if te.l, err = s.load(ctx, tenant, ep.Model, ep.Version, sticky, t); err != nil {
		return nil, err
	}
	if te.l.loaded.graph == nil {
		return nil, httpErr(http.StatusBadRequest, "endpoint %q serves %s, a dense model; text needs a graph model (an ONNX transformer)", name, ep.Model)
	}
	te.l.PreSHA256, te.l.PostSHA256 = te.pre.SHA256, te.post.SHA256
	return te, nil
}

// tokenize runs the preprocess plugin on texts (as {"inputs": [...]}).
func (s *Server) tokenize(ctx context.Context, tenant string, te *textEndpoint, texts []string, params map[string]any, t *serving.Timings) ([]safetensors.Tensor, error) {
	body, _ := json.Marshal(map[string]any{"inputs": texts, "parameters": params})
	start := time.Now()
	pctx, span := tracing.Start(ctx, s.tracer, "plugin.preprocess")
	ts, err := s.plugins.Preprocess(pctx, tenant, s.module(tenant, te.pre), "application/json", body)
	tracing.End(span, err)
	d := time.Since(start)
	t.Pre += d
	s.observePlugin(tenant, "preprocess", d, err)
	return ts, err
}

// postprocess runs the postprocess plugin on tensors with parameters.
func (s *Server) postprocess(ctx context.Context, tenant string, te *textEndpoint, ts []safetensors.Tensor, params map[string]string, t *serving.Timings) ([]byte, error) {
	start := time.Now()
	pctx, span := tracing.Start(ctx, s.tracer, "plugin.postprocess")
	md := map[string]string{"model": te.l.Model, "model_version": strconv.Itoa(te.l.Version)}
	for k, v := range params {
		md[k] = v
	}
	body, _, err := s.plugins.Postprocess(pctx, tenant, s.module(tenant, te.post), &safetensors.File{Metadata: md, Tensors: ts})
	tracing.End(span, err)
	d := time.Since(start)
	t.Post += d
	s.observePlugin(tenant, "postprocess", d, err)
	return body, err
}

func tensorInt64s(ts []safetensors.Tensor, name string) ([]int64, []int, bool) {
	for i := range ts {
		if ts[i].Name != name {
			continue
		}
		switch ts[i].DType {
		case safetensors.DTypeI64:
			v, err := int64sOf(&ts[i])
			return v, ts[i].Shape, err == nil
		case safetensors.DTypeF32:
			f, err := ts[i].Float32s(nil)
			if err != nil {
				return nil, nil, false
			}
			v := make([]int64, len(f))
			for j, x := range f {
				v[j] = int64(x)
			}
			return v, ts[i].Shape, true
		}
	}
	return nil, nil, false
}

// --- embeddings -------------------------------------------------------------

// maxEmbeddingInputs bounds the texts of one embeddings request.
const maxEmbeddingInputs = 256

type embeddingsRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format"`
	Dimensions     *int            `json:"dimensions"`
	User           string          `json:"user"`
}

// texts reads OpenAI's input: a string or an array of strings. (Arrays
// of token ids are refused: the tokenizer is the endpoint's plugin.)
func inputTexts(raw json.RawMessage) ([]string, error) {
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, httpErr(http.StatusBadRequest, "\"input\" must be a string or an array of strings (token arrays are not accepted: the endpoint's plugin tokenizes)")
	}
	if len(many) == 0 {
		return nil, httpErr(http.StatusBadRequest, "\"input\" is empty")
	}
	if len(many) > maxEmbeddingInputs {
		return nil, httpErr(http.StatusBadRequest, "\"input\" has %d texts, limit %d", len(many), maxEmbeddingInputs)
	}
	return many, nil
}

func (s *Server) handleEmbeddings(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	var req embeddingsRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	texts, err := inputTexts(req.Input)
	if err != nil {
		return err
	}
	switch req.EncodingFormat {
	case "", "float", "base64":
	default:
		return httpErr(http.StatusBadRequest, "encoding_format must be \"float\" or \"base64\"")
	}
	var t serving.Timings
	te, err := s.textEndpoint(r.Context(), p.Tenant, req.Model, requestID(r.Context()), &t)
	if err != nil {
		return err
	}
	setAuditObject(r, "endpoints/"+te.ep.Name)
	toks, err := s.tokenize(r.Context(), p.Tenant, te, texts, nil, &t)
	if err != nil {
		return err
	}
	in, err := pluginGraphInputs(te.l.loaded, toks)
	if err != nil {
		return err
	}
	out, err := s.runGraph(r.Context(), p.Tenant, te.l, in, &t)
	if err != nil {
		return err
	}
	body, err := s.postprocess(r.Context(), p.Tenant, te, withInputs(graphTensors(te.l.loaded, out), toks, te.ep.ForwardInputs), map[string]string{"format": "safetensors"}, &t)
	if err != nil {
		return err
	}
	emb, dim, err := embeddingsOf(body, len(texts))
	if err != nil {
		return wrapStatus(http.StatusBadGateway, fmt.Errorf("the postprocess plugin %q did not return embeddings: %w", te.ep.Postprocess, err))
	}
	if req.Dimensions != nil && *req.Dimensions != dim {
		return httpErr(http.StatusBadRequest, "dimensions %d: endpoint %q embeds in %d", *req.Dimensions, te.ep.Name, dim)
	}
	tokens := 0
	if mask, _, ok := tensorInt64s(toks, "attention_mask"); ok {
		for _, m := range mask {
			if m != 0 {
				tokens++
			}
		}
	} else if ids, _, ok := tensorInt64s(toks, "input_ids"); ok {
		tokens = len(ids)
	}
	data := make([]map[string]any, len(texts))
	for i := range texts {
		row := emb[i*dim : (i+1)*dim]
		d := map[string]any{"object": "embedding", "index": i}
		if req.EncodingFormat == "base64" {
			b := make([]byte, 4*dim)
			for j, v := range row {
				binary.LittleEndian.PutUint32(b[4*j:], math.Float32bits(v))
			}
			d["embedding"] = base64.StdEncoding.EncodeToString(b)
		} else {
			d["embedding"] = row
		}
		data[i] = d
	}
	w.Header().Set("Server-Timing", t.Header())
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "list", "data": data, "model": te.ep.Name,
		"usage": map[string]int{"prompt_tokens": tokens, "total_tokens": tokens},
	})
	return nil
}

// embeddingsOf reads the pool plugin's safetensors answer: "embeddings"
// F32 [batch, dim].
func embeddingsOf(body []byte, batch int) ([]float32, int, error) {
	f, err := safetensors.Decode(body, nil)
	if err != nil {
		return nil, 0, err
	}
	for _, t := range f.Tensors {
		if t.Name != "embeddings" {
			continue
		}
		if len(t.Shape) != 2 || t.Shape[0] != batch || t.Shape[1] < 1 {
			return nil, 0, fmt.Errorf("embeddings of shape %v for %d texts", t.Shape, batch)
		}
		v, err := t.Float32s(nil)
		return v, t.Shape[1], err
	}
	return nil, 0, errors.New("no tensor named embeddings")
}

// --- generation ---------------------------------------------------------------

// genRequest is a generation request, from either API.
type genRequest struct {
	prompt      string
	maxTokens   int
	temperature float64
	topK        int
	topP        float64
	seed        uint64
	stop        []string
}

// decoder returns the loaded model's generator, made once.
func (lm *loadedModel) decoder() (*generate.Model, error) {
	lm.decOnce.Do(func() { lm.dec, lm.decErr = generate.New(lm.graph) })
	return lm.dec, lm.decErr
}

// genEvent is one piece of a generation: text to emit, or its end.
type genEvent struct {
	text   string
	finish string // "" until the end: "stop" or "length"
}

// generateText tokenizes the prompt, generates, and calls emit with each
// piece of text as it becomes whole (a byte-level BPE token may end inside
// a character: it is held back until the character is complete) and at
// the end with the finish reason. It returns the prompt's and the
// completion's token counts.
func (s *Server) generateText(ctx context.Context, tenant string, te *textEndpoint, g genRequest, t *serving.Timings, emit func(genEvent) error) (promptTokens, completionTokens int, err error) {
	dec, err := te.l.loaded.decoder()
	if err != nil {
		return 0, 0, wrapStatus(http.StatusBadRequest, fmt.Errorf("endpoint %q: %w", te.ep.Name, err))
	}
	toks, err := s.tokenize(ctx, tenant, te, []string{g.prompt}, nil, t)
	if err != nil {
		return 0, 0, err
	}
	ids, _, ok := tensorInt64s(toks, "input_ids")
	if !ok || len(ids) == 0 {
		return 0, 0, httpErr(http.StatusUnprocessableEntity, "the preprocess plugin %q returned no input_ids for the prompt", te.ep.Preprocess)
	}
	cfg := GenerationConfig{}
	if te.ep.Generation != nil {
		cfg = *te.ep.Generation
	}
	opt := &generate.Options{MaxTokens: g.maxTokens, MaxContext: cfg.MaxContext, Temperature: g.temperature,
		TopK: g.topK, TopP: g.topP, Seed: g.seed, EOS: cfg.EOS}
	var text strings.Builder
	var pending []int64
	idsT := safetensors.Tensor{Name: "output_ids", DType: safetensors.DTypeI64}
	params := map[string]string{"output": "output_ids"}
	stopped := false
	flush := func(final bool) error {
		if len(pending) == 0 {
			return nil
		}
		idsT.Shape = []int{len(pending)}
		idsT.Data = make([]byte, 8*len(pending))
		for i, id := range pending {
			binary.LittleEndian.PutUint64(idsT.Data[8*i:], uint64(id))
		}
		body, err := s.postprocess(ctx, tenant, te, []safetensors.Tensor{idsT}, params, t)
		if err != nil {
			return err
		}
		piece, err := generatedText(body)
		if err != nil {
			return wrapStatus(http.StatusBadGateway, fmt.Errorf("the postprocess plugin %q: %w", te.ep.Postprocess, err))
		}
		if !final && strings.HasSuffix(piece, string(utf8.RuneError)) {
			return nil // a character split across tokens: wait for the rest
		}
		pending = pending[:0]
		before := text.Len()
		text.WriteString(piece)
		// A stop string ends the text where it begins; nothing of it is
		// emitted.
		all := text.String()
		for _, st := range g.stop {
			if i := strings.Index(all, st); st != "" && i >= 0 {
				if i > before {
					if err := emit(genEvent{text: all[before:i]}); err != nil {
						return err
					}
				}
				stopped = true
				return generate.ErrStop
			}
		}
		// Hold back a tail that may be the start of a stop string.
		safe := len(all)
		for _, st := range g.stop {
			for k := min(len(st)-1, len(all)-before); k > 0; k-- {
				if strings.HasSuffix(all, st[:k]) {
					safe = min(safe, len(all)-k)
					break
				}
			}
		}
		if safe > before {
			return emit(genEvent{text: all[before:safe]})
		}
		return nil
	}
	// A generation is a forward pass per token: long work, on a thread of
	// lower priority (internal/lowprio), as a long forward pass is.
	var res generate.Result
	lowprio.Do(func() {
		res, err = dec.Generate(ctx, ids, opt, func(tk generate.Token) error {
			pending = append(pending, tk.ID)
			return flush(false)
		})
	})
	if err != nil && !errors.Is(err, generate.ErrStop) {
		return len(ids), len(res.Tokens), err
	}
	if !stopped {
		if err := flush(true); err != nil && !errors.Is(err, generate.ErrStop) {
			return len(ids), len(res.Tokens), err
		}
	}
	finish := res.FinishReason
	if stopped {
		finish = generate.FinishStop
	}
	// Emit what was held back for a stop string that never came.
	if !stopped {
		all := text.String()
		if held := heldBack(all, g.stop); held != "" {
			if err := emit(genEvent{text: held}); err != nil {
				return len(ids), len(res.Tokens), err
			}
		}
	}
	return len(ids), len(res.Tokens), emit(genEvent{finish: finish})
}

// generateAll runs a generation to its end and returns the whole text
// and why it ended: the non-streaming form of both APIs.
func (s *Server) generateAll(ctx context.Context, tenant string, te *textEndpoint, g genRequest, t *serving.Timings) (text, finish string, promptTokens, completionTokens int, err error) {
	var b strings.Builder
	promptTokens, completionTokens, err = s.generateText(ctx, tenant, te, g, t, func(e genEvent) error {
		b.WriteString(e.text)
		if e.finish != "" {
			finish = e.finish
		}
		return nil
	})
	return b.String(), finish, promptTokens, completionTokens, err
}

// heldBack is the tail of text that flush kept back as a possible start of
// a stop string.
func heldBack(all string, stops []string) string {
	k := 0
	for _, st := range stops {
		for j := min(len(st)-1, len(all)); j > 0; j-- {
			if strings.HasSuffix(all, st[:j]) {
				k = max(k, j)
				break
			}
		}
	}
	return all[len(all)-k:]
}

// generatedText reads the bpe plugin's answer, [{"generated_text": …}].
func generatedText(body []byte) (string, error) {
	var rows []struct {
		Text *string `json:"generated_text"`
	}
	if err := json.Unmarshal(body, &rows); err != nil || len(rows) != 1 || rows[0].Text == nil {
		return "", fmt.Errorf("want [{\"generated_text\": …}], got %.80q", body)
	}
	return *rows[0].Text, nil
}

// genParams reads the sampling parameters both APIs share. OpenAI's
// defaults (temperature 1, top_p 1) apply; max_tokens defaults to the
// endpoint's, else 16, and is bounded by the server.
func (s *Server) genParams(te *textEndpoint, maxTokens *int, temperature, topP *float64, topK *int, seed *int64, stop []string) (genRequest, error) {
	g := genRequest{temperature: 1, topP: 1, maxTokens: generate.DefaultMaxTokens}
	if te.ep.Generation != nil && te.ep.Generation.MaxTokens > 0 {
		g.maxTokens = te.ep.Generation.MaxTokens
	}
	if maxTokens != nil {
		g.maxTokens = *maxTokens
	}
	if g.maxTokens < 1 || g.maxTokens > s.cfg.MaxGenerateTokens {
		return g, httpErr(http.StatusBadRequest, "max_tokens must be between 1 and %d (AIAAS_MAX_GENERATE_TOKENS)", s.cfg.MaxGenerateTokens)
	}
	if temperature != nil {
		g.temperature = *temperature
	}
	if !(g.temperature >= 0 && g.temperature <= 2) {
		return g, httpErr(http.StatusBadRequest, "temperature must be between 0 and 2")
	}
	if topP != nil {
		g.topP = *topP
	}
	if !(g.topP > 0 && g.topP <= 1) {
		return g, httpErr(http.StatusBadRequest, "top_p must be in (0, 1]")
	}
	if topK != nil {
		g.topK = *topK
		if g.topK < 0 {
			return g, httpErr(http.StatusBadRequest, "top_k must not be negative")
		}
	}
	if seed != nil {
		g.seed = uint64(*seed)
	}
	if len(stop) > 4 {
		return g, httpErr(http.StatusBadRequest, "at most 4 stop sequences")
	}
	for _, st := range stop {
		if len(st) == 0 || len(st) > 256 {
			return g, httpErr(http.StatusBadRequest, "stop sequences must have 1 to 256 bytes")
		}
	}
	g.stop = stop
	return g, nil
}

// stopList reads a stop parameter: a string or an array of strings.
func stopList(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, httpErr(http.StatusBadRequest, "\"stop\" must be a string or an array of strings")
	}
	return many, nil
}

// sse writes server-sent events, flushing each.
type sse struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	started bool
	mu      sync.Mutex
	// A flush that waits on a slow reader steps aside from the tenant's
	// share of the CPUs.
	share  *share.Gate
	tenant string
}

func (s *Server) newSSE(w http.ResponseWriter, r *http.Request) *sse {
	return &sse{w: w, rc: http.NewResponseController(w), share: s.share, tenant: infoOf(r.Context()).tenantOf()}
}

func (e *sse) start() {
	if e.started {
		return
	}
	e.started = true
	h := e.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	e.w.WriteHeader(http.StatusOK)
}

// data writes one "data:" event: v as JSON, or a raw string.
func (e *sse) data(v any) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.start()
	var b []byte
	switch x := v.(type) {
	case string:
		b = []byte(x)
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			return err
		}
	}
	if _, err := fmt.Fprintf(e.w, "data: %s\n\n", b); err != nil {
		return err
	}
	var err error
	e.share.Await(e.tenant, shareAwaitAfter, func() { err = e.rc.Flush() })
	return err
}

// --- OpenAI completions ---------------------------------------------------------

type completionsRequest struct {
	Model         string          `json:"model"`
	Prompt        json.RawMessage `json:"prompt"`
	MaxTokens     *int            `json:"max_tokens"`
	Temperature   *float64        `json:"temperature"`
	TopP          *float64        `json:"top_p"`
	TopK          *int            `json:"top_k"`
	N             *int            `json:"n"`
	Stream        bool            `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	Stop     json.RawMessage `json:"stop"`
	Seed     *int64          `json:"seed"`
	Echo     bool            `json:"echo"`
	Logprobs *int            `json:"logprobs"`
	BestOf   *int            `json:"best_of"`
	User     string          `json:"user"`
	Suffix   *string         `json:"suffix"`
}

func (s *Server) handleCompletions(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	var req completionsRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	prompts, err := inputTexts(req.Prompt)
	if err != nil {
		return httpErr(http.StatusBadRequest, "\"prompt\" must be a string (or an array of one)")
	}
	if len(prompts) != 1 {
		return httpErr(http.StatusBadRequest, "one prompt per request: %d given", len(prompts))
	}
	switch {
	case req.N != nil && *req.N != 1, req.BestOf != nil && *req.BestOf != 1:
		return httpErr(http.StatusBadRequest, "n and best_of must be 1")
	case req.Echo:
		return httpErr(http.StatusBadRequest, "echo is not supported")
	case req.Logprobs != nil:
		return httpErr(http.StatusBadRequest, "logprobs is not supported")
	case req.Suffix != nil:
		return httpErr(http.StatusBadRequest, "suffix is not supported")
	}
	stop, err := stopList(req.Stop)
	if err != nil {
		return err
	}
	var t serving.Timings
	te, err := s.textEndpoint(r.Context(), p.Tenant, req.Model, requestID(r.Context()), &t)
	if err != nil {
		return err
	}
	g, err := s.genParams(te, req.MaxTokens, req.Temperature, req.TopP, req.TopK, req.Seed, stop)
	if err != nil {
		return err
	}
	g.prompt = prompts[0]
	setAuditObject(r, "endpoints/"+te.ep.Name)
	id := "cmpl-" + requestID(r.Context())
	created := time.Now().Unix()
	chunk := func(text string, finish any) map[string]any {
		return map[string]any{"id": id, "object": "text_completion", "created": created, "model": te.ep.Name,
			"choices": []map[string]any{{"text": text, "index": 0, "logprobs": nil, "finish_reason": finish}}}
	}
	if req.Stream {
		out := s.newSSE(w, r)
		pt, ct, err := s.generateText(r.Context(), p.Tenant, te, g, &t, func(e genEvent) error {
			if e.finish != "" {
				return out.data(chunk("", e.finish))
			}
			return out.data(chunk(e.text, nil))
		})
		if err != nil {
			if !out.started {
				return err
			}
			s.log.Warn("completion stream ended by an error", "request_id", requestID(r.Context()), "err", err)
			return nil
		}
		if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
			c := map[string]any{"id": id, "object": "text_completion", "created": created, "model": te.ep.Name,
				"choices": []any{}, "usage": map[string]int{"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}}
			if err := out.data(c); err != nil {
				return nil
			}
		}
		_ = out.data("[DONE]")
		return nil
	}
	text, finish, pt, ct, err := s.generateAll(r.Context(), p.Tenant, te, g, &t)
	if err != nil {
		return err
	}
	resp := chunk(text, finish)
	resp["usage"] = map[string]int{"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}
	w.Header().Set("Server-Timing", t.Header())
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// --- Triton generate -------------------------------------------------------------

// tritonGenerate reads a generate request: text_input, and the sampling
// parameters at the top level or under "parameters" (the names TensorRT-LLM
// and vLLM backends use: max_tokens, temperature, top_k, top_p, seed, stop).
type tritonGenerate struct {
	TextInput  *string         `json:"text_input"`
	MaxTokens  *int            `json:"max_tokens"`
	Temp       *float64        `json:"temperature"`
	TopK       *int            `json:"top_k"`
	TopP       *float64        `json:"top_p"`
	Seed       *int64          `json:"seed"`
	Stop       json.RawMessage `json:"stop"`
	StopWords  json.RawMessage `json:"stop_words"`
	Parameters json.RawMessage `json:"parameters"`
}

func (s *Server) handleGenerate(w http.ResponseWriter, r *http.Request) error {
	return s.tritonGenerate(w, r, false)
}

func (s *Server) handleGenerateStream(w http.ResponseWriter, r *http.Request) error {
	return s.tritonGenerate(w, r, true)
}

func (s *Server) tritonGenerate(w http.ResponseWriter, r *http.Request, stream bool) error {
	p := principalOf(r.Context())
	var req tritonGenerate
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if len(req.Parameters) > 0 && string(req.Parameters) != "null" {
		// Parameters fill in what the top level did not give.
		var inner tritonGenerate
		if err := json.Unmarshal(req.Parameters, &inner); err != nil {
			return httpErr(http.StatusBadRequest, "\"parameters\" must be an object: %v", err)
		}
		fill := func(dst **int, src *int) {
			if *dst == nil {
				*dst = src
			}
		}
		fill(&req.MaxTokens, inner.MaxTokens)
		fill(&req.TopK, inner.TopK)
		if req.Temp == nil {
			req.Temp = inner.Temp
		}
		if req.TopP == nil {
			req.TopP = inner.TopP
		}
		if req.Seed == nil {
			req.Seed = inner.Seed
		}
		if len(req.Stop) == 0 {
			req.Stop = inner.Stop
		}
		if len(req.StopWords) == 0 {
			req.StopWords = inner.StopWords
		}
	}
	if req.TextInput == nil {
		return httpErr(http.StatusBadRequest, "missing \"text_input\"")
	}
	stop, err := stopList(req.Stop)
	if err != nil {
		return err
	}
	if more, err := stopList(req.StopWords); err != nil {
		return err
	} else {
		stop = append(stop, more...)
	}
	// Greedy unless asked: Triton's backends default to it.
	if req.Temp == nil {
		zero := 0.0
		req.Temp = &zero
	}
	var t serving.Timings
	name := r.PathValue("model")
	te, err := s.textEndpoint(r.Context(), p.Tenant, name, requestID(r.Context()), &t)
	if err != nil {
		return err
	}
	g, err := s.genParams(te, req.MaxTokens, req.Temp, req.TopP, req.TopK, req.Seed, stop)
	if err != nil {
		return err
	}
	g.prompt = *req.TextInput
	setAuditObject(r, "endpoints/"+te.ep.Name)
	version := strconv.Itoa(te.l.Version)
	if stream {
		out := s.newSSE(w, r)
		_, _, err := s.generateText(r.Context(), p.Tenant, te, g, &t, func(e genEvent) error {
			ev := map[string]any{"model_name": name, "model_version": version, "text_output": e.text}
			if e.finish != "" {
				ev["finish_reason"] = e.finish
			}
			return out.data(ev)
		})
		if err != nil && !out.started {
			return err
		}
		if err != nil {
			// An error after the stream began: one last event says so.
			_ = out.data(map[string]any{"error": err.Error()})
		}
		return nil
	}
	text, finish, pt, ct, err := s.generateAll(r.Context(), p.Tenant, te, g, &t)
	if err != nil {
		return err
	}
	w.Header().Set("Server-Timing", t.Header())
	writeJSON(w, http.StatusOK, map[string]any{"model_name": name, "model_version": version, "text_output": text,
		"finish_reason": finish, "prompt_tokens": pt, "completion_tokens": ct, "parameters": te.l.parameters()})
	return nil
}
