package oip

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/aiaas/aiaas/internal/yield"
)

// AppendResponse appends the encoding of r to dst and returns the extended
// slice. When an output has Binary set, its data follows the JSON object as
// raw little-endian bytes (in output order) and its parameters carry
// binary_data_size; jsonHeaderLen is then the length of the JSON part, for
// the Inference-Header-Content-Length header. With no binary output it is
// -1 and the body is plain JSON.
//
// Values are written in each output's datatype: floats with the shortest
// representation that reads back as the same float32, integers truncated,
// BOOL as v != 0. JSON has no NaN or infinity, so such values are written
// as null; callers that must refuse them check before encoding.
// AppendResponse does not validate shapes against data. Safe for concurrent
// use if nobody writes r.
func AppendResponse(dst []byte, r *InferenceResponse) (body []byte, jsonHeaderLen int) {
	start := len(dst)
	dst = append(dst, `{"model_name":`...)
	dst = appendString(dst, r.ModelName)
	if r.ModelVersion != "" {
		dst = append(dst, `,"model_version":`...)
		dst = appendString(dst, r.ModelVersion)
	}
	if r.ID != "" {
		dst = append(dst, `,"id":`...)
		dst = appendString(dst, r.ID)
	}
	if len(r.Parameters) > 0 {
		dst = append(dst, `,"parameters":`...)
		dst = appendParams(dst, r.Parameters, "", 0)
	}
	dst = append(dst, `,"outputs":[`...)
	anyBinary := false
	for i := range r.Outputs {
		o := &r.Outputs[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dt := o.Datatype
		if dt == "" {
			dt = FP32
		}
		dst = append(dst, `{"name":`...)
		dst = appendString(dst, o.Name)
		dst = append(dst, `,"shape":[`...)
		for j, d := range o.Shape {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendInt(dst, d, 10)
		}
		dst = append(dst, `],"datatype":`...)
		dst = appendString(dst, dt)
		if o.Binary {
			anyBinary = true
			dst = append(dst, `,"parameters":`...)
			dst = appendParams(dst, o.Parameters, "binary_data_size", binarySize(o, dt))
			dst = append(dst, '}')
			continue
		}
		if len(o.Parameters) > 0 {
			dst = append(dst, `,"parameters":`...)
			dst = appendParams(dst, o.Parameters, "", 0)
		}
		dst = append(dst, `,"data":[`...)
		if dt == BYTES {
			for j, b := range o.Bytes {
				if j > 0 {
					dst = append(dst, ',')
				}
				dst = appendString(dst, string(b))
			}
		} else if o.I64 != nil {
			dst = appendInts(dst, o.I64, dt)
		} else {
			dst = appendValues(dst, o.F32, dt)
		}
		dst = append(dst, "]}"...)
	}
	dst = append(dst, "]}"...)
	if !anyBinary {
		return dst, -1
	}
	headerLen := len(dst) - start
	for i := range r.Outputs {
		if o := &r.Outputs[i]; o.Binary {
			dst = appendBinary(dst, o)
		}
	}
	return dst, headerLen
}

func datatypeOf(o *ResponseOutput) string {
	if o.Datatype == "" {
		return FP32
	}
	return o.Datatype
}

func binarySize(o *ResponseOutput, dt string) int64 {
	if dt == BYTES {
		n := int64(0)
		for _, b := range o.Bytes {
			n += 4 + int64(len(b))
		}
		return n
	}
	size, ok := ElementSize(dt)
	if !ok {
		size = 4 // an unknown datatype is written as FP32; see appendBinary
	}
	if o.I64 != nil {
		return int64(size) * int64(len(o.I64))
	}
	return int64(size) * int64(len(o.F32))
}

// appendValues writes the JSON elements of a numeric or BOOL output.
func appendValues(dst []byte, v []float32, dt string) []byte {
	var y yield.Point // a large output gives its processor away (decode.go)
	for j, x := range v {
		if j > 0 {
			dst = append(dst, ',')
			if j%yieldElems == 0 {
				y.Maybe()
			}
		}
		f := float64(x)
		switch {
		case math.IsNaN(f) || math.IsInf(f, 0):
			dst = append(dst, "null"...)
		case dt == BOOL:
			dst = strconv.AppendBool(dst, x != 0)
		case dt == FP32 || dt == FP16 || dt == FP64:
			dst = strconv.AppendFloat(dst, f, 'g', -1, 32)
		case dt == UINT64 || dt == UINT32 || dt == UINT16 || dt == UINT8:
			dst = strconv.AppendUint(dst, toUint(f, dt), 10)
		case dt == INT64 || dt == INT32 || dt == INT16 || dt == INT8:
			dst = strconv.AppendInt(dst, toInt(f, dt), 10)
		default:
			dst = strconv.AppendFloat(dst, f, 'g', -1, 32)
		}
	}
	return dst
}

// appendInts writes the JSON elements of an integer output given
// exactly (BOOL as v != 0; a float datatype as the nearest float).
func appendInts(dst []byte, v []int64, dt string) []byte {
	var y yield.Point
	for j, x := range v {
		if j > 0 {
			dst = append(dst, ',')
			if j%yieldElems == 0 {
				y.Maybe()
			}
		}
		switch dt {
		case BOOL:
			dst = strconv.AppendBool(dst, x != 0)
		case FP32, FP16, FP64:
			dst = strconv.AppendFloat(dst, float64(x), 'g', -1, 64)
		default:
			dst = strconv.AppendInt(dst, x, 10)
		}
	}
	return dst
}

// toInt truncates and clamps f into the range of dt, so an out-of-range
// model output does not wrap around.
func toInt(f float64, dt string) int64 {
	lo, hi := intRange(dt)
	f = math.Trunc(f)
	switch {
	case f <= lo:
		return int64(lo)
	case f >= hi:
		if dt == INT64 {
			return math.MaxInt64
		}
		return int64(hi)
	}
	return int64(f)
}

func toUint(f float64, dt string) uint64 {
	_, hi := intRange(dt)
	f = math.Trunc(f)
	switch {
	case f <= 0:
		return 0
	case f >= hi:
		if dt == UINT64 {
			return math.MaxUint64
		}
		return uint64(hi)
	}
	return uint64(f)
}

func appendBinary(dst []byte, o *ResponseOutput) []byte {
	dt := datatypeOf(o)
	if dt == BYTES {
		for _, b := range o.Bytes {
			dst = binary.LittleEndian.AppendUint32(dst, uint32(len(b)))
			dst = append(dst, b...)
		}
		return dst
	}
	if o.I64 != nil {
		for _, x := range o.I64 {
			switch size, _ := ElementSize(dt); {
			case dt == BOOL:
				dst = append(dst, boolByte(x != 0))
			case dt == FP32 || dt == FP16 || dt == FP64 || size == 0:
				dst = appendBinaryFloat(dst, float32(x), dt)
			default:
				for k := 0; k < size; k++ {
					dst = append(dst, byte(uint64(x)>>(8*k)))
				}
			}
		}
		return dst
	}
	for _, x := range o.F32 {
		f := float64(x)
		switch dt {
		case BOOL:
			if x != 0 {
				dst = append(dst, 1)
			} else {
				dst = append(dst, 0)
			}
		case UINT8:
			dst = append(dst, byte(toUint(f, dt)))
		case INT8:
			dst = append(dst, byte(toInt(f, dt)))
		case UINT16:
			dst = binary.LittleEndian.AppendUint16(dst, uint16(toUint(f, dt)))
		case INT16:
			dst = binary.LittleEndian.AppendUint16(dst, uint16(toInt(f, dt)))
		case UINT32:
			dst = binary.LittleEndian.AppendUint32(dst, uint32(toUint(f, dt)))
		case INT32:
			dst = binary.LittleEndian.AppendUint32(dst, uint32(toInt(f, dt)))
		case UINT64:
			dst = binary.LittleEndian.AppendUint64(dst, toUint(f, dt))
		case INT64:
			dst = binary.LittleEndian.AppendUint64(dst, uint64(toInt(f, dt)))
		case FP16:
			dst = binary.LittleEndian.AppendUint16(dst, float32ToHalf(x))
		case FP64:
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
		default: // FP32, and anything unknown rather than nothing
			dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(x))
		}
	}
	return dst
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// appendBinaryFloat writes one value of a float datatype.
func appendBinaryFloat(dst []byte, x float32, dt string) []byte {
	switch dt {
	case FP16:
		return binary.LittleEndian.AppendUint16(dst, float32ToHalf(x))
	case FP64:
		return binary.LittleEndian.AppendUint64(dst, math.Float64bits(float64(x)))
	}
	return binary.LittleEndian.AppendUint32(dst, math.Float32bits(x))
}

// float32ToHalf rounds to the nearest binary16, ties to even.
func float32ToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	frac := b & 0x7fffff
	switch {
	case exp == 0xff: // Inf, NaN
		if frac != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	case exp-127 > 15:
		return sign | 0x7c00 // overflow to Inf
	case exp-127 >= -14: // normal
		h := uint32(exp-127+15)<<10 | frac>>13
		round := frac & 0x1fff
		if round > 0x1000 || (round == 0x1000 && h&1 == 1) {
			h++ // may carry into the exponent, which is right (up to Inf)
		}
		return sign | uint16(h)
	case exp-127 >= -25: // subnormal
		m := frac | 0x800000
		shift := uint32(-14-(exp-127)) + 13
		h := m >> shift
		rem := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && h&1 == 1) {
			h++
		}
		return sign | uint16(h)
	}
	return sign
}

// appendParams writes a $parameters object with sorted keys, plus the
// extra integer member when extraKey is set (it overrides a member of the
// same name). A member named "" is kept like any other.
func appendParams(dst []byte, p map[string]any, extraKey string, extra int64) []byte {
	hasExtra := extraKey != ""
	keys := make([]string, 0, len(p)+1)
	for k := range p {
		if !hasExtra || k != extraKey {
			keys = append(keys, k)
		}
	}
	if hasExtra {
		keys = append(keys, extraKey)
	}
	sort.Strings(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		if hasExtra && k == extraKey {
			dst = strconv.AppendInt(dst, extra, 10)
			continue
		}
		dst = appendParam(dst, p[k])
	}
	return append(dst, '}')
}

func appendParam(dst []byte, v any) []byte {
	switch x := v.(type) {
	case string:
		return appendString(dst, x)
	case bool:
		return strconv.AppendBool(dst, x)
	case json.Number:
		if _, err := strconv.ParseFloat(string(x), 64); err == nil && x != "" {
			return append(dst, x...)
		}
		return appendString(dst, string(x))
	case int:
		return strconv.AppendInt(dst, int64(x), 10)
	case int64:
		return strconv.AppendInt(dst, x, 10)
	case int32:
		return strconv.AppendInt(dst, int64(x), 10)
	case uint64:
		return strconv.AppendUint(dst, x, 10)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return append(dst, "null"...)
		}
		return strconv.AppendFloat(dst, x, 'g', -1, 64)
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return append(dst, "null"...)
		}
		return strconv.AppendFloat(dst, float64(x), 'g', -1, 32)
	}
	// Parameters are scalars by the protocol; anything else the server put
	// there goes through encoding/json, or as its string form if it can't.
	if b, err := json.Marshal(v); err == nil {
		return append(dst, b...)
	}
	return appendString(dst, fmt.Sprint(v))
}

// appendString writes s as a JSON string, escaping what JSON requires plus
// <, >, & and U+2028/2029 as encoding/json does (responses may be shown in
// a browser). Invalid UTF-8 becomes U+FFFD.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// AppendError appends the protocol's error object {"error": msg}. Safe for
// concurrent use.
func AppendError(dst []byte, msg string) []byte {
	dst = append(dst, `{"error":`...)
	dst = appendString(dst, msg)
	return append(dst, '}')
}
