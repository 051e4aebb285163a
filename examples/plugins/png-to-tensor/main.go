// Command png-to-tensor is a preprocess plugin: a PNG or JPEG image of a
// handwritten digit, any size, becomes the MNIST input tensor "input", F32
// shape [1,784], prepared the way the MNIST set was:
//
//  1. decode (image/png or image/jpeg; an empty or generic content type is
//     sniffed from the magic bytes) and convert to 8-bit gray;
//  2. invert if the background is light (MNIST is white ink on black),
//     judged by the mean of the border pixels;
//  3. crop to the bounding box of the ink (pixels above 10 %);
//  4. scale the longest side to 20 px, keeping the aspect ratio (area
//     averaging);
//  5. place it in a 28×28 frame so that its centre of mass is at the
//     centre (clamped to stay inside);
//  6. values in [0,1].
//
// The tensor is [1,784] for dense models. The media-type parameter
// layout=nchw (e.g. "image/png; layout=nchw") makes it [1,1,28,28], the
// input of a convolutional model; the platform also accepts the flat form
// for such a model, so either layout serves the MNIST CNN.
//
// Images larger than 4096 px on a side or 4 megapixels are refused
// before decoding. Decoding and the per-pixel work run in host
// intrinsics (natively, in tests, the same Go kernels run in-process).
package main

import (
	"errors"
	"fmt"
	"math"
	"mime"

	"github.com/aiaas/aiaas/sdk/plugin"
)

func init() { plugin.HandlePreprocess(preprocess) }

func main() {}

const (
	side     = 28 // output frame
	box      = 20 // longest side of the digit inside the frame
	maxSide  = 4096
	inkLevel = 0.1
)

func preprocess(req plugin.Request) ([]plugin.Tensor, error) {
	shape, err := layout(req.ContentType)
	if err != nil {
		return nil, err
	}
	pix, err := instance.prepare(req.ContentType, req.Body)
	if err != nil {
		return nil, err
	}
	// F32 copies the pixels, so the scratch buffers serve the next call.
	return []plugin.Tensor{plugin.F32("input", shape, pix)}, nil
}

// instance is the scratch memory of this plugin instance, which runs one
// call at a time: reusing it keeps a call nearly free of garbage, and the
// guest's collector is most of a small plugin's time.
var instance scratch

// scratch holds the buffers of one image's preparation.
type scratch struct {
	gray                  []byte
	f, crop, small, frame []float32
}

// sized returns *b resized to n, reallocating it only when too small.
func sized[T any](b *[]T, n int) []T {
	if cap(*b) < n {
		*b = make([]T, n)
	}
	*b = (*b)[:n]
	return *b
}

// layout reads the layout parameter of the content type: "flat" (the
// default) or "nchw".
func layout(contentType string) ([]int, error) {
	if contentType == "image/png" || contentType == "image/jpeg" || contentType == "" {
		return []int{1, side * side}, nil // the common case, without parsing
	}
	_, params, _ := mime.ParseMediaType(contentType)
	switch params["layout"] {
	case "", "flat":
		return []int{1, side * side}, nil
	case "nchw":
		return []int{1, 1, side, side}, nil
	}
	return nil, fmt.Errorf("png-to-tensor: layout %q, want flat or nchw", params["layout"])
}

// Prepare turns an encoded image into 784 MNIST-style pixels. Decoding,
// the u8 → f32 pass, the ink bounding box and the resize run as host
// intrinsics; the plugin only orchestrates (and computes the centre of
// mass over at most 400 pixels).
func Prepare(contentType string, body []byte) ([]float32, error) {
	var s scratch
	return s.prepare(contentType, body)
}

// prepare is Prepare in s's buffers: the result is valid until s is used
// again.
func (s *scratch) prepare(contentType string, body []byte) ([]float32, error) {
	if err := checkType(contentType); err != nil {
		return nil, err
	}
	format, w, h, err := plugin.ImageInfo(body)
	if err != nil {
		return nil, errors.New("png-to-tensor: body is not a readable PNG or JPEG")
	}
	if w > maxSide || h > maxSide || w*h > plugin.MaxDecodePixels {
		return nil, fmt.Errorf("png-to-tensor: image is %d×%d; at most %d px a side and %d pixels", w, h, maxSide, plugin.MaxDecodePixels)
	}
	gray := sized(&s.gray, w*h)
	if err := plugin.DecodeGray(gray, body, w, h); err != nil {
		return nil, fmt.Errorf("png-to-tensor: corrupt %s", [...]string{"", "PNG", "JPEG"}[format])
	}
	// Invert when the border is light: MNIST digits are light on dark.
	scale, bias := float32(1.0/255), float32(0)
	if borderMean(gray, w, h) > 127 {
		scale, bias = -1.0/255, 1
	}
	f := sized(&s.f, w*h)
	if err := plugin.U8ToF32(f, gray, scale, bias); err != nil {
		return nil, err
	}
	return s.place(f, w, h)
}

// checkType accepts image/png, image/jpeg, and no or a generic type (the
// format is sniffed from the bytes in every case).
func checkType(contentType string) error {
	mt, _, _ := mime.ParseMediaType(contentType)
	switch mt {
	case "image/png", "image/jpeg", "image/jpg", "", "application/octet-stream":
		return nil
	}
	return fmt.Errorf("png-to-tensor: unsupported content type %q (want image/png or image/jpeg)", contentType)
}

func borderMean(g []byte, w, h int) float64 {
	var sum, n int
	for x := 0; x < w; x++ {
		sum += int(g[x]) + int(g[(h-1)*w+x])
		n += 2
	}
	for y := 1; y < h-1; y++ {
		sum += int(g[y*w]) + int(g[y*w+w-1])
		n += 2
	}
	return float64(sum) / float64(n)
}

// place crops f (w×h, values in [0,1]) to its ink, scales it into a 20 px
// box and centres it by mass in 28×28.
func (s *scratch) place(f []float32, w, h int) ([]float32, error) {
	out := sized(&s.frame, side*side)
	clear(out)
	x0, y0, x1, y1, ok := plugin.BBox(f, w, h, inkLevel)
	if !ok {
		return out, nil // a blank image is a valid (empty) digit
	}
	cw, ch := x1-x0+1, y1-y0+1
	crop := sized(&s.crop, cw*ch)
	for y := 0; y < ch; y++ {
		copy(crop[y*cw:(y+1)*cw], f[(y0+y)*w+x0:])
	}
	nw, nh := box, box
	if cw > ch {
		nh = max(1, int(math.Round(float64(ch)*box/float64(cw))))
	} else {
		nw = max(1, int(math.Round(float64(cw)*box/float64(ch))))
	}
	small := sized(&s.small, nw*nh)
	if err := plugin.Resize(small, nw, nh, crop, cw, ch); err != nil {
		return nil, err
	}
	var mass, mx, my float64
	for y := 0; y < nh; y++ {
		for x := 0; x < nw; x++ {
			v := float64(small[y*nw+x])
			mass += v
			mx += v * (float64(x) + 0.5)
			my += v * (float64(y) + 0.5)
		}
	}
	ox, oy := (side-nw)/2, (side-nh)/2
	if mass > 0 {
		ox = clamp(int(math.Round(side/2-mx/mass)), 0, side-nw)
		oy = clamp(int(math.Round(side/2-my/mass)), 0, side-nh)
	}
	for y := 0; y < nh; y++ {
		row := out[(oy+y)*side+ox:][:nw]
		for x, v := range small[y*nw:][:nw] {
			// Comparisons, not min and max: on wasm those are calls
			// (they order -0 and propagate NaN; a NaN stays NaN here
			// too).
			if v < 0 {
				v = 0
			} else if v > 1 {
				v = 1
			}
			row[x] = v
		}
	}
	return out, nil
}

func clamp(v, lo, hi int) int { return min(hi, max(lo, v)) }
