package training

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"image"
	"image/color"
	"image/png"
	"slices"
	"testing"

	"github.com/aiaas/aiaas/nn/dataset"
)

// pngOf encodes a w×h grey image whose pixel i is v(i).
func pngOf(t *testing.T, w, h int, v func(i int) uint8) []byte {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range w * h {
		img.SetGray(i%w, i/w, color.Gray{Y: v(i)})
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestParseDatasetFormats uploads the same two-class image set as a tar,
// a tar.gz and a zip, and a CSV plain and gzipped: each is recognised by
// its bytes and read as what it is.
func TestParseDatasetFormats(t *testing.T) {
	files := map[string][]byte{
		"cats/a.png": pngOf(t, 3, 2, func(i int) uint8 { return uint8(10 * i) }),
		"dogs/b.png": pngOf(t, 3, 2, func(i int) uint8 { return 255 }),
	}
	names := []string{"cats/a.png", "dogs/b.png"}
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	for _, n := range names {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg})
		tw.Write(files[n])
	}
	tw.Close()
	var tgz bytes.Buffer
	gw := gzip.NewWriter(&tgz)
	gw.Write(tarBuf.Bytes())
	gw.Close()
	var zipBuf bytes.Buffer
	zw := zip.NewWriter(&zipBuf)
	for _, n := range names {
		f, _ := zw.Create(n)
		f.Write(files[n])
	}
	zw.Close()
	for name, b := range map[string][]byte{"tar": tarBuf.Bytes(), "tar.gz": tgz.Bytes(), "zip": zipBuf.Bytes()} {
		s, err := ParseDataset(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if s.N != 2 || !slices.Equal(s.Shape, []int{1, 2, 3}) || !slices.Equal(s.ClassNames, []string{"cats", "dogs"}) ||
			!slices.Equal(s.Y, []int32{0, 1}) || s.X[1] != 10.0/255 || s.X[6] != 1 {
			t.Errorf("%s: %+v", name, s)
		}
	}
	csv := []byte("0.5,1,0\n1,0.25,1\n")
	var csvgz bytes.Buffer
	gw = gzip.NewWriter(&csvgz)
	gw.Write(csv)
	gw.Close()
	for name, b := range map[string][]byte{"csv": csv, "csv.gz": csvgz.Bytes()} {
		s, err := ParseDataset(b)
		if err != nil || s.N != 2 || s.Features != 2 || s.Shape != nil {
			t.Errorf("%s: %+v %v", name, s, err)
		}
	}
	// A tar cut short is refused as malformed, not read as fewer images.
	if _, err := ParseDataset(tarBuf.Bytes()[:len(tarBuf.Bytes())-1024]); !errors.Is(err, dataset.ErrFormat) {
		t.Errorf("truncated tar: %v", err)
	}
}
