package oip

import (
	"encoding/json"
	"strconv"

	"github.com/aiaas/aiaas/internal/jsonscan"
)

// scanner is the shared JSON tokenizer plus the protocol's $parameters
// reader. Its errors (*jsonscan.SyntaxError) come without the
// ErrBadRequest wrap; the decoder adds it with context.
type scanner struct{ jsonscan.Scanner }

func newScanner(b []byte, pos int) *scanner { return &scanner{jsonscan.Scanner{B: b, Pos: pos}} }

// word reads a string like Str, but returns the protocol's own words —
// datatypes and the parameter names clients send on every request — as
// constants instead of allocating a copy of each.
func (s *scanner) word() (string, error) {
	raw, esc, err := s.StrRaw()
	if err != nil {
		return "", err
	}
	if !esc {
		if w, ok := protocolWords[string(raw)]; ok { // no allocation: a lookup by []byte
			return w, nil
		}
		return string(raw), nil
	}
	u, err := jsonscan.Unescape(raw)
	if err != nil {
		return "", s.Errorf("%v", err)
	}
	return u, nil
}

var protocolWords = func() map[string]string {
	m := map[string]string{}
	for _, w := range []string{BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64, BYTES,
		"binary_data_size", "binary_data", "binary_data_output", "classification", "content_type"} {
		m[w] = w
	}
	return m
}()

// params reads a $parameters object: values must be strings, numbers or
// booleans. null stands for no parameters.
func (s *scanner) params() (map[string]any, error) {
	if s.Peek() == 'n' && s.Lit("null") {
		return nil, nil
	}
	if err := s.Expect('{'); err != nil {
		return nil, err
	}
	m := map[string]any{}
	for first := true; ; first = false {
		ok, err := s.More('}', first)
		if err != nil {
			return nil, err
		}
		if !ok {
			return m, nil
		}
		k, err := s.word()
		if err != nil {
			return nil, err
		}
		if _, dup := m[k]; dup {
			return nil, s.Errorf("duplicate parameter %q", k)
		}
		if err := s.Expect(':'); err != nil {
			return nil, err
		}
		switch c := s.Peek(); {
		case c == '"':
			v, err := s.Str()
			if err != nil {
				return nil, err
			}
			m[k] = v
		case c == 't' && s.Lit("true"):
			m[k] = true
		case c == 'f' && s.Lit("false"):
			m[k] = false
		case c == '-' || ('0' <= c && c <= '9'):
			v, err := s.Num()
			if err != nil {
				return nil, err
			}
			m[k] = json.Number(v)
		default:
			return nil, s.Errorf("parameter %q: value must be a string, number or boolean", k)
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
