// Command bpe is GPT-2's tokenizer as a plugin (OpenAI's encoder.json and
// vocab.bpe, embedded), both ways, for a text-generation endpoint:
//
// Preprocess: a plain UTF-8 body, or JSON {"inputs": "text"} /
// {"input": "text"}, becomes input_ids and attention_mask, I64 [1, n]
// (byte-level BPE: every text has ids, no [UNK]). Parameters, in the JSON's
// "parameters" or the content type ("text/plain; max_length=512"):
//
//   - max_length: 1–8192, default 1024 (GPT-2's context);
//   - truncation_side: right (default, as Hugging Face) or left (keep the
//     end of a long prompt);
//   - dtype: I64 (default) or F32.
//
// Postprocess: token ids back to text, as JSON in the shape of Hugging
// Face's text-generation answers, one object per row:
//
//	[{"generated_text": "…"}]
//
// The ids are the tensor named by the "output" parameter, else the only
// tensor, else the first of output_ids, sequences, generated_ids,
// input_ids; any integer dtype (or F32 holding integers), shape [n] or
// [batch, n]. Parameter skip_special_tokens (default true) drops
// <|endoftext|>. A row that ends inside a character gets U+FFFD for it.
package main

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aiaas/aiaas/examples/plugins/internal/textreq"
	"github.com/aiaas/aiaas/sdk/plugin"
	"github.com/aiaas/aiaas/sdk/plugin/tokenizer"
)

//go:embed vocab
var vocab embed.FS

var (
	tok     *tokenizer.Tokenizer
	eos     int64 = -1
	loadErr error
)

func init() {
	// The binary form that scripts/fetch-vocab.sh compiles from
	// encoder.json and vocab.bpe: parsing those in the sandbox would take
	// about a second per instance, this a few milliseconds.
	bin, err := vocab.ReadFile("vocab/gpt2.bin")
	if err != nil {
		loadErr = errors.New("bpe: built without vocab/gpt2.bin: run scripts/fetch-vocab.sh, then build again")
	} else if tok, loadErr = tokenizer.LoadBinary(bin); loadErr == nil {
		if id, ok := tok.TokenToID("<|endoftext|>"); ok {
			eos = id
		}
	}
	plugin.HandlePreprocess(func(req plugin.Request) ([]plugin.Tensor, error) {
		return Encode(req.ContentType, req.Body)
	})
	plugin.HandlePostprocess(func(in plugin.Input) (plugin.Response, error) {
		body, err := Decode(in.Tensors, in.Params)
		if err != nil {
			return plugin.Response{}, err
		}
		return plugin.Response{ContentType: "application/json", Body: body}, nil
	})
}

func main() {}

const (
	defaultMaxLength = 1024
	maxMaxLength     = 8192
	maxIDs           = 1 << 20
)

// Encode turns a request into input_ids and attention_mask.
func Encode(contentType string, body []byte) ([]plugin.Tensor, error) {
	if loadErr != nil {
		return nil, loadErr
	}
	r, err := textreq.Parse(contentType, body)
	if err != nil {
		return nil, fmt.Errorf("bpe: %v", err)
	}
	if len(r.Texts) != 1 || r.Pairs != nil {
		return nil, fmt.Errorf("bpe: one text per request (got %d)", len(r.Texts))
	}
	maxLen, err := r.Int("max_length", defaultMaxLength, 1, maxMaxLength)
	if err != nil {
		return nil, fmt.Errorf("bpe: %v", err)
	}
	side, err := r.Choice("truncation_side", "right", "left")
	if err != nil {
		return nil, fmt.Errorf("bpe: %v", err)
	}
	dtype, err := r.Choice("dtype", "I64", "F32")
	if err != nil {
		return nil, fmt.Errorf("bpe: %v", err)
	}
	e, err := tok.Encode(r.Texts[0], &tokenizer.EncodeOptions{MaxLength: maxLen, TruncateLeft: side == "left"})
	if err != nil {
		return nil, fmt.Errorf("bpe: %v", err)
	}
	shape := []int{1, e.Len()}
	if dtype == "F32" {
		ids, mask := make([]float32, e.Len()), make([]float32, e.Len())
		for i := range ids {
			ids[i], mask[i] = float32(e.IDs[i]), 1
		}
		return []plugin.Tensor{plugin.F32("input_ids", shape, ids), plugin.F32("attention_mask", shape, mask)}, nil
	}
	return []plugin.Tensor{plugin.I64("input_ids", shape, e.IDs), plugin.I64("attention_mask", shape, e.AttentionMask)}, nil
}

// Decode renders the ids of the model's output as JSON text.
func Decode(ts []plugin.Tensor, params map[string]string) ([]byte, error) {
	if loadErr != nil {
		return nil, loadErr
	}
	t, err := pick(ts, params["output"])
	if err != nil {
		return nil, err
	}
	rows, n := 1, 0
	switch len(t.Shape) {
	case 1:
		n = t.Shape[0]
	case 2:
		rows, n = t.Shape[0], t.Shape[1]
	default:
		return nil, fmt.Errorf("bpe: tensor %q has shape %v; want [n] or [batch, n]", t.Name, t.Shape)
	}
	if t.NumElements() > maxIDs {
		return nil, fmt.Errorf("bpe: %d ids; at most %d", t.NumElements(), maxIDs)
	}
	ids, err := plugin.Int64s(t, nil)
	if err != nil {
		return nil, fmt.Errorf("bpe: %v", err)
	}
	skip := params["skip_special_tokens"] != "false"
	type row struct {
		Text string `json:"generated_text"`
	}
	out := make([]row, rows)
	for i := range out {
		r := ids[i*n : (i+1)*n]
		if skip {
			kept := make([]int64, 0, len(r))
			for _, id := range r {
				if id != eos {
					kept = append(kept, id)
				}
			}
			r = kept
		}
		out[i].Text = strings.ToValidUTF8(tok.Decode(r, skip), "\uFFFD")
	}
	return json.Marshal(out)
}

func pick(ts []plugin.Tensor, name string) (plugin.Tensor, error) {
	if name == "" && len(ts) == 1 {
		return ts[0], nil
	}
	names := []string{name}
	if name == "" {
		names = []string{"output_ids", "sequences", "generated_ids", "input_ids"}
	}
	for _, n := range names {
		for _, t := range ts {
			if t.Name == n {
				return t, nil
			}
		}
	}
	return plugin.Tensor{}, fmt.Errorf("bpe: no tensor named %s among %d", strings.Join(names, " or "), len(ts))
}
