package graph

import "math"

// Reductions over a set of axes, and ArgMax/ArgMin along one.
//
// Up to opset 12 (17 for all but ReduceSum) the axes are an attribute;
// from 13 (ReduceSum) and 18 (the others) an optional input, with
// noop_with_empty_axes: no axes then reduce over nothing, each element on
// its own (ReduceSumSquare squares it, ReduceL1 takes its absolute value,
// as ONNX's reference does). Without that attribute, no axes means all.
// A reduction over an empty set gives the operation's identity: 0 for
// sums, 1 for products, −Inf (the type's lowest) for ReduceMax, NaN for
// the mean of floats.

type redOp uint8

const (
	rSum redOp = iota
	rMean
	rMax
	rMin
	rProd
	rL1
	rL2
	rSumSquare
	rLogSum
	rLogSumExp
)

func init() {
	for _, r := range []struct {
		name string
		op   redOp
	}{
		{"ReduceSum", rSum}, {"ReduceMean", rMean}, {"ReduceMax", rMax}, {"ReduceMin", rMin},
		{"ReduceProd", rProd}, {"ReduceL1", rL1}, {"ReduceL2", rL2}, {"ReduceSumSquare", rSumSquare},
		{"ReduceLogSum", rLogSum}, {"ReduceLogSumExp", rLogSumExp},
	} {
		register(r.name, 1, withHalf(reduceBuild(r.op, false)))
		if r.op == rSum {
			register(r.name, 13, withHalf(reduceBuild(r.op, true)))
		} else {
			register(r.name, 18, withHalf(reduceBuild(r.op, true)))
		}
	}
	register("ArgMax", 1, withHalf(argBuild(true)))
	register("ArgMax", 12, withHalf(argBuild(true))) // select_last_index
	register("ArgMin", 1, withHalf(argBuild(false)))
	register("ArgMin", 12, withHalf(argBuild(false)))
}

func reduceBuild(op redOp, axesInput bool) buildFunc {
	return func(b *builder) {
		maxIn := 1
		if axesInput {
			maxIn = 2
		}
		if !b.arity(1, maxIn, 1, 1) {
			return
		}
		switch op {
		case rL2, rLogSum, rLogSumExp:
			if !b.wantType(0, Float32, Float64) {
				return
			}
		default:
			if !b.wantType(0, numericTypes...) {
				return
			}
		}
		x := b.in[0]
		rank := len(x.shape)
		keep := b.attrInt("keepdims", 1) != 0
		var axes []int64
		noop := false
		if axesInput {
			noop = b.attrInt("noop_with_empty_axes", 0) != 0
			if b.input(1) != nil {
				var ok bool
				if axes, ok = b.constInts(1); !ok {
					return
				}
			}
		} else {
			axes = b.attrInts("axes", nil)
		}
		if b.failed() {
			return
		}
		reduced := make([]bool, rank)
		if len(axes) == 0 && !noop {
			for i := range reduced {
				reduced[i] = true
			}
		}
		for _, a := range axes {
			ax := b.normAxis(a, rank)
			if b.failed() {
				return
			}
			if reduced[ax] {
				b.errf("axes %v name axis %d twice", axes, ax)
				return
			}
			reduced[ax] = true
		}
		var shape []int
		trivial := true // every reduced dimension has size 1
		count := 1
		for i, d := range x.shape {
			switch {
			case !reduced[i]:
				shape = append(shape, d)
			case keep:
				shape = append(shape, 1)
			}
			if reduced[i] {
				count *= d
				if d != 1 {
					trivial = false
				}
			}
		}
		if shape == nil {
			shape = []int{}
		}
		b.setOut(0, x.dt, shape)
		b.flops = float64(x.numel())
		switch op {
		case rSum, rMean, rMax, rMin, rProd, rLogSumExp:
			if trivial {
				b.aliasInput(0) // each output is its one element
				return
			}
		}
		// Merge the input's dimensions into alternating runs of reduced
		// and kept ones (size-1 dimensions change nothing), with the
		// output stride of each kept run.
		var dims []int
		var red []bool
		for i, d := range x.shape {
			if d == 1 {
				continue
			}
			if n := len(dims); n > 0 && red[n-1] == reduced[i] {
				dims[n-1] *= d
				continue
			}
			dims = append(dims, d)
			red = append(red, reduced[i])
		}
		if len(dims) == 0 {
			dims, red = []int{1}, []bool{true}
		}
		ostr := make([]int, len(dims))
		s := 1
		for i := len(dims) - 1; i >= 0; i-- {
			if !red[i] {
				ostr[i] = s
				s *= dims[i]
			}
		}
		g := &redGeom{dims: dims, red: red, ostr: ostr, count: count}
		if op == rLogSumExp {
			b.scratch = b.out[0].numel() * x.dt.Size()
		}
		var k kernelFunc
		switch x.dt {
		case Float32:
			k = reduceKernel[float32](op, g)
		case Float64:
			k = reduceKernel[float64](op, g)
		case Int8:
			k = reduceKernel[int8](op, g)
		case Int16:
			k = reduceKernel[int16](op, g)
		case Int32:
			k = reduceKernel[int32](op, g)
		case Int64:
			k = reduceKernel[int64](op, g)
		case Uint8:
			k = reduceKernel[uint8](op, g)
		case Uint16:
			k = reduceKernel[uint16](op, g)
		case Uint32:
			k = reduceKernel[uint32](op, g)
		case Uint64:
			k = reduceKernel[uint64](op, g)
		}
		b.run(k)
	}
}

// redGeom is a reduction's iteration: the input as alternating runs of
// reduced and kept dimensions, the output stride of each kept run, and
// how many elements each output reduces.
type redGeom struct {
	dims  []int
	red   []bool
	ostr  []int
	count int
}

func reduceKernel[T numeric](op redOp, g *redGeom) kernelFunc {
	lo, hi := limitsT[T]()
	return func(in, out []*Tensor, k *kctx) error {
		x, o := view[T](in[0].data), view[T](out[0].data)
		switch op {
		case rMax:
			fill(o, lo)
		case rMin:
			fill(o, hi)
		case rProd:
			fill(o, 1)
		default:
			clear(o)
		}
		if op == rLogSumExp {
			m := view[T](k.scratch)[:len(o)]
			fill(m, lo)
			reducePass(rMax, g, x, m, nil)
			reducePass(op, g, x, o, m)
			for i, s := range o {
				if math.IsInf(float64(m[i]), 0) {
					o[i] = m[i] // the sum is NaN or 0 when the maximum is infinite
				} else {
					o[i] = m[i] + T(math.Log(float64(s)))
				}
			}
			return nil
		}
		reducePass(op, g, x, o, nil)
		switch op {
		case rMean:
			if g.count == 0 && !isFloatT[T]() {
				return nil
			}
			c := T(g.count)
			if c == 0 || int(c) != g.count {
				// The count does not fit T (UINT8 over 256 elements):
				// divide by the count itself.
				for i, v := range o {
					o[i] = T(float64(v) / float64(g.count))
				}
				return nil
			}
			for i := range o {
				o[i] /= c
			}
		case rL2:
			for i, v := range o {
				o[i] = T(math.Sqrt(float64(v)))
			}
		case rLogSum:
			for i, v := range o {
				o[i] = T(math.Log(float64(v)))
			}
		}
		return nil
	}
}

func fill[T any](s []T, v T) {
	for i := range s {
		s[i] = v
	}
}

// reducePass folds every element of x into its output in o, walking x
// in order one innermost run at a time; m is the maxima LogSumExp
// subtracts.
func reducePass[T numeric](op redOp, g *redGeom, x, o, m []T) {
	if len(x) == 0 {
		return
	}
	k := len(g.dims)
	run := g.dims[k-1]
	innerRed := g.red[k-1]
	var idx [maxRank]int
	off := 0
	for i := 0; i+run <= len(x); i += run {
		row := x[i : i+run]
		if innerRed {
			var mo T
			if m != nil {
				mo = m[off]
			}
			o[off] = reduceRow(op, o[off], row, mo)
		} else {
			var mr []T
			if m != nil {
				mr = m[off : off+run]
			}
			reduceVec(op, o[off:off+run], row, mr)
		}
		for d := k - 2; d >= 0; d-- {
			idx[d]++
			if !g.red[d] {
				off += g.ostr[d]
			}
			if idx[d] < g.dims[d] {
				break
			}
			if !g.red[d] {
				off -= g.ostr[d] * g.dims[d]
			}
			idx[d] = 0
		}
	}
}

// reduceRow folds a contiguous run of reduced elements into acc.
func reduceRow[T numeric](op redOp, acc T, row []T, m T) T {
	switch op {
	case rSum, rMean, rLogSum:
		// Four sums, for speed and a little accuracy.
		var s0, s1, s2, s3 T
		n := len(row) &^ 3
		for i := 0; i < n; i += 4 {
			s0 += row[i]
			s1 += row[i+1]
			s2 += row[i+2]
			s3 += row[i+3]
		}
		for _, v := range row[n:] {
			s0 += v
		}
		acc += (s0 + s1) + (s2 + s3)
	case rMax:
		for _, v := range row {
			acc = maxT(acc, v)
		}
	case rMin:
		for _, v := range row {
			acc = minT(acc, v)
		}
	case rProd:
		for _, v := range row {
			acc *= v
		}
	case rL1:
		for _, v := range row {
			acc += absT(v)
		}
	case rL2, rSumSquare:
		for _, v := range row {
			acc += v * v
		}
	case rLogSumExp:
		for _, v := range row {
			acc += T(math.Exp(float64(v - m)))
		}
	}
	return acc
}

// reduceVec folds a run of kept elements into their outputs.
func reduceVec[T numeric](op redOp, o, row, m []T) {
	o = o[:len(row)]
	switch op {
	case rSum, rMean, rLogSum:
		for i, v := range row {
			o[i] += v
		}
	case rMax:
		for i, v := range row {
			o[i] = maxT(o[i], v)
		}
	case rMin:
		for i, v := range row {
			o[i] = minT(o[i], v)
		}
	case rProd:
		for i, v := range row {
			o[i] *= v
		}
	case rL1:
		for i, v := range row {
			o[i] += absT(v)
		}
	case rL2, rSumSquare:
		for i, v := range row {
			o[i] += v * v
		}
	case rLogSumExp:
		m = m[:len(row)]
		for i, v := range row {
			o[i] += T(math.Exp(float64(v - m[i])))
		}
	}
}

// argBuild plans ArgMax or ArgMin: the INT64 index of the first (or,
// with select_last_index, the last) extreme along axis; NaN counts as the
// extreme, as in numpy.
func argBuild(isMax bool) buildFunc {
	return func(b *builder) {
		if !b.arity(1, 1, 1, 1) || !b.wantType(0, numericTypes...) {
			return
		}
		x := b.in[0]
		axis := b.normAxis(b.attrInt("axis", 0), len(x.shape))
		keep := b.attrInt("keepdims", 1) != 0
		last := b.opset >= 12 && b.attrInt("select_last_index", 0) != 0
		if b.failed() {
			return
		}
		n := x.shape[axis]
		outer, _ := numel(x.shape[:axis])
		inner, _ := numel(x.shape[axis+1:])
		if n == 0 && outer*inner > 0 {
			b.errf("axis %d of %v is empty: no index to return", axis, x.shape)
			return
		}
		shape := append([]int{}, x.shape[:axis]...)
		if keep {
			shape = append(shape, 1)
		}
		shape = append(shape, x.shape[axis+1:]...)
		b.setOut(0, Int64, shape)
		b.flops = float64(x.numel())
		var k kernelFunc
		switch x.dt {
		case Float32:
			k = argKernel[float32](outer, n, inner, isMax, last)
		case Float64:
			k = argKernel[float64](outer, n, inner, isMax, last)
		case Int8:
			k = argKernel[int8](outer, n, inner, isMax, last)
		case Int16:
			k = argKernel[int16](outer, n, inner, isMax, last)
		case Int32:
			k = argKernel[int32](outer, n, inner, isMax, last)
		case Int64:
			k = argKernel[int64](outer, n, inner, isMax, last)
		case Uint8:
			k = argKernel[uint8](outer, n, inner, isMax, last)
		case Uint16:
			k = argKernel[uint16](outer, n, inner, isMax, last)
		case Uint32:
			k = argKernel[uint32](outer, n, inner, isMax, last)
		case Uint64:
			k = argKernel[uint64](outer, n, inner, isMax, last)
		}
		b.run(k)
	}
}

func argKernel[T numeric](outer, n, inner int, isMax, last bool) kernelFunc {
	return func(in, out []*Tensor, _ *kctx) error {
		x, o := view[T](in[0].data), view[int64](out[0].data)
		for r := 0; r < outer; r++ {
			base := r * n * inner
			for j := 0; j < inner; j++ {
				best, bi := x[base+j], 0
				for i := 1; i < n; i++ {
					v := x[base+i*inner+j]
					var better bool
					if isMax {
						better = v > best
					} else {
						better = v < best
					}
					switch {
					case v != v:
						better = best == best || last // the first NaN, or the last
					case best != best:
						better = false
					case last && v == best:
						better = true
					}
					if better {
						best, bi = v, i
					}
				}
				o[r*inner+j] = int64(bi)
			}
		}
		return nil
	}
}
