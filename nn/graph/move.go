package graph

import (
	"math"
)

// The data-movement engine of the type-agnostic operators (Transpose,
// Slice, Expand, Tile, Pad, DepthToSpace, Resize and Upsample in nearest
// mode): the output is written in row-major order, and each output axis
// says where it reads in the source, either affinely (a start folded into
// the base and a stride, possibly 0 or negative) or through a table of
// source offsets per output index, where -1 stands for the fill value
// (Pad's constant, Resize's extrapolation value). Everything is decided at
// plan time: axes of extent 1 are dropped, affine axes that are contiguous
// together are merged, and the innermost axis becomes runs of copy()
// where the source is contiguous. Elements are moved as unsigned words of
// the element's size, so every dtype works.

// maxMoveRank bounds the axes of a move: Tile splits every axis in two.
const maxMoveRank = 2 * maxRank

// mvAxis is one output axis of a move, in elements of the source.
type mvAxis struct {
	n      int   // output extent
	stride int   // source elements per output step (affine axes)
	offs   []int // source element offset per output index, -1: fill; nil: affine
}

// mvSeg is a piece of the innermost row of a mapped innermost axis.
type mvSeg struct {
	kind uint8 // segCopy, segFill, segGather
	dst  int   // first element of the row
	n    int   // elements
	src  int   // source offset of a copy run
}

const (
	segCopy = iota
	segFill
	segGather
)

// mover is the plan of one move.
type mover struct {
	esz     int
	base    int      // source element of output index 0 (affine parts)
	axes    []mvAxis // outer axes, then the innermost
	total   int      // output elements
	allFill bool     // the output is the fill value only
	fill    uint64   // the fill value's bits (low esz bytes)
	segs    []mvSeg  // the innermost axis's runs, when it is mapped
	tile    bool     // transpose in blocks: the last outer axis is contiguous in the source
}

// newMover plans a move of esz-byte elements: axes are the output axes in
// order, base the source element of output index 0 (from affine axes),
// fill the bits of the fill value. Axes are not retained: mapped tables
// may be shared.
func newMover(esz, base int, axes []mvAxis, fill uint64) *mover {
	m := &mover{esz: esz, base: base, fill: fill, total: 1}
	for _, a := range axes {
		m.total *= a.n
	}
	if m.total == 0 {
		return m
	}
	var out []mvAxis
	for _, a := range axes {
		if a.offs != nil && a.n > 1 {
			if d, ok := linearOffsets(a.offs); ok {
				m.base += a.offs[0]
				a = mvAxis{n: a.n, stride: d}
			}
		}
		if a.n == 1 {
			if a.offs != nil {
				if a.offs[0] < 0 {
					m.allFill = true
				} else {
					m.base += a.offs[0]
				}
			}
			continue
		}
		if k := len(out) - 1; k >= 0 && a.offs == nil && out[k].offs == nil && out[k].stride == a.n*a.stride {
			out[k].n *= a.n
			out[k].stride = a.stride
			continue
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		out = append(out, mvAxis{n: 1, stride: 1})
	}
	m.axes = out
	in := out[len(out)-1]
	if in.offs != nil {
		m.segs = segments(in.offs)
	}
	if L := len(out) - 2; L >= 0 && in.offs == nil && in.stride > 1 && out[L].offs == nil && out[L].stride == 1 {
		m.tile = true
		for _, a := range out[:L] {
			if a.offs != nil {
				m.tile = false
			}
		}
	}
	return m
}

// linearOffsets reports whether a table is an arithmetic progression
// without fills, and its step.
func linearOffsets(offs []int) (int, bool) {
	d := offs[1] - offs[0]
	for i := 1; i < len(offs); i++ {
		if offs[i-1] < 0 || offs[i] < 0 || offs[i]-offs[i-1] != d {
			return 0, false
		}
	}
	return d, true
}

// segments splits a mapped row into copy runs (consecutive sources),
// fill runs and gathered elements.
func segments(offs []int) []mvSeg {
	var segs []mvSeg
	add := func(kind uint8, dst, n, src int) {
		if k := len(segs) - 1; k >= 0 && kind == segGather && segs[k].kind == segGather && segs[k].dst+segs[k].n == dst {
			segs[k].n += n
			return
		}
		segs = append(segs, mvSeg{kind: kind, dst: dst, n: n, src: src})
	}
	for j := 0; j < len(offs); {
		if offs[j] < 0 {
			k := j
			for k < len(offs) && offs[k] < 0 {
				k++
			}
			add(segFill, j, k-j, 0)
			j = k
			continue
		}
		k := j + 1
		for k < len(offs) && offs[k] >= 0 && offs[k] == offs[k-1]+1 {
			k++
		}
		if k-j >= 4 {
			add(segCopy, j, k-j, offs[j])
		} else {
			add(segGather, j, k-j, 0)
		}
		j = k
	}
	return segs
}

// kernel returns the move as the kernel of a one-input, one-output node
// (input src, output 0).
func (m *mover) kernel(src int) kernelFunc {
	run := m.runner()
	return func(in, out []*Tensor, _ *kctx) error {
		run(in[src].data, out[0].data)
		return nil
	}
}

// runner returns the move on bytes for the element size.
func (m *mover) runner() func(src, dst []byte) {
	switch m.esz {
	case 1:
		return func(s, d []byte) { moveRun(m, view[uint8](s), view[uint8](d), uint8(m.fill)) }
	case 2:
		return func(s, d []byte) { moveRun(m, view[uint16](s), view[uint16](d), uint16(m.fill)) }
	case 4:
		return func(s, d []byte) { moveRun(m, view[uint32](s), view[uint32](d), uint32(m.fill)) }
	default:
		return func(s, d []byte) { moveRun(m, view[uint64](s), view[uint64](d), m.fill) }
	}
}

type word interface {
	~uint8 | ~uint16 | ~uint32 | ~uint64
}

func fillWords[T any](d []T, v T) {
	if len(d) == 0 {
		return
	}
	d[0] = v
	for n := 1; n < len(d); n *= 2 {
		copy(d[n:], d[:n])
	}
}

func moveRun[T word](m *mover, s, d []T, fv T) {
	if m.total == 0 {
		return
	}
	d = d[:m.total]
	if m.allFill {
		fillWords(d, fv)
		return
	}
	outer := m.axes[:len(m.axes)-1]
	inner := &m.axes[len(m.axes)-1]
	w := inner.n
	if m.tile {
		moveTiled(m, s, d)
		return
	}
	var idx, contrib [maxMoveRank]int
	cur, fills := m.base, 0
	for k := range outer {
		if o := outer[k].offs; o != nil {
			contrib[k] = o[0]
			if o[0] < 0 {
				fills++
			} else {
				cur += o[0]
			}
		}
	}
	prev := -1
	for r := 0; r*w < len(d); r++ {
		row := d[r*w : r*w+w]
		switch {
		case fills > 0:
			fillWords(row, fv)
			prev = -1
		case cur == prev:
			copy(row, d[(r-1)*w:r*w])
		default:
			moveRow(m, inner, row, s, cur, fv)
			prev = cur
		}
		for k := len(outer) - 1; k >= 0; k-- {
			a := &outer[k]
			idx[k]++
			i := idx[k]
			wrap := i == a.n
			if wrap {
				idx[k], i = 0, 0
			}
			if a.offs == nil {
				if wrap {
					cur -= a.stride * (a.n - 1)
				} else {
					cur += a.stride
				}
			} else {
				if old := contrib[k]; old < 0 {
					fills--
				} else {
					cur -= old
				}
				nw := a.offs[i]
				contrib[k] = nw
				if nw < 0 {
					fills++
				} else {
					cur += nw
				}
			}
			if !wrap {
				break
			}
		}
	}
}

// moveRow writes one innermost row from source offset cur.
func moveRow[T word](m *mover, a *mvAxis, row, s []T, cur int, fv T) {
	switch {
	case a.offs != nil:
		for _, sg := range m.segs {
			r := row[sg.dst : sg.dst+sg.n]
			switch sg.kind {
			case segCopy:
				copy(r, s[cur+sg.src:cur+sg.src+sg.n])
			case segFill:
				fillWords(r, fv)
			default:
				offs := a.offs[sg.dst : sg.dst+sg.n]
				for j, o := range offs {
					r[j] = s[cur+o]
				}
			}
		}
	case a.stride == 1:
		copy(row, s[cur:cur+len(row)])
	case a.stride == 0:
		fillWords(row, s[cur])
	default:
		st := a.stride
		for j := range row {
			row[j] = s[cur+j*st]
		}
	}
}

// moveTiled is a transpose: the innermost axis is strided in the source
// and the axis before it contiguous. Each plane is transposed in blocks
// of a cache line of rows, 8×8 tiles at a time, so every source line read
// is used whole and the destination is written row by row.
func moveTiled[T word](m *mover, s, d []T) {
	L := len(m.axes) - 2
	outer := m.axes[:L]
	nb, w, st := m.axes[L].n, m.axes[L+1].n, m.axes[L+1].stride
	block := max(8, 64/m.esz)
	var idx [maxMoveRank]int
	cur := m.base
	plane := nb * w
	for p := 0; p*plane < len(d); p++ {
		transpose2D(d[p*plane:(p+1)*plane], s[cur:], nb, w, st, block)
		for k := len(outer) - 1; k >= 0; k-- {
			idx[k]++
			if idx[k] < outer[k].n {
				cur += outer[k].stride
				break
			}
			idx[k] = 0
			cur -= outer[k].stride * (outer[k].n - 1)
		}
	}
}

// transpose2D writes d[b·w + j] = s[b + j·st] for b < nb, j < w, in
// blocks of block rows (a multiple of 8).
func transpose2D[T word](d, s []T, nb, w, st, block int) {
	for b0 := 0; b0 < nb; b0 += block {
		bn := min(block, nb-b0)
		j := 0
		if bn == block {
			for ; j+8 <= w; j += 8 {
				for bb := 0; bb < block; bb += 8 {
					tile8(d[(b0+bb)*w+j:], w, s[b0+bb+j*st:], st)
				}
			}
		}
		for ; j < w; j++ {
			src := s[b0+j*st : b0+j*st+bn]
			for b, v := range src {
				d[(b0+b)*w+j] = v
			}
		}
	}
}

// tile8 transposes an 8×8 tile: d[b·dw + j] = s[j·sw + b].
func tile8[T word](d []T, dw int, s []T, sw int) {
	r0, r1, r2, r3 := (*[8]T)(s), (*[8]T)(s[sw:]), (*[8]T)(s[2*sw:]), (*[8]T)(s[3*sw:])
	r4, r5, r6, r7 := (*[8]T)(s[4*sw:]), (*[8]T)(s[5*sw:]), (*[8]T)(s[6*sw:]), (*[8]T)(s[7*sw:])
	for b := 0; b < 8; b++ {
		o := (*[8]T)(d[b*dw:])
		o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7] = r0[b], r1[b], r2[b], r3[b], r4[b], r5[b], r6[b], r7[b]
	}
}

// rowStrides returns the row-major strides of shape, in elements.
func rowStrides(shape []int) []int {
	return stridesOf(make([]int, 0, len(shape)), shape)
}

// transposeMover plans out[i…] = in[perm(i)…] for an input of shape in.
func transposeMover(esz int, in []int, perm []int) *mover {
	st := rowStrides(in)
	axes := make([]mvAxis, len(perm))
	for k, p := range perm {
		axes[k] = mvAxis{n: in[p], stride: st[p]}
	}
	return newMover(esz, 0, axes, 0)
}

// scalarBits returns the bits of v converted to dt, for fill values given
// as floats (Pad's value attribute, Resize's extrapolation value).
func scalarBits(dt DType, v float64) uint64 {
	switch dt {
	case Float32:
		return uint64(math.Float32bits(float32(v)))
	case Float64:
		return math.Float64bits(v)
	case Float16:
		return uint64(Float32ToHalf(float32(v)))
	case BFloat16:
		return uint64(Float32ToBFloat16(float32(v)))
	case Bool:
		if v != 0 {
			return 1
		}
		return 0
	case Int8, Int16, Int32, Int64:
		return uint64(int64(v)) & sizeMask(dt.Size())
	}
	if v < 0 {
		return uint64(int64(v)) & sizeMask(dt.Size())
	}
	return uint64(v) & sizeMask(dt.Size())
}

func sizeMask(sz int) uint64 {
	if sz >= 8 {
		return math.MaxUint64
	}
	return 1<<(8*sz) - 1
}

// bitsOf reads the first element of t's bytes as little-endian bits.
func bitsOf(b []byte, esz int) uint64 {
	var v uint64
	for i := 0; i < esz && i < len(b); i++ {
		v |= uint64(b[i]) << (8 * i)
	}
	return v
}
