// Package wasmasm is a tiny WebAssembly assembler for hand-made test
// modules: hostile ones (forbidden imports, a start function that loops,
// compile bombs, wrong signatures) and a plugin written without any
// toolchain (the "non-Go plugin" of the docs). The plugin host's unit
// tests and the end-to-end hardening tests build their modules with it.
//
// It is for tests only: it checks nothing, so it can write the malformed
// modules the tests need.
package wasmasm

import (
	"encoding/binary"

	"github.com/aiaas/aiaas/internal/leb128"
)

// Value types.
const (
	I32 = 0x7f
	F32 = 0x7d
)

// ULEB is v as unsigned LEB128.
func ULEB(v uint32) []byte { return binary.AppendUvarint(nil, uint64(v)) }

func wstr(s string) []byte { return append(ULEB(uint32(len(s))), s...) }

func vec(items ...[]byte) []byte {
	out := ULEB(uint32(len(items)))
	for _, it := range items {
		out = append(out, it...)
	}
	return out
}

func section(id byte, payload []byte) []byte {
	return append(append([]byte{id}, ULEB(uint32(len(payload)))...), payload...)
}

// FuncType encodes a function type.
func FuncType(params, results []byte) []byte {
	out := []byte{0x60}
	out = append(out, ULEB(uint32(len(params)))...)
	out = append(out, params...)
	out = append(out, ULEB(uint32(len(results)))...)
	return append(out, results...)
}

// Import is a function import.
type Import struct {
	Mod, Name string
	Type      uint32
}

// Export is an export of a function (Kind 0) or a memory (Kind 2).
type Export struct {
	Name string
	Kind byte
	Idx  uint32
}

// Func is a function.
type Func struct {
	Type   uint32
	Body   []byte // instructions, without locals and final end
	Locals uint32 // i32 locals declared
}

// Module is a module; Bytes encodes it.
type Module struct {
	Types   [][]byte
	Imports []Import
	Funcs   []Func
	Exports []Export
	Start   *uint32
	Memory  bool // one memory of one page
}

// Bytes is the module's binary encoding.
func (m Module) Bytes() []byte {
	out := []byte("\x00asm\x01\x00\x00\x00")
	out = append(out, section(1, vec(m.Types...))...)
	if len(m.Imports) > 0 {
		var im [][]byte
		for _, i := range m.Imports {
			e := append(wstr(i.Mod), wstr(i.Name)...)
			e = append(e, 0x00)
			im = append(im, append(e, ULEB(i.Type)...))
		}
		out = append(out, section(2, vec(im...))...)
	}
	var fs [][]byte
	for _, f := range m.Funcs {
		fs = append(fs, ULEB(f.Type))
	}
	out = append(out, section(3, vec(fs...))...)
	if m.Memory {
		out = append(out, section(5, vec([]byte{0x00, 0x01}))...)
	}
	var ex [][]byte
	for _, e := range m.Exports {
		ex = append(ex, append(append(wstr(e.Name), e.Kind), ULEB(e.Idx)...))
	}
	out = append(out, section(7, vec(ex...))...)
	if m.Start != nil {
		out = append(out, section(8, ULEB(*m.Start))...)
	}
	var code [][]byte
	for _, f := range m.Funcs {
		body := []byte{0x00} // no locals
		if f.Locals > 0 {
			body = append(append([]byte{0x01}, ULEB(f.Locals)...), 0x7f)
		}
		body = append(body, f.Body...)
		body = append(body, 0x0b)
		code = append(code, append(ULEB(uint32(len(body))), body...))
	}
	return append(out, section(10, vec(code...))...)
}

// Type indexes of ABITypes.
const (
	TyABI   = 0 // () -> i32
	TyAlloc = 1 // (i32) -> i32
	TyPre   = 2 // (i32 i32 i32) -> i32
	TyPair  = 3 // (i32 i32) -> i32
	TyVoid  = 4 // () -> ()
)

// ABITypes are the function types of the plugin ABI v1.
var ABITypes = [][]byte{
	FuncType(nil, []byte{I32}),
	FuncType([]byte{I32}, []byte{I32}),
	FuncType([]byte{I32, I32, I32}, []byte{I32}),
	FuncType([]byte{I32, I32}, []byte{I32}),
	FuncType(nil, nil),
}

// LoopIdx is the index of Echo's function that spins forever.
const LoopIdx = 4

// Echo is a complete ABI v1 preprocess plugin in 150 bytes: its input
// buffer is fixed at address 1024, and it returns the request body
// unchanged as its output (so the body must be safetensors). Function 0
// is the import aiaas_v1.set_output; function LoopIdx spins forever and is
// exported by nothing.
//
//	(func $abi (result i32) i32.const 1)
//	(func $alloc (param i32) (result i32) i32.const 1024)
//	(func $pre (param $p i32) (param $ct i32) (param $n i32) (result i32)
//	  (drop (call $set_output (i32.add (local.get $p) (local.get $ct)) (local.get $n)))
//	  i32.const 0)
func Echo() Module {
	return Module{
		Types:   ABITypes,
		Imports: []Import{{"aiaas_v1", "set_output", TyPair}},
		Funcs: []Func{
			{Type: TyABI, Body: []byte{0x41, 0x01}},
			{Type: TyAlloc, Body: []byte{0x41, 0x80, 0x08}},
			{Type: TyPre, Body: []byte{0x20, 0x00, 0x20, 0x01, 0x6a, 0x20, 0x02, 0x10, 0x00, 0x1a, 0x41, 0x00}},
			{Type: TyVoid, Body: []byte{0x03, 0x40, 0x0c, 0x00, 0x0b}}, // loop br 0 end: spins forever
		},
		Exports: []Export{
			{"memory", 2, 0},
			{"aiaas_abi_v1", 0, 1},
			{"aiaas_alloc", 0, 2},
			{"aiaas_preprocess", 0, 3},
		},
		Memory: true,
	}
}

// StartLoop is Echo whose start function spins forever: instantiating
// it never returns, so the host refuses it at its init deadline.
func StartLoop() Module {
	m := Echo()
	start := uint32(LoopIdx)
	m.Start = &start
	return m
}

// Loops is a function of type TyPre built to make a compiler work: n
// nested loops around an update of each of its locals, which all live
// across every loop.
func Loops(locals, n int) Func {
	var body []byte
	for range n {
		body = append(body, 0x03, 0x40) // loop
	}
	for i := range locals {
		body = append(body, 0x20) // local.get i; i32.const 1; i32.add; local.set i
		body = append(body, ULEB(uint32(i+3))...)
		body = append(body, 0x41, 0x01, 0x6a, 0x21)
		body = append(body, ULEB(uint32(i+3))...)
	}
	for range n {
		body = append(body, 0x0b)
	}
	return Func{Type: TyPre, Locals: uint32(locals), Body: append(body, 0x41, 0x00)}
}

// Spinning is Echo whose preprocess spins forever: every call runs until
// the host's call deadline stops it, holding a guest slot meanwhile.
func Spinning() Module {
	m := Echo()
	m.Funcs[2].Body = []byte{0x03, 0x40, 0x0c, 0x00, 0x0b, 0x41, 0x00} // loop br 0 end; i32.const 0
	return m
}

// FillLoop is Echo whose preprocess grows its memory to pages 64 KiB
// pages and then, forever, writes all of it past the first page again:
// one memory.fill per loop iteration, each as long as the memory.
//
//	(drop (memory.grow (i32.sub (i32.const pages) (memory.size))))
//	(loop (memory.fill (i32.const 65536) (i32.const 1) (i32.const (pages-1)*65536)) (br 0))
//	(i32.const 0)
func FillLoop(pages uint32) Module {
	m := Echo()
	body := growTo(pages)
	body = append(body, 0x03, 0x40, 0x41) // loop; i32.const 65536
	body = append(body, SLEB(65536)...)
	body = append(body, 0x41, 0x01, 0x41)
	body = append(body, SLEB(int32(pages-1)*65536)...)
	body = append(body, 0xfc, 0x0b, 0x00)             // memory.fill 0
	body = append(body, 0x0c, 0x00, 0x0b, 0x41, 0x00) // br 0; end; i32.const 0
	m.Funcs[2].Body = body
	return m
}

// growTo is (drop (memory.grow (i32.sub (i32.const pages) (memory.size)))):
// the memory grown to pages 64 KiB pages.
func growTo(pages uint32) []byte {
	body := append([]byte{0x41}, SLEB(int32(pages))...)
	return append(body, 0x3f, 0x00, 0x6b, 0x40, 0x00, 0x1a) // memory.size; i32.sub; memory.grow 0; drop
}

// SLEB is v as signed LEB128 (the immediate of i32.const).
func SLEB(v int32) []byte { return leb128.AppendSigned(nil, int64(v)) }

// MemoryHog is Echo whose preprocess first grows its memory to pages
// 64 KiB pages and writes all of it past the first page (memory.fill), so
// the instance really holds that memory, then echoes as Echo does. An
// instance kept for later calls keeps it: the idle memory a tenant's
// plugins can hold.
//
//	(drop (memory.grow (i32.sub (i32.const pages) (memory.size))))
//	(memory.fill (i32.const 65536) (i32.const 1) (i32.const (pages-1)*65536))
//	…Echo's preprocess
func MemoryHog(pages uint32) Module {
	m := Echo()
	body := growTo(pages)
	body = append(body, 0x41)
	body = append(body, SLEB(65536)...)
	body = append(body, 0x41, 0x01, 0x41)
	body = append(body, SLEB(int32(pages-1)*65536)...)
	body = append(body, 0xfc, 0x0b, 0x00) // memory.fill 0
	m.Funcs[2].Body = append(body, m.Funcs[2].Body...)
	return m
}
