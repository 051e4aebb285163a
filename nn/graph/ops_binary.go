package graph

// Binary element-wise operators with numpy broadcasting (opset ≥ 7; the
// pre-7 "broadcast"/"axis" attributes are outside the runtime's opsets).

// binLoops are the three run kernels of one operator on one type: both
// operands contiguous, the second one repeated, the first one repeated.
type binLoops[T, R any] struct {
	vv func(o []R, a, b []T)
	vs func(o []R, a []T, b T)
	sv func(o []R, a T, b []T)
}

// loopsOf builds the run kernels from a scalar function. The hot float32
// arithmetic has hand-written loops instead (see f32Arith).
func loopsOf[T, R any](f func(a, b T) R) binLoops[T, R] {
	return binLoops[T, R]{
		vv: func(o []R, a, b []T) {
			b = b[:len(a)]
			o = o[:len(a)]
			for i := range a {
				o[i] = f(a[i], b[i])
			}
		},
		vs: func(o []R, a []T, b T) {
			o = o[:len(a)]
			for i := range a {
				o[i] = f(a[i], b)
			}
		},
		sv: func(o []R, a T, b []T) {
			o = o[:len(b)]
			for i := range b {
				o[i] = f(a, b[i])
			}
		},
	}
}

// binaryKernel returns the kernel of a broadcast binary operation.
func binaryKernel[T, R any](it *bcastIter, l binLoops[T, R]) kernelFunc {
	run := it.runLen()
	s0, s1 := it.runStride(0), it.runStride(1)
	return func(in, out []*Tensor, _ *kctx) error {
		a, b, o := view[T](in[0].data), view[T](in[1].data), view[R](out[0].data)
		if it.rank == 1 {
			// One run: the common same-shape and scalar cases.
			switch {
			case s0 == 1 && s1 == 1:
				l.vv(o, a, b)
			case s0 == 1:
				l.vs(o, a, b[0])
			case s1 == 1:
				l.sv(o, a[0], b)
			default:
				l.vs(o, a[:len(o)], b[0]) // both repeated: a is one value too
			}
			return nil
		}
		it.each(func(off int, offs *[3]int) {
			oo := o[off : off+run]
			switch {
			case s0 == 1 && s1 == 1:
				l.vv(oo, a[offs[0]:offs[0]+run], b[offs[1]:offs[1]+run])
			case s0 == 1:
				l.vs(oo, a[offs[0]:offs[0]+run], b[offs[1]])
			case s1 == 1:
				l.sv(oo, a[offs[0]], b[offs[1]:offs[1]+run])
			default:
				// Unreachable: a run's dimension is not broadcast in
				// every operand (newBcastIter drops size-1 dimensions).
				l.vv(oo[:1], a[offs[0]:offs[0]+1], b[offs[1]:offs[1]+1])
				for i := range oo {
					oo[i] = oo[0]
				}
			}
		})
		return nil
	}
}

// arith registers an arithmetic operator for every numeric type.
type arithFuncs struct {
	f32 binLoops[float32, float32]
	f64 func(a, b float64) float64
	i64 func(a, b int64) int64
	i32 func(a, b int32) int32
	i16 func(a, b int16) int16
	i8  func(a, b int8) int8
	u64 func(a, b uint64) uint64
	u32 func(a, b uint32) uint32
	u16 func(a, b uint16) uint16
	u8  func(a, b uint8) uint8
}

func buildBinary(b *builder, dt DType, shape []int, it *bcastIter, fs *arithFuncs) {
	switch dt {
	case Float32:
		b.run(binaryKernel(it, fs.f32))
	case Float64:
		b.run(binaryKernel(it, loopsOf(fs.f64)))
	case Int64:
		b.run(binaryKernel(it, loopsOf(fs.i64)))
	case Int32:
		b.run(binaryKernel(it, loopsOf(fs.i32)))
	case Int16:
		b.run(binaryKernel(it, loopsOf(fs.i16)))
	case Int8:
		b.run(binaryKernel(it, loopsOf(fs.i8)))
	case Uint64:
		b.run(binaryKernel(it, loopsOf(fs.u64)))
	case Uint32:
		b.run(binaryKernel(it, loopsOf(fs.u32)))
	case Uint16:
		b.run(binaryKernel(it, loopsOf(fs.u16)))
	case Uint8:
		b.run(binaryKernel(it, loopsOf(fs.u8)))
	default:
		b.unsupported("element type %v", dt)
		return
	}
	b.setOut(0, dt, shape)
	b.flops = float64(it.n)
}

// broadcastOperands checks two inputs of one type and returns their
// broadcast shape and iterator.
func broadcastOperands(b *builder) ([]int, *bcastIter, bool) {
	if !b.arity(2, 2, 1, 1) || !b.sameType(0, 1) {
		return nil, nil, false
	}
	x, y := b.in[0], b.in[1]
	shape, ok := broadcastShape(x.shape, y.shape)
	if !ok {
		b.errf("shapes %v and %v do not broadcast", x.shape, y.shape)
		return nil, nil, false
	}
	if len(shape) > maxRank {
		b.unsupported("rank %d, limit %d", len(shape), maxRank)
		return nil, nil, false
	}
	return shape, newBcastIter(shape, x.shape, y.shape), true
}

func arithOp(fs *arithFuncs) buildFunc {
	return func(b *builder) {
		shape, it, ok := broadcastOperands(b)
		if !ok {
			return
		}
		buildBinary(b, b.in[0].dt, shape, it, fs)
	}
}

func intDiv[T int64 | int32 | int16 | int8 | uint64 | uint32 | uint16 | uint8](a, b T) T {
	if b == 0 {
		return 0 // ONNX leaves it undefined; numpy gives 0 with a warning
	}
	return a / b
}

var (
	addFuncs = arithFuncs{
		f32: binLoops[float32, float32]{vv: addF32, vs: addScalarF32, sv: func(o []float32, a float32, b []float32) { addScalarF32(o, b, a) }},
		f64: func(a, b float64) float64 { return a + b },
		i64: func(a, b int64) int64 { return a + b }, i32: func(a, b int32) int32 { return a + b },
		i16: func(a, b int16) int16 { return a + b }, i8: func(a, b int8) int8 { return a + b },
		u64: func(a, b uint64) uint64 { return a + b }, u32: func(a, b uint32) uint32 { return a + b },
		u16: func(a, b uint16) uint16 { return a + b }, u8: func(a, b uint8) uint8 { return a + b },
	}
	subFuncs = arithFuncs{
		f32: loopsOf(func(a, b float32) float32 { return a - b }),
		f64: func(a, b float64) float64 { return a - b },
		i64: func(a, b int64) int64 { return a - b }, i32: func(a, b int32) int32 { return a - b },
		i16: func(a, b int16) int16 { return a - b }, i8: func(a, b int8) int8 { return a - b },
		u64: func(a, b uint64) uint64 { return a - b }, u32: func(a, b uint32) uint32 { return a - b },
		u16: func(a, b uint16) uint16 { return a - b }, u8: func(a, b uint8) uint8 { return a - b },
	}
	mulFuncs = arithFuncs{
		f32: binLoops[float32, float32]{vv: mulF32, vs: mulScalarF32, sv: func(o []float32, a float32, b []float32) { mulScalarF32(o, b, a) }},
		f64: func(a, b float64) float64 { return a * b },
		i64: func(a, b int64) int64 { return a * b }, i32: func(a, b int32) int32 { return a * b },
		i16: func(a, b int16) int16 { return a * b }, i8: func(a, b int8) int8 { return a * b },
		u64: func(a, b uint64) uint64 { return a * b }, u32: func(a, b uint32) uint32 { return a * b },
		u16: func(a, b uint16) uint16 { return a * b }, u8: func(a, b uint8) uint8 { return a * b },
	}
	divFuncs = arithFuncs{
		f32: loopsOf(func(a, b float32) float32 { return a / b }),
		f64: func(a, b float64) float64 { return a / b },
		i64: intDiv[int64], i32: intDiv[int32], i16: intDiv[int16], i8: intDiv[int8],
		u64: intDiv[uint64], u32: intDiv[uint32], u16: intDiv[uint16], u8: intDiv[uint8],
	}
)

func addF32(o, a, b []float32) {
	b = b[:len(a)]
	o = o[:len(a)]
	for i := range a {
		o[i] = a[i] + b[i]
	}
}

func addScalarF32(o, a []float32, s float32) {
	o = o[:len(a)]
	for i := range a {
		o[i] = a[i] + s
	}
}

func mulF32(o, a, b []float32) {
	b = b[:len(a)]
	o = o[:len(a)]
	for i := range a {
		o[i] = a[i] * b[i]
	}
}

func mulScalarF32(o, a []float32, s float32) {
	o = o[:len(a)]
	for i := range a {
		o[i] = a[i] * s
	}
}

func init() {
	for _, op := range []struct {
		name string
		fs   *arithFuncs
	}{{"Add", &addFuncs}, {"Sub", &subFuncs}, {"Mul", &mulFuncs}, {"Div", &divFuncs}} {
		register(op.name, 7, arithOp(op.fs))
	}
}
