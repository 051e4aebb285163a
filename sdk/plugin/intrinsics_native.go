//go:build !wasip1

package plugin

import "github.com/aiaas/aiaas/sdk/plugin/tensorops"

// Outside the sandbox the intrinsics are the same Go kernels the host runs.

func u8ToF32(dst []float32, src []byte, scale, bias float32) bool {
	return tensorops.U8ToF32(dst, src, scale, bias)
}
func grayFromRGBA(dst, src []byte) bool { return tensorops.GrayFromRGBA(dst, src) }
func resizeF32(dst []float32, dw, dh int, src []float32, sw, sh int) bool {
	return tensorops.Resize(dst, dw, dh, src, sw, sh)
}
func softmaxF32(x []float32) bool { tensorops.Softmax(x); return true }
func topKF32(dst []int32, x []float32, k int) int {
	if k < 0 {
		return -1
	}
	return len(tensorops.TopK(dst, x, k))
}

func imageInfo(img []byte) (int, int, int, bool) { return tensorops.ImageInfo(img) }
func decodeGray(dst, img []byte, w, h int) bool  { return tensorops.DecodeGray(dst, img, w, h) }
func bbox(src []float32, w, h int, thr float32) (int, int, int, int, bool) {
	return tensorops.BBox(src, w, h, thr)
}
