package plugins

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"

	"github.com/tetratelabs/wazero/api"

	"github.com/aiaas/aiaas/internal/leb128"
	"github.com/aiaas/aiaas/sdk/plugin"
)

// How a guest is stopped at its deadline, and how it shares the
// processors.
//
// Compiled guest code cannot be pre-empted by Go: it has to come back to
// Go on its own, so that a call can be stopped at its deadline, so that
// the Go runtime can stop the world for a collection, and so that other
// goroutines get the processor. wazero's own mechanism
// (RuntimeConfig.WithCloseOnContextDone) leaves native code for Go at every
// loop iteration and starts a goroutine per call. A Go-built guest enters
// a loop at nearly every function call (its wasm code is a resumable loop
// per function), so those exits cost more than the plugin's own work
// (BENCHMARKS.md, "Plugin calls with the interrupt rewrite").
//
// Instead, each module is rewritten before it is compiled. It gains a
// mutable i32 global, the budget, and an import of the host function
// yieldImport, and at the start of every function and of every loop body
// a check that charges the budget the size of the code it guards (the
// function's or the loop's bytes: what can run before the next check).
// When the budget runs out, the check refills it and calls yield: a call
// into Go, so a point where the world can stop, which every yield.Every
// also lets other goroutines run (and every yield.PollEvery has the
// scheduler poll the network: with every processor running a guest, Go
// would read new requests only every 10 ms) and which answers
// whether the call's context has ended; if it has, the guest traps
// (unreachable). So at most ~interruptBudget bytes of guest
// code run between two exits whatever the loop or call shape (a loop-free
// tree of calls is charged at every call, which wazero's loop-only check
// did not cover), a guest that spins gives up its processor every
// yield.Every instead of when Go's scheduler takes it (10 ms), and a tight
// loop pays a few instructions per iteration.
//
// The import is appended after the module's own imports, so every
// function index at or past it moves up by one: calls, ref.func,
// exports, element segments, constant expressions and the name section
// are rewritten to match.
//
// A start function would run inside instantiation, before the host can
// give it a deadline, so the start section is removed and its function
// exported as startExport: the host calls it first, under the init
// deadline, exactly where instantiation would have. A module exporting
// that name itself is refused.
const (
	startExport = "aiaas:start"
	yieldImport = "aiaas:yield"
)

// interruptBudget is how many bytes of guest code may run between two
// exits to the host (about a millisecond at most; a tight loop of 20
// bytes exits once in 50,000 iterations).
const interruptBudget = 1 << 20

// hostYield is the host side of the check (in the aiaas_v1 module as
// yieldImport): "() -> i32", non-zero when the call must stop. Its
// call is a point where the world can stop; every yield.Every of a call
// it also lets other goroutines run.
func hostYield(ctx context.Context, _ api.Module, stack []uint64) {
	if st := stateOf(ctx); st == nil {
		runtime.Gosched()
	} else {
		st.yield.Maybe()
	}
	stack[0] = 0
	if ctx.Err() != nil {
		stack[0] = 1
	}
}

// rewriter moves function indices past the added import.
type rewriter struct {
	imported uint64 // the module's function imports: the new import's index
}

func (w *rewriter) fn(x uint64) uint64 {
	if x >= w.imported {
		return x + 1
	}
	return x
}

// instrument returns wasm with the budget, the yield import and the
// checks added. The module must already have passed checkStructure; an
// instruction outside the WebAssembly 2.0 core set is refused here, since
// its immediates cannot be skipped.
func instrument(wasm []byte) ([]byte, error) {
	type section struct {
		id      byte
		payload []byte
	}
	var secs []section
	r := &wreader{b: wasm, off: 8}
	for !r.done() {
		id := r.byte()
		size := r.len("section size")
		if r.err != nil {
			break
		}
		secs = append(secs, section{id, r.b[r.off : r.off+size]})
		r.off += size
	}
	if r.err != nil {
		return nil, r.err
	}

	var types, globals uint64
	var start []byte // the start section's payload: a function index
	memory := false
	w := &rewriter{}
	for _, s := range secs {
		sr := &wreader{b: s.payload}
		switch s.id {
		case 1:
			types = sr.uint()
		case 2:
			sr.vec("import", func() {
				sr.name()
				sr.name()
				switch kind := sr.byte(); kind {
				case 0:
					sr.uint()
					w.imported++
				case 1:
					sr.refType()
					sr.limits()
				case 2:
					sr.limits()
					memory = true
				case 3:
					sr.valType()
					sr.byte()
					globals++
				default:
					sr.fail("import kind 0x%02x", kind)
				}
			})
		case 5:
			memory = memory || sr.uint() > 0
		case 6:
			globals += sr.uint()
		case 7:
			sr.vec("export", func() {
				n := sr.len("name length")
				if sr.err == nil && string(sr.b[sr.off:sr.off+n]) == startExport {
					sr.fail("export name %q is reserved by the host", startExport)
				}
				sr.off += n
				sr.byte()
				sr.uint()
			})
		case 8:
			start = s.payload
		}
		if sr.err != nil {
			return nil, sr.err
		}
	}
	if !memory {
		return nil, errors.New("the module defines no memory; plugins must define and export their own")
	}
	ck := check{budget: binary.AppendUvarint(nil, globals), scratch: binary.AppendUvarint(nil, globals+1), yield: binary.AppendUvarint(nil, w.imported)}

	// The added pieces: the yield type, the import, the budget and
	// scratch globals, the start export.
	yieldType := []byte{0x60, 0x00, 0x01, 0x7f} // () -> i32
	importEntry := func(p []byte) []byte {
		p = binary.AppendUvarint(p, uint64(len(plugin.HostModule)))
		p = append(p, plugin.HostModule...)
		p = binary.AppendUvarint(p, uint64(len(yieldImport)))
		p = append(p, yieldImport...)
		p = append(p, 0x00)
		return binary.AppendUvarint(p, types)
	}
	budgetGlobal := leb128.AppendSigned([]byte{0x7f, 0x01, 0x41}, interruptBudget)
	budgetGlobal = append(budgetGlobal, 0x0b)
	budgetGlobal = append(budgetGlobal, 0x7f, 0x01, 0x41, 0x00, 0x0b) // the scratch global: mut i32 = 0
	startEntry := func(p []byte) ([]byte, error) {
		sr := &wreader{b: start}
		x := sr.uint()
		if sr.err != nil {
			return nil, sr.err
		}
		p = binary.AppendUvarint(p, uint64(len(startExport)))
		p = append(p, startExport...)
		p = append(p, 0x00)
		return binary.AppendUvarint(p, w.fn(x)), nil
	}

	out := make([]byte, 0, len(wasm)+len(wasm)/4+64)
	out = append(out, wasm[:8]...)
	emit := func(id byte, payload []byte) {
		out = append(out, id)
		out = binary.AppendUvarint(out, uint64(len(payload)))
		out = append(out, payload...)
	}
	done := map[byte]bool{}
	// missing emits the added sections the module lacks that go before
	// a section of the given rank.
	missing := func(rank int) error {
		for _, id := range []byte{1, 2, 6, 7} {
			if done[id] || sectionRank(id) >= rank || (id == 7 && start == nil) {
				continue
			}
			done[id] = true
			switch id {
			case 1:
				emit(1, append([]byte{0x01}, yieldType...))
			case 2:
				emit(2, importEntry([]byte{0x01}))
			case 6:
				emit(6, append([]byte{0x02}, budgetGlobal...))
			case 7:
				p, err := startEntry([]byte{0x01})
				if err != nil {
					return err
				}
				emit(7, p)
			}
		}
		return nil
	}
	for _, s := range secs {
		if s.id != 0 { // custom sections may sit anywhere
			if err := missing(sectionRank(s.id)); err != nil {
				return nil, err
			}
		}
		sr := &wreader{b: s.payload}
		var p []byte
		switch s.id {
		case 0:
			if p = w.customSection(s.payload); p == nil {
				continue // a name section that does not parse is dropped
			}
		case 1:
			n := sr.uint()
			p = append(binary.AppendUvarint(nil, n+1), s.payload[sr.off:]...)
			p = append(p, yieldType...)
		case 2:
			n := sr.uint()
			p = append(binary.AppendUvarint(nil, n+1), s.payload[sr.off:]...)
			p = importEntry(p)
		case 6:
			n := sr.uint()
			p = binary.AppendUvarint(nil, n+2)
			for i := uint64(0); i < n && sr.err == nil; i++ {
				at := sr.off
				sr.valType()
				sr.byte()
				p = append(p, sr.b[at:sr.off]...)
				p = w.constExpr(sr, p)
			}
			p = append(p, budgetGlobal...)
		case 7:
			n := sr.uint()
			extra := uint64(0)
			if start != nil {
				extra = 1
			}
			p = binary.AppendUvarint(nil, n+extra)
			for i := uint64(0); i < n && sr.err == nil; i++ {
				at := sr.off
				sr.name()
				kind := sr.byte()
				p = append(p, sr.b[at:sr.off]...)
				x := sr.uint()
				if kind == 0 {
					x = w.fn(x)
				}
				p = binary.AppendUvarint(p, x)
			}
			if start != nil {
				var err error
				if p, err = startEntry(p); err != nil {
					return nil, err
				}
			}
		case 8:
			// Removed: exported as startExport, called by the host.
		case 9:
			n := sr.uint()
			p = binary.AppendUvarint(nil, n)
			for i := uint64(0); i < n && sr.err == nil; i++ {
				p = w.elemSegment(sr, p)
			}
		case 10:
			var err error
			if p, err = w.code(s.payload, ck); err != nil {
				return nil, err
			}
		default:
			p = s.payload
		}
		if sr.err != nil {
			return nil, sr.err
		}
		done[s.id] = true
		if s.id != 8 {
			emit(s.id, p)
		}
	}
	if err := missing(sectionRank(11) + 1); err != nil {
		return nil, err
	}
	return out, nil
}

// constExpr copies a constant expression from r to p, moving ref.func.
func (w *rewriter) constExpr(r *wreader, p []byte) []byte {
	for r.err == nil {
		at := r.off
		op := r.byte()
		if op == 0xd2 { // ref.func
			x := r.uint()
			p = binary.AppendUvarint(append(p, op), w.fn(x))
			continue
		}
		r.off = at
		r.constExprOne()
		p = append(p, r.b[at:r.off]...)
		if op == 0x0b {
			return p
		}
	}
	return p
}

// constExprOne skips one instruction of a constant expression (end
// included).
func (r *wreader) constExprOne() {
	switch op := r.byte(); op {
	case 0x0b:
	case 0x41:
		r.leb(5)
	case 0x42:
		r.leb(10)
	case 0x43:
		r.skip(4)
	case 0x44:
		r.skip(8)
	case 0x23, 0xd2:
		r.uint()
	case 0xd0:
		r.refType()
	case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e:
	case 0xfd:
		if sub := r.uint(); sub != 12 && r.err == nil {
			r.fail("instruction 0xfd %d in a constant expression", sub)
			return
		}
		r.skip(16)
	default:
		r.fail("instruction 0x%02x in a constant expression", op)
	}
}

// elemSegment copies one element segment from r to p, moving function
// indices (the layout of wreader.elemSegment).
func (w *rewriter) elemSegment(r *wreader, p []byte) []byte {
	flag := r.uint()
	if r.err != nil || flag > 7 {
		r.fail("element segment flag %d", flag)
		return p
	}
	p = binary.AppendUvarint(p, flag)
	active, explicitTable, exprs := flag&1 == 0, flag&2 != 0, flag&4 != 0
	if active && explicitTable {
		p = binary.AppendUvarint(p, r.uint())
	}
	if active {
		p = w.constExpr(r, p)
	}
	if flag&3 != 0 { // an element kind or reference type
		p = append(p, r.byte())
	}
	n := r.uint()
	p = binary.AppendUvarint(p, n)
	for i := uint64(0); i < n && r.err == nil; i++ {
		if exprs {
			p = w.constExpr(r, p)
		} else {
			p = binary.AppendUvarint(p, w.fn(r.uint()))
		}
	}
	return p
}

// customSection returns a custom section's payload with the function
// indices of a "name" section moved (function and local names), other
// custom sections unchanged; nil drops a name section that does not parse.
func (w *rewriter) customSection(payload []byte) []byte {
	r := &wreader{b: payload}
	n := r.len("name length")
	if r.err != nil || string(payload[r.off:r.off+n]) != "name" {
		return payload
	}
	r.off += n
	p := append([]byte(nil), payload[:r.off]...)
	for !r.done() {
		id := r.byte()
		size := r.len("name subsection size")
		if r.err != nil {
			return nil
		}
		sub := &wreader{b: r.b[:r.off+size], off: r.off}
		r.off += size
		var q []byte
		switch id {
		case 1, 2: // function names; local names: both start with a function index
			cnt := sub.uint()
			q = binary.AppendUvarint(nil, cnt)
			for i := uint64(0); i < cnt && sub.err == nil; i++ {
				q = binary.AppendUvarint(q, w.fn(sub.uint()))
				at := sub.off
				if id == 1 {
					sub.name()
				} else {
					sub.vec("local name", func() { sub.uint(); sub.name() })
				}
				q = append(q, sub.b[at:sub.off]...)
			}
			if sub.err != nil || sub.off != r.off {
				return nil
			}
		default:
			q = sub.b[sub.off:r.off]
		}
		p = append(p, id)
		p = binary.AppendUvarint(p, uint64(len(q)))
		p = append(p, q...)
	}
	if r.err != nil {
		return nil
	}
	return p
}

// check is what the checks refer to: the budget and scratch globals'
// and the yield function's indices, encoded.
type check struct{ budget, scratch, yield []byte }

// code rewrites the code section: a check at the start of every body and
// of every loop, each charging the code it guards, and calls and ref.func
// moved past the added import.
func (w *rewriter) code(payload []byte, ck check) ([]byte, error) {
	r := &wreader{b: payload}
	n := r.uint()
	out := binary.AppendUvarint(make([]byte, 0, len(payload)+len(payload)/4+16), n)
	var body []byte
	var loops []int
	for i := uint64(0); i < n && r.err == nil; i++ {
		size := r.len("function body size")
		if r.err != nil {
			break
		}
		b := &wreader{b: r.b[:r.off+size], off: r.off}
		r.off += size
		bodyStart := b.off
		b.vec("local declaration", func() {
			b.uint()
			b.valType()
		})
		if b.err != nil {
			return nil, b.err
		}
		code := b.off
		var err error
		if loops, err = loopSizes(&wreader{b: b.b, off: code}, loops[:0]); err != nil {
			return nil, err
		}
		body = append(body[:0], b.b[bodyStart:code]...)
		body = ck.append(body, size)
		last := code
		for k := 0; !b.done(); {
			at := b.off
			op, _ := b.instr()
			if b.err != nil {
				break
			}
			switch op {
			case 0x03: // loop: check first thing in its body
				body = append(body, b.b[last:b.off]...)
				body = ck.append(body, loops[k])
				last = b.off
				k++
			case 0x10, 0xd2: // call, ref.func
				x := (&wreader{b: b.b, off: at + 1}).uint()
				body = append(body, b.b[last:at+1]...)
				body = binary.AppendUvarint(body, w.fn(x))
				last = b.off
			case 0xfc: // bulk memory and table operations: charged by their length
				if shift, ok := bulkShift((&wreader{b: b.b, off: at + 1}).uint()); ok {
					body = append(body, b.b[last:at]...)
					body = ck.appendBulk(body, shift)
					last = at
				}
			}
		}
		if b.err != nil {
			return nil, b.err
		}
		body = append(body, b.b[last:b.off]...)
		out = binary.AppendUvarint(out, uint64(len(body)))
		out = append(out, body...)
	}
	if r.err != nil {
		return nil, r.err
	}
	if r.off != len(payload) {
		return nil, fmt.Errorf("code section: %d bytes after the last body", len(payload)-r.off)
	}
	return out, nil
}

// loopSizes appends the byte length of each loop of a function's
// instructions, in the order the loops start.
func loopSizes(r *wreader, sizes []int) ([]int, error) {
	type open struct{ loop, start int } // loop: index into sizes, or -1
	var stack []open
	for !r.done() {
		at := r.off
		op, known := r.instr()
		switch {
		case !known:
			return nil, fmt.Errorf("offset %d: instruction 0x%02x is outside WebAssembly 2.0", at, op)
		case op == 0x03:
			stack = append(stack, open{len(sizes), at})
			sizes = append(sizes, 0)
		case op == 0x02 || op == 0x04:
			stack = append(stack, open{-1, at})
		case op == 0x0b && len(stack) > 0:
			if o := stack[len(stack)-1]; o.loop >= 0 {
				sizes[o.loop] = r.off - o.start
			}
			stack = stack[:len(stack)-1]
		}
	}
	return sizes, r.err
}

// append appends the check that charges weight bytes of code:
//
//	global.get $budget; i32.const weight; i32.sub; global.set $budget
//	global.get $budget; i32.const 0; i32.lt_s
//	if
//	  i32.const interruptBudget; global.set $budget
//	  call $yield
//	  if unreachable end
//	end
func (c check) append(b []byte, weight int) []byte {
	b = append(b, 0x23)
	b = append(b, c.budget...)
	b = append(b, 0x41)
	b = leb128.AppendSigned(b, int64(min(weight, interruptBudget)))
	b = append(b, 0x6b, 0x24)
	b = append(b, c.budget...)
	return c.appendTest(b)
}

// A bulk memory or table instruction (memory.fill, memory.copy,
// memory.init, and their table forms) is one instruction that runs as long
// as its length operand says: a loop of 64 MiB fills charged only its
// code's few bytes would run for minutes between two exits, past any
// deadline and holding its processor. So each is charged, before it runs,
// its length shifted right by bulkShift's answer (a byte filled or copied
// is about a sixteenth of a byte of code executed; a table element about
// one):
//
//	global.set $scratch; global.get $scratch (the length, kept on the stack)
//	global.get $budget; global.get $scratch; i32.const shift; i32.shr_u
//	i32.sub; global.set $budget
//	…the check's test, as append's
//
// One instruction still runs whole once started: at most the memory's
// size (the host caps it) or the table's.
func (c check) appendBulk(b []byte, shift int) []byte {
	b = append(b, 0x24)
	b = append(b, c.scratch...)
	b = append(b, 0x23)
	b = append(b, c.scratch...)
	b = append(b, 0x23)
	b = append(b, c.budget...)
	b = append(b, 0x23)
	b = append(b, c.scratch...)
	b = append(b, 0x41, byte(shift), 0x76, 0x6b, 0x24) // i32.const shift; i32.shr_u; i32.sub; global.set
	b = append(b, c.budget...)
	return c.appendTest(b)
}

// bulkShift reports whether the 0xfc-prefixed instruction sub is a bulk
// operation whose length is on top of the stack (an i32), and the shift
// that turns its length into budget.
func bulkShift(sub uint64) (shift int, ok bool) {
	switch sub {
	case 8, 10, 11: // memory.init, memory.copy, memory.fill
		return 4, true
	case 12, 14, 15, 17: // table.init, table.copy, table.grow, table.fill
		return 0, true
	}
	return 0, false
}

// appendTest appends the end of a check: if the budget is spent, refill
// it and call yield, trapping if the call must stop.
func (c check) appendTest(b []byte) []byte {
	b = append(b, 0x23)
	b = append(b, c.budget...)
	b = append(b, 0x41, 0x00, 0x48, 0x04, 0x40, 0x41)
	b = leb128.AppendSigned(b, interruptBudget)
	b = append(b, 0x24)
	b = append(b, c.budget...)
	b = append(b, 0x10)
	b = append(b, c.yield...)
	return append(b, 0x04, 0x40, 0x00, 0x0b, 0x0b)
}

// sectionRank is a known section's place in the order the binary format
// requires (the data count section sits between element and code).
func sectionRank(id byte) int {
	switch id {
	case 12:
		return 10
	case 10:
		return 11
	case 11:
		return 12
	}
	return int(id)
}
