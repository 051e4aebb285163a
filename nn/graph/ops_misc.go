package graph

// Trilu and CumSum.

func init() {
	register("Trilu", 14, buildTrilu)
	register("CumSum", 11, buildCumSum)
}

// scalarIntInput reads the optional integer scalar input i (Trilu's k,
// CumSum's axis), def when absent.
func (b *builder) scalarIntInput(i int, def int64) (int64, bool) {
	if b.input(i) == nil {
		return def, true
	}
	v, ok := b.constInts(i)
	if !ok {
		return 0, false
	}
	if len(v) != 1 {
		b.errf("input %d has %d elements, want a scalar", i, len(v))
		return 0, false
	}
	return v[0], true
}

// buildTrilu: keeps the upper (upper=1, j-i ≥ k) or lower (j-i ≤ k)
// triangle of every matrix in the last two axes and zeroes the rest; any
// element type.
func buildTrilu(b *builder) {
	if !b.arity(1, 2, 1, 1) {
		return
	}
	k, ok := b.scalarIntInput(1, 0)
	if !ok {
		return
	}
	x := b.in[0]
	if len(x.shape) < 2 {
		b.errf("input %v: want rank ≥ 2", x.shape)
		return
	}
	esz := b.elemSize(0)
	upper := b.attrInt("upper", 1) != 0
	b.setOut(0, x.dt, x.shape)
	if b.failed() {
		return
	}
	r := len(x.shape)
	n, m := x.shape[r-2], x.shape[r-1]
	k = max(min(k, int64(m)+1), -int64(n)-1)
	kk := int(k)
	rowB := m * esz
	b.run(func(in, out []*Tensor, _ *kctx) error {
		src, dst := in[0].data, out[0].data
		for off := 0; off < len(dst); off += n * rowB {
			for i := 0; i < n; i++ {
				s, d := src[off+i*rowB:off+(i+1)*rowB], dst[off+i*rowB:off+(i+1)*rowB]
				// Keep columns [lo, hi).
				lo, hi := 0, m
				if upper {
					lo = min(max(i+kk, 0), m)
				} else {
					hi = min(max(i+kk+1, 0), m)
				}
				clear(d[:lo*esz])
				if hi > lo {
					copy(d[lo*esz:hi*esz], s[lo*esz:hi*esz])
				} else {
					hi = lo
				}
				clear(d[hi*esz:])
			}
		}
		return nil
	})
}

// buildCumSum: running sums along the axis input, exclusive (starting at
// 0) and reverse as the attributes say.
func buildCumSum(b *builder) {
	if !b.arity(2, 2, 1, 1) || !b.wantType(0, Float32, Float64, Int32, Int64, Uint32, Uint64) {
		return
	}
	a, ok := b.scalarIntInput(1, 0)
	if !ok {
		return
	}
	x := b.in[0]
	if len(x.shape) == 0 {
		b.errf("cannot sum a scalar along an axis")
		return
	}
	ax := b.normAxis(a, len(x.shape))
	if b.failed() {
		return
	}
	c := &cumsum{
		n:         x.shape[ax],
		exclusive: b.attrInt("exclusive", 0) != 0,
		reverse:   b.attrInt("reverse", 0) != 0,
	}
	c.outer, _ = numel(x.shape[:ax])
	c.inner, _ = numel(x.shape[ax+1:])
	b.setOut(0, x.dt, x.shape)
	b.flops = float64(x.numel())
	switch x.dt {
	case Float32:
		b.run(cumsumKernel[float32](c))
	case Float64:
		b.run(cumsumKernel[float64](c))
	case Int32:
		b.run(cumsumKernel[int32](c))
	case Int64:
		b.run(cumsumKernel[int64](c))
	case Uint32:
		b.run(cumsumKernel[uint32](c))
	case Uint64:
		b.run(cumsumKernel[uint64](c))
	}
}

type cumsum struct {
	outer, n, inner    int
	exclusive, reverse bool
}

func cumsumKernel[T numeric](c *cumsum) kernelFunc {
	return func(in, out []*Tensor, _ *kctx) error {
		x, y := view[T](in[0].data), view[T](out[0].data)
		in1 := c.inner
		for o := 0; o < c.outer; o++ {
			xo, yo := x[o*c.n*in1:(o+1)*c.n*in1], y[o*c.n*in1:(o+1)*c.n*in1]
			for t := 0; t < c.n; t++ {
				j, p := t, t-1
				if c.reverse {
					j, p = c.n-1-t, c.n-t
				}
				d := yo[j*in1 : (j+1)*in1]
				switch {
				case t == 0 && c.exclusive:
					clear(d)
				case t == 0:
					copy(d, xo[j*in1:(j+1)*in1])
				default:
					prev := yo[p*in1 : (p+1)*in1]
					add := xo[j*in1 : (j+1)*in1]
					if c.exclusive {
						add = xo[p*in1 : (p+1)*in1]
					}
					for i := range d {
						d[i] = prev[i] + add[i]
					}
				}
			}
		}
		return nil
	}
}
