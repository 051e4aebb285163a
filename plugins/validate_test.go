package plugins

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aiaas/aiaas/internal/wasmasm"
)

var discardLogger = slog.New(slog.DiscardHandler)

// withImport appends an import; the exported functions' indexes shift by
// one (echoModule's body calls function 0, which stays set_output).
func withImport(m wasmasm.Module, imp wasmasm.Import) wasmasm.Module {
	m.Imports = append(slices.Clone(m.Imports), imp)
	m.Exports = slices.Clone(m.Exports)
	for i := range m.Exports {
		if m.Exports[i].Kind == 0 {
			m.Exports[i].Idx++
		}
	}
	return m
}

func TestValidate(t *testing.T) {
	h := newHost(t, &Options{InitTimeout: 3 * time.Second, MaxModuleBytes: 8 << 20}) // Go start-up under -race on a loaded machine can pass 200 ms
	withStart := wasmasm.Echo()
	loopIdx := uint32(4)
	withStart.Start = &loopIdx
	forbidden := withImport(wasmasm.Echo(), wasmasm.Import{Mod: "env", Name: "system", Type: wasmasm.TyVoid})
	sock := withImport(wasmasm.Echo(), wasmasm.Import{Mod: "wasi_snapshot_preview1", Name: "sock_accept", Type: wasmasm.TyPre})
	badSig := withImport(wasmasm.Echo(), wasmasm.Import{Mod: "aiaas_v1", Name: "softmax_f32", Type: wasmasm.TyVoid})
	noAlloc := wasmasm.Echo()
	noAlloc.Exports = slices.DeleteFunc(slices.Clone(noAlloc.Exports), func(e wasmasm.Export) bool { return e.Name == "aiaas_alloc" })
	wrongExport := wasmasm.Echo()
	wrongExport.Exports[2].Idx = 3 // aiaas_alloc -> the (i32 i32 i32) function
	badKind := wasmasm.Echo()
	badKind.Funcs[0].Body = []byte{0x41, 0x07}
	noMem := wasmasm.Echo()
	noMem.Exports = noMem.Exports[1:]

	cases := []struct {
		name  string
		wasm  []byte
		kinds []string
		err   string // substring of the error; "" for success
	}{
		{"identity", built["identity"], []string{"preprocess", "postprocess"}, ""},
		{"png-to-tensor", built["png-to-tensor"], []string{"preprocess"}, ""},
		{"top-k", built["top-k"], []string{"postprocess"}, ""},
		{"hand-made echo", wasmasm.Echo().Bytes(), []string{"preprocess"}, ""},
		{"empty", nil, nil, "missing the \\0asm magic"},
		{"garbage", []byte("hello, I am not wasm at all"), nil, "missing the \\0asm magic"},
		{"version 2", []byte("\x00asm\x02\x00\x00\x00"), nil, "binary version 2"},
		{"truncated", wasmasm.Echo().Bytes()[:40], nil, "malformed binary: offset 38: section size 23 exceeds the 2 bytes left"},
		{"over size", make([]byte, 8<<20+1), nil, "the limit is 8388608"},
		{"forbidden import", forbidden.Bytes(), nil, `imports env.system: module "env" is not provided`},
		{"network import", sock.Bytes(), nil, "imports wasi_snapshot_preview1.sock_accept: not provided"},
		{"import signature", badSig.Bytes(), nil, "imports aiaas_v1.softmax_f32 with signature () -> (); the host provides (i32, i32) -> (i32)"},
		{"missing export", noAlloc.Bytes(), nil, "does not export aiaas_alloc"},
		{"export signature", wrongExport.Bytes(), nil, "exports aiaas_alloc with signature (i32, i32, i32) -> (i32)"},
		{"no memory", noMem.Bytes(), nil, `does not export its memory as "memory"`},
		{"bad kind", badKind.Bytes(), nil, "returned 7"},
		{"start loops", withStart.Bytes(), nil, "init deadline"},
	}
	for i, c := range cases {
		info, err := h.Validate(context.Background(), c.wasm)
		if c.err == "" {
			if err != nil {
				t.Errorf("%d %s: %v", i, c.name, err)
				continue
			}
			if !slices.Equal(info.Kinds, c.kinds) || info.ABIVersion != 1 || len(info.SHA256) != 64 {
				t.Errorf("%d %s: info %+v", i, c.name, info)
			}
			if !slices.Contains(info.Exports, "aiaas_abi_v1") || !slices.Contains(info.Exports, "memory") {
				t.Errorf("%d %s: exports %v", i, c.name, info.Exports)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidModule) || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%d %s: got %v, want ErrInvalidModule containing %q", i, c.name, err, c.err)
		}
	}
}

// The Go SDK's modules import only what the host allows; this pins the
// list so that a toolchain upgrade that adds an import shows up here.
func TestGoModuleImports(t *testing.T) {
	h := newHost(t, nil)
	for _, name := range []string{"identity", "png-to-tensor", "top-k"} {
		info, err := h.Validate(context.Background(), built[name])
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d bytes, imports %v", name, info.Size, info.Imports)
	}
}

func FuzzValidate(f *testing.F) {
	f.Add(wasmasm.Echo().Bytes())
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	f.Add([]byte("garbage"))
	m := wasmasm.Echo()
	loop := uint32(4)
	m.Start = &loop
	f.Add(m.Bytes())
	h := newHost(f, &Options{InitTimeout: 50 * time.Millisecond, MaxModuleBytes: 1 << 16})
	f.Fuzz(func(t *testing.T, wasm []byte) {
		info, err := h.Validate(context.Background(), wasm)
		if err != nil && !errors.Is(err, ErrInvalidModule) {
			t.Fatalf("error %v does not wrap ErrInvalidModule", err)
		}
		if err == nil && info.Kind == 0 {
			t.Fatalf("valid module without kind: %+v", info)
		}
	})
}

// The compilation cache is on disk: a second Host on the same folder
// finds the machine code there instead of compiling again. (A small
// module: compiling a Go-built one cold takes >10 s under -race;
// BenchmarkCompile measures the Go-built case.)
func TestCompilationCacheOnDisk(t *testing.T) {
	dir := t.TempDir()
	wasm := wasmasm.Echo().Bytes()
	h := newHost(t, &Options{CacheDir: dir})
	start := time.Now()
	if _, err := h.Validate(context.Background(), wasm); err != nil {
		t.Fatal(err)
	}
	cold := time.Since(start)
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("cache folder is empty: %v", err)
	}
	h2 := newHost(t, &Options{CacheDir: dir})
	start = time.Now()
	if _, err := h2.Validate(context.Background(), wasm); err != nil {
		t.Fatal(err)
	}
	t.Logf("validate cold %v, from the disk cache %v", cold, time.Since(start))
}

// TestValidateShares: while tenant a's uploads whose start functions loop
// hold their validations until the init deadline, tenant b's valid upload
// is checked at once instead of queueing behind them.
func TestValidateShares(t *testing.T) {
	h := newHost(t, &Options{InitTimeout: 2 * time.Second})
	loop := wasmasm.Echo()
	start := uint32(4)
	loop.Start = &start
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := h.ValidateFor(context.Background(), "a", loop.Bytes()); err == nil {
				t.Error("a module whose start loops was accepted")
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)                                              // a's first validation is running
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond) // less than one init deadline
	defer cancel()
	if _, err := h.ValidateFor(ctx, "b", wasmasm.Echo().Bytes()); err != nil {
		t.Errorf("b's upload beside a's: %v", err)
	}
	wg.Wait()
}
