package tensorops

import (
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
)

func TestU8ToF32(t *testing.T) {
	dst := make([]float32, 3)
	if !U8ToF32(dst, []byte{0, 51, 255}, -1.0/255, 1) || dst[0] != 1 || math.Abs(float64(dst[1]-0.8)) > 1e-6 || dst[2] != 0 {
		t.Fatalf("got %v", dst)
	}
	if U8ToF32(dst, []byte{1}, 1, 0) {
		t.Fatal("length mismatch accepted")
	}
}

func TestGrayFromRGBA(t *testing.T) {
	dst := make([]byte, 3)
	if !GrayFromRGBA(dst, []byte{255, 255, 255, 255, 0, 0, 0, 255, 255, 0, 0, 255}) {
		t.Fatal("refused")
	}
	if dst[0] != 255 || dst[1] != 0 || dst[2] != 76 {
		t.Fatalf("got %v", dst)
	}
	if GrayFromRGBA(dst, make([]byte, 11)) {
		t.Fatal("length mismatch accepted")
	}
}

func TestResize(t *testing.T) {
	cases := []struct {
		src            []float32
		sw, sh, dw, dh int
		want           []float32 // nil: must refuse
	}{
		{[]float32{1, 2, 3, 4}, 2, 2, 2, 2, []float32{1, 2, 3, 4}},
		{[]float32{1, 3, 5, 7}, 2, 2, 1, 1, []float32{4}},
		{[]float32{1, 1, 0, 0, 1, 1, 0, 0}, 4, 2, 2, 1, []float32{1, 0}},
		{[]float32{0, 3, 6}, 3, 1, 2, 1, []float32{1, 5}}, // 1.5-pixel windows
		{[]float32{2}, 1, 1, 2, 2, []float32{2, 2, 2, 2}},
		{[]float32{1, 2}, 2, 1, 0, 1, nil},
		{[]float32{1, 2}, 3, 1, 1, 1, nil},
		{make([]float32, 16384), 1, 16384, 16384, 1, nil}, // scratch would be 1 GiB
	}
	for i, c := range cases {
		var dst []float32
		if c.dw > 0 && c.dh > 0 {
			dst = make([]float32, c.dw*c.dh)
		}
		ok := Resize(dst, c.dw, c.dh, c.src, c.sw, c.sh)
		if ok != (c.want != nil) {
			t.Errorf("%d: ok = %v", i, ok)
			continue
		}
		for j := range c.want {
			if math.Abs(float64(dst[j]-c.want[j])) > 1e-5 {
				t.Errorf("%d: got %v want %v", i, dst, c.want)
				break
			}
		}
	}
}

// TestResizeSameSize holds Resize's copy at equal sizes to what the
// resampling passes give there, bit for bit.
func TestResizeSameSize(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, wh := range [][2]int{{1, 1}, {28, 28}, {5, 3}, {3, 7}} {
		w, h := wh[0], wh[1]
		src := make([]float32, w*h)
		for i := range src {
			src[i] = float32(rng.NormFloat64()) * 1e3
		}
		src[0] = float32(math.SmallestNonzeroFloat32)
		got, want := make([]float32, w*h), make([]float32, w*h)
		if !Resize(got, w, h, src, w, h) {
			t.Fatalf("%dx%d refused", w, h)
		}
		resizePasses(want, w, h, src, w, h)
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%dx%d element %d: copy %v, passes %v", w, h, i, got[i], want[i])
			}
		}
	}
}

func TestSoftmax(t *testing.T) {
	for i, x := range [][]float32{{1, 2, 3}, {1000, 1000, -1000}, {0}, {}} {
		Softmax(x)
		var sum float64
		for _, v := range x {
			if v < 0 || v > 1 || v != v {
				t.Fatalf("%d: %v", i, x)
			}
			sum += float64(v)
		}
		if len(x) > 0 && math.Abs(sum-1) > 1e-5 {
			t.Errorf("%d: sum %v", i, sum)
		}
	}
}

func TestTopK(t *testing.T) {
	nan := float32(math.NaN())
	cases := []struct {
		x    []float32
		k    int
		want []int32
	}{
		{[]float32{.1, .5, .2, .9}, 2, []int32{3, 1}},
		{[]float32{.1, .5, .2, .9}, 10, []int32{3, 1, 2, 0}},
		{[]float32{1, 1, 1}, 2, []int32{0, 1}},
		{[]float32{nan, 1, nan, 0}, 3, []int32{1, 3, 0}},
		{[]float32{1}, 0, []int32{}},
		{nil, 3, []int32{}},
	}
	for i, c := range cases {
		got := TopK(make([]int32, 8), c.x, c.k)
		if !slices.Equal(got, c.want) {
			t.Errorf("%d: got %v want %v", i, got, c.want)
		}
	}
}

func TestBBox(t *testing.T) {
	img := []float32{
		0, 0, 0, 0,
		0, .5, 0, 0,
		0, 0, .9, 0,
	}
	x0, y0, x1, y1, ok := BBox(img, 4, 3, .1)
	if !ok || x0 != 1 || y0 != 1 || x1 != 2 || y1 != 2 {
		t.Fatalf("got %d %d %d %d %v", x0, y0, x1, y1, ok)
	}
	if _, _, _, _, ok := BBox(img, 4, 3, .95); ok {
		t.Fatal("found ink above the threshold")
	}
	if _, _, _, _, ok := BBox(img, 5, 3, .1); ok {
		t.Fatal("size mismatch accepted")
	}
}

func TestDecodeGray(t *testing.T) {
	for i, name := range []string{"seven.png", "seven.jpg"} {
		b, err := os.ReadFile("../../../examples/plugins/testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		format, w, h, ok := ImageInfo(b)
		if !ok || format != i+1 {
			t.Fatalf("%s: info %d %d %d %v", name, format, w, h, ok)
		}
		dst := make([]byte, w*h)
		if !DecodeGray(dst, b, w, h) {
			t.Fatalf("%s: refused", name)
		}
		if dst[0] < 200 { // light background
			t.Errorf("%s: corner %d", name, dst[0])
		}
		if DecodeGray(make([]byte, w*h), b, w, h+1) || DecodeGray(dst, b[:len(b)/2], w, h) {
			t.Errorf("%s: bad size or truncated image accepted", name)
		}
	}
}

func FuzzDecodeGray(f *testing.F) {
	for _, name := range []string{"seven.png", "seven.jpg"} {
		b, err := os.ReadFile("../../../examples/plugins/testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("\x89PNG\r\n\x1a\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, w, h, ok := ImageInfo(b)
		if !ok || w*h > 1<<20 {
			return
		}
		DecodeGray(make([]byte, w*h), b, w, h)
	})
}

// The host passes guest-chosen sizes straight to these kernels.
func FuzzKernels(f *testing.F) {
	f.Add(uint16(2), uint16(2), uint16(1), uint16(1), 3, []byte{1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, sw, sh, dw, dh uint16, k int, data []byte) {
		src := make([]float32, len(data))
		for i, b := range data {
			src[i] = float32(b) - 100
		}
		dst := make([]float32, min(int(dw)*int(dh), 1<<16))
		Resize(dst, int(dw), int(dh), src, int(sw), int(sh))
		BBox(src, int(sw), int(sh), 0)
		idx := TopK(make([]int32, 8), src, k)
		for j := 1; j < len(idx); j++ {
			if src[idx[j]] > src[idx[j-1]] {
				t.Fatalf("top-k out of order: %v", idx)
			}
		}
		Softmax(src)
	})
}

// BenchmarkResize: a digit's ink box (90×70) to the 20-pixel box of
// png-to-tensor, the resize of every MNIST endpoint call.
func BenchmarkResize(b *testing.B) {
	src := make([]float32, 90*70)
	for i := range src {
		src[i] = float32(i%255) / 255
	}
	dst := make([]float32, 20*16)
	b.ReportAllocs()
	for b.Loop() {
		if !Resize(dst, 20, 16, src, 90, 70) {
			b.Fatal("refused")
		}
	}
}
