package dataset

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/aiaas/aiaas/internal/yield"
)

// maxImageSide bounds each side of an image whatever MaxFeatures allows, so
// that width × height × channels cannot overflow and a header is judged on
// its own before any pixel is decoded.
const maxImageSide = 1 << 16

// ReadImageFolder reads a folder of PNG images laid out one directory per
// class, as Keras's image_dataset_from_directory and torchvision's
// ImageFolder expect:
//
//	cat/001.png
//	cat/002.png
//	dog/001.png
//
// Class i is the i-th directory name in sorted order (Set.ClassNames), and
// samples are ordered by class, then by file name. Entries whose name starts
// with "." and "__MACOSX" directories are skipped; any other file that is
// not a regular ".png" file, a file at the top level, a directory inside a
// class directory, an empty class directory and a folder without classes are
// errors wrapping [ErrFormat].
//
// All images must have the same width and height. If every image decodes as
// grey the set has one channel, otherwise three: grey images are repeated in
// R, G and B, and alpha is dropped (the stored colour is kept, not blended
// with a background). Set.Shape is [C, H, W], pixels are stored
// channel-major and scaled to [0, 1] (x/255, or x/65535 for 16-bit PNGs).
//
// opts' MaxRows bounds the images, MaxClasses the class directories,
// MaxFeatures C×H×W, MaxValues the whole set, and MaxBytes the total bytes
// read from all the files. Each PNG header is checked against those limits
// and against 65536 pixels a side before its pixels are decoded. Errors name
// the file at fault; those of fsys itself (a file that cannot be opened or
// read) are wrapped as they are, not as ErrFormat. Safe for concurrent use if
// fsys is.
func ReadImageFolder(fsys fs.FS, opts *Options) (*Set, error) {
	o := opts.withDefaults()
	return readImages(folderTree{fsys: fsys, b: &budget{left: o.MaxBytes, max: o.MaxBytes}}, o)
}

// ReadImageArchive reads the layout of [ReadImageFolder] from a tar or zip
// archive, either of them optionally gzipped (each is recognised by its magic
// bytes). A single top-level directory holding the class directories
// ("digits/0/a.png", "digits/1/b.png") is stripped; errors still name
// entries by their full path. Backslashes in zip names are taken as
// separators, as old Windows tools write them.
//
// Only regular files and directories may appear: links, devices, absolute
// names and names with a ".." element are errors wrapping [ErrFormat], and so
// is a tar cut short, even between two entries. The archive stream (after
// gzip) is bounded by opts.MaxBytes. Entries come in any order, so a tar's
// .png files are held in memory until all are listed; a zip is held in memory
// whole, its directory being at its end, and the files it unpacks are
// bounded by MaxBytes again. Every other rule and limit is that of
// ReadImageFolder. Safe for concurrent use on distinct readers.
func ReadImageArchive(r io.Reader, opts *Options) (*Set, error) {
	o := opts.withDefaults()
	src, err := open(r, o.MaxBytes, "image archive")
	if err != nil {
		return nil, err
	}
	br := bufio.NewReader(src)
	magic, err := br.Peek(4)
	if len(magic) == 0 {
		if err != nil && err != io.EOF {
			return nil, archiveErr(err)
		}
		return nil, fmt.Errorf("%w: image archive: empty", ErrFormat)
	}
	var t *memTree
	switch string(magic) {
	case "PK\x03\x04", "PK\x05\x06": // a zip's first entry, or an empty zip's directory end
		t, err = readZip(br, o)
	default:
		t, err = readTar(br, o)
	}
	if err != nil {
		return nil, err
	}
	return readImages(t, o)
}

// entryKind is what a directory entry is: only directories and regular
// files are ever followed.
type entryKind uint8

const (
	kindFile entryKind = iota
	kindDir
	kindOther // symbolic links, devices, sockets...
)

func kindOf(m fs.FileMode) entryKind {
	switch {
	case m.IsDir():
		return kindDir
	case m.IsRegular():
		return kindFile
	}
	return kindOther
}

// tree is the file tree an image set is read from: a folder or an unpacked
// archive. Paths are slash-separated and relative to the root, ".".
type tree interface {
	// list calls fn for each entry of dir, in any order, and stops at the
	// first error fn returns.
	list(dir string, fn func(name string, kind entryKind) error) error
	// open returns the bytes of the regular file at p, counted against
	// the byte budget.
	open(p string) (io.ReadCloser, error)
	// name is how errors call p.
	name(p string) string
	// fault wraps an error met reading p that is neither a PNG error nor a
	// limit: the server's I/O for a folder, the data's fault in an archive.
	fault(p string, err error) error
}

// hidden entries are the ones tools leave behind: ".DS_Store",
// ".ipynb_checkpoints", "._a.png" and the "__MACOSX" tree of Finder's zips.
func hidden(name string) bool {
	return strings.HasPrefix(name, ".") || name == "__MACOSX"
}

func isPNGName(name string) bool {
	return strings.EqualFold(path.Ext(name), ".png")
}

// readImages is the core both readers share: it lists the whole layout
// first, so that a stray file or a limit is reported before any decoding,
// then decodes the images in order.
func readImages(t tree, o Options) (*Set, error) {
	var classes []string
	err := t.list(".", func(name string, kind entryKind) error {
		switch {
		case hidden(name):
			return nil
		case kind != kindDir:
			return fmt.Errorf("%w: %q is not a directory: the top level holds one directory per class", ErrFormat, t.name(name))
		case len(classes) == o.MaxClasses:
			return fmt.Errorf("%w: more than %d class directories", ErrTooLarge, o.MaxClasses)
		}
		classes = append(classes, name)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(classes) == 0 {
		return nil, fmt.Errorf("%w: no class directories", ErrFormat)
	}
	slices.Sort(classes)

	type sample struct {
		path  string
		class int32
	}
	var samples []sample
	for ci, class := range classes {
		var names []string
		err := t.list(class, func(name string, kind entryKind) error {
			p := class + "/" + name
			switch {
			case hidden(name):
				return nil
			case kind == kindDir:
				return fmt.Errorf("%w: %q: directories inside a class directory are not read", ErrFormat, t.name(p))
			case kind != kindFile:
				return fmt.Errorf("%w: %q is not a regular file", ErrFormat, t.name(p))
			case !isPNGName(name):
				return fmt.Errorf("%w: %q is not a .png file", ErrFormat, t.name(p))
			case len(samples)+len(names) == o.MaxRows:
				return fmt.Errorf("%w: more than %d images (at %q)", ErrTooLarge, o.MaxRows, t.name(p))
			}
			names = append(names, name)
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("%w: class directory %q holds no images", ErrFormat, t.name(class))
		}
		slices.Sort(names)
		for _, name := range names {
			samples = append(samples, sample{class + "/" + name, int32(ci)})
		}
	}

	d := imageDecoder{o: o, total: len(samples)}
	y := make([]int32, len(samples))
	var yp yield.Point
	for i, s := range samples {
		yp.Maybe()
		if err := d.add(t, s.path); err != nil {
			return nil, err
		}
		y[i] = s.class
	}
	if o.CheckOnly {
		y = nil
	}
	return &Set{
		X:          d.x,
		Y:          y,
		N:          len(samples),
		Features:   d.c * d.h * d.w,
		Classes:    len(classes),
		Shape:      []int{d.c, d.h, d.w},
		ClassNames: classes,
	}, nil
}

// imageDecoder appends images to one channel-major pixel slice. The set
// starts grey and becomes RGB, once, at its first colour image.
type imageDecoder struct {
	o       Options
	total   int // images in the set, from the listing
	n       int // images decoded
	x       []float32
	c, h, w int
	first   string // named when a later image's size differs
}

func (d *imageDecoder) add(t tree, p string) error {
	name := t.name(p)
	rc, err := t.open(p)
	if err != nil {
		return err
	}
	defer rc.Close()
	// The header alone is read first and judged, then replayed to the
	// decoder: a PNG that claims 50000×50000 is refused without allocating.
	var head bytes.Buffer
	cfg, err := png.DecodeConfig(io.TeeReader(rc, &head))
	if err != nil {
		return decodeErr(t, p, err)
	}
	w, h := cfg.Width, cfg.Height
	if w <= 0 || h <= 0 {
		return fmt.Errorf("%w: %q: %d×%d pixels", ErrFormat, name, w, h)
	}
	if w > maxImageSide || h > maxImageSide {
		return fmt.Errorf("%w: %q: %d×%d pixels, limit %d a side", ErrTooLarge, name, w, h, maxImageSide)
	}
	c := 3
	if cfg.ColorModel == color.GrayModel || cfg.ColorModel == color.Gray16Model {
		c = 1
	}
	if err := d.fits(name, max(c, d.c), w, h); err != nil {
		return err
	}
	if d.n > 0 && (w != d.w || h != d.h) {
		return fmt.Errorf("%w: %q: %d×%d pixels, but %q is %d×%d: all images must have one size", ErrFormat, name, w, h, d.first, d.w, d.h)
	}
	img, err := png.Decode(io.MultiReader(&head, rc))
	if err != nil {
		return decodeErr(t, p, err)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		return fmt.Errorf("%w: %q: decodes to %v, header says %d×%d", ErrFormat, name, b, w, h)
	}
	// The header does not always tell: a tRNS chunk makes a grey PNG
	// decode with alpha.
	c = 3
	switch img.(type) {
	case *image.Gray, *image.Gray16:
		c = 1
	}
	if err := d.fits(name, max(c, d.c), w, h); err != nil {
		return err
	}
	switch {
	case d.o.CheckOnly:
		if d.n == 0 {
			d.h, d.w, d.first = h, w, name
		}
		d.c = max(d.c, c)
		d.n++
		return nil
	case d.n == 0:
		d.c, d.h, d.w, d.first = c, h, w, name
		if err := d.reserve(int64(d.total * c * h * w)); err != nil {
			return err
		}
		d.x = make([]float32, 0, d.total*c*h*w) // within MaxValues, checked by fits
	case c > d.c:
		if err := d.reserve(int64(d.total * 3 * h * w)); err != nil {
			return err
		}
		d.x = toRGB(d.x, d.n, h*w, d.total*3*h*w)
		d.c = 3
	}
	d.x = appendPixels(d.x, img, d.c)
	d.n++
	return nil
}

// reserve charges Options.Reserve, if set, for an array of n values.
func (d *imageDecoder) reserve(n int64) error {
	if d.o.Reserve == nil {
		return nil
	}
	if err := d.o.Reserve(4 * n); err != nil {
		return fmt.Errorf("%d images: %w", d.total, err)
	}
	return nil
}

// fits checks one image of c channels, and the whole set of such images,
// against the limits.
func (d *imageDecoder) fits(name string, c, w, h int) error {
	f := int64(c) * int64(w) * int64(h) // below 2^34
	if f > int64(d.o.MaxFeatures) {
		return fmt.Errorf("%w: %q: %d×%d pixels × %d channels, limit %d features", ErrTooLarge, name, w, h, c, d.o.MaxFeatures)
	}
	if int64(d.total) > d.o.MaxValues/f {
		return fmt.Errorf("%w: %d images of %d values, limit %d values", ErrTooLarge, d.total, f, d.o.MaxValues)
	}
	return nil
}

// decodeErr sorts an error from the PNG decoder: limits pass through, bad
// PNG bytes are the data's fault, anything else is the tree's to judge.
func decodeErr(t tree, p string, err error) error {
	var fe png.FormatError
	var ue png.UnsupportedError
	switch {
	case errors.Is(err, ErrTooLarge), errors.Is(err, ErrFormat):
		return err
	case errors.As(err, &fe), errors.As(err, &ue):
		return fmt.Errorf("%w: %q: %v", ErrFormat, t.name(p), err)
	case err == io.EOF, err == io.ErrUnexpectedEOF:
		return fmt.Errorf("%w: %q: truncated PNG", ErrFormat, t.name(p))
	}
	return t.fault(p, err)
}

// byteScale maps a byte to [0, 1] as x/255, the Keras rescaling.
var byteScale = func() (s [256]float32) {
	for i := range s {
		s[i] = float32(i) / 255
	}
	return s
}()

// toRGB returns the n grey images of hw pixels in x repeated in three
// channels, with room for capacity values.
func toRGB(x []float32, n, hw, capacity int) []float32 {
	out := make([]float32, 3*n*hw, max(capacity, 3*n*hw))
	for i := range n {
		src, dst := x[i*hw:(i+1)*hw], out[3*i*hw:]
		for ch := range 3 {
			copy(dst[ch*hw:(ch+1)*hw], src)
		}
	}
	return out
}

// appendPixels appends img to x channel-major in c channels: grey images may
// be written in 1 or 3 channels, colour ones need c == 3.
func appendPixels(x []float32, img image.Image, c int) []float32 {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	hw := w * h
	at := len(x)
	x = slices.Grow(x, c*hw)[:at+c*hw]
	dst := x[at:]
	rgb := func(p int, r, g, b float32) {
		dst[p], dst[hw+p], dst[2*hw+p] = r, g, b
	}
	switch m := img.(type) {
	case *image.Gray:
		for y := range h {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:w]
			for i, v := range row {
				for ch := range c {
					dst[ch*hw+y*w+i] = byteScale[v]
				}
			}
		}
	case *image.Gray16:
		for y := range h {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:2*w]
			for i := range w {
				v := float32(uint16(row[2*i])<<8|uint16(row[2*i+1])) / 0xffff
				for ch := range c {
					dst[ch*hw+y*w+i] = v
				}
			}
		}
	case *image.NRGBA: // PNG's RGBA: the alpha byte is dropped
		for y := range h {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:4*w]
			for i := range w {
				rgb(y*w+i, byteScale[row[4*i]], byteScale[row[4*i+1]], byteScale[row[4*i+2]])
			}
		}
	case *image.RGBA: // PNG's RGB, always opaque
		for y := range h {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:4*w]
			for i := range w {
				rgb(y*w+i, byteScale[row[4*i]], byteScale[row[4*i+1]], byteScale[row[4*i+2]])
			}
		}
	case *image.Paletted:
		var pal [256][3]float32 // indices past the palette read black
		for i, col := range m.Palette[:min(len(m.Palette), 256)] {
			n := color.NRGBAModel.Convert(col).(color.NRGBA)
			pal[i] = [3]float32{byteScale[n.R], byteScale[n.G], byteScale[n.B]}
		}
		for y := range h {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:w]
			for i, v := range row {
				rgb(y*w+i, pal[v][0], pal[v][1], pal[v][2])
			}
		}
	default: // 16-bit colour, with or without alpha
		for y := range h {
			for i := range w {
				n := color.NRGBA64Model.Convert(m.At(b.Min.X+i, b.Min.Y+y)).(color.NRGBA64)
				rgb(y*w+i, float32(n.R)/0xffff, float32(n.G)/0xffff, float32(n.B)/0xffff)
			}
		}
	}
	return x
}

// budget is what is left of MaxBytes across the files of one set.
type budget struct{ left, max int64 }

// budgetReader is a limitReader that draws on a budget shared by files.
type budgetReader struct {
	lr limitReader
	b  *budget
}

func (r *budgetReader) Read(p []byte) (int, error) {
	n, err := r.lr.Read(p)
	r.b.left = r.lr.n
	return n, err
}

func (b *budget) reader(r io.Reader, what string) io.Reader {
	return &budgetReader{lr: limitReader{r: r, n: b.left, max: b.max, what: what}, b: b}
}

type readCloser struct {
	io.Reader
	io.Closer
}

// folderTree reads a tree from an fs.FS.
type folderTree struct {
	fsys fs.FS
	b    *budget
}

func (t folderTree) list(dir string, fn func(string, entryKind) error) error {
	f, err := t.fsys.Open(dir)
	if err != nil {
		return fmt.Errorf("dataset: image folder: %w", err)
	}
	defer f.Close()
	rd, ok := f.(fs.ReadDirFile)
	if !ok {
		ents, err := fs.ReadDir(t.fsys, dir)
		if err != nil {
			return fmt.Errorf("dataset: image folder: %w", err)
		}
		for _, e := range ents {
			if err := fn(e.Name(), kindOf(e.Type())); err != nil {
				return err
			}
		}
		return nil
	}
	// In batches, so that a directory of millions of entries is refused
	// at the limit rather than listed whole.
	for {
		ents, err := rd.ReadDir(1024)
		for _, e := range ents {
			if err := fn(e.Name(), kindOf(e.Type())); err != nil {
				return err
			}
		}
		if err == io.EOF || err == nil && len(ents) == 0 {
			return nil
		}
		if err != nil {
			return fmt.Errorf("dataset: image folder: read %q: %w", dir, err)
		}
	}
}

func (t folderTree) open(p string) (io.ReadCloser, error) {
	f, err := t.fsys.Open(p)
	if err != nil {
		return nil, fmt.Errorf("dataset: image folder: %w", err)
	}
	return readCloser{t.b.reader(f, fmt.Sprintf("image data through %q", p)), f}, nil
}

func (t folderTree) name(p string) string { return p }

func (t folderTree) fault(p string, err error) error {
	return fmt.Errorf("dataset: image folder: read %q: %w", p, err)
}

// archiveEntry is one checked entry of an archive; open is set for the
// regular .png files, the only ones ever read.
type archiveEntry struct {
	path string // cleaned, relative
	kind entryKind
	open func() (io.ReadCloser, error)
}

// memTree is an archive's tree in memory.
type memTree struct {
	dirs   map[string]map[string]entryKind // directory ("." for the root) → child → kind
	files  map[string]func() (io.ReadCloser, error)
	prefix string  // the top-level directory stripped from every path, or ""
	b      *budget // counts a zip's unpacked bytes; nil for tar, read whole
}

// newMemTree builds the tree, stripping a common top-level directory.
func newMemTree(entries []archiveEntry, b *budget) (*memTree, error) {
	t := &memTree{
		dirs:   map[string]map[string]entryKind{".": {}},
		files:  map[string]func() (io.ReadCloser, error){},
		prefix: commonDir(entries),
		b:      b,
	}
	for _, e := range entries {
		p := e.path
		if t.prefix != "" {
			if p == t.prefix {
				continue
			}
			p = p[len(t.prefix)+1:]
		}
		if err := t.add(p, e); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// commonDir returns the one top-level directory that every entry is under,
// if every file is at least two levels below it ("digits/0/a.png"); a file
// one level below it ("0/a.png") means the top level already holds the
// classes, and the result is "".
func commonDir(entries []archiveEntry) string {
	top := ""
	for i, e := range entries {
		first, rest, _ := strings.Cut(e.path, "/")
		if i == 0 {
			top = first
		}
		if first != top || e.kind != kindDir && !strings.Contains(rest, "/") {
			return ""
		}
	}
	return top
}

func (t *memTree) add(p string, e archiveEntry) error {
	dir, rest := ".", p
	for {
		name, tail, ok := strings.Cut(rest, "/")
		if !ok {
			break
		}
		child := name
		if dir != "." {
			child = dir + "/" + name
		}
		if k, seen := t.dirs[dir][name]; seen && k != kindDir {
			return fmt.Errorf("%w: %q is both a file and a directory", ErrFormat, t.name(child))
		}
		t.dirs[dir][name] = kindDir
		if t.dirs[child] == nil {
			t.dirs[child] = map[string]entryKind{}
		}
		dir, rest = child, tail
	}
	if k, seen := t.dirs[dir][rest]; seen {
		if k == kindDir && e.kind == kindDir {
			return nil
		}
		return fmt.Errorf("%w: %q appears twice in the archive", ErrFormat, t.name(p))
	}
	t.dirs[dir][rest] = e.kind
	switch e.kind {
	case kindDir:
		t.dirs[p] = map[string]entryKind{}
	case kindFile:
		t.files[p] = e.open
	}
	return nil
}

func (t *memTree) list(dir string, fn func(string, entryKind) error) error {
	for name, kind := range t.dirs[dir] {
		if err := fn(name, kind); err != nil {
			return err
		}
	}
	return nil
}

func (t *memTree) open(p string) (io.ReadCloser, error) {
	open := t.files[p]
	if open == nil { // a name that is not .png: never read
		return nil, fmt.Errorf("%w: %q is not a .png file", ErrFormat, t.name(p))
	}
	rc, err := open()
	if err != nil {
		return nil, t.fault(p, err)
	}
	if t.b == nil {
		return rc, nil
	}
	return readCloser{t.b.reader(rc, fmt.Sprintf("image archive unpacked through %q", t.name(p))), rc}, nil
}

func (t *memTree) name(p string) string {
	if t.prefix == "" {
		return p
	}
	return t.prefix + "/" + p
}

func (t *memTree) fault(p string, err error) error {
	return fmt.Errorf("%w: %q: %v", ErrFormat, t.name(p), err)
}

// entryPath checks an archive entry's name and cleans it ("./a//b/" is
// "a/b"). skip is set for the root itself and for hidden entries.
func entryPath(name string) (p string, skip bool, err error) {
	if strings.HasPrefix(name, "/") {
		return "", false, fmt.Errorf("%w: image archive: %q is an absolute path", ErrFormat, name)
	}
	for part := range strings.SplitSeq(name, "/") {
		if part == ".." {
			return "", false, fmt.Errorf("%w: image archive: %q leads out of the archive", ErrFormat, name)
		}
	}
	p = path.Clean(name)
	if p == "." {
		return "", true, nil
	}
	for part := range strings.SplitSeq(p, "/") {
		if hidden(part) {
			return p, true, nil
		}
	}
	return p, false, nil
}

// maxEntries bounds an archive's listing: every image and class directory,
// one top-level directory, and nothing else that is not hidden.
func maxEntries(o Options) int { return o.MaxRows + o.MaxClasses + 1 }

func archiveErr(err error) error {
	switch {
	case errors.Is(err, ErrTooLarge), errors.Is(err, ErrFormat):
		return err
	case err == io.EOF, err == io.ErrUnexpectedEOF:
		return fmt.Errorf("%w: image archive: truncated", ErrFormat)
	}
	return fmt.Errorf("%w: image archive: %v", ErrFormat, err)
}

// readTar reads every .png file of a tar into memory: its entries come in
// any order, and the classes are known only at the end.
func readTar(r io.Reader, o Options) (*memTree, error) {
	tail := &zeroTail{r: r}
	tr := tar.NewReader(tail)
	// Sparse files unpack to more bytes than the stream holds; the
	// unpacked bytes kept are bounded too.
	kept := &budget{left: o.MaxBytes, max: o.MaxBytes}
	var entries []archiveEntry
	last := "" // the entry read last, to place errors
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			// archive/tar also ends quietly where an upload was cut
			// between two entries; only the end marker, two zero blocks,
			// tells that the archive is whole.
			if tail.zeros < 2*512 {
				return nil, fmt.Errorf("%w: image archive: truncated tar (no end-of-archive marker)", ErrFormat)
			}
			break
		}
		if err != nil {
			if errors.Is(err, tar.ErrInsecurePath) && hdr != nil {
				return nil, fmt.Errorf("%w: image archive: %q is not a safe path", ErrFormat, hdr.Name)
			}
			if last != "" {
				return nil, fmt.Errorf("%w (after %q)", archiveErr(err), last)
			}
			return nil, archiveErr(err)
		}
		last = hdr.Name
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		p, skip, err := entryPath(hdr.Name)
		if err != nil {
			return nil, err
		}
		if skip {
			continue
		}
		e := archiveEntry{path: p, kind: kindOther}
		switch hdr.Typeflag {
		case tar.TypeReg:
			e.kind = kindFile
		case tar.TypeDir:
			e.kind = kindDir
		}
		if e.kind == kindFile && isPNGName(p) {
			b, err := io.ReadAll(kept.reader(tr, "image archive unpacked"))
			if err != nil {
				return nil, fmt.Errorf("%w (reading %q)", archiveErr(err), p)
			}
			e.open = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		}
		entries = append(entries, e)
		if len(entries) > maxEntries(o) {
			return nil, fmt.Errorf("%w: image archive: more than %d entries (at %q)", ErrTooLarge, maxEntries(o), p)
		}
	}
	return newMemTree(entries, nil)
}

// readZip reads a zip into memory, as its directory is at its end; its
// files are unpacked only as they are decoded.
func readZip(r io.Reader, o Options) (*memTree, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, archiveErr(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // our own checks below say which
		return nil, fmt.Errorf("%w: image archive: %v", ErrFormat, err)
	}
	var entries []archiveEntry
	for _, f := range zr.File {
		p, skip, err := entryPath(strings.ReplaceAll(f.Name, `\`, "/"))
		if err != nil {
			return nil, err
		}
		if skip {
			continue
		}
		e := archiveEntry{path: p, kind: kindOf(f.Mode())}
		if e.kind == kindFile && isPNGName(p) {
			e.open = f.Open
		}
		entries = append(entries, e)
		if len(entries) > maxEntries(o) {
			return nil, fmt.Errorf("%w: image archive: more than %d entries (at %q)", ErrTooLarge, maxEntries(o), p)
		}
	}
	return newMemTree(entries, &budget{left: o.MaxBytes, max: o.MaxBytes})
}

// zeroTail counts the zero bytes that end what has been read from r.
type zeroTail struct {
	r     io.Reader
	zeros int64
}

func (z *zeroTail) Read(p []byte) (int, error) {
	n, err := z.r.Read(p)
	i := n - 1
	for i >= 0 && p[i] == 0 {
		i--
	}
	if i < 0 {
		z.zeros += int64(n)
	} else {
		z.zeros = int64(n - 1 - i)
	}
	return n, err
}
