package tensorops

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"image/color"
	"io"
	"sync"
)

// A fast path for the PNGs clients send most: 8-bit gray, RGB or RGBA,
// not interlaced. image/png decodes into a whole image.Image (4 bytes a
// pixel for RGB, 64 MiB for a 4-megapixel 16-bit one) and allocates a
// fresh zlib reader, ~40 KiB of tables, for every image; here rows are
// unfiltered one at a time straight into the gray destination with a
// pooled zlib reader and pooled row buffers, so a small image costs no
// garbage and a large one only its rows.
//
// The fast path answers only when it decoded the whole image; on
// anything else — another color type or depth, interlacing, a palette or
// transparency chunk, a chunk it does not know to be harmless, or any
// corruption — it declines and DecodeGray runs image/png, so malformed
// input meets exactly the decoder it met before. FuzzDecodeGrayPNG holds
// the two to the same pixels.

const (
	pngGray = 0
	pngRGB  = 2
	pngRGBA = 6
)

// pngState is the pooled part of one decode: the zlib reader (whose
// tables Reset keeps), the previous and current filtered rows, and an
// RGBA row for the color conversion.
type pngState struct {
	z         io.ReadCloser
	idat      bytes.Reader
	multi     []byte // the IDAT data, when it is split over several chunks
	prev, cur []byte
	rgba      []byte
	one       [1]byte // the read past the end of the stream
}

var pngPool = sync.Pool{New: func() any { return new(pngState) }}

// maxPooledRow bounds the row buffers kept in the pool (a 4096-pixel
// RGBA row is 16 KiB); larger ones are dropped after the decode.
const maxPooledRow = 64 << 10

// pngHeader reads the size of a PNG the fast path decodes straight from
// its IHDR chunk, as png.DecodeConfig would after the same checks, without
// DecodeConfig's 2 KiB decoder; ok is false for any other header (which
// ImageInfo then hands to DecodeConfig). decodePNGGray starts from the
// same checks.
func pngHeader(src []byte) (w, h int, ok bool) {
	const sigLen = 8
	if len(src) < sigLen+8+13+4 || string(src[:sigLen]) != "\x89PNG\r\n\x1a\n" {
		return 0, 0, false
	}
	c := src[sigLen:]
	if binary.BigEndian.Uint32(c) != 13 || string(c[4:8]) != "IHDR" ||
		crc32.ChecksumIEEE(c[4:8+13]) != binary.BigEndian.Uint32(c[8+13:]) {
		return 0, 0, false
	}
	ihdr := c[8 : 8+13]
	depth, ctype := ihdr[8], ihdr[9]
	if depth != 8 || (ctype != pngGray && ctype != pngRGB && ctype != pngRGBA) ||
		ihdr[10] != 0 || ihdr[11] != 0 || ihdr[12] > 1 {
		return 0, 0, false
	}
	w32, h32 := int32(binary.BigEndian.Uint32(ihdr[0:])), int32(binary.BigEndian.Uint32(ihdr[4:]))
	// DecodeConfig's own limits: positive sides, and room for 8 bytes a
	// pixel.
	if n := int64(w32) * int64(h32); w32 <= 0 || h32 <= 0 || n != n*8/8 {
		return 0, 0, false
	}
	return int(w32), int(h32), true
}

// decodePNGGray decodes src into dst (w×h gray) when src is a PNG the
// fast path handles, and reports whether it did. dst may be partly
// written when it reports false.
func decodePNGGray(dst, src []byte, w, h int) bool {
	// The header checks are pngHeader's; the fast path also leaves
	// interlaced images to image/png.
	pw, ph, ok := pngHeader(src)
	if !ok || pw != w || ph != h || len(dst) != w*h {
		return false
	}
	const sigLen = 8
	b := src[sigLen:]
	ihdr := b[8 : 8+13]
	if ihdr[12] != 0 {
		return false
	}
	ctype := ihdr[9]
	bpp := 1 // pngGray; pngHeader admits only the three types
	switch ctype {
	case pngRGB:
		bpp = 3
	case pngRGBA:
		bpp = 4
	}
	s := pngPool.Get().(*pngState)
	defer func() {
		if cap(s.cur) > maxPooledRow || cap(s.multi) > maxPooledRow {
			return // one large image should not pin its rows
		}
		pngPool.Put(s)
	}()
	data, ok := s.pixelData(b)
	if !ok {
		return false
	}
	// RGBA as image/png's path converts it: by the 8-bit weights when
	// every pixel is opaque, else every pixel through the color package
	// (whose 16-bit arithmetic rounds differently). A translucent pixel
	// found in the first pass starts a second one.
	done, opaque := s.rows(dst, data, w, h, ctype, bpp, false)
	if done && !opaque {
		done, _ = s.rows(dst, data, w, h, ctype, bpp, true)
	}
	return done
}

// rows inflates and unfilters data row by row into dst. For RGBA,
// composite selects the color package's conversion for every pixel;
// without it rows stops at the first translucent pixel and reports
// opaque false.
func (s *pngState) rows(dst, data []byte, w, h int, ctype byte, bpp int, composite bool) (done, opaque bool) {
	s.idat.Reset(data)
	if s.z == nil {
		z, err := zlib.NewReader(&s.idat)
		if err != nil {
			return false, false
		}
		s.z = z
	} else if err := s.z.(zlib.Resetter).Reset(&s.idat, nil); err != nil {
		return false, false
	}
	stride := w * bpp
	s.prev = grown(s.prev, stride+1)
	s.cur = grown(s.cur, stride+1)
	clear(s.prev)
	if ctype == pngRGB {
		s.rgba = grown(s.rgba, 4*w)
	}
	for y := 0; y < h; y++ {
		if _, err := io.ReadFull(s.z, s.cur); err != nil {
			return false, false
		}
		if !unfilter(s.cur[0], s.cur[1:], s.prev[1:], bpp) {
			return false, false
		}
		row, out := s.cur[1:], dst[y*w:(y+1)*w]
		switch {
		case ctype == pngGray:
			copy(out, row)
		case ctype == pngRGB:
			for x := 0; x < w; x++ {
				copy(s.rgba[4*x:4*x+3], row[3*x:3*x+3])
				s.rgba[4*x+3] = 0xff
			}
			GrayFromRGBA(out, s.rgba)
		case composite:
			for x := range out {
				p := row[4*x : 4*x+4 : 4*x+4]
				out[x] = overWhite(color.NRGBA{R: p[0], G: p[1], B: p[2], A: p[3]})
			}
		default:
			for x := range out {
				if row[4*x+3] != 0xff {
					return true, false
				}
			}
			GrayFromRGBA(out, row)
		}
		s.prev, s.cur = s.cur, s.prev
	}
	// The zlib stream must end here (its checksum is verified at EOF)
	// with nothing left over, as image/png requires.
	if n, err := io.ReadFull(s.z, s.one[:]); n != 0 || err != io.EOF {
		return false, false
	}
	return s.idat.Len() == 0, true
}

// pixelData walks the chunks after the signature, checking each CRC, and
// returns the IDAT data (one chunk's bytes, or the chunks' concatenation
// in s.multi). It declines any chunk but IHDR, IDAT, IEND and ancillary
// chunks that do not change pixels, and any order but IHDR, IDAT… , IEND.
func (s *pngState) pixelData(b []byte) ([]byte, bool) {
	var data []byte
	idats, first, afterIDAT := 0, true, false
	s.multi = s.multi[:0]
	for ; ; first = false {
		if len(b) < 12 {
			return nil, false
		}
		n := binary.BigEndian.Uint32(b)
		if n > uint32(len(b)-12) {
			return nil, false
		}
		typ, body := string(b[4:8]), b[8:8+n]
		if crc32.ChecksumIEEE(b[4:8+n]) != binary.BigEndian.Uint32(b[8+n:]) {
			return nil, false
		}
		b = b[12+n:]
		switch {
		case typ == "IHDR" && first:
		case typ == "IDAT" && !afterIDAT:
			idats++
			switch idats {
			case 1:
				data = body
			case 2:
				s.multi = append(append(s.multi, data...), body...)
				data = s.multi
			default:
				s.multi = append(s.multi, body...)
				data = s.multi
			}
			continue
		case typ == "IEND":
			return data, idats > 0 && n == 0
		case typ[0]&0x20 != 0 && typ != "tRNS":
			// An ancillary chunk (lower-case first letter) that image/png
			// skips. tRNS (transparency), PLTE, a second IHDR, IDAT after
			// another chunk and any other critical chunk decline.
		default:
			return nil, false
		}
		afterIDAT = idats > 0
	}
}

// unfilter reverses the PNG filter of one row in place; prev is the
// previous row, unfiltered (zeros for the first).
func unfilter(filter byte, cur, prev []byte, bpp int) bool {
	switch filter {
	case 0:
	case 1: // Sub
		for i := bpp; i < len(cur); i++ {
			cur[i] += cur[i-bpp]
		}
	case 2: // Up
		for i, p := range prev[:len(cur)] {
			cur[i] += p
		}
	case 3: // Average
		for i := 0; i < bpp; i++ {
			cur[i] += prev[i] / 2
		}
		for i := bpp; i < len(cur); i++ {
			cur[i] += uint8((int(cur[i-bpp]) + int(prev[i])) / 2)
		}
	case 4: // Paeth
		for i := range cur {
			var a, c int
			if i >= bpp {
				a, c = int(cur[i-bpp]), int(prev[i-bpp])
			}
			cur[i] += paeth(a, int(prev[i]), c)
		}
	default:
		return false
	}
	return true
}

func paeth(a, b, c int) uint8 {
	p := a + b - c
	pa, pb, pc := abs(p-a), abs(p-b), abs(p-c)
	switch {
	case pa <= pb && pa <= pc:
		return uint8(a)
	case pb <= pc:
		return uint8(b)
	}
	return uint8(c)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// overWhite is the gray of c composited over white.
func overWhite(c color.Color) uint8 {
	r, g, b, a := c.RGBA()
	over := 0xffff - a // premultiplied: adding (1-a)·white composites over white
	return color.GrayModel.Convert(color.RGBA64{R: uint16(r + over), G: uint16(g + over), B: uint16(b + over), A: 0xffff}).(color.Gray).Y
}

// grown returns b resized to n, reallocating only when it is too small.
func grown(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}
