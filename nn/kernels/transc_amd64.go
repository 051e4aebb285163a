//go:build !purego

package kernels

//go:noescape
func expAVX512(dst, x *float32, n int)

//go:noescape
func expSubSumAVX512(x *float32, n int, m float32) float32

//go:noescape
func maxAVX512(x *float32, n int) float32

//go:noescape
func geluErfAVX512(dst, x *float32, n int)

//go:noescape
func geluTanhAVX512(dst, x *float32, n int)

func hasTransc() bool { return current().vec == vecAVX512 }

func vecExp(dst, x []float32) bool {
	if !hasTransc() {
		return false
	}
	if len(x) > 0 {
		expAVX512(&dst[0], &x[0], len(x))
	}
	return true
}

func vecExpSubSum(x []float32, m float32) (float32, bool) {
	if !hasTransc() {
		return 0, false
	}
	if len(x) == 0 {
		return 0, true
	}
	return expSubSumAVX512(&x[0], len(x), m), true
}

func vecMax(x []float32) (float32, bool) {
	if !hasTransc() {
		return 0, false
	}
	return maxAVX512(&x[0], len(x)), true
}

func vecGelu(dst, x []float32, tanh bool) bool {
	if !hasTransc() {
		return false
	}
	if len(x) > 0 {
		if tanh {
			geluTanhAVX512(&dst[0], &x[0], len(x))
		} else {
			geluErfAVX512(&dst[0], &x[0], len(x))
		}
	}
	return true
}
