package graph

// Views, constants and shapes: the operators that compute no values.

func init() {
	register("Identity", 1, buildIdentity)
	register("Constant", 1, buildConstant)
	register("Shape", 1, buildShape)
	register("Shape", 15, buildShape)
	register("Reshape", 5, buildReshape)
	register("Reshape", 14, buildReshape)
}

func buildIdentity(b *builder) {
	if !b.arity(1, 1, 1, 1) {
		return
	}
	b.setOut(0, b.in[0].dt, b.in[0].shape)
	b.aliasInput(0)
}

// buildConstant: value (a tensor), or since opset 12 value_float(s),
// value_int(s); sparse_value and strings are not supported.
func buildConstant(b *builder) {
	if !b.arity(0, 0, 1, 1) {
		return
	}
	set := 0
	for _, k := range []string{"value", "value_float", "value_floats", "value_int", "value_ints", "value_string", "value_strings", "sparse_value"} {
		if b.hasAttr(k) {
			set++
		}
	}
	if set != 1 {
		b.bad("needs exactly one value attribute, has %d", set)
		return
	}
	switch {
	case b.hasAttr("value"):
		if t := b.attrTensor("value"); t != nil {
			b.setConst(0, t)
		}
	case b.hasAttr("value_float"):
		b.setConst(0, TensorFrom([]int{}, []float32{b.attrFloat("value_float", 0)}))
	case b.hasAttr("value_floats"):
		v := b.attrFloats("value_floats", nil)
		b.setConst(0, TensorFrom([]int{len(v)}, v))
	case b.hasAttr("value_int"):
		b.setConst(0, TensorFrom([]int{}, []int64{b.attrInt("value_int", 0)}))
	case b.hasAttr("value_ints"):
		v := b.attrInts("value_ints", nil)
		b.setConst(0, TensorFrom([]int{len(v)}, v))
	default:
		b.unsupported("string and sparse constants")
	}
}

// buildShape: the input's shape as INT64, known at plan time; since opset
// 15 sliced by start and end.
func buildShape(b *builder) {
	if !b.arity(1, 1, 1, 1) {
		return
	}
	shape := b.in[0].shape
	r := int64(len(shape))
	start, end := b.attrInt("start", 0), b.attrInt("end", r)
	clampAxis := func(a int64) int64 {
		if a < 0 {
			a += r
		}
		return min(max(a, 0), r)
	}
	start, end = clampAxis(start), clampAxis(end)
	var dims []int64
	for i := start; i < end; i++ {
		dims = append(dims, int64(shape[i]))
	}
	if dims == nil {
		dims = []int64{}
	}
	b.setConst(0, TensorFrom([]int{len(dims)}, dims))
}

// buildReshape: shape input with 0 (copy the input's dimension, unless
// allowzero, opset 14) and -1 (inferred).
func buildReshape(b *builder) {
	if !b.arity(2, 2, 1, 1) {
		return
	}
	spec, ok := b.constInts(1)
	if !ok {
		return
	}
	allowZero := b.opset >= 14 && b.attrInt("allowzero", 0) != 0
	in := b.in[0].shape
	total := b.in[0].numel()
	shape := make([]int, len(spec))
	infer := -1
	known := 1
	for i, d := range spec {
		switch {
		case d == 0 && !allowZero:
			if i >= len(in) {
				b.errf("shape %v copies dimension %d of an input of rank %d", spec, i, len(in))
				return
			}
			shape[i] = in[i]
		case d == -1:
			if infer >= 0 {
				b.errf("shape %v has two -1", spec)
				return
			}
			infer = i
			continue
		case d < 0 || d > maxElements:
			b.errf("shape %v has dimension %d", spec, d)
			return
		default:
			shape[i] = int(d)
		}
		if shape[i] != 0 && known > maxElements/shape[i] {
			b.errf("shape %v is too large", spec)
			return
		}
		known *= shape[i]
	}
	if infer >= 0 {
		if known == 0 || total%known != 0 {
			b.errf("cannot reshape %v (%d elements) to %v", in, total, spec)
			return
		}
		shape[infer] = total / known
		known = total
	}
	if known != total {
		b.errf("cannot reshape %v (%d elements) to %v", in, total, spec)
		return
	}
	if len(shape) > maxRank {
		b.unsupported("rank %d, limit %d", len(shape), maxRank)
		return
	}
	b.setOut(0, b.in[0].dt, shape)
	b.aliasInput(0)
}
