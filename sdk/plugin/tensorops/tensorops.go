// Package tensorops holds the small numeric kernels that plugins use for
// image and score processing: u8 → f32 scaling, RGBA → gray, area resize,
// softmax and top-k.
//
// # Overview
//
// The same Go code runs in two places. The host (package plugins) exposes
// these functions to WebAssembly guests as the "aiaas_v1" host intrinsics,
// over bounds-checked views of guest memory, so that a plugin orchestrates
// and native code does the heavy loops. The guest SDK (package
// sdk/plugin) calls the intrinsics when built for wasip1 and calls this
// package directly otherwise, so a plugin compiled natively (tests,
// benchmarks) computes exactly what it computes in the sandbox.
//
// Kernels are destination-first, never allocate except Resize's scratch
// row buffer, and never panic on mismatched lengths: they return false
// instead, because the host feeds them lengths chosen by untrusted code.
//
// Standard library only; every function is safe for concurrent use on
// disjoint slices.
package tensorops

import "math"

// U8ToF32 sets dst[i] = float32(src[i])*scale + bias. It reports false if
// the lengths differ.
func U8ToF32(dst []float32, src []byte, scale, bias float32) bool {
	if len(dst) != len(src) {
		return false
	}
	for i, v := range src {
		dst[i] = float32(v)*scale + bias
	}
	return true
}

// GrayFromRGBA sets dst[i] to the luma of the RGBA pixel src[4i:4i+4]
// with the ITU-R BT.601 weights Go's image/color uses (alpha is ignored:
// the pixel is taken as opaque). It reports false unless len(src) ==
// 4*len(dst).
func GrayFromRGBA(dst, src []byte) bool {
	if len(src) != 4*len(dst) {
		return false
	}
	for i := range dst {
		p := src[4*i : 4*i+4 : 4*i+4]
		// Same integer weights as color.GrayModel (19595+38470+7471 = 1<<16).
		y := (19595*uint32(p[0]) + 38470*uint32(p[1]) + 7471*uint32(p[2]) + 1<<15) >> 16
		dst[i] = uint8(y)
	}
	return true
}

// MaxResizeSide bounds each side of Resize's source and destination, so
// that the work a guest can request per call stays bounded.
const MaxResizeSide = 1 << 14

// Resize resamples the row-major sw×sh image src into the dw×dh image dst
// by area averaging (each destination pixel is the coverage-weighted mean
// of the source pixels under it), which is what digit-style downscaling
// needs: no aliasing, ink mass preserved. It reports false on bad sizes,
// including ones whose intermediate sh×dw image would exceed both images.
func Resize(dst []float32, dw, dh int, src []float32, sw, sh int) bool {
	if dw <= 0 || dh <= 0 || sw <= 0 || sh <= 0 ||
		dw > MaxResizeSide || dh > MaxResizeSide || sw > MaxResizeSide || sh > MaxResizeSide ||
		len(dst) != dw*dh || len(src) != sw*sh {
		return false
	}
	// The scratch image is sh×dw; refuse shapes where it would dwarf both
	// images (a 1×16384 → 16384×1 resize would need 1 GiB).
	if sh*dw > max(len(src), len(dst)) {
		return false
	}
	if dw == sw && dh == sh {
		// Area resampling at scale 1 gives each sample back (w = 1):
		// the same values without the passes.
		copy(dst, src)
		return true
	}
	resizePasses(dst, dw, dh, src, sw, sh)
	return true
}

// resizePasses is Resize's area resampling, on checked sizes.
func resizePasses(dst []float32, dw, dh int, src []float32, sw, sh int) {
	// Horizontal pass into tmp (sh rows of dw), then vertical into dst.
	tmp := make([]float32, sh*dw)
	for y := 0; y < sh; y++ {
		resample1D(tmp[y*dw:(y+1)*dw], 1, src[y*sw:(y+1)*sw], 1, dw, sw)
	}
	for x := 0; x < dw; x++ {
		resample1D(dst[x:], dw, tmp[x:], dw, dh, sh)
	}
}

// resample1D area-resamples n source samples (stride ss) into m
// destination samples (stride ds).
func resample1D(dst []float32, ds int, src []float32, ss int, m, n int) {
	scale := float64(n) / float64(m)
	for i := 0; i < m; i++ {
		lo, hi := float64(i)*scale, float64(i+1)*scale
		var sum, wsum float64
		for j := int(lo); j < n && float64(j) < hi; j++ {
			w := min(hi, float64(j+1)) - max(lo, float64(j))
			if w <= 0 {
				continue
			}
			sum += w * float64(src[j*ss])
			wsum += w
		}
		if wsum > 0 {
			dst[i*ds] = float32(sum / wsum)
		} else {
			dst[i*ds] = 0
		}
	}
}

// Softmax replaces x by softmax(x), computed stably (max subtracted). NaN
// inputs give NaN outputs; it never panics.
func Softmax(x []float32) {
	if len(x) == 0 {
		return
	}
	m := x[0]
	for _, v := range x[1:] {
		if v > m {
			m = v
		}
	}
	var sum float64
	for i, v := range x {
		e := math.Exp(float64(v - m))
		x[i] = float32(e)
		sum += e
	}
	inv := float32(1 / sum)
	for i := range x {
		x[i] *= inv
	}
}

// TopK writes into dst the indices of the k largest values of x, largest
// first, ties broken by the lower index, and returns dst[:k] (k is capped
// at len(x) and len(dst)). NaNs rank last. O(len(x)·k), fine for the
// class counts plugins see.
func TopK(dst []int32, x []float32, k int) []int32 {
	k = min(k, len(x), len(dst))
	if k <= 0 {
		return dst[:0]
	}
	n := 0
	for i, v := range x {
		// Find the insertion point among the n kept so far.
		pos := n
		for pos > 0 && better(v, x[dst[pos-1]]) {
			pos--
		}
		if pos >= k {
			continue
		}
		if n < k {
			n++
		}
		copy(dst[pos+1:n], dst[pos:n-1])
		dst[pos] = int32(i)
	}
	return dst[:n]
}

// better reports whether a ranks strictly above b (NaN ranks lowest).
func better(a, b float32) bool {
	if a != a {
		return false
	}
	return b != b || a > b
}
