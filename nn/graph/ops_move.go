package graph

import "math"

// Data movement on any element type, planned as moves (see move.go):
// Transpose, Slice, Expand, Tile, Pad, DepthToSpace, SpaceToDepth.

func init() {
	register("Transpose", 1, buildTranspose)
	register("Slice", 1, buildSlice)
	register("Slice", 10, buildSlice)
	register("Expand", 8, buildExpand)
	register("Tile", 6, buildTile)
	register("Pad", 2, buildPad)
	register("Pad", 11, buildPad)
	register("Pad", 18, buildPad)
	register("DepthToSpace", 1, buildDepthToSpace)
	register("DepthToSpace", 11, buildDepthToSpace)
	register("SpaceToDepth", 1, buildSpaceToDepth)
}

// elemSize returns input i's element size, recording an error for a type
// without one.
func (b *builder) elemSize(i int) int {
	sz := b.in[i].dt.Size()
	if sz == 0 {
		b.unsupported("element type %v", b.in[i].dt)
	}
	return sz
}

// buildTranspose: perm (default: reversed axes). A permutation that keeps
// the order of the dimensions larger than 1 is a view.
func buildTranspose(b *builder) {
	if !b.arity(1, 1, 1, 1) {
		return
	}
	x := b.in[0]
	r := len(x.shape)
	esz := b.elemSize(0)
	perm := b.attrInts("perm", nil)
	if perm == nil {
		perm = make([]int64, r)
		for i := range perm {
			perm[i] = int64(r - 1 - i)
		}
	}
	if len(perm) != r {
		b.errf("perm %v for rank %d", perm, r)
		return
	}
	p := make([]int, r)
	seen := make([]bool, r)
	out := make([]int, r)
	for i, a := range perm {
		if a < 0 || a >= int64(r) || seen[a] {
			b.errf("perm %v is not a permutation of the %d axes", perm, r)
			return
		}
		seen[a] = true
		p[i] = int(a)
		out[i] = x.shape[a]
	}
	if b.failed() {
		return
	}
	b.setOut(0, x.dt, out)
	last, view := -1, true
	for _, a := range p {
		if x.shape[a] == 1 {
			continue
		}
		if a < last {
			view = false
		}
		last = a
	}
	if view {
		b.aliasInput(0)
		return
	}
	b.run(transposeMover(esz, x.shape, p).kernel(0))
}

// sliceRange clamps one axis's start and end for step as ONNX does and
// returns the first index and the number taken.
func sliceRange(d int, start, end, step int64) (first, n int) {
	dim := int64(d)
	if start < 0 {
		start += dim
	}
	if end < 0 {
		end += dim
	}
	if step > 0 {
		start = min(max(start, 0), dim)
		end = min(max(end, 0), dim)
		if end <= start {
			return int(start), 0
		}
		return int(start), int(ceilDiv(end-start, step))
	}
	start = min(max(start, 0), dim-1)
	end = min(max(end, -1), dim-1)
	if start <= end {
		return max(int(start), 0), 0
	}
	neg := int64(math.MaxInt64)
	if step != math.MinInt64 {
		neg = -step
	}
	return int(start), int(ceilDiv(start-end, neg))
}

// ceilDiv is ⌈a/b⌉ for a ≥ 0, b > 0, without overflow.
func ceilDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 {
		q++
	}
	return q
}

// buildSlice: starts, ends and axes attributes before opset 10; since 10
// inputs starts, ends, axes and steps (negative steps walk backwards),
// with out-of-range values clamped.
func buildSlice(b *builder) {
	var starts, ends, axes, steps []int64
	if b.opset < 10 {
		if !b.arity(1, 1, 1, 1) {
			return
		}
		if !b.hasAttr("starts") || !b.hasAttr("ends") {
			b.bad("starts and ends attributes are required")
			return
		}
		starts, ends, axes = b.attrInts("starts", nil), b.attrInts("ends", nil), b.attrInts("axes", nil)
	} else {
		if !b.arity(3, 5, 1, 1) {
			return
		}
		var ok bool
		if starts, ok = b.constInts(1); !ok {
			return
		}
		if ends, ok = b.constInts(2); !ok {
			return
		}
		if b.input(3) != nil {
			if axes, ok = b.constInts(3); !ok {
				return
			}
		}
		if b.input(4) != nil {
			if steps, ok = b.constInts(4); !ok {
				return
			}
		}
	}
	if b.failed() {
		return
	}
	x := b.in[0]
	r := len(x.shape)
	esz := b.elemSize(0)
	if len(ends) != len(starts) || (axes != nil && len(axes) != len(starts)) || (steps != nil && len(steps) != len(starts)) {
		b.errf("starts %v, ends %v, axes %v and steps %v differ in length", starts, ends, axes, steps)
		return
	}
	first := make([]int, r)
	step := make([]int, r)
	out := append([]int{}, x.shape...)
	for i := range step {
		step[i] = 1
	}
	done := make([]bool, r)
	for i := range starts {
		a := i
		if axes != nil {
			a = b.normAxis(axes[i], r)
		} else if i >= r {
			b.errf("%d starts for rank %d", len(starts), r)
			return
		}
		if b.failed() {
			return
		}
		if done[a] {
			b.errf("axis %d sliced twice", a)
			return
		}
		done[a] = true
		st := int64(1)
		if steps != nil {
			st = steps[i]
		}
		if st == 0 {
			b.errf("step 0 on axis %d", a)
			return
		}
		first[a], out[a] = sliceRange(x.shape[a], starts[i], ends[i], st)
		step[a] = int(max(min(st, int64(maxElements)), -int64(maxElements)))
	}
	b.setOut(0, x.dt, out)
	if sameShape(out, x.shape) {
		same := true
		for a := range step {
			if out[a] > 1 && step[a] != 1 {
				same = false
			}
		}
		if same {
			b.aliasInput(0)
			return
		}
	}
	st := rowStrides(x.shape)
	mv := make([]mvAxis, r)
	base := 0
	for a := range mv {
		base += first[a] * st[a]
		s := step[a] * st[a]
		if out[a] <= 1 {
			s = 0
		}
		mv[a] = mvAxis{n: out[a], stride: s}
	}
	b.run(newMover(esz, base, mv, 0).kernel(0))
}

// broadcastMover plans the numpy broadcast of an input of shape in to out.
func broadcastMover(esz int, in, out []int) *mover {
	st := rowStrides(in)
	off := len(out) - len(in)
	axes := make([]mvAxis, len(out))
	for k := range out {
		axes[k] = mvAxis{n: out[k]}
		if j := k - off; j >= 0 && in[j] == out[k] {
			axes[k].stride = st[j]
		}
	}
	return newMover(esz, 0, axes, 0)
}

// buildExpand: broadcast to the shape input (numpy rules: the result is
// the broadcast of both shapes).
func buildExpand(b *builder) {
	if !b.arity(2, 2, 1, 1) {
		return
	}
	shape, ok := b.constInts(1)
	if !ok {
		return
	}
	x := b.in[0]
	esz := b.elemSize(0)
	s := make([]int, len(shape))
	for i, d := range shape {
		if d < 0 || d > maxElements {
			b.errf("shape %v has dimension %d", shape, d)
			return
		}
		s[i] = int(d)
	}
	out, ok := broadcastShape(x.shape, s)
	if !ok {
		b.errf("input %v does not broadcast to %v", x.shape, shape)
		return
	}
	if len(out) > maxRank {
		b.unsupported("rank %d, limit %d", len(out), maxRank)
		return
	}
	b.setOut(0, x.dt, out)
	if b.failed() {
		return
	}
	if o, _ := numel(out); o == x.numel() {
		b.aliasInput(0)
		return
	}
	b.run(broadcastMover(esz, x.shape, out).kernel(0))
}

// buildTile: repeats per axis.
func buildTile(b *builder) {
	if !b.arity(2, 2, 1, 1) {
		return
	}
	reps, ok := b.constInts(1)
	if !ok {
		return
	}
	x := b.in[0]
	esz := b.elemSize(0)
	r := len(x.shape)
	if len(reps) != r {
		b.errf("%d repeats for rank %d", len(reps), r)
		return
	}
	st := rowStrides(x.shape)
	out := make([]int, r)
	axes := make([]mvAxis, 0, 2*r)
	for i, n := range reps {
		if n < 0 || n > maxElements {
			b.errf("repeats %v", reps)
			return
		}
		out[i] = int(n) * x.shape[i]
		if x.shape[i] != 0 && int(n) > maxElements/x.shape[i] {
			b.errf("repeats %v of %v is too large", reps, x.shape)
			return
		}
		axes = append(axes, mvAxis{n: int(n)}, mvAxis{n: x.shape[i], stride: st[i]})
	}
	b.setOut(0, x.dt, out)
	if b.failed() {
		return
	}
	b.run(newMover(esz, 0, axes, 0).kernel(0))
}

// buildPad: pads (begins then ends, negative to crop) and mode constant,
// reflect or edge; the constant is the value attribute before opset 11,
// then the constant_value input; axes input since 18.
func buildPad(b *builder) {
	var pads, axes []int64
	mode := b.attrString("mode", "constant")
	var fill uint64
	x := b.input(0)
	if b.opset < 11 {
		if !b.arity(1, 1, 1, 1) {
			return
		}
		if !b.hasAttr("pads") {
			b.bad("pads attribute is required")
			return
		}
		pads = b.attrInts("pads", nil)
		fill = scalarBits(x.dt, float64(b.attrFloat("value", 0)))
	} else {
		maxIn := 3
		if b.opset >= 18 {
			maxIn = 4
		}
		if !b.arity(2, maxIn, 1, 1) {
			return
		}
		var ok bool
		if pads, ok = b.constInts(1); !ok {
			return
		}
		if b.input(2) != nil {
			if !b.sameType(0, 2) {
				return
			}
			c := b.constInput(2)
			if c == nil {
				return
			}
			fill = bitsOf(c.data, x.dt.Size())
		}
		if b.input(3) != nil {
			if axes, ok = b.constInts(3); !ok {
				return
			}
		}
	}
	if b.failed() {
		return
	}
	esz := b.elemSize(0)
	r := len(x.shape)
	switch mode {
	case "constant", "reflect", "edge":
	default:
		b.unsupported("mode %q", mode)
		return
	}
	ax := make([]int, r)
	if axes == nil {
		for i := range ax {
			ax[i] = i
		}
	} else {
		ax = ax[:0]
		seen := make([]bool, r)
		for _, a := range axes {
			n := b.normAxis(a, r)
			if b.failed() {
				return
			}
			if seen[n] {
				b.errf("axes %v repeat an axis", axes)
				return
			}
			seen[n] = true
			ax = append(ax, n)
		}
	}
	if len(pads) != 2*len(ax) {
		b.errf("%d pads for %d axes", len(pads), len(ax))
		return
	}
	begin, end := make([]int, r), make([]int, r)
	for i, a := range ax {
		pb, pe := pads[i], pads[i+len(ax)]
		if pb < -maxElements || pb > maxElements || pe < -maxElements || pe > maxElements {
			b.errf("pads %v", pads)
			return
		}
		begin[a], end[a] = int(pb), int(pe)
	}
	out := make([]int, r)
	for a := range out {
		out[a] = x.shape[a] + begin[a] + end[a]
		if out[a] < 0 {
			b.errf("pads %v remove more than dimension %d of %v", pads, a, x.shape)
			return
		}
		if x.shape[a] == 0 && out[a] > 0 && mode != "constant" {
			b.errf("%s padding of the empty dimension %d", mode, a)
			return
		}
	}
	b.setOut(0, x.dt, out)
	if b.failed() {
		return
	}
	st := rowStrides(x.shape)
	mv := make([]mvAxis, r)
	for a := range mv {
		d := x.shape[a]
		if begin[a] == 0 && end[a] == 0 {
			mv[a] = mvAxis{n: d, stride: st[a]}
			continue
		}
		offs := make([]int, out[a])
		for o := range offs {
			i := o - begin[a]
			switch mode {
			case "constant":
				if i < 0 || i >= d {
					offs[o] = -1
					continue
				}
			case "edge":
				i = min(max(i, 0), d-1)
			case "reflect":
				i = reflectIndex(i, d)
			}
			offs[o] = i * st[a]
		}
		mv[a] = mvAxis{n: out[a], offs: offs}
	}
	b.run(newMover(esz, 0, mv, fill).kernel(0))
}

// reflectIndex maps i to [0, d) by reflection about the edges without
// repeating them, periodically as numpy.pad does past one reflection.
func reflectIndex(i, d int) int {
	if d == 1 {
		return 0
	}
	p := 2 * (d - 1)
	i %= p
	if i < 0 {
		i += p
	}
	if i >= d {
		i = p - i
	}
	return i
}

// buildDepthToSpace: mode DCR (default) or CRD (opset 11).
func buildDepthToSpace(b *builder) {
	if !b.arity(1, 1, 1, 1) {
		return
	}
	x := b.in[0]
	esz := b.elemSize(0)
	bs := int(b.attrInt("blocksize", 0))
	if len(x.shape) != 4 || bs <= 0 || bs > 1<<16 || x.shape[1]%(bs*bs) != 0 {
		b.errf("input %v, blocksize %d: want [N, C, H, W] with C divisible by blocksize²", x.shape, bs)
		return
	}
	n, c, h, w := x.shape[0], x.shape[1], x.shape[2], x.shape[3]
	cc := c / (bs * bs)
	var view []int
	var perm []int
	switch mode := b.attrString("mode", "DCR"); mode {
	case "DCR":
		view, perm = []int{n, bs, bs, cc, h, w}, []int{0, 3, 4, 1, 5, 2}
	case "CRD":
		view, perm = []int{n, cc, bs, bs, h, w}, []int{0, 1, 4, 2, 5, 3}
	default:
		b.bad("mode %q", mode)
		return
	}
	b.setOut(0, x.dt, []int{n, cc, h * bs, w * bs})
	if b.failed() {
		return
	}
	b.run(transposeMover(esz, view, perm).kernel(0))
}

func buildSpaceToDepth(b *builder) {
	if !b.arity(1, 1, 1, 1) {
		return
	}
	x := b.in[0]
	esz := b.elemSize(0)
	bs := int(b.attrInt("blocksize", 0))
	if len(x.shape) != 4 || bs <= 0 || bs > 1<<16 || x.shape[2]%bs != 0 || x.shape[3]%bs != 0 {
		b.errf("input %v, blocksize %d: want [N, C, H, W] with H and W divisible by blocksize", x.shape, bs)
		return
	}
	n, c, h, w := x.shape[0], x.shape[1], x.shape[2], x.shape[3]
	b.setOut(0, x.dt, []int{n, c * bs * bs, h / bs, w / bs})
	if b.failed() {
		return
	}
	b.run(transposeMover(esz, []int{n, c, h / bs, bs, w / bs, bs}, []int{0, 3, 5, 1, 2, 4}).kernel(0))
}
