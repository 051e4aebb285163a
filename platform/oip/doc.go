// Package oip is the wire codec of the Open Inference Protocol v2 (the
// KServe/Triton REST data plane): inference requests and responses, the
// metadata and health payloads, the error object, and Triton's binary tensor
// data extension.
//
// # Overview
//
// [DecodeRequest] turns an HTTP body into an [InferenceRequest] whose numeric
// inputs are already validated and converted to float32, the only element
// type the models take. [AppendResponse] writes an [InferenceResponse] into a
// byte slice, as JSON or as JSON followed by binary tensors. The metadata and
// health payloads are plain structs with the protocol's JSON field names, for
// encoding/json. Every function here is safe for concurrent use; the
// values are plain data.
//
// The package does no I/O and knows nothing of HTTP routing, tenants or
// models: the HTTP layer reads the body (bounded), passes the value of the
// Inference-Header-Content-Length header, and maps errors to statuses.
//
// # Untrusted input
//
// Request bodies come from the network. Decoding never panics, is bounded by
// [Limits] before it allocates (a shape that claims more elements than the
// body could possibly hold is refused before any tensor is allocated), and
// every error wraps [ErrBadRequest] with a message naming the input and, for
// data, the element index at fault. Size violations also wrap [ErrTooLarge].
//
// # Why a hand-written tokenizer
//
// Decoding a 1x784 FP32 request is on the path of every inference. Going
// through encoding/json means an interface value per element (or a
// reflection-driven []float64 and a second pass), and still needs a second
// walk to check nested data against the shape, which JSON lets arrive before
// the shape. The tokenizer here reads the body once, records where "data"
// lies, and converts elements straight into the destination []float32 with
// the shape already known. See BenchmarkDecodeRequest for the figures.
package oip
