// Package tokenizer loads Hugging Face tokenizer.json files and OpenAI's
// GPT-2 encoder files, and encodes text into token ids (and back) exactly
// as the reference implementations do, so that a plugin can feed a
// transformer the ids it was trained on.
//
// Two models are supported: WordPiece (BERT, sentence-transformers such as
// all-MiniLM-L6-v2) with BertNormalizer — clean-up of control characters,
// spaces around CJK ideographs, accent stripping by canonical
// decomposition (NFD tables generated from golang.org/x/text by
// gen_tables.go, committed as unicode_tables.go) and lowercasing — and
// byte-level BPE (GPT-2, RoBERTa), whose every input byte has a token, so
// that Decode(Encode(s)) == s for any s.
//
//	tok, err := tokenizer.Load(tokenizerJSON)
//	enc, err := tok.Encode("naïve café", &tokenizer.EncodeOptions{MaxLength: 128})
//	// enc.IDs, enc.AttentionMask, enc.TypeIDs, enc.Offsets
//	text := tok.Decode(enc.IDs, true)
//
// The package uses the standard library only and runs in a wasip1 plugin
// as natively. Loading streams the vocabulary into a few pointer-free
// slices (no map of strings, no reflection, nothing for the garbage
// collector to scan): all-MiniLM's tokenizer.json loads in 4–10 ms
// natively. Inside the sandbox, where every loop iteration pays the
// deadline check, that is 100 ms per plugin instance, so plugins embed the
// binary form instead (MarshalBinary, cmd/tokenizer-compile), which
// LoadBinary reads in about a millisecond. Every input is bounded: a
// tokenizer.json of at most MaxJSONBytes, a text of at most
// Tokenizer.MaxTextBytes (only the prefix needed is read when a single
// text is truncated on the right), and no input panics (FuzzEncode,
// FuzzLoad, FuzzLoadBinary).
//
// docs/plugins.md ("Tokenizers") has the details, the measurements and
// the golden tests' sources.
//
// Differences from the Rust tokenizers that the tests pin down: added
// tokens are matched in the raw text even when marked "normalized" (exact
// for BERT's and GPT-2's, which are not normalized or have no
// normalizer); Decode of byte-level BPE returns the exact bytes (the Rust
// decoder replaces invalid UTF-8 with U+FFFD); truncation has no stride
// or overflowing tokens.
package tokenizer
