// Package plugin is the Go guest SDK for aiaas plugins: tenant code that
// runs inside the platform's WebAssembly sandbox to turn request bytes into
// model input tensors (preprocess) or model output tensors into response
// bytes (postprocess).
//
// # Overview
//
// A plugin is an ordinary Go main package built as a WASI reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o my.wasm .
//
// It registers exactly one handler from an init function (a reactor's main
// is never run):
//
//	func init() {
//		plugin.HandlePreprocess(func(req plugin.Request) ([]plugin.Tensor, error) {
//			...
//			return []plugin.Tensor{plugin.F32("input", []int{1, 784}, pixels)}, nil
//		})
//	}
//
//	func main() {}
//
// The SDK implements the plugin ABI version 1 (the constants below, and
// docs/plugins.md for a byte-level description that authors in other
// languages can follow): it exports aiaas_abi_v1, aiaas_alloc,
// aiaas_preprocess and aiaas_postprocess, encodes and decodes tensors as
// safetensors bytes, and reports errors through the host's set_error.
//
// # Memory
//
// A Go reactor's garbage collector only makes progress when the guest
// yields; between host calls it never runs, so a plugin that allocates per
// call would grow its linear memory until it hit the sandbox's cap. Every
// export therefore ends with runtime.Gosched. Keep per-call allocations
// modest anyway: the sandbox caps memory and discards an instance whose
// memory grew past a high-water mark, and in a small plugin the guest's
// collector is most of a call's time. The SDK reuses its input and output
// buffers between calls; a handler can keep its own scratch buffers in
// package variables too (an instance runs one call at a time), as
// png-to-tensor does.
//
// # Intrinsics
//
// U8ToF32, GrayFromRGBA, Resize, Softmax, TopK, ImageInfo, DecodeGray and
// BBox run natively in the host (the "aiaas_v1" import module) when built
// for wasip1, and as the same Go code (package tensorops) otherwise. Wasm
// loops are slower than native ones, so use these for per-pixel and
// per-class work.
//
// # Errors and panics
//
// An error returned by a handler fails the call with the error's message
// (the platform answers 422). A panic is not recovered: it traps the
// instance, which the host discards, and the call fails with a 5xx.
//
// This package uses the standard library only. Its functions must be
// called from the plugin's single goroutine; nothing here is
// goroutine-safe, and a guest has only one thread anyway.
package plugin
