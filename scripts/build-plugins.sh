#!/usr/bin/env bash
# build-plugins.sh OUT_DIR — build every Go example plugin under
# examples/plugins/ into OUT_DIR/<name>.wasm (a wasip1 reactor, as the
# plugin ABI asks: -buildmode=c-shared), after fetching the tokenizer
# plugins' vocabularies.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-build/plugins}"
mkdir -p "$out"
# The tokenizer plugins (wordpiece, bpe) embed vocabularies from their
# vocab/ folders, which scripts/fetch-vocab.sh fills (Go module cache and
# npm, never committed). Without them those plugins still build, and
# answer every call with an error that says to run it.
if ! scripts/fetch-vocab.sh >/dev/null; then
  echo "build-plugins: WARNING: scripts/fetch-vocab.sh failed: wordpiece and bpe are built without their vocabularies" >&2
fi
for dir in examples/plugins/*/; do
  name=$(basename "$dir")
  ls "$dir"*.go >/dev/null 2>&1 || continue        # not a Go plugin
  grep -q '^package main' "$dir"*.go || continue
  GOOS=wasip1 GOARCH=wasm go build -trimpath -buildmode=c-shared -o "$out/$name.wasm" "./$dir"
  echo "built $out/$name.wasm ($(wc -c < "$out/$name.wasm") bytes)" >&2
done
