package oip

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
)

var fastSeeds = []string{
	"0", "-0", "0.0", "1", "-1", "0.21568628", "0.003921569", "1e-7", "1E+2", "-2.5e-3",
	"1.0000001", "16777217", "16777216.5", "0.1", "0.30000001192092896", "3.4028235e38",
	"3.4028236e38", "1e39", "1e-38", "1e-45", "1.401298464324817e-45", "123456789012345",
	"1234567890123456", "0.000000000000000000000001", "1e22", "1e23", "9007199254740993",
	"0e999", "-", "01", "1.", ".5", "1e", "1e+", "1e1000", "2.", "0x1", "NaN", "1_0",
	// a float64 that lands exactly between two float32s only after its
	// own rounding: float32Safe sends it to strconv
	"1.00000005960464477539",
}

// FuzzFastFP32 holds fastFP32 to strconv.ParseFloat(s, 32): whatever it
// takes is a JSON number and the same float32, bit for bit.
func FuzzFastFP32(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, k, ok := fastFP32([]byte(s), 0)
		if !ok {
			return
		}
		num := s[:k]
		if !json.Valid([]byte(num)) {
			t.Fatalf("took %q of %q: not a JSON number", num, s)
		}
		want, err := strconv.ParseFloat(num, 32)
		if err != nil {
			t.Fatalf("took %q, which strconv refuses: %v", num, err)
		}
		if math.Float32bits(v) != math.Float32bits(float32(want)) {
			t.Fatalf("%q: %v (%#x), strconv says %v (%#x)", num, v, math.Float32bits(v), float32(want), math.Float32bits(float32(want)))
		}
	})
}

// FuzzFastRun holds a request's data read with the fast run to the same
// data read element by element: the same values bit for bit, or the same
// error.
func FuzzFastRun(f *testing.F) {
	f.Add(strings.Join(fastSeeds[:20], ","), 20, false)
	f.Add("0,0,0,0.5,0,1e-3", 6, false)
	f.Add("0,0,0,0.5,0,1e-3", 5, false)
	f.Add("0,0, 0,0.5,0,1e-3", 6, true)
	f.Add("0,0,0,0.5,0,1e-3,0", 6, true)
	f.Add("[0,0,0],[0.5,0,1e-3]", 6, true)
	f.Add("[0,0,0],[0.5,0,1e-3,2]", 6, true)
	f.Add("[0,0,0],[0.5,0]", 6, true)
	f.Add("0,0,00,1", 4, false)
	f.Add("0,1.5,\"x\",1", 4, false)
	f.Add("0,-,1", 3, false)
	f.Add("0,0]", 2, false)
	f.Add("", 0, false)
	f.Fuzz(func(t *testing.T, data string, n int, nested bool) {
		if n < 0 || n > 1<<12 {
			return
		}
		shape := "[" + strconv.Itoa(n) + "]"
		if nested && n%2 == 0 {
			shape = "[2," + strconv.Itoa(n/2) + "]"
		}
		body := []byte(`{"inputs":[{"name":"x","shape":` + shape + `,"datatype":"FP32","data":[` + data + `]}]}`)
		lim := &Limits{MaxElements: 1 << 12}
		fast, ferr := DecodeRequest(body, -1, lim)
		fastNumbers = false
		slow, serr := DecodeRequest(body, -1, lim)
		fastNumbers = true
		if (ferr == nil) != (serr == nil) || (ferr != nil && ferr.Error() != serr.Error()) {
			t.Fatalf("%s\nfast: %v\nslow: %v", body, ferr, serr)
		}
		if ferr != nil {
			return
		}
		a, b := fast.Inputs[0].F32, slow.Inputs[0].F32
		if len(a) != len(b) {
			t.Fatalf("%s: fast read %d values, slow %d", body, len(a), len(b))
		}
		for i := range a {
			if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
				t.Fatalf("%s: value %d: fast %v, slow %v", body, i, a[i], b[i])
			}
		}
	})
}

// TestFastRunTakes checks the fast run is taken for what encoders write
// (else the benchmark measures nothing new) and stops where it must.
func TestFastRunTakes(t *testing.T) {
	for _, c := range []struct {
		data string
		max  int
		took int
	}{
		{"0,0.21568628,1e-7,-3", 4, 4},
		{"0,0.21568628,1e-7,-3", 2, 2},
		{"0,0.5, 1", 3, 2},                 // whitespace: the general loop goes on
		{"1,1234567890123456,1", 3, 1},     // 16 digits: strconv decides
		{"0.1,1e39", 2, 1},                 // beyond float32: the general loop's error
		{"1.00000005960464477539,1", 2, 0}, // over 15 digits
		{" 0", 1, 0},
	} {
		b := []byte("[" + c.data + "]")
		in := &RequestInput{Name: "x", Datatype: FP32, F32: make([]float32, 0, 8)}
		d := &dataDecoder{s: *newScanner(b, 1), in: in, n: 8, kind: kindNumber}
		if got := d.fastRun(c.max); got != c.took || d.count != c.took || len(in.F32) != c.took {
			t.Errorf("%q max %d: took %d (count %d, %d values), want %d", c.data, c.max, got, d.count, len(in.F32), c.took)
		}
	}
}

// TestAllFinite holds allFinite to math.IsNaN/IsInf for every position of
// short slices, the unrolled body and the tail alike.
func TestAllFinite(t *testing.T) {
	vals := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)),
		math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32, float32(math.Copysign(0, -1)), 1}
	for n := 0; n <= 9; n++ {
		for pos := range n {
			for _, v := range vals {
				u := make([]uint32, n)
				for i := range u {
					u[i] = math.Float32bits(0.5)
				}
				u[pos] = math.Float32bits(v)
				want := !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0)
				if got := allFinite(u); got != want {
					t.Errorf("n %d, %v at %d: allFinite %v, want %v", n, v, pos, got, want)
				}
			}
		}
	}
	// Every NaN payload and both signs.
	for _, bits := range []uint32{0x7f800001, 0x7fc00000, 0xffffffff, 0xff800000, 0x7f7fffff} {
		want := bits&0x7f800000 != 0x7f800000
		if got := allFinite([]uint32{0, bits, 0, 0, 0}); got != want {
			t.Errorf("%#x: allFinite %v, want %v", bits, got, want)
		}
	}
}
