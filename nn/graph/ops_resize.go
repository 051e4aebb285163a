package graph

import (
	"math"
	"slices"
)

// Resize (opsets 10, 11, 13, 18) and Upsample (7, 9), following the ONNX
// reference implementation: every output coordinate is mapped to the input
// per axis by the coordinate transformation mode, then
//
//   - nearest picks one input index by nearest_mode (any element type): a
//     move (see move.go) with a table of source offsets per axis;
//   - linear and cubic (FP32, FP64) are separable: one pass per axis that
//     changes, each output index a weighted sum of 2 (linear) or 4
//     (cubic; more with antialias when downsampling) input indices,
//     clamped to the edges (or dropped and renormalised with
//     exclude_outside). Indices and weights are computed at plan time;
//     intermediate results live in the step's scratch.
//
// tf_crop_and_resize maps coordinates outside the input to
// extrapolation_value.

func init() {
	register("Upsample", 7, buildUpsample)
	register("Upsample", 9, buildUpsample)
	register("Upsample", 10, func(b *builder) {
		b.unsupported("Upsample is deprecated since opset 10 (use Resize)")
	})
	register("Resize", 10, buildResize)
	register("Resize", 11, buildResize)
	register("Resize", 13, buildResize)
	register("Resize", 18, buildResize)
}

// resizeSpec is one Resize, with everything per axis of the input.
type resizeSpec struct {
	mode      string // nearest, linear, cubic
	ctm       string // coordinate transformation mode
	nearest   string // nearest mode
	cubicA    float64
	exclude   bool
	antialias bool
	extrap    float64
	in, out   []int
	scales    []float64
	roi       []float64 // starts then ends, per axis (tf_crop_and_resize)
}

func buildUpsample(b *builder) {
	var scales []float64
	if b.opset < 9 {
		if !b.arity(1, 1, 1, 1) {
			return
		}
		for _, s := range b.attrFloats("scales", nil) {
			scales = append(scales, float64(s))
		}
	} else {
		if !b.arity(2, 2, 1, 1) {
			return
		}
		t := b.constInput(1)
		if t == nil {
			return
		}
		var ok bool
		if scales, ok = floatsOf(t); !ok {
			b.errf("scales are %v, want FP32", t.DType)
			return
		}
	}
	x := b.in[0]
	mode := b.attrString("mode", "nearest")
	if mode == "bilinear" {
		mode = "linear"
	}
	if mode != "nearest" && mode != "linear" {
		b.unsupported("mode %q", mode)
		return
	}
	if len(scales) != len(x.shape) {
		b.errf("%d scales for input %v", len(scales), x.shape)
		return
	}
	for _, s := range scales {
		if !(s >= 1) || s > maxElements {
			b.errf("scales %v: Upsample needs scales ≥ 1", scales)
			return
		}
	}
	s := &resizeSpec{mode: mode, ctm: "asymmetric", nearest: "floor", cubicA: -0.75, in: x.shape, scales: scales}
	if !s.outFromScales(b) {
		return
	}
	s.build(b)
}

// outFromScales sets the output shape to ⌊in·scale⌋.
func (s *resizeSpec) outFromScales(b *builder) bool {
	s.out = make([]int, len(s.in))
	for i, d := range s.in {
		o := math.Floor(s.scales[i] * float64(d))
		if !(o >= 0) || o > maxElements {
			b.errf("scale %g of dimension %d", s.scales[i], d)
			return false
		}
		s.out[i] = int(o)
	}
	return true
}

func buildResize(b *builder) {
	maxIn := 4
	switch {
	case b.opset < 11:
		maxIn = 2
	}
	minIn := 1
	if b.opset < 11 {
		minIn = 2
	}
	if !b.arity(minIn, maxIn, 1, 1) {
		return
	}
	x := b.in[0]
	r := len(x.shape)
	s := &resizeSpec{
		mode:    b.attrString("mode", "nearest"),
		ctm:     b.attrString("coordinate_transformation_mode", "half_pixel"),
		nearest: b.attrString("nearest_mode", "round_prefer_floor"),
		cubicA:  float64(b.attrFloat("cubic_coeff_a", -0.75)),
		exclude: b.attrInt("exclude_outside", 0) != 0,
		extrap:  float64(b.attrFloat("extrapolation_value", 0)),
		in:      x.shape,
	}
	if b.opset < 11 {
		s.ctm, s.nearest = "asymmetric", "floor"
	}
	switch s.mode {
	case "nearest", "linear":
	case "cubic":
		if b.opset < 11 {
			b.unsupported("mode %q", s.mode)
			return
		}
	default:
		b.unsupported("mode %q", s.mode)
		return
	}
	switch s.ctm {
	case "half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_crop_and_resize":
	case "tf_half_pixel_for_nn":
		if b.opset >= 13 {
			b.unsupported("coordinate_transformation_mode %q (removed in opset 13)", s.ctm)
			return
		}
	case "half_pixel_symmetric":
		if b.opset < 18 {
			b.unsupported("coordinate_transformation_mode %q (opset 18)", s.ctm)
			return
		}
	default:
		b.unsupported("coordinate_transformation_mode %q", s.ctm)
		return
	}
	switch s.nearest {
	case "round_prefer_floor", "round_prefer_ceil", "floor", "ceil":
	default:
		b.unsupported("nearest_mode %q", s.nearest)
		return
	}
	// Axes (opset 18): scales, sizes and roi name only these.
	axes := make([]int, r)
	for i := range axes {
		axes[i] = i
	}
	policy := "stretch"
	if b.opset >= 18 {
		s.antialias = b.attrInt("antialias", 0) != 0
		policy = b.attrString("keep_aspect_ratio_policy", "stretch")
		switch policy {
		case "stretch", "not_larger", "not_smaller":
		default:
			b.unsupported("keep_aspect_ratio_policy %q", policy)
			return
		}
		if a := b.attrInts("axes", nil); a != nil {
			axes = axes[:0]
			seen := make([]bool, r)
			for _, v := range a {
				n := b.normAxis(v, r)
				if b.failed() {
					return
				}
				if seen[n] {
					b.errf("axes %v repeat an axis", a)
					return
				}
				seen[n] = true
				axes = append(axes, n)
			}
		}
	}
	// Scales and sizes.
	var scales []float64
	var sizes []int64
	scalesAt := 2
	if b.opset < 11 {
		scalesAt = 1
	}
	if b.input(scalesAt) != nil {
		t := b.constInput(scalesAt)
		if t == nil {
			return
		}
		var ok bool
		if scales, ok = floatsOf(t); !ok {
			b.errf("scales are %v, want FP32", t.DType)
			return
		}
		if len(scales) == 0 {
			scales = nil
		}
	}
	if b.opset >= 11 && b.input(3) != nil {
		var ok bool
		if sizes, ok = b.constInts(3); !ok {
			return
		}
		if len(sizes) == 0 {
			sizes = nil
		}
	}
	switch {
	case scales != nil && sizes != nil:
		b.bad("both scales and sizes are given")
		return
	case scales == nil && sizes == nil:
		b.bad("one of scales and sizes is required")
		return
	case scales != nil && len(scales) != len(axes), sizes != nil && len(sizes) != len(axes):
		b.errf("%d scales or sizes for %d axes", len(scales)+len(sizes), len(axes))
		return
	}
	s.scales = make([]float64, r)
	for i := range s.scales {
		s.scales[i] = 1
	}
	if scales != nil {
		if policy != "stretch" {
			// The policy applies to sizes only.
			policy = "stretch"
		}
		for i, a := range axes {
			if !(scales[i] > 0) || math.IsInf(scales[i], 0) {
				b.errf("scales %v: want positive scales", scales)
				return
			}
			s.scales[a] = scales[i]
		}
		if !s.outFromScales(b) {
			return
		}
	} else {
		s.out = append([]int{}, x.shape...)
		for i, a := range axes {
			if sizes[i] < 0 || sizes[i] > maxElements {
				b.errf("sizes %v", sizes)
				return
			}
			if x.shape[a] == 0 && sizes[i] != 0 {
				b.errf("cannot resize the empty dimension %d to %d", a, sizes[i])
				return
			}
			s.out[a] = int(sizes[i])
			if x.shape[a] > 0 {
				s.scales[a] = float64(sizes[i]) / float64(x.shape[a])
			}
		}
		if policy != "stretch" {
			sc := math.Inf(1)
			if policy == "not_smaller" {
				sc = math.Inf(-1)
			}
			for _, a := range axes {
				if x.shape[a] == 0 {
					continue
				}
				if policy == "not_larger" {
					sc = math.Min(sc, s.scales[a])
				} else {
					sc = math.Max(sc, s.scales[a])
				}
			}
			for _, a := range axes {
				if x.shape[a] == 0 || math.IsInf(sc, 0) {
					continue
				}
				s.scales[a] = sc
				o := math.Floor(sc*float64(x.shape[a]) + 0.5)
				if o > maxElements {
					b.errf("sizes %v", sizes)
					return
				}
				s.out[a] = int(o)
			}
		}
	}
	if s.ctm == "tf_crop_and_resize" {
		s.roi = make([]float64, 2*r)
		for i := r; i < 2*r; i++ {
			s.roi[i] = 1
		}
		if b.input(1) != nil {
			t := b.constInput(1)
			if t == nil {
				return
			}
			roi, ok := floatsOf(t)
			if !ok {
				b.errf("roi is %v, want a float type", t.DType)
				return
			}
			if len(roi) != 2*len(axes) {
				b.errf("roi has %d values for %d axes", len(roi), len(axes))
				return
			}
			for i, a := range axes {
				s.roi[a], s.roi[a+r] = roi[i], roi[i+len(axes)]
			}
		}
	}
	s.build(b)
}

// build plans the resize of input 0 into output 0.
func (s *resizeSpec) build(b *builder) {
	if b.failed() {
		return
	}
	x := b.in[0]
	if len(s.out) > maxRank {
		b.unsupported("rank %d, limit %d", len(s.out), maxRank)
		return
	}
	b.setOut(0, x.dt, s.out)
	if b.failed() {
		return
	}
	if s.mode == "nearest" {
		s.buildNearest(b)
		return
	}
	if !b.wantType(0, Float32, Float64) {
		return
	}
	if x.dt == Float32 {
		buildInterp[float32](b, s)
	} else {
		buildInterp[float64](b, s)
	}
}

// coord maps output index o of axis a to the input coordinate, and
// reports whether it falls outside the input (tf_crop_and_resize).
func (s *resizeSpec) coord(a, o int) (float64, bool) {
	in := float64(s.in[a])
	sc := s.scales[a]
	outW := sc * in // the reference's output width: scale·in, not the integer size
	xo := float64(o)
	var x float64
	switch s.ctm {
	case "align_corners":
		if outW == 1 {
			x = 0
		} else {
			x = xo * (in - 1) / (outW - 1)
		}
	case "asymmetric":
		x = xo / sc
	case "tf_crop_and_resize":
		r0, r1 := s.roi[a], s.roi[a+len(s.in)]
		if outW == 1 {
			x = (r1 - r0) * (in - 1) / 2
		} else {
			x = xo * (r1 - r0) * (in - 1) / (outW - 1)
		}
		x += r0 * (in - 1)
		if !(x >= 0 && x <= in-1) {
			return 0, true
		}
	case "pytorch_half_pixel":
		if outW == 1 {
			x = -0.5
		} else {
			x = (xo+0.5)/sc - 0.5
		}
	case "half_pixel_symmetric":
		adj := float64(s.out[a]) / outW
		off := in / 2 * (1 - adj)
		x = off + (xo+0.5)/sc - 0.5
	case "tf_half_pixel_for_nn":
		x = (xo + 0.5) / sc
	default: // half_pixel
		x = (xo+0.5)/sc - 0.5
	}
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0, true // only from a roi that is not finite
	}
	return x, false
}

// nearestIndex rounds a coordinate to an input index by the nearest mode,
// clamped to [0, n).
func (s *resizeSpec) nearestIndex(x float64, n int) int {
	f := math.Floor(x)
	i := f
	if x != f {
		r := x - f
		switch s.nearest {
		case "round_prefer_floor":
			if r > 0.5 {
				i++
			}
		case "round_prefer_ceil":
			if r >= 0.5 {
				i++
			}
		case "ceil":
			i++
		}
	}
	return int(min(max(i, 0), float64(n-1)))
}

func (s *resizeSpec) buildNearest(b *builder) {
	x := b.in[0]
	esz := b.elemSize(0)
	if b.failed() {
		return
	}
	st := rowStrides(s.in)
	axes := make([]mvAxis, len(s.in))
	ident := true
	for a := range axes {
		offs := make([]int, s.out[a])
		for o := range offs {
			c, outside := s.coord(a, o)
			if outside {
				offs[o] = -1
				ident = false
				continue
			}
			i := s.nearestIndex(c, s.in[a])
			offs[o] = i * st[a]
			if i != o {
				ident = false
			}
		}
		if s.out[a] != s.in[a] {
			ident = false
		}
		axes[a] = mvAxis{n: s.out[a], offs: offs}
	}
	if ident {
		b.aliasInput(0)
		return
	}
	b.run(newMover(esz, 0, axes, scalarBits(x.dt, s.extrap)).kernel(0))
}

// taps returns, for every output index of axis a, k input indices and
// their weights (k per output), and which outputs are outside the input.
func (s *resizeSpec) taps(a int) (k int, idx []int32, w []float64, outside []bool) {
	n, nout := s.in[a], s.out[a]
	scale := s.scales[a]
	aa := s.antialias && scale < 1
	var start int
	switch {
	case s.mode == "linear" && aa:
		start = int(math.Floor(-1/scale)) + 1
		k = 2 - 2*start
	case s.mode == "linear":
		start, k = 0, 2
	case aa:
		start = int(math.Floor(-2/scale)) + 1
		k = 2 - 2*start
	default:
		start, k = -1, 4
	}
	idx = make([]int32, nout*k)
	w = make([]float64, nout*k)
	outside = make([]bool, nout)
	for o := 0; o < nout; o++ {
		x, out := s.coord(a, o)
		if out {
			outside[o] = true
			continue
		}
		x0 := math.Floor(x)
		r := x - x0
		ws := w[o*k : (o+1)*k]
		is := idx[o*k : (o+1)*k]
		for t := range ws {
			i := int(x0) + start + t
			d := float64(start+t) - r // the tap's distance from x
			switch {
			case s.mode == "linear" && aa:
				ws[t] = math.Max(0, 1-math.Abs(d*scale))
			case s.mode == "linear":
				ws[t] = 1 - math.Abs(d)
			case aa:
				ws[t] = cubicKernel(d*scale, s.cubicA)
			default:
				ws[t] = cubicCoeff(t, r, s.cubicA)
			}
			if s.exclude && (i < 0 || i >= n) {
				ws[t] = 0
			}
			is[t] = int32(min(max(i, 0), n-1))
		}
		if aa || s.exclude {
			sum := 0.0
			for _, v := range ws {
				sum += v
			}
			if sum != 0 {
				for t := range ws {
					ws[t] /= sum
				}
			}
		}
	}
	return k, idx, w, outside
}

// cubicCoeff is the reference's coefficient of tap t (at distance 1+r, r,
// 1−r, 2−r from the coordinate) for the fraction r.
func cubicCoeff(t int, r, A float64) float64 {
	switch t {
	case 0:
		return ((A*(r+1)-5*A)*(r+1)+8*A)*(r+1) - 4*A
	case 1:
		return ((A+2)*r-(A+3))*r*r + 1
	case 2:
		return ((A+2)*(1-r)-(A+3))*(1-r)*(1-r) + 1
	}
	return ((A*((1-r)+1)-5*A)*((1-r)+1)+8*A)*((1-r)+1) - 4*A
}

// cubicKernel is Keys' cubic convolution kernel with parameter A.
func cubicKernel(x, A float64) float64 {
	x = math.Abs(x)
	switch {
	case x <= 1:
		return ((A+2)*x-(A+3))*x*x + 1
	case x < 2:
		return ((A*x-5*A)*x+8*A)*x - 4*A
	}
	return 0
}

// isIdentity reports whether the taps of an axis copy it unchanged: all
// the weight of output o on input o.
func isIdentity(n, nout, k int, idx []int32, w []float64, outside []bool) bool {
	if n != nout {
		return false
	}
	for o := 0; o < nout; o++ {
		if outside[o] {
			return false
		}
		sum := 0.0
		for t := 0; t < k; t++ {
			switch v := w[o*k+t]; {
			case int(idx[o*k+t]) == o:
				sum += v
			case v != 0:
				return false
			}
		}
		if sum != 1 {
			return false
		}
	}
	return true
}

type float interface{ ~float32 | ~float64 }

// interpPass resizes one axis: the data viewed as [outer, nin, inner]
// becomes [outer, nout, inner].
type interpPass[T float] struct {
	outer, nin, nout, inner, k int
	idx                        []int32 // nout·k input indices along the axis
	w                          []T     // nout·k weights
	outside                    []bool  // nout: extrapolated
	extrap                     bool    // some are
}

func buildInterp[T float](b *builder, s *resizeSpec) {
	r := len(s.in)
	type axisTaps struct {
		a, k    int
		idx     []int32
		w       []float64
		outside []bool
		ratio   float64
	}
	var todo []axisTaps
	for a := 0; a < r; a++ {
		if s.out[a] == 0 {
			b.run(func(_, _ []*Tensor, _ *kctx) error { return nil })
			return
		}
		k, idx, w, outside := s.taps(a)
		if isIdentity(s.in[a], s.out[a], k, idx, w, outside) {
			continue
		}
		todo = append(todo, axisTaps{a: a, k: k, idx: idx, w: w, outside: outside, ratio: float64(s.out[a]) / float64(s.in[a])})
	}
	if len(todo) == 0 {
		b.aliasInput(0)
		return
	}
	// Shrinking axes first (less work for the passes after), then the
	// later axis first (the strided pass on the smaller data).
	for i := 1; i < len(todo); i++ {
		for j := i; j > 0 && (todo[j].ratio < todo[j-1].ratio || todo[j].ratio == todo[j-1].ratio && todo[j].a > todo[j-1].a); j-- {
			todo[j], todo[j-1] = todo[j-1], todo[j]
		}
	}
	shape := append([]int{}, s.in...)
	passes := make([]*interpPass[T], len(todo))
	var bufSize [2]int
	flops := 0.0
	for i, t := range todo {
		p := &interpPass[T]{nin: shape[t.a], nout: s.out[t.a], k: t.k, idx: t.idx, outside: t.outside, extrap: slices.Contains(t.outside, true)}
		p.outer, _ = numel(shape[:t.a])
		p.inner, _ = numel(shape[t.a+1:])
		p.w = make([]T, len(t.w))
		for j, v := range t.w {
			p.w[j] = T(v)
		}
		shape[t.a] = s.out[t.a]
		n, _ := numel(shape)
		flops += float64(2 * n * t.k)
		if i < len(todo)-1 {
			bufSize[i%2] = max(bufSize[i%2], alignUp(n*b.in[0].dt.Size(), arenaAlign))
		}
		passes[i] = p
	}
	b.flops = flops
	b.scratch = bufSize[0] + bufSize[1]
	ev := T(s.extrap)
	b.run(func(in, out []*Tensor, k *kctx) error {
		src := view[T](in[0].data)
		for i, p := range passes {
			var dst []T
			switch {
			case i == len(passes)-1:
				dst = view[T](out[0].data)
			case i%2 == 0:
				dst = view[T](k.scratch[:bufSize[0]])
			default:
				dst = view[T](k.scratch[bufSize[0] : bufSize[0]+bufSize[1]])
			}
			p.run(src, dst, ev)
			src = dst
		}
		return nil
	})
}

func (p *interpPass[T]) run(src, dst []T, ev T) {
	k, inner := p.k, p.inner
	for o := 0; o < p.outer; o++ {
		s := src[o*p.nin*inner : (o+1)*p.nin*inner]
		d := dst[o*p.nout*inner : (o+1)*p.nout*inner]
		if inner == 1 {
			if k == 2 && !p.extrap {
				w, idx := p.w[:2*len(d)], p.idx[:2*len(d)]
				for j := range d {
					d[j] = w[2*j]*s[idx[2*j]] + w[2*j+1]*s[idx[2*j+1]]
				}
				continue
			}
			for j := range d {
				if p.outside[j] {
					d[j] = ev
					continue
				}
				ws, is := p.w[j*k:(j+1)*k], p.idx[j*k:(j+1)*k]
				var acc T
				for t, w := range ws {
					acc += w * s[is[t]]
				}
				d[j] = acc
			}
			continue
		}
		for j := 0; j < p.nout; j++ {
			dr := d[j*inner : (j+1)*inner]
			if p.outside[j] {
				for i := range dr {
					dr[i] = ev
				}
				continue
			}
			ws, is := p.w[j*k:(j+1)*k], p.idx[j*k:(j+1)*k]
			i0 := int(is[0]) * inner
			a, w0 := s[i0:i0+inner], ws[0]
			if k == 2 {
				i1 := int(is[1]) * inner
				c, w1 := s[i1:i1+inner], ws[1]
				c = c[:len(dr)]
				a = a[:len(dr)]
				for i := range dr {
					dr[i] = w0*a[i] + w1*c[i]
				}
				continue
			}
			a = a[:len(dr)]
			for i := range dr {
				dr[i] = w0 * a[i]
			}
			for t := 1; t < k; t++ {
				it := int(is[t]) * inner
				c, wt := s[it:it+inner], ws[t]
				c = c[:len(dr)]
				for i := range dr {
					dr[i] += wt * c[i]
				}
			}
		}
	}
}
