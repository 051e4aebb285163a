package main

import (
	"math"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/aiaas/aiaas/internal/safetensors"
	"github.com/aiaas/aiaas/sdk/plugin"
)

// Natively, the SDK's intrinsics are the same kernels the host runs, so
// these tests check the plugin logic and BenchmarkNative is the baseline
// for the sandboxed run (plugins.BenchmarkPNGTopK).

func TestPrepare(t *testing.T) {
	png, err := os.ReadFile("../testdata/seven.png")
	if err != nil {
		t.Fatal(err)
	}
	jpg, err := os.ReadFile("../testdata/seven.jpg")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		ct   string
		body []byte
		ok   bool
	}{
		{"image/png", png, true},
		{"image/jpeg", jpg, true},
		{"application/octet-stream", jpg, true},
		{"", png, true},
		{"image/png; charset=binary", png, true},
		{"image/gif", png, false},
		{"", []byte("GIF89a"), false},
		{"image/png", png[:50], false},
		{"image/png", nil, false},
	}
	for i, c := range cases {
		px, err := Prepare(c.ct, c.body)
		if (err == nil) != c.ok {
			t.Errorf("%d: err %v, want ok=%v", i, err, c.ok)
			continue
		}
		if !c.ok {
			continue
		}
		if len(px) != 784 {
			t.Fatalf("%d: %d pixels", i, len(px))
		}
		var mass, mx, my float64
		for j, v := range px {
			if v < 0 || v > 1 {
				t.Fatalf("%d: pixel %d = %v", i, j, v)
			}
			mass += float64(v)
			mx += float64(v) * (float64(j%28) + .5)
			my += float64(v) * (float64(j/28) + .5)
		}
		if mass < 10 || math.Abs(mx/mass-14) > 1.5 || math.Abs(my/mass-14) > 1.5 {
			t.Errorf("%d: mass %.1f centred at (%.1f, %.1f)", i, mass, mx/mass, my/mass)
		}
	}
}

func TestFrameEdges(t *testing.T) {
	// A single ink pixel is scaled up to the 20 px box and centred; a
	// blank image is an empty digit — also in the buffers the dot used
	// (an instance reuses them from call to call).
	var s scratch
	dot, err := s.place([]float32{0, 0, 0, 0, 1, 0, 0, 0, 0}, 3, 3)
	if err != nil {
		t.Fatal(err)
	}
	var mass float32
	for _, v := range dot {
		mass += v
	}
	if mass != 400 || dot[4*28+4] != 1 || dot[23*28+23] != 1 || dot[3*28+3] != 0 {
		t.Fatalf("dot: mass %v", mass)
	}
	blank, err := s.place(make([]float32, 9), 3, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range blank {
		if v != 0 {
			t.Fatal("blank image has ink")
		}
	}
}

// An instance prepares image after image in the same buffers: each answer
// must be what a fresh preparation gives.
func TestScratchReuse(t *testing.T) {
	var bodies [][]byte
	for _, name := range []string{"seven.png", "seven.jpg", "seven.png"} {
		b, err := os.ReadFile("../testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, b)
	}
	var s scratch
	for i, b := range bodies {
		want, err := Prepare("", b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.prepare("", b)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("image %d: the reused buffers give a different tensor", i)
		}
	}
}

func FuzzPrepare(f *testing.F) {
	png, _ := os.ReadFile("../testdata/seven.png")
	jpg, _ := os.ReadFile("../testdata/seven.jpg")
	f.Add("image/png", png)
	f.Add("image/jpeg", jpg)
	f.Add("", []byte("\x89PNG\r\n\x1a\n"))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		px, err := Prepare(ct, body)
		if err == nil && len(px) != 784 {
			t.Fatalf("%d pixels", len(px))
		}
	})
}

// BenchmarkNative is preprocess as the host would see it, natively:
// decode, prepare, encode the output tensor as safetensors.
func BenchmarkNative(b *testing.B) {
	png, err := os.ReadFile("../testdata/seven.png")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var d []time.Duration
	for b.Loop() {
		t0 := time.Now()
		ts, err := preprocess(plugin.Request{ContentType: "image/png", Body: png})
		if err != nil {
			b.Fatal(err)
		}
		out := safetensors.Encode(&safetensors.File{Tensors: ts})
		if _, err := safetensors.Decode(out, nil); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(t0))
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Nanoseconds()), "p50-ns")
}

// TestLayout checks the layout parameter: flat by default, NCHW on
// request, anything else refused.
func TestLayout(t *testing.T) {
	for ct, want := range map[string][]int{
		"image/png":                   {1, 784},
		"image/png; layout=flat":      {1, 784},
		"image/png; layout=nchw":      {1, 1, 28, 28},
		"image/jpeg; layout=\"nchw\"": {1, 1, 28, 28},
	} {
		got, err := layout(ct)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%q: %v %v, want %v", ct, got, err, want)
		}
	}
	if _, err := layout("image/png; layout=nhwc"); err == nil {
		t.Error("layout=nhwc accepted")
	}
}
