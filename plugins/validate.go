package plugins

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/aiaas/aiaas/sdk/plugin"
)

// Kind says which calls a plugin implements.
type Kind int

const (
	Preprocess  Kind = plugin.KindPreprocess
	Postprocess Kind = plugin.KindPostprocess
)

// Has reports whether k includes all of want.
func (k Kind) Has(want Kind) bool { return k&want == want && want != 0 }

func (k Kind) String() string {
	var s []string
	if k.Has(Preprocess) {
		s = append(s, "preprocess")
	}
	if k.Has(Postprocess) {
		s = append(s, "postprocess")
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, "+")
}

// Info describes a valid module, for the upload response.
type Info struct {
	SHA256     string   `json:"sha256"`
	Size       int      `json:"size"`
	ABIVersion int      `json:"abi_version"`
	Kind       Kind     `json:"-"`
	Kinds      []string `json:"kinds"`   // "preprocess", "postprocess"
	Exports    []string `json:"exports"` // every exported name, sorted
	Imports    []string `json:"imports"` // "module.name", sorted
}

// Validate checks an uploaded module: size, magic and version, that it
// compiles, that it imports only the WASI subset and the aiaas_v1 host
// functions with the right signatures, that it exports the ABI v1
// functions with the right signatures, and that it starts within
// InitTimeout and declares what it implements. The module is run once,
// in a sandbox of its own. Every failure wraps ErrInvalidModule (or
// ErrBusy when the host is saturated, or the context's error) and lists
// every problem found. Safe for concurrent use.
func (h *Host) Validate(ctx context.Context, wasm []byte) (*Info, error) {
	return h.ValidateFor(ctx, "", wasm)
}

// ValidateFor is Validate of a module tenant uploads. Each tenant's
// uploads are checked one at a time, and at most max(2, GOMAXPROCS) in the
// process, waiting (within ctx) for a turn: a tenant uploading slow
// modules delays its own uploads, not another tenant's.
func (h *Host) ValidateFor(ctx context.Context, tenant string, wasm []byte) (*Info, error) {
	if err := h.enter(); err != nil {
		return nil, err
	}
	defer h.exit()
	h.mu.Lock()
	own := h.vten[tenant]
	if own == nil {
		own = make(chan struct{}, 1)
		h.vten[tenant] = own
	}
	h.mu.Unlock()
	for _, sem := range []chan struct{}{own, h.vsem} {
		select {
		case sem <- struct{}{}:
			defer func() { <-sem }()
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-h.stop:
			return nil, ErrClosed
		}
	}
	h.vmu.RLock()
	defer h.vmu.RUnlock()
	if h.vrt == nil {
		return nil, ErrClosed
	}
	cm, info, err := h.check(ctx, h.vrt, wasm)
	if err != nil {
		return nil, err
	}
	defer cm.Close(context.Background())
	if err := h.acquire(ctx, nil); err != nil {
		return nil, err
	}
	defer h.release(nil)
	inst, err := h.vrt.instantiate(ctx, cm, info.SHA256)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidModule, err)
	}
	defer inst.close()
	k := inst.kind
	switch {
	case k == 0 || k&^(Preprocess|Postprocess) != 0:
		return nil, fmt.Errorf("%w: %s() returned %d; want a non-zero mask of 1 (preprocess) and 2 (postprocess)", ErrInvalidModule, plugin.ExportABI, int32(k))
	case k.Has(Preprocess) && inst.pre == nil:
		return nil, fmt.Errorf("%w: declares preprocess but does not export %s", ErrInvalidModule, plugin.ExportPreprocess)
	case k.Has(Postprocess) && inst.post == nil:
		return nil, fmt.Errorf("%w: declares postprocess but does not export %s", ErrInvalidModule, plugin.ExportPostprocess)
	}
	info.Kind = k
	for _, kk := range []Kind{Preprocess, Postprocess} {
		if k.Has(kk) {
			info.Kinds = append(info.Kinds, kk.String())
		}
	}
	return info, nil
}

// check does the static validation and compiles wasm in sb.
func (h *Host) check(ctx context.Context, sb *sandbox, wasm []byte) (wazero.CompiledModule, *Info, error) {
	if len(wasm) > h.opts.MaxModuleBytes {
		return nil, nil, fmt.Errorf("%w: module is %d bytes; the limit is %d", ErrInvalidModule, len(wasm), h.opts.MaxModuleBytes)
	}
	if len(wasm) < 8 || !bytes.Equal(wasm[:4], []byte("\x00asm")) {
		return nil, nil, fmt.Errorf("%w: not a WebAssembly binary (missing the \\0asm magic)", ErrInvalidModule)
	}
	if v := binary.LittleEndian.Uint32(wasm[4:8]); v != 1 {
		return nil, nil, fmt.Errorf("%w: WebAssembly binary version %d; want 1", ErrInvalidModule, v)
	}
	if err := checkStructure(wasm); errors.Is(err, errCompileCost) {
		return nil, nil, fmt.Errorf("%w: %v", ErrInvalidModule, err)
	} else if err != nil {
		return nil, nil, fmt.Errorf("%w: malformed binary: %v", ErrInvalidModule, err)
	}
	sum := sha256.Sum256(wasm)
	if !h.opts.noDeadline {
		var err error
		if wasm, err = instrument(wasm); err != nil {
			return nil, nil, fmt.Errorf("%w: malformed binary: %v", ErrInvalidModule, err)
		}
	}
	// One compilation of a module at a time in this host: the runtimes
	// share wazero's compiled code, and wazero v1.12 shares a module it
	// loads from the file cache before it is ready to instantiate
	// (TestConcurrentFirstCompileFromCache). Keyed by the module's hash:
	// a lock per stripe of hashes made one tenant's small module wait
	// behind another's slow compile whenever their hashes shared a stripe.
	var cm wazero.CompiledModule
	compile := func() (err error) {
		unlock := h.compiling.lock(sum)
		defer unlock()
		cm, err = sb.rt.CompileModule(ctx, wasm)
		return err
	}
	var err error
	if h.shared != nil {
		err = h.shared.compile(ctx, sum, compile)
	} else {
		err = compile()
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, fmt.Errorf("%w: does not compile: %v", ErrInvalidModule, err)
	}
	info := &Info{SHA256: hex.EncodeToString(sum[:]), Size: len(wasm), ABIVersion: plugin.ABIVersion}
	if problems := h.checkInterface(cm, info); len(problems) > 0 {
		cm.Close(context.Background())
		return nil, nil, fmt.Errorf("%w: %s", ErrInvalidModule, strings.Join(problems, "; "))
	}
	return cm, info, nil
}

var wantExports = map[string]signature{
	plugin.ExportABI:         {nil, []api.ValueType{i32}},
	plugin.ExportAlloc:       {[]api.ValueType{i32}, []api.ValueType{i32}},
	plugin.ExportPreprocess:  {[]api.ValueType{i32, i32, i32}, []api.ValueType{i32}},
	plugin.ExportPostprocess: {[]api.ValueType{i32, i32}, []api.ValueType{i32}},
	plugin.ExportInitialize:  {nil, nil},
}

// checkInterface returns every import and export problem of cm.
func (h *Host) checkInterface(cm wazero.CompiledModule, info *Info) []string {
	var problems []string
	for _, d := range cm.ImportedFunctions() {
		mod, name, _ := d.Import()
		if mod == plugin.HostModule && name == yieldImport {
			continue // added by instrument
		}
		info.Imports = append(info.Imports, mod+"."+name)
		allowed, ok := h.allowed[mod]
		if !ok {
			problems = append(problems, fmt.Sprintf("imports %s.%s: module %q is not provided (allowed: %s, %s)", mod, name, mod, "wasi_snapshot_preview1", plugin.HostModule))
			continue
		}
		want, ok := allowed[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("imports %s.%s: not provided to plugins", mod, name))
			continue
		}
		if got := (signature{d.ParamTypes(), d.ResultTypes()}); !got.equal(want) {
			problems = append(problems, fmt.Sprintf("imports %s.%s with signature %s; the host provides %s", mod, name, got, want))
		}
	}
	for _, d := range cm.ImportedMemories() {
		mod, name, _ := d.Import()
		problems = append(problems, fmt.Sprintf("imports memory %s.%s: plugins must define and export their own memory", mod, name))
	}
	exports := cm.ExportedFunctions()
	for name := range exports {
		if name != startExport { // added by instrument
			info.Exports = append(info.Exports, name)
		}
	}
	for name := range cm.ExportedMemories() {
		info.Exports = append(info.Exports, name)
	}
	slices.Sort(info.Exports)
	slices.Sort(info.Imports)
	for _, name := range []string{plugin.ExportABI, plugin.ExportAlloc} {
		if _, ok := exports[name]; !ok {
			problems = append(problems, fmt.Sprintf("does not export %s (ABI v%d)", name, plugin.ABIVersion))
		}
	}
	if _, ok := exports[plugin.ExportPreprocess]; !ok {
		if _, ok := exports[plugin.ExportPostprocess]; !ok {
			problems = append(problems, fmt.Sprintf("exports neither %s nor %s", plugin.ExportPreprocess, plugin.ExportPostprocess))
		}
	}
	for name, want := range wantExports {
		d, ok := exports[name]
		if !ok {
			continue
		}
		if got := (signature{d.ParamTypes(), d.ResultTypes()}); !got.equal(want) {
			problems = append(problems, fmt.Sprintf("exports %s with signature %s; ABI v%d wants %s", name, got, plugin.ABIVersion, want))
		}
	}
	if _, ok := cm.ExportedMemories()[plugin.ExportMemory]; !ok {
		problems = append(problems, fmt.Sprintf("does not export its memory as %q", plugin.ExportMemory))
	}
	slices.Sort(problems)
	return problems
}

func (s signature) equal(o signature) bool {
	return bytes.Equal(s.params, o.params) && bytes.Equal(s.results, o.results)
}

func (s signature) String() string {
	name := func(ts []api.ValueType) string {
		var n []string
		for _, t := range ts {
			n = append(n, api.ValueTypeName(t))
		}
		return "(" + strings.Join(n, ", ") + ")"
	}
	return name(s.params) + " -> " + name(s.results)
}
