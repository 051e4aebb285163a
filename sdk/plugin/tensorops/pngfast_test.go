package tensorops

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"testing"
)

// pngVariant is one test image: what it is and whether the fast path
// should take it.
type pngVariant struct {
	name string
	png  []byte
	fast bool
}

// pngVariants encodes images of every color model image/png writes, at
// sizes that make its encoder choose every filter, and at every
// compression level.
func pngVariants(t testing.TB) []pngVariant {
	r := rand.New(rand.NewPCG(1, 2))
	var out []pngVariant
	add := func(name string, img image.Image, fast bool) {
		for _, level := range []png.CompressionLevel{png.DefaultCompression, png.NoCompression, png.BestSpeed, png.BestCompression} {
			var b bytes.Buffer
			if err := (&png.Encoder{CompressionLevel: level}).Encode(&b, img); err != nil {
				t.Fatal(err)
			}
			out = append(out, pngVariant{fmt.Sprintf("%s/level%d", name, level), b.Bytes(), fast})
		}
	}
	for _, size := range [][2]int{{1, 1}, {3, 5}, {28, 28}, {100, 37}} {
		w, h := size[0], size[1]
		rect := image.Rect(0, 0, w, h)
		gray, rgb, nrgba, gray16, pal := image.NewGray(rect), image.NewRGBA(rect), image.NewNRGBA(rect), image.NewGray16(rect), image.NewPaletted(rect, color.Palette{color.Black, color.White})
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				// Smooth areas and noise, so that rows filter differently.
				v := uint8(x*7 + y*3)
				if r.IntN(3) == 0 {
					v = uint8(r.Uint32())
				}
				gray.SetGray(x, y, color.Gray{v})
				rgb.SetRGBA(x, y, color.RGBA{v, uint8(r.Uint32()), 255 - v, 255})
				a := uint8(255)
				if r.IntN(4) == 0 {
					a = uint8(r.Uint32())
				}
				nrgba.SetNRGBA(x, y, color.NRGBA{v, uint8(r.Uint32()), 255 - v, a})
				gray16.SetGray16(x, y, color.Gray16{uint16(v) << 8})
				pal.SetColorIndex(x, y, v&1)
			}
		}
		sz := fmt.Sprintf("%dx%d", w, h)
		add("gray/"+sz, gray, true)
		add("rgb/"+sz, rgb, true)        // opaque: written as 8-bit RGB
		add("rgba/"+sz, nrgba, true)     // translucent pixels: the second pass
		add("gray16/"+sz, gray16, false) // 16-bit: image/png
		add("paletted/"+sz, pal, false)  // PLTE: image/png
	}
	return out
}

// checkSame holds the fast path to image/png on b: if it answers, the
// image/png path must answer the same pixels.
func checkSame(t *testing.T, name string, b []byte) (fast bool) {
	t.Helper()
	if w, h, ok := pngHeader(b); ok {
		cfg, err := png.DecodeConfig(bytes.NewReader(b))
		if err != nil || cfg.Width != w || cfg.Height != h {
			t.Fatalf("%s: header read as %d×%d; png.DecodeConfig: %d×%d, %v", name, w, h, cfg.Width, cfg.Height, err)
		}
	}
	format, w, h, ok := ImageInfo(b)
	if !ok || format != FormatPNG || w*h > 1<<20 {
		return false
	}
	got, want := make([]byte, w*h), make([]byte, w*h)
	fast = decodePNGGray(got, b, w, h)
	slow := decodeImageGray(want, b, FormatPNG, w, h)
	if fast && !slow {
		t.Fatalf("%s: the fast path decoded what image/png refuses", name)
	}
	if fast && !bytes.Equal(got, want) {
		t.Fatalf("%s: the fast path's pixels differ from image/png's:\n got %v\nwant %v", name, got[:min(len(got), 32)], want[:min(len(want), 32)])
	}
	return fast
}

func TestDecodePNGGrayMatchesImagePNG(t *testing.T) {
	for _, v := range pngVariants(t) {
		if fast := checkSame(t, v.name, v.png); fast != v.fast {
			t.Errorf("%s: fast path taken = %v, want %v", v.name, fast, v.fast)
		}
		// Through the public entry point too.
		_, w, h, _ := ImageInfo(v.png)
		if !DecodeGray(make([]byte, w*h), v.png, w, h) {
			t.Errorf("%s: DecodeGray refused", v.name)
		}
	}
}

// rawPNG writes a w×h PNG of color type ctype whose rows carry random
// bytes under random filter types: every filter, on every kind of
// neighbourhood, whatever an encoder would choose.
func rawPNG(r *rand.Rand, w, h int, ctype byte) []byte {
	bpp := map[byte]int{pngGray: 1, pngRGB: 3, pngRGBA: 4}[ctype]
	var raw bytes.Buffer
	z := zlib.NewWriter(&raw)
	row := make([]byte, 1+w*bpp)
	for y := 0; y < h; y++ {
		row[0] = byte(r.IntN(5))
		for i := range row[1:] {
			row[1+i] = byte(r.Uint32())
			if r.IntN(3) == 0 {
				row[1+i] = byte(r.IntN(3)) // near-equal neighbours: Paeth ties
			}
		}
		z.Write(row)
	}
	z.Close()
	ihdr := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, uint32(w)), uint32(h))
	ihdr = append(ihdr, 8, ctype, 0, 0, 0)
	return assemble([][2][]byte{{[]byte("IHDR"), ihdr}, {[]byte("IDAT"), raw.Bytes()}, {[]byte("IEND"), nil}})
}

func TestDecodePNGGrayEveryFilter(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, ctype := range []byte{pngGray, pngRGB, pngRGBA} {
		for _, size := range [][2]int{{1, 1}, {2, 9}, {17, 13}, {64, 64}} {
			name := fmt.Sprintf("type %d %dx%d", ctype, size[0], size[1])
			if !checkSame(t, name, rawPNG(r, size[0], size[1], ctype)) {
				t.Errorf("%s: fast path not taken", name)
			}
		}
	}
}

// chunks splits a PNG after its signature into (type, data) pairs.
func chunks(t testing.TB, b []byte) [][2][]byte {
	var out [][2][]byte
	for b = b[8:]; len(b) >= 12; {
		n := binary.BigEndian.Uint32(b)
		out = append(out, [2][]byte{b[4:8], b[8 : 8+n]})
		b = b[12+n:]
	}
	if len(b) != 0 {
		t.Fatalf("%d trailing bytes", len(b))
	}
	return out
}

// assemble writes a PNG from chunks with correct CRCs.
func assemble(cs [][2][]byte) []byte {
	b := []byte("\x89PNG\r\n\x1a\n")
	for _, c := range cs {
		b = binary.BigEndian.AppendUint32(b, uint32(len(c[1])))
		start := len(b)
		b = append(append(b, c[0]...), c[1]...)
		b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[start:]))
	}
	return b
}

// Chunk layouts real encoders write: pixel data split over several IDAT
// chunks, text and gamma chunks around them. And those the fast path must
// leave to image/png: transparency, a palette, IDATs that are not
// consecutive, a bad CRC, data after the zlib stream, a missing IEND.
func TestDecodePNGGrayChunkLayouts(t *testing.T) {
	var src []byte
	for _, v := range pngVariants(t) {
		if v.name == "rgb/100x37/level0" {
			src = v.png
		}
	}
	cs := chunks(t, src)
	if len(cs) != 3 || string(cs[1][0]) != "IDAT" {
		t.Fatalf("unexpected layout of the encoder's output: %d chunks", len(cs))
	}
	ihdr, idat, iend := cs[0], cs[1][1], cs[2]
	third := len(idat) / 3
	split := [][2][]byte{{[]byte("IDAT"), idat[:third]}, {[]byte("IDAT"), idat[third : 2*third]}, {[]byte("IDAT"), nil}, {[]byte("IDAT"), idat[2*third:]}}
	text := [2][]byte{[]byte("tEXt"), []byte("Software\x00test")}
	gama := [2][]byte{[]byte("gAMA"), {0, 0, 0xb1, 0x8f}}
	join := func(parts ...[][2][]byte) (out [][2][]byte) {
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	one := func(c [2][]byte) [][2][]byte { return [][2][]byte{c} }
	for _, c := range []struct {
		name string
		cs   [][2][]byte
		fast bool
	}{
		{"split IDAT", join(one(ihdr), split, one(iend)), true},
		{"ancillary chunks around", join(one(ihdr), one(gama), one(text), split, one(text), one(iend)), true},
		{"tRNS", join(one(ihdr), one([2][]byte{[]byte("tRNS"), {0, 1, 0, 2, 0, 3}}), one(cs[1]), one(iend)), false},
		{"PLTE", join(one(ihdr), one([2][]byte{[]byte("PLTE"), {0, 0, 0}}), one(cs[1]), one(iend)), false},
		{"IDAT after text after IDAT", join(one(ihdr), split[:1], one(text), split[1:], one(iend)), false},
		{"no IEND", join(one(ihdr), one(cs[1])), false},
		{"IEND with data", join(one(ihdr), one(cs[1]), one([2][]byte{[]byte("IEND"), {1}})), false},
		{"data after the zlib stream", join(one(ihdr), one([2][]byte{[]byte("IDAT"), append(bytes.Clone(idat), 0)}), one(iend)), false},
		{"truncated zlib stream", join(one(ihdr), one([2][]byte{[]byte("IDAT"), idat[:len(idat)-5]}), one(iend)), false},
	} {
		b := assemble(c.cs)
		if fast := checkSame(t, c.name, b); fast != c.fast {
			t.Errorf("%s: fast path taken = %v, want %v", c.name, fast, c.fast)
		}
	}
	// A flipped CRC byte: declined (and image/png refuses it too).
	b := assemble(join(one(ihdr), split, one(iend)))
	b[len(b)-13]++ // the last IDAT's CRC
	if checkSame(t, "bad CRC", b) {
		t.Error("bad CRC: fast path taken")
	}
}

// IHDRs the header fast path must leave to png.DecodeConfig, which
// refuses them (or, for a palette, reads on to the PLTE chunk).
func TestPNGHeaderDeclines(t *testing.T) {
	ihdr := func(w, h uint32, depth, ctype, comp, filter, interlace byte) []byte {
		b := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, w), h)
		return assemble([][2][]byte{{[]byte("IHDR"), append(b, depth, ctype, comp, filter, interlace)}})
	}
	if w, h, ok := pngHeader(ihdr(3, 2, 8, pngRGB, 0, 0, 1)); !ok || w != 3 || h != 2 {
		t.Fatalf("an interlaced RGB header: %d×%d %v", w, h, ok)
	}
	for name, b := range map[string][]byte{
		"zero width":         ihdr(0, 2, 8, pngGray, 0, 0, 0),
		"negative height":    ihdr(3, 1<<31, 8, pngGray, 0, 0, 0),
		"dimension overflow": ihdr(1<<31-1, 1<<31-1, 8, pngGray, 0, 0, 0),
		"16-bit":             ihdr(3, 2, 16, pngGray, 0, 0, 0),
		"paletted":           ihdr(3, 2, 8, 3, 0, 0, 0),
		"compression 1":      ihdr(3, 2, 8, pngGray, 1, 0, 0),
		"filter 1":           ihdr(3, 2, 8, pngGray, 0, 1, 0),
		"interlace 2":        ihdr(3, 2, 8, pngGray, 0, 0, 2),
	} {
		if _, _, ok := pngHeader(b); ok {
			t.Errorf("%s: read by the fast path", name)
		}
		checkSame(t, name, b)
	}
	b := ihdr(3, 2, 8, pngGray, 0, 0, 0)
	b[len(b)-1]++
	if _, _, ok := pngHeader(b); ok {
		t.Error("bad IHDR CRC: read by the fast path")
	}
}

// The point of the fast path: a small PNG decodes without garbage once the
// pool is warm (image/png allocates ~47 KiB in 15 objects for the same
// 28×28 digit).
func TestDecodePNGGrayAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops states on purpose: counts mean nothing")
	}
	var b bytes.Buffer
	img := image.NewGray(image.Rect(0, 0, 28, 28))
	for i := range img.Pix {
		img.Pix[i] = uint8(i)
	}
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, 28*28)
	if !DecodeGray(dst, b.Bytes(), 28, 28) {
		t.Fatal("refused")
	}
	allocs := testing.AllocsPerRun(200, func() { DecodeGray(dst, b.Bytes(), 28, 28) })
	// zlib's Reset allocates its 4-byte checksum state; a collection
	// empties the pool now and then.
	if allocs > 2 {
		t.Errorf("DecodeGray of a 28×28 gray PNG: %v allocations per call, want at most 2", allocs)
	}
}

// FuzzDecodeGrayPNG holds the fast path to image/png on arbitrary bytes:
// whatever it decodes, image/png decodes to the same pixels.
func FuzzDecodeGrayPNG(f *testing.F) {
	for _, v := range pngVariants(f) {
		if len(v.png) < 4096 {
			f.Add(v.png)
		}
	}
	r := rand.New(rand.NewPCG(5, 6))
	for _, ctype := range []byte{pngGray, pngRGB, pngRGBA} {
		f.Add(rawPNG(r, 7, 5, ctype))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkSame(t, "input", b) })
}

func BenchmarkDecodeGrayPNG(b *testing.B) {
	var buf bytes.Buffer
	img := image.NewGray(image.Rect(0, 0, 28, 28))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	if err := png.Encode(&buf, img); err != nil {
		b.Fatal(err)
	}
	src, dst := buf.Bytes(), make([]byte, 28*28)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !DecodeGray(dst, src, 28, 28) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("image-png", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !decodeImageGray(dst, src, FormatPNG, 28, 28) {
				b.Fatal("refused")
			}
		}
	})
}
