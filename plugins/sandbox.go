package plugins

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync/atomic"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/aiaas/aiaas/sdk/plugin"
)

// sandbox is one wazero runtime: a module namespace with its own memory
// cap. Each tenant has one; uploads are validated in another.
type sandbox struct {
	h      *Host
	tenant string
	rt     wazero.Runtime
	seq    atomic.Uint64 // instance names must be unique per runtime
}

func (h *Host) newRuntime(ctx context.Context, tenant string) (*sandbox, error) {
	cfg := wazero.NewRuntimeConfig().
		WithCompilationCache(h.cache).
		WithMemoryLimitPages(h.opts.MemoryLimitPages).
		// Deadlines are the instrumented checks' (interrupt.go), not
		// wazero's per-loop exit to Go.
		WithCloseOnContextDone(false).
		WithDebugInfoEnabled(false)
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("plugins: wasi: %w", err)
	}
	if _, err := hostModule(rt).Instantiate(ctx); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("plugins: host module: %w", err)
	}
	return &sandbox{h: h, tenant: tenant, rt: rt}, nil
}

func (s *sandbox) close(ctx context.Context) error { return s.rt.Close(ctx) }

type signature struct{ params, results []api.ValueType }

// wasiAllowed is the WASI subset a plugin may import: what a Go (or
// Rust/AssemblyScript) module needs to start and print. Nothing that
// opens sockets or changes files; with no filesystem mounted, the fd and
// path functions only ever see stdin/stdout/stderr.
var wasiAllowed = []string{
	"args_get", "args_sizes_get", "environ_get", "environ_sizes_get",
	"clock_res_get", "clock_time_get", "random_get", "sched_yield", "poll_oneoff", "proc_exit",
	"fd_write", "fd_read", "fd_close", "fd_seek", "fd_sync", "fd_fdstat_get", "fd_fdstat_set_flags",
	"fd_filestat_get", "fd_prestat_get", "fd_prestat_dir_name", "path_open", "path_filestat_get",
}

// allowedImports lists the functions a plugin may import, with the
// signatures this runtime provides.
func (s *sandbox) allowedImports() map[string]map[string]signature {
	out := map[string]map[string]signature{}
	for _, modName := range []string{wasi_snapshot_preview1.ModuleName, plugin.HostModule} {
		m := s.rt.Module(modName)
		defs := m.ExportedFunctionDefinitions()
		names := map[string]signature{}
		for name, d := range defs {
			names[name] = signature{d.ParamTypes(), d.ResultTypes()}
		}
		if modName == wasi_snapshot_preview1.ModuleName {
			sub := map[string]signature{}
			for _, n := range wasiAllowed {
				if sig, ok := names[n]; ok {
					sub[n] = sig
				}
			}
			names = sub
		}
		out[modName] = names
	}
	return out
}

// instance is one instantiated module, used by one call at a time.
type instance struct {
	mod       api.Module
	mem       api.Memory
	abi       api.Function
	alloc     api.Function
	pre, post api.Function
	kind      Kind
	logs      *capWriter
	lastUsed  int64 // unix nanoseconds
	calls     int
	// counted is memBytes as of the instance's last check-in, the share
	// of its pool's memBytes it accounts for (pool.go).
	counted int
	stack   [3]uint64
}

// instantiate starts a new instance of cm, running its initializer under
// the init deadline. The caller holds a concurrency slot.
func (s *sandbox) instantiate(ctx context.Context, cm wazero.CompiledModule, sha string) (*instance, error) {
	ctx, cancel := context.WithTimeout(ctx, s.h.opts.InitTimeout)
	defer cancel()
	logs := &capWriter{max: s.h.opts.MaxLogBytes}
	name := sha[:min(len(sha), 16)] + "-" + strconv.FormatUint(s.seq.Add(1), 10)
	// No start functions inside instantiation: the host calls them
	// below, under the init deadline (interrupt.go).
	cfg := wazero.NewModuleConfig().
		WithName(name).
		WithStartFunctions().
		WithStdin(eofReader{}).
		WithStdout(logs).
		WithStderr(logs)
	mod, err := s.rt.InstantiateModule(experimental.WithMemoryAllocator(ctx, s.h.memory), cm, cfg)
	if err != nil {
		if mod != nil {
			mod.Close(context.Background())
		}
		return nil, classifyInit(ctx, err, logs)
	}
	inst := &instance{
		mod:   mod,
		mem:   mod.ExportedMemory(plugin.ExportMemory),
		abi:   mod.ExportedFunction(plugin.ExportABI),
		alloc: mod.ExportedFunction(plugin.ExportAlloc),
		pre:   mod.ExportedFunction(plugin.ExportPreprocess),
		post:  mod.ExportedFunction(plugin.ExportPostprocess),
		logs:  logs,
	}
	if inst.mem == nil || inst.abi == nil || inst.alloc == nil {
		mod.Close(context.Background())
		return nil, fmt.Errorf("%w: missing ABI exports", ErrInvalidModule)
	}
	// The start function (moved out of the section by instrument), the
	// WASI reactor initializer, then what the module implements, asked
	// once: the Go SDK exports both entry points whatever the plugin
	// registered.
	for _, name := range []string{startExport, plugin.ExportInitialize, plugin.ExportABI} {
		fn := mod.ExportedFunction(name)
		if fn == nil {
			continue
		}
		if err := fn.CallWithStack(ctx, inst.stack[:]); err != nil {
			mod.Close(context.Background())
			return nil, classifyInit(ctx, err, logs)
		}
	}
	inst.kind = Kind(api.DecodeI32(inst.stack[0]))
	return inst, nil
}

func classifyInit(ctx context.Context, err error, logs *capWriter) error {
	if ctx.Err() == context.DeadlineExceeded || isExit(err, deadlineExit) {
		return fmt.Errorf("%w: start-up did not finish within the init deadline", ErrTimeout)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	msg := err.Error()
	if out := logs.String(); out != "" {
		msg += "; output: " + out
	}
	return fmt.Errorf("%w: start-up failed: %s", ErrTrap, msg)
}

func (i *instance) close() { i.mod.Close(context.Background()) }

// memBytes is the instance's current linear memory size.
func (i *instance) memBytes() int { return int(i.mem.Size()) }

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// capWriter keeps the first max bytes written and counts the rest.
// Written by one guest at a time, read by the host between calls.
type capWriter struct {
	max     int
	buf     []byte
	dropped int
}

func (w *capWriter) Write(p []byte) (int, error) {
	room := w.max - len(w.buf)
	if room > 0 {
		w.buf = append(w.buf, p[:min(room, len(p))]...)
	}
	w.dropped += len(p) - min(max(room, 0), len(p))
	return len(p), nil
}

func (w *capWriter) String() string { return string(w.buf) }

func (w *capWriter) reset() { w.buf, w.dropped = w.buf[:0], 0 }
