package plugins

import "errors"

// Sentinel errors. Each failure wraps exactly one of them once, with the
// tenant, the plugin and what went wrong.
var (
	// ErrInvalidModule: the bytes are not a module this host accepts
	// (size, format, compilation, imports, exports, start-up). HTTP 400.
	ErrInvalidModule = errors.New("plugins: invalid module")
	// ErrTimeout: the call or the instance start-up ran past its deadline.
	ErrTimeout = errors.New("plugins: deadline exceeded")
	// ErrLimit: the input, the output or the guest memory exceeded a cap.
	ErrLimit = errors.New("plugins: limit exceeded")
	// ErrTrap: the guest crashed (a wasm trap, a Go panic, exit).
	ErrTrap = errors.New("plugins: plugin trapped")
	// ErrPluginError: the guest reported an error, or returned output the
	// host cannot use (bad safetensors, bad content type).
	ErrPluginError = errors.New("plugins: plugin failed")
	// ErrBusy: no instance or concurrency slot became free within
	// Options.QueueTimeout. HTTP 429 or 503 with Retry-After.
	ErrBusy = errors.New("plugins: busy")
	// ErrClosed: the Host was closed.
	ErrClosed = errors.New("plugins: host closed")
)
