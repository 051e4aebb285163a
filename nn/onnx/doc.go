// Package onnx converts models between ONNX and aiaas: an uploaded ONNX
// model becomes an aiaas artifact (a graph for nn/graph, or a dense
// network for nn when it is a chain of dense layers), and a dense network
// trained here exports to ONNX, so that ONNX Runtime can run it (which is
// how bench/ compares the engines on identical weights).
//
// # Overview
//
//	art, err := onnx.Convert(b, nil)       // any model the runtime implements → artifact bytes
//	g, tensors, err := onnx.Parse(b, nil)  // the graph and its tensors, validated
//	m, err := onnx.Import(b, nil)          // a chain of dense layers → *nn.Model
//	err = onnx.Export(&buf, m)             // *nn.Model → ONNX (opset 13, IR version 7)
//
// Parse reads the whole of onnx.proto's model: the nodes with every
// attribute kind (tensor attributes become named tensors of the artifact),
// the inputs and outputs with their element types and shapes (symbolic
// dimensions kept as -1 with their names), and initializers of every
// numeric element type, from raw_data or the typed fields. Nodes are
// sorted topologically if the file did not sort them. The graph is then
// validated by nn/graph: every node must be an operator it implements at
// the model's opset.
//
// # Encoding
//
// The protobuf messages are generated from the official onnx.proto
// (package internal/onnxpb, scripts/gen-onnxpb.sh) with
// google.golang.org/protobuf. Unknown fields are kept aside by the
// decoder, so files written by newer exporters load.
//
// # Untrusted input
//
// Models come from tenants. The file size is bounded (Limits.MaxBytes);
// before anything is decoded, prescan walks the encoded message with the
// generated descriptors and refuses files whose decoded form would need
// more than twice their size plus 64 MiB (a packed varint of one byte
// decodes to eight) or that nest messages deeper than 32; then node,
// initializer and element counts are checked against Limits, dims against
// data lengths before any tensor is allocated, and NaN weights refused.
// Errors wrap ErrUnsupported (a valid model that uses what aiaas does not
// run: the message names the operator, its opset and the node) or
// nn.ErrArtifact (a malformed or inconsistent file); both are client
// errors. Nothing here panics; FuzzConvert and FuzzImport check it.
//
// This package never reads files or the network: models come in as bytes
// and go out through an io.Writer.
package onnx
