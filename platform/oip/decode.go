package oip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unsafe"

	"github.com/aiaas/aiaas/internal/jsonscan"
	"github.com/aiaas/aiaas/internal/yield"
)

// Limits bound what DecodeRequest accepts. Zero fields mean the defaults.
type Limits struct {
	MaxElements  int   // elements per input; default 1<<24
	MaxInputs    int   // inputs and requested outputs, each; default 64
	MaxBodyBytes int64 // whole body, JSON and binary; default 64 MiB
	MaxRank      int   // dimensions per shape; default 8
}

const (
	defaultMaxElements  = 1 << 24
	defaultMaxInputs    = 64
	defaultMaxBodyBytes = 64 << 20
	defaultMaxRank      = 8
	maxNameBytes        = 256
)

func (l *Limits) withDefaults() Limits {
	var o Limits
	if l != nil {
		o = *l
	}
	if o.MaxElements <= 0 {
		o.MaxElements = defaultMaxElements
	}
	if o.MaxInputs <= 0 {
		o.MaxInputs = defaultMaxInputs
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = defaultMaxBodyBytes
	}
	if o.MaxRank <= 0 {
		o.MaxRank = defaultMaxRank
	}
	return o
}

func badf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadRequest}, args...)...)
}

func tooLargef(format string, args ...any) error {
	return fmt.Errorf("%w: %w: "+format, append([]any{ErrBadRequest, ErrTooLarge}, args...)...)
}

// pendingInput is an input whose data is decoded once its whole JSON
// object, shape and datatype included, has been read.
type pendingInput struct {
	dataAt     int   // offset of the "data" array in the JSON, -1 if absent
	parsed     bool  // data already converted during the first pass
	binarySize int64 // binary_data_size, -1 if absent
}

// DecodeRequest decodes an inference request body. headerLen is the value
// of the Inference-Header-Content-Length header, or -1 when the header is
// absent: then the whole body is JSON; otherwise the first headerLen bytes
// are JSON and the rest is the binary data of the inputs that carry a
// binary_data_size parameter, concatenated in the order of the inputs. lim
// may be nil for the defaults.
//
// Every error wraps ErrBadRequest. The returned request does not alias body
// except for binary BYTES elements. Safe for concurrent use.
func DecodeRequest(body []byte, headerLen int, lim *Limits) (*InferenceRequest, error) {
	l := lim.withDefaults()
	if int64(len(body)) > l.MaxBodyBytes {
		return nil, tooLargef("body of %d bytes exceeds the limit of %d", len(body), l.MaxBodyBytes)
	}
	jsonPart, bin := body, []byte(nil)
	if headerLen >= 0 {
		if headerLen > len(body) {
			return nil, badf("Inference-Header-Content-Length is %d but the body has only %d bytes", headerLen, len(body))
		}
		jsonPart, bin = body[:headerLen], body[headerLen:]
	} else if headerLen != -1 {
		return nil, badf("negative Inference-Header-Content-Length %d", headerLen)
	}
	req, err := decodeParts(jsonPart, bin, headerLen, &l)
	if err != nil && headerLen >= 0 {
		// A wrong header length shows up as whatever the cut JSON or the
		// shifted binary data break first ("needs 784 elements"); name
		// the real fault instead.
		if herr := headerLenErr(body, headerLen); herr != nil {
			return nil, herr
		}
	}
	return req, err
}

// headerLenErr reports whether headerLen disagrees with where the JSON
// object at the start of body ends: it cuts the object short, or leaves
// more than whitespace after it. nil when they agree or the JSON is broken
// anyway (the decoder's own error says more then).
func headerLenErr(body []byte, headerLen int) error {
	s := newScanner(body, 0)
	if s.Peek() != '{' || s.Skip(1) != nil {
		return nil
	}
	end := s.Pos
	switch {
	case end > headerLen:
		return badf("the JSON header is cut at byte %d: Inference-Header-Content-Length is %d but the JSON header ends at byte %d", headerLen, headerLen, end)
	case end < headerLen:
		rest := newScanner(body[:headerLen], end)
		if rest.WS(); rest.Pos < headerLen {
			return badf("Inference-Header-Content-Length is %d but the JSON header ends at byte %d", headerLen, end)
		}
	}
	return nil
}

// decodeParts decodes the JSON header and binds the binary data.
func decodeParts(jsonPart, bin []byte, headerLen int, l *Limits) (*InferenceRequest, error) {
	req, pend, err := decodeJSON(jsonPart, l)
	if err != nil {
		return nil, err
	}
	// Bind binary data in input order; the sizes must tile the remainder.
	off := int64(0)
	for i := range req.Inputs {
		in := &req.Inputs[i]
		p := pend[i]
		if p.binarySize < 0 {
			if !p.parsed {
				if _, err := decodeJSONData(in, jsonPart, p.dataAt, l); err != nil {
					return nil, err
				}
			}
			continue
		}
		if headerLen < 0 {
			return nil, badf("input %q: binary_data_size without an Inference-Header-Content-Length header", in.Name)
		}
		if p.binarySize > int64(len(bin))-off {
			return nil, badf("input %q: binary_data_size %d exceeds the %d binary bytes left", in.Name, p.binarySize, int64(len(bin))-off)
		}
		if err := decodeBinaryData(in, bin[off:off+p.binarySize], l); err != nil {
			return nil, err
		}
		off += p.binarySize
	}
	if off != int64(len(bin)) {
		return nil, badf("%d binary bytes after the JSON header are not claimed by any input's binary_data_size", int64(len(bin))-off)
	}
	return req, nil
}

func decodeJSON(b []byte, l *Limits) (*InferenceRequest, []pendingInput, error) {
	s := newScanner(b, 0)
	req := &InferenceRequest{}
	var pend []pendingInput
	if s.Peek() != '{' {
		return nil, nil, badf("request: %v", s.Unexpected("a JSON object"))
	}
	s.Pos++
	var seenID, seenParams, seenInputs, seenOutputs bool
	for first := true; ; first = false {
		ok, err := s.More('}', first)
		if err != nil {
			return nil, nil, badf("request: %v", err)
		}
		if !ok {
			break
		}
		key, err := s.Key()
		if err != nil {
			return nil, nil, badf("request: %v", err)
		}
		if err := s.Expect(':'); err != nil {
			return nil, nil, badf("request: %v", err)
		}
		switch string(key) {
		case "id":
			if err := once(&seenID, nil, "id"); err != nil {
				return nil, nil, err
			}
			if req.ID, err = s.Str(); err != nil {
				return nil, nil, badf("request: id: %v", err)
			}
		case "parameters":
			if err := once(&seenParams, nil, "parameters"); err != nil {
				return nil, nil, err
			}
			if req.Parameters, err = s.params(); err != nil {
				return nil, nil, badf("request: parameters: %v", err)
			}
		case "inputs":
			if err := once(&seenInputs, nil, "inputs"); err != nil {
				return nil, nil, err
			}
			if req.Inputs, pend, err = decodeInputs(s, l); err != nil {
				return nil, nil, err
			}
		case "outputs":
			if err := once(&seenOutputs, nil, "outputs"); err != nil {
				return nil, nil, err
			}
			if req.Outputs, err = decodeOutputs(s, l); err != nil {
				return nil, nil, err
			}
		default:
			// Unknown members are skipped, so newer clients keep working.
			if err := s.Skip(1); err != nil {
				return nil, nil, badf("request: %q: %v", string(key), err)
			}
		}
	}
	// peek's 0 means the end, but a NUL byte reads as 0 too: look at the
	// position, so binary data after the object cannot pass for the end.
	if s.WS(); s.Pos < len(s.B) {
		return nil, nil, badf("request: %v", s.Errorf("data after the JSON object"))
	}
	if !seenInputs {
		return nil, nil, badf("request: missing \"inputs\"")
	}
	if len(req.Inputs) == 0 {
		return nil, nil, badf("request: \"inputs\" is empty")
	}
	if v, ok := req.Parameters["binary_data_output"]; ok {
		b, isBool := v.(bool)
		if !isBool {
			return nil, nil, badf("request: parameter binary_data_output must be a boolean")
		}
		req.BinaryOutput = b
	}
	for i := range req.Outputs {
		o := &req.Outputs[i]
		o.Binary = req.BinaryOutput
		if v, ok := o.Parameters["binary_data"]; ok {
			b, isBool := v.(bool)
			if !isBool {
				return nil, nil, badf("output %q: parameter binary_data must be a boolean", o.Name)
			}
			o.Binary = b
		}
	}
	return req, pend, nil
}

func once(seen *bool, where *loc, key string) error {
	if *seen {
		if where == nil {
			return badf("duplicate %q", key)
		}
		return badf("%s: duplicate %q", where.String(), key)
	}
	*seen = true
	return nil
}

func checkName(what, name string) error {
	switch {
	case name == "":
		return badf("%s: empty name", what)
	case len(name) > maxNameBytes:
		return badf("%s: name longer than %d bytes", what, maxNameBytes)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return badf("%s %q: control character in name", what, name)
		}
	}
	return nil
}

func decodeInputs(s *scanner, l *Limits) ([]RequestInput, []pendingInput, error) {
	if err := s.Expect('['); err != nil {
		return nil, nil, badf("inputs: %v", err)
	}
	var ins []RequestInput
	var pend []pendingInput
	for first := true; ; first = false {
		ok, err := s.More(']', first)
		if err != nil {
			return nil, nil, badf("inputs: %v", err)
		}
		if !ok {
			return ins, pend, nil
		}
		if len(ins) >= l.MaxInputs {
			return nil, nil, tooLargef("more than %d inputs", l.MaxInputs)
		}
		ins = append(ins, RequestInput{})
		in := &ins[len(ins)-1]
		p, err := decodeInput(s, in, len(ins)-1, l)
		if err != nil {
			return nil, nil, err
		}
		// A linear scan: inputs are few (MaxInputs) and a map costs more.
		for j := range ins[:len(ins)-1] {
			if ins[j].Name == in.Name {
				return nil, nil, badf("duplicate input %q", in.Name)
			}
		}
		pend = append(pend, p)
	}
}

// decodeInput decodes one input into in, the slot it takes in the
// request's inputs (a local would move to the heap: decodeJSONData keeps
// its address).
func decodeInput(s *scanner, in *RequestInput, idx int, l *Limits) (pendingInput, error) {
	p := pendingInput{binarySize: -1, dataAt: -1}
	what := loc{kind: "inputs", idx: idx}
	if err := s.Expect('{'); err != nil {
		return p, badf("%s: %v", what, err)
	}
	var seenName, seenShape, seenType, seenParams, seenData bool
	for first := true; ; first = false {
		ok, err := s.More('}', first)
		if err != nil {
			return p, badf("%s: %v", what, err)
		}
		if !ok {
			break
		}
		key, err := s.Key()
		if err == nil {
			err = s.Expect(':')
		}
		if err != nil {
			return p, badf("%s: %v", what, err)
		}
		switch string(key) {
		case "name":
			err = once(&seenName, &what, "name")
			if err == nil {
				in.Name, err = s.Str()
			}
		case "shape":
			err = once(&seenShape, &what, "shape")
			if err == nil {
				in.Shape, err = decodeShape(s, l)
			}
		case "datatype":
			err = once(&seenType, &what, "datatype")
			if err == nil {
				in.Datatype, err = s.word()
			}
		case "parameters":
			err = once(&seenParams, &what, "parameters")
			if err == nil {
				in.Parameters, err = s.params()
			}
		case "data":
			err = once(&seenData, &what, "data")
			if err != nil {
				break
			}
			if s.Peek() != '[' {
				err = s.Unexpected("an array")
				break
			}
			if _, known := ElementSize(in.Datatype); known && seenShape && seenType && seenName {
				// The usual member order: convert in this one pass.
				var end int
				if end, err = decodeJSONData(in, s.B, s.Pos, l); err == nil {
					s.Pos = end
					p.parsed = true
				}
				break
			}
			p.dataAt = s.Pos
			err = s.Skip(1)
		default:
			err = s.Skip(1)
		}
		if err != nil {
			if isBad(err) {
				return p, err
			}
			return p, badf("%s: %s: %v", what, string(key), err)
		}
	}
	if seenName {
		what.name = in.Name
	}
	switch {
	case !seenName:
		return p, badf("%s: missing \"name\"", what)
	case !seenShape:
		return p, badf("%s: missing \"shape\"", what)
	case !seenType:
		return p, badf("%s: missing \"datatype\"", what)
	}
	if err := checkName("input", in.Name); err != nil {
		return p, err
	}
	if _, ok := ElementSize(in.Datatype); !ok {
		return p, badf("%s: unknown datatype %q", what, in.Datatype)
	}
	if v, ok := in.Parameters["binary_data_size"]; ok {
		n, isInt := intParam(v)
		if !isInt || n < 0 {
			return p, badf("%s: binary_data_size must be a non-negative integer", what)
		}
		if seenData {
			return p, badf("%s: both \"data\" and binary_data_size", what)
		}
		in.F32, in.I64, in.Bytes = nil, nil, nil
		p.binarySize = n
	} else if !seenData {
		return p, badf("%s: missing \"data\"", what)
	}
	return p, nil
}

func isBad(err error) bool { return errors.Is(err, ErrBadRequest) }

func decodeShape(s *scanner, l *Limits) ([]int64, error) {
	if err := s.Expect('['); err != nil {
		return nil, err
	}
	shape := make([]int64, 0, 4)
	for first := true; ; first = false {
		ok, err := s.More(']', first)
		if err != nil {
			return nil, err
		}
		if !ok {
			return shape, nil
		}
		if len(shape) >= l.MaxRank {
			return nil, tooLargef("shape has more than %d dimensions", l.MaxRank)
		}
		n, err := s.Num()
		if err != nil {
			return nil, err
		}
		d, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("dimension %s is not a non-negative integer", n)
		}
		shape = append(shape, d)
	}
}

func decodeOutputs(s *scanner, l *Limits) ([]RequestOutput, error) {
	if err := s.Expect('['); err != nil {
		return nil, badf("outputs: %v", err)
	}
	var outs []RequestOutput
	for first := true; ; first = false {
		ok, err := s.More(']', first)
		if err != nil {
			return nil, badf("outputs: %v", err)
		}
		if !ok {
			return outs, nil
		}
		if len(outs) >= l.MaxInputs {
			return nil, tooLargef("more than %d requested outputs", l.MaxInputs)
		}
		what := loc{kind: "outputs", idx: len(outs)}
		if err := s.Expect('{'); err != nil {
			return nil, badf("%s: %v", what, err)
		}
		var o RequestOutput
		var seenName, seenParams bool
		for f := true; ; f = false {
			ok, err := s.More('}', f)
			if err != nil {
				return nil, badf("%s: %v", what, err)
			}
			if !ok {
				break
			}
			key, err := s.Key()
			if err == nil {
				err = s.Expect(':')
			}
			if err == nil {
				switch string(key) {
				case "name":
					if err = once(&seenName, &what, "name"); err == nil {
						o.Name, err = s.Str()
					}
				case "parameters":
					if err = once(&seenParams, &what, "parameters"); err == nil {
						o.Parameters, err = s.params()
					}
				default:
					err = s.Skip(1)
				}
			}
			if err != nil {
				if isBad(err) {
					return nil, err
				}
				return nil, badf("%s: %v", what, err)
			}
		}
		if !seenName {
			return nil, badf("%s: missing \"name\"", what)
		}
		if err := checkName("output", o.Name); err != nil {
			return nil, err
		}
		for j := range outs {
			if outs[j].Name == o.Name {
				return nil, badf("duplicate output %q", o.Name)
			}
		}
		outs = append(outs, o)
	}
}

// numElements is the product of the shape, checked against the limit.
func numElements(in *RequestInput, l *Limits) (int, error) {
	n := int64(1)
	for _, d := range in.Shape {
		if d != 0 && n > int64(l.MaxElements)/d {
			return 0, tooLargef("input %q: shape %v has more than %d elements", in.Name, in.Shape, l.MaxElements)
		}
		n *= d
	}
	if n > int64(l.MaxElements) {
		return 0, tooLargef("input %q: shape %v has more than %d elements", in.Name, in.Shape, l.MaxElements)
	}
	return int(n), nil
}

// decodeJSONData converts the "data" array at b[at:], flat or nested, and
// returns the offset just after it.
func decodeJSONData(in *RequestInput, b []byte, at int, l *Limits) (int, error) {
	n, err := numElements(in, l)
	if err != nil {
		return 0, err
	}
	// Every element takes at least two bytes ("0,"), so a shape asking
	// for more than the data could hold is refused before allocating.
	if n > (len(b)-at+1)/2 {
		return 0, badf("input %q: shape %v needs %d elements, the data holds fewer", in.Name, in.Shape, n)
	}
	d := &dataDecoder{s: *newScanner(b, at), in: in, n: n, kind: kindOf(in.Datatype)}
	if d.kind == kindBytes {
		in.Bytes = make([][]byte, 0, n)
	} else {
		in.F32 = make([]float32, 0, n)
		if wideInt(in.Datatype) {
			in.I64 = make([]int64, 0, n)
		}
	}
	s := &d.s
	s.Pos++ // '[' checked by the caller
	if s.Peek() == '[' && len(in.Shape) > 1 {
		s.Pos = at
		if err := d.nested(0); err != nil {
			return 0, err
		}
	} else {
		// Flat; a rank-1 nested array is the same thing. A nested first
		// element under a rank <= 1 shape fails in elem as "not a number".
		for first := d.fastRun(d.n) == 0; ; first = false {
			ok, err := s.More(']', first)
			if err != nil {
				return 0, d.errAt(err)
			}
			if !ok {
				break
			}
			if err := d.elem(); err != nil {
				return 0, err
			}
		}
	}
	if d.count != n {
		return 0, badf("input %q: shape %v needs %d elements, data has %d", in.Name, in.Shape, n, d.count)
	}
	return s.Pos, nil
}

type elemKind int

const (
	kindNumber elemKind = iota
	kindBool
	kindBytes
)

func kindOf(dt string) elemKind {
	switch dt {
	case BOOL:
		return kindBool
	case BYTES:
		return kindBytes
	}
	return kindNumber
}

type dataDecoder struct {
	s     scanner
	in    *RequestInput
	n     int // elements the shape asks for
	count int // elements read so far
	kind  elemKind
	y     yield.Point
}

func (d *dataDecoder) errAt(err error) error {
	if isBad(err) {
		return err
	}
	return badf("input %q: data element %d: %v", d.in.Name, d.count, err)
}

// nested reads an array at depth dim that must hold exactly Shape[dim]
// items: arrays one level down, or elements at the last dimension.
func (d *dataDecoder) nested(dim int) error {
	s := &d.s
	if err := s.Expect('['); err != nil {
		return badf("input %q: data does not match shape %v at dimension %d: %v", d.in.Name, d.in.Shape, dim, err)
	}
	items := int64(0)
	first := true
	if dim+1 == len(d.in.Shape) {
		items = int64(d.fastRun(int(min(d.in.Shape[dim], int64(d.n)))))
		first = items == 0
	}
	for ; ; first = false {
		ok, err := s.More(']', first)
		if err != nil {
			return d.errAt(err)
		}
		if !ok {
			break
		}
		items++
		if items > d.in.Shape[dim] {
			return badf("input %q: data has more than %d items at dimension %d of shape %v", d.in.Name, d.in.Shape[dim], dim, d.in.Shape)
		}
		if dim+1 < len(d.in.Shape) {
			if err := d.nested(dim + 1); err != nil {
				return err
			}
		} else if err := d.elem(); err != nil {
			return err
		}
	}
	if items != d.in.Shape[dim] {
		return badf("input %q: data has %d items at dimension %d, shape %v says %d", d.in.Name, items, dim, d.in.Shape, d.in.Shape[dim])
	}
	return nil
}

// fastRun reads the leading run of an array's FP32 elements, at most max
// of them, when they come as encoders write them: no whitespace, at most
// 15 significant digits and an exponent within ±22, so that one
// multiplication or division of exact float64 values gives the number
// (Clinger's fast path) and float32Safe says whether rounding it again to
// float32 is exact. It stops before the first byte it does not take — a
// space, a longer number, the closing bracket, anything malformed — where
// the general loop goes on: everything past the fast forms, errors
// included, is decided there, as if the run had been read by elem. It
// returns how many elements it took; the first is taken without a comma
// before it, the others with one.
func (d *dataDecoder) fastRun(max int) int {
	if d.kind != kindNumber || d.in.Datatype != FP32 || !fastNumbers {
		return 0
	}
	b, i := d.s.B, d.s.Pos
	out := d.in.F32
	start := len(out)
	max = min(max, d.n-d.count)
	for len(out)-start < max {
		j := i
		if len(out) > start {
			if j >= len(b) || b[j] != ',' {
				break
			}
			j++
		}
		if j+1 < len(b) && b[j] == '0' && (b[j+1] == ',' || b[j+1] == ']') {
			// A zero, most of an image's pixels.
			out = append(out, 0)
			i = j + 1
		} else {
			v, k, ok := fastFP32(b, j)
			if !ok {
				break
			}
			out = append(out, v)
			i = k
		}
		if (d.count+len(out)-start)%yieldElems == 0 {
			d.y.Maybe()
		}
	}
	took := len(out) - start
	d.in.F32 = out
	d.count += took
	d.s.Pos = i
	return took
}

// fastNumbers turns fastRun on; tests turn it off to hold the two paths to
// the same answers.
var fastNumbers = true

// fastFP32 reads the number at b[i:] when it has one of fastRun's forms,
// and returns it and where it ends.
func fastFP32(b []byte, i int) (float32, int, bool) {
	end, f, exact, ok := jsonscan.Number(b, i)
	if !ok || !exact || !float32Safe(f) {
		return 0, end, false
	}
	return float32(f), end, true
}

// elem reads one element into F32 or Bytes.
func (d *dataDecoder) elem() error {
	s := &d.s
	if d.count >= d.n {
		return badf("input %q: data has more than the %d elements of shape %v", d.in.Name, d.n, d.in.Shape)
	}
	switch d.kind {
	case kindBytes:
		v, err := s.Str()
		if err != nil {
			return d.errAt(err)
		}
		d.in.Bytes = append(d.in.Bytes, []byte(v))
	case kindBool:
		switch {
		case s.Peek() == 't' && s.Lit("true"):
			d.in.F32 = append(d.in.F32, 1)
		case s.Peek() == 'f' && s.Lit("false"):
			d.in.F32 = append(d.in.F32, 0)
		default:
			return d.errAt(s.Unexpected("true or false"))
		}
	default:
		num, f, exact, err := s.NumValue()
		if err != nil {
			return d.errAt(err)
		}
		v, err := convertNumber(num, f, exact, d.in.Datatype)
		if err != nil {
			return d.errAt(err)
		}
		d.in.F32 = append(d.in.F32, v)
		if d.in.I64 != nil {
			i, err := strconv.ParseInt(unsafe.String(&num[0], len(num)), 10, 64)
			if err != nil {
				// "2.0", "1e3" (integral, checked by convertNumber), or a
				// UINT64 beyond INT64: exact as float64 up to 2^53, else
				// not kept exactly at all.
				if exact && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
					i = int64(f)
				} else {
					d.in.I64 = nil
				}
			}
			if d.in.I64 != nil {
				d.in.I64 = append(d.in.I64, i)
			}
		}
	}
	d.count++
	if d.count%yieldElems == 0 {
		d.y.Maybe()
	}
	return nil
}

// yieldElems is how many elements a decode reads between looks at the
// clock (tens of microseconds): a request of millions of numbers gives
// its processor to other requests every yield.Every instead of holding it
// for Go's 10 ms slices.
const yieldElems = 4096

// Integer ranges of the integer datatypes.
func intRange(dt string) (lo, hi float64) {
	switch dt {
	case UINT8:
		return 0, math.MaxUint8
	case UINT16:
		return 0, math.MaxUint16
	case UINT32:
		return 0, math.MaxUint32
	case UINT64:
		return 0, math.MaxUint64
	case INT8:
		return math.MinInt8, math.MaxInt8
	case INT16:
		return math.MinInt16, math.MaxInt16
	case INT32:
		return math.MinInt32, math.MaxInt32
	}
	return math.MinInt64, math.MaxInt64
}

// convertNumber converts one JSON number (grammar already checked) to
// float32 under the rules of datatype; f is its value when exact.
func convertNumber(num []byte, f float64, exact bool, dt string) (float32, error) {
	if dt == FP32 || dt == FP16 {
		var f32 float32
		if exact && float32Safe(f) {
			f32 = float32(f)
		} else {
			// The number bytes alias the body; strconv keeps the string
			// only in its error value, which is dropped here.
			v, err := strconv.ParseFloat(unsafe.String(&num[0], len(num)), 32)
			if err != nil {
				return 0, fmt.Errorf("%s is out of %s range", num, dt)
			}
			f32 = float32(v)
		}
		if dt == FP16 && (f32 > maxFP16 || f32 < -maxFP16) {
			return 0, fmt.Errorf("%s is out of FP16 range", num)
		}
		return f32, nil
	}
	if !exact {
		var err error
		f, err = strconv.ParseFloat(unsafe.String(&num[0], len(num)), 64)
		if err != nil {
			return 0, fmt.Errorf("%s is out of range", num)
		}
	}
	if dt == FP64 {
		if math.Abs(f) > math.MaxFloat32 {
			return 0, fmt.Errorf("%s is out of float32 range", num)
		}
		return float32(f), nil
	}
	if f != math.Trunc(f) {
		return 0, fmt.Errorf("%s is not an integer", num)
	}
	// Integers beyond 2^53 lose precision in f, but only near the range
	// ends of INT64/UINT64, where float32 has none to lose anyway.
	lo, hi := intRange(dt)
	if f < lo || f > hi {
		return 0, fmt.Errorf("%s is out of %s range", num, dt)
	}
	return float32(f), nil
}

const maxFP16 = 65504

// float32Safe reports whether rounding the correctly rounded float64 f to
// float32 gives the same result as rounding the exact decimal would. Double
// rounding can only differ when f landed exactly on a midpoint between two
// float32 values (low 29 mantissa bits 1000...0), or below the normal
// float32 range, where the grid is coarser; out-of-range values are left to
// strconv's error.
func float32Safe(f float64) bool {
	if f == 0 {
		return true
	}
	a := math.Abs(f)
	if a < 0x1p-126 || a > math.MaxFloat32 {
		return false
	}
	return math.Float64bits(f)&(1<<29-1) != 1<<28
}

// decodeBinaryData converts an input's binary tensor data: little-endian
// elements of the datatype's size, or for BYTES a 4-byte little-endian
// length before each element.
func decodeBinaryData(in *RequestInput, b []byte, l *Limits) error {
	in.Binary = true
	n, err := numElements(in, l)
	if err != nil {
		return err
	}
	if in.Datatype == BYTES {
		in.Bytes = make([][]byte, 0, min(n, len(b)/4))
		for i := 0; i < n; i++ {
			if len(b) < 4 {
				return badf("input %q: binary BYTES element %d: truncated length", in.Name, i)
			}
			size := binary.LittleEndian.Uint32(b)
			b = b[4:]
			if uint64(size) > uint64(len(b)) {
				return badf("input %q: binary BYTES element %d: length %d exceeds the %d bytes left", in.Name, i, size, len(b))
			}
			in.Bytes = append(in.Bytes, b[:size:size])
			b = b[size:]
		}
		if len(b) != 0 {
			return badf("input %q: %d binary bytes after the %d elements of shape %v", in.Name, len(b), n, in.Shape)
		}
		return nil
	}
	size, _ := ElementSize(in.Datatype)
	if int64(len(b)) != int64(n)*int64(size) {
		return badf("input %q: binary_data_size %d, shape %v of %s needs %d bytes", in.Name, len(b), in.Shape, in.Datatype, int64(n)*int64(size))
	}
	out := make([]float32, n)
	in.F32 = out
	if wideInt(in.Datatype) {
		in.I64 = make([]int64, n)
		for i := range in.I64 {
			e := b[i*size : (i+1)*size]
			switch in.Datatype {
			case INT32:
				in.I64[i] = int64(int32(binary.LittleEndian.Uint32(e)))
			case UINT32:
				in.I64[i] = int64(binary.LittleEndian.Uint32(e))
			case INT64:
				in.I64[i] = int64(binary.LittleEndian.Uint64(e))
			case UINT64:
				u := binary.LittleEndian.Uint64(e)
				if u > math.MaxInt64 {
					in.I64 = nil // beyond INT64: not kept exactly
					break
				}
				in.I64[i] = int64(u)
			}
			if in.I64 == nil {
				break
			}
		}
	}
	if in.Datatype == FP32 && littleEndian && n > 0 {
		// The hot case: the wire's bytes are the host's floats. One copy,
		// then one pass over the bits for a non-finite value, found again
		// by the loop below for its message.
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), 4*n), b)
		if allFinite(unsafe.Slice((*uint32)(unsafe.Pointer(&out[0])), n)) {
			return nil
		}
	}
	if in.Datatype == FP32 {
		for i := range out {
			v := math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			if v-v != 0 { // NaN or ±Inf
				return badf("input %q: data element %d is %v", in.Name, i, v)
			}
			out[i] = v
		}
		return nil
	}
	for i := range out {
		e := b[i*size : (i+1)*size]
		var v float64
		switch in.Datatype {
		case BOOL:
			if e[0] > 1 {
				return badf("input %q: data element %d: BOOL byte %d is neither 0 nor 1", in.Name, i, e[0])
			}
			v = float64(e[0])
		case UINT8:
			v = float64(e[0])
		case INT8:
			v = float64(int8(e[0]))
		case UINT16:
			v = float64(binary.LittleEndian.Uint16(e))
		case INT16:
			v = float64(int16(binary.LittleEndian.Uint16(e)))
		case UINT32:
			v = float64(binary.LittleEndian.Uint32(e))
		case INT32:
			v = float64(int32(binary.LittleEndian.Uint32(e)))
		case UINT64:
			v = float64(binary.LittleEndian.Uint64(e))
		case INT64:
			v = float64(int64(binary.LittleEndian.Uint64(e)))
		case FP16:
			v = float64(halfToFloat32(binary.LittleEndian.Uint16(e)))
		case FP64:
			v = math.Float64frombits(binary.LittleEndian.Uint64(e))
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return badf("input %q: data element %d is %v", in.Name, i, v)
		}
		if math.Abs(v) > math.MaxFloat32 {
			return badf("input %q: data element %d: %g is out of float32 range", in.Name, i, v)
		}
		out[i] = float32(v)
	}
	return nil
}

// littleEndian reports whether the host stores a float32 as the binary
// extension sends it.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// allFinite reports whether no float32 bits in u are NaN or ±Inf (an
// exponent of all ones), without a branch per value.
func allFinite(u []uint32) bool {
	var bad uint32
	for len(u) >= 4 {
		// An exponent of all ones plus one carries into the top bit;
		// no other exponent reaches it.
		bad |= (u[0]&0x7f800000 + 0x00800000) | (u[1]&0x7f800000 + 0x00800000) |
			(u[2]&0x7f800000 + 0x00800000) | (u[3]&0x7f800000 + 0x00800000)
		u = u[4:]
	}
	for _, x := range u {
		bad |= x&0x7f800000 + 0x00800000
	}
	return bad>>31 == 0
}

// halfToFloat32 widens an IEEE 754 binary16 value exactly.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	case exp == 0:
		// Zero or subnormal: frac * 2^-24.
		v := float32(frac) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
}

// loc names an input or output in error messages; it is formatted only
// when an error is.
type loc struct {
	kind string // "inputs" or "outputs"
	idx  int
	name string
}

func (l loc) String() string {
	if l.name != "" {
		return fmt.Sprintf("%s %q", l.kind[:len(l.kind)-1], l.name)
	}
	return fmt.Sprintf("%s[%d]", l.kind, l.idx)
}
