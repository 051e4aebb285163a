package kernels

// Im2Col is a BPacker for a 2-D convolution computed as GemmPacked: it
// writes the im2col matrix of one image and group (row p = input channel
// p/(KH·KW) at kernel offset (p/KW%KH, p%KW), column j = output pixel j)
// straight into the panels of the PackedA it was made for.
//
// Everything that depends only on the geometry is computed once by
// NewIm2Col: for each output pixel the offset of its window in the
// channel plane, and for each panel of nr pixels and each kernel tap the
// mask of the pixels whose tap falls inside the input. Packing a row of a
// panel is then one masked gather per vector (AVX-512) or a table-driven
// loop (elsewhere), without a division or a bounds test per element.
//
// After NewIm2Col, set X to the group's input channels (C×H×W) before
// each GemmPacked call. PackB only reads the Im2Col, so one value may
// serve concurrent GemmPacked calls on the same X; different inputs need
// different values (the tables can be shared by copying the struct).
type Im2Col struct {
	X []float32 // the group's input channels, C×H×W

	g       DepthwiseGeom
	nr      int
	khw, hw int
	colBase []int32  // per output pixel: (oy·SH−PadT)·W + ox·SW−PadL
	tapOff  []int32  // per tap (ky, kx): ky·DH·W + kx·DW
	masks   []uint32 // per panel and tap: bit j set when pixel j of the panel has that tap inside
	affine  []bool   // per panel: colBase[j] = colBase[first] + j for its pixels (contiguous loads)
	// smasks, for 32-pixel panels of stride 2: per panel and tap, the
	// masks of the 64 values from the panel's first pixel (bit 2j for
	// pixel j) when colBase[j] = colBase[first] + 2j (the panel inside
	// one output row), else smaskNone in the panel's first tap.
	smasks []uint64
}

// smaskNone marks a panel that is not affine with slope 2: no real mask
// has its odd bits set.
const smaskNone = ^uint64(0)

// NewIm2Col prepares the packing of a convolution of geometry g, where C
// is the input channels of one group, for the product with a (its k must
// be C·KH·KW). It panics on a bad geometry.
func NewIm2Col(g *DepthwiseGeom, a *PackedA) *Im2Col {
	if g.C < 1 || g.H < 1 || g.W < 1 || g.OH < 1 || g.OW < 1 || g.KH < 1 || g.KW < 1 ||
		g.SH < 1 || g.SW < 1 || g.DH < 1 || g.DW < 1 || g.PadT < 0 || g.PadL < 0 || a.k != g.C*g.KH*g.KW {
		panic(badGeom)
	}
	nr := a.kr.nr
	n := g.OH * g.OW
	panels := (n + nr - 1) / nr
	s := &Im2Col{g: *g, nr: nr, khw: g.KH * g.KW, hw: g.H * g.W,
		colBase: make([]int32, panels*nr), tapOff: make([]int32, g.KH*g.KW), masks: make([]uint32, panels*g.KH*g.KW),
		affine: make([]bool, panels)}
	for ky := range g.KH {
		for kx := range g.KW {
			s.tapOff[ky*g.KW+kx] = int32(ky*g.DH*g.W + kx*g.DW)
		}
	}
	for j := range n {
		oy, ox := j/g.OW, j%g.OW
		iy0, ix0 := oy*g.SH-g.PadT, ox*g.SW-g.PadL
		s.colBase[j] = int32(iy0*g.W + ix0)
		for ky := range g.KH {
			if uint(iy0+ky*g.DH) >= uint(g.H) {
				continue
			}
			for kx := range g.KW {
				if uint(ix0+kx*g.DW) < uint(g.W) {
					s.masks[(j/nr)*s.khw+ky*g.KW+kx] |= 1 << (j % nr)
				}
			}
		}
	}
	for p := range s.affine {
		s.affine[p] = true
		for j := p * nr; j < min(n, (p+1)*nr); j++ {
			if s.colBase[j] != s.colBase[p*nr]+int32(j-p*nr) {
				s.affine[p] = false
				break
			}
		}
	}
	if nr == 32 && g.SW == 2 {
		s.smasks = make([]uint64, panels*s.khw)
		for p := range panels {
			sm := s.smasks[p*s.khw : (p+1)*s.khw]
			affine2 := true
			for j := p * nr; j < min(n, (p+1)*nr); j++ {
				if s.colBase[j] != s.colBase[p*nr]+2*int32(j-p*nr) {
					affine2 = false
					break
				}
			}
			if !affine2 {
				sm[0] = smaskNone
				continue
			}
			for t := range sm {
				m := s.masks[p*s.khw+t]
				for j := range nr {
					if m>>j&1 != 0 {
						sm[t] |= 1 << (2 * j)
					}
				}
			}
		}
	}
	return s
}

// PackB implements BPacker.
func (s *Im2Col) PackB(dst []float32, pc, kc, jc, nc int) {
	nr := s.nr
	g := &s.g
	x := s.X[:g.C*s.hw]
	pointwise := s.khw == 1 && g.SH == 1 && g.SW == 1 && g.PadT == 0 && g.PadL == 0 && g.OW == g.W
	for j0 := 0; j0 < nc; j0 += nr {
		w := min(nr, nc-j0)
		panel := dst[(j0/nr)*kc*nr : (j0/nr+1)*kc*nr]
		col := jc + j0
		if col%nr == 0 && im2colPanel(panel, s, pc, kc, col/nr, w) {
			continue
		}
		if pointwise {
			for p := range kc {
				row := panel[p*nr : p*nr+nr]
				copy(row[:w], x[(pc+p)*s.hw+col:])
				clear(row[w:])
			}
			continue
		}
		s.packPanelGo(panel, pc, kc, col, w)
	}
}

// packPanelGo packs one panel of w pixels from col with the tables.
func (s *Im2Col) packPanelGo(panel []float32, pc, kc, col, w int) {
	nr := s.nr
	x := s.X[:s.g.C*s.hw]
	base := s.colBase[col : col+w]
	ci, t := pc/s.khw, pc%s.khw
	for p := range kc {
		row := panel[p*nr : p*nr+nr]
		off := ci*s.hw + int(s.tapOff[t])
		var m uint32
		if col%nr == 0 {
			m = s.masks[(col/nr)*s.khw+t]
		} else {
			m = s.maskAt(col, w, t)
		}
		for j, b := range base {
			v := float32(0)
			if m>>j&1 != 0 {
				v = x[off+int(b)]
			}
			row[j] = v
		}
		clear(row[w:])
		if t++; t == s.khw {
			t = 0
			ci++
		}
	}
}

// maskAt is the tap mask of w pixels from col when col is not at the
// start of a panel (a BPacker caller may split columns anywhere).
func (s *Im2Col) maskAt(col, w, t int) uint32 {
	var m uint32
	for j := range w {
		c := col + j
		if s.masks[(c/s.nr)*s.khw+t]>>(c%s.nr)&1 != 0 {
			m |= 1 << j
		}
	}
	return m
}
