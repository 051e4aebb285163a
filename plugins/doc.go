// Package plugins is the sandbox that runs tenants' WebAssembly plugins
// (preprocess: request bytes → tensors; postprocess: tensors → response
// bytes) inside the serving process, with wazero. It is the only package
// that imports wazero.
//
// # Overview
//
// A Host owns one on-disk compilation cache for the process and one wazero
// runtime per tenant, so tenants have separate module namespaces and
// memories and share nothing but compiled machine code. Modules are
// identified by the sha256 of their bytes (Module), compiled on first use
// and kept, and run from per-(tenant, sha256) pools of pre-initialised
// instances. An instance serves one call at a time (wazero functions are
// not goroutine-safe) and is never shared across tenants.
//
// # Limits
//
// Every call runs under a deadline: each module is rewritten before it is
// compiled so that its code calls back into the host at least every ~1 MiB
// of executed code, and the host stops the call there once its context is
// done, and gives the processor to other goroutines every 0.5 ms
// (interrupt.go). Also: a memory cap per instance, an output cap, a cap on
// the captured stdout/stderr (which goes to the Logger tagged with tenant
// and plugin), and a process-wide bound on concurrent guest execution: a
// guest holds an OS thread between those exits. An instance that
// trapped, timed out, hit a limit or grew past the memory high-water mark
// is discarded and replaced in the background; idle instances are
// reclaimed after Options.IdleTimeout.
//
// Plugins get no filesystem, network, environment, arguments, or host
// clock and randomness: WASI is present only so a Go module can start,
// with wazero's deterministic fake clock and random source.
//
// # Errors
//
// Failures wrap exactly one of the sentinel errors (ErrInvalidModule,
// ErrTimeout, ErrLimit, ErrTrap, ErrPluginError, ErrBusy, ErrClosed) or
// the caller's context error, so the HTTP layer can map them to statuses:
// invalid module 400, plugin error 422, limit 413/422, busy 429/503,
// timeout 504, trap 502.
//
// # ABI
//
// The plugin ABI (exports, host imports, status codes) is defined in
// package sdk/plugin and documented byte by byte in docs/plugins.md.
// The host intrinsics in the "aiaas_v1" import module run the kernels of
// sdk/plugin/tensorops over bounds-checked views of guest memory.
package plugins
