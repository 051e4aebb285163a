package graph

import (
	"strconv"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"github.com/aiaas/aiaas/nn/kernels"
)

// Conv (opset 1 and 11: the same semantics; 11 only relaxed kernel_shape
// inference) and its fused form aiaas.Conv, which Load makes of a Conv
// followed by a BatchNormalization, an Add of a residual and an
// activation: inputs X, W, B, and a residual R added before the
// activation named by the "activation" attribute.
func init() {
	register("Conv", 1, buildConv)
	register("Conv", 11, buildConv)
	register(opFusedConv, 1, buildConv)
}

const opFusedConv = internalPrefix + "Conv"

// fusedAct reads a fused operator's activation attributes into ep.
func fusedAct(b *builder, ep *kernels.Epilogue) {
	switch a := b.attrString("activation", ""); a {
	case "":
	case "Relu":
		ep.Act = kernels.ReLU
	case "Clip":
		ep.Act, ep.Min, ep.Max = kernels.Clip, b.attrFloat("act_min", 0), b.attrFloat("act_max", 0)
	case "HardSwish":
		ep.Act, ep.Alpha, ep.Beta = kernels.HardSwish, b.attrFloat("act_alpha", 1.0/6), b.attrFloat("act_beta", 0.5)
	case "LeakyRelu":
		ep.Act, ep.Alpha = kernels.LeakyReLU, b.attrFloat("act_alpha", 0.01)
	default:
		b.bad("activation %q", a)
	}
}

func buildConv(b *builder) {
	fused := b.node.Op == opFusedConv
	maxIn := 3
	if fused {
		maxIn = 4
	}
	if !b.arity(2, maxIn, 1, 1) || !b.wantType(0, Float32) || !b.sameType(0, 1) {
		return
	}
	x, w := b.in[0], b.in[1]
	if len(w.shape) != len(x.shape) || len(x.shape) < 3 {
		b.errf("input %v and weight %v: want [N, C, spatial…] and [M, C/group, kernel…]", x.shape, w.shape)
		return
	}
	group := int(b.attrInt("group", 1))
	m, cg := w.shape[0], w.shape[1]
	if group < 1 || m%group != 0 || cg*group != x.shape[1] {
		b.errf("input has %d channels, weight %v, group %d: want C = weight[1]·group and weight[0] divisible by group", x.shape[1], w.shape, group)
		return
	}
	kernel := w.shape[2:]
	for _, k := range kernel {
		if k < 1 {
			b.errf("weight %v has an empty kernel", w.shape)
			return
		}
	}
	if ks := b.attrInts("kernel_shape", nil); ks != nil {
		for i, k := range ks {
			if i >= len(kernel) || int(k) != kernel[i] {
				b.errf("kernel_shape %v disagrees with the weight %v", ks, w.shape)
				return
			}
		}
	}
	g := windowGeom(b, x.shape, kernel, false, true)
	if g == nil {
		return
	}
	out := append([]int{g.n, m}, g.out...)
	var bias *val
	if v := b.input(2); v != nil {
		if v.dt != Float32 || len(v.shape) != 1 || v.shape[0] != m {
			b.errf("bias %v %v, want FP32 [%d]", v.dt, v.shape, m)
			return
		}
		bias = v
	}
	var ep kernels.Epilogue
	if fused {
		fusedAct(b, &ep)
	}
	res := b.input(3)
	if res != nil {
		if res.dt != Float32 {
			b.errf("residual is %v", res.dt)
			return
		}
		if _, ok := broadcastShape(out, res.shape); !ok {
			b.errf("residual %v does not broadcast to the output %v", res.shape, out)
			return
		}
	}
	if b.failed() {
		return
	}
	b.setOut(0, Float32, out)
	b.flops = 2 * float64(g.n*m*g.outSize()*cg*g.kSize())
	var resIt *bcastIter
	if res != nil && !sameShape(res.shape, out) {
		resIt = newBcastIter(out, out, res.shape)
	}
	// addResidual adds a residual that broadcasts (one that has the
	// output's shape is added in the kernel's epilogue), then the
	// activation.
	post := func(y []float32, in []*Tensor) {
		if resIt != nil {
			r := view[float32](in[3].data)
			run := resIt.runLen()
			rs := resIt.runStride(1)
			resIt.runs(func(off, _, ri, _ int) {
				yy := y[off : off+run]
				if rs == 1 {
					addF32(yy, yy, r[ri:ri+run])
				} else {
					addScalarF32(yy, yy, r[ri])
				}
			})
		}
		if ep.Act != kernels.Linear {
			kernels.ApplyActivation(y, &ep)
		}
	}
	if n, _ := numel(out); n == 0 {
		b.run(func(in, o []*Tensor, _ *kctx) error { return nil })
		return
	}
	if w.c != nil && len(g.in) <= 2 && cg > 0 {
		if resIt == nil {
			buildConvFast(b, g, w.c, bias, group, m, ep, res != nil, nil)
		} else {
			buildConvFast(b, g, w.c, bias, group, m, kernels.Epilogue{}, false, post)
		}
		return
	}
	// The reference path: weights only known per request (the ONNX test
	// cases feed them as inputs), 3-D convolutions.
	b.run(func(in, o []*Tensor, _ *kctx) error {
		y := view[float32](o[0].data)
		var bv []float32
		if bias != nil {
			bv = view[float32](in[2].data)
		}
		convRef(y, view[float32](in[0].data), view[float32](in[1].data), bv, g, group, m)
		if res != nil && resIt == nil {
			r := view[float32](in[3].data)
			addF32(y, y, r)
		}
		post(y, in)
		return nil
	})
}

// convRef is the direct N-D convolution, for any group, stride, dilation
// and padding: y[n, m, o…] = bias[m] + Σ x[n, c, o·s − pad + k·d] · w[m, c', k…].
func convRef(y, x, w, bias []float32, g *convGeom, group, m int) {
	sp := len(g.in)
	cg, mg := g.c/group, m/group
	inSz, outSz, kSz := g.inSize(), g.outSize(), g.kSize()
	var oc, kc [maxRank]int
	for n := 0; n < g.n; n++ {
		for mm := 0; mm < m; mm++ {
			gi := mm / mg
			yp := y[(n*m+mm)*outSz : (n*m+mm+1)*outSz]
			for o := range yp {
				r := o
				for d := sp - 1; d >= 0; d-- {
					oc[d] = r % g.out[d]
					r /= g.out[d]
				}
				acc := float32(0)
				if bias != nil {
					acc = bias[mm]
				}
				for ci := 0; ci < cg; ci++ {
					xp := x[(n*g.c+gi*cg+ci)*inSz:]
					wp := w[(mm*cg+ci)*kSz:]
					for k := 0; k < kSz; k++ {
						r := k
						for d := sp - 1; d >= 0; d-- {
							kc[d] = r % g.kernel[d]
							r /= g.kernel[d]
						}
						idx, ok := 0, true
						for d := 0; d < sp; d++ {
							i := oc[d]*g.strides[d] - g.padB[d] + kc[d]*g.dilation[d]
							if i < 0 || i >= g.in[d] {
								ok = false
								break
							}
							idx = idx*g.in[d] + i
						}
						if ok {
							acc += xp[idx] * wp[k]
						}
					}
				}
				yp[o] = acc
			}
		}
	}
}

// conv2d is a 1-D or 2-D convolution's geometry as 2-D.
type conv2d struct {
	c, h, w, oh, ow        int
	kh, kw, sh, sw, dh, dw int
	pt, pl                 int
}

func as2d(g *convGeom) conv2d {
	if len(g.in) == 1 {
		return conv2d{c: g.c, h: 1, w: g.in[0], oh: 1, ow: g.out[0], kh: 1, kw: g.kernel[0], sh: 1, sw: g.strides[0], dh: 1, dw: g.dilation[0], pl: g.padB[0]}
	}
	return conv2d{c: g.c, h: g.in[0], w: g.in[1], oh: g.out[0], ow: g.out[1],
		kh: g.kernel[0], kw: g.kernel[1], sh: g.strides[0], sw: g.strides[1],
		dh: g.dilation[0], dw: g.dilation[1], pt: g.padB[0], pl: g.padB[1]}
}

// im2col is a BPacker: column j of B is output pixel j, row p is input
// channel p/(kh·kw) at kernel offset (p/kw%kh, p%kw), of one group of
// one image (x).
type im2col struct {
	g  conv2d
	nr int
	x  []float32 // the group's channels of the current image
}

func (s *im2col) PackB(dst []float32, pc, kc, jc, nc int) {
	g := &s.g
	nr := s.nr
	hw := g.h * g.w
	khw := g.kh * g.kw
	pointwise := khw == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pl == 0
	// Zero the padding columns of the last panel.
	if rem := nc % nr; rem != 0 {
		last := dst[(nc/nr)*kc*nr:]
		for p := 0; p < kc; p++ {
			clear(last[p*nr+rem : p*nr+nr])
		}
	}
	oy0, ox0 := jc/g.ow, jc%g.ow
	for p := 0; p < kc; p++ {
		row := pc + p
		ci := row / khw
		ky := row / g.kw % g.kh
		kx := row % g.kw
		plane := s.x[ci*hw : (ci+1)*hw]
		if pointwise {
			src := plane[jc : jc+nc]
			for j0 := 0; j0 < nc; j0 += nr {
				n := min(nr, nc-j0)
				copy(dst[(j0/nr)*kc*nr+p*nr:][:n], src[j0:j0+n])
			}
			continue
		}
		// Walk the columns panel by panel; within a panel, output row
		// segment by segment (a segment ends at a panel's or a row's end),
		// each a copy when the stride is 1 and the window is inside.
		oy, ox := oy0, ox0
		dx := kx*g.dw - g.pl
		dy := ky*g.dh - g.pt
		for j0 := 0; j0 < nc; j0 += nr {
			d := dst[(j0/nr)*kc*nr+p*nr:][:min(nr, nc-j0)]
			for t := 0; t < len(d); {
				n := min(g.ow-ox, len(d)-t)
				seg := d[t : t+n]
				iy := oy*g.sh + dy
				if uint(iy) >= uint(g.h) {
					clear(seg)
				} else {
					src := plane[iy*g.w : (iy+1)*g.w]
					ix := ox*g.sw + dx
					if g.sw == 1 && ix >= 0 && ix+n <= g.w {
						copy(seg, src[ix:ix+n])
					} else {
						for q := range seg {
							v := float32(0)
							if uint(ix) < uint(g.w) {
								v = src[ix]
							}
							seg[q] = v
							ix += g.sw
						}
					}
				}
				t += n
				ox += n
				if ox == g.ow {
					ox = 0
					oy++
				}
			}
		}
	}
}

type convState struct {
	fast *kernels.Im2Col // this exec's packer (shared tables, own X)
	ep   kernels.Epilogue
	col  []float32 // im2col matrix, for a BLAS other than nn/kernels
}

// ownBLAS reports whether nn/kernels is the registered BLAS: then
// convolutions run on its packed GEMM with the fused epilogue; otherwise
// on im2col and blas32.Gemm, so that the product goes through the BLAS a
// program registered (gonum's pure Go, in the benchmarks that compare).
func ownBLAS() bool { return blas32.Implementation() == kernels.Implementation() }

// buildConvFast plans a 1-D or 2-D convolution with constant weights: each
// group's weights packed once per model for GemmPacked (in the panel
// layout that suits this output size, kernels.PackAFor), the im2col
// tables of this geometry built once per plan (kernels.Im2Col, which
// writes patches straight into the packed panels), bias and the fused
// epilogue in the micro-kernel; or the direct depthwise kernel when every
// group is one channel in and one out.
func buildConvFast(b *builder, g *convGeom, w *Tensor, bias *val, group, m int, ep kernels.Epilogue, residual bool, post func([]float32, []*Tensor)) {
	c2 := as2d(g)
	cg, mg := g.c/group, m/group
	kdim := cg * c2.kh * c2.kw
	ohw := c2.oh * c2.ow
	hw := c2.h * c2.w
	n := g.n
	var constBias []float32
	if bias != nil && bias.c != nil {
		constBias = bias.c.Float32s()
	}
	geom := kernels.DepthwiseGeom{C: cg, H: c2.h, W: c2.w, OH: c2.oh, OW: c2.ow, KH: c2.kh, KW: c2.kw,
		SH: c2.sh, SW: c2.sw, DH: c2.dh, DW: c2.dw, PadT: c2.pt, PadL: c2.pl}
	biasOf := func(in []*Tensor) []float32 {
		if bias == nil {
			return nil
		}
		if constBias != nil {
			return constBias
		}
		return view[float32](in[2].data)
	}
	if cg == 1 && mg == 1 {
		wf := w.Float32s() // depthwise weights are never dropped (findPackOnly)
		geom.C = g.c
		b.state(func() any { return &convState{ep: ep} })
		b.run(func(in, o []*Tensor, k *kctx) error {
			st := k.state.(*convState)
			x, y := view[float32](in[0].data), view[float32](o[0].data)
			st.ep.Bias = biasOf(in)
			for img := 0; img < n; img++ {
				st.ep.Residual = nil
				if residual {
					st.ep.Residual = view[float32](in[3].data)[img*m*ohw : (img+1)*m*ohw]
				}
				kernels.DepthwiseConv2D(y[img*m*ohw:(img+1)*m*ohw], x[img*g.c*hw:(img+1)*g.c*hw], wf, &geom, &st.ep)
			}
			st.ep.Residual = nil
			if post != nil {
				post(y, in)
			}
			return nil
		})
		return
	}
	nr := kernels.PanelWidthFor(mg, ohw)
	model := b.model
	packs := b.prepared(w, "conv/nr="+strconv.Itoa(nr), func() any {
		wf := model.rowMajorLocked(w)
		packs := make([]*kernels.PackedA, group)
		for gi := range packs {
			packs[gi] = kernels.PackAFor(wf[gi*mg*kdim:], mg, kdim, kdim, ohw)
		}
		return packs
	}).([]*kernels.PackedA)
	model.releasePacked(w, packs)
	tables := kernels.NewIm2Col(&geom, packs[0])
	b.state(func() any {
		// The tables are shared; X is each exec's own.
		im := *tables
		return &convState{fast: &im, ep: ep}
	})
	b.run(func(in, o []*Tensor, k *kctx) error {
		st := k.state.(*convState)
		x, y := view[float32](in[0].data), view[float32](o[0].data)
		bv := biasOf(in)
		var r []float32
		if residual {
			r = view[float32](in[3].data)
		}
		if !ownBLAS() {
			wf := model.prepare(w, "conv/row-major", func() any { return model.rowMajorLocked(w) }).([]float32)
			convBLAS(st, y, x, wf, bv, r, &c2, n, g.c, m, group, &ep)
			if post != nil {
				post(y, in)
			}
			return nil
		}
		for img := 0; img < n; img++ {
			for gi := 0; gi < group; gi++ {
				st.fast.X = x[(img*g.c+gi*cg)*hw : (img*g.c+(gi+1)*cg)*hw]
				off := (img*m + gi*mg) * ohw
				st.ep.Bias = nil
				if bv != nil {
					st.ep.Bias = bv[gi*mg : (gi+1)*mg]
				}
				st.ep.Residual = nil
				if r != nil {
					st.ep.Residual = r[off : off+mg*ohw]
				}
				kernels.GemmPacked(y[off:off+mg*ohw], ohw, packs[gi], ohw, st.fast, &st.ep)
			}
		}
		st.fast.X, st.ep.Residual = nil, nil
		if post != nil {
			post(y, in)
		}
		return nil
	})
}

// convBLAS is the convolution as im2col and blas32.Gemm, then bias,
// residual and activation in separate passes.
func convBLAS(st *convState, y, x, w, bias, res []float32, c2 *conv2d, n, c, m, group int, ep *kernels.Epilogue) {
	cg, mg := c/group, m/group
	kdim := cg * c2.kh * c2.kw
	hw, ohw := c2.h*c2.w, c2.oh*c2.ow
	if len(st.col) < kdim*ohw {
		st.col = make([]float32, kdim*ohw) // once per exec
	}
	im := im2col{g: *c2, nr: ohw}
	im.g.c = cg
	col := st.col[:kdim*ohw]
	for img := 0; img < n; img++ {
		for gi := 0; gi < group; gi++ {
			im.x = x[(img*c+gi*cg)*hw : (img*c+(gi+1)*cg)*hw]
			im.PackB(col, 0, kdim, 0, ohw)
			off := (img*m + gi*mg) * ohw
			out := y[off : off+mg*ohw]
			for i := 0; i < mg; i++ {
				row := out[i*ohw : (i+1)*ohw]
				v := float32(0)
				if bias != nil {
					v = bias[gi*mg+i]
				}
				for j := range row {
					row[j] = v
				}
			}
			blas32.Gemm(blas.NoTrans, blas.NoTrans, 1,
				blas32.General{Rows: mg, Cols: kdim, Stride: kdim, Data: w[gi*mg*kdim : (gi+1)*mg*kdim]},
				blas32.General{Rows: kdim, Cols: ohw, Stride: ohw, Data: col},
				1, blas32.General{Rows: mg, Cols: ohw, Stride: ohw, Data: out})
			if res != nil {
				addF32(out, out, res[off:off+mg*ohw])
			}
			kernels.ApplyActivation(out, ep)
		}
	}
}
