package graph

// convGeom is the geometry of an N-D convolution or pooling window, in
// NCHW layout: batch, channels, spatial sizes in and out, kernel, strides,
// dilations and the padding at the start and end of each spatial axis.
type convGeom struct {
	n, c     int
	in, out  []int
	kernel   []int
	strides  []int
	dilation []int
	padB     []int // start of each spatial axis
	padE     []int // end
}

func (g *convGeom) inSize() int  { return prod(g.in) }
func (g *convGeom) outSize() int { return prod(g.out) }
func (g *convGeom) kSize() int   { return prod(g.kernel) }

func prod(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// windowGeom reads kernel_shape (or takes kernel), strides, dilations,
// pads and auto_pad, with ceil_mode for pooling, and computes the output
// sizes of x's spatial axes. It records an error and returns nil on bad
// attributes or an empty output.
func windowGeom(b *builder, x []int, kernel []int, ceil bool, dilationsAttr bool) *convGeom {
	if len(x) < 3 {
		b.errf("input of rank %d; want N, C and at least one spatial axis", len(x))
		return nil
	}
	sp := len(x) - 2
	g := &convGeom{n: x[0], c: x[1], in: append([]int{}, x[2:]...)}
	ints := func(name string, def int64) []int {
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
			if d < 1 || d > 1<<20 {
				b.errf("%s %v", name, v)
				return out
			}
			out[i] = int(d)
		}
		return out
	}
	if kernel == nil {
		ks := b.attrInts("kernel_shape", nil)
		if len(ks) != sp {
			b.errf("kernel_shape %v for %d spatial axes", ks, sp)
			return nil
		}
		kernel = make([]int, sp)
		for i, d := range ks {
			if d < 1 || d > 1<<16 {
				b.errf("kernel_shape %v", ks)
				return nil
			}
			kernel[i] = int(d)
		}
	}
	g.kernel = kernel
	g.strides = ints("strides", 1)
	g.dilation = make([]int, sp)
	for i := range g.dilation {
		g.dilation[i] = 1
	}
	if dilationsAttr {
		g.dilation = ints("dilations", 1)
	}
	g.padB, g.padE = make([]int, sp), make([]int, sp)
	g.out = make([]int, sp)
	autoPad := b.attrString("auto_pad", "NOTSET")
	pads := b.attrInts("pads", nil)
	if b.failed() {
		return nil
	}
	switch autoPad {
	case "NOTSET", "":
		if pads != nil {
			if len(pads) != 2*sp {
				b.errf("pads %v for %d spatial axes", pads, sp)
				return nil
			}
			for i := range sp {
				if pads[i] < 0 || pads[sp+i] < 0 || pads[i] > 1<<20 || pads[sp+i] > 1<<20 {
					b.errf("pads %v", pads)
					return nil
				}
				g.padB[i], g.padE[i] = int(pads[i]), int(pads[sp+i])
			}
		}
	case "VALID":
	case "SAME_UPPER", "SAME_LOWER":
		for i := range sp {
			ext := (kernel[i]-1)*g.dilation[i] + 1
			out := (g.in[i] + g.strides[i] - 1) / g.strides[i]
			total := max(0, (out-1)*g.strides[i]+ext-g.in[i])
			if autoPad == "SAME_UPPER" {
				g.padB[i] = total / 2
			} else {
				g.padB[i] = total - total/2
			}
			g.padE[i] = total - g.padB[i]
		}
	default:
		b.errf("auto_pad %q", autoPad)
		return nil
	}
	for i := range sp {
		ext := (kernel[i]-1)*g.dilation[i] + 1
		span := g.in[i] + g.padB[i] + g.padE[i] - ext
		if span < 0 {
			b.errf("window %v (dilations %v) larger than the padded input %v", kernel, g.dilation, g.in)
			return nil
		}
		o := span/g.strides[i] + 1
		if ceil && span%g.strides[i] != 0 {
			o++
			// The last window must start inside the input or its start
			// padding (PyTorch's and ONNX's rule).
			if (o-1)*g.strides[i] >= g.in[i]+g.padB[i] {
				o--
			}
		}
		g.out[i] = o
	}
	return g
}
