#!/usr/bin/env bash
# test.sh — the whole test suite, as `make test` and CI run it:
#   static checks, MinIO started on loopback for the S3 driver and the
#   end-to-end tests, every package under the race detector, the arm64
#   kernels under qemu, and the slower non-race tests (MNIST training).
# MinIO is stopped on exit, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

step() { printf '\n=== %s\n' "$*" >&2; }

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './bench/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change: $unformatted" >&2
  exit 1
fi

step "go vet"
go vet ./...

step "MinIO"
eval "$(scripts/minio.sh start)"
trap 'scripts/minio.sh stop >/dev/null 2>&1 || true' EXIT
export AIAAS_REQUIRE_S3=1

step "go test -race (every package)"
go test -race -timeout 25m ./...

step "long tests without -race (MNIST training on a subset)"
AIAAS_LONG_TESTS=1 go test -timeout 15m -run 'Long' ./nn/... ./platform/...

step "kernels: pure-Go fallback"
go test -tags purego -timeout 10m ./nn/kernels/...

step "kernels: arm64 under qemu user-mode emulation"
scripts/test-arm64.sh
