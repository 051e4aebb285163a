// Package onnxpb is the Go code protoc-gen-go generates from the official
// onnx.proto (ONNX 1.12, as Debian's python3-onnx ships it, copied here
// beside it). Regenerate with scripts/gen-onnxpb.sh; never edit onnx.pb.go.
package onnxpb
