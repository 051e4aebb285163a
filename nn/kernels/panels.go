package kernels

// Packed right operands in a caller's buffer, multiplied by a left
// operand read in place: the two products of attention (q·kᵀ by a block
// of keys, p·v by a block of values), whose operands change per call so
// that Pack's allocation does not fit, and whose inner dimension (the
// head size) is too small for Sgemm's packing of both sides to pay.

// PanelsLen returns how many floats PackPanels writes for a k×n matrix.
func PanelsLen(k, n int) int { return roundUp(n, current().nr) * k }

// PackPanels packs alpha·B into dst (PanelsLen(k, n) floats) for
// MulPanels, B being k×n with B[p][j] = b[p·ldb + j], or, with trans,
// b[j·ldb + p] (the transpose of an n×k matrix: keys for q·kᵀ).
func PackPanels(dst, b []float32, ldb int, trans bool, k, n int, alpha float32) {
	nr := current().nr
	for jr := 0; jr < n; jr += nr {
		nrr := min(nr, n-jr)
		panel := dst[jr*k : jr*k+k*nr]
		if nrr < nr {
			clear(panel)
		}
		if trans {
			for j := 0; j < nrr; j++ {
				src := b[(jr+j)*ldb:]
				src = src[:k]
				for p, v := range src {
					panel[p*nr+j] = alpha * v
				}
			}
			continue
		}
		for p := 0; p < k; p++ {
			src := b[p*ldb+jr:]
			src = src[:nrr]
			row := panel[p*nr : p*nr+nrr]
			if alpha == 1 {
				copy(row, src)
				continue
			}
			for j, v := range src {
				row[j] = alpha * v
			}
		}
	}
}

// MulPanels computes C = A·B for m rows, or C += A·B with acc: A is m×k
// with rows lda apart, read in place; B the k×n matrix PackPanels packed
// into bp; C m×n with rows ldc apart, of which exactly those m rows and n
// columns are written. It allocates nothing in the steady state.
func MulPanels(c []float32, ldc int, a []float32, lda, m, k int, bp []float32, n int, acc bool) {
	if m <= 0 || n <= 0 {
		return
	}
	kr := current()
	if k == 0 || kr.dense == nil {
		mulPanelsGo(c, ldc, a, lda, m, k, bp, n, acc, kr.nr)
		return
	}
	mr, nr := kr.mr, kr.nr
	ws := getWorkspace(mr*k, nr, mr*nr)
	defer putWorkspace(ws)
	zb, tc := ws.b[:nr], ws.tmp[:mr*nr]
	clear(zb)
	flags := 0
	if acc {
		flags = denseAcc
	}
	mFull := m / mr * mr
	var ta []float32
	if mFull < m {
		ta = ws.a[:mr*k]
		clear(ta)
		for i := mFull; i < m; i++ {
			copy(ta[(i-mFull)*k:(i-mFull+1)*k], a[i*lda:i*lda+k])
		}
	}
	for jr := 0; jr < n; jr += nr {
		nrr := min(nr, n-jr)
		panel := &bp[jr*k]
		for ir := 0; ir < mFull; ir += mr {
			if nrr == nr {
				kr.dense(k, &a[ir*lda], lda, panel, &c[ir*ldc+jr], ldc, &zb[0], flags)
			} else {
				denseEdge(kr, k, &a[ir*lda], lda, panel, c, ir, jr, mr, nrr, ldc, tc, &zb[0], flags)
			}
		}
		if ta != nil {
			denseEdge(kr, k, &ta[0], k, panel, c, mFull, jr, m-mFull, nrr, ldc, tc, &zb[0], flags)
		}
	}
}

func mulPanelsGo(c []float32, ldc int, a []float32, lda, m, k int, bp []float32, n int, acc bool, nr int) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float32
			if acc {
				s = c[i*ldc+j]
			}
			panel := bp[j/nr*nr*k:]
			for p := 0; p < k; p++ {
				s += a[i*lda+p] * panel[p*nr+j%nr]
			}
			c[i*ldc+j] = s
		}
	}
}
