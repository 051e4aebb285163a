// Package plugins holds example aiaas plugins, each a Go main package
// built as a WASI reactor with the guest SDK (sdk/plugin):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o build/plugins/png-to-tensor.wasm ./examples/plugins/png-to-tensor
//
// # Overview
//
//   - png-to-tensor: a PNG or JPEG of a digit, any size → the MNIST input
//     tensor "input", F32 [1,784].
//   - top-k: class scores [1,K] or [K] → JSON with the k best labels.
//   - identity: raw little-endian f32 bytes → tensor "input" [1,n]; and
//     tensors → the same tensors; used by the host's overhead benchmarks.
//   - wordpiece: text → input_ids, attention_mask, token_type_ids, I64
//     [batch, seq], with all-MiniLM-L6-v2's vocabulary (sdk/plugin/tokenizer).
//   - bpe: GPT-2's tokenizer both ways: text → input_ids, attention_mask;
//     ids → [{"generated_text": …}].
//   - pool: token vectors [batch, seq, hidden] and the attention mask →
//     mean-pooled, L2-normalised sentence embeddings.
//
// wordpiece and bpe embed vocabularies that scripts/fetch-vocab.sh
// fetches and compiles into their vocab/ folders (scripts/build-plugins.sh
// runs it).
//
// The plugin logic is ordinary Go, so each package's tests run it natively
// too; package plugins runs the built modules in the sandbox and compares,
// and so do the tokenizer plugins' own tests (internal/plugintest).
package plugins
