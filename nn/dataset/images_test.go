package dataset

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"io/fs"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func encodePNG(img image.Image) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// greyPNG is a w×h 8-bit grey PNG with pixels in row-major order.
func greyPNG(w, h int, pix ...byte) []byte {
	m := image.NewGray(image.Rect(0, 0, w, h))
	copy(m.Pix, pix)
	return encodePNG(m)
}

// rgbPNG is a 1-row opaque RGB PNG (image.RGBA, which the encoder writes as
// colour type 2) with one {R, G, B} a pixel.
func rgbPNG(pix ...[3]byte) []byte {
	m := image.NewRGBA(image.Rect(0, 0, len(pix), 1))
	for i, p := range pix {
		m.Set(i, 0, color.RGBA{p[0], p[1], p[2], 255})
	}
	return encodePNG(m)
}

// headerPNG is only a PNG signature and an IHDR chunk (with a correct CRC)
// claiming w×h 8-bit grey pixels.
func headerPNG(w, h uint32) []byte {
	b := []byte("\x89PNG\r\n\x1a\n")
	b = binary.BigEndian.AppendUint32(b, 13)
	chunk := []byte("IHDR")
	chunk = binary.BigEndian.AppendUint32(chunk, w)
	chunk = binary.BigEndian.AppendUint32(chunk, h)
	chunk = append(chunk, 8, 0, 0, 0, 0) // depth 8, grey, deflate, no filter, no interlace
	b = append(b, chunk...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(chunk))
}

// entry is one archive member; a name ending in "/" is a directory.
type entry struct {
	name string
	body []byte
	link bool // a symbolic link instead of a file
}

func tarOf(entries ...entry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: tar.TypeReg}
		switch {
		case strings.HasSuffix(e.name, "/"):
			hdr.Typeflag, hdr.Mode = tar.TypeDir, 0o755
		case e.link:
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeSymlink, "/etc/passwd", 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			panic(err)
		}
		if hdr.Size > 0 {
			tw.Write(e.body)
		}
	}
	tw.Close()
	return buf.Bytes()
}

func zipOf(entries ...entry) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		fh := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.link {
			fh.SetMode(fs.ModeSymlink | 0o777)
		}
		w, err := zw.CreateHeader(fh)
		if err != nil {
			panic(err)
		}
		w.Write(e.body)
	}
	zw.Close()
	return buf.Bytes()
}

func mapFS(entries ...entry) fstest.MapFS {
	m := fstest.MapFS{}
	for _, e := range entries {
		switch {
		case strings.HasSuffix(e.name, "/"):
			m[strings.TrimSuffix(e.name, "/")] = &fstest.MapFile{Mode: fs.ModeDir | 0o755}
		case e.link:
			m[e.name] = &fstest.MapFile{Data: []byte("/etc/passwd"), Mode: fs.ModeSymlink | 0o777}
		default:
			m[e.name] = &fstest.MapFile{Data: e.body}
		}
	}
	return m
}

func prefixed(prefix string, entries []entry) []entry {
	out := make([]entry, len(entries))
	for i, e := range entries {
		out[i] = e
		out[i].name = prefix + e.name
	}
	return out
}

func reversed(entries []entry) []entry {
	out := slices.Clone(entries)
	slices.Reverse(out)
	return out
}

// layouts reads entries as a folder and as a tar, a tar.gz and a zip (the
// archives with a common top-level directory, the zip in reverse order).
func layouts(t *testing.T, entries []entry, opts *Options) map[string]*Set {
	t.Helper()
	out := map[string]*Set{}
	read := func(what string, s *Set, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		out[what] = s
	}
	s, err := ReadImageFolder(mapFS(entries...), opts)
	read("folder", s, err)
	s, err = ReadImageArchive(bytes.NewReader(tarOf(entries...)), opts)
	read("tar", s, err)
	s, err = ReadImageArchive(bytes.NewReader(gz(tarOf(prefixed("./pets/", entries)...))), opts)
	read("tar.gz", s, err)
	s, err = ReadImageArchive(bytes.NewReader(zipOf(reversed(prefixed("pets/", entries))...)), opts)
	read("zip", s, err)
	return out
}

func checkImageSet(t *testing.T, what string, s *Set, shape []int, names []string, y []int32, x []float32) {
	t.Helper()
	f := shape[0] * shape[1] * shape[2]
	if s.N != len(y) || s.Features != f || s.Classes != len(names) || s.Targets != nil ||
		!slices.Equal(s.Shape, shape) || !slices.Equal(s.ClassNames, names) || !slices.Equal(s.Y, y) {
		t.Errorf("%s: N=%d F=%d Classes=%d Shape=%v ClassNames=%q Y=%v, want N=%d F=%d Shape=%v ClassNames=%q Y=%v",
			what, s.N, s.Features, s.Classes, s.Shape, s.ClassNames, s.Y, len(y), f, shape, names, y)
	}
	if !slices.Equal(s.X, x) { // x/255 is computed the same way on both sides: exact
		t.Errorf("%s: X = %v\nwant %v", what, s.X, x)
	}
}

func scaled(b ...float32) []float32 {
	for i := range b {
		b[i] /= 255
	}
	return b
}

func TestReadImagesGrey(t *testing.T) {
	entries := []entry{
		{name: "dog/x.png", body: greyPNG(2, 1, 255, 0)},
		{name: "cat/b.png", body: greyPNG(2, 1, 0, 255)},
		{name: "cat/a.png", body: greyPNG(2, 1, 51, 102)},
		{name: "cat/.DS_Store", body: []byte("junk")},
		{name: ".ipynb_checkpoints/x.txt", body: []byte("junk")},
		{name: "__MACOSX/cat/._a.png", body: []byte("junk")},
	}
	for what, s := range layouts(t, entries, nil) {
		checkImageSet(t, what, s, []int{1, 1, 2}, []string{"cat", "dog"}, []int32{0, 0, 1},
			scaled(51, 102, 0, 255, 255, 0))
	}
}

// Colour images are stored channel-major; grey ones in a colour set are
// repeated in R, G and B whether they come before or after the first colour
// image; alpha is dropped; palettes and 16 bits are read.
func TestReadImagesColour(t *testing.T) {
	nrgba := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	nrgba.Set(0, 0, color.NRGBA{10, 20, 30, 0})
	nrgba.Set(1, 0, color.NRGBA{200, 100, 50, 128})
	pal := image.NewPaletted(image.Rect(0, 0, 2, 1), color.Palette{color.RGBA{1, 2, 3, 255}, color.RGBA{4, 5, 6, 255}})
	pal.Pix[0], pal.Pix[1] = 1, 0
	g16 := image.NewGray16(image.Rect(0, 0, 2, 1))
	g16.SetGray16(0, 0, color.Gray16{0xffff})
	g16.SetGray16(1, 0, color.Gray16{0x0101 * 51})
	rgb16 := image.NewNRGBA64(image.Rect(0, 0, 2, 1))
	rgb16.SetNRGBA64(0, 0, color.NRGBA64{0x0101 * 7, 0x0101 * 8, 0x0101 * 9, 0xffff})
	rgb16.SetNRGBA64(1, 0, color.NRGBA64{0, 0xffff, 0, 0x8000})
	entries := []entry{
		{name: "a_grey/1.png", body: greyPNG(2, 1, 255, 0)},
		{name: "b_rgb/1.png", body: rgbPNG([3]byte{10, 20, 30}, [3]byte{40, 50, 60})},
		{name: "b_rgb/2.png", body: encodePNG(nrgba)},
		{name: "c_grey/1.png", body: greyPNG(2, 1, 0, 51)},
		{name: "d_pal/1.png", body: encodePNG(pal)},
		{name: "e_16/grey.png", body: encodePNG(g16)},
		{name: "e_16/rgba.png", body: encodePNG(rgb16)},
	}
	want := slices.Concat(
		scaled(255, 0, 255, 0, 255, 0),
		scaled(10, 40, 20, 50, 30, 60),
		scaled(10, 200, 20, 100, 30, 50),
		scaled(0, 51, 0, 51, 0, 51),
		scaled(4, 1, 5, 2, 6, 3),
		scaled(255, 51, 255, 51, 255, 51),
		scaled(7, 0, 8, 255, 9, 0),
	)
	names := []string{"a_grey", "b_rgb", "c_grey", "d_pal", "e_16"}
	for what, s := range layouts(t, entries, nil) {
		checkImageSet(t, what, s, []int{3, 1, 2}, names, []int32{0, 1, 1, 2, 3, 4, 4}, want)
	}
}

// A top-level directory is stripped only when it holds the classes; a
// single class with no such directory stays a class.
func TestReadImageArchivePrefix(t *testing.T) {
	one := greyPNG(1, 1, 255)
	for i, tc := range []struct {
		archive []byte
		names   []string
	}{
		{tarOf(entry{name: "0/a.png", body: one}, entry{name: "0/b.png", body: one}), []string{"0"}},
		{tarOf(entry{name: "digits/"}, entry{name: "digits/0/a.png", body: one}), []string{"0"}},
		{tarOf(entry{name: "./digits/7/a.png", body: one}, entry{name: "./digits/3/a.png", body: one}), []string{"3", "7"}},
		{zipOf(entry{name: `digits\1\a.png`, body: one}, entry{name: `digits\2\a.png`, body: one}), []string{"1", "2"}},
		{zipOf(entry{name: "a/x.png", body: one}, entry{name: "b/x.png", body: one}), []string{"a", "b"}},
	} {
		s, err := ReadImageArchive(bytes.NewReader(tc.archive), nil)
		if err != nil {
			t.Errorf("%d: %v", i, err)
			continue
		}
		if !slices.Equal(s.ClassNames, tc.names) {
			t.Errorf("%d: ClassNames = %q, want %q", i, s.ClassNames, tc.names)
		}
	}
}

func TestReadImagesRejects(t *testing.T) {
	ok := greyPNG(2, 1, 1, 2)
	good := []entry{{name: "a/1.png", body: ok}, {name: "b/1.png", body: ok}, {name: "b/2.png", body: ok}}
	for i, tc := range []struct {
		entries  []entry
		opts     *Options
		sentinel error
		want     string
		noFolder bool // names a folder cannot hold
	}{
		{entries: []entry{{name: "a/1.png", body: ok}, {name: "b/2.png", body: greyPNG(1, 1, 0)}}, sentinel: ErrFormat, want: `"b/2.png": 1×1 pixels, but "a/1.png" is 2×1`},
		{entries: []entry{{name: "a/1.png", body: ok}, {name: "a/notes.txt", body: []byte("hi")}}, sentinel: ErrFormat, want: `"a/notes.txt" is not a .png file`},
		{entries: []entry{{name: "a/1.png", body: []byte("GIF89a, not a PNG")}}, sentinel: ErrFormat, want: `"a/1.png": png: invalid format`},
		{entries: []entry{{name: "a/1.png", body: ok[:len(ok)-20]}}, sentinel: ErrFormat, want: `"a/1.png"`},
		{entries: []entry{{name: "a/1.png", body: ok}, {name: "a/2.png", body: headerPNG(2, 1)}}, sentinel: ErrFormat, want: `"a/2.png": truncated PNG`},
		{entries: []entry{{name: "a/1.png", body: ok}, {name: "a/huge.png", body: headerPNG(50000, 50000)}}, sentinel: ErrTooLarge, want: `"a/huge.png": 50000×50000 pixels × 1 channels, limit 65536 features`},
		{entries: []entry{{name: "a/wide.png", body: headerPNG(70000, 1)}}, opts: &Options{MaxFeatures: 1 << 20}, sentinel: ErrTooLarge, want: `"a/wide.png": 70000×1 pixels, limit 65536 a side`},
		{entries: []entry{{name: "a/zero.png", body: headerPNG(0, 1)}}, sentinel: ErrFormat, want: `"a/zero.png"`},
		{entries: good, opts: &Options{MaxRows: 2}, sentinel: ErrTooLarge, want: "more than 2 images"},
		{entries: good, opts: &Options{MaxClasses: 1}, sentinel: ErrTooLarge, want: "more than 1 class directories"},
		{entries: good, opts: &Options{MaxValues: 5}, sentinel: ErrTooLarge, want: "3 images of 2 values, limit 5 values"},
		{entries: []entry{{name: "a/1.png", body: rgbPNG([3]byte{1, 2, 3}, [3]byte{4, 5, 6})}}, opts: &Options{MaxFeatures: 4}, sentinel: ErrTooLarge, want: `"a/1.png": 2×1 pixels × 3 channels, limit 4 features`},
		{entries: []entry{{name: "a/1.png", body: ok}, {name: "b/"}}, sentinel: ErrFormat, want: `class directory "b" holds no images`},
		{entries: []entry{{name: ".DS_Store", body: []byte("x")}}, sentinel: ErrFormat, want: "no class directories"},
		{entries: []entry{{name: "a/1.png", body: ok}, {name: "README.md", body: []byte("x")}}, sentinel: ErrFormat, want: `"README.md" is not a directory`},
		{entries: []entry{{name: "a/1.png", body: ok}, {name: "a/sub/2.png", body: ok}}, sentinel: ErrFormat, want: `"a/sub": directories inside a class directory`},
		{entries: []entry{{name: "a/1.png", body: ok}, {name: "a/2.png", link: true}}, sentinel: ErrFormat, want: `"a/2.png" is not a regular file`},
		{entries: []entry{{name: "a/1.png", body: ok}, {name: "a/1.png", body: ok}}, sentinel: ErrFormat, want: `"a/1.png" appears twice`, noFolder: true},
		{entries: []entry{{name: "a/1.png", body: ok}, {name: "a/1.png/x.png", body: ok}}, sentinel: ErrFormat, want: `"a/1.png" is both a file and a directory`, noFolder: true},
		{entries: []entry{{name: "a/1.png", body: ok}, {name: "../a/2.png", body: ok}}, sentinel: ErrFormat, want: `"../a/2.png" leads out of the archive`, noFolder: true},
		{entries: []entry{{name: "a/../../x.png", body: ok}}, sentinel: ErrFormat, want: "leads out of the archive", noFolder: true},
		{entries: []entry{{name: "/etc/a/1.png", body: ok}}, sentinel: ErrFormat, want: `"/etc/a/1.png" is an absolute path`, noFolder: true},
	} {
		check := func(what string, err error) {
			t.Helper()
			if !errors.Is(err, tc.sentinel) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%d %s: err = %v, want %v containing %q", i, what, err, tc.sentinel, tc.want)
			}
		}
		if !tc.noFolder {
			_, err := ReadImageFolder(mapFS(tc.entries...), tc.opts)
			check("folder", err)
		}
		_, err := ReadImageArchive(bytes.NewReader(tarOf(tc.entries...)), tc.opts)
		check("tar", err)
		if !strings.Contains(tc.want, "twice") { // zip.Writer refuses duplicates
			_, err = ReadImageArchive(bytes.NewReader(zipOf(tc.entries...)), tc.opts)
			check("zip", err)
		}
	}
}

func TestReadImageArchiveRejects(t *testing.T) {
	ok := greyPNG(2, 1, 1, 2)
	set := []entry{{name: "a/1.png", body: ok}, {name: "a/2.png", body: ok}, {name: "b/1.png", body: ok}}
	for i, tc := range []struct {
		archive  []byte
		opts     *Options
		sentinel error
		want     string
	}{
		{nil, nil, ErrFormat, "image archive: empty"},
		{tarOf(), nil, ErrFormat, "no class directories"},
		{zipOf(), nil, ErrFormat, "no class directories"},
		{gz(nil), nil, ErrFormat, "image archive: empty"},
		{[]byte("just some text, neither tar nor zip"), nil, ErrFormat, "image archive"},
		{bytes.Repeat([]byte{0xaa}, 2048), nil, ErrFormat, "image archive"},
		{tarOf(set...)[:1000], nil, ErrFormat, "image archive"},
		{zipOf(set...)[:100], nil, ErrFormat, "image archive: zip"},
		{tarOf(set...), &Options{MaxBytes: 1000}, ErrTooLarge, "image archive is over 1000 bytes"},
		{gz(tarOf(set...)), &Options{MaxBytes: 1000}, ErrTooLarge, "image archive is over 1000 bytes"},
		{zipOf(set...), &Options{MaxBytes: 100}, ErrTooLarge, "image archive is over 100 bytes"},
		{tarOf(append(set, entry{name: "c/1.png", body: ok})...), &Options{MaxRows: 1, MaxClasses: 1}, ErrTooLarge, `more than 3 entries (at "c/1.png")`},
		{tarOf(set...)[:1024], nil, ErrFormat, "truncated tar"},
		{tarOf(set...)[:2048], nil, ErrFormat, "truncated tar"},
		{tarOf(set...)[:len(tarOf(set...))-512], nil, ErrFormat, "truncated tar"},
	} {
		_, err := ReadImageArchive(bytes.NewReader(tc.archive), tc.opts)
		if !errors.Is(err, tc.sentinel) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d: err = %v, want %v containing %q", i, err, tc.sentinel, tc.want)
		}
	}
}

// MaxBytes bounds what a folder's files and a zip's unpacked files add up
// to, and names the file that went over.
func TestReadImagesMaxBytes(t *testing.T) {
	ok := greyPNG(2, 1, 1, 2)
	entries := []entry{{name: "a/1.png", body: ok}, {name: "a/2.png", body: ok}, {name: "b/1.png", body: ok}}
	opts := &Options{MaxBytes: int64(2*len(ok) + 10)}
	_, err := ReadImageFolder(mapFS(entries...), opts)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), `"b/1.png"`) {
		t.Errorf("folder: err = %v", err)
	}
	// PNGs written without compression deflate well in the zip: the
	// unpacked files are over the limit, the zip is not.
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.NoCompression}
	if err := enc.Encode(&buf, image.NewGray(image.Rect(0, 0, 100, 100))); err != nil {
		t.Fatal(err)
	}
	big := buf.Bytes()
	z := zipOf(entry{name: "a/1.png", body: big}, entry{name: "a/2.png", body: big})
	_, err = ReadImageArchive(bytes.NewReader(z), &Options{MaxBytes: int64(len(big)) + 10})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), `"a/2.png"`) {
		t.Errorf("zip: err = %v", err)
	}
}

// A header claiming 50000×50000 pixels (2.5 GB grey) is refused before any
// pixel memory is allocated.
func TestReadImagesHugeHeaderDoesNotAllocate(t *testing.T) {
	archive := tarOf(entry{name: "a/huge.png", body: headerPNG(50000, 50000)})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := ReadImageArchive(bytes.NewReader(archive), &Options{MaxFeatures: 1 << 20})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
		t.Errorf("allocated %d bytes", grew)
	}
}

// A folder's errors from the file system are the server's, not the data's.
func TestReadImageFolderIOError(t *testing.T) {
	_, err := ReadImageFolder(fstest.MapFS{}, nil)
	if !errors.Is(err, ErrFormat) {
		t.Errorf("empty folder: err = %v", err)
	}
	folder := mapFS(entry{name: "a/1.png", body: greyPNG(1, 1, 0)})
	_, err = ReadImageFolder(brokenFS{MapFS: folder}, nil)
	if errors.Is(err, ErrFormat) || errors.Is(err, ErrTooLarge) || !errors.Is(err, fs.ErrPermission) {
		t.Errorf("unopenable file: err = %v", err)
	}
	_, err = ReadImageFolder(brokenFS{MapFS: folder, read: true}, nil)
	if errors.Is(err, ErrFormat) || errors.Is(err, ErrTooLarge) || !errors.Is(err, fs.ErrClosed) || !strings.Contains(err.Error(), `"a/1.png"`) {
		t.Errorf("unreadable file: err = %v", err)
	}
}

// In an archive, bytes that cannot be unpacked are the data's fault.
func TestReadImageArchiveBadEntry(t *testing.T) {
	ok := greyPNG(2, 1, 1, 2)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("a/1.png")
	w.Write(ok)
	w, _ = zw.CreateRaw(&zip.FileHeader{Name: "a/2.png", Method: 12, CompressedSize64: uint64(len(ok)), UncompressedSize64: uint64(len(ok))})
	w.Write(ok) // claimed bzip2, which archive/zip does not read
	zw.Close()
	_, err := ReadImageArchive(bytes.NewReader(buf.Bytes()), nil)
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), `"a/2.png": zip: unsupported compression algorithm`) {
		t.Errorf("unknown method: err = %v", err)
	}

	buf.Reset()
	zw = zip.NewWriter(&buf)
	w, _ = zw.CreateRaw(&zip.FileHeader{Name: "a/1.png", Method: zip.Deflate, CompressedSize64: 4, UncompressedSize64: uint64(len(ok))})
	w.Write([]byte{0xff, 0xff, 0xff, 0xff}) // not a deflate stream
	zw.Close()
	_, err = ReadImageArchive(bytes.NewReader(buf.Bytes()), nil)
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), `"a/1.png"`) {
		t.Errorf("bad deflate: err = %v", err)
	}
}

// brokenFS lists fine but cannot open files; with read set, it opens them
// and fails reading them.
type brokenFS struct {
	fstest.MapFS
	read bool
}

func (b brokenFS) Open(name string) (fs.File, error) {
	if !strings.HasSuffix(name, ".png") {
		return b.MapFS.Open(name)
	}
	if b.read {
		f, err := b.MapFS.Open(name)
		return brokenFile{f}, err
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
}

type brokenFile struct{ fs.File }

func (brokenFile) Read([]byte) (int, error) { return 0, fs.ErrClosed }

var imageFuzzOpts = &Options{MaxRows: 16, MaxFeatures: 1 << 10, MaxClasses: 8, MaxBytes: 1 << 16, MaxValues: 1 << 12}

func FuzzReadImageArchive(f *testing.F) {
	grey, rgb := greyPNG(2, 2, 0, 64, 128, 255), rgbPNG([3]byte{1, 2, 3}, [3]byte{4, 5, 6})
	f.Add(tarOf(entry{name: "a/1.png", body: grey}, entry{name: "b/1.png", body: grey}))
	f.Add(zipOf(entry{name: "d/a/1.png", body: rgb}, entry{name: "d/b/1.png", body: rgb}))
	f.Add(gz(tarOf(entry{name: "a/"}, entry{name: "a/x.png", body: rgb})))
	f.Add(tarOf(entry{name: "a/1.png", body: headerPNG(1<<16, 1<<16)}))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ReadImageArchive(bytes.NewReader(b), imageFuzzOpts)
		if err != nil {
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		checkSet(t, s)
		if len(s.Shape) != 3 || s.Shape[0]*s.Shape[1]*s.Shape[2] != s.Features || len(s.ClassNames) != s.Classes ||
			s.N > imageFuzzOpts.MaxRows || s.Classes > imageFuzzOpts.MaxClasses || s.Features > imageFuzzOpts.MaxFeatures {
			t.Fatalf("bad set: N=%d Shape=%v Features=%d ClassNames=%q", s.N, s.Shape, s.Features, s.ClassNames)
		}
		for i, v := range s.X {
			if !(v >= 0 && v <= 1) {
				t.Fatalf("X[%d] = %v", i, v)
			}
		}
	})
}

func ExampleReadImageFolder() {
	png := func(v byte) *fstest.MapFile { return &fstest.MapFile{Data: greyPNG(2, 1, v, 255-v)} }
	folder := fstest.MapFS{
		"cat/001.png": png(0),
		"cat/002.png": png(51),
		"dog/001.png": png(255),
		".DS_Store":   {Data: []byte("skipped")},
	}
	s, err := ReadImageFolder(folder, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.N, s.Shape, s.ClassNames, s.Y, s.X[2:4])
	// Output: 3 [1 1 2] [cat dog] [0 0 1] [0.2 0.8]
}

// BenchmarkReadImageArchive reads 1,000 32×32 RGB PNGs from a tar.gz in 10
// classes, the size of a CIFAR-10 slice.
func BenchmarkReadImageArchive(b *testing.B) {
	var entries []entry
	m := image.NewRGBA(image.Rect(0, 0, 32, 32))
	for i := range 1000 {
		for p := range m.Pix {
			m.Pix[p] = byte(i*7 + p*13)
		}
		entries = append(entries, entry{name: fmt.Sprintf("cifar/%d/%04d.png", i%10, i), body: encodePNG(m)})
	}
	data := gz(tarOf(entries...))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadImageArchive(bytes.NewReader(data), nil); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCheckOnly: a checked-only read counts what a full read counts and
// refuses what it refuses, keeps no values and reserves nothing.
func TestCheckOnly(t *testing.T) {
	reserve := func(n int64) error { t.Errorf("CheckOnly reserved %d bytes", n); return nil }
	check := &Options{CheckOnly: true, Reserve: reserve}
	same := func(what string, full, got *Set) {
		t.Helper()
		if got.X != nil || got.Y != nil || got.Targets != nil {
			t.Errorf("%s: kept values: %d X, %d Y, %d targets", what, len(got.X), len(got.Y), len(got.Targets))
		}
		if got.N != full.N || got.Features != full.Features || got.Classes != full.Classes || !slices.Equal(got.Shape, full.Shape) || !slices.Equal(got.ClassNames, full.ClassNames) {
			t.Errorf("%s: checked %+v, read %+v", what, got, full)
		}
	}
	csv := "a,b,label\n1,2,0\n3,4,2\n5,6.5,1\n"
	full, err := ReadCSV(strings.NewReader(csv), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadCSV(strings.NewReader(csv), check)
	if err != nil {
		t.Fatal(err)
	}
	same("csv", full, got)
	reg := &Options{CheckOnly: true, Regression: true, Reserve: reserve}
	if got, err := ReadCSV(strings.NewReader("1,2,0.5\n3,4,-2\n"), reg); err != nil || got.N != 2 || got.Targets != nil {
		t.Errorf("regression: %+v %v", got, err)
	}
	for bad, want := range map[string]error{
		"1,2,0\n3,x,1\n":    ErrFormat,
		"1,2,0\n3,4,0.5\n":  ErrFormat,
		"1,2,0\n3,4\n":      ErrFormat,
		"1,2,0\n3,4,5000\n": ErrTooLarge,
	} {
		if _, err := ReadCSV(strings.NewReader(bad), check); !errors.Is(err, want) {
			t.Errorf("%q: %v, want %v", bad, err, want)
		}
	}
	if _, err := ReadCSV(strings.NewReader("1,2,0\n3,4,1\n5,6,1\n"), &Options{CheckOnly: true, MaxValues: 5}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("6 values past MaxValues 5: %v", err)
	}

	entries := []entry{
		{name: "a/1.png", body: greyPNG(2, 1, 255, 0)},
		{name: "b/1.png", body: rgbPNG([3]byte{10, 20, 30}, [3]byte{40, 50, 60})},
		{name: "b/2.png", body: greyPNG(2, 1, 0, 51)},
	}
	fullImages, err := ReadImageArchive(bytes.NewReader(tarOf(entries...)), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err = ReadImageArchive(bytes.NewReader(tarOf(entries...)), check)
	if err != nil {
		t.Fatal(err)
	}
	same("images", fullImages, got)
	bad := append(entries, entry{name: "b/3.png", body: greyPNG(3, 1, 0, 0, 0)})
	if _, err := ReadImageArchive(bytes.NewReader(tarOf(bad...)), check); !errors.Is(err, ErrFormat) {
		t.Errorf("an image of another size: %v", err)
	}
}
