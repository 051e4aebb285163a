package modelstore

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"
)

func TestSealOpenSizes(t *testing.T) {
	dk := bytes.Repeat([]byte{3}, 32)
	for i, n := range []int{0, 1, 100, segSize - 1, segSize, segSize + 1, 2 * segSize, 3*segSize + 17} {
		plain := make([]byte, n)
		for j := range plain {
			plain[j] = byte(j * 7)
		}
		sealed, err := seal(dk, "k/x", plain)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if int64(len(sealed)) != sealedSize(int64(n)) {
			t.Errorf("case %d: sealed %d bytes, sealedSize says %d", i, len(sealed), sealedSize(int64(n)))
		}
		if got := openedSize(int64(len(sealed))); got != int64(n) {
			t.Errorf("case %d: openedSize = %d, want %d", i, got, n)
		}
		got, err := open(dk, "k/x", bytes.Clone(sealed))
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("case %d: round trip: %v", i, err)
		}
		// The in-memory pair and the streaming pair are one format.
		o, err := newOpener(dk, "k/x", bytes.NewReader(sealed))
		if err != nil {
			t.Fatalf("case %d: streaming opener: %v", i, err)
		}
		if got, err := io.ReadAll(o); err != nil || !bytes.Equal(got, plain) {
			t.Errorf("case %d: seal's output through the streaming opener: %v", i, err)
		}
		sl, err := newSealer(dk, "k/x", bytes.NewReader(plain), int64(n))
		if err != nil {
			t.Fatal(err)
		}
		streamed, err := io.ReadAll(sl)
		if err != nil {
			t.Fatalf("case %d: streaming sealer: %v", i, err)
		}
		if got, err := open(dk, "k/x", streamed); err != nil || !bytes.Equal(got, plain) {
			t.Errorf("case %d: the streaming sealer's output through open: %v", i, err)
		}
		if _, err := open(dk, "k/y", bytes.Clone(sealed)); !errors.Is(err, errAuth) {
			t.Errorf("case %d: opened under another key: %v", i, err)
		}
		if _, err := open(bytes.Repeat([]byte{4}, 32), "k/x", bytes.Clone(sealed)); !errors.Is(err, errAuth) {
			t.Errorf("case %d: opened with another data key: %v", i, err)
		}
		if n > segSize {
			// Dropping the last segment leaves a non-final one at the end.
			if _, err := open(dk, "k/x", bytes.Clone(sealed[:headerSize+segSize+tagSize])); !errors.Is(err, errAuth) {
				t.Errorf("case %d: truncated at a segment boundary: %v", i, err)
			}
		}
	}
}

// TestOpenSmallAllocations: opening a small object allocates the cipher
// only — not the streaming opener's 64 KiB buffers, nor a plaintext: it is
// opened in place.
func TestOpenSmallAllocations(t *testing.T) {
	dk := bytes.Repeat([]byte{3}, 32)
	sealed, err := seal(dk, "k/x", make([]byte, 1000))
	if err != nil {
		t.Fatal(err)
	}
	var ms1, ms2 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	const runs = 100
	buf := make([]byte, len(sealed))
	for range runs {
		copy(buf, sealed)
		got, err := open(dk, "k/x", buf)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1000 || &got[0] != &buf[0] {
			t.Fatal("not opened in place")
		}
	}
	runtime.ReadMemStats(&ms2)
	if per := (ms2.TotalAlloc - ms1.TotalAlloc) / runs; per > 8<<10 {
		t.Errorf("opening a 1000-byte object allocated %d bytes, want under 8 KiB", per)
	}
}

func TestSealerRejectsLongBody(t *testing.T) {
	s, err := newSealer(make([]byte, 32), "k", bytes.NewReader(make([]byte, 10)), 5)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(s); !errors.Is(err, ErrTooLarge) {
		t.Errorf("body longer than declared: %v, want ErrTooLarge", err)
	}
	s, _ = newSealer(make([]byte, 32), "k", bytes.NewReader(make([]byte, 3)), 5)
	if _, err := io.ReadAll(s); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("body shorter than declared: %v, want ErrUnexpectedEOF", err)
	}
}

func TestWrapUnwrap(t *testing.T) {
	m := bytes.Repeat([]byte{9}, 32)
	dk := bytes.Repeat([]byte{5}, 32)
	w, err := wrapKey(m, "tenants/a", dk)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := unwrapKey(m, "tenants/a", w); err != nil || !bytes.Equal(got, dk) {
		t.Errorf("unwrap: %v", err)
	}
	if _, err := unwrapKey(m, "tenants/b", w); err == nil {
		t.Error("a wrapped key moved to another tenant opened")
	}
}

// FuzzOpen: stored bytes are untrusted (anyone with bucket access can write
// them). Opening must never panic and must reject everything it did not
// seal.
func FuzzOpen(f *testing.F) {
	dk := bytes.Repeat([]byte{3}, 32)
	for _, n := range []int{0, 5, segSize + 3} {
		s, _ := seal(dk, "k", make([]byte, n))
		f.Add(s)
	}
	f.Add([]byte("AMS1"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := open(dk, "k", b)
		if err == nil {
			// Only genuine ciphertext opens; re-sealing must agree in size.
			if sealedSize(int64(len(got))) != int64(len(b)) {
				t.Fatalf("opened %d bytes from %d stored", len(got), len(b))
			}
		}
		_ = openedSize(int64(len(b)))
	})
}

func FuzzDecodeAlias(f *testing.F) {
	f.Add([]byte(`{"version":3}`))
	f.Add([]byte(`{"version":3,"canary_version":4,"canary_weight":10}`))
	f.Add([]byte(`{"version":-1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := decodeAlias(b)
		if err == nil && (a.Version < 1 || a.CanaryWeight < 0 || a.CanaryWeight > 100) {
			t.Fatalf("accepted %+v", a)
		}
	})
}

func FuzzValidName(f *testing.F) {
	for _, s := range []string{"mnist", "a.b-c_d", "..", "a/b", "", ".hidden", "x\x00y", "ü"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !ValidName(s) {
			return
		}
		if len(s) > MaxNameLen || s == "." || s == ".." || s[0] == '.' || s[0] == '-' {
			t.Fatalf("accepted %q", s)
		}
		for _, c := range []byte(s) {
			if c == '/' || c == '\\' || c < 0x20 || c >= 0x7f {
				t.Fatalf("accepted %q", s)
			}
		}
	})
}

func BenchmarkSeal(b *testing.B) {
	dk := make([]byte, 32)
	plain := make([]byte, 437<<10)
	b.SetBytes(int64(len(plain)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := seal(dk, "k", plain); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	dk := make([]byte, 32)
	sealed, _ := seal(dk, "k", make([]byte, 437<<10))
	b.SetBytes(int64(len(sealed)))
	b.ReportAllocs()
	buf := make([]byte, len(sealed))
	for b.Loop() {
		copy(buf, sealed)
		if _, err := open(dk, "k", buf); err != nil {
			b.Fatal(err)
		}
	}
}
