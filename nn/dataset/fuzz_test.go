package dataset

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

var fuzzOpts = &Options{MaxRows: 1 << 12, MaxFeatures: 1 << 10, MaxClasses: 64, MaxBytes: 1 << 20}

func FuzzReadIDX(f *testing.F) {
	f.Add(idx([]uint32{2, 1, 2}, []byte{1, 2, 3, 4}), idx([]uint32{2}, []byte{0, 1}))
	f.Add(gz(idx([]uint32{1, 2, 2}, []byte{0, 255, 7, 8})), idx([]uint32{1}, []byte{3}))
	f.Add(idx([]uint32{1 << 31, 28, 28}, nil), idx([]uint32{1 << 31}, nil))
	f.Add([]byte{0, 0, 8, 4, 0, 0, 0, 1}, []byte{0, 0, 8, 1})
	f.Fuzz(func(t *testing.T, img, lab []byte) {
		s, err := ReadIDX(bytes.NewReader(img), bytes.NewReader(lab), fuzzOpts)
		if err != nil {
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		checkSet(t, s)
		for _, v := range s.X {
			if !(v >= 0 && v <= 1) {
				t.Fatalf("pixel %v out of [0,1]", v)
			}
		}
	})
}

func FuzzReadCSV(f *testing.F) {
	f.Add([]byte("a,b,label\n1,2,0\n3,4,1\n"), false)
	f.Add([]byte("1.5,-2e3,1.0\r\n"), false)
	f.Add([]byte("x,y\n0.5,2.25\n"), true)
	f.Add([]byte("1,\"2\",3\n"), false)
	f.Add(gz([]byte("1,2,0\n")), false)
	f.Add([]byte("1,NaN,0\n1,2,0\n"), false)
	f.Fuzz(func(t *testing.T, b []byte, regression bool) {
		o := *fuzzOpts
		o.Regression = regression
		s, err := ReadCSV(bytes.NewReader(b), &o)
		if err != nil {
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		checkSet(t, s)
		if regression != (s.Targets != nil) {
			t.Fatalf("regression=%v but Targets=%v", regression, s.Targets)
		}
	})
}

// checkSet verifies the invariants every accepted Set must hold, whatever
// the input.
func checkSet(t *testing.T, s *Set) {
	t.Helper()
	if s.N <= 0 || s.N > fuzzOpts.MaxRows || s.Features <= 0 || s.Features > fuzzOpts.MaxFeatures || len(s.X) != s.N*s.Features {
		t.Fatalf("bad shape: N=%d F=%d len(X)=%d", s.N, s.Features, len(s.X))
	}
	for i, v := range s.X {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("X[%d] = %v", i, v)
		}
	}
	if s.Targets != nil {
		if len(s.Targets) != s.N || s.Y != nil || s.Classes != 0 {
			t.Fatalf("bad regression set")
		}
		return
	}
	if len(s.Y) != s.N || s.Classes <= 0 || s.Classes > fuzzOpts.MaxClasses {
		t.Fatalf("bad labels: len(Y)=%d Classes=%d", len(s.Y), s.Classes)
	}
	for _, y := range s.Y {
		if y < 0 || int(y) >= s.Classes {
			t.Fatalf("label %d outside [0,%d)", y, s.Classes)
		}
	}
}
