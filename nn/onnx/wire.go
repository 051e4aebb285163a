package onnx

import (
	"encoding/binary"
	"errors"
	"math"
)

// Protobuf wire types (https://protobuf.dev/programming-guides/encoding/).
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

var errWire = errors.New("malformed protobuf")

// reader walks the fields of one protobuf message. It never allocates and
// never panics: every length is checked against what is left.
type reader struct {
	b   []byte
	err error
}

// next returns the next field number and wire type, or ok=false at the end
// of the message or on error (see r.err).
func (r *reader) next() (field int, typ int, ok bool) {
	if r.err != nil || len(r.b) == 0 {
		return 0, 0, false
	}
	key, ok := r.varint()
	if !ok {
		return 0, 0, false
	}
	field, typ = int(key>>3), int(key&7)
	if field <= 0 || key>>3 > math.MaxInt32 {
		r.err = errWire
		return 0, 0, false
	}
	return field, typ, true
}

func (r *reader) varint() (uint64, bool) {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errWire
		return 0, false
	}
	r.b = r.b[n:]
	return v, true
}

func (r *reader) bytes() ([]byte, bool) {
	n, ok := r.varint()
	if !ok {
		return nil, false
	}
	if n > uint64(len(r.b)) {
		r.err = errWire
		return nil, false
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v, true
}

func (r *reader) fixed32() (uint32, bool) {
	if len(r.b) < 4 {
		r.err = errWire
		return 0, false
	}
	v := binary.LittleEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v, true
}

// skip discards a field of wire type typ. Groups (3, 4) are deprecated and
// never used by onnx.proto, so they are an error.
func (r *reader) skip(typ int) {
	switch typ {
	case wireVarint:
		r.varint()
	case wireFixed64:
		if len(r.b) < 8 {
			r.err = errWire
			return
		}
		r.b = r.b[8:]
	case wireBytes:
		r.bytes()
	case wireFixed32:
		r.fixed32()
	default:
		r.err = errWire
	}
}

// int64Field reads a varint field as a (two's complement) int64.
func (r *reader) int64Field(typ int) (int64, bool) {
	if typ != wireVarint {
		r.err = errWire
		return 0, false
	}
	v, ok := r.varint()
	return int64(v), ok
}

func (r *reader) bytesField(typ int) ([]byte, bool) {
	if typ != wireBytes {
		r.err = errWire
		return nil, false
	}
	return r.bytes()
}

// appendInt64s reads a repeated int64 field, packed or not, appending at
// most max values to dst.
func (r *reader) appendInt64s(dst []int64, typ, max int) ([]int64, bool) {
	switch typ {
	case wireVarint:
		v, ok := r.int64Field(typ)
		if !ok {
			return dst, false
		}
		if len(dst) >= max {
			r.err = errLimit
			return dst, false
		}
		return append(dst, v), true
	case wireBytes:
		p, ok := r.bytes()
		if !ok {
			return dst, false
		}
		sub := reader{b: p}
		for len(sub.b) > 0 {
			v, ok := sub.varint()
			if !ok {
				r.err = errWire
				return dst, false
			}
			if len(dst) >= max {
				r.err = errLimit
				return dst, false
			}
			dst = append(dst, int64(v))
		}
		return dst, true
	}
	r.err = errWire
	return dst, false
}

var errLimit = errors.New("limit exceeded")

// writer builds one protobuf message. Nested messages are written into
// their own writer and appended with msg, which costs a copy per level; the
// messages here are at most four levels deep and the big payloads (weights)
// are written once, as raw bytes, at the leaf.
type writer struct{ b []byte }

func (w *writer) key(field, typ int) { w.b = binary.AppendUvarint(w.b, uint64(field)<<3|uint64(typ)) }

func (w *writer) varint(field int, v int64) {
	w.key(field, wireVarint)
	w.b = binary.AppendUvarint(w.b, uint64(v))
}

func (w *writer) bytes(field int, p []byte) {
	w.key(field, wireBytes)
	w.b = binary.AppendUvarint(w.b, uint64(len(p)))
	w.b = append(w.b, p...)
}

func (w *writer) str(field int, s string) {
	w.key(field, wireBytes)
	w.b = binary.AppendUvarint(w.b, uint64(len(s)))
	w.b = append(w.b, s...)
}

func (w *writer) msg(field int, m *writer) { w.bytes(field, m.b) }

func (w *writer) packedInt64s(field int, v []int64) {
	var p []byte
	for _, x := range v {
		p = binary.AppendUvarint(p, uint64(x))
	}
	w.bytes(field, p)
}
