package graph

import (
	"github.com/aiaas/aiaas/nn/kernels"
)

// ConvTranspose (1 and 11: 11 changed how SAME_UPPER and an explicit
// output_shape split the padding, and the auto_pad target size).
func init() {
	register("ConvTranspose", 1, buildConvTranspose(1))
	register("ConvTranspose", 11, buildConvTranspose(11))
}

// ctGeom is a transposed convolution's geometry: input x [n, c, in…],
// weight [c, m/group, kernel…], output [n, m, out…]; input position i
// and kernel tap k write output position i·stride + k·dilation − padB.
type ctGeom struct {
	n, c, m, group int
	in, out        []int
	kernel         []int
	strides        []int
	dilation       []int
	padB           []int
}

// ctGeometry reads the attributes of a ConvTranspose of x by a weight w
// and computes the output size and the start padding of each axis, nil
// after an error.
//
// Without output_shape or auto_pad, out = s·(in − 1) + output_padding +
// (k − 1)·d + 1 − padB − padE. With output_shape (which overrides pads),
// or auto_pad SAME_* (out = in·s), the total padding is the full size
// minus the wanted one (negative: none, the output longer, zero at the
// end), split per version: opset 11's spec puts the odd unit at the end
// for SAME_UPPER and at the start otherwise; opset 1 (ONNX Runtime's rule
// for it, its spec's formula) does the reverse.
func ctGeometry(b *builder, ver int, x, w []int) *ctGeom {
	if len(x) < 3 || len(w) != len(x) {
		b.errf("input %v and weight %v: want [N, C, spatial…] and [C, M/group, kernel…]", x, w)
		return nil
	}
	if len(x) > maxRank {
		b.unsupported("rank %d, limit %d", len(x), maxRank)
		return nil
	}
	sp := len(x) - 2
	group := b.attrInt("group", 1)
	if group < 1 || group > max(1, int64(x[1])) || int64(x[1])%group != 0 || w[0] != x[1] {
		b.errf("input has %d channels, weight %v, group %d: want weight[0] = C, divisible by group", x[1], w, group)
		return nil
	}
	g := &ctGeom{n: x[0], c: x[1], group: int(group), m: w[1] * int(group), in: append([]int{}, x[2:]...), kernel: append([]int{}, w[2:]...)}
	if ks := b.attrInts("kernel_shape", nil); ks != nil {
		if len(ks) != sp {
			b.errf("kernel_shape %v for %d spatial axes", ks, sp)
			return nil
		}
		for i, k := range ks {
			if int(k) != g.kernel[i] {
				b.errf("kernel_shape %v disagrees with the weight %v", ks, w)
				return nil
			}
		}
	}
	for _, k := range g.kernel {
		if k < 1 {
			b.errf("weight %v has an empty kernel", w)
			return nil
		}
	}
	ints := func(name string, def, lo int64) []int {
		v := b.attrInts(name, nil)
		out := make([]int, sp)
		for i := range out {
			out[i] = int(def)
		}
		if v == nil {
			return out
		}
		if len(v) != sp {
			b.errf("%s has %d values for %d spatial axes", name, len(v), sp)
			return out
		}
		for i, d := range v {
			if d < lo || d > 1<<20 {
				b.errf("%s %v", name, v)
				return out
			}
			out[i] = int(d)
		}
		return out
	}
	g.strides = ints("strides", 1, 1)
	g.dilation = ints("dilations", 1, 1)
	outPad := ints("output_padding", 0, 0)
	var outShape []int
	if os := b.attrInts("output_shape", nil); os != nil {
		if len(os) == sp+2 {
			os = os[2:]
		}
		if len(os) != sp {
			b.errf("output_shape %v for %d spatial axes", os, sp)
			return nil
		}
		outShape = make([]int, sp)
		for i, d := range os {
			if d < 1 || d > 1<<24 {
				b.errf("output_shape %v", os)
				return nil
			}
			outShape[i] = int(d)
		}
	}
	autoPad := b.attrString("auto_pad", "NOTSET")
	pads := b.attrInts("pads", nil)
	if b.failed() {
		return nil
	}
	g.padB, g.out = make([]int, sp), make([]int, sp)
	// split returns the start padding of a total.
	split := func(total int) int {
		total = max(total, 0)
		upper := autoPad == "SAME_UPPER"
		if ver < 11 {
			upper = !upper
		}
		if upper {
			return total / 2
		}
		return total - total/2
	}
	for i := range sp {
		full := g.strides[i]*(g.in[i]-1) + outPad[i] + (g.kernel[i]-1)*g.dilation[i] + 1
		switch {
		case outShape != nil:
			g.out[i] = outShape[i]
			g.padB[i] = split(full - outShape[i])
		case autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER":
			g.out[i] = g.in[i] * g.strides[i]
			g.padB[i] = split(full - g.out[i])
		case autoPad == "VALID":
			g.out[i] = full
		case autoPad == "NOTSET" || autoPad == "":
			if pads != nil {
				if len(pads) != 2*sp {
					b.errf("pads %v for %d spatial axes", pads, sp)
					return nil
				}
				if pads[i] < 0 || pads[sp+i] < 0 || pads[i] > 1<<20 || pads[sp+i] > 1<<20 {
					b.errf("pads %v", pads)
					return nil
				}
				g.padB[i] = int(pads[i])
				full -= int(pads[i] + pads[sp+i])
			}
			g.out[i] = full
		default:
			b.errf("auto_pad %q", autoPad)
			return nil
		}
		if g.out[i] < 1 {
			b.errf("output size %d on spatial axis %d (input %v, weight %v, pads %v)", g.out[i], i, x, w, pads)
			return nil
		}
	}
	return g
}

func buildConvTranspose(ver int) buildFunc {
	return func(b *builder) {
		if !b.arity(2, 3, 1, 1) || !b.wantType(0, Float32) || !b.sameType(0, 1) {
			return
		}
		x, w := b.in[0], b.in[1]
		g := ctGeometry(b, ver, x.shape, w.shape)
		if g == nil {
			return
		}
		bias := b.input(2)
		if bias != nil && (bias.dt != Float32 || len(bias.shape) != 1 || bias.shape[0] != g.m) {
			b.errf("bias %v %v, want FP32 [%d]", bias.dt, bias.shape, g.m)
			return
		}
		out := append([]int{g.n, g.m}, g.out...)
		b.setOut(0, Float32, out)
		if b.failed() {
			return
		}
		b.flops = 2 * float64(g.n*g.c*(g.m/g.group)) * float64(prod(g.in)*prod(g.kernel))
		// The fast path needs a non-empty product and a column buffer of
		// at least one input row within reason.
		rows := g.m / g.group * prod(g.kernel)
		if w.c != nil && len(g.in) <= 2 && prod(g.in) > 0 && rows > 0 && g.c > 0 && rows*g.in[len(g.in)-1] <= ctMaxRow {
			buildCTFast(b, g, w.c, bias)
			return
		}
		b.run(func(in, o []*Tensor, _ *kctx) error {
			var bv []float32
			if bias != nil {
				bv = view[float32](in[2].data)
			}
			convTransposeRef(view[float32](o[0].data), view[float32](in[0].data), view[float32](in[1].data), bv, g)
			return nil
		})
	}
}

// convTransposeRef is the direct N-D transposed convolution: the output
// starts at the bias, then every input value times every tap of its
// kernel is added at i·s + k·d − padB.
func convTransposeRef(y, x, w, bias []float32, g *ctGeom) {
	sp := len(g.in)
	cg, mg := g.c/g.group, g.m/g.group
	inSz, outSz, kSz := prod(g.in), prod(g.out), prod(g.kernel)
	for n := 0; n < g.n; n++ {
		for m := 0; m < g.m; m++ {
			yp := y[(n*g.m+m)*outSz : (n*g.m+m+1)*outSz]
			v := float32(0)
			if bias != nil {
				v = bias[m]
			}
			for i := range yp {
				yp[i] = v
			}
		}
	}
	var ic, kc [maxRank]int
	for n := 0; n < g.n; n++ {
		for c := 0; c < g.c; c++ {
			gi := c / cg
			xp := x[(n*g.c+c)*inSz : (n*g.c+c+1)*inSz]
			for mm := 0; mm < mg; mm++ {
				m := gi*mg + mm
				yp := y[(n*g.m+m)*outSz : (n*g.m+m+1)*outSz]
				wp := w[(c*mg+mm)*kSz : (c*mg+mm+1)*kSz]
				for i, xv := range xp {
					r := i
					for d := sp - 1; d >= 0; d-- {
						ic[d] = r % g.in[d]
						r /= g.in[d]
					}
					for k, wv := range wp {
						r := k
						for d := sp - 1; d >= 0; d-- {
							kc[d] = r % g.kernel[d]
							r /= g.kernel[d]
						}
						idx, ok := 0, true
						for d := 0; d < sp; d++ {
							o := ic[d]*g.strides[d] + kc[d]*g.dilation[d] - g.padB[d]
							if o < 0 || o >= g.out[d] {
								ok = false
								break
							}
							idx = idx*g.out[d] + o
						}
						if ok {
							yp[idx] += xv * wv
						}
					}
				}
			}
		}
	}
}

// ct2d is a 1-D or 2-D transposed convolution as 2-D.
type ct2d struct {
	h, w, oh, ow           int
	kh, kw, sh, sw, dh, dw int
	pt, pl                 int
	// Per kernel column kx, the input columns [ixLo, ixHi) that land
	// inside the output; per kernel row the same for input rows.
	ixLo, ixHi, iyLo, iyHi []int
}

func ctAs2d(g *ctGeom) *ct2d {
	var c ct2d
	if len(g.in) == 1 {
		c = ct2d{h: 1, w: g.in[0], oh: 1, ow: g.out[0], kh: 1, kw: g.kernel[0], sh: 1, sw: g.strides[0], dh: 1, dw: g.dilation[0], pl: g.padB[0]}
	} else {
		c = ct2d{h: g.in[0], w: g.in[1], oh: g.out[0], ow: g.out[1], kh: g.kernel[0], kw: g.kernel[1],
			sh: g.strides[0], sw: g.strides[1], dh: g.dilation[0], dw: g.dilation[1], pt: g.padB[0], pl: g.padB[1]}
	}
	// Input index i lands at i·s + k·d − pad, inside [0, out) for i in
	// [lo, hi).
	span := func(k, s, d, pad, in, out int) (int, int) {
		off := k*d - pad
		lo := 0
		if off < 0 {
			lo = (-off + s - 1) / s
		}
		hi := 0
		if out-1-off >= 0 {
			hi = min(in, (out-1-off)/s+1)
		}
		return min(lo, in), max(min(lo, in), hi)
	}
	for k := range c.kw {
		lo, hi := span(k, c.sw, c.dw, c.pl, c.w, c.ow)
		c.ixLo, c.ixHi = append(c.ixLo, lo), append(c.ixHi, hi)
	}
	for k := range c.kh {
		lo, hi := span(k, c.sh, c.dh, c.pt, c.h, c.oh)
		c.iyLo, c.iyHi = append(c.iyLo, lo), append(c.iyHi, hi)
	}
	return &c
}

// matB is a BPacker over a row-major matrix: rows are input channels,
// columns pixels off … off + n − 1 of each.
type matB struct {
	b       []float32
	ld, off int
	nr      int
}

func (s *matB) PackB(dst []float32, pc, kc, jc, nc int) {
	nr := s.nr
	for j0 := 0; j0 < nc; j0 += nr {
		n := min(nr, nc-j0)
		panel := dst[(j0/nr)*kc*nr : (j0/nr+1)*kc*nr]
		for p := 0; p < kc; p++ {
			src := s.b[(pc+p)*s.ld+s.off+jc+j0:]
			d := panel[p*nr : p*nr+nr]
			copy(d[:n], src[:n])
			if n < nr {
				clear(d[n:])
			}
		}
	}
}

type ctState struct {
	b  matB
	ep kernels.Epilogue
}

// ctColBytes bounds the column buffer of the fast path: the product is
// computed in bands of input rows whose columns fit.
var ctColBytes = 8 << 20 // a variable for the tests

// ctMaxRow bounds the floats of one input row's columns (the smallest
// band); beyond it the reference path runs in no extra memory.
const ctMaxRow = 16 << 20

// buildCTFast plans a 1-D or 2-D transposed convolution with constant
// weights: per image, group and band of input rows, col = Wᵀ·X on the
// packed GEMM (Wᵀ, [m/group · kh·kw, c/group], packed once), then col2im
// adds each tap's plane into the output, which starts at the bias.
func buildCTFast(b *builder, g *ctGeom, w *Tensor, bias *val) {
	c2 := ctAs2d(g)
	cg, mg := g.c/g.group, g.m/g.group
	khw := c2.kh * c2.kw
	rows := mg * khw
	wf := w.Float32s()
	packs := b.prepared(w, "convtranspose", func() any {
		packs := make([]*kernels.PackedA, g.group)
		at := make([]float32, rows*cg)
		for gi := range packs {
			// W of the group is [cg, rows]; A is its transpose.
			wg := wf[gi*cg*rows : (gi+1)*cg*rows]
			for ci := range cg {
				for r := range rows {
					at[r*cg+ci] = wg[ci*rows+r]
				}
			}
			packs[gi] = kernels.PackA(at, rows, cg, cg)
		}
		return packs
	}).([]*kernels.PackedA)
	nr := packs[0].PanelWidth()
	band := max(1, min(c2.h, ctColBytes/(4*rows*c2.w)))
	b.scratch = 4 * rows * band * c2.w
	var constBias []float32
	if bias != nil && bias.c != nil {
		constBias = bias.c.Float32s()
	}
	hw, ohw := c2.h*c2.w, c2.oh*c2.ow
	// Kernel == stride, no dilation, padding or extension (U-Net's 2×2
	// stride 2): every output is one tap of one input, written once with
	// its bias, with no fill beforehand.
	tiled := c2.kh == c2.sh && c2.kw == c2.sw && (c2.dh == 1 || c2.kh == 1) && (c2.dw == 1 || c2.kw == 1) &&
		c2.pt == 0 && c2.pl == 0 && c2.oh == c2.h*c2.sh && c2.ow == c2.w*c2.sw
	b.state(func() any { return &ctState{b: matB{ld: hw, nr: nr}} })
	b.run(func(in, o []*Tensor, k *kctx) error {
		st := k.state.(*ctState)
		x, y := view[float32](in[0].data), view[float32](o[0].data)
		col := view[float32](k.scratch)
		bv := constBias
		if bias != nil && bv == nil {
			bv = view[float32](in[2].data)
		}
		for img := 0; img < g.n; img++ {
			for m := 0; m < g.m && !tiled; m++ {
				yp := y[(img*g.m+m)*ohw : (img*g.m+m+1)*ohw]
				v := float32(0)
				if bv != nil {
					v = bv[m]
				}
				for i := range yp {
					yp[i] = v
				}
			}
			for gi := 0; gi < g.group; gi++ {
				st.b.b = x[(img*g.c+gi*cg)*hw : (img*g.c+(gi+1)*cg)*hw]
				yg := y[(img*g.m+gi*mg)*ohw : (img*g.m+(gi+1)*mg)*ohw]
				for iy0 := 0; iy0 < c2.h; iy0 += band {
					iy1 := min(c2.h, iy0+band)
					n := (iy1 - iy0) * c2.w
					st.b.off = iy0 * c2.w
					kernels.GemmPacked(col[:rows*n], n, packs[gi], n, &st.b, &st.ep)
					if tiled {
						var bg []float32
						if bv != nil {
							bg = bv[gi*mg : (gi+1)*mg]
						}
						col2imTiled(yg, col[:rows*n], c2, mg, iy0, iy1, bg)
						continue
					}
					col2im(yg, col[:rows*n], c2, mg, iy0, iy1)
				}
			}
		}
		st.b.b = nil
		return nil
	})
}

// col2im adds col (rows m·kh·kw + ky·kw + kx, columns the input pixels
// of rows iy0 … iy1 − 1) into the output planes y of mg channels.
func col2im(y, col []float32, c *ct2d, mg, iy0, iy1 int) {
	n := (iy1 - iy0) * c.w
	ohw := c.oh * c.ow
	for m := range mg {
		yp := y[m*ohw : (m+1)*ohw]
		for ky := range c.kh {
			ylo, yhi := max(iy0, c.iyLo[ky]), min(iy1, c.iyHi[ky])
			for kx := range c.kw {
				r := (m*c.kh+ky)*c.kw + kx
				src := col[r*n : (r+1)*n]
				xlo, xhi := c.ixLo[kx], c.ixHi[kx]
				if xlo >= xhi {
					continue
				}
				ox0 := xlo*c.sw + kx*c.dw - c.pl
				for iy := ylo; iy < yhi; iy++ {
					oy := iy*c.sh + ky*c.dh - c.pt
					s := src[(iy-iy0)*c.w+xlo : (iy-iy0)*c.w+xhi]
					d := yp[oy*c.ow+ox0:]
					if c.sw == 1 {
						addF32(d[:len(s)], d[:len(s)], s)
						continue
					}
					d = d[:(len(s)-1)*c.sw+1]
					for j, v := range s {
						d[j*c.sw] += v
					}
				}
			}
		}
	}
}

// col2imTiled is col2im when the windows tile the output exactly (kernel
// = stride, no dilation or padding): output (iy·kh + ky, ix·kw + kx) of
// channel m is col row (m·kh + ky)·kw + kx, column (iy, ix), plus bias[m].
func col2imTiled(y, col []float32, c *ct2d, mg, iy0, iy1 int, bias []float32) {
	n := (iy1 - iy0) * c.w
	ohw := c.oh * c.ow
	kw := c.kw
	for m := range mg {
		yp := y[m*ohw : (m+1)*ohw]
		bm := float32(0)
		if bias != nil {
			bm = bias[m]
		}
		for ky := range c.kh {
			r0 := (m*c.kh + ky) * kw
			for iy := iy0; iy < iy1; iy++ {
				oy := iy*c.kh + ky
				d := yp[oy*c.ow : (oy+1)*c.ow]
				off := (iy - iy0) * c.w
				if kw == 2 {
					s0 := col[r0*n+off : r0*n+off+c.w]
					s1 := col[(r0+1)*n+off : (r0+1)*n+off+c.w]
					s1 = s1[:len(s0)]
					d = d[:2*len(s0)]
					for ix, v := range s0 {
						p := d[2*ix : 2*ix+2 : 2*ix+2]
						p[0] = v + bm
						p[1] = s1[ix] + bm
					}
					continue
				}
				for kx := range kw {
					s := col[(r0+kx)*n+off : (r0+kx)*n+off+c.w]
					for ix, v := range s {
						d[ix*kw+kx] = v + bm
					}
				}
			}
		}
	}
}
