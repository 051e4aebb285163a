package graph

import (
	"strings"
)

// Einsum (opset 12): the general form, by direct summation. The equation
// is parsed at plan time into, for every label (a letter, or one
// dimension of the ellipsis), its size and each operand's stride along it
// (the sum of the strides of a label repeated in one operand: a
// diagonal; 0 where the operand broadcasts or lacks it). The kernel walks
// the output's labels, and for each output element sums the product of
// the operands over the contracted labels. It is exact and allocation-free
// but does no blocking: it suits the small contractions exported models
// use on shapes and heads, not large matrix products (use MatMul).

func init() {
	register("Einsum", 12, buildEinsum)
}

// einsumLabel is one index of the summation.
type einsumLabel struct {
	n       int
	strides []int // per operand, in elements
}

type einsumPlan struct {
	out   []einsumLabel // the output's labels, in its order
	sum   []einsumLabel // the contracted labels
	nOps  int
	total int // output elements
	inner int // elements of one summation (product of the contracted sizes)
}

// einsumTerm parses one operand's subscripts into labels: letters as
// themselves, the ellipsis as -1 (once).
func einsumTerm(s string) ([]int, bool) {
	var out []int
	ell := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			out = append(out, int(c))
		case c == '.' && strings.HasPrefix(s[i:], "...") && !ell:
			ell = true
			out = append(out, -1)
			i += 2
		default:
			return nil, false
		}
	}
	return out, true
}

func buildEinsum(b *builder) {
	if len(b.in) == 0 {
		b.bad("needs at least one input")
		return
	}
	if !b.arity(1, len(b.in), 1, 1) {
		return
	}
	if len(b.in) > maxEinsumOps {
		b.unsupported("%d operands, limit %d", len(b.in), maxEinsumOps)
		return
	}
	for i := range b.in {
		if b.in[i] == nil {
			b.bad("input %d is required", i)
			return
		}
		if !b.sameType(0, i) {
			return
		}
	}
	if !b.wantType(0, Float32, Float64, Int32, Int64) {
		return
	}
	eq := strings.ReplaceAll(b.attrString("equation", ""), " ", "")
	lhs, rhs, explicit := strings.Cut(eq, "->")
	terms := strings.Split(lhs, ",")
	if len(terms) != len(b.in) {
		b.errf("equation %q has %d operands for %d inputs", eq, len(terms), len(b.in))
		return
	}
	// Labels of each operand, the ellipsis expanded right-aligned to
	// labels 256+k (k < the widest ellipsis).
	const ellBase = 256
	ellRank := 0
	parsed := make([][]int, len(terms))
	for i, t := range terms {
		p, ok := einsumTerm(t)
		if !ok {
			b.bad("equation %q: bad subscripts %q", eq, t)
			return
		}
		parsed[i] = p
		letters := len(p)
		for _, l := range p {
			if l < 0 {
				letters--
			}
		}
		r := len(b.in[i].shape)
		hasEll := letters != len(p)
		if r < letters || (!hasEll && r != letters) {
			b.errf("equation %q: operand %d has rank %d for subscripts %q", eq, i, r, t)
			return
		}
		if hasEll {
			ellRank = max(ellRank, r-letters)
		}
	}
	size := map[int]int{}
	count := map[int]int{}                // occurrences in the inputs
	opLabels := make([][]int, len(terms)) // per operand, per dimension
	for i, p := range parsed {
		x := b.in[i]
		e := len(x.shape) - (len(p) - 1)
		var dims []int
		for _, l := range p {
			if l >= 0 {
				dims = append(dims, l)
				continue
			}
			for k := 0; k < e; k++ {
				dims = append(dims, ellBase+ellRank-e+k)
			}
		}
		opLabels[i] = dims
		for d, l := range dims {
			n := x.shape[d]
			switch old, ok := size[l]; {
			case !ok, old == 1 && l >= ellBase:
				size[l] = n
			case old != n && !(n == 1 && l >= ellBase):
				b.errf("equation %q: label %s has sizes %d and %d", eq, labelName(l), old, n)
				return
			}
			count[l]++
		}
	}
	// Output labels.
	var outLabels []int
	if explicit {
		p, ok := einsumTerm(rhs)
		if !ok {
			b.bad("equation %q: bad output subscripts %q", eq, rhs)
			return
		}
		for _, l := range p {
			if l < 0 {
				for k := 0; k < ellRank; k++ {
					outLabels = append(outLabels, ellBase+k)
				}
				continue
			}
			if _, ok := size[l]; !ok {
				b.errf("equation %q: output label %c is not in an input", eq, l)
				return
			}
			outLabels = append(outLabels, l)
		}
	} else {
		for k := 0; k < ellRank; k++ {
			outLabels = append(outLabels, ellBase+k)
		}
		for c := 'A'; c <= 'z'; c++ {
			if count[int(c)] == 1 {
				outLabels = append(outLabels, int(c))
			}
		}
	}
	inOut := map[int]bool{}
	for _, l := range outLabels {
		if inOut[l] {
			b.errf("equation %q: output label %s repeated", eq, labelName(l))
			return
		}
		inOut[l] = true
	}
	if len(outLabels) > maxRank {
		b.unsupported("rank %d, limit %d", len(outLabels), maxRank)
		return
	}
	mk := func(l int) einsumLabel {
		lb := einsumLabel{n: size[l], strides: make([]int, len(b.in))}
		for i, dims := range opLabels {
			st := rowStrides(b.in[i].shape)
			for d, dl := range dims {
				if dl == l && b.in[i].shape[d] != 1 { // broadcast: stride 0
					lb.strides[i] += st[d]
				}
			}
		}
		return lb
	}
	p := &einsumPlan{nOps: len(b.in), total: 1, inner: 1}
	shape := make([]int, len(outLabels))
	for i, l := range outLabels {
		p.out = append(p.out, mk(l))
		shape[i] = size[l]
		p.total *= size[l]
	}
	var sumLabels []int
	for l := range size {
		if !inOut[l] {
			sumLabels = append(sumLabels, l)
		}
	}
	// Deterministic order; the last one is the innermost loop.
	for i := 1; i < len(sumLabels); i++ {
		for j := i; j > 0 && sumLabels[j] < sumLabels[j-1]; j-- {
			sumLabels[j], sumLabels[j-1] = sumLabels[j-1], sumLabels[j]
		}
	}
	if len(sumLabels) > 2*maxRank {
		b.unsupported("%d contracted labels", len(sumLabels))
		return
	}
	for _, l := range sumLabels {
		p.sum = append(p.sum, mk(l))
		if size[l] != 0 && p.inner > maxElements/size[l] {
			b.unsupported("contraction of more than %d terms", maxElements)
			return
		}
		p.inner *= size[l]
	}
	b.setOut(0, b.in[0].dt, shape)
	if b.failed() {
		return
	}
	b.flops = float64(p.total) * float64(p.inner) * float64(len(b.in))
	switch b.in[0].dt {
	case Float32:
		b.run(einsumKernel[float32](p))
	case Float64:
		b.run(einsumKernel[float64](p))
	case Int32:
		b.run(einsumKernel[int32](p))
	default:
		b.run(einsumKernel[int64](p))
	}
}

func labelName(l int) string {
	if l >= 256 {
		return "…"
	}
	return string(rune(l))
}

// maxEinsumOps bounds the operands (the kernel keeps their offsets on the
// stack).
const maxEinsumOps = 16

func einsumKernel[T numeric](p *einsumPlan) kernelFunc {
	return func(in, out []*Tensor, _ *kctx) error {
		var xs [maxEinsumOps][]T
		n := p.nOps
		for i := 0; i < n; i++ {
			xs[i] = view[T](in[i].data)
		}
		y := view[T](out[0].data)[:p.total]
		var oidx [maxRank]int
		var base [maxEinsumOps]int
		for o := range y {
			y[o] = einsumSum(p, &xs, &base, n)
			// Advance the output odometer.
			for d := len(p.out) - 1; d >= 0; d-- {
				l := &p.out[d]
				oidx[d]++
				for i := 0; i < n; i++ {
					base[i] += l.strides[i]
				}
				if oidx[d] < l.n {
					break
				}
				for i := 0; i < n; i++ {
					base[i] -= l.strides[i] * l.n
				}
				oidx[d] = 0
			}
		}
		return nil
	}
}

// einsumSum is one output element: the sum over the contracted labels of
// the operands' product, from the operands' offsets base.
func einsumSum[T numeric](p *einsumPlan, xs *[maxEinsumOps][]T, base *[maxEinsumOps]int, n int) T {
	var acc T
	if p.inner == 0 {
		return 0
	}
	if len(p.sum) == 0 {
		v := T(1)
		for i := 0; i < n; i++ {
			v *= xs[i][base[i]]
		}
		return v
	}
	var sidx [2 * maxRank]int
	off := *base
	last := &p.sum[len(p.sum)-1]
	for {
		// The innermost label as a strided loop.
		switch n {
		case 1:
			a, sa := xs[0], last.strides[0]
			for t, oa := 0, off[0]; t < last.n; t, oa = t+1, oa+sa {
				acc += a[oa]
			}
		case 2:
			a, b, sa, sb := xs[0], xs[1], last.strides[0], last.strides[1]
			for t, oa, ob := 0, off[0], off[1]; t < last.n; t, oa, ob = t+1, oa+sa, ob+sb {
				acc += a[oa] * b[ob]
			}
		default:
			var o [maxEinsumOps]int
			copy(o[:n], off[:n])
			for t := 0; t < last.n; t++ {
				v := T(1)
				for i := 0; i < n; i++ {
					v *= xs[i][o[i]]
					o[i] += last.strides[i]
				}
				acc += v
			}
		}
		// Advance the other contracted labels.
		d := len(p.sum) - 2
		for ; d >= 0; d-- {
			l := &p.sum[d]
			sidx[d]++
			for i := 0; i < n; i++ {
				off[i] += l.strides[i]
			}
			if sidx[d] < l.n {
				break
			}
			for i := 0; i < n; i++ {
				off[i] -= l.strides[i] * l.n
			}
			sidx[d] = 0
		}
		if d < 0 {
			return acc
		}
	}
}
