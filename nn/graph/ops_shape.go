package graph

import (
	"math"
)

// Views and shapes: Flatten, Squeeze, Unsqueeze, Dropout (inference),
// Size, ConstantOfShape, Range; and the copies along one axis, Concat and
// Split.

func init() {
	register("Flatten", 1, buildFlatten)
	register("Squeeze", 1, buildSqueeze)
	register("Squeeze", 13, buildSqueeze)
	register("Unsqueeze", 1, buildUnsqueeze)
	register("Unsqueeze", 13, buildUnsqueeze)
	register("Dropout", 7, buildDropout)
	register("Dropout", 10, buildDropout)
	register("Dropout", 12, buildDropout)
	register("Size", 1, buildSize)
	register("ConstantOfShape", 9, buildConstantOfShape)
	register("Range", 11, buildRange)
	register("Concat", 4, buildConcat)
	register("Split", 2, buildSplit)
	register("Split", 13, buildSplit)
	register("Split", 18, buildSplit)
}

// buildFlatten: [d0 … d(axis-1), d(axis) …] to [Π before, Π after], axis
// in [-rank, rank].
func buildFlatten(b *builder) {
	if !b.arity(1, 1, 1, 1) {
		return
	}
	x := b.in[0]
	r := len(x.shape)
	axis := b.attrInt("axis", 1)
	if axis < -int64(r) || axis > int64(r) {
		b.errf("axis %d out of range for rank %d", axis, r)
		return
	}
	if axis < 0 {
		axis += int64(r)
	}
	outer, _ := numel(x.shape[:axis])
	inner, _ := numel(x.shape[axis:])
	b.setOut(0, x.dt, []int{outer, inner})
	b.aliasInput(0)
}

// axesArg reads the axes of Squeeze or Unsqueeze: the attribute before
// opset 13, the optional input 1 since. ok is false on an error; axes nil
// when none were given.
func (b *builder) axesArg(maxIn int) (axes []int64, ok bool) {
	if b.opset < 13 {
		if !b.arity(1, 1, 1, 1) {
			return nil, false
		}
		return b.attrInts("axes", nil), !b.failed()
	}
	if !b.arity(1, maxIn, 1, 1) {
		return nil, false
	}
	if b.input(1) == nil {
		return nil, true
	}
	return b.constInts(1)
}

// buildSqueeze: removes the given axes (each of size 1), or every axis of
// size 1.
func buildSqueeze(b *builder) {
	axes, ok := b.axesArg(2)
	if !ok {
		return
	}
	x := b.in[0]
	r := len(x.shape)
	drop := make([]bool, r)
	if axes == nil {
		for i, d := range x.shape {
			drop[i] = d == 1
		}
	}
	for _, a := range axes {
		n := b.normAxis(a, r)
		if b.failed() {
			return
		}
		if x.shape[n] != 1 {
			b.errf("cannot squeeze axis %d of %v", a, x.shape)
			return
		}
		drop[n] = true
	}
	out := []int{}
	for i, d := range x.shape {
		if !drop[i] {
			out = append(out, d)
		}
	}
	b.setOut(0, x.dt, out)
	b.aliasInput(0)
}

// buildUnsqueeze: inserts axes of size 1, numbered in the output.
func buildUnsqueeze(b *builder) {
	axes, ok := b.axesArg(2)
	if !ok {
		return
	}
	if axes == nil {
		b.bad("axes are required")
		return
	}
	x := b.in[0]
	r := len(x.shape) + len(axes)
	if r > maxRank {
		b.unsupported("rank %d, limit %d", r, maxRank)
		return
	}
	ins := make([]bool, r)
	for _, a := range axes {
		n := b.normAxis(a, r)
		if b.failed() {
			return
		}
		if ins[n] {
			b.errf("axes %v repeat an axis", axes)
			return
		}
		ins[n] = true
	}
	out := make([]int, r)
	j := 0
	for i := range out {
		if ins[i] {
			out[i] = 1
			continue
		}
		out[i] = x.shape[j]
		j++
	}
	b.setOut(0, x.dt, out)
	b.aliasInput(0)
}

// floatsOf reads a floating-point tensor as float64s.
func floatsOf(t *Tensor) ([]float64, bool) {
	out := make([]float64, t.Numel())
	switch t.DType {
	case Float32:
		for i, v := range view[float32](t.data) {
			out[i] = float64(v)
		}
	case Float64:
		copy(out, view[float64](t.data))
	case Float16:
		for i, v := range view[uint16](t.data) {
			out[i] = float64(HalfToFloat32(v))
		}
	case BFloat16:
		for i, v := range view[uint16](t.data) {
			out[i] = float64(BFloat16ToFloat32(v))
		}
	default:
		return nil, false
	}
	return out, true
}

// buildDropout is inference: the output is the input, and the mask, when
// asked for, is all ones (T before opset 10, BOOL since). Training mode
// (the training_mode input, opset 12) is refused unless the ratio is 0,
// where it is the same.
func buildDropout(b *builder) {
	maxIn := 1
	if b.opset >= 12 {
		maxIn = 3
	}
	if !b.arity(1, maxIn, 1, 2) {
		return
	}
	x := b.in[0]
	if b.input(2) != nil {
		t := b.constInput(2)
		if t == nil {
			return
		}
		if t.DType != Bool || t.Numel() != 1 {
			b.errf("training_mode is %v%v, want a BOOL scalar", t.DType, t.Shape)
			return
		}
		if t.data[0] != 0 {
			ratio := 0.5
			if b.input(1) != nil {
				r := b.constInput(1)
				if r == nil {
					return
				}
				v, ok := floatsOf(r)
				if !ok || len(v) != 1 {
					b.errf("ratio is %v%v, want a float scalar", r.DType, r.Shape)
					return
				}
				ratio = v[0]
			}
			if ratio != 0 {
				b.unsupported("training mode (ratio %g): random dropout has no place in an inference runtime", ratio)
				return
			}
		}
	}
	b.setOut(0, x.dt, x.shape)
	b.aliasInput(0)
	if b.output(1) != nil {
		dt := x.dt
		if b.opset >= 10 {
			dt = Bool
		}
		if !sizeOK(x.shape) {
			b.errf("input %v is too large", x.shape)
			return
		}
		m := NewTensor(dt, x.shape...)
		fillBytes(m.data, bitsBytes(scalarBits(dt, 1), dt.Size()))
		b.setConst(1, m)
	}
}

func sizeOK(shape []int) bool {
	_, ok := numel(shape)
	return ok
}

// bitsBytes returns the low sz bytes of v, little-endian.
func bitsBytes(v uint64, sz int) []byte {
	out := make([]byte, sz)
	for i := range out {
		out[i] = byte(v >> (8 * i))
	}
	return out
}

// fillBytes repeats pat over dst (whose length is a multiple of it).
func fillBytes(dst, pat []byte) {
	if len(dst) == 0 {
		return
	}
	n := copy(dst, pat)
	for n < len(dst) {
		n += copy(dst[n:], dst[:n])
	}
}

// buildSize: the number of elements, an INT64 scalar known at plan time.
func buildSize(b *builder) {
	if !b.arity(1, 1, 1, 1) {
		return
	}
	b.setConst(0, TensorFrom([]int{}, []int64{int64(b.in[0].numel())}))
}

// buildConstantOfShape: a tensor of the input's shape filled with value
// (a one-element tensor attribute; FP32 0 by default).
func buildConstantOfShape(b *builder) {
	if !b.arity(1, 1, 1, 1) {
		return
	}
	dims, ok := b.constInts(0)
	if !ok {
		return
	}
	shape := make([]int, len(dims))
	for i, d := range dims {
		if d < 0 || d > maxElements {
			b.errf("shape %v", dims)
			return
		}
		shape[i] = int(d)
	}
	if len(shape) > maxRank {
		b.unsupported("rank %d, limit %d", len(shape), maxRank)
		return
	}
	dt, pat := Float32, []byte{0, 0, 0, 0}
	if b.hasAttr("value") {
		v := b.attrTensor("value")
		if v == nil {
			return
		}
		if v.Numel() != 1 {
			b.errf("value has %d elements, want 1", v.Numel())
			return
		}
		dt, pat = v.DType, v.data
	}
	b.setOut(0, dt, shape)
	if b.failed() {
		return
	}
	b.run(func(_, out []*Tensor, _ *kctx) error {
		fillBytes(out[0].data, pat)
		return nil
	})
}

// buildRange: start, limit and delta scalars of one type (float or
// integer); the values are needed at plan time, as the output's length
// depends on them.
func buildRange(b *builder) {
	if !b.arity(3, 3, 1, 1) || !b.sameType(0, 1) || !b.sameType(0, 2) ||
		!b.wantType(0, Float32, Float64, Int16, Int32, Int64) {
		return
	}
	ts := [3]*Tensor{}
	for i := range ts {
		if ts[i] = b.constInput(i); ts[i] == nil {
			return
		}
		if ts[i].Numel() != 1 {
			b.errf("input %d has shape %v, want a scalar", i, ts[i].Shape)
			return
		}
	}
	dt := b.in[0].dt
	if dt == Float32 || dt == Float64 {
		var v [3]float64
		for i, t := range ts {
			f, _ := floatsOf(t)
			v[i] = f[0]
		}
		start, limit, delta := v[0], v[1], v[2]
		if delta == 0 || math.IsNaN(delta) || math.IsNaN(start) || math.IsNaN(limit) || math.IsInf(start, 0) || math.IsInf(limit, 0) {
			b.errf("range(%g, %g, %g)", start, limit, delta)
			return
		}
		nf := math.Max(math.Ceil((limit-start)/delta), 0)
		if nf > maxElements {
			b.errf("range(%g, %g, %g) has %g elements", start, limit, delta, nf)
			return
		}
		n := int(nf)
		out := NewTensor(dt, n)
		if dt == Float32 {
			o := view[float32](out.data)
			for i := range o {
				o[i] = float32(start + float64(i)*delta)
			}
		} else {
			o := view[float64](out.data)
			for i := range o {
				o[i] = start + float64(i)*delta
			}
		}
		b.setConst(0, out)
		return
	}
	var v [3]int64
	for i, t := range ts {
		switch dt {
		case Int16:
			v[i] = int64(view[int16](t.data)[0])
		case Int32:
			v[i] = int64(view[int32](t.data)[0])
		default:
			v[i] = view[int64](t.data)[0]
		}
	}
	start, limit, delta := v[0], v[1], v[2]
	if delta == 0 {
		b.errf("range(%d, %d, 0)", start, limit)
		return
	}
	var n uint64
	switch {
	case delta > 0 && limit > start:
		d := uint64(limit) - uint64(start)
		n = d / uint64(delta)
		if d%uint64(delta) != 0 {
			n++
		}
	case delta < 0 && limit < start:
		d, s := uint64(start)-uint64(limit), uint64(-(delta+1))+1
		n = d / s
		if d%s != 0 {
			n++
		}
	}
	if n > maxElements {
		b.errf("range(%d, %d, %d) has %d elements", start, limit, delta, n)
		return
	}
	out := NewTensor(dt, int(n))
	for i := 0; i < int(n); i++ {
		x := start + int64(i)*delta
		switch dt {
		case Int16:
			view[int16](out.data)[i] = int16(x)
		case Int32:
			view[int32](out.data)[i] = int32(x)
		default:
			view[int64](out.data)[i] = x
		}
	}
	b.setConst(0, out)
}

// buildConcat: inputs of one type and rank, equal but on axis.
func buildConcat(b *builder) {
	if !b.arity(1, len(b.in), 1, 1) {
		return
	}
	for i, v := range b.in {
		if v == nil {
			b.bad("input %d is required", i)
			return
		}
		if !b.sameType(0, i) {
			return
		}
	}
	if !b.hasAttr("axis") {
		b.bad("axis attribute is required")
		return
	}
	x := b.in[0]
	r := len(x.shape)
	if r == 0 {
		b.errf("cannot concatenate scalars")
		return
	}
	ax := b.normAxis(b.attrInt("axis", 0), r)
	esz := b.elemSize(0)
	if b.failed() {
		return
	}
	out := append([]int{}, x.shape...)
	out[ax] = 0
	for i, v := range b.in {
		if len(v.shape) != r {
			b.errf("input %d has shape %v, input 0 %v", i, v.shape, x.shape)
			return
		}
		for d := range v.shape {
			if d != ax && v.shape[d] != x.shape[d] {
				b.errf("input %d has shape %v, input 0 %v: they differ outside axis %d", i, v.shape, x.shape, ax)
				return
			}
		}
		out[ax] += v.shape[ax]
		if out[ax] > maxElements {
			b.errf("output too large")
			return
		}
	}
	b.setOut(0, x.dt, out)
	if b.failed() {
		return
	}
	if len(b.in) == 1 {
		b.aliasInput(0)
		return
	}
	outer, _ := numel(out[:ax])
	inner, _ := numel(out[ax+1:])
	chunks := make([]int, len(b.in))
	for i, v := range b.in {
		chunks[i] = v.shape[ax] * inner * esz
	}
	row := out[ax] * inner * esz
	b.run(func(in, o []*Tensor, _ *kctx) error {
		dst := o[0].data
		for k := 0; k < outer; k++ {
			off := k * row
			for i, c := range chunks {
				copy(dst[off:off+c], in[i].data[k*c:(k+1)*c])
				off += c
			}
		}
		return nil
	})
}

// buildSplit: the split sizes are the split attribute before opset 13,
// the optional split input since; without them equal parts, one per
// output, and since 18 num_outputs parts of ⌈dim/num_outputs⌉, the last
// one smaller.
func buildSplit(b *builder) {
	var split []int64
	maxIn := 1
	if b.opset >= 13 {
		maxIn = 2
	}
	if !b.arity(1, maxIn, 1, len(b.out)) {
		return
	}
	if b.opset < 13 {
		split = b.attrInts("split", nil)
	} else if b.input(1) != nil {
		var ok bool
		if split, ok = b.constInts(1); !ok {
			return
		}
	}
	x := b.in[0]
	r := len(x.shape)
	if r == 0 {
		b.errf("cannot split a scalar")
		return
	}
	ax := b.normAxis(b.attrInt("axis", 0), r)
	esz := b.elemSize(0)
	if b.failed() {
		return
	}
	nOut := len(b.out)
	dim := x.shape[ax]
	sizes := make([]int, nOut)
	switch {
	case split != nil:
		if len(split) != nOut {
			b.errf("split %v for %d outputs", split, nOut)
			return
		}
		sum := int64(0)
		for i, s := range split {
			if s < 0 || s > maxElements {
				b.errf("split %v", split)
				return
			}
			sizes[i] = int(s)
			sum += s
		}
		if sum != int64(dim) {
			b.errf("split %v does not add up to dimension %d (%d) of %v", split, ax, dim, x.shape)
			return
		}
	case b.opset >= 18 && b.hasAttr("num_outputs"):
		num := b.attrInt("num_outputs", 0)
		if num != int64(nOut) {
			b.errf("num_outputs %d for %d outputs", num, nOut)
			return
		}
		part := (dim + nOut - 1) / nOut
		for i := range sizes {
			sizes[i] = min(part, dim-i*part)
			if sizes[i] < 0 {
				b.errf("dimension %d of %v cannot be split into %d parts of %d", ax, x.shape, nOut, part)
				return
			}
		}
	default:
		if dim%nOut != 0 {
			b.errf("dimension %d of %v (%d) is not divisible into %d outputs", ax, x.shape, dim, nOut)
			return
		}
		for i := range sizes {
			sizes[i] = dim / nOut
		}
	}
	outer, _ := numel(x.shape[:ax])
	inner, _ := numel(x.shape[ax+1:])
	row := dim * inner * esz
	offs := make([]int, nOut)
	chunks := make([]int, nOut)
	off := 0
	for i, s := range sizes {
		shape := append([]int{}, x.shape...)
		shape[ax] = s
		b.setOut(i, x.dt, shape)
		offs[i], chunks[i] = off, s*inner*esz
		off += chunks[i]
	}
	if b.failed() {
		return
	}
	b.run(func(in, o []*Tensor, _ *kctx) error {
		src := in[0].data
		for i, t := range o {
			if t == nil {
				continue
			}
			c, so := chunks[i], offs[i]
			for k := 0; k < outer; k++ {
				copy(t.data[k*c:(k+1)*c], src[k*row+so:k*row+so+c])
			}
		}
		return nil
	})
}
