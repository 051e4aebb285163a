// Package leb128 appends signed LEB128 numbers, the encoding of
// WebAssembly's integer immediates (i32.const, i64.const). Unsigned LEB128
// is encoding/binary's uvarint: use binary.AppendUvarint.
package leb128

// AppendSigned appends v as signed LEB128.
func AppendSigned(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
