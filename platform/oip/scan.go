package oip

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds the nesting of values the scanner skips or reads, so a
// body of ten thousand '[' costs no stack.
const maxDepth = 64

// scanner is a minimal JSON tokenizer over a byte slice. Its methods return
// errors without the ErrBadRequest wrap; the decoder adds it with context.
type scanner struct {
	b   []byte
	pos int
}

func (s *scanner) ws() {
	for s.pos < len(s.b) {
		switch s.b[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek skips whitespace and returns the next byte, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.pos < len(s.b) {
		return s.b[s.pos]
	}
	return 0
}

func (s *scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("offset %d: "+format, append([]any{s.pos}, args...)...)
}

func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		return s.unexpected(fmt.Sprintf("%q", c))
	}
	s.pos++
	return nil
}

func (s *scanner) unexpected(want string) error {
	if s.pos >= len(s.b) {
		return s.errorf("unexpected end of JSON, want %s", want)
	}
	return s.errorf("unexpected %q, want %s", s.b[s.pos], want)
}

// more is for the loop over array elements or object members: it consumes
// a ',' between items and reports whether another item follows. first is
// true before the first item.
func (s *scanner) more(closer byte, first bool) (bool, error) {
	c := s.peek()
	if c == closer {
		s.pos++
		return false, nil
	}
	if !first {
		if c != ',' {
			return false, s.unexpected(fmt.Sprintf("',' or %q", closer))
		}
		s.pos++
		s.ws()
	}
	return true, nil
}

// str reads a JSON string. The common case, no escapes, costs one
// allocation for the Go string.
func (s *scanner) str() (string, error) {
	raw, esc, err := s.strRaw()
	if err != nil {
		return "", err
	}
	if !esc {
		return string(raw), nil
	}
	return unescape(raw)
}

// key reads an object key without allocating when it has no escapes.
func (s *scanner) key() ([]byte, error) {
	raw, esc, err := s.strRaw()
	if err != nil || !esc {
		return raw, err
	}
	u, err := unescape(raw)
	return []byte(u), err
}

// strRaw returns the bytes between the quotes and whether they hold escapes.
func (s *scanner) strRaw() ([]byte, bool, error) {
	if s.peek() != '"' {
		return nil, false, s.unexpected("a string")
	}
	s.pos++
	start := s.pos
	esc := false
	ascii := true
	for s.pos < len(s.b) {
		c := s.b[s.pos]
		switch {
		case c == '"':
			raw := s.b[start:s.pos]
			s.pos++
			if !ascii && !utf8.Valid(raw) {
				return nil, false, s.errorf("string is not valid UTF-8")
			}
			return raw, esc, nil
		case c == '\\':
			esc = true
			s.pos += 2
			continue
		case c < 0x20:
			return nil, false, s.errorf("control character in string")
		case c >= 0x80:
			ascii = false
		}
		s.pos++
	}
	return nil, false, s.errorf("unterminated string")
}

func unescape(raw []byte) (string, error) {
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
				// A lone surrogate becomes U+FFFD, as in encoding/json.
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

// num returns the bytes of a JSON number, checked against the grammar
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) num() ([]byte, error) {
	raw, _, _, err := s.numValue()
	return raw, err
}

// numValue reads a JSON number and, in the same pass, its value as the
// correctly rounded float64 when Clinger's fast path applies (exact is then
// true): the significant digits form an integer m < 10^15 < 2^53 and the
// decimal exponent e has |e| <= 22, so m and 10^|e| are exact float64
// values and one IEEE multiplication or division rounds correctly. That
// covers nearly every number a client writes for an image or a feature
// vector; callers hand the rest to strconv.
func (s *scanner) numValue() (raw []byte, f float64, exact bool, err error) {
	s.ws()
	b, i := s.b, s.pos
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
		return nil, 0, false, s.unexpected("a number")
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
			s.pos = i
			return nil, 0, false, s.errorf("malformed number")
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
			s.pos = i
			return nil, 0, false, s.errorf("malformed number")
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	s.pos = i
	raw = b[start:i]
	if digits > 15 { // m may have wrapped; strconv decides
		return raw, 0, false, nil
	}
	f = float64(m)
	switch {
	case m == 0:
	case exp < 0 && exp >= -22:
		f /= pow10f64[-exp]
	case exp >= 0 && exp <= 22:
		f *= pow10f64[exp]
	default:
		return raw, 0, false, nil
	}
	if neg {
		f = -f
	}
	return raw, f, true, nil
}

var pow10f64 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// lit consumes the literal word (true, false, null).
func (s *scanner) lit(word string) bool {
	if len(s.b)-s.pos >= len(word) && string(s.b[s.pos:s.pos+len(word)]) == word {
		s.pos += len(word)
		return true
	}
	return false
}

// skip consumes one value of any kind.
func (s *scanner) skip(depth int) error {
	if depth > maxDepth {
		return s.errorf("nesting deeper than %d", maxDepth)
	}
	switch c := s.peek(); {
	case c == '"':
		_, _, err := s.strRaw()
		return err
	case c == '{' || c == '[':
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		s.pos++
		for first := true; ; first = false {
			ok, err := s.more(closer, first)
			if err != nil || !ok {
				return err
			}
			if c == '{' {
				if _, _, err := s.strRaw(); err != nil {
					return err
				}
				if err := s.expect(':'); err != nil {
					return err
				}
			}
			if err := s.skip(depth + 1); err != nil {
				return err
			}
		}
	case c == 't':
		if s.lit("true") {
			return nil
		}
	case c == 'f':
		if s.lit("false") {
			return nil
		}
	case c == 'n':
		if s.lit("null") {
			return nil
		}
	default:
		_, err := s.num()
		return err
	}
	return s.unexpected("a value")
}

// params reads a $parameters object: values must be strings, numbers or
// booleans. null stands for no parameters.
func (s *scanner) params() (map[string]any, error) {
	if s.peek() == 'n' && s.lit("null") {
		return nil, nil
	}
	if err := s.expect('{'); err != nil {
		return nil, err
	}
	m := map[string]any{}
	for first := true; ; first = false {
		ok, err := s.more('}', first)
		if err != nil {
			return nil, err
		}
		if !ok {
			return m, nil
		}
		k, err := s.str()
		if err != nil {
			return nil, err
		}
		if _, dup := m[k]; dup {
			return nil, s.errorf("duplicate parameter %q", k)
		}
		if err := s.expect(':'); err != nil {
			return nil, err
		}
		switch c := s.peek(); {
		case c == '"':
			v, err := s.str()
			if err != nil {
				return nil, err
			}
			m[k] = v
		case c == 't' && s.lit("true"):
			m[k] = true
		case c == 'f' && s.lit("false"):
			m[k] = false
		case c == '-' || ('0' <= c && c <= '9'):
			v, err := s.num()
			if err != nil {
				return nil, err
			}
			m[k] = json.Number(v)
		default:
			return nil, s.errorf("parameter %q: value must be a string, number or boolean", k)
		}
	}
}

// intParam reads an integer parameter value (json.Number) or reports false.
func intParam(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	return i, err == nil
}
