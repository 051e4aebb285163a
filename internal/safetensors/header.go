package safetensors

import (
	"fmt"
	"math"
	"unicode/utf16"
	"unicode/utf8"
)

// The header parser is a small hand-written JSON reader. encoding/json's
// Token API would do, but it allocates per token (80 allocations and ~5 µs
// for a one-tensor header, measured), and headers are parsed on every
// plugin call. Like the Token walk it replaced, it sees duplicate keys and
// matches field names exactly, which unmarshalling into a map or a struct
// would not.

type hscanner struct {
	b   []byte
	pos int
}

func (s *hscanner) peek() byte {
	for s.pos < len(s.b) {
		switch c := s.b[s.pos]; c {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return c
		}
	}
	return 0
}

func (s *hscanner) fail(what any, format string, args ...any) error {
	return fmt.Errorf("%w: %v: offset %d: %s", ErrFormat, what, s.pos, fmt.Sprintf(format, args...))
}

func (s *hscanner) got() string {
	if s.pos >= len(s.b) {
		return "end of header"
	}
	return fmt.Sprintf("%q", s.b[s.pos])
}

func (s *hscanner) expect(c byte, what any) error {
	if s.peek() != c {
		return s.fail(what, "expected %q, got %s", c, s.got())
	}
	s.pos++
	return nil
}

// next handles the separators of an array or object: it reports whether
// another item follows, consuming the ',' before every item but the first.
func (s *hscanner) next(closer byte, first bool, what any) (bool, error) {
	c := s.peek()
	if c == closer {
		s.pos++
		return false, nil
	}
	if !first {
		if c != ',' {
			return false, s.fail(what, "expected ',' or %q, got %s", closer, s.got())
		}
		s.pos++
	}
	return true, nil
}

// str reads a JSON string. The header was checked to be valid UTF-8.
func (s *hscanner) str(what any) (string, error) {
	if s.peek() != '"' {
		return "", s.fail(what, "expected a string, got %s", s.got())
	}
	s.pos++
	start := s.pos
	esc := false
	for s.pos < len(s.b) {
		switch c := s.b[s.pos]; {
		case c == '"':
			raw := s.b[start:s.pos]
			s.pos++
			if !esc {
				return string(raw), nil
			}
			out, ok := unescape(raw)
			if !ok {
				return "", s.fail(what, "bad escape in string")
			}
			return out, nil
		case c == '\\':
			esc = true
			s.pos += 2
			continue
		case c < 0x20:
			return "", s.fail(what, "control character in string")
		}
		s.pos++
	}
	return "", s.fail(what, "unterminated string")
}

func unescape(raw []byte) (string, bool) {
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(raw) {
			return "", false
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
				return "", false
			}
			i += 4
			if utf16.IsSurrogate(r) {
				// A lone surrogate becomes U+FFFD, as in encoding/json.
				r2, ok := rune(0), false
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
			return "", false
		}
	}
	return string(out), true
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

// uint reads a non-negative JSON integer. Fractions, exponents and signs
// are refused, as the reference parser refuses them for its usize fields.
func (s *hscanner) uint(what any, idx int) (uint64, error) {
	c := s.peek()
	if c != '-' && (c < '0' || c > '9') {
		return 0, s.fail(what, "element %d is not a number", idx)
	}
	start := s.pos
	end := start
	for end < len(s.b) {
		c := s.b[end]
		if !('0' <= c && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E') {
			break
		}
		end++
	}
	tok := s.b[start:end]
	s.pos = end
	var v uint64
	ok := len(tok) > 0 && (tok[0] != '0' || len(tok) == 1)
	for _, c := range tok {
		if c < '0' || c > '9' || v > (math.MaxUint64-uint64(c-'0'))/10 {
			ok = false
			break
		}
		v = v*10 + uint64(c-'0')
	}
	if !ok {
		return 0, s.fail(what, "element %d: %s is not a non-negative integer", idx, tok)
	}
	return v, nil
}

// uints reads an array of at most limit non-negative integers.
func (s *hscanner) uints(what any, limit int) ([]uint64, error) {
	if err := s.expect('[', what); err != nil {
		return nil, err
	}
	out := make([]uint64, 0, 4)
	for first := true; ; first = false {
		more, err := s.next(']', first, what)
		if err != nil {
			return nil, err
		}
		if !more {
			return out, nil
		}
		if len(out) >= limit {
			return nil, s.fail(what, "more than %d values", limit)
		}
		v, err := s.uint(what, len(out))
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
}

// parseHeader reads the JSON header into tensors (without data) and their
// offsets.
func parseHeader(header []byte, l *Limits) (*File, []span, error) {
	s := &hscanner{b: header}
	if err := s.expect('{', "header"); err != nil {
		return nil, nil, err
	}
	f := &File{}
	var offsets []span
	metaSeen := false
	for first := true; ; first = false {
		more, err := s.next('}', first, "header")
		if err != nil {
			return nil, nil, err
		}
		if !more {
			break
		}
		name, err := s.str("header")
		if err != nil {
			return nil, nil, err
		}
		if err := s.expect(':', "header"); err != nil {
			return nil, nil, err
		}
		if name == metadataKey {
			if metaSeen {
				return nil, nil, fmt.Errorf("%w: duplicate %q", ErrFormat, metadataKey)
			}
			metaSeen = true
			if f.Metadata, err = parseMetadata(s); err != nil {
				return nil, nil, err
			}
			continue
		}
		// A linear scan for duplicates would be quadratic in MaxTensors;
		// the check runs after the loop, on the sorted offsets' names.
		if len(f.Tensors) >= l.MaxTensors {
			return nil, nil, fmt.Errorf("%w: more than %d tensors", ErrFormat, l.MaxTensors)
		}
		t, o, err := parseEntry(s, name, l)
		if err != nil {
			return nil, nil, err
		}
		f.Tensors = append(f.Tensors, t)
		offsets = append(offsets, o)
	}
	if s.peek() != 0 {
		return nil, nil, s.fail("header", "data after the JSON object")
	}
	if err := checkDuplicates(f.Tensors); err != nil {
		return nil, nil, err
	}
	return f, offsets, nil
}

// checkDuplicates reports a repeated tensor name. Headers hold few tensors,
// so small ones get a quadratic scan that allocates nothing.
func checkDuplicates(ts []Tensor) error {
	if len(ts) <= 16 {
		for i := range ts {
			for j := i + 1; j < len(ts); j++ {
				if ts[i].Name == ts[j].Name {
					return fmt.Errorf("%w: duplicate tensor %q", ErrFormat, ts[i].Name)
				}
			}
		}
		return nil
	}
	seen := make(map[string]struct{}, len(ts))
	for _, t := range ts {
		if _, dup := seen[t.Name]; dup {
			return fmt.Errorf("%w: duplicate tensor %q", ErrFormat, t.Name)
		}
		seen[t.Name] = struct{}{}
	}
	return nil
}

func parseMetadata(s *hscanner) (map[string]string, error) {
	if s.peek() == 'n' && len(s.b)-s.pos >= 4 && string(s.b[s.pos:s.pos+4]) == "null" {
		// "__metadata__": null is what an absent Option serialises to.
		s.pos += 4
		return nil, nil
	}
	if s.peek() != '{' {
		return nil, s.fail(metadataKey, "expected an object, got %s", s.got())
	}
	s.pos++
	m := make(map[string]string)
	for first := true; ; first = false {
		more, err := s.next('}', first, metadataKey)
		if err != nil {
			return nil, err
		}
		if !more {
			return m, nil
		}
		k, err := s.str(metadataKey)
		if err != nil {
			return nil, err
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("%w: %v: duplicate key %q", ErrFormat, metadataKey, k)
		}
		if err := s.expect(':', metadataKey); err != nil {
			return nil, err
		}
		if s.peek() != '"' {
			return nil, fmt.Errorf("%w: %v: key %q: value is not a string", ErrFormat, metadataKey, k)
		}
		if m[k], err = s.str(metadataKey); err != nil {
			return nil, err
		}
	}
}

func parseEntry(s *hscanner, name string, l *Limits) (Tensor, span, error) {
	t := Tensor{Name: name}
	var o span
	what := &where{tensor: name}
	if s.peek() != '{' {
		return t, o, s.fail(what, "expected an object, got %s", s.got())
	}
	s.pos++
	var haveDType, haveShape, haveOffsets bool
	for first := true; ; first = false {
		more, err := s.next('}', first, what)
		if err != nil {
			return t, o, err
		}
		if !more {
			break
		}
		key, err := s.str(what)
		if err != nil {
			return t, o, err
		}
		if err := s.expect(':', what); err != nil {
			return t, o, err
		}
		switch key {
		case "dtype":
			if haveDType {
				return t, o, fmt.Errorf("%w: %v: duplicate field dtype", ErrFormat, what)
			}
			haveDType = true
			if s.peek() != '"' {
				return t, o, fmt.Errorf("%w: %v: dtype is not a string", ErrFormat, what)
			}
			d, err := s.str(what)
			if err != nil {
				return t, o, err
			}
			t.DType = DType(d)
			if t.DType.Size() == 0 {
				return t, o, fmt.Errorf("%w: %v: unknown dtype %q", ErrFormat, what, d)
			}
		case "shape":
			if haveShape {
				return t, o, fmt.Errorf("%w: %v: duplicate field shape", ErrFormat, what)
			}
			haveShape = true
			dims, err := s.uints(&where{tensor: name, field: "shape"}, l.MaxRank)
			if err != nil {
				return t, o, err
			}
			t.Shape = make([]int, len(dims))
			for i, d := range dims {
				if d > math.MaxInt {
					return t, o, fmt.Errorf("%w: %v: shape dimension %d too large", ErrFormat, what, d)
				}
				t.Shape[i] = int(d)
			}
		case "data_offsets":
			if haveOffsets {
				return t, o, fmt.Errorf("%w: %v: duplicate field data_offsets", ErrFormat, what)
			}
			haveOffsets = true
			offs, err := s.uints(&where{tensor: name, field: "data_offsets"}, 2)
			if err != nil {
				return t, o, err
			}
			if len(offs) != 2 {
				return t, o, fmt.Errorf("%w: %v: data_offsets has %d values, want 2", ErrFormat, what, len(offs))
			}
			o = span{offs[0], offs[1]}
		default:
			return t, o, fmt.Errorf("%w: %v: unknown field %q", ErrFormat, what, key)
		}
	}
	switch {
	case !haveDType:
		return t, o, fmt.Errorf("%w: %v: missing dtype", ErrFormat, what)
	case !haveShape:
		return t, o, fmt.Errorf("%w: %v: missing shape", ErrFormat, what)
	case !haveOffsets:
		return t, o, fmt.Errorf("%w: %v: missing data_offsets", ErrFormat, what)
	}
	if _, err := t.byteSize(); err != nil {
		return t, o, err
	}
	return t, o, nil
}

// where names the tensor and field at fault; it is formatted only when an
// error is, so the happy path does not pay for the message.
type where struct{ tensor, field string }

func (w *where) String() string {
	if w.field == "" {
		return fmt.Sprintf("tensor %q", w.tensor)
	}
	return fmt.Sprintf("tensor %q: %s", w.tensor, w.field)
}
