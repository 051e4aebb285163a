package oip

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// appendRequest is the test suite's request encoder, the inverse of
// DecodeRequest: JSON inputs get flat "data", binary inputs go after the
// JSON. It returns the body and the header length (-1 without binary).
func appendRequest(r *InferenceRequest) ([]byte, int) {
	var dst []byte
	dst = append(dst, '{')
	if r.ID != "" {
		dst = append(dst, `"id":`...)
		dst = appendString(dst, r.ID)
		dst = append(dst, ',')
	}
	if len(r.Parameters) > 0 {
		dst = append(dst, `"parameters":`...)
		dst = appendParams(dst, r.Parameters, "", 0)
		dst = append(dst, ',')
	}
	dst = append(dst, `"inputs":[`...)
	var bin []byte
	binary := false // a binary input of zero bytes still needs the header length
	for i, in := range r.Inputs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"name":`...)
		dst = appendString(dst, in.Name)
		dst = append(dst, `,"shape":[`...)
		for j, d := range in.Shape {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendInt(dst, d, 10)
		}
		dst = append(dst, `],"datatype":`...)
		dst = appendString(dst, in.Datatype)
		if in.Binary {
			binary = true
			before := len(bin)
			bin = appendInputBinary(bin, &in)
			params := map[string]any{}
			for k, v := range in.Parameters {
				params[k] = v
			}
			dst = append(dst, `,"parameters":`...)
			dst = appendParams(dst, params, "binary_data_size", int64(len(bin)-before))
			dst = append(dst, '}')
			continue
		}
		if len(in.Parameters) > 0 {
			dst = append(dst, `,"parameters":`...)
			dst = appendParams(dst, in.Parameters, "", 0)
		}
		dst = append(dst, `,"data":[`...)
		if in.Datatype == BYTES {
			for j, b := range in.Bytes {
				if j > 0 {
					dst = append(dst, ',')
				}
				dst = appendString(dst, string(b))
			}
		} else {
			dst = appendValues(dst, in.F32, in.Datatype)
		}
		dst = append(dst, "]}"...)
	}
	dst = append(dst, ']')
	if len(r.Outputs) > 0 {
		dst = append(dst, `,"outputs":[`...)
		for i, o := range r.Outputs {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"name":`...)
			dst = appendString(dst, o.Name)
			if len(o.Parameters) > 0 {
				dst = append(dst, `,"parameters":`...)
				dst = appendParams(dst, o.Parameters, "", 0)
			}
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	dst = append(dst, '}')
	if !binary {
		return dst, -1
	}
	return append(dst, bin...), len(dst)
}

func appendInputBinary(dst []byte, in *RequestInput) []byte {
	if in.Datatype == BYTES {
		for _, b := range in.Bytes {
			dst = binary.LittleEndian.AppendUint32(dst, uint32(len(b)))
			dst = append(dst, b...)
		}
		return dst
	}
	o := ResponseOutput{Datatype: in.Datatype, F32: in.F32}
	if in.Datatype == FP16 {
		// Binary FP16 must keep the values; the decoded ones are exact
		// halves already, so the rounding is the identity here.
		for _, x := range in.F32 {
			dst = binary.LittleEndian.AppendUint16(dst, float32ToHalf(x))
		}
		return dst
	}
	if in.Datatype == FP64 {
		for _, x := range in.F32 {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(float64(x)))
		}
		return dst
	}
	return appendBinary(dst, &o)
}

func itoa(n int) string { return strconv.Itoa(n) }

func jsonNumber(s string) any { return json.Number(s) }

func fmtChan(v any) string { return fmt.Sprint(v) }
