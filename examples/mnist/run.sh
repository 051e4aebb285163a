#!/usr/bin/env bash
# The MNIST example with the CLI: train → push → alias → plugins → endpoint
# → invoke. Needs a running server (make run) and AIAAS_URL / AIAAS_KEY.
#   EPOCHS=5 LIMIT=0 examples/mnist/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
aiaas=${AIAAS_BIN:-bin/aiaas}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

$aiaas train --dataset mnist --epochs "${EPOCHS:-5}" --limit "${LIMIT:-0}" --seed 1 --out "$work/mnist.safetensors"
$aiaas model push mnist "$work/mnist.safetensors" --output json > "$work/push.json"
version=$(sed -E 's/.*"version":([0-9]+).*/\1/' "$work/push.json")
$aiaas model alias mnist prod "$version"
$aiaas plugin push png-to-tensor "${PLUGINS:-build/plugins}/png-to-tensor.wasm"
$aiaas plugin push top-k "${PLUGINS:-build/plugins}/top-k.wasm"
$aiaas endpoint create digits --model mnist --version prod --preprocess png-to-tensor --postprocess top-k
$aiaas invoke digits examples/plugins/testdata/seven.png --content-type image/png
