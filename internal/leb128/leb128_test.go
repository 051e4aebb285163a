package leb128

import (
	"bytes"
	"testing"
)

// The examples of the WebAssembly spec and DWARF, and the edges of i32.
func TestAppendSigned(t *testing.T) {
	for _, c := range []struct {
		v    int64
		want []byte
	}{
		{0, []byte{0x00}},
		{2, []byte{0x02}},
		{-2, []byte{0x7e}},
		{63, []byte{0x3f}},
		{64, []byte{0xc0, 0x00}},
		{-64, []byte{0x40}},
		{-65, []byte{0xbf, 0x7f}},
		{127, []byte{0xff, 0x00}},
		{-127, []byte{0x81, 0x7f}},
		{1 << 20, []byte{0x80, 0x80, 0xc0, 0x00}},
		{2147483647, []byte{0xff, 0xff, 0xff, 0xff, 0x07}},
		{-2147483648, []byte{0x80, 0x80, 0x80, 0x80, 0x78}},
	} {
		if got := AppendSigned([]byte{0xaa}, c.v); !bytes.Equal(got, append([]byte{0xaa}, c.want...)) {
			t.Errorf("%d: % x, want aa % x", c.v, got, c.want)
		}
	}
}
