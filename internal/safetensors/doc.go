// Package safetensors reads and writes the safetensors tensor file format.
//
// # Overview
//
// A safetensors file is an 8-byte little-endian header length N, N bytes of
// UTF-8 JSON describing every tensor (dtype, shape, byte range), optionally
// padded with trailing spaces, and then one flat byte buffer holding the
// tensors' little-endian data back to back. The format is the one written by
// the huggingface reference implementation; files it writes decode here and
// files written here load there.
//
// Model artifacts, plugin inputs and outputs, and training checkpoints all
// travel as safetensors bytes, and most of those bytes come from tenants, so
// [Decode] treats its input as hostile: every length is bounded by [Limits]
// before anything is allocated, every offset is checked against the buffer,
// and the buffer must be indexed exactly (no holes, no overlap, no trailing
// bytes). Every decode error wraps [ErrFormat] so the HTTP layer can answer
// 400 without inspecting messages.
//
// # Zero copy
//
// [Decode] does not copy tensor data: each [Tensor.Data] aliases the input
// slice (with its capacity clipped, so an append cannot overwrite the next
// tensor). Callers that keep a tensor longer than the input buffer, or that
// mutate the buffer, must copy. [Tensor.Float32s] copies into a float32 slice
// with a single memmove on little-endian hosts.
//
// # Portability
//
// The package uses the standard library only, because the tenant-facing
// plugin SDK imports it and is compiled with GOOS=wasip1.
package safetensors
