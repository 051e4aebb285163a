#!/usr/bin/env bash
# tokenizer-golden.sh — regenerate sdk/plugin/tokenizer/testdata/golden/*.json,
# the token ids the Go tokenizer is tested against, with two independent
# JavaScript implementations (pinned by testdata/golden/package-lock.json)
# run on the vocabularies of scripts/fetch-vocab.sh. Not part of make test:
# the output is committed; rerun it when the cases in gen.mjs change.
set -euo pipefail
cd "$(dirname "$0")/.."
golden=sdk/plugin/tokenizer/testdata/golden
vocab=$(scripts/fetch-vocab.sh)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$golden/package.json" "$golden/package-lock.json" "$golden/gen.mjs" "$tmp/"
(cd "$tmp" && npm ci --prefer-offline --no-audit --no-fund --ignore-scripts >/dev/null)
node "$tmp/gen.mjs" "$vocab" "$golden"
