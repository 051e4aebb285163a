package plugins

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aiaas/aiaas/internal/wasmasm"
)

// Modules of a few bytes that declare huge counts or lengths. wazero
// allocates by the declared size: the first (found by FuzzValidate in
// make soak) took 14 s and gigabytes before this check. Each must now be
// refused at once, naming the count, with next to no allocation.
func TestAllocationBombsRefused(t *testing.T) {
	const hdr = "\x00asm\x01\x00\x00\x00"
	max32 := "\xff\xff\xff\xff\x0f"
	for _, c := range []struct{ name, wasm, want string }{
		// The fuzz find: an export section of 48 bytes with 8 left, whose
		// count wazero read as 2^32-ish, past the section's end.
		{"the fuzz find", hdr + "\x070\xac\xac\xac00000", "section size 48 exceeds the 8 bytes left"},
		{"export count 2^32-1", hdr + "\x07\x05" + max32, "export count 4294967295"},
		{"import count", hdr + "\x02\x05" + max32, "import count"},
		{"type count", hdr + "\x01\x05" + max32, "type count"},
		{"function count", hdr + "\x03\x05" + max32, "function count"},
		{"global count", hdr + "\x06\x05" + max32, "global count"},
		{"table count", hdr + "\x04\x05" + max32, "table count"},
		{"element segments", hdr + "\x09\x05" + max32, "element segment count"},
		{"code count", hdr + "\x0a\x05" + max32, "function body count"},
		{"data count", hdr + "\x0b\x05" + max32, "data segment count"},
		{"parameter count", hdr + "\x01\x08\x01\x60" + max32 + "\x00", "parameter count"},
		{"export name length", hdr + "\x07\x07\x01" + max32 + "\x00", "name length 4294967295"},
		{"custom name length", hdr + "\x00\x05" + max32, "name length"},
		{"data bytes", hdr + "\x0b\x08\x01\x01" + max32 + "\x00", "data segment length"},
		{"element indices", hdr + "\x09\x08\x01\x01\x00" + max32, "element count"},
		{"locals", hdr + "\x0a\x0c\x01\x0a\x02" + max32 + "\x7f" + "\x01\x7f\x0b", "more than 50000 locals"},
		{"section size", hdr + "\x01" + max32, "section size"},
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		t0 := time.Now()
		err := checkStructure([]byte(c.wasm))
		d := time.Since(t0)
		runtime.ReadMemStats(&after)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<10 {
			t.Errorf("%s: checking allocated %d bytes", c.name, grew)
		}
		t.Logf("%s: %v in %v", c.name, err, d)
	}
	// Through Validate, the fuzz find is an ordinary invalid module.
	h := newHost(t, nil)
	_, err := h.Validate(context.Background(), []byte(hdr+"\x070\xac\xac\xac00000"))
	if !errors.Is(err, ErrInvalidModule) || !strings.Contains(err.Error(), "malformed binary") {
		t.Fatalf("Validate: %v", err)
	}
}

// Every module the tests build, from Go, the test assembler and
// AssemblyScript's output shape, passes the walk: it refuses nothing
// wazero would run.
func TestStructureAcceptsRealModules(t *testing.T) {
	mods := map[string][]byte{"echo": wasmasm.Echo().Bytes()}
	for name, b := range built {
		mods[name] = b
	}
	m := wasmasm.Echo()
	loop := uint32(4)
	m.Start = &loop
	mods["echo with start"] = m.Bytes()
	for name, b := range mods {
		if err := checkStructure(b); err != nil {
			t.Errorf("%s (%d bytes): %v", name, len(b), err)
		}
	}
}

// FuzzStructure: the walk never panics or reads out of bounds, whatever
// the bytes (FuzzValidate then runs accepted modules through wazero).
func FuzzStructure(f *testing.F) {
	f.Add(wasmasm.Echo().Bytes())
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x070\xac\xac\xac00000"))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x0a\x0c\x01\x0a\x02\xff\xff\xff\xff\x0f\x7f\x01\x7f\x0b"))
	f.Fuzz(func(t *testing.T, wasm []byte) {
		if len(wasm) < 8 {
			return
		}
		_ = checkStructure(wasm)
	})
}

// functionCosts returns the estimated compile cost of every function in
// wasm, and the most values one of them carries around loops.
func functionCosts(t *testing.T, wasm []byte) (costs []uint64, carried uint64) {
	t.Helper()
	r := &wreader{b: wasm, off: 8}
	for !r.done() {
		id := r.byte()
		size := r.len("section size")
		sec := &wreader{b: r.b[:r.off+size], off: r.off}
		r.off += size
		if id != 10 {
			continue
		}
		sec.vec("function body", func() {
			n := sec.len("function body size")
			b := &wreader{b: sec.b[:sec.off+n], off: sec.off}
			sec.off += n
			var locals uint64
			b.vec("local declaration", func() { locals += b.uint(); b.valType() })
			blocks, depth, loops := b.countBlocks()
			costs = append(costs, compileCost(locals, blocks, depth))
			carried = max(carried, locals*loops)
		})
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	return costs, carried
}

// The bound on values carried around loops counts loops only: blocks
// and ifs around them do not carry values.
func TestLoopCarriedCountsLoops(t *testing.T) {
	fits := wasmasm.Loops(163, 400) // 65,200
	m := wasmasm.Echo()
	m.Funcs = append(m.Funcs, fits)
	if err := checkStructure(m.Bytes()); err != nil {
		t.Fatalf("163 locals inside 400 loops: %v", err)
	}
	over := wasmasm.Loops(164, 400) // 65,600
	m = wasmasm.Echo()
	m.Funcs = append(m.Funcs, over)
	if err := checkStructure(m.Bytes()); !errors.Is(err, errCompileCost) || !strings.Contains(err.Error(), "164 locals inside 400 nested loops") {
		t.Fatalf("164 locals inside 400 loops: %v", err)
	}
	// The same nesting made of blocks (0x02) instead of loops carries
	// nothing around loops.
	over.Body = bytes.ReplaceAll(over.Body[:800], []byte{0x03, 0x40}, []byte{0x02, 0x40})
	over.Body = append(over.Body, wasmasm.Loops(164, 400).Body[800:]...)
	m = wasmasm.Echo()
	m.Funcs = append(m.Funcs, over)
	if err := checkStructure(m.Bytes()); err != nil {
		t.Fatalf("164 locals inside 400 blocks: %v", err)
	}
}

// Go plugins, with their runtime, stay far below the compile-cost limits.
func TestCompileCostOfRealModules(t *testing.T) {
	for name, wasm := range built {
		costs, carried := functionCosts(t, wasm)
		var sum uint64
		for _, c := range costs {
			sum += c
		}
		top := slices.Max(costs)
		t.Logf("%s: %d functions, the costliest %d (limit %d), all %d (limit %d), at most %d values carried around loops (limit %d)", name, len(costs), top, maxFunctionCost, sum, maxModuleCost, carried, maxLoopCarried)
		if top > maxFunctionCost/20 || sum > maxModuleCost/20 || carried > maxLoopCarried/20 {
			t.Errorf("%s: within 20× of the compile-cost limits", name)
		}
	}
}

// Valid modules built to make the compiler work for seconds are refused
// before compiling: locals live across loops, deep nesting, and many
// functions each under the limit.
func TestCompileBombRefused(t *testing.T) {
	loops := wasmasm.Loops
	var many []wasmasm.Func
	for range 200 {
		many = append(many, loops(160, 400)) // 13.4e6 each, 64,000 carried: under the function limits
	}
	for _, c := range []struct {
		name string
		f    []wasmasm.Func
		want string
	}{
		{"5,000 locals across 100 loops", []wasmasm.Func{loops(5000, 100)}, "5000 locals and 100 blocks"},
		{"6,000 nested loops", []wasmasm.Func{loops(0, 6000)}, "6000 blocks nested 6000 deep"},
		{"1,000 locals inside 400 nested loops", []wasmasm.Func{loops(1000, 400)}, "1000 locals inside 400 nested loops (400000 values carried around loops, limit 65536)"},
		{"many costly functions", many, "the functions so far"},
	} {
		m := wasmasm.Echo()
		m.Funcs = append(m.Funcs, c.f...)
		h := newHost(t, nil)
		start := time.Now()
		_, err := h.Validate(context.Background(), m.Bytes())
		if !errors.Is(err, ErrInvalidModule) || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: %v", c.name, err)
		}
		t.Logf("%s: refused in %v: %v", c.name, time.Since(start), err)
	}
}
