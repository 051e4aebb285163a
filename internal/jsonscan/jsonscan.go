// Package jsonscan is the small JSON tokenizer under the project's two
// hand-written decoders: the Open Inference Protocol request decoder
// (platform/oip) and the safetensors header parser (internal/safetensors).
// Both run on every request, where encoding/json's reflection or Token API
// costs tens of allocations; both need what unmarshalling into a struct or
// a map hides: duplicate keys, exact field names, the byte offset of a
// fault, and numbers left as text until their datatype is known.
//
// A [Scanner] walks a byte slice; it never allocates except for a string
// that holds escapes (and the Go string [Scanner.Str] returns). Errors are
// *[SyntaxError] values carrying the offset; callers wrap them with their
// own context. Nesting is bounded by [MaxDepth].
package jsonscan

import (
	"fmt"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/aiaas/aiaas/internal/yield"
)

// MaxDepth bounds the nesting of values [Scanner.Skip] walks, so a body of
// ten thousand '[' costs no stack.
const MaxDepth = 64

// SyntaxError is a fault in the JSON text at byte Offset.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("offset %d: %s", e.Offset, e.Msg) }

// Scanner reads JSON tokens from B starting at Pos. Callers may read and
// move Pos themselves (a decoder that parses a run of numbers in place
// does).
type Scanner struct {
	B   []byte
	Pos int

	skipped int         // values Skip went past, for its yields
	y       yield.Point // Skip's: a skipped array can be megabytes
}

// WS skips whitespace.
func (s *Scanner) WS() {
	for s.Pos < len(s.B) {
		switch s.B[s.Pos] {
		case ' ', '\t', '\n', '\r':
			s.Pos++
		default:
			return
		}
	}
}

// Peek skips whitespace and returns the next byte, or 0 at the end. A NUL
// byte in the text also reads as 0: use [Scanner.AtEnd] to tell them apart.
func (s *Scanner) Peek() byte {
	s.WS()
	if s.Pos < len(s.B) {
		return s.B[s.Pos]
	}
	return 0
}

// AtEnd skips whitespace and reports whether the text is exhausted.
func (s *Scanner) AtEnd() bool {
	s.WS()
	return s.Pos >= len(s.B)
}

// Errorf returns a *SyntaxError at the current offset.
func (s *Scanner) Errorf(format string, args ...any) error {
	return &SyntaxError{Offset: s.Pos, Msg: fmt.Sprintf(format, args...)}
}

// Unexpected reports the byte at the current offset (or the end of the
// text) where want was needed.
func (s *Scanner) Unexpected(want string) error {
	if s.Pos >= len(s.B) {
		return s.Errorf("unexpected end of JSON, want %s", want)
	}
	return s.Errorf("unexpected %q, want %s", s.B[s.Pos], want)
}

// Expect consumes c, after whitespace.
func (s *Scanner) Expect(c byte) error {
	if s.Peek() != c {
		return s.Unexpected(fmt.Sprintf("%q", c))
	}
	s.Pos++
	return nil
}

// More is for the loop over array elements or object members: it consumes
// a ',' between items and reports whether another item follows. first is
// true before the first item.
func (s *Scanner) More(closer byte, first bool) (bool, error) {
	c := s.Peek()
	if c == closer {
		s.Pos++
		return false, nil
	}
	if !first {
		if c != ',' {
			return false, s.Unexpected(fmt.Sprintf("',' or %q", closer))
		}
		s.Pos++
		s.WS()
	}
	return true, nil
}

// Str reads a JSON string. The common case, no escapes, costs one
// allocation for the Go string.
func (s *Scanner) Str() (string, error) {
	raw, esc, err := s.StrRaw()
	if err != nil {
		return "", err
	}
	if !esc {
		return string(raw), nil
	}
	return s.unescape(raw)
}

// Key reads an object key without allocating when it has no escapes.
func (s *Scanner) Key() ([]byte, error) {
	raw, esc, err := s.StrRaw()
	if err != nil || !esc {
		return raw, err
	}
	u, err := s.unescape(raw)
	return []byte(u), err
}

func (s *Scanner) unescape(raw []byte) (string, error) {
	u, err := Unescape(raw)
	if err != nil {
		return "", s.Errorf("%v", err)
	}
	return u, nil
}

// StrRaw returns the bytes between the quotes, still escaped, and whether
// they hold escapes. It checks that they are valid UTF-8 and that every
// escape is one JSON has.
func (s *Scanner) StrRaw() ([]byte, bool, error) {
	if s.Peek() != '"' {
		return nil, false, s.Unexpected("a string")
	}
	s.Pos++
	start := s.Pos
	esc := false
	ascii := true
	for s.Pos < len(s.B) {
		c := s.B[s.Pos]
		switch {
		case c == '"':
			raw := s.B[start:s.Pos]
			s.Pos++
			if !ascii && !utf8.Valid(raw) {
				return nil, false, s.Errorf("string is not valid UTF-8")
			}
			return raw, esc, nil
		case c == '\\':
			// The escape is checked here, so a string that is skipped,
			// never unescaped, is valid JSON too.
			esc = true
			n := 2
			if s.Pos+1 < len(s.B) {
				switch s.B[s.Pos+1] {
				case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				case 'u':
					if _, ok := hex4(s.B[s.Pos+2:]); !ok {
						return nil, false, s.Errorf("bad \\u escape")
					}
					n = 6
				default:
					return nil, false, s.Errorf("bad escape \\%c", s.B[s.Pos+1])
				}
			}
			s.Pos += n
			continue
		case c < 0x20:
			return nil, false, s.Errorf("control character in string")
		case c >= 0x80:
			ascii = false
		}
		s.Pos++
	}
	return nil, false, s.Errorf("unterminated string")
}

// Unescape decodes the escapes of a JSON string's raw bytes. A lone
// surrogate becomes U+FFFD, as in encoding/json.
func Unescape(raw []byte) (string, error) {
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(raw) {
			return "", fmt.Errorf("bad escape")
		}
		switch raw[i] {
		case '"', '\\', '/':
			out = append(out, raw[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(raw[i+1:])
			if !ok {
				return "", fmt.Errorf("bad \\u escape")
			}
			i += 4
			if utf16.IsSurrogate(r) {
				r2, ok := rune(-1), false
				if i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
					r2, ok = hex4(raw[i+3:])
				}
				if dec := utf16.DecodeRune(r, r2); ok && dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", fmt.Errorf("bad escape \\%c", raw[i])
		}
	}
	return string(out), nil
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// Num returns the bytes of a JSON number, checked against the grammar
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *Scanner) Num() ([]byte, error) {
	raw, _, _, err := s.NumValue()
	return raw, err
}

// NumValue reads a JSON number and, in the same pass, its value when
// Clinger's fast path gives it exactly (see [Number]); callers hand the
// rest to strconv.
func (s *Scanner) NumValue() (raw []byte, f float64, exact bool, err error) {
	s.WS()
	start := s.Pos
	end, f, exact, ok := Number(s.B, start)
	if !ok {
		if end == start {
			return nil, 0, false, s.Unexpected("a number")
		}
		s.Pos = end
		return nil, 0, false, s.Errorf("malformed number")
	}
	s.Pos = end
	return s.B[start:end], f, exact, nil
}

// Number reads the JSON number that starts at b[i] and returns where it
// ends and, when Clinger's fast path applies (exact is then true), its
// value as the correctly rounded float64: the significant digits form an
// integer m < 10^15 < 2^53 and the decimal exponent e has |e| <= 22, so m
// and 10^|e| are exact float64 values and one IEEE multiplication or
// division rounds correctly. That covers nearly every number a client
// writes for an image or a feature vector. ok is false when no
// well-formed number starts at b[i]: end is then i when no digit does,
// else where the number went wrong.
func Number(b []byte, i int) (end int, f float64, exact, ok bool) {
	start := i
	neg := false
	if i < len(b) && b[i] == '-' {
		neg = true
		i++
	}
	var m uint64
	digits, exp := 0, 0
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
			m = m*10 + uint64(b[i]-'0')
			digits++
		}
	default:
		return start, 0, false, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
			if m != 0 || b[i] != '0' {
				digits++
			}
			m = m*10 + uint64(b[i]-'0')
			exp--
		}
		if i == d {
			return i, 0, false, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		eneg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			eneg = b[i] == '-'
			i++
		}
		d := i
		e := 0
		for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
			if e < 100000 {
				e = e*10 + int(b[i]-'0')
			}
		}
		if i == d {
			return i, 0, false, false
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	if digits > 15 { // m may have wrapped; strconv decides
		return i, 0, false, true
	}
	f = float64(m)
	switch {
	case m == 0:
	case exp < 0 && exp >= -22:
		f /= pow10f64[-exp]
	case exp >= 0 && exp <= 22:
		f *= pow10f64[exp]
	default:
		return i, 0, false, true
	}
	if neg {
		f = -f
	}
	return i, f, true, true
}

var pow10f64 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// skipArray skips the elements of an array whose '[' was consumed. A
// number, the bulk of a tensor's data, is read in one call; anything else
// (and a malformed number, for its error) goes through Skip.
func (s *Scanner) skipArray(depth int) error {
	for first := true; ; first = false {
		ok, err := s.More(']', first)
		if err != nil || !ok {
			return err
		}
		if s.Pos < len(s.B) {
			if c := s.B[s.Pos]; c == '-' || ('0' <= c && c <= '9') {
				if end, _, _, ok := Number(s.B, s.Pos); ok {
					s.Pos = end
					s.countSkipped()
					continue
				}
			}
		}
		if err := s.Skip(depth + 1); err != nil {
			return err
		}
		s.countSkipped()
	}
}

// countSkipped counts a skipped value and yields every skipYieldEvery: a
// request's data member that comes before its datatype is skipped first
// and read after, megabytes of numbers in one loop, which must give the
// processor to other requests as the decoders' own loops do.
func (s *Scanner) countSkipped() {
	if s.skipped++; s.skipped%skipYieldEvery == 0 {
		maybeYield(&s.y)
	}
}

// skipYieldEvery is how many values Skip goes past between looks at the
// clock (a value is a few nanoseconds to skip; yield.Point.Maybe wants
// a microsecond or more between calls).
const skipYieldEvery = 4096

// maybeYield is yield.Point.Maybe; a test counts the calls.
var maybeYield = (*yield.Point).Maybe

// Lit consumes the literal word (true, false, null).
func (s *Scanner) Lit(word string) bool {
	if len(s.B)-s.Pos >= len(word) && string(s.B[s.Pos:s.Pos+len(word)]) == word {
		s.Pos += len(word)
		return true
	}
	return false
}

// Skip consumes and checks one value of any kind that sits depth levels
// deep (1 for a member of the outermost object), refusing values nested
// past MaxDepth.
func (s *Scanner) Skip(depth int) error {
	if depth > MaxDepth {
		return s.Errorf("nesting deeper than %d", MaxDepth)
	}
	switch c := s.Peek(); {
	case c == '"':
		_, _, err := s.StrRaw()
		return err
	case c == '[':
		s.Pos++
		return s.skipArray(depth)
	case c == '{':
		const closer = '}'
		s.Pos++
		for first := true; ; first = false {
			ok, err := s.More(closer, first)
			if err != nil || !ok {
				return err
			}
			if _, _, err := s.StrRaw(); err != nil {
				return err
			}
			if err := s.Expect(':'); err != nil {
				return err
			}
			if err := s.Skip(depth + 1); err != nil {
				return err
			}
			s.countSkipped()
		}
	case c == 't':
		if s.Lit("true") {
			return nil
		}
	case c == 'f':
		if s.Lit("false") {
			return nil
		}
	case c == 'n':
		if s.Lit("null") {
			return nil
		}
	default:
		_, err := s.Num()
		return err
	}
	return s.Unexpected("a value")
}
