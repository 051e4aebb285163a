package plugins

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/tetratelabs/wazero/api"

	"github.com/aiaas/aiaas/internal/leb128"
)

// How a guest is stopped at its deadline, and how it lets the Go runtime
// stop the world.
//
// wazero's own mechanism (RuntimeConfig.WithCloseOnContextDone) makes
// every loop iteration of the compiled code leave for Go, to ask whether
// the module was closed and to give the Go scheduler a point where it can
// preempt the goroutine (compiled guest code cannot be preempted: a
// garbage collection waits for it). It also starts a goroutine per call.
// A Go-built guest enters a loop at every function call (its wasm code is
// a resumable loop per function), so those exits cost more than the
// plugin's own work (BenchmarkPNGTopK; BENCHMARKS.md, "Plugin calls").
//
// Instead, each module is rewritten before it is compiled. It gains two
// mutable i32 globals, an exported interrupt flag and a budget, and at
// the start of every function and of every loop body a check that
// charges the budget the size of the code it guards (the function's or
// the loop's bytes: what can run before the next check). When the budget
// runs out, the check refills it, leaves for Go with a memory.grow of 0
// pages (a preemption point), and traps with unreachable if the flag is
// set. So at most ~interruptBudget bytes of guest code run between two
// exits, whatever the loop or call shape (a loop-free tree of calls is
// charged at every call, which wazero's loop-only check did not cover);
// a tight loop pays a few instructions per iteration and one exit in tens
// of thousands.
//
// A running call is stopped by setting the flag (context.AfterFunc on the
// call's context: no goroutine); the guest traps at its next exit. An
// interrupted instance keeps its flag set and is discarded.
//
// A start function would run inside instantiation, before the host holds
// the instance and can reach its flag, so the start section is removed
// and its function exported instead: the host calls it first, under the
// init deadline, exactly where instantiation would have.
const (
	interruptExport = "aiaas:interrupt"
	startExport     = "aiaas:start"
)

// instrument returns wasm with the interrupt flag and checks added. The
// module must already have passed checkStructure; an instruction outside
// the WebAssembly 2.0 core set is refused here, since its immediates
// cannot be skipped and a check could not be placed after it safely.
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

	// The flag's index: after every imported and defined global.
	var globals uint64
	var start []byte // the start section's function index, as encoded
	memory := false
	for _, s := range secs {
		sr := &wreader{b: s.payload}
		switch s.id {
		case 2:
			sr.vec("import", func() {
				sr.name()
				sr.name()
				switch kind := sr.byte(); kind {
				case 0:
					sr.uint()
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
				if sr.err == nil {
					if name := string(sr.b[sr.off : sr.off+n]); name == interruptExport || name == startExport {
						sr.fail("export name %q is reserved by the host", name)
					}
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
	flag, budget := binary.AppendUvarint(nil, globals), binary.AppendUvarint(nil, globals+1)

	out := make([]byte, 0, len(wasm)+len(wasm)/8+64)
	out = append(out, wasm[:8]...)
	emit := func(id byte, payload []byte) {
		out = append(out, id)
		out = binary.AppendUvarint(out, uint64(len(payload)))
		out = append(out, payload...)
	}
	// newGlobals: the flag (mutable i32, initially 0) and the budget.
	newGlobals := leb128.AppendSigned([]byte{0x7f, 0x01, 0x41, 0x00, 0x0b, 0x7f, 0x01, 0x41}, interruptBudget)
	newGlobals = append(newGlobals, 0x0b)
	exportEntry := func(p []byte, name string, kind byte, idx []byte) []byte {
		p = binary.AppendUvarint(p, uint64(len(name)))
		p = append(p, name...)
		p = append(p, kind)
		return append(p, idx...)
	}
	newExports := func(p []byte) []byte {
		p = exportEntry(p, interruptExport, 3, flag)
		if start != nil {
			p = exportEntry(p, startExport, 0, start)
		}
		return p
	}
	extraExports := uint64(1)
	if start != nil {
		extraExports = 2
	}
	wroteGlobal, wroteExport := false, false
	for _, s := range secs {
		if s.id != 0 { // custom sections may sit anywhere
			if !wroteGlobal && sectionRank(s.id) > sectionRank(6) {
				emit(6, append([]byte{0x02}, newGlobals...))
				wroteGlobal = true
			}
			if !wroteExport && sectionRank(s.id) > sectionRank(7) {
				emit(7, newExports(binary.AppendUvarint(nil, extraExports)))
				wroteExport = true
			}
		}
		switch s.id {
		case 6:
			sr := &wreader{b: s.payload}
			n := sr.uint()
			p := binary.AppendUvarint(nil, n+2)
			p = append(p, s.payload[sr.off:]...)
			emit(6, append(p, newGlobals...))
			wroteGlobal = true
		case 7:
			sr := &wreader{b: s.payload}
			n := sr.uint()
			p := binary.AppendUvarint(nil, n+extraExports)
			p = append(p, s.payload[sr.off:]...)
			emit(7, newExports(p))
			wroteExport = true
		case 8:
			// Removed: exported as startExport, called by the host.
		case 10:
			p, err := instrumentCode(s.payload, budget, flag)
			if err != nil {
				return nil, err
			}
			emit(10, p)
		default:
			emit(s.id, s.payload)
		}
	}
	if !wroteGlobal {
		emit(6, append([]byte{0x02}, newGlobals...))
	}
	if !wroteExport {
		emit(7, newExports(binary.AppendUvarint(nil, extraExports)))
	}
	return out, nil
}

// instrumentCode rewrites the code section: a check at the start of every
// body and of every loop, each charging the code it guards.
func instrumentCode(payload []byte, budget, flag []byte) ([]byte, error) {
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
		body = appendCheck(body, size, budget, flag)
		last := code
		for k := 0; !b.done(); {
			if op, _ := b.instr(); op == 0x03 && b.err == nil { // loop: check first thing in its body
				body = append(body, b.b[last:b.off]...)
				body = appendCheck(body, loops[k], budget, flag)
				last = b.off
				k++
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

// interruptBudget is how many bytes of guest code may run between two
// exits to Go (about a millisecond at most; a tight loop of 20 bytes
// exits once in 50,000 iterations).
const interruptBudget = 1 << 20

// appendCheck appends the check that charges weight bytes of code:
//
//	global.get $budget; i32.const weight; i32.sub; global.set $budget
//	global.get $budget; i32.const 0; i32.lt_s
//	if
//	  i32.const interruptBudget; global.set $budget
//	  i32.const 0; memory.grow; drop    ;; an exit to Go
//	  global.get $interrupt
//	  if unreachable end
//	end
func appendCheck(b []byte, weight int, budget, flag []byte) []byte {
	b = append(b, 0x23)
	b = append(b, budget...)
	b = append(b, 0x41)
	b = leb128.AppendSigned(b, int64(min(weight, interruptBudget)))
	b = append(b, 0x6b, 0x24)
	b = append(b, budget...)
	b = append(b, 0x23)
	b = append(b, budget...)
	b = append(b, 0x41, 0x00, 0x48, 0x04, 0x40, 0x41)
	b = leb128.AppendSigned(b, interruptBudget)
	b = append(b, 0x24)
	b = append(b, budget...)
	b = append(b, 0x41, 0x00, 0x40, 0x00, 0x1a, 0x23)
	b = append(b, flag...)
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

// guarded calls fn with stack; if ctx ends first, the instance's
// interrupt flag is set so that the guest traps at its next loop or call.
// interrupted reports that the flag was set: the instance must not be
// used again.
func (i *instance) guarded(ctx context.Context, fn api.Function, stack []uint64) (interrupted bool, err error) {
	if i.interrupt == nil {
		return false, fn.CallWithStack(ctx, stack)
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	stop := context.AfterFunc(ctx, func() { i.interrupt.Set(1) })
	err = fn.CallWithStack(ctx, stack)
	return !stop(), err
}

// call is guarded, remembering an interruption in i.broken.
func (i *instance) call(ctx context.Context, fn api.Function, stack []uint64) error {
	interrupted, err := i.guarded(ctx, fn, stack)
	if interrupted {
		i.broken = true
	}
	return err
}
