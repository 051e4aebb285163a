package tokenizer

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// A small, bounded JSON reader. tokenizer.json is mostly one large object
// of token → id (30k–250k entries) and a list of merges; encoding/json
// would decode that into a map[string]any (an allocation per entry, a
// reflection walk, pointers for the garbage collector to scan forever
// after). Instead the vocabulary and merges are streamed straight into
// the tokenizer's pointer-free tables, and only the small configuration
// objects (normalizer, post_processor, …) become jvals.

const (
	maxDepth = 64      // nesting of arrays and objects
	maxNodes = 1 << 18 // generic values alive at once (the configuration)
)

type jkind uint8

const (
	jNull jkind = iota
	jBool
	jNum
	jStr
	jArr
	jObj
)

// jval is a generic JSON value: s holds a string's content, a number's
// literal or "true"/"false"; elems an array's elements or an object's
// values, keys an object's keys.
type jval struct {
	kind  jkind
	s     string
	elems []jval
	keys  []string
}

func (v *jval) get(key string) *jval {
	if v == nil || v.kind != jObj {
		return nil
	}
	for i := len(v.keys) - 1; i >= 0; i-- { // last duplicate wins
		if v.keys[i] == key {
			return &v.elems[i]
		}
	}
	return nil
}

func (v *jval) isNull() bool { return v == nil || v.kind == jNull }

func (v *jval) str() (string, bool) {
	if v == nil || v.kind != jStr {
		return "", false
	}
	return v.s, true
}

func (v *jval) boolean(def bool) bool {
	if v == nil || v.kind != jBool {
		return def
	}
	return v.s == "true"
}

// integer returns v as an int in [lo, hi].
func (v *jval) integer(lo, hi int) (int, bool) {
	if v == nil || v.kind != jNum {
		return 0, false
	}
	n, err := strconv.ParseInt(v.s, 10, 64)
	if err != nil || n < int64(lo) || n > int64(hi) {
		return 0, false
	}
	return int(n), true
}

type scanner struct {
	b     []byte
	i     int
	depth int
	nodes int
	tmp   []byte // scratch for keys
}

var errJSON = errors.New("tokenizer: invalid JSON")

func (s *scanner) fail(format string, args ...any) error {
	return fmt.Errorf("%w at byte %d: %s", errJSON, s.i, fmt.Sprintf(format, args...))
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		return s.fail("want %q", c)
	}
	s.i++
	return nil
}

// str appends the content of the JSON string at the cursor to dst.
// Invalid UTF-8 is kept as is; a lone surrogate escape becomes U+FFFD.
func (s *scanner) str(dst []byte) ([]byte, error) {
	if s.peek() != '"' {
		return dst, s.fail("want a string")
	}
	s.i++
	for {
		start := s.i
		for s.i < len(s.b) && s.b[s.i] != '"' && s.b[s.i] != '\\' && s.b[s.i] >= 0x20 {
			s.i++
		}
		dst = append(dst, s.b[start:s.i]...)
		if s.i >= len(s.b) {
			return dst, s.fail("unterminated string")
		}
		c := s.b[s.i]
		s.i++
		switch {
		case c == '"':
			return dst, nil
		case c < 0x20:
			s.i--
			return dst, s.fail("control character in string")
		}
		if s.i >= len(s.b) {
			return dst, s.fail("unterminated escape")
		}
		e := s.b[s.i]
		s.i++
		switch e {
		case '"', '\\', '/':
			dst = append(dst, e)
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				return dst, s.fail("bad \\u escape")
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
					save := s.i
					s.i += 2
					var ok2 bool
					if r2, ok2 = s.hex4(); !ok2 {
						return dst, s.fail("bad \\u escape")
					}
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r = d
					} else {
						s.i = save // not a pair: the second escape stands alone
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
		default:
			return dst, s.fail("bad escape \\%c", e)
		}
	}
}

func (s *scanner) hex4() (rune, bool) {
	if s.i+4 > len(s.b) {
		return 0, false
	}
	var r rune
	for _, c := range s.b[s.i : s.i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	s.i += 4
	return r, true
}

// number returns the literal of the JSON number at the cursor.
func (s *scanner) number() (string, error) {
	s.ws()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	digits := 0
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c >= '0' && c <= '9' {
			digits++
		} else if c != '.' && c != 'e' && c != 'E' && c != '+' && c != '-' {
			break
		}
		s.i++
	}
	if digits == 0 || s.i-start > 64 {
		return "", s.fail("bad number")
	}
	return string(s.b[start:s.i]), nil
}

// int reads an integer in [lo, hi] (a float with no fraction, such as
// 12.0, is accepted: some writers emit those).
func (s *scanner) int(lo, hi int64) (int64, error) {
	s.ws()
	// The common case, plain digits, without allocating.
	var n int64
	j := s.i
	for j < len(s.b) && s.b[j] >= '0' && s.b[j] <= '9' && j-s.i < 18 {
		n = n*10 + int64(s.b[j]-'0')
		j++
	}
	if j > s.i && (j == len(s.b) || !isNumByte(s.b[j])) {
		s.i = j
	} else {
		lit, err := s.number()
		if err != nil {
			return 0, err
		}
		if n, err = strconv.ParseInt(lit, 10, 64); err != nil {
			f, ferr := strconv.ParseFloat(lit, 64)
			if ferr != nil || f != float64(int64(f)) {
				return 0, s.fail("want an integer, got %s", lit)
			}
			n = int64(f)
		}
	}
	if n < lo || n > hi {
		return 0, s.fail("%d is outside [%d, %d]", n, lo, hi)
	}
	return n, nil
}

func isNumByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'
}

func (s *scanner) literal(word string) bool {
	if len(s.b)-s.i >= len(word) && string(s.b[s.i:s.i+len(word)]) == word {
		s.i += len(word)
		return true
	}
	return false
}

// value reads any JSON value into a jval, within the depth and node budgets.
func (s *scanner) value() (jval, error) {
	if s.nodes++; s.nodes > maxNodes {
		return jval{}, s.fail("more than %d values in the configuration", maxNodes)
	}
	switch c := s.peek(); {
	case c == '{':
		v := jval{kind: jObj}
		err := s.object(func(key []byte) error {
			k := string(key)
			e, err := s.value()
			if err != nil {
				return err
			}
			v.keys = append(v.keys, k)
			v.elems = append(v.elems, e)
			return nil
		})
		return v, err
	case c == '[':
		v := jval{kind: jArr}
		err := s.array(func() error {
			e, err := s.value()
			v.elems = append(v.elems, e)
			return err
		})
		return v, err
	case c == '"':
		b, err := s.str(nil)
		return jval{kind: jStr, s: string(b)}, err
	case c == 't' || c == 'f':
		if s.literal("true") {
			return jval{kind: jBool, s: "true"}, nil
		}
		if s.literal("false") {
			return jval{kind: jBool, s: "false"}, nil
		}
	case c == 'n':
		if s.literal("null") {
			return jval{kind: jNull}, nil
		}
	case c == '-' || c >= '0' && c <= '9':
		lit, err := s.number()
		return jval{kind: jNum, s: lit}, err
	}
	return jval{}, s.fail("want a value")
}

// object calls f for each member with the key and the cursor on the
// value, which f must consume. The key is valid only until f reads the
// value (a nested object reuses its buffer): copy it first.
func (s *scanner) object(f func(key []byte) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	if s.depth++; s.depth > maxDepth {
		return s.fail("nested deeper than %d", maxDepth)
	}
	defer func() { s.depth-- }()
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		key, err := s.str(s.tmp[:0])
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		s.tmp = key
		if err := f(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.fail("want ',' or '}'")
		}
	}
}

// array calls f with the cursor on each element, which f must consume.
func (s *scanner) array(f func() error) error {
	if err := s.expect('['); err != nil {
		return err
	}
	if s.depth++; s.depth > maxDepth {
		return s.fail("nested deeper than %d", maxDepth)
	}
	defer func() { s.depth-- }()
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for {
		if err := f(); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.fail("want ',' or ']'")
		}
	}
}

// end checks that only white space follows.
func (s *scanner) end() error {
	if s.peek() != 0 || s.i < len(s.b) {
		return s.fail("trailing data")
	}
	return nil
}
