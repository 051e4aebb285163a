package jsonscan

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aiaas/aiaas/internal/yield"
)

func TestStr(t *testing.T) {
	for _, c := range []struct{ in, want, err string }{
		{`"plain"`, "plain", ""},
		{`  "a\"b\\c\/d\b\f\n\r\t"`, "a\"b\\c/d\b\f\n\r\t", ""},
		{`"\u00e9\u20AC"`, "é€", ""},
		{`"\ud83d\ude00"`, "😀", ""},
		{`"\ud83d"`, "\uFFFD", ""},        // lone surrogate, as encoding/json
		{`"\ud83dx"`, "\uFFFDx", ""},      // lone surrogate before text
		{`"\ude00\u0041"`, "\uFFFDA", ""}, // low surrogate first
		{`"\x"`, "", "bad escape \\x"},
		{`"\u12"`, "", "bad \\u escape"},
		{`"abc`, "", "unterminated string"},
		{"\"a\x01\"", "", "control character"},
		{"\"\xff\"", "", "not valid UTF-8"},
		{`x`, "", `unexpected 'x', want a string`},
		{``, "", "unexpected end of JSON, want a string"},
	} {
		s := &Scanner{B: []byte(c.in)}
		got, err := s.Str()
		if c.err != "" {
			var se *SyntaxError
			if err == nil || !strings.Contains(err.Error(), c.err) || !errors.As(err, &se) {
				t.Errorf("Str(%q) = %q, %v; want a *SyntaxError mentioning %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Str(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
		var ref string
		if json.Unmarshal([]byte(c.in), &ref) != nil || ref != got {
			t.Errorf("Str(%q) = %q, encoding/json says %q", c.in, got, ref)
		}
	}
}

func TestObjectWalk(t *testing.T) {
	s := &Scanner{B: []byte(` { "a" : [1, -2.5e3, true], "b":{"c":null} , "d":"x" } `)}
	if err := s.Expect('{'); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for first := true; ; first = false {
		more, err := s.More('}', first)
		if err != nil {
			t.Fatal(err)
		}
		if !more {
			break
		}
		k, err := s.Key()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, string(k))
		if err := s.Expect(':'); err != nil {
			t.Fatal(err)
		}
		if err := s.Skip(1); err != nil {
			t.Fatal(err)
		}
	}
	if !s.AtEnd() || strings.Join(keys, ",") != "a,b,d" {
		t.Fatalf("keys %v, at end %v (pos %d)", keys, s.AtEnd(), s.Pos)
	}
}

func TestAtEndSeesNUL(t *testing.T) {
	s := &Scanner{B: []byte("{} \x00")}
	if err := s.Skip(0); err != nil {
		t.Fatal(err)
	}
	if s.Peek() != 0 || s.AtEnd() {
		t.Fatalf("a NUL after the value: Peek %q, AtEnd %v; want 0 and false", s.Peek(), s.AtEnd())
	}
}

func TestSkipDepth(t *testing.T) {
	deep := strings.Repeat("[", MaxDepth+2) + strings.Repeat("]", MaxDepth+2)
	s := &Scanner{B: []byte(deep)}
	if err := s.Skip(0); err == nil || !strings.Contains(err.Error(), "nesting deeper") {
		t.Fatalf("Skip of %d nested arrays: %v", MaxDepth+2, err)
	}
	ok := strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth)
	s = &Scanner{B: []byte(ok)}
	if err := s.Skip(0); err != nil || !s.AtEnd() {
		t.Fatalf("Skip of %d nested arrays: %v", MaxDepth, err)
	}
}

// FuzzSkip: a value Skip accepts whole is valid JSON to encoding/json, and
// valid UTF-8 JSON too short to nest past MaxDepth is accepted.
func FuzzSkip(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":null}],"c":"\u00e9"}`, `-0.5e-3`, `"x\\"`, `[`, `{"a" 1}`, "\"\xff\"", `01`, `1.`, `tru`, `[1,-2,3e5,[0],"x"]`, `[01]`, `[1.]`, `[-]`, `[ 1 , 2 ]`, `[1,]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := &Scanner{B: b}
		ok := s.Skip(0) == nil && s.AtEnd()
		valid := json.Valid(b)
		if ok && !valid {
			t.Fatalf("Skip accepted %q, which encoding/json refuses", b)
		}
		if !ok && valid && utf8.Valid(b) && len(b) <= 2*MaxDepth {
			t.Fatalf("Skip refused %q, which encoding/json accepts", b)
		}
	})
}

// FuzzStr: Str agrees with encoding/json on every string both accept.
func FuzzStr(f *testing.F) {
	for _, s := range []string{`"a"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\u0000"`, `"\t"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := &Scanner{B: b}
		got, err := s.Str()
		if err != nil || !s.AtEnd() {
			return
		}
		var ref string
		if json.Unmarshal(b, &ref) != nil {
			t.Fatalf("Str accepted %q (%q), which encoding/json refuses", b, got)
		}
		if ref != got {
			t.Fatalf("Str(%q) = %q, encoding/json %q", b, got, ref)
		}
	})
}

// TestSkipYields: skipping a long array looks at the clock every
// skipYieldEvery values, nested arrays counted too (a request's data
// member may come first and be megabytes long).
func TestSkipYields(t *testing.T) {
	calls := 0
	defer func(f func(*yield.Point)) { maybeYield = f }(maybeYield)
	maybeYield = func(*yield.Point) { calls++ }
	const n = 10 * skipYieldEvery
	b := []byte(`{"data":[` + strings.Repeat("0.5,", n-1) + `1],"rows":[[1,2],[3,4]]}`)
	s := &Scanner{B: b}
	if err := s.Skip(0); err != nil {
		t.Fatal(err)
	}
	if s.Pos != len(b) {
		t.Fatalf("Skip stopped at %d of %d", s.Pos, len(b))
	}
	// n numbers, 2 inner arrays of 2 and the outer array of 2, and the
	// object's 2 members.
	if want := (n + 4 + 2 + 2) / skipYieldEvery; calls != want {
		t.Fatalf("%d yields over %d values, want %d", calls, n+8, want)
	}
}

// BenchmarkSkipArray: a 1 Mi-element data member, as a request whose
// data comes before its datatype has it skipped.
func BenchmarkSkipArray(b *testing.B) {
	in := []byte(`[` + strings.Repeat("0,", 1<<20-1) + `0]`)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		s := &Scanner{B: in}
		if err := s.Skip(1); err != nil {
			b.Fatal(err)
		}
	}
}
