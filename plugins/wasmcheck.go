package plugins

import (
	"errors"
	"fmt"
)

// maxLocals bounds the locals of one function, as the JavaScript
// embedding of WebAssembly does (browsers refuse more); compilers emit a
// few hundred at most.
const maxLocals = 50_000

// checkStructure walks a module's binary layout before wazero decodes it:
// every section, and every count and length inside the sections, must fit
// in the bytes that follow it.
//
// wazero's decoder sizes its allocations by the counts it reads: a
// 17-byte module declaring an export section of 2^32-1 entries made it
// allocate gigabytes and spend 14 s of CPU (found by FuzzValidate in
// make soak); a name, a data segment or a function's locals can do the
// same. In any real module each element takes at least one byte, so a
// count larger than the bytes left is malformed, and refusing it costs
// nothing. The walk knows the WebAssembly 2.0 core binary format, which
// is what wazero runs by default (Go, TinyGo, Rust and AssemblyScript
// emit no more); anything else is refused here with the offset.
func checkStructure(wasm []byte) error {
	r := &wreader{b: wasm, off: 8}
	var cost uint64 // estimated compile cost of the functions so far
	for !r.done() {
		id := r.byte()
		size := r.len("section size")
		if r.err != nil {
			return r.err
		}
		sec := &wreader{b: r.b[:r.off+size], off: r.off}
		r.off += size
		switch id {
		case 0: // custom: a name, then any bytes
			sec.name()
		case 1: // type
			sec.vec("type", func() {
				if form := sec.byte(); form != 0x60 && sec.err == nil {
					sec.fail("function type form 0x%02x; want 0x60", form)
				}
				sec.vec("parameter", sec.valType)
				sec.vec("result", sec.valType)
			})
		case 2: // import
			sec.vec("import", func() {
				sec.name()
				sec.name()
				switch kind := sec.byte(); kind {
				case 0:
					sec.uint()
				case 1:
					sec.refType()
					sec.limits()
				case 2:
					sec.limits()
				case 3:
					sec.valType()
					sec.byte()
				default:
					sec.fail("import kind 0x%02x", kind)
				}
			})
		case 3: // function
			sec.vec("function", func() { sec.uint() })
		case 4: // table
			sec.vec("table", func() { sec.refType(); sec.limits() })
		case 5: // memory
			sec.vec("memory", sec.limits)
		case 6: // global
			sec.vec("global", func() { sec.valType(); sec.byte(); sec.constExpr() })
		case 7: // export
			sec.vec("export", func() { sec.name(); sec.byte(); sec.uint() })
		case 8: // start
			sec.uint()
		case 9: // element
			sec.vec("element segment", sec.elemSegment)
		case 10: // code
			sec.vec("function body", func() { sec.body(&cost) })
		case 11: // data
			sec.vec("data segment", func() {
				switch flag := sec.uint(); flag {
				case 0:
					sec.constExpr()
				case 1:
				case 2:
					sec.uint()
					sec.constExpr()
				default:
					sec.fail("data segment flag %d", flag)
				}
				sec.bytes("data segment")
			})
		case 12: // data count
			sec.uint()
		default:
			return fmt.Errorf("unknown section id %d at offset %d", id, r.off-size)
		}
		if sec.err != nil {
			return sec.err
		}
	}
	return r.err
}

// wreader reads a WebAssembly binary; the first error sticks, and every
// read after it returns zero.
type wreader struct {
	b   []byte
	off int
	err error
}

var errTruncated = errors.New("unexpected end")

func (r *wreader) done() bool { return r.err != nil || r.off >= len(r.b) }

func (r *wreader) fail(format string, a ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("offset %d: %s", r.off, fmt.Sprintf(format, a...))
	}
}

func (r *wreader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.fail("%v", errTruncated)
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

// leb reads an LEB128 number of at most maxBytes bytes, without
// interpreting it beyond 32 bits (signed constants are only skipped).
func (r *wreader) leb(maxBytes int) uint64 {
	var v uint64
	for i := 0; i < maxBytes; i++ {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		if i < 9 {
			v |= uint64(c&0x7f) << (7 * i)
		}
		if c&0x80 == 0 {
			return v
		}
	}
	r.fail("LEB128 number longer than %d bytes", maxBytes)
	return 0
}

func (r *wreader) uint() uint64 { return r.leb(5) }

// len reads a byte length and checks the bytes are there.
func (r *wreader) len(what string) int {
	n := r.uint()
	if r.err == nil && n > uint64(len(r.b)-r.off) {
		r.fail("%s %d exceeds the %d bytes left", what, n, len(r.b)-r.off)
		return 0
	}
	return int(n)
}

func (r *wreader) bytes(what string) {
	r.off += r.len(what + " length")
}

func (r *wreader) name() { r.bytes("name") }

// vec reads a count, checks that many elements can fit (each takes at
// least a byte), and reads each with elem.
func (r *wreader) vec(what string, elem func()) {
	n := r.uint()
	if r.err != nil {
		return
	}
	if n > uint64(len(r.b)-r.off) {
		r.fail("%s count %d exceeds the %d bytes left", what, n, len(r.b)-r.off)
		return
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		elem()
	}
}

func (r *wreader) valType() {
	switch t := r.byte(); t {
	case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f: // i32 i64 f32 f64 v128 funcref externref
	default:
		r.fail("value type 0x%02x", t)
	}
}

func (r *wreader) refType() {
	if t := r.byte(); t != 0x70 && t != 0x6f && r.err == nil {
		r.fail("reference type 0x%02x", t)
	}
}

func (r *wreader) limits() {
	switch flag := r.byte(); flag {
	case 0x00, 0x02:
		r.uint()
	case 0x01, 0x03:
		r.uint()
		r.uint()
	default:
		r.fail("limits flag 0x%02x", flag)
	}
}

// constExpr skips a constant expression: the 2.0 constant instructions
// and the extended-constant arithmetic, up to the end opcode.
func (r *wreader) constExpr() {
	for r.err == nil {
		at := r.off
		r.constExprOne()
		if r.err == nil && r.b[at] == 0x0b {
			return
		}
	}
}

func (r *wreader) skip(n int) {
	if r.err == nil && n > len(r.b)-r.off {
		r.fail("%v", errTruncated)
		return
	}
	r.off += n
}

func (r *wreader) elemSegment() {
	flag := r.uint()
	if r.err != nil {
		return
	}
	if flag > 7 {
		r.fail("element segment flag %d", flag)
		return
	}
	active, explicitTable, exprs := flag&1 == 0, flag&2 != 0, flag&4 != 0
	if active && explicitTable {
		r.uint() // table index
	}
	if active {
		r.constExpr()
	}
	if flag&3 != 0 { // an element kind or reference type follows
		if exprs {
			r.refType()
		} else if k := r.byte(); k != 0 && r.err == nil {
			r.fail("element kind 0x%02x", k)
		}
	}
	if exprs {
		r.vec("element", r.constExpr)
	} else {
		r.vec("element", func() { r.uint() })
	}
}

// Compile-cost budget. wazero's optimizing compiler builds SSA and
// allocates registers: measured here, its time grows with locals² ×
// blocks (5,000 locals live across 100 loops: 4.6 s; 2,000 across 200:
// 1.2 s) and with blocks × nesting depth (5,000 nested loops: 1 s). A
// valid 470 KB module compiled for 8.4 s before this check, a 1.9 MB one
// for two minutes. The estimate below is in units of about 2 ns; a
// function may cost maxFunctionCost (~1 s) and a module maxModuleCost
// (~5 s). Go plugins use under 1 % of both (TestCompileCostOfRealModules:
// at most 24 locals and 799 nested blocks a function).
//
// Apart from time, one shape stalls the whole process: locals live
// across nested loops. Each local read inside n nested loops becomes a
// value carried around each of them, and wazero's SSA builder resolves
// those in stretches the Go scheduler cannot preempt. While a
// garbage-collection worker waits to scan the compiling goroutine's
// stack, it spins on a processor of its own, so with two processors no
// other goroutine runs: 1,000 locals in 400 nested loops (400,000 values)
// stalled every other goroutine for up to 113 ms, 500 in 400 for 49 ms,
// and at 64,000 values the longest stall was 9–17 ms, the scheduler's
// usual slice (BenchmarkCompileStall). A function may carry at most
// maxLoopCarried values; Go plugins carry at most 24
// (TestCompileCostOfRealModules).
const (
	maxFunctionCost = 500_000_000
	maxModuleCost   = 2_500_000_000
	maxLoopCarried  = 65_536
)

// compileCost estimates the compile time of a function.
func compileCost(locals, blocks, depth uint64) uint64 {
	return locals*locals*blocks + 20*blocks*depth
}

// body checks a function body's size, its locals and its compile cost
// (added to *total); the instructions are wazero's to validate.
func (r *wreader) body(total *uint64) {
	size := r.len("function body size")
	if r.err != nil {
		return
	}
	b := &wreader{b: r.b[:r.off+size], off: r.off}
	r.off += size
	var locals uint64
	b.vec("local declaration", func() {
		locals += b.uint()
		b.valType()
		if locals > maxLocals && b.err == nil {
			b.fail("more than %d locals in one function", maxLocals)
		}
	})
	if b.err != nil {
		r.err = b.err
		return
	}
	blocks, depth, loops := b.countBlocks()
	cost := compileCost(locals, blocks, depth)
	*total += cost
	switch {
	case cost > maxFunctionCost:
		r.err = fmt.Errorf("%w: offset %d: a function of %d locals and %d blocks nested %d deep (estimated cost %d, limit %d)", errCompileCost, r.off, locals, blocks, depth, cost, maxFunctionCost)
	case *total > maxModuleCost:
		r.err = fmt.Errorf("%w: offset %d: the functions so far (estimated cost %d, limit %d)", errCompileCost, r.off, *total, maxModuleCost)
	case locals*loops > maxLoopCarried:
		r.err = fmt.Errorf("%w: offset %d: a function of %d locals inside %d nested loops (%d values carried around loops, limit %d)", errCompileCost, r.off, locals, loops, locals*loops, maxLoopCarried)
	}
}

// errCompileCost: a valid module that would take too long to compile.
var errCompileCost = errors.New("compiling it would take too long")

// countBlocks scans a function's instructions and counts block, loop and
// if, their deepest nesting, and the deepest nesting of loops alone. An
// opcode it does not know ends the scan (wazero validates the
// instructions; this only estimates cost), so all three are lower bounds.
func (r *wreader) countBlocks() (n, maxDepth, maxLoops uint64) {
	var open []bool // per open block, innermost last: whether it is a loop
	var loops uint64
	for !r.done() {
		op, known := r.instr()
		switch {
		case !known:
			return n, maxDepth, maxLoops
		case op == 0x02 || op == 0x03 || op == 0x04: // block, loop, if
			n++
			open = append(open, op == 0x03)
			maxDepth = max(maxDepth, uint64(len(open)))
			if op == 0x03 {
				loops++
				maxLoops = max(maxLoops, loops)
			}
		case op == 0x0b && len(open) > 0: // end
			if open[len(open)-1] {
				loops--
			}
			open = open[:len(open)-1]
		}
	}
	return n, maxDepth, maxLoops
}

// instr reads one instruction with its immediates and returns its opcode
// (the prefix byte for 0xfc and 0xfd). known is false for an opcode
// outside the WebAssembly 2.0 core set, whose immediates it cannot skip.
func (r *wreader) instr() (op byte, known bool) {
	op = r.byte()
	switch {
	case op == 0x02 || op == 0x03 || op == 0x04: // block, loop, if
		r.blockType()
	case op == 0x0c || op == 0x0d: // br, br_if
		r.uint()
	case op == 0x0e: // br_table
		r.vec("br_table label", func() { r.uint() })
		r.uint()
	case op == 0x10: // call
		r.uint()
	case op == 0x11: // call_indirect
		r.uint()
		r.uint()
	case op == 0x1c: // select t*
		r.vec("select type", r.valType)
	case op >= 0x20 && op <= 0x26: // local.*, global.*, table.get/set
		r.uint()
	case op >= 0x28 && op <= 0x3e: // loads and stores: memarg
		r.uint()
		r.uint()
	case op == 0x3f || op == 0x40: // memory.size, memory.grow
		r.byte()
	case op == 0x41: // i32.const
		r.leb(5)
	case op == 0x42: // i64.const
		r.leb(10)
	case op == 0x43:
		r.skip(4)
	case op == 0x44:
		r.skip(8)
	case op == 0xd0: // ref.null
		r.byte()
	case op == 0xd2: // ref.func
		r.uint()
	case op == 0xfc:
		return op, r.miscImmediates(r.uint())
	case op == 0xfd:
		return op, r.simdImmediates(r.uint())
	case op <= 0x01 || op == 0x05 || op == 0x0b || op == 0x0f || op == 0x1a || op == 0x1b || (op >= 0x45 && op <= 0xc4) || op == 0xd1:
		// no immediates: unreachable, nop, else, end, return, drop,
		// select, numeric, ref.is_null
	default:
		return op, false
	}
	return op, true
}

// blockType skips a block type: empty (0x40), a value type, or a type
// index (a signed LEB128).
func (r *wreader) blockType() {
	if r.off < len(r.b) {
		switch c := r.b[r.off]; {
		case c == 0x40 || (c >= 0x6f && c <= 0x7f):
			r.off++
			return
		}
	}
	r.leb(5)
}

// miscImmediates skips the immediates of 0xfc sub; false for one it does
// not know.
func (r *wreader) miscImmediates(sub uint64) bool {
	switch {
	case sub <= 7: // trunc_sat
	case sub == 8: // memory.init
		r.uint()
		r.byte()
	case sub == 9 || sub == 13 || sub == 15 || sub == 16 || sub == 17: // data.drop, elem.drop, table.grow/size/fill
		r.uint()
	case sub == 10: // memory.copy
		r.byte()
		r.byte()
	case sub == 11: // memory.fill
		r.byte()
	case sub == 12 || sub == 14: // table.init, table.copy
		r.uint()
		r.uint()
	default:
		return false
	}
	return true
}

// simdImmediates skips the immediates of 0xfd sub; false for one it does
// not know.
func (r *wreader) simdImmediates(sub uint64) bool {
	switch {
	case sub <= 11 || sub == 92 || sub == 93: // loads, stores: memarg
		r.uint()
		r.uint()
	case sub == 12 || sub == 13: // v128.const, i8x16.shuffle
		r.skip(16)
	case sub >= 21 && sub <= 34: // extract/replace lane
		r.byte()
	case sub >= 84 && sub <= 91: // load/store lane: memarg, lane
		r.uint()
		r.uint()
		r.byte()
	case sub <= 0xff: // the rest of SIMD has no immediates
	default:
		return false
	}
	return true
}
