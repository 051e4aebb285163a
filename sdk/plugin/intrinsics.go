package plugin

import "errors"

// ErrIntrinsic is returned when a host intrinsic refuses its arguments
// (sizes that disagree, or a buffer the host cannot see).
var ErrIntrinsic = errors.New("plugin: intrinsic refused its arguments")

// U8ToF32 sets dst[i] = float32(src[i])*scale + bias; len(dst) must equal
// len(src).
func U8ToF32(dst []float32, src []byte, scale, bias float32) error {
	return status(u8ToF32(dst, src, scale, bias))
}

// GrayFromRGBA sets dst[i] to the BT.601 luma of the RGBA pixel
// src[4i:4i+4]; len(src) must be 4*len(dst).
func GrayFromRGBA(dst, src []byte) error { return status(grayFromRGBA(dst, src)) }

// Resize area-resamples the sw×sh image src into the dw×dh image dst.
func Resize(dst []float32, dw, dh int, src []float32, sw, sh int) error {
	return status(resizeF32(dst, dw, dh, src, sw, sh))
}

// Softmax replaces x by softmax(x).
func Softmax(x []float32) error { return status(softmaxF32(x)) }

// TopK returns the indices of the k largest values of x, largest first,
// in dst[:n].
func TopK(dst []int32, x []float32, k int) ([]int32, error) {
	n := topKF32(dst, x, k)
	if n < 0 {
		return dst[:0], ErrIntrinsic
	}
	return dst[:n], nil
}

func status(ok bool) error {
	if !ok {
		return ErrIntrinsic
	}
	return nil
}

// ImageInfo sniffs a PNG (format 1) or JPEG (format 2) and returns its size.
func ImageInfo(img []byte) (format, w, h int, err error) {
	format, w, h, ok := imageInfo(img)
	if !ok {
		return 0, 0, 0, ErrIntrinsic
	}
	return format, w, h, nil
}

// MaxDecodePixels bounds DecodeGray.
const MaxDecodePixels = 1 << 22

// DecodeGray decodes the w×h PNG or JPEG img into dst (len w*h) as 8-bit
// luma, transparent pixels over white. Decoding runs natively in the host.
func DecodeGray(dst []byte, img []byte, w, h int) error {
	return status(decodeGray(dst, img, w, h))
}

// BBox returns the inclusive bounding box of the values of the w×h image
// src above threshold; ok is false if there is none.
func BBox(src []float32, w, h int, threshold float32) (x0, y0, x1, y1 int, ok bool) {
	return bbox(src, w, h, threshold)
}
