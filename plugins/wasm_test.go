package plugins

// A tiny WebAssembly assembler for hand-made test modules: hostile ones
// (forbidden imports, a start function that loops, wrong signatures) and a
// plugin written without any toolchain (the "non-Go plugin" of the docs).

const (
	tI32 = 0x7f
	tF32 = 0x7d
)

func uleb(v uint32) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

func wstr(s string) []byte { return append(uleb(uint32(len(s))), s...) }

func vec(items ...[]byte) []byte {
	out := uleb(uint32(len(items)))
	for _, it := range items {
		out = append(out, it...)
	}
	return out
}

func section(id byte, payload []byte) []byte {
	return append(append([]byte{id}, uleb(uint32(len(payload)))...), payload...)
}

func functype(params, results []byte) []byte {
	out := []byte{0x60}
	out = append(out, uleb(uint32(len(params)))...)
	out = append(out, params...)
	out = append(out, uleb(uint32(len(results)))...)
	return append(out, results...)
}

type wimport struct {
	mod, name string
	typ       uint32
}

type wexport struct {
	name string
	kind byte // 0 func, 2 memory
	idx  uint32
}

type wfunc struct {
	typ    uint32
	body   []byte // instructions, without locals and final end
	locals uint32 // i32 locals declared
}

type wmodule struct {
	types   [][]byte
	imports []wimport
	funcs   []wfunc
	exports []wexport
	start   *uint32
	memory  bool
}

func (m wmodule) bytes() []byte {
	out := []byte("\x00asm\x01\x00\x00\x00")
	out = append(out, section(1, vec(m.types...))...)
	if len(m.imports) > 0 {
		var im [][]byte
		for _, i := range m.imports {
			e := append(wstr(i.mod), wstr(i.name)...)
			e = append(e, 0x00)
			im = append(im, append(e, uleb(i.typ)...))
		}
		out = append(out, section(2, vec(im...))...)
	}
	var fs [][]byte
	for _, f := range m.funcs {
		fs = append(fs, uleb(f.typ))
	}
	out = append(out, section(3, vec(fs...))...)
	if m.memory {
		out = append(out, section(5, vec([]byte{0x00, 0x01}))...)
	}
	var ex [][]byte
	for _, e := range m.exports {
		ex = append(ex, append(append(wstr(e.name), e.kind), uleb(e.idx)...))
	}
	out = append(out, section(7, vec(ex...))...)
	if m.start != nil {
		out = append(out, section(8, uleb(*m.start))...)
	}
	var code [][]byte
	for _, f := range m.funcs {
		body := []byte{0x00} // no locals
		if f.locals > 0 {
			body = append(append([]byte{0x01}, uleb(f.locals)...), 0x7f)
		}
		body = append(body, f.body...)
		body = append(body, 0x0b)
		code = append(code, append(uleb(uint32(len(body))), body...))
	}
	return append(out, section(10, vec(code...))...)
}

// Type indexes of abiTypes.
const (
	tyABI   = 0 // () -> i32
	tyAlloc = 1 // (i32) -> i32
	tyPre   = 2 // (i32 i32 i32) -> i32
	tyPair  = 3 // (i32 i32) -> i32
	tyVoid  = 4 // () -> ()
)

var abiTypes = [][]byte{
	functype(nil, []byte{tI32}),
	functype([]byte{tI32}, []byte{tI32}),
	functype([]byte{tI32, tI32, tI32}, []byte{tI32}),
	functype([]byte{tI32, tI32}, []byte{tI32}),
	functype(nil, nil),
}

// echoModule is a complete ABI v1 preprocess plugin in 150 bytes: its
// input buffer is fixed at address 1024, and it returns the request body
// unchanged as its output (so the body must be safetensors). Function 0
// is the import aiaas_v1.set_output.
//
//	(func $abi (result i32) i32.const 1)
//	(func $alloc (param i32) (result i32) i32.const 1024)
//	(func $pre (param $p i32) (param $ct i32) (param $n i32) (result i32)
//	  (drop (call $set_output (i32.add (local.get $p) (local.get $ct)) (local.get $n)))
//	  i32.const 0)
func echoModule() wmodule {
	return wmodule{
		types:   abiTypes,
		imports: []wimport{{"aiaas_v1", "set_output", tyPair}},
		funcs: []wfunc{
			{typ: tyABI, body: []byte{0x41, 0x01}},
			{typ: tyAlloc, body: []byte{0x41, 0x80, 0x08}},
			{typ: tyPre, body: []byte{0x20, 0x00, 0x20, 0x01, 0x6a, 0x20, 0x02, 0x10, 0x00, 0x1a, 0x41, 0x00}},
			{typ: tyVoid, body: []byte{0x03, 0x40, 0x0c, 0x00, 0x0b}}, // loop br 0 end: spins forever
		},
		exports: []wexport{
			{"memory", 2, 0},
			{"aiaas_abi_v1", 0, 1},
			{"aiaas_alloc", 0, 2},
			{"aiaas_preprocess", 0, 3},
		},
		memory: true,
	}
}
