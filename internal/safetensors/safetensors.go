package safetensors

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// ErrFormat is wrapped by every error that reports malformed or
// inconsistent safetensors bytes or tensors. The message names the tensor
// or header field at fault.
var ErrFormat = errors.New("safetensors: invalid format")

// DType names the element type of a tensor, spelled as in the file header.
type DType string

// The element types of the safetensors format. F8_E4M3 and F8_E5M2 are
// accepted because the reference implementation writes them; nothing here
// computes with them.
const (
	DTypeF64    DType = "F64"
	DTypeF32    DType = "F32"
	DTypeF16    DType = "F16"
	DTypeBF16   DType = "BF16"
	DTypeF8E4M3 DType = "F8_E4M3"
	DTypeF8E5M2 DType = "F8_E5M2"
	DTypeI64    DType = "I64"
	DTypeI32    DType = "I32"
	DTypeI16    DType = "I16"
	DTypeI8     DType = "I8"
	DTypeU64    DType = "U64"
	DTypeU32    DType = "U32"
	DTypeU16    DType = "U16"
	DTypeU8     DType = "U8"
	DTypeBool   DType = "BOOL"
)

// Size returns the number of bytes of one element, or 0 if d is not a dtype
// of the format. Safe for concurrent use.
func (d DType) Size() int {
	switch d {
	case DTypeF64, DTypeI64, DTypeU64:
		return 8
	case DTypeF32, DTypeI32, DTypeU32:
		return 4
	case DTypeF16, DTypeBF16, DTypeI16, DTypeU16:
		return 2
	case DTypeI8, DTypeU8, DTypeBool, DTypeF8E4M3, DTypeF8E5M2:
		return 1
	}
	return 0
}

// Tensor is one named tensor. Data holds numel(Shape)*DType.Size() bytes in
// little-endian order, row-major.
//
// A Tensor is a plain value; its methods only read it and are safe for
// concurrent use as long as nobody writes Data.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// File is the decoded content of a safetensors file.
type File struct {
	// Metadata is the header's "__metadata__" object. It may be nil.
	Metadata map[string]string
	// Tensors are in ascending data-offset order after Decode; Encode lays
	// them out in the order given.
	Tensors []Tensor
}

// metadataKey is the reserved header key of the metadata object; no tensor
// may be named so.
const metadataKey = "__metadata__"

// Limits bound what Decode accepts. Zero fields mean the defaults.
type Limits struct {
	MaxHeaderBytes int // default 100 MiB (the reference implementation caps at 100 MB)
	MaxTensors     int // default 1<<16
	MaxRank        int // default 8
}

const (
	defaultMaxHeaderBytes = 100 << 20
	defaultMaxTensors     = 1 << 16
	defaultMaxRank        = 8
)

func (l *Limits) withDefaults() Limits {
	var out Limits
	if l != nil {
		out = *l
	}
	if out.MaxHeaderBytes <= 0 {
		out.MaxHeaderBytes = defaultMaxHeaderBytes
	}
	if out.MaxTensors <= 0 {
		out.MaxTensors = defaultMaxTensors
	}
	if out.MaxRank <= 0 {
		out.MaxRank = defaultMaxRank
	}
	return out
}

// NumElements returns the product of the shape (1 for a scalar, whose shape
// is empty), or -1 if a dimension is negative or the product overflows int.
// Tensors returned by Decode always have a valid count.
func (t Tensor) NumElements() int {
	n, ok := numElements(t.Shape)
	if !ok {
		return -1
	}
	return n
}

func numElements(shape []int) (int, bool) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		hi, lo := bits.Mul64(uint64(n), uint64(d))
		if hi != 0 || lo > math.MaxInt {
			return 0, false
		}
		n = int(lo)
	}
	return n, true
}

// byteSize returns numel*size, or an error on a bad shape, an unknown dtype
// or an overflow.
func (t Tensor) byteSize() (int, error) {
	size := t.DType.Size()
	if size == 0 {
		return 0, fmt.Errorf("%w: tensor %q: unknown dtype %q", ErrFormat, t.Name, t.DType)
	}
	n, ok := numElements(t.Shape)
	if !ok {
		return 0, fmt.Errorf("%w: tensor %q: shape %v has a negative dimension or too many elements", ErrFormat, t.Name, t.Shape)
	}
	hi, lo := bits.Mul64(uint64(n), uint64(size))
	if hi != 0 || lo > math.MaxInt {
		return 0, fmt.Errorf("%w: tensor %q: shape %v: byte size overflows", ErrFormat, t.Name, t.Shape)
	}
	return int(lo), nil
}

// Tensor returns the tensor with the given name. It is a linear scan, which
// beats a map for the handful of tensors a model has. Safe for concurrent
// use.
func (f *File) Tensor(name string) (Tensor, bool) {
	for _, t := range f.Tensors {
		if t.Name == name {
			return t, true
		}
	}
	return Tensor{}, false
}

// F32 returns an F32 tensor holding a little-endian copy of v. The shape is
// copied too. If len(v) does not match the shape the tensor is invalid, and
// EncodeTo and Validate report it. Safe for concurrent use.
func F32(name string, shape []int, v []float32) Tensor {
	data := make([]byte, 4*len(v))
	if littleEndian && len(v) > 0 {
		copy(data, unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v)))
	} else {
		for i, x := range v {
			binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(x))
		}
	}
	return Tensor{Name: name, DType: DTypeF32, Shape: append([]int(nil), shape...), Data: data}
}

// Float32s appends the values of an F32 tensor to dst and returns the
// extended slice: pass dst[:0] to reuse a buffer, nil to allocate exactly.
// Any other dtype, or a Data length that disagrees with the shape, is an
// error wrapping ErrFormat (no implicit conversion: a model asking for F32
// weights must not silently accept F16). Safe for concurrent use.
func (t Tensor) Float32s(dst []float32) ([]float32, error) {
	size, err := t.f32Size()
	if err != nil {
		return dst, err
	}
	n := size / 4
	start := len(dst)
	dst = grow(dst, n)
	if n == 0 {
		return dst, nil
	}
	out := dst[start:]
	if littleEndian {
		// One memmove: the destination is float32-aligned by construction and
		// the source is read as bytes, so the data's alignment in the file is
		// irrelevant.
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), size), t.Data)
	} else {
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
		}
	}
	return dst, nil
}

// Float32View returns the values of an F32 tensor as Float32s does, but
// without copying when it can: on a little-endian machine, when the data
// is 4-byte aligned (as a padded header leaves it in a buffer from make),
// the result aliases t.Data — writes through either show in the other.
// Otherwise it is a copy. Safe for concurrent use.
func (t Tensor) Float32View() ([]float32, error) {
	if !littleEndian || len(t.Data) == 0 || uintptr(unsafe.Pointer(&t.Data[0]))%4 != 0 {
		return t.Float32s(nil)
	}
	size, err := t.f32Size()
	if err != nil {
		return nil, err
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&t.Data[0])), size/4), nil
}

// f32Size checks that t is an F32 tensor whose Data matches its shape
// and returns the data's size in bytes.
func (t Tensor) f32Size() (int, error) {
	if t.DType != DTypeF32 {
		return 0, fmt.Errorf("%w: tensor %q: dtype is %s, want F32", ErrFormat, t.Name, t.DType)
	}
	size, err := t.byteSize()
	if err != nil {
		return 0, err
	}
	if size != len(t.Data) {
		return 0, fmt.Errorf("%w: tensor %q: %d data bytes, shape %v needs %d", ErrFormat, t.Name, len(t.Data), t.Shape, size)
	}
	return size, nil
}

// grow extends s by n elements, reallocating at most once.
func grow(s []float32, n int) []float32 {
	if cap(s)-len(s) >= n {
		return s[:len(s)+n]
	}
	out := make([]float32, len(s)+n)
	copy(out, s)
	return out
}

var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// Validate reports the first inconsistency that would make Encode's output
// undecodable: an unknown dtype, a negative dimension, a Data length that
// disagrees with the shape, a duplicate or reserved name, or invalid UTF-8 in
// a name or metadata. The error wraps ErrFormat. Safe for concurrent use.
func (f *File) Validate() error {
	for k, v := range f.Metadata {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("%w: metadata key %q: invalid UTF-8", ErrFormat, k)
		}
	}
	seen := make(map[string]struct{}, len(f.Tensors))
	for _, t := range f.Tensors {
		if t.Name == metadataKey {
			return fmt.Errorf("%w: tensor name %q is reserved", ErrFormat, t.Name)
		}
		if !utf8.ValidString(t.Name) {
			return fmt.Errorf("%w: tensor %q: name is not valid UTF-8", ErrFormat, t.Name)
		}
		if _, dup := seen[t.Name]; dup {
			return fmt.Errorf("%w: duplicate tensor %q", ErrFormat, t.Name)
		}
		seen[t.Name] = struct{}{}
		size, err := t.byteSize()
		if err != nil {
			return err
		}
		if size != len(t.Data) {
			return fmt.Errorf("%w: tensor %q: %d data bytes, shape %v needs %d", ErrFormat, t.Name, len(t.Data), t.Shape, size)
		}
	}
	return nil
}

// Encode returns f as safetensors bytes. The output is deterministic: the
// header lists "__metadata__" first (when there is any metadata) and then the
// tensors sorted by name, with metadata keys sorted; the data lays the tensors
// out in the order of f.Tensors; the header is padded with spaces to a
// multiple of 8 bytes so the data is 8-byte aligned, as the reference
// implementation does.
//
// Encode does not validate: byte offsets come from len(Data), so a tensor
// whose Data disagrees with its shape yields bytes that Decode rejects. Use
// Validate or EncodeTo when the tensors are not known to be well formed.
// Safe for concurrent use if nobody writes f.
func Encode(f *File) []byte {
	return AppendEncode(nil, f)
}

// AppendEncode appends the encoding of f to dst and returns the extended
// slice, as Encode does but into a buffer the caller reuses (pass
// dst[:0]): a plugin answering many calls encodes without garbage.
func AppendEncode(dst []byte, f *File) []byte {
	dst, total := appendHeader(dst, f)
	dst = slices.Grow(dst, total)
	for _, t := range f.Tensors {
		dst = append(dst, t.Data...)
	}
	return dst
}

// EncodeTo validates f (see Validate) and writes it to w as Encode would,
// returning the number of bytes written. Safe for concurrent use if nobody
// writes f.
func EncodeTo(w io.Writer, f *File) (int64, error) {
	if err := f.Validate(); err != nil {
		return 0, err
	}
	header, _ := appendHeader(nil, f)
	n, err := w.Write(header)
	written := int64(n)
	if err != nil {
		return written, fmt.Errorf("safetensors: write header: %w", err)
	}
	for _, t := range f.Tensors {
		n, err := w.Write(t.Data)
		written += int64(n)
		if err != nil {
			return written, fmt.Errorf("safetensors: write tensor %q: %w", t.Name, err)
		}
	}
	return written, nil
}

// appendHeader appends the 8-byte length and the padded JSON header, and
// returns the total data size.
func appendHeader(dst []byte, f *File) ([]byte, int) {
	type entry struct {
		t          *Tensor
		begin, end int
	}
	// Most files have a tensor or two: their entries stay on the stack.
	var small [4]entry
	entries := small[:0]
	off := 0
	for i := range f.Tensors {
		t := &f.Tensors[i]
		entries = append(entries, entry{t: t, begin: off, end: off + len(t.Data)})
		off += len(t.Data)
	}
	slices.SortStableFunc(entries, func(a, b entry) int { return strings.Compare(a.t.Name, b.t.Name) })

	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0, '{')
	first := true
	if len(f.Metadata) > 0 {
		keys := make([]string, 0, len(f.Metadata))
		for k := range f.Metadata {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = appendString(dst, metadataKey)
		dst = append(dst, ":{"...)
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, k)
			dst = append(dst, ':')
			dst = appendString(dst, f.Metadata[k])
		}
		dst = append(dst, '}')
		first = false
	}
	for _, e := range entries {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendString(dst, e.t.Name)
		dst = append(dst, `:{"dtype":`...)
		dst = appendString(dst, string(e.t.DType))
		dst = append(dst, `,"shape":[`...)
		for i, d := range e.t.Shape {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendInt(dst, int64(d), 10)
		}
		dst = append(dst, `],"data_offsets":[`...)
		dst = strconv.AppendInt(dst, int64(e.begin), 10)
		dst = append(dst, ',')
		dst = strconv.AppendInt(dst, int64(e.end), 10)
		dst = append(dst, "]}"...)
	}
	dst = append(dst, '}')
	for (len(dst)-start-8)%8 != 0 {
		dst = append(dst, ' ')
	}
	binary.LittleEndian.PutUint64(dst[start:], uint64(len(dst)-start-8))
	return dst, off
}

// appendString appends s as a JSON string. It escapes only what JSON
// requires, so the header stays byte-identical to the reference writer's for
// plain ASCII names.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// Decode parses a safetensors file held in b. The returned tensors alias b
// (see the package documentation) and are in ascending data-offset order.
// lim may be nil for the defaults. Every error wraps ErrFormat.
//
// Decode rejects: a header length beyond the limit or the input, a header
// that is not a UTF-8 JSON object (trailing whitespace is allowed), a
// duplicate name, an entry with a missing, repeated or unknown field, an
// unknown dtype, a negative dimension or a rank above the limit, an element
// count whose byte size overflows or disagrees with the data offsets, offsets
// out of range, overlapping or leaving holes, bytes after the last tensor,
// and metadata values that are not strings. Safe for concurrent use.
func Decode(b []byte, lim *Limits) (*File, error) {
	l := lim.withDefaults()
	if len(b) < 8 {
		return nil, fmt.Errorf("%w: %d bytes, need at least the 8-byte header length", ErrFormat, len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	if n > uint64(l.MaxHeaderBytes) {
		return nil, fmt.Errorf("%w: header length %d exceeds the limit of %d bytes", ErrFormat, n, l.MaxHeaderBytes)
	}
	if n > uint64(len(b)-8) {
		return nil, fmt.Errorf("%w: header length %d exceeds the %d bytes that follow it", ErrFormat, n, len(b)-8)
	}
	header := b[8 : 8+int(n)]
	buf := b[8+int(n):]
	if len(header) == 0 || header[0] != '{' {
		return nil, fmt.Errorf("%w: header does not start with '{'", ErrFormat)
	}
	if !utf8.Valid(header) {
		return nil, fmt.Errorf("%w: header is not valid UTF-8", ErrFormat)
	}
	f, offsets, err := parseHeader(header, &l)
	if err != nil {
		return nil, err
	}
	if err := place(f, offsets, buf, uint64(len(buf))); err != nil {
		return nil, err
	}
	return f, nil
}

type span struct{ begin, end uint64 }

// place checks the offsets against the buffer and points each tensor's Data
// at its bytes.
func place(f *File, offsets []span, buf []byte, bufLen uint64) error {
	idx := make([]int, len(f.Tensors))
	for i := range idx {
		idx[i] = i
	}
	// Ties are only possible between empty tensors; the name makes the
	// order deterministic whatever the header's key order.
	byOffset := func(a, b int) int {
		oa, ob := offsets[a], offsets[b]
		if c := cmp.Compare(oa.begin, ob.begin); c != 0 {
			return c
		}
		if c := cmp.Compare(oa.end, ob.end); c != 0 {
			return c
		}
		return strings.Compare(f.Tensors[a].Name, f.Tensors[b].Name)
	}
	if !slices.IsSortedFunc(idx, byOffset) {
		slices.SortFunc(idx, byOffset)
	}
	sorted := make([]Tensor, len(idx))
	var pos uint64
	for k, i := range idx {
		t := f.Tensors[i]
		o := offsets[i]
		if o.end < o.begin {
			return fmt.Errorf("%w: tensor %q: data_offsets [%d,%d] end before begin", ErrFormat, t.Name, o.begin, o.end)
		}
		if o.begin != pos {
			if o.begin > pos {
				return fmt.Errorf("%w: tensor %q: data_offsets [%d,%d] leave a hole at byte %d", ErrFormat, t.Name, o.begin, o.end, pos)
			}
			return fmt.Errorf("%w: tensor %q: data_offsets [%d,%d] overlap the previous tensor ending at %d", ErrFormat, t.Name, o.begin, o.end, pos)
		}
		if o.end > bufLen {
			return fmt.Errorf("%w: tensor %q: data_offsets [%d,%d] beyond the %d-byte buffer", ErrFormat, t.Name, o.begin, o.end, bufLen)
		}
		size, err := t.byteSize()
		if err != nil {
			return err
		}
		if uint64(size) != o.end-o.begin {
			return fmt.Errorf("%w: tensor %q: shape %v of %s needs %d bytes, data_offsets [%d,%d] give %d", ErrFormat, t.Name, t.Shape, t.DType, size, o.begin, o.end, o.end-o.begin)
		}
		if buf != nil {
			t.Data = buf[o.begin:o.end:o.end]
		}
		sorted[k] = t
		pos = o.end
	}
	if pos != bufLen {
		return fmt.Errorf("%w: %d trailing bytes after the last tensor", ErrFormat, bufLen-pos)
	}
	f.Tensors = sorted
	return nil
}

// ReadHeader reads the 8-byte length and the JSON header of a safetensors
// file from r and checks the header as Decode does, without the data: a
// server streaming an upload learns whether the file is worth reading, and
// how many bytes of data follow (the end of the last tensor), before it
// reads them. prefix holds the length and the header, as read. Every error
// wraps ErrFormat, or is r's error.
func ReadHeader(r io.Reader, lim *Limits) (prefix []byte, dataLen int64, err error) {
	l := lim.withDefaults()
	var lenBuf [8]byte
	if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, 0, fmt.Errorf("%w: need at least the 8-byte header length", ErrFormat)
		}
		return nil, 0, err
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > uint64(l.MaxHeaderBytes) {
		return nil, 0, fmt.Errorf("%w: header length %d exceeds the limit of %d bytes", ErrFormat, n, l.MaxHeaderBytes)
	}
	prefix = make([]byte, 8+int(n))
	copy(prefix, lenBuf[:])
	if _, err := io.ReadFull(r, prefix[8:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, 0, fmt.Errorf("%w: header length %d exceeds the bytes that follow it", ErrFormat, n)
		}
		return nil, 0, err
	}
	header := prefix[8:]
	if len(header) == 0 || header[0] != '{' {
		return nil, 0, fmt.Errorf("%w: header does not start with '{'", ErrFormat)
	}
	if !utf8.Valid(header) {
		return nil, 0, fmt.Errorf("%w: header is not valid UTF-8", ErrFormat)
	}
	_, offsets, err := parseHeader(header, &l)
	if err != nil {
		return nil, 0, err
	}
	var end uint64
	for _, o := range offsets {
		end = max(end, o.end)
	}
	if end > math.MaxInt64 {
		return nil, 0, fmt.Errorf("%w: data end %d out of range", ErrFormat, end)
	}
	return prefix, int64(end), nil
}

// DecodeHeader checks a file's header as Decode does, given the prefix
// ReadHeader returned and the size of the data that follows it, without
// the data: the tensors it returns have no Data. A server that streams a
// large file learns whether its header is sound, and what it holds,
// holding only the header. Every error wraps ErrFormat.
func DecodeHeader(prefix []byte, dataLen int64, lim *Limits) (*File, error) {
	l := lim.withDefaults()
	if len(prefix) < 9 || binary.LittleEndian.Uint64(prefix) != uint64(len(prefix)-8) {
		return nil, fmt.Errorf("%w: not a header prefix", ErrFormat)
	}
	if len(prefix)-8 > l.MaxHeaderBytes {
		return nil, fmt.Errorf("%w: header length %d exceeds the limit of %d bytes", ErrFormat, len(prefix)-8, l.MaxHeaderBytes)
	}
	header := prefix[8:]
	if header[0] != '{' {
		return nil, fmt.Errorf("%w: header does not start with '{'", ErrFormat)
	}
	if !utf8.Valid(header) {
		return nil, fmt.Errorf("%w: header is not valid UTF-8", ErrFormat)
	}
	if dataLen < 0 {
		return nil, fmt.Errorf("%w: negative data length", ErrFormat)
	}
	f, offsets, err := parseHeader(header, &l)
	if err != nil {
		return nil, err
	}
	if err := place(f, offsets, nil, uint64(dataLen)); err != nil {
		return nil, err
	}
	return f, nil
}
