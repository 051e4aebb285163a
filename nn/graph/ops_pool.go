package graph

import (
	"math"
	"unsafe"

	"github.com/aiaas/aiaas/nn/kernels"
)

// Pooling: MaxPool, AveragePool, LpPool and their global forms, on NCHW
// (N-D) tensors. Every window geometry comes from windowGeom; per spatial
// axis, poolAxis tables say at plan time which taps of each window fall
// inside the input, so kernels never test padding per element. 1-D and 2-D
// max and average pools run in two passes per output row (the covered
// input rows folded into one line, then the windows along it), with
// unrolled loops for the interior columns, whose windows lie wholly inside
// the input; the N-D reference path serves 3-D pools, the Indices output
// of MaxPool and LpPool. A NaN in a window makes its maximum NaN.
func init() {
	// MaxPool: 8 adds storage_order and the Indices output, 10 dilations
	// and ceil_mode, 11 only reworded pads, 12 adds int8 and uint8.
	for _, v := range []int{1, 8, 10, 11, 12} {
		register("MaxPool", v, buildMaxPool(v))
	}
	// AveragePool: 7 adds count_include_pad, 10 ceil_mode, 11 reworded
	// pads (19 adds dilations, beyond the opsets aiaas runs).
	for _, v := range []int{7, 10, 11} {
		register("AveragePool", v, buildAvgPool(v))
	}
	// LpPool: 2 made p an int, 11 reworded pads, 18 adds ceil_mode and
	// dilations.
	for _, v := range []int{2, 11, 18} {
		register("LpPool", v, buildLpPool(v))
	}
	register("GlobalAveragePool", 1, buildGlobalPool(poolAvg))
	register("GlobalMaxPool", 1, buildGlobalPool(poolMax))
	register("GlobalLpPool", 2, buildGlobalPool(poolLp))
}

type poolMode uint8

const (
	poolMax poolMode = iota
	poolAvg
	poolLp
)

// poolElem is what a pooling kernel runs on: MaxPool on all of them,
// AveragePool and LpPool on the floats.
type poolElem interface {
	float32 | float64 | int8 | uint8
}

// poolAxis is one spatial axis of a pooling window, tabulated per output
// index o: the window starts at input index o·stride − padB, and its taps
// k in [lo[o], hi[o]) fall inside the input; cnt[o] is the divisor of an
// average (the taps inside the input, or with count_include_pad those
// inside the padded input, a ceil_mode window clipped at its end).
// Outputs in [inLo, inHi) have their whole window inside the input.
type poolAxis struct {
	in, out, k, s, d, pad int
	lo, hi, cnt           []int
	inLo, inHi            int
}

func newPoolAxis(in, out, k, s, d, padB, padE int, includePad bool) poolAxis {
	a := poolAxis{in: in, out: out, k: k, s: s, d: d, pad: padB,
		lo: make([]int, out), hi: make([]int, out), cnt: make([]int, out)}
	a.inLo, a.inHi = -1, -1
	for o := range out {
		st := o*s - padB
		lo := 0
		if st < 0 {
			lo = (-st + d - 1) / d
		}
		hi := 0
		if st <= in-1 {
			hi = min(k, (in-1-st)/d+1)
		}
		hi = max(hi, lo)
		a.lo[o], a.hi[o] = min(lo, k), min(hi, k)
		if a.lo[o] > a.hi[o] {
			a.lo[o] = a.hi[o]
		}
		a.cnt[o] = a.hi[o] - a.lo[o]
		if includePad {
			// Taps inside [−padB, in + padE); the start is never before −padB.
			a.cnt[o] = min(k, (in+padE-1-st)/d+1)
		}
		if a.lo[o] == 0 && a.hi[o] == k {
			if a.inLo < 0 {
				a.inLo = o
			}
			a.inHi = o + 1
		}
	}
	if a.inLo < 0 {
		a.inLo, a.inHi = 0, 0
	}
	return a
}

// poolSpec is a planned pooling node.
type poolSpec struct {
	mode       poolMode
	planes     int // N·C
	in, out    []int
	ax         []poolAxis
	colMajor   bool    // Indices in column-major order (storage_order 1)
	p          float64 // LpPool's p
	includePad bool
}

func (ps *poolSpec) inSize() int  { return prod(ps.in) }
func (ps *poolSpec) outSize() int { return prod(ps.out) }

// planPool reads the window attributes common to the pooling operators
// and returns the plan of the pool over input 0, nil after an error.
func planPool(b *builder, mode poolMode, ceil, dilations, includePad bool) *poolSpec {
	x := b.in[0]
	if len(x.shape) > maxRank {
		b.unsupported("rank %d, limit %d", len(x.shape), maxRank)
		return nil
	}
	g := windowGeom(b, x.shape, nil, ceil, dilations)
	if g == nil {
		return nil
	}
	ps := &poolSpec{mode: mode, planes: g.n * g.c, in: g.in, out: g.out, includePad: includePad}
	for i := range g.in {
		if g.padB[i] >= (g.kernel[i]-1)*g.dilation[i]+1 || g.padE[i] >= (g.kernel[i]-1)*g.dilation[i]+1 {
			b.errf("pads %v not smaller than the window %v (dilations %v)", append(append([]int{}, g.padB...), g.padE...), g.kernel, g.dilation)
			return nil
		}
		ps.ax = append(ps.ax, newPoolAxis(g.in[i], g.out[i], g.kernel[i], g.strides[i], g.dilation[i], g.padB[i], g.padE[i], includePad))
	}
	out := append([]int{g.n, g.c}, g.out...)
	b.setOut(0, x.dt, out)
	b.flops = float64(ps.planes * ps.outSize() * g.kSize())
	return ps
}

func buildMaxPool(ver int) buildFunc {
	return func(b *builder) {
		maxOut := 1
		if ver >= 8 {
			maxOut = 2
		}
		if !b.arity(1, 1, 1, maxOut) {
			return
		}
		types := []DType{Float32, Float64}
		if ver >= 12 {
			types = append(types, Int8, Uint8)
		}
		if !b.wantType(0, types...) {
			return
		}
		ceil := ver >= 10 && b.attrInt("ceil_mode", 0) != 0
		colMajor := false
		if ver >= 8 {
			switch so := b.attrInt("storage_order", 0); so {
			case 0:
			case 1:
				colMajor = true
			default:
				b.bad("storage_order %d", so)
				return
			}
		}
		ps := planPool(b, poolMax, ceil, ver >= 10, false)
		if ps == nil {
			return
		}
		ps.colMajor = colMajor
		indices := b.output(1) != nil
		if indices {
			b.setOut(1, Int64, b.out[0].shape)
		}
		switch b.in[0].dt {
		case Float32:
			poolKernel[float32](b, ps, indices)
		case Float64:
			poolKernel[float64](b, ps, indices)
		case Int8:
			poolKernel[int8](b, ps, indices)
		case Uint8:
			poolKernel[uint8](b, ps, indices)
		}
	}
}

func buildAvgPool(ver int) buildFunc {
	return func(b *builder) {
		if !b.arity(1, 1, 1, 1) || !b.wantType(0, Float32, Float64) {
			return
		}
		ceil := ver >= 10 && b.attrInt("ceil_mode", 0) != 0
		include := b.attrInt("count_include_pad", 0) != 0
		ps := planPool(b, poolAvg, ceil, false, include)
		if ps == nil {
			return
		}
		if b.in[0].dt == Float64 {
			poolKernel[float64](b, ps, false)
		} else {
			poolKernel[float32](b, ps, false)
		}
	}
}

func buildLpPool(ver int) buildFunc {
	return func(b *builder) {
		if !b.arity(1, 1, 1, 1) || !b.wantType(0, Float32, Float64) {
			return
		}
		p := b.attrInt("p", 2)
		if p < 1 || p > 1<<10 {
			b.bad("p %d", p)
			return
		}
		ceil := ver >= 18 && b.attrInt("ceil_mode", 0) != 0
		ps := planPool(b, poolLp, ceil, ver >= 18, false)
		if ps == nil {
			return
		}
		ps.p = float64(p)
		if b.in[0].dt == Float64 {
			poolKernel[float64](b, ps, false)
		} else {
			poolKernel[float32](b, ps, false)
		}
	}
}

// poolKernel sets the kernel of a planned pool: the row-wise 1-D/2-D
// kernel for max and average pools without Indices, the N-D reference
// otherwise.
func poolKernel[T poolElem](b *builder, ps *poolSpec, indices bool) {
	if len(ps.ax) <= 2 && !indices && ps.mode != poolLp {
		p2 := as2dPool(ps)
		lowest := lowestOf[T]()
		var z T
		b.scratch = p2.w * int(unsafe.Sizeof(z))
		if ps.mode == poolMax {
			b.run(func(in, out []*Tensor, k *kctx) error {
				maxPool2D(view[T](out[0].data), view[T](in[0].data), view[T](k.scratch), p2, ps.planes, lowest)
				return nil
			})
			return
		}
		b.run(func(in, out []*Tensor, k *kctx) error {
			avgPool2D(view[T](out[0].data), view[T](in[0].data), view[T](k.scratch), p2, ps.planes)
			return nil
		})
		return
	}
	b.run(func(in, out []*Tensor, _ *kctx) error {
		var idx []int64
		if indices {
			idx = view[int64](out[1].data)
		}
		poolND(view[T](out[0].data), idx, view[T](in[0].data), ps)
		return nil
	})
}

func lowestOf[T poolElem]() T {
	var z T
	switch p := any(&z).(type) {
	case *float32:
		*p = float32(math.Inf(-1))
	case *float64:
		*p = math.Inf(-1)
	case *int8:
		*p = math.MinInt8
	case *uint8:
		*p = 0
	}
	return z
}

// poolND is the reference N-D pool of every plane: for each output, the
// taps of its window inside the input, from the axis tables. Indices,
// when not nil, receive the flat index (plane included, spatial axes in
// row- or column-major order) of each maximum, the first one on ties.
func poolND[T poolElem](y []T, idx []int64, x []T, ps *poolSpec) {
	sp := len(ps.ax)
	inSz, outSz := ps.inSize(), ps.outSize()
	var rowStr, colStr [maxRank]int
	s := 1
	for d := sp - 1; d >= 0; d-- {
		rowStr[d] = s
		s *= ps.in[d]
	}
	s = 1
	for d := 0; d < sp; d++ {
		colStr[d] = s
		s *= ps.in[d]
	}
	lowest := lowestOf[T]()
	var oc, kc, pos [maxRank]int
	for p := 0; p < ps.planes; p++ {
		xp := x[p*inSz : (p+1)*inSz]
		yp := y[p*outSz : (p+1)*outSz]
		for d := range sp {
			oc[d] = 0
		}
		for o := range yp {
			empty := false
			cnt := 1
			for d := range sp {
				a := &ps.ax[d]
				kc[d] = a.lo[oc[d]]
				if kc[d] >= a.hi[oc[d]] {
					empty = true
				}
				cnt *= a.cnt[oc[d]]
			}
			best, bestAt := lowest, -1
			acc := 0.0
			for !empty {
				off, col := 0, 0
				for d := range sp {
					a := &ps.ax[d]
					pos[d] = oc[d]*a.s - a.pad + kc[d]*a.d
					off += pos[d] * rowStr[d]
					col += pos[d] * colStr[d]
				}
				v := xp[off]
				switch ps.mode {
				case poolMax:
					// The first maximum wins ties; a NaN wins over numbers
					// (and stays), as the builtin max of the 2-D kernel.
					if bestAt < 0 || v > best || v != v && best == best {
						best, bestAt = v, off
						if ps.colMajor {
							bestAt = col
						}
					}
				case poolAvg:
					acc += float64(v)
				case poolLp:
					acc += math.Pow(math.Abs(float64(v)), ps.p)
				}
				// Next tap.
				d := sp - 1
				for ; d >= 0; d-- {
					a := &ps.ax[d]
					kc[d]++
					if kc[d] < a.hi[oc[d]] {
						break
					}
					kc[d] = a.lo[oc[d]]
				}
				if d < 0 {
					break
				}
			}
			switch ps.mode {
			case poolMax:
				yp[o] = best
				if idx != nil {
					if bestAt < 0 {
						bestAt = 0
					}
					idx[p*outSz+o] = int64(p*inSz + bestAt)
				}
			case poolAvg:
				yp[o] = T(acc / float64(cnt))
			case poolLp:
				yp[o] = T(math.Pow(acc, 1/ps.p))
			}
			// Next output.
			for d := sp - 1; d >= 0; d-- {
				oc[d]++
				if oc[d] < ps.out[d] {
					break
				}
				oc[d] = 0
			}
		}
	}
}

// pool2d is a 1-D or 2-D pool as 2-D, with its axis tables.
type pool2d struct {
	h, w, oh, ow int
	y, x         poolAxis
}

func as2dPool(ps *poolSpec) *pool2d {
	if len(ps.ax) == 1 {
		one := newPoolAxis(1, 1, 1, 1, 1, 0, 0, false)
		return &pool2d{h: 1, w: ps.in[0], oh: 1, ow: ps.out[0], y: one, x: ps.ax[0]}
	}
	return &pool2d{h: ps.in[0], w: ps.in[1], oh: ps.out[0], ow: ps.out[1], y: ps.ax[0], x: ps.ax[1]}
}

// maxPool2D pools each output row in two passes: the rows its windows
// cover are folded into one line (tmp, w long) by an element-wise
// maximum, then each window's columns of that line are reduced. A window
// of kh×kw taps costs about kh·s_w + kw operations per output instead of
// kh·kw.
func maxPool2D[T poolElem](y, x, tmp []T, g *pool2d, planes int, lowest T) {
	hw, ohw := g.h*g.w, g.oh*g.ow
	for p := 0; p < planes; p++ {
		src := x[p*hw : (p+1)*hw]
		dst := y[p*ohw : (p+1)*ohw]
		for oy := 0; oy < g.oh; oy++ {
			row := dst[oy*g.ow : (oy+1)*g.ow]
			lo, hi := g.y.lo[oy], g.y.hi[oy]
			if lo >= hi {
				for i := range row {
					row[i] = lowest
				}
				continue
			}
			iy := oy*g.y.s - g.y.pad + lo*g.y.d
			line := src[iy*g.w : (iy+1)*g.w]
			if hi-lo > 1 {
				line = tmp[:g.w]
				copy(line, src[iy*g.w:(iy+1)*g.w])
				for ky := lo + 1; ky < hi; ky++ {
					iy += g.y.d
					maxRows(line, src[iy*g.w:(iy+1)*g.w])
				}
			}
			maxLine(row, line, &g.x, lowest)
		}
	}
}

// maxRows sets line[i] = max(line[i], r[i]): the vertical pass of a
// window, on the vector kernels for float32 (NaN wins, as Go's max).
func maxRows[T poolElem](line, r []T) {
	if lf, ok := any(line).([]float32); ok {
		kernels.MaxF32(lf, lf, any(r).([]float32))
		return
	}
	r = r[:len(line)]
	for i, v := range r {
		line[i] = max(line[i], v)
	}
}

// addRows sets line[i] += r[i], on the vector kernels for float32.
func addRows[T poolElem](line, r []T) {
	if lf, ok := any(line).([]float32); ok {
		kernels.AddF32(lf, lf, any(r).([]float32))
		return
	}
	r = r[:len(line)]
	for i, v := range r {
		line[i] += v
	}
}

// maxLine sets out[o] to the maximum over the taps k of window o of
// line[o·s − pad + k·d] (lowest for a window with none inside).
func maxLine[T poolElem](row, line []T, a *poolAxis, lowest T) {
	edge := func(o int) {
		m := lowest
		i := o*a.s - a.pad + a.lo[o]*a.d
		for k := a.lo[o]; k < a.hi[o]; k++ {
			m = max(m, line[i])
			i += a.d
		}
		row[o] = m
	}
	for o := 0; o < a.inLo; o++ {
		edge(o)
	}
	for o := a.inHi; o < a.out; o++ {
		edge(o)
	}
	if a.inLo >= a.inHi {
		return
	}
	base := a.inLo*a.s - a.pad
	inner := row[a.inLo:a.inHi]
	s := a.s
	switch {
	case a.k == 3 && a.d == 1:
		for o := range inner {
			w := line[base : base+3 : base+3]
			inner[o] = max(w[0], w[1], w[2])
			base += s
		}
	case a.k == 2 && a.d == 1:
		for o := range inner {
			w := line[base : base+2 : base+2]
			inner[o] = max(w[0], w[1])
			base += s
		}
	case a.k == 1:
		for o := range inner {
			inner[o] = line[base]
			base += s
		}
	default:
		ext := (a.k-1)*a.d + 1
		for o := range inner {
			w := line[base : base+ext : base+ext]
			m := w[0]
			for i := a.d; i < ext; i += a.d {
				m = max(m, w[i])
			}
			inner[o] = m
			base += s
		}
	}
}

// avgPool2D is maxPool2D with sums, each window then divided by its count
// (the per-axis counts multiply).
func avgPool2D[T poolElem](y, x, tmp []T, g *pool2d, planes int) {
	hw, ohw := g.h*g.w, g.oh*g.ow
	for p := 0; p < planes; p++ {
		src := x[p*hw : (p+1)*hw]
		dst := y[p*ohw : (p+1)*ohw]
		for oy := 0; oy < g.oh; oy++ {
			row := dst[oy*g.ow : (oy+1)*g.ow]
			lo, hi := g.y.lo[oy], g.y.hi[oy]
			if lo >= hi {
				clear(row)
			} else {
				iy := oy*g.y.s - g.y.pad + lo*g.y.d
				line := src[iy*g.w : (iy+1)*g.w]
				if hi-lo > 1 {
					line = tmp[:g.w]
					copy(line, src[iy*g.w:(iy+1)*g.w])
					for ky := lo + 1; ky < hi; ky++ {
						iy += g.y.d
						addRows(line, src[iy*g.w:(iy+1)*g.w])
					}
				}
				sumLine(row, line, &g.x)
			}
			cy := g.y.cnt[oy]
			for ox, c := range g.x.cnt[:len(row)] {
				row[ox] /= T(cy * c)
			}
		}
	}
}

// sumLine is maxLine with a sum.
func sumLine[T poolElem](row, line []T, a *poolAxis) {
	edge := func(o int) {
		var m T
		i := o*a.s - a.pad + a.lo[o]*a.d
		for k := a.lo[o]; k < a.hi[o]; k++ {
			m += line[i]
			i += a.d
		}
		row[o] = m
	}
	for o := 0; o < a.inLo; o++ {
		edge(o)
	}
	for o := a.inHi; o < a.out; o++ {
		edge(o)
	}
	if a.inLo >= a.inHi {
		return
	}
	base := a.inLo*a.s - a.pad
	inner := row[a.inLo:a.inHi]
	s := a.s
	switch {
	case a.k == 3 && a.d == 1:
		for o := range inner {
			w := line[base : base+3 : base+3]
			inner[o] = w[0] + w[1] + w[2]
			base += s
		}
	case a.k == 2 && a.d == 1:
		for o := range inner {
			w := line[base : base+2 : base+2]
			inner[o] = w[0] + w[1]
			base += s
		}
	default:
		ext := (a.k-1)*a.d + 1
		for o := range inner {
			w := line[base : base+ext : base+ext]
			var m T
			for i := 0; i < ext; i += a.d {
				m += w[i]
			}
			inner[o] = m
			base += s
		}
	}
}

// buildGlobalPool: the pool of each whole plane, to [N, C, 1, …].
func buildGlobalPool(mode poolMode) buildFunc {
	return func(b *builder) {
		if !b.arity(1, 1, 1, 1) || !b.wantType(0, Float32, Float64) {
			return
		}
		x := b.in[0]
		if len(x.shape) < 2 {
			b.errf("input of rank %d; want N, C and spatial axes", len(x.shape))
			return
		}
		p := 2.0
		if mode == poolLp {
			pi := b.attrInt("p", 2)
			if pi < 1 || pi > 1<<10 {
				b.bad("p %d", pi)
				return
			}
			p = float64(pi)
		}
		out := append([]int{}, x.shape...)
		for i := 2; i < len(out); i++ {
			out[i] = 1
		}
		b.setOut(0, x.dt, out)
		planes := x.shape[0] * x.shape[1]
		b.flops = float64(x.numel())
		if x.dt == Float64 {
			b.run(func(in, o []*Tensor, _ *kctx) error {
				globalPool(view[float64](o[0].data), view[float64](in[0].data), planes, mode, p)
				return nil
			})
			return
		}
		b.run(func(in, o []*Tensor, _ *kctx) error {
			globalPool(view[float32](o[0].data), view[float32](in[0].data), planes, mode, p)
			return nil
		})
	}
}

func globalPool[T float32 | float64](y, x []T, planes int, mode poolMode, p float64) {
	if planes == 0 {
		return
	}
	sz := len(x) / planes
	for i := range planes {
		xp := x[i*sz : (i+1)*sz]
		switch mode {
		case poolMax:
			m := T(math.Inf(-1))
			for _, v := range xp {
				if v > m {
					m = v
				}
			}
			y[i] = m
		case poolAvg:
			// Four partial sums: faster, and rounding closer to numpy's
			// pairwise sum than one running sum.
			var s0, s1, s2, s3 T
			j := 0
			for ; j+4 <= len(xp); j += 4 {
				w := xp[j : j+4 : j+4]
				s0 += w[0]
				s1 += w[1]
				s2 += w[2]
				s3 += w[3]
			}
			for ; j < len(xp); j++ {
				s0 += xp[j]
			}
			y[i] = (s0 + s1 + s2 + s3) / T(sz)
		case poolLp:
			acc := 0.0
			for _, v := range xp {
				acc += math.Pow(math.Abs(float64(v)), p)
			}
			y[i] = T(math.Pow(acc, 1/p))
		}
	}
}
