package safetensors

import (
	"fmt"
	"math"

	"github.com/aiaas/aiaas/internal/jsonscan"
)

// The header parser is a small hand-written JSON reader. encoding/json's
// Token API would do, but it allocates per token (80 allocations and ~5 µs
// for a one-tensor header, measured), and headers are parsed on every
// plugin call. Like the Token walk it replaced, it sees duplicate keys and
// matches field names exactly, which unmarshalling into a map or a struct
// would not.

// hscanner is the shared scanner (internal/jsonscan) with the header's
// error convention: every fault wraps ErrFormat and names where it is.
type hscanner struct{ jsonscan.Scanner }

func (s *hscanner) fail(what where, format string, args ...any) error {
	return fmt.Errorf("%w: %v: offset %d: %s", ErrFormat, what, s.Pos, fmt.Sprintf(format, args...))
}

// wrap adds ErrFormat and the place to a scanner error.
func wrap(what where, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %v: %w", ErrFormat, what, err)
}

func (s *hscanner) expect(c byte, what where) error { return wrap(what, s.Expect(c)) }

// next handles the separators of an array or object: it reports whether
// another item follows, consuming the ',' before every item but the first.
func (s *hscanner) next(closer byte, first bool, what where) (bool, error) {
	more, err := s.More(closer, first)
	return more, wrap(what, err)
}

func (s *hscanner) str(what where) (string, error) {
	v, err := s.Str()
	return v, wrap(what, err)
}

// object consumes the '{' that starts an object.
func (s *hscanner) object(what where) error {
	if s.Peek() != '{' {
		return wrap(what, s.Unexpected("an object"))
	}
	s.Pos++
	return nil
}

// uint reads a non-negative JSON integer. Fractions, exponents and signs
// are refused, as the reference parser refuses them for its usize fields.
func (s *hscanner) uint(what where, idx int) (uint64, error) {
	c := s.Peek()
	if c != '-' && (c < '0' || c > '9') {
		return 0, s.fail(what, "element %d is not a number", idx)
	}
	start := s.Pos
	end := start
	for end < len(s.B) {
		c := s.B[end]
		if !('0' <= c && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E') {
			break
		}
		end++
	}
	tok := s.B[start:end]
	s.Pos = end
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

// uints appends to out an array of at most limit non-negative integers.
func (s *hscanner) uints(out []uint64, what where, limit int) ([]uint64, error) {
	if err := s.expect('[', what); err != nil {
		return nil, err
	}
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
	s := &hscanner{jsonscan.Scanner{B: header}}
	hdr := where{plain: "header"}
	if err := s.expect('{', hdr); err != nil {
		return nil, nil, err
	}
	f := &File{}
	var offsets []span
	metaSeen := false
	for first := true; ; first = false {
		more, err := s.next('}', first, hdr)
		if err != nil {
			return nil, nil, err
		}
		if !more {
			break
		}
		name, err := s.str(hdr)
		if err != nil {
			return nil, nil, err
		}
		if err := s.expect(':', hdr); err != nil {
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
	if !s.AtEnd() {
		// Only spaces may pad the header; a NUL is data too.
		return nil, nil, s.fail(hdr, "data after the JSON object")
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
	if s.Peek() == 'n' && s.Lit("null") {
		// "__metadata__": null is what an absent Option serialises to.
		return nil, nil
	}
	meta := where{plain: metadataKey}
	if err := s.object(meta); err != nil {
		return nil, err
	}
	m := make(map[string]string)
	for first := true; ; first = false {
		more, err := s.next('}', first, meta)
		if err != nil {
			return nil, err
		}
		if !more {
			return m, nil
		}
		k, err := s.str(meta)
		if err != nil {
			return nil, err
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("%w: %v: duplicate key %q", ErrFormat, metadataKey, k)
		}
		if err := s.expect(':', meta); err != nil {
			return nil, err
		}
		if s.Peek() != '"' {
			return nil, fmt.Errorf("%w: %v: key %q: value is not a string", ErrFormat, metadataKey, k)
		}
		if m[k], err = s.str(meta); err != nil {
			return nil, err
		}
	}
}

func parseEntry(s *hscanner, name string, l *Limits) (Tensor, span, error) {
	t := Tensor{Name: name}
	var o span
	what := where{tensor: name}
	if err := s.object(what); err != nil {
		return t, o, err
	}
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
			if s.Peek() != '"' {
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
			var buf [8]uint64
			dims, err := s.uints(buf[:0], where{tensor: name, field: "shape"}, l.MaxRank)
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
			var buf [2]uint64
			offs, err := s.uints(buf[:0], where{tensor: name, field: "data_offsets"}, 2)
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

// where names the place at fault — the header, the metadata, or a tensor
// and its field. It is a value formatted only when an error is, so the
// happy path neither allocates nor formats it.
type where struct{ plain, tensor, field string }

func (w where) String() string {
	if w.plain != "" {
		return w.plain
	}
	if w.field == "" {
		return fmt.Sprintf("tensor %q", w.tensor)
	}
	return fmt.Sprintf("tensor %q: %s", w.tensor, w.field)
}
