package dataset

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/aiaas/aiaas/internal/yield"
)

// IDX type byte for unsigned 8-bit data, the only one MNIST uses.
const idxU8 = 0x08

// ReadIDX reads an IDX images file and the matching IDX labels file (the
// MNIST distribution's format; gzip is detected and undone). Images must be
// unsigned bytes with 2 to 4 dimensions, the first being the count (magic
// 0x00000803 for MNIST's [n, rows, cols]); each image becomes one row of
// rows*cols features scaled to [0, 1] by x/255, as the Keras MNIST recipe
// does. Labels must be unsigned bytes, one dimension (magic 0x00000801),
// with the same count; Classes is the largest label plus one.
//
// Only opts' MaxRows, MaxFeatures, MaxClasses and MaxBytes apply. Trailing
// bytes after the declared data are an error. Safe for concurrent use on
// distinct readers.
func ReadIDX(images, labels io.Reader, opts *Options) (*Set, error) {
	o := opts.withDefaults()
	ri, err := open(images, o.MaxBytes, "images")
	if err != nil {
		return nil, err
	}
	rl, err := open(labels, o.MaxBytes, "labels")
	if err != nil {
		return nil, err
	}
	idims, err := readIDXHeader(ri, "images", 2, 4)
	if err != nil {
		return nil, err
	}
	ldims, err := readIDXHeader(rl, "labels", 1, 1)
	if err != nil {
		return nil, err
	}
	n := idims[0]
	if ldims[0] != n {
		return nil, fmt.Errorf("%w: %d images but %d labels", ErrFormat, n, ldims[0])
	}
	if n > uint64(o.MaxRows) {
		return nil, fmt.Errorf("%w: %d images, limit %d", ErrTooLarge, n, o.MaxRows)
	}
	features := uint64(1)
	for _, d := range idims[1:] {
		features *= d // at most 3 factors below 2^32 each, checked step by step
		if features > uint64(o.MaxFeatures) {
			return nil, fmt.Errorf("%w: images of %v pixels, limit %d features", ErrTooLarge, idims[1:], o.MaxFeatures)
		}
	}
	if features == 0 {
		return nil, fmt.Errorf("%w: images: zero-sized dimension in %v", ErrFormat, idims)
	}
	// n <= MaxRows and features <= MaxFeatures, both at most 2^31, so the
	// product fits; it is checked against the byte limit before any read.
	total := n * features
	if total > uint64(o.MaxBytes) {
		return nil, fmt.Errorf("%w: %d images of %d pixels exceed the %d-byte limit", ErrTooLarge, n, features, o.MaxBytes)
	}
	pix, err := readExactly(ri, int(total), "images")
	if err != nil {
		return nil, err
	}
	lab, err := readExactly(rl, int(n), "labels")
	if err != nil {
		return nil, err
	}
	if err := expectEOF(ri, "images"); err != nil {
		return nil, err
	}
	if err := expectEOF(rl, "labels"); err != nil {
		return nil, err
	}
	s := &Set{N: int(n), Features: int(features), X: make([]float32, len(pix)), Y: make([]int32, n)}
	switch len(idims) {
	case 3: // n × H × W grey images
		s.Shape = []int{1, int(idims[1]), int(idims[2])}
	case 4: // n × H × W × C (the IDX order of colour images): stored channel-major below
		s.Shape = []int{int(idims[3]), int(idims[1]), int(idims[2])}
	}
	var scale [256]float32
	for i := range scale {
		scale[i] = float32(i) / 255
	}
	if len(idims) == 4 && idims[3] > 1 {
		// HWC per image in the file, CHW in the set.
		c, hw := int(idims[3]), int(idims[1]*idims[2])
		var y yield.Point
		for img := 0; img < int(n); img++ {
			y.Maybe()
			src, dst := pix[img*int(features):], s.X[img*int(features):]
			for p := range hw {
				for ch := range c {
					dst[ch*hw+p] = scale[src[p*c+ch]]
				}
			}
		}
	} else {
		var y yield.Point
		for i := 0; i < len(pix); i += 64 << 10 {
			y.Maybe()
			for j, p := range pix[i:min(i+64<<10, len(pix))] {
				s.X[i+j] = scale[p]
			}
		}
	}
	for i, l := range lab {
		if int(l) >= o.MaxClasses {
			return nil, fmt.Errorf("%w: label %d of image %d: limit %d classes", ErrTooLarge, l, i, o.MaxClasses)
		}
		s.Y[i] = int32(l)
		s.Classes = max(s.Classes, int(l)+1)
	}
	return s, nil
}

// readIDXHeader reads the magic (0, 0, type, ndims) and the big-endian u32
// dimensions.
func readIDXHeader(r io.Reader, what string, minDims, maxDims int) ([]uint64, error) {
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil {
		return nil, readErr(what, "magic", err)
	}
	if magic[0] != 0 || magic[1] != 0 {
		return nil, fmt.Errorf("%w: %s: bad magic % x, not an IDX file", ErrFormat, what, magic)
	}
	if magic[2] != idxU8 {
		return nil, fmt.Errorf("%w: %s: IDX data type 0x%02x, only unsigned bytes (0x08) are supported", ErrFormat, what, magic[2])
	}
	nd := int(magic[3])
	if nd < minDims || nd > maxDims {
		return nil, fmt.Errorf("%w: %s: %d dimensions, want %d to %d", ErrFormat, what, nd, minDims, maxDims)
	}
	raw := make([]byte, 4*nd)
	if _, err := io.ReadFull(r, raw); err != nil {
		return nil, readErr(what, "dimensions", err)
	}
	dims := make([]uint64, nd)
	for i := range dims {
		dims[i] = uint64(binary.BigEndian.Uint32(raw[4*i:]))
	}
	return dims, nil
}

// readExactly reads n bytes, growing the buffer only as data arrives, so a
// header that lies about the size costs no more memory than the bytes
// actually sent.
func readExactly(r io.Reader, n int, what string) ([]byte, error) {
	const chunk = 1 << 20
	buf := make([]byte, 0, min(n, chunk))
	for len(buf) < n {
		if len(buf) == cap(buf) {
			next := make([]byte, len(buf), min(n, 2*cap(buf)))
			copy(next, buf)
			buf = next
		}
		m, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err != nil {
			if err == io.EOF {
				if len(buf) == n {
					break
				}
				return nil, fmt.Errorf("%w: %s: data ends after %d of %d bytes", ErrFormat, what, len(buf), n)
			}
			return nil, readErr(what, "data", err)
		}
	}
	return buf, nil
}

func expectEOF(r io.Reader, what string) error {
	var b [1]byte
	n, err := io.ReadFull(r, b[:])
	if n > 0 {
		return fmt.Errorf("%w: %s: trailing bytes after the declared data", ErrFormat, what)
	}
	if err != io.EOF {
		return readErr(what, "end", err)
	}
	return nil
}

func readErr(what, part string, err error) error {
	if errors.Is(err, ErrTooLarge) || errors.Is(err, ErrFormat) {
		return err
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w: %s: truncated %s", ErrFormat, what, part)
	}
	// gzip corruption surfaces here too: it is the client's data at fault.
	return fmt.Errorf("%w: %s: reading %s: %v", ErrFormat, what, part, err)
}
