package plugins

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/aiaas/aiaas/internal/safetensors"
	"github.com/aiaas/aiaas/internal/wasmasm"
)

// callTree is Echo whose preprocess calls f0, where each of n functions
// calls the next twice and the last does nothing: 2^n calls and not one
// loop. wazero's own deadline check sits only at loop headers, so it
// never stopped this; the interrupt's check at every function entry does.
func callTree(n int) wasmasm.Module {
	m := wasmasm.Echo()
	first := uint32(len(m.Imports) + len(m.Funcs))
	for i := range n {
		var body []byte
		if i < n-1 {
			next := wasmasm.ULEB(first + uint32(i) + 1)
			body = append(append(append([]byte{0x10}, next...), 0x10), next...)
		}
		m.Funcs = append(m.Funcs, wasmasm.Func{Type: wasmasm.TyVoid, Body: body})
	}
	pre := &m.Funcs[2]
	pre.Body = append(append([]byte{0x10}, wasmasm.ULEB(first)...), pre.Body...)
	return m
}

func TestInterruptStopsLoopFreeCallTree(t *testing.T) {
	h := newHost(t, &Options{CallTimeout: 200 * time.Millisecond})
	m := moduleOf(callTree(60).Bytes())
	_, err := h.Preprocess(context.Background(), "acme", m, "x", nil)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v, want ErrTimeout", err)
	}
	// A short tree runs to the end and echoes.
	in := safetensors.Encode(&safetensors.File{Tensors: []safetensors.Tensor{safetensors.F32("input", []int{1, 4}, make([]float32, 4))}})
	short := moduleOf(callTree(8).Bytes())
	if _, err := h.Preprocess(context.Background(), "acme", short, "x", in); err != nil {
		t.Fatalf("short tree: %v", err)
	}
}

// A guest that loops must not stop the Go runtime: a collection needs
// every goroutine at a preemption point, and compiled guest code has none
// of its own. The check's exits to Go give it one; without them
// runtime.GC waits until the call's deadline (here a minute away).
func TestLoopingGuestLetsTheWorldStop(t *testing.T) {
	h := newHost(t, &Options{CallTimeout: time.Minute})
	m := mod(t, "hostile")
	if _, err := h.Preprocess(context.Background(), "acme", m, "ok", nil); err != nil {
		t.Fatal(err)
	}
	p, err := h.mustPool(context.Background(), "acme", m)
	if err != nil {
		t.Fatal(err)
	}
	done, cancel := holdingCall(t, h, p, m, "loop")
	runtime.GC()
	select {
	case err := <-done:
		t.Fatalf("the looping call ended (%v) before a collection could finish", err)
	default:
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: %v", err)
	}
}

// holdingCall starts a call of m's preprocess with input in the
// background and returns once it has held an instance for 50 ms: its
// result, and the cancel of its context.
func holdingCall(t *testing.T, h *Host, p *pool, m Module, input string) (<-chan error, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() {
		_, err := h.Preprocess(ctx, "acme", m, input, nil)
		done <- err
	}()
	for s := p.stats(); s.total-s.idle == 0; s = p.stats() { // until the call holds an instance
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	return done, cancel
}

// A loop of bulk instructions is charged by their length: a 64 MiB
// memory.fill per iteration, charged only its loop's few bytes of code,
// runs some 70,000 fills (minutes at any memory bandwidth) between two
// exits to Go, so neither a collection nor the call's deadline could stop
// it. Charged, it exits before every fill: the collection finishes in
// milliseconds (20 s is the failure, far from either).
func TestBulkMemoryLoopLetsTheWorldStop(t *testing.T) {
	h := newHost(t, &Options{CallTimeout: time.Minute})
	m := moduleOf(wasmasm.FillLoop(1025).Bytes())
	p, err := h.mustPool(context.Background(), "acme", m)
	if err != nil {
		t.Fatal(err)
	}
	done, cancel := holdingCall(t, h, p, m, "x")
	collected := make(chan struct{})
	go func() { runtime.GC(); close(collected) }()
	select {
	case <-collected:
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("a collection still waits after 20 s for the guest's fills")
	}
	select {
	case err := <-done:
		t.Fatalf("the filling call ended (%v) before it was cancelled", err)
	default:
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: %v", err)
	}
}

func TestInstrumentRefusesReservedExports(t *testing.T) {
	m0 := wasmasm.Echo()
	m0.Exports = append(m0.Exports, wasmasm.Export{Name: startExport, Kind: 0, Idx: 1})
	if _, err := instrument(m0.Bytes()); err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Errorf("%s: %v", startExport, err)
	}
	m := wasmasm.Echo()
	m.Memory = false
	m.Exports = m.Exports[1:]
	if _, err := instrument(m.Bytes()); err == nil || !strings.Contains(err.Error(), "no memory") {
		t.Errorf("no memory: %v", err)
	}
}

// TestInstrumentStartRunsFirst: a start function still runs before
// anything else, now called by the host: here it writes the word the
// preprocess then echoes.
func TestInstrumentStartRunsFirst(t *testing.T) {
	m := wasmasm.Echo()
	// start: i32.store8 offset=1024 (i32.const 0) (i32.const 42)
	m.Funcs = append(m.Funcs, wasmasm.Func{Type: wasmasm.TyVoid, Body: []byte{0x41, 0x00, 0x41, 0x2a, 0x3a, 0x00, 0x80, 0x08}})
	start := uint32(len(m.Imports) + len(m.Funcs) - 1)
	m.Start = &start
	// preprocess: set_output(1024, 1)
	m.Funcs[2].Body = []byte{0x41, 0x80, 0x08, 0x41, 0x01, 0x10, 0x00, 0x1a, 0x41, 0x00}
	h := newHost(t, nil)
	p, err := h.mustPool(context.Background(), "acme", moduleOf(m.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	inst, err := p.get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer p.put(inst, true)
	if b, ok := inst.mem.ReadByte(1024); !ok || b != 42 {
		t.Fatalf("byte at 1024 = %d, %v; the start function did not run", b, ok)
	}
}

// FuzzInstrument: every module that wazero compiles, and that defines a
// memory, still compiles once instrumented (with its two added globals and
// the checks, bulk instructions' included).
func FuzzInstrument(f *testing.F) {
	f.Add(wasmasm.Echo().Bytes())
	f.Add(wasmasm.StartLoop().Bytes())
	f.Add(wasmasm.Spinning().Bytes())
	f.Add(callTree(5).Bytes())
	f.Add(wasmasm.MemoryHog(2).Bytes())
	f.Add(wasmasm.FillLoop(2).Bytes())
	copyLoop := wasmasm.FillLoop(2) // memory.copy where the fill was
	copyLoop.Funcs[2].Body = bytes.Replace(copyLoop.Funcs[2].Body, []byte{0xfc, 0x0b, 0x00}, []byte{0xfc, 0x0a, 0x00, 0x00}, 1)
	f.Add(copyLoop.Bytes())
	loops := wasmasm.Echo()
	loops.Funcs = append(loops.Funcs, wasmasm.Loops(3, 4))
	f.Add(loops.Bytes())
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(false))
	f.Cleanup(func() { rt.Close(ctx) })
	f.Fuzz(func(t *testing.T, wasm []byte) {
		if len(wasm) > 1<<16 || len(wasm) < 8 || checkStructure(wasm) != nil {
			return
		}
		cm, err := compileRecovering(ctx, rt, wasm)
		if err != nil {
			// Refused, or wazero v1.12's validator panicked on it (it
			// does on some malformed bodies: testdata/fuzz/FuzzInstrument
			// holds one; the server reaches wazero only with the
			// instrumented bytes, under withRecover).
			return
		}
		defer cm.Close(ctx)
		hasMemory := len(cm.ExportedMemories()) > 0 || len(cm.ImportedMemories()) > 0
		out, err := instrument(wasm)
		if err != nil {
			if !hasMemory && strings.Contains(err.Error(), "no memory") {
				return
			}
			if strings.Contains(err.Error(), "reserved") {
				return
			}
			t.Fatalf("a module wazero compiles was refused: %v", err)
		}
		cm2, err := rt.CompileModule(ctx, out)
		if err != nil {
			t.Fatalf("instrumented module does not compile: %v", err)
		}
		cm2.Close(ctx)
	})
}

// withSections inserts raw sections (id, payload) into a module's binary
// in the order the format requires.
func withSections(t *testing.T, wasm []byte, add map[byte][]byte) []byte {
	t.Helper()
	out := append([]byte(nil), wasm[:8]...)
	put := func(id byte, p []byte) {
		out = append(out, id)
		out = binary.AppendUvarint(out, uint64(len(p)))
		out = append(out, p...)
	}
	r := &wreader{b: wasm, off: 8}
	for !r.done() {
		id := r.byte()
		n := r.len("section size")
		for _, a := range []byte{4, 9} {
			if p, ok := add[a]; ok && sectionRank(a) < sectionRank(id) {
				put(a, p)
				delete(add, a)
			}
		}
		put(id, r.b[r.off:r.off+n])
		r.off += n
	}
	if r.err != nil || len(add) > 0 {
		t.Fatalf("withSections: %v, %d left", r.err, len(add))
	}
	return out
}

// TestInstrumentMovesTableEntries: the preprocess export calls Echo's
// preprocess through a table filled by an element segment of the
// expression form (ref.func). If the rewrite did not move that index past
// the added import, the table would hold the wrong function and the call
// would trap on its type.
func TestInstrumentMovesTableEntries(t *testing.T) {
	m := wasmasm.Echo()
	// func 5: (param i32 i32 i32) (result i32)
	//   local.get 0..2; i32.const 0; call_indirect (type TyPre) (table 0)
	m.Funcs = append(m.Funcs, wasmasm.Func{Type: wasmasm.TyPre, Body: []byte{
		0x20, 0x00, 0x20, 0x01, 0x20, 0x02, 0x41, 0x00, 0x11, wasmasm.TyPre, 0x00}})
	for i := range m.Exports {
		if m.Exports[i].Name == "aiaas_preprocess" {
			m.Exports[i].Idx = 5
		}
	}
	wasm := withSections(t, m.Bytes(), map[byte][]byte{
		4: {0x01, 0x70, 0x00, 0x01}, // one funcref table, min 1
		// flag 4: active, table 0, offset (i32.const 0), vec(expr) [ref.func 3]
		9: {0x01, 0x04, 0x41, 0x00, 0x0b, 0x01, 0xd2, 0x03, 0x0b},
	})
	h := newHost(t, nil)
	in := safetensors.Encode(&safetensors.File{Tensors: []safetensors.Tensor{safetensors.F32("input", []int{1, 2}, []float32{1, 2})}})
	ts, err := h.Preprocess(context.Background(), "acme", moduleOf(wasm), "x", in)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := ts[0].Float32s(nil); len(v) != 2 || v[1] != 2 {
		t.Fatalf("echoed %v", ts)
	}
}

// compileRecovering compiles wasm, turning a panic of wazero's into an
// error.
func compileRecovering(ctx context.Context, rt wazero.Runtime, wasm []byte) (cm wazero.CompiledModule, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("wazero panicked: %v", r)
		}
	}()
	return rt.CompileModule(ctx, wasm)
}
