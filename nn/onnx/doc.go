// Package onnx converts aiaas models to and from ONNX, so that a model
// trained in PyTorch or Keras can be served here and a model trained here
// can be run by ONNX Runtime (which is how bench/ compares the two engines
// on identical weights).
//
// # Overview
//
// Only the subset that nn can run is supported: a linear chain of dense
// layers (Gemm, or MatMul followed by Add) each optionally followed by one
// activation (Relu, Tanh, Sigmoid, Softmax over the last axis). Identity,
// Dropout (a no-op at inference) and Flatten of an already flat [N, D] input
// are accepted and dropped. The graph has one float input [N, D] and one
// float output [N, K].
//
//	var buf bytes.Buffer
//	err := onnx.Export(&buf, m)                 // opset 13, IR version 7
//	m2, err := onnx.Import(buf.Bytes(), nil)    // nil: default Limits
//
// # Encoding
//
// The protobuf wire format is read and written by hand (wire.go): the few
// messages of onnx.proto that a dense network needs are small, and a
// generated protobuf package would be the module's largest dependency for
// about 400 lines of code. Unknown fields are skipped, as protobuf requires,
// so files written by newer exporters still load.
//
// # Untrusted input
//
// Import takes bytes from tenants. Sizes are bounded (Limits) before
// anything is allocated from a length in the file; every node must be a
// supported operator in the default domain (the error names the first one
// that is not); initializers must be FLOAT, given as raw_data or float_data,
// with shapes that agree with the chain; NaN and infinite weights are
// refused. The model is finally built through nn.ReadArtifact, so it passes
// the same checks as any artifact. Errors wrap ErrUnsupported (a valid ONNX
// file this engine cannot run) or nn.ErrArtifact (a malformed or
// inconsistent file); both are client errors. Nothing in Import panics.
//
// This package never reads files or the network: models come in as bytes
// and go out through an io.Writer.
package onnx
