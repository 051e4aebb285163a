package kernels

import "sync"

// DepthwiseGeom is the geometry of a depthwise 2-D convolution (one
// filter per channel, group = C): C channels of H×W in, OH×OW out, a
// KH×KW kernel with strides SH, SW, dilations DH, DW, and PadT rows and
// PadL columns of zeros before the input (the padding after it is
// implied by OH and OW).
type DepthwiseGeom struct {
	C, H, W, OH, OW, KH, KW, SH, SW, DH, DW, PadT, PadL int
}

const badGeom = "kernels: bad depthwise geometry"

// depthwiseParallelMinFlops: convolutions below this many multiply-adds
// stay on the calling goroutine.
var depthwiseParallelMinFlops = 1 << 18

// DepthwiseConv2D computes, for each channel c,
//
//	y[c, oy, ox] = act(Σ_{ky,kx} w[c,ky,kx]·x[c, oy·SH−PadT+ky·DH, ox·SW−PadL+kx·DW]
//	               + Bias[c] + Residual[c, oy, ox])
//
// with x zero outside its H×W, x C×H×W, w C×KH×KW and y (and the
// residual) C×OH×OW, all contiguous; ep may be nil. Each output row is
// computed by a vector kernel along ox over the columns whose taps are
// all inside x (AVX-512 for 3×3 kernels of stride 1 and 2, an unrolled
// Go loop elsewhere) and a scalar loop at the borders; rows whose taps
// fall outside x in y read a zero row. Large convolutions are split by
// channels over the worker pool. It allocates nothing in the steady
// state, and panics on short slices or a bad geometry.
func DepthwiseConv2D(y, x, w []float32, g *DepthwiseGeom, ep *Epilogue) {
	if g.C < 0 || g.H < 1 || g.W < 1 || g.OH < 1 || g.OW < 1 || g.KH < 1 || g.KW < 1 ||
		g.SH < 1 || g.SW < 1 || g.DH < 1 || g.DW < 1 || g.PadT < 0 || g.PadL < 0 {
		panic(badGeom)
	}
	if g.C == 0 {
		return
	}
	if ep == nil {
		ep = &noEpilogue
	}
	if len(x) < g.C*g.H*g.W {
		panic(shortA)
	}
	if len(w) < g.C*g.KH*g.KW {
		panic(shortB)
	}
	ohw := g.OH * g.OW
	if len(y) < g.C*ohw {
		panic(shortC)
	}
	if ep.Bias != nil && len(ep.Bias) < g.C {
		panic(shortBias)
	}
	if ep.Residual != nil && len(ep.Residual) < g.C*ohw {
		panic(shortC)
	}
	if ep.Act > LeakyReLU {
		panic(badAct)
	}
	d := dwArgs{y: y, x: x, w: w, g: *g, ep: ep}
	h := 0
	if g.C > 1 && g.C*ohw*g.KH*g.KW >= depthwiseParallelMinFlops {
		h = helpers()
	}
	if h == 0 {
		ws := getWorkspace(0, 0, 0)
		d.channels(ws, 0, g.C)
		putWorkspace(ws)
		return
	}
	j := dwJobs.get()
	j.job = j
	j.d = d
	// About four chunks a goroutine, so a busy core is balanced out.
	chunks := min(g.C, 4*(h+1))
	j.step = (g.C + chunks - 1) / chunks
	j.run((g.C+j.step-1)/j.step, h)
}

type dwArgs struct {
	y, x, w []float32
	g       DepthwiseGeom
	ep      *Epilogue
}

type dwJob struct {
	parCtl
	d    dwArgs
	step int
}

var dwJobs = newFreeList[dwJob]()

func (j *dwJob) free() {
	j.d = dwArgs{}
	dwJobs.put(j)
}

func (j *dwJob) runChunk(ws *workspace, i int) {
	c0 := i * j.step
	j.d.channels(ws, c0, min(j.d.g.C, c0+j.step))
}

// channels computes channels c0…c1−1.
func (d *dwArgs) channels(ws *workspace, c0, c1 int) {
	g := &d.g
	hw, ohw, khw := g.H*g.W, g.OH*g.OW, g.KH*g.KW
	ws.grow(0, g.W)
	zero := ws.tmp[:g.W]
	clear(zero)
	// The output columns whose taps are all inside x: ox0 ≤ ox < ox1.
	ox0 := min(g.OW, (g.PadL+g.SW-1)/g.SW)
	ox1 := ox0
	if last := g.W - 1 + g.PadL - (g.KW-1)*g.DW; last >= 0 {
		ox1 = max(ox0, min(g.OW, last/g.SW+1))
	}
	fast := g.KH == 3 && g.KW == 3 && g.DH == 1 && g.DW == 1 && (g.SW == 1 || g.SW == 2)
	var masks []uint16
	t := &ws.t
	if fast && g.SH == 1 && g.SW == 1 && g.PadT == 1 && g.PadL == 1 && g.OH == g.H && g.OW == g.W && hasDwFlat() {
		masks = dwFlatMasks(g.H, g.W)
		*t = tileArgs{flags: int(d.ep.Act) << tileActShift, lo: d.ep.Min, hi: d.ep.Max, alpha: d.ep.Alpha, beta: d.ep.Beta}
		if d.ep.Residual != nil {
			t.flags |= tileRes
		}
	}
	for c := c0; c < c1; c++ {
		xc := d.x[c*hw : (c+1)*hw]
		yc := d.y[c*ohw : (c+1)*ohw]
		wc := d.w[c*khw : (c+1)*khw]
		b := float32(0)
		if d.ep.Bias != nil {
			b = d.ep.Bias[c]
		}
		if masks != nil {
			if d.ep.Residual != nil {
				t.res = &d.ep.Residual[c*ohw]
			}
			dwFlat3x3(yc, xc, wc, masks, g.H, g.W, b, t)
			continue
		}
		if fast && g.SW == 2 && g.PadL <= 2 && dwChanS2(yc, xc, wc, zero, g, b) {
			d.epilogue(yc, c)
			continue
		}
		for oy := range g.OH {
			row := yc[oy*g.OW : (oy+1)*g.OW]
			if fast {
				var rows [3][]float32
				for ky := range 3 {
					iy := oy*g.SH - g.PadT + ky
					if uint(iy) < uint(g.H) {
						rows[ky] = xc[iy*g.W : (iy+1)*g.W]
					} else {
						rows[ky] = zero
					}
				}
				if ox1 > ox0 {
					off := ox0*g.SW - g.PadL
					dw3x3Row(row[ox0:ox1], rows[0][off:], rows[1][off:], rows[2][off:], wc, g.SW, b)
				}
				for ox := range ox0 {
					row[ox] = dw3x3Edge(&rows, wc, ox*g.SW-g.PadL, b)
				}
				for ox := max(ox0, ox1); ox < g.OW; ox++ {
					row[ox] = dw3x3Edge(&rows, wc, ox*g.SW-g.PadL, b)
				}
				continue
			} else if ox1 > ox0 {
				in := row[ox0:ox1]
				for i := range in {
					in[i] = b
				}
				for ky := range g.KH {
					iy := oy*g.SH - g.PadT + ky*g.DH
					if uint(iy) >= uint(g.H) {
						continue
					}
					src := xc[iy*g.W : (iy+1)*g.W]
					for kx, wv := range wc[ky*g.KW : (ky+1)*g.KW] {
						off := ox0*g.SW - g.PadL + kx*g.DW
						axpyStrided(in, src[off:], wv, g.SW)
					}
				}
			}
			// The border columns, tap by tap with bounds checks.
			d.border(row, xc, wc, oy, 0, ox0, b)
			d.border(row, xc, wc, oy, max(ox0, ox1), g.OW, b)
		}
		d.epilogue(yc, c)
	}
	t.res = nil
}

// epilogue adds channel c's residual to its output yc and applies the
// activation.
func (d *dwArgs) epilogue(yc []float32, c int) {
	if d.ep.Residual != nil {
		AddF32(yc, yc, d.ep.Residual[c*len(yc):(c+1)*len(yc)])
	}
	ApplyActivation(yc, d.ep)
}

// dwMasks caches the lane masks of the flat depthwise kernel per plane
// size: built once per size a process meets (a model has a handful).
var dwMasks struct {
	sync.Mutex
	m map[[2]int][]uint16
}

// dwFlatMasks returns, for each chunk of 16 outputs of an h×w plane, the
// masks of the nine taps of a 3×3 stride-1 padding-1 kernel (tap (ky, kx)
// of output (oy, ox) is inside the input when oy+ky−1 and ox+kx−1 are)
// and of the store (the outputs inside the plane): ten uint16 a chunk.
func dwFlatMasks(h, w int) []uint16 {
	key := [2]int{h, w}
	dwMasks.Lock()
	defer dwMasks.Unlock()
	if m, ok := dwMasks.m[key]; ok {
		return m
	}
	hw := h * w
	chunks := (hw + 15) / 16
	m := make([]uint16, 10*chunks)
	for p := range hw {
		oy, ox := p/w, p%w
		bit := uint16(1) << (p % 16)
		mc := m[10*(p/16) : 10*(p/16)+10]
		for t := range 9 {
			iy, ix := oy+t/3-1, ox+t%3-1
			if iy >= 0 && iy < h && ix >= 0 && ix < w {
				mc[t] |= bit
			}
		}
		mc[9] |= bit
	}
	if dwMasks.m == nil {
		dwMasks.m = make(map[[2]int][]uint16)
	}
	dwMasks.m[key] = m
	return m
}

// dw3x3Edge is one output of a 3×3 depthwise convolution whose taps
// start at column ix of the three rows, some of them outside.
func dw3x3Edge(rows *[3][]float32, w []float32, ix int, b float32) float32 {
	w = w[:9]
	r0, r1, r2 := rows[0], rows[1], rows[2]
	acc := b
	for kx := range 3 {
		if i := ix + kx; uint(i) < uint(len(r0)) {
			acc += w[kx]*r0[i] + w[3+kx]*r1[i] + w[6+kx]*r2[i]
		}
	}
	return acc
}

// border computes row[ox] for ox0 ≤ ox < ox1 with a bounds check per tap.
func (d *dwArgs) border(row, xc, wc []float32, oy, ox0, ox1 int, b float32) {
	g := &d.g
	for ox := ox0; ox < ox1; ox++ {
		acc := b
		for ky := range g.KH {
			iy := oy*g.SH - g.PadT + ky*g.DH
			if uint(iy) >= uint(g.H) {
				continue
			}
			src := xc[iy*g.W : (iy+1)*g.W]
			ix := ox*g.SW - g.PadL
			for _, wv := range wc[ky*g.KW : (ky+1)*g.KW] {
				if uint(ix) < uint(g.W) {
					acc += wv * src[ix]
				}
				ix += g.DW
			}
		}
		row[ox] = acc
	}
}

// axpyStrided adds wv·src[i·s] to dst[i].
func axpyStrided(dst, src []float32, wv float32, s int) {
	if s == 1 {
		src = src[:len(dst)]
		for i := range dst {
			dst[i] += wv * src[i]
		}
		return
	}
	_ = src[(len(dst)-1)*s]
	for i := range dst {
		dst[i] += wv * src[i*s]
	}
}

// dw3x3RowGo sets dst[i] = b + Σ w[3·ky+kx]·r_ky[i·s+kx]: the interior
// of one output row of a 3×3 depthwise convolution, unrolled.
func dw3x3RowGo(dst, r0, r1, r2, w []float32, s int, b float32) {
	n := len(dst)
	if n == 0 {
		return
	}
	w = w[:9]
	w0, w1, w2, w3, w4, w5, w6, w7, w8 := w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8]
	last := (n-1)*s + 3
	r0, r1, r2 = r0[:last], r1[:last], r2[:last]
	if s == 1 {
		for i := range dst {
			p := r0[i : i+3 : i+3]
			q := r1[i : i+3 : i+3]
			r := r2[i : i+3 : i+3]
			dst[i] = b + w0*p[0] + w1*p[1] + w2*p[2] + w3*q[0] + w4*q[1] + w5*q[2] + w6*r[0] + w7*r[1] + w8*r[2]
		}
		return
	}
	for i := range dst {
		j := i * s
		p := r0[j : j+3 : j+3]
		q := r1[j : j+3 : j+3]
		r := r2[j : j+3 : j+3]
		dst[i] = b + w0*p[0] + w1*p[1] + w2*p[2] + w3*q[0] + w4*q[1] + w5*q[2] + w6*r[0] + w7*r[1] + w8*r[2]
	}
}
