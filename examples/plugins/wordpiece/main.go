// Command wordpiece is a preprocess plugin for BERT-style encoders
// (sentence-transformers' all-MiniLM-L6-v2, whose tokenizer.json it
// embeds): text in, the model's three inputs out, as I64 [batch, seq]:
//
//	input_ids       the WordPiece ids, [CLS] … [SEP] (… [SEP] for a pair)
//	attention_mask  1 for tokens, 0 for padding
//	token_type_ids  0 for the text, 1 for its pair
//
// The body is plain UTF-8 text (one sequence), or JSON:
// {"inputs": "text"}, {"input": "text"}, {"inputs": ["a", "b", …]} (a
// batch of up to 256), optionally with "text_pair" (a string or an array
// as long as inputs) and "parameters". Parameters, in "parameters" or as
// content-type parameters ("text/plain; max_length=64"):
//
//   - max_length: 1–8192, default 128 (the model's): longer texts are
//     truncated (longest first for pairs);
//   - truncation: true (default) or false — then a text longer than
//     max_length is an error instead;
//   - padding: longest (default: the batch's longest) or max_length;
//   - add_special_tokens: true (default) or false;
//   - dtype: I64 (default) or F32 (ids as floats, for hosts that take only
//     F32 from plugins).
package main

import (
	"embed"
	"errors"
	"fmt"

	"github.com/aiaas/aiaas/examples/plugins/internal/textreq"
	"github.com/aiaas/aiaas/sdk/plugin"
	"github.com/aiaas/aiaas/sdk/plugin/tokenizer"
)

//go:embed vocab
var vocab embed.FS

var (
	tok     *tokenizer.Tokenizer
	loadErr error
)

func init() {
	// Loaded once per instance, when the host starts it: the binary form
	// that scripts/fetch-vocab.sh compiles from tokenizer.json (a few
	// copies; parsing the JSON here would take hundreds of milliseconds).
	bin, err := vocab.ReadFile("vocab/tokenizer.bin")
	if err != nil {
		loadErr = errors.New("wordpiece: built without vocab/tokenizer.bin: run scripts/fetch-vocab.sh, then build again")
	} else if tok, err = tokenizer.LoadBinary(bin); err != nil {
		loadErr = fmt.Errorf("wordpiece: %v", err)
	}
	plugin.HandlePreprocess(func(req plugin.Request) ([]plugin.Tensor, error) {
		return Prepare(req.ContentType, req.Body)
	})
}

func main() {}

const (
	defaultMaxLength = 128
	maxMaxLength     = 8192
)

// Prepare turns a request into the model's input tensors.
func Prepare(contentType string, body []byte) ([]plugin.Tensor, error) {
	if loadErr != nil {
		return nil, loadErr
	}
	r, err := textreq.Parse(contentType, body)
	if err != nil {
		return nil, fmt.Errorf("wordpiece: %v", err)
	}
	def := defaultMaxLength
	if tok.MaxLength > 0 {
		def = min(tok.MaxLength, maxMaxLength)
	}
	maxLen, err := r.Int("max_length", def, 1, maxMaxLength)
	if err != nil {
		return nil, fmt.Errorf("wordpiece: %v", err)
	}
	truncation, err := r.Bool("truncation", true)
	if err != nil {
		return nil, fmt.Errorf("wordpiece: %v", err)
	}
	padding, err := r.Choice("padding", "longest", "max_length")
	if err != nil {
		return nil, fmt.Errorf("wordpiece: %v", err)
	}
	special, err := r.Bool("add_special_tokens", true)
	if err != nil {
		return nil, fmt.Errorf("wordpiece: %v", err)
	}
	dtype, err := r.Choice("dtype", "I64", "F32")
	if err != nil {
		return nil, fmt.Errorf("wordpiece: %v", err)
	}
	opts := &tokenizer.EncodeOptions{NoSpecialTokens: !special, Padding: tokenizer.PadLongest}
	if truncation {
		opts.MaxLength = maxLen
	}
	if padding == "max_length" {
		opts.Padding, opts.PadLength = tokenizer.PadFixed, maxLen
	}
	var encs []tokenizer.Encoding
	if r.Pairs != nil {
		encs, err = tok.EncodePairBatch(r.Texts, r.Pairs, opts)
	} else {
		encs, err = tok.EncodeBatch(r.Texts, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("wordpiece: %v", err)
	}
	seq := encs[0].Len()
	if seq > maxLen {
		return nil, fmt.Errorf("wordpiece: a text has %d tokens, more than max_length %d (truncation is off)", seq, maxLen)
	}
	n := len(encs) * seq
	ids, mask, types := make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n)
	for _, e := range encs {
		ids, mask, types = append(ids, e.IDs...), append(mask, e.AttentionMask...), append(types, e.TypeIDs...)
	}
	shape := []int{len(encs), seq}
	if dtype == "F32" {
		return []plugin.Tensor{plugin.F32("input_ids", shape, floats(ids)),
			plugin.F32("attention_mask", shape, floats(mask)), plugin.F32("token_type_ids", shape, floats(types))}, nil
	}
	return []plugin.Tensor{plugin.I64("input_ids", shape, ids),
		plugin.I64("attention_mask", shape, mask), plugin.I64("token_type_ids", shape, types)}, nil
}

func floats(v []int64) []float32 {
	f := make([]float32, len(v))
	for i, x := range v {
		f[i] = float32(x) // ids < 2^24 are exact
	}
	return f
}
