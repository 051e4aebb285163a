package graph

import "fmt"

// Gather and GatherElements, on any element type with INT32 or INT64
// indices (negative ones count from the end). Indices are data: one out
// of range fails the run with an error.

func init() {
	register("Gather", 1, buildGather)
	register("GatherElements", 11, buildGatherElements)
}

type index interface{ ~int32 | ~int64 }

// buildGather: out = data[:axis] + indices.shape + data[axis+1:], each
// index selecting a slice of data along axis.
func buildGather(b *builder) {
	if !b.arity(2, 2, 1, 1) || !b.wantType(1, Int32, Int64) {
		return
	}
	x, ind := b.in[0], b.in[1]
	r := len(x.shape)
	if r == 0 {
		b.errf("cannot gather from a scalar")
		return
	}
	ax := b.normAxis(b.attrInt("axis", 0), r)
	esz := b.elemSize(0)
	if b.failed() {
		return
	}
	out := append(append(append([]int{}, x.shape[:ax]...), ind.shape...), x.shape[ax+1:]...)
	if len(out) > maxRank {
		b.unsupported("rank %d, limit %d", len(out), maxRank)
		return
	}
	b.setOut(0, x.dt, out)
	if b.failed() {
		return
	}
	g := &gatherPlan{dim: x.shape[ax], nIdx: ind.numel()}
	g.outer, _ = numel(x.shape[:ax])
	g.inner, _ = numel(x.shape[ax+1:])
	var k kernelFunc
	if ind.dt == Int32 {
		k = gatherKernel[int32](g, esz)
	} else {
		k = gatherKernel[int64](g, esz)
	}
	b.run(k)
}

type gatherPlan struct {
	outer, dim, nIdx, inner int
}

func gatherKernel[I index](g *gatherPlan, esz int) kernelFunc {
	switch {
	case g.inner == 1 && esz == 4:
		return func(in, out []*Tensor, _ *kctx) error {
			return gatherWords(g, view[I](in[1].data), view[uint32](in[0].data), view[uint32](out[0].data))
		}
	case g.inner == 1 && esz == 8:
		return func(in, out []*Tensor, _ *kctx) error {
			return gatherWords(g, view[I](in[1].data), view[uint64](in[0].data), view[uint64](out[0].data))
		}
	}
	return func(in, out []*Tensor, _ *kctx) error {
		idx := view[I](in[1].data)[:g.nIdx]
		src, dst := in[0].data, out[0].data
		blk := g.inner * esz
		o := 0
		for k := 0; k < g.outer; k++ {
			base := k * g.dim
			for _, i := range idx {
				j := int64(i)
				if j < 0 {
					j += int64(g.dim)
				}
				if j < 0 || j >= int64(g.dim) {
					return indexErr(i, g.dim)
				}
				s := (base + int(j)) * blk
				copy(dst[o:o+blk], src[s:s+blk])
				o += blk
			}
		}
		return nil
	}
}

// gatherWords is Gather of single elements (the last axis, or an inner
// size of one).
func gatherWords[I index, T word](g *gatherPlan, idx []I, src, dst []T) error {
	idx = idx[:g.nIdx]
	o := 0
	for k := 0; k < g.outer; k++ {
		row := src[k*g.dim : (k+1)*g.dim]
		d := dst[o : o+len(idx)]
		for n, i := range idx {
			j := int64(i)
			if j < 0 {
				j += int64(g.dim)
			}
			if j < 0 || j >= int64(g.dim) {
				return indexErr(i, g.dim)
			}
			d[n] = row[j]
		}
		o += len(idx)
	}
	return nil
}

func indexErr[I index](i I, dim int) error {
	return fmt.Errorf("index %d out of range for a dimension of %d", i, dim)
}

// buildGatherElements: out has the indices' shape; out[i…] is data at i…
// with the axis coordinate replaced by the index there.
func buildGatherElements(b *builder) {
	if !b.arity(2, 2, 1, 1) || !b.wantType(1, Int32, Int64) {
		return
	}
	x, ind := b.in[0], b.in[1]
	r := len(x.shape)
	if r == 0 || len(ind.shape) != r {
		b.errf("data %v and indices %v: want the same rank, at least 1", x.shape, ind.shape)
		return
	}
	ax := b.normAxis(b.attrInt("axis", 0), r)
	esz := b.elemSize(0)
	if b.failed() {
		return
	}
	for d := range ind.shape {
		if d != ax && ind.shape[d] > x.shape[d] {
			b.errf("indices %v exceed data %v on axis %d", ind.shape, x.shape, d)
			return
		}
	}
	b.setOut(0, x.dt, ind.shape)
	ge := &gatherElems{ax: ax, rank: r, dim: x.shape[ax]}
	copy(ge.shape[:], ind.shape)
	copy(ge.stride[:], rowStrides(x.shape))
	var k kernelFunc
	switch {
	case ind.dt == Int32 && esz == 1:
		k = gatherElemsKernel[int32, uint8](ge)
	case ind.dt == Int32 && esz == 2:
		k = gatherElemsKernel[int32, uint16](ge)
	case ind.dt == Int32 && esz == 4:
		k = gatherElemsKernel[int32, uint32](ge)
	case ind.dt == Int32:
		k = gatherElemsKernel[int32, uint64](ge)
	case esz == 1:
		k = gatherElemsKernel[int64, uint8](ge)
	case esz == 2:
		k = gatherElemsKernel[int64, uint16](ge)
	case esz == 4:
		k = gatherElemsKernel[int64, uint32](ge)
	default:
		k = gatherElemsKernel[int64, uint64](ge)
	}
	b.run(k)
}

type gatherElems struct {
	ax, rank, dim int
	shape, stride [maxRank]int
}

func gatherElemsKernel[I index, T word](g *gatherElems) kernelFunc {
	return func(in, out []*Tensor, _ *kctx) error {
		src, idx, dst := view[T](in[0].data), view[I](in[1].data), view[T](out[0].data)
		if len(dst) == 0 {
			return nil
		}
		var pos [maxRank]int
		last := g.rank - 1
		base := 0 // source offset of pos with the axis coordinate 0
		axStride := g.stride[g.ax]
		for n := range dst {
			j := int64(idx[n])
			if j < 0 {
				j += int64(g.dim)
			}
			if j < 0 || j >= int64(g.dim) {
				return indexErr(idx[n], g.dim)
			}
			dst[n] = src[base+int(j)*axStride]
			for d := last; d >= 0; d-- {
				pos[d]++
				if d != g.ax {
					base += g.stride[d]
				}
				if pos[d] < g.shape[d] {
					break
				}
				if d != g.ax {
					base -= g.stride[d] * g.shape[d]
				}
				pos[d] = 0
			}
		}
		return nil
	}
}
