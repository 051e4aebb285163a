#!/usr/bin/env bash
# gen-onnxpb.sh — regenerate nn/onnx/internal/onnxpb/onnx.pb.go from the
# official onnx.proto with Debian's protoc and protoc-gen-go at the version
# of google.golang.org/protobuf in go.mod. The proto file is copied from
# Debian's python3-onnx when it is installed, else the committed copy is
# used.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=nn/onnx/internal/onnxpb
src=/usr/lib/python3/dist-packages/onnx/onnx.proto
[ -f "$src" ] && cp "$src" "$dir/onnx.proto"
command -v protoc >/dev/null || { echo "gen-onnxpb: needs protoc (apt-get install protobuf-compiler)" >&2; exit 1; }
ver=$(go list -m -f '{{.Version}}' google.golang.org/protobuf)
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
GOBIN="$bin" go install "google.golang.org/protobuf/cmd/protoc-gen-go@$ver"
(cd "$dir" && PATH="$bin:$PATH" protoc --go_out=. --go_opt=paths=source_relative \
  --go_opt=Monnx.proto=github.com/aiaas/aiaas/nn/onnx/internal/onnxpb onnx.proto)
echo "gen-onnxpb: wrote $dir/onnx.pb.go" >&2
