package graph

import (
	"math"

	"github.com/aiaas/aiaas/nn/kernels"
)

// aiaas.Attention: scaled dot-product attention as exporters write it,
// MatMul(q, kᵀ) → ·scale or /scale → Where(cond, ·, fill) → + mask →
// Softmax(last axis) → MatMul(·, v), with the Transposes around it, made
// one operator by fuse_transformer.go.
//
// Inputs: q, k, v (rank 4), mask (optional, FLOAT, added to the scores,
// broadcast to [B, H, Sq, Sk]), cond (optional, BOOL, broadcast likewise:
// where false the score is fill before the mask is added), scale
// (optional FLOAT scalar: the scores are multiplied by it, or divided
// with scale_div = 1; absent, by the attribute scale). q_perm, k_perm and
// v_perm say which input axis is each axis of the canonical q [B, H, Sq,
// d], k [B, H, Sk, d] and v [B, H, Sk, dv] (a Transpose's perm, the
// Transpose absorbed), out_perm lays out the canonical output [B, H, Sq,
// dv] (the Transpose after the second MatMul). The last canonical axis
// must be the input's last. B and H broadcast as MatMul's batch axes do.
//
// The kernel never forms the Sq×Sk scores: for each block of bk keys and
// values (packed once for the GEMM micro-kernel, the scale folded into
// kᵀ) it takes every block of bq queries through an online softmax — a
// running maximum and sum per query, what earlier blocks added to the
// query's output row rescaled when the maximum grows, as FlashAttention
// does — so its memory is O(bq·bk + bk·(d + dv) + Sq) whatever the
// sequence lengths. When cond is a constant at plan time (GPT-2's causal
// bias, sliced by shapes the plan knows) and is the causal pattern — key
// j visible to query i iff j ≤ i + Sk − Sq — it is not read: the queries
// before a key block skip it and the diagonal block is masked in place.

const opAttention = internalPrefix + "Attention"

func init() {
	register(opAttention, 1, buildAttention)
}

const (
	attnBlockQ = 64
	attnBlockK = 256
)

// attnGeom is an attention's shapes and the element strides of each
// operand along the canonical axes (0 for a broadcast one).
type attnGeom struct {
	b, h, sq, sk, d, dv int
	q, k, v, o          [4]int // strides along B, H, S, d
	mask, cond          [4]int // strides along B, H, Sq, Sk
	hasMask, hasCond    bool
	causal              bool
	scaleIn, scaleDiv   bool
	scale, fill         float32
	bq, bk              int
}

func buildAttention(b *builder) {
	if !b.arity(3, 6, 1, 1) || !b.wantType(0, Float32) || !b.sameType(0, 1) || !b.sameType(0, 2) || !b.sameType(0, 3) || !b.wantType(4, Bool) || !b.sameType(0, 5) {
		return
	}
	g := &attnGeom{scale: b.attrFloat("scale", 1), fill: b.attrFloat("fill", 0)}
	g.scaleDiv = b.attrInt("scale_div", 0) != 0
	var canon [3][4]int
	for i, name := range []string{"q_perm", "k_perm", "v_perm"} {
		x := b.in[i]
		if len(x.shape) != 4 {
			b.errf("input %d has shape %v; attention takes rank 4", i, x.shape)
			return
		}
		perm, ok := b.perm4(name)
		if !ok {
			return
		}
		st := make([]int, 4)
		stridesOf(st, x.shape)
		var s [4]int
		for a := 0; a < 4; a++ {
			canon[i][a] = x.shape[perm[a]]
			s[a] = st[perm[a]]
		}
		switch i {
		case 0:
			g.q = s
		case 1:
			g.k = s
		case 2:
			g.v = s
		}
	}
	cq, ck, cv := canon[0], canon[1], canon[2]
	var bh [2]int
	for a := 0; a < 2; a++ {
		d, ok := broadcastShape([]int{cq[a]}, []int{ck[a]}, []int{cv[a]})
		if !ok {
			b.errf("batch axes of q %v, k %v, v %v do not broadcast", cq, ck, cv)
			return
		}
		bh[a] = d[0]
		for _, p := range []struct {
			n int
			s *[4]int
		}{{cq[a], &g.q}, {ck[a], &g.k}, {cv[a], &g.v}} {
			if p.n == 1 {
				p.s[a] = 0
			}
		}
	}
	g.b, g.h, g.sq, g.d, g.sk, g.dv = bh[0], bh[1], cq[2], cq[3], ck[2], cv[3]
	if ck[3] != g.d || cv[2] != g.sk {
		b.errf("q %v, k %v, v %v (canonical [B, H, S, d]) do not fit", cq, ck, cv)
		return
	}
	outPerm, ok := b.perm4("out_perm")
	if !ok {
		return
	}
	oc := [4]int{g.b, g.h, g.sq, g.dv}
	oshape := make([]int, 4)
	for p := 0; p < 4; p++ {
		oshape[p] = oc[outPerm[p]]
	}
	ost := make([]int, 4)
	stridesOf(ost, oshape)
	for p := 0; p < 4; p++ {
		g.o[outPerm[p]] = ost[p]
	}
	scores := []int{g.b, g.h, g.sq, g.sk}
	bcast := func(i int, s *[4]int) bool {
		v := b.input(i)
		if v == nil {
			return false
		}
		bs, ok := broadcastShape(scores, v.shape)
		if !ok || !sameShape(bs, scores) {
			b.unsupported("input %d %v does not broadcast to the scores %v", i, v.shape, scores)
			return false
		}
		st := make([]int, len(v.shape))
		stridesOf(st, v.shape)
		off := 4 - len(v.shape)
		for a := 0; a < len(v.shape); a++ {
			if v.shape[a] != 1 {
				s[off+a] = st[a]
			}
		}
		return true
	}
	g.hasMask = bcast(3, &g.mask)
	g.hasCond = bcast(4, &g.cond)
	if sc := b.input(5); sc != nil {
		if sc.numel() != 1 {
			b.errf("scale %v is not a scalar", sc.shape)
			return
		}
		g.scaleIn = true
	}
	if b.failed() {
		return
	}
	if g.hasCond {
		if c := b.in[4].c; c != nil {
			switch causalPattern(Data[bool](c), g) {
			case condAll:
				g.hasCond = false
			case condCausal:
				g.hasCond, g.causal = false, true
			}
		}
	}
	b.setOut(0, Float32, oshape)
	b.flops = 4 * float64(g.b*g.h) * float64(g.sq) * float64(g.sk) * float64(g.d+g.dv) / 2
	g.bq, g.bk = max(1, min(attnBlockQ, g.sq)), max(1, min(attnBlockK, g.sk))
	b.scratch = 4 * (g.bq*g.bk + kernels.PanelsLen(g.d, g.bk) + kernels.PanelsLen(g.bk, g.dv) + 2*g.sq)
	b.run(func(in, out []*Tensor, k *kctx) error {
		attention(g, in, out[0], view[float32](k.scratch))
		return nil
	})
}

// perm4 reads a permutation of 0…3 (default the identity) whose last
// entry is 3.
func (b *builder) perm4(name string) ([4]int, bool) {
	p := [4]int{0, 1, 2, 3}
	v := b.attrInts(name, nil)
	if v == nil {
		return p, !b.failed()
	}
	if len(v) != 4 {
		b.bad("%s %v is not a permutation of 4 axes", name, v)
		return p, false
	}
	seen := 0
	for i, a := range v {
		if a < 0 || a > 3 || seen&(1<<a) != 0 {
			b.bad("%s %v is not a permutation of 4 axes", name, v)
			return p, false
		}
		seen |= 1 << a
		p[i] = int(a)
	}
	if p[3] != 3 {
		b.bad("%s %v moves the last axis", name, v)
		return p, false
	}
	return p, true
}

const (
	condOther = iota
	condAll
	condCausal
)

// causalPattern tells whether a constant condition, broadcast to the
// scores, is everywhere true or the causal pattern j ≤ i + Sk − Sq with
// every query seeing at least one key.
func causalPattern(c []bool, g *attnGeom) int {
	off := g.sk - g.sq
	all, causal := true, off >= 0
	// A broadcast batch or head axis is one slice of the condition.
	nb, nh := g.b, g.h
	if g.cond[0] == 0 {
		nb = min(nb, 1)
	}
	if g.cond[1] == 0 {
		nh = min(nh, 1)
	}
	for b := 0; b < nb; b++ {
		for h := 0; h < nh; h++ {
			base := b*g.cond[0] + h*g.cond[1]
			for i := 0; i < g.sq; i++ {
				for j := 0; j < g.sk; j++ {
					v := c[base+i*g.cond[2]+j*g.cond[3]]
					all = all && v
					causal = causal && v == (j <= i+off)
					if !all && !causal {
						return condOther
					}
				}
			}
		}
	}
	if all {
		return condAll
	}
	return condCausal
}

// attention is the tiled kernel, per batch and head: for each block of
// bk keys and values, packed once (kᵀ scaled, for q·kᵀ; v for p·v), each
// block of bq queries gets its scores (read from q in place), folds them
// into its running maximum and sum, rescales what the earlier blocks
// added to its output rows, and adds p·v there. The output rows are the
// accumulators; they are divided by the sums at the end. sc holds the
// bq·bk scores, the two packed blocks and the Sq maxima and sums.
func attention(g *attnGeom, in []*Tensor, out *Tensor, sc []float32) {
	q, k, v, o := view[float32](in[0].data), view[float32](in[1].data), view[float32](in[2].data), view[float32](out.data)
	var mask []float32
	var cond []bool
	if g.hasMask {
		mask = view[float32](in[3].data)
	}
	if g.hasCond {
		cond = Data[bool](in[4])
	}
	alpha := g.scale
	if g.scaleIn {
		s := view[float32](in[5].data)[0]
		if g.scaleDiv {
			alpha = 1 / s
		} else {
			alpha = s
		}
	}
	if g.sq == 0 || g.dv == 0 {
		return
	}
	if g.sk == 0 {
		clear(o) // softmax over no keys weighs nothing: an empty sum
		return
	}
	bq, bk, d, dv := g.bq, g.bk, g.d, g.dv
	s, sc := sc[:bq*bk], sc[bq*bk:]
	kp, sc := sc[:kernels.PanelsLen(d, bk)], sc[kernels.PanelsLen(d, bk):]
	vp, sc := sc[:kernels.PanelsLen(bk, dv)], sc[kernels.PanelsLen(bk, dv):]
	mx, sum := sc[:g.sq], sc[g.sq:2*g.sq]
	off := g.sk - g.sq
	negInf := float32(math.Inf(-1))
	qs, ks, vs, os := g.q[2], g.k[2], g.v[2], g.o[2]
	for bi := 0; bi < g.b; bi++ {
		for h := 0; h < g.h; h++ {
			qb, kb, vb, ob := bi*g.q[0]+h*g.q[1], bi*g.k[0]+h*g.k[1], bi*g.v[0]+h*g.v[1], bi*g.o[0]+h*g.o[1]
			mb, cb := bi*g.mask[0]+h*g.mask[1], bi*g.cond[0]+h*g.cond[1]
			for i := 0; i < g.sq; i++ {
				mx[i], sum[i] = negInf, 0
				clear(o[ob+i*os : ob+i*os+dv])
			}
			for j0 := 0; j0 < g.sk; j0 += bk {
				nk := min(bk, g.sk-j0)
				kernels.PackPanels(kp, k[kb+j0*ks:], ks, true, d, nk, alpha)
				kernels.PackPanels(vp, v[vb+j0*vs:], vs, false, nk, dv, 1)
				iStart := 0
				if g.causal {
					iStart = max(0, j0-off) // earlier queries see none of these keys
				}
				for i0 := iStart; i0 < g.sq; i0 += bq {
					mq := min(bq, g.sq-i0)
					st := s[:mq*nk]
					kernels.MulPanels(st, nk, q[qb+i0*qs:], qs, mq, d, kp, nk, false)
					for r := 0; r < mq; r++ {
						i := i0 + r
						row := st[r*nk : (r+1)*nk]
						if cond != nil {
							cr := cb + i*g.cond[2] + j0*g.cond[3]
							for j := range row {
								if !cond[cr+j*g.cond[3]] {
									row[j] = g.fill
								}
							}
						}
						if mask != nil {
							mr := mb + i*g.mask[2] + j0*g.mask[3]
							if g.mask[3] == 1 {
								kernels.AddF32(row, row, mask[mr:mr+nk])
							} else {
								for j := range row {
									row[j] += mask[mr+j*g.mask[3]]
								}
							}
						}
						if g.causal {
							for j := max(0, i+off+1-j0); j < nk; j++ {
								row[j] = negInf
							}
						}
						mNew := max(mx[i], kernels.MaxOfF32(row))
						if mNew == negInf {
							clear(row) // nothing visible yet
							continue
						}
						if mx[i] != mNew && mx[i] != negInf {
							corr := float32(math.Exp(float64(mx[i] - mNew)))
							sum[i] *= corr
							orow := o[ob+i*os : ob+i*os+dv]
							kernels.MulScalarF32(orow, orow, corr)
						}
						sum[i] += kernels.ExpSubSumF32(row, mNew)
						mx[i] = mNew
					}
					kernels.MulPanels(o[ob+i0*os:], os, st, nk, mq, nk, vp, dv, true)
				}
			}
			for i := 0; i < g.sq; i++ {
				orow := o[ob+i*os : ob+i*os+dv]
				kernels.MulScalarF32(orow, orow, 1/sum[i])
			}
		}
	}
}
