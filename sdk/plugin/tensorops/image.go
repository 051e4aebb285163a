package tensorops

import (
	"bytes"
	"image"
	"image/jpeg"
	"image/png"
)

// Image formats reported by ImageInfo.
const (
	FormatPNG  = 1
	FormatJPEG = 2
)

// MaxDecodePixels bounds DecodeGray: 4 megapixels (2048×2048), so one
// decode allocates at most ~32 MiB even for 16-bit RGBA.
const MaxDecodePixels = 1 << 22

// ImageInfo sniffs a PNG or JPEG and returns its format and size without
// decoding the pixels. ok is false for anything else or a corrupt header.
func ImageInfo(src []byte) (format, w, h int, ok bool) {
	var cfg image.Config
	var err error
	switch {
	case bytes.HasPrefix(src, []byte("\x89PNG\r\n\x1a\n")):
		if w, h, ok := pngHeader(src); ok {
			return FormatPNG, w, h, true // pngfast.go: the common header, read in place
		}
		format = FormatPNG
		cfg, err = png.DecodeConfig(bytes.NewReader(src))
	case bytes.HasPrefix(src, []byte("\xff\xd8\xff")):
		format = FormatJPEG
		cfg, err = jpeg.DecodeConfig(bytes.NewReader(src))
	default:
		return 0, 0, 0, false
	}
	if err != nil || cfg.Width <= 0 || cfg.Height <= 0 {
		return 0, 0, 0, false
	}
	return format, cfg.Width, cfg.Height, true
}

// DecodeGray decodes the PNG or JPEG src, which must be w×h pixels and at
// most MaxDecodePixels, into dst (len w*h) as 8-bit BT.601 luma;
// transparent pixels are composited over white. It reports false on any
// mismatch or decoding error.
func DecodeGray(dst []byte, src []byte, w, h int) bool {
	format, iw, ih, ok := ImageInfo(src)
	if !ok || iw != w || ih != h || w*h > MaxDecodePixels || len(dst) != w*h {
		return false
	}
	if format == FormatPNG && decodePNGGray(dst, src, w, h) {
		return true // pngfast.go: the common PNGs, without the garbage
	}
	return decodeImageGray(dst, src, format, w, h)
}

// decodeImageGray is DecodeGray through image/png and image/jpeg.
func decodeImageGray(dst, src []byte, format, w, h int) bool {
	var img image.Image
	var err error
	if format == FormatPNG {
		img, err = png.Decode(bytes.NewReader(src))
	} else {
		img, err = jpeg.Decode(bytes.NewReader(src))
	}
	if err != nil || img.Bounds().Dx() != w || img.Bounds().Dy() != h {
		return false
	}
	b := img.Bounds()
	switch m := img.(type) {
	case *image.Gray:
		for y := 0; y < h; y++ {
			copy(dst[y*w:(y+1)*w], m.Pix[y*m.Stride:])
		}
		return true
	case *image.YCbCr:
		for y := 0; y < h; y++ {
			copy(dst[y*w:(y+1)*w], m.Y[y*m.YStride:])
		}
		return true
	case *image.RGBA:
		if m.Opaque() {
			for y := 0; y < h; y++ {
				GrayFromRGBA(dst[y*w:(y+1)*w], m.Pix[y*m.Stride:y*m.Stride+4*w])
			}
			return true
		}
	case *image.NRGBA:
		if m.Opaque() {
			for y := 0; y < h; y++ {
				GrayFromRGBA(dst[y*w:(y+1)*w], m.Pix[y*m.Stride:y*m.Stride+4*w])
			}
			return true
		}
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			dst[y*w+x] = overWhite(img.At(b.Min.X+x, b.Min.Y+y))
		}
	}
	return true
}

// BBox returns the bounding box (inclusive) of the values of the w×h
// image src that exceed threshold; ok is false if none does or the sizes
// disagree.
func BBox(src []float32, w, h int, threshold float32) (x0, y0, x1, y1 int, ok bool) {
	if w <= 0 || h <= 0 || len(src) != w*h {
		return 0, 0, 0, 0, false
	}
	x0, y0, x1, y1 = w, h, -1, -1
	for y := 0; y < h; y++ {
		row := src[y*w : (y+1)*w]
		for x, v := range row {
			if v > threshold {
				x0, x1 = min(x0, x), max(x1, x)
				y0, y1 = min(y0, y), max(y1, y)
			}
		}
	}
	if x1 < 0 {
		return 0, 0, 0, 0, false
	}
	return x0, y0, x1, y1, true
}
