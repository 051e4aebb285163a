#!/usr/bin/env bash
# test.sh — the whole test suite, as `make test` and CI run it:
#   static checks; MinIO on loopback for the S3 driver and the end-to-end
#   tests; dynalite on loopback for the DynamoDB quota store; every package
#   once without and once with the race detector (the first pass also
#   fills the wasm compilation caches and runs the MNIST training test,
#   which skips itself under -race); the kernels' pure-Go fallback and
#   their arm64 build under qemu; the Lambda functions under
#   the Runtime Interface Emulator; the console in a real browser.
# MinIO and dynalite are stopped on exit, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
tools=${AIAAS_TOOLS:-$HOME/.cache/aiaas/tools}
export PATH="$tools/bin:$PATH"

step() { printf '\n=== %s (%s)\n' "$*" "$(date -u +%H:%M:%S)" >&2; }

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' | grep -v '^bench/'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change: $unformatted" >&2
  exit 1
fi

step "go vet"
go vet ./...
GOARCH=arm64 go vet ./nn/kernels/
go vet -tags purego ./nn/kernels/

step "infra: cfn-lint with the SAM transform, in every tenancy mode"
scripts/cfn-lint.sh

step "MinIO"
eval "$(scripts/minio.sh start)"
trap 'scripts/minio.sh stop >/dev/null 2>&1 || true' EXIT
export AIAAS_REQUIRE_S3=1 AIAAS_TEST_S3_BIG=1

step "dynalite (DynamoDB on LevelDB, for the quotas shared across Lambda environments)"
eval "$(scripts/dynalite.sh start)"
trap 'scripts/minio.sh stop >/dev/null 2>&1 || true; scripts/dynalite.sh stop >/dev/null 2>&1 || true' EXIT
export AIAAS_REQUIRE_DYNAMODB=1

step "Lambda Runtime Interface Emulator"
scripts/rie.sh install
export AIAAS_REQUIRE_RIE=1

# nn/onnx's TestNetworks and TestConformance fail, rather than skip,
# without their fixtures and ONNX's backend test data (scripts/deps.sh
# installs both).
export AIAAS_REQUIRE_FIXTURES=1 AIAAS_REQUIRE_ONNX_TESTDATA=1

step "go test (every package)"
go test -timeout 20m ./...

step "go test -race (every package)"
go test -race -tags aiaas_poison -timeout 25m ./...

step "kernels: pure-Go fallback"
go test -tags purego ./nn/kernels/ ./nn/ ./nn/graph/

step "kernels: arm64 under qemu user-mode emulation"
GOARCH=arm64 go test -c -o "${TMPDIR:-/tmp}/aiaas-kernels.arm64" ./nn/kernels/
qemu-aarch64 "${TMPDIR:-/tmp}/aiaas-kernels.arm64" -test.count=1
# The model's packed, fused forward pass on the NEON kernel.
GOARCH=arm64 go test -c -o "${TMPDIR:-/tmp}/aiaas-nn.arm64" ./nn/
(cd nn && qemu-aarch64 "${TMPDIR:-/tmp}/aiaas-nn.arm64" -test.run 'Fused|Repacks|Forward' -test.count=1)
# The graph runtime's convolutions and fusions on the NEON kernels.
GOARCH=arm64 go test -c -o "${TMPDIR:-/tmp}/aiaas-graph.arm64" ./nn/graph/
(cd nn/graph && qemu-aarch64 "${TMPDIR:-/tmp}/aiaas-graph.arm64" -test.run 'Conv|Fusion|Depthwise|Pool|MatMul|Gemm' -test.count=1)

step "console in a real browser (Debian chromium, playwright-core)"
scripts/browser-test.sh

step "bench module builds and its own tests pass"
(cd bench && go vet ./... && go test ./...)

step "fuzzing: every target of untrusted bytes, ${AIAAS_FUZZ_SECONDS:-5} s each (make soak: 60 s)"
scripts/fuzz-smoke.sh "${AIAAS_FUZZ_SECONDS:-5}"
