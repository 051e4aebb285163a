package wasmasm_test

import (
	"context"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/aiaas/aiaas/internal/wasmasm"
)

func TestSLEB(t *testing.T) {
	for v, want := range map[int32][]byte{0: {0}, 1: {1}, 63: {0x3f}, 64: {0xc0, 0x00}, -1: {0x7f}, 65536: {0x80, 0x80, 0x04}, 960: {0xc0, 0x07}} {
		if got := wasmasm.SLEB(v); string(got) != string(want) {
			t.Errorf("SLEB(%d) = % x, want % x", v, got, want)
		}
	}
}

// TestMemoryHog: the module is valid, and a call leaves its memory at the
// pages asked for.
func TestMemoryHog(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	_, err := rt.NewHostModuleBuilder("aiaas_v1").NewFunctionBuilder().
		WithFunc(func(int32, int32) int32 { return 0 }).Export("set_output").Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mod, err := rt.Instantiate(ctx, wasmasm.MemoryHog(20).Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mod.ExportedFunction("aiaas_preprocess").Call(ctx, 1024, 0, 4); err != nil {
		t.Fatal(err)
	}
	if got := mod.Memory().Size(); got != 20*65536 {
		t.Errorf("memory %d bytes, want %d", got, 20*65536)
	}
	if b, _ := mod.Memory().Read(20*65536-1, 1); b[0] != 1 {
		t.Errorf("the last byte is %d, want 1 (filled)", b[0])
	}
}
