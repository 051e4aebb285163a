package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// build assembles a file from a raw header and data, so tests can state
// malformed headers literally.
func build(header string, data []byte) []byte {
	b := make([]byte, 8, 8+len(header)+len(data))
	binary.LittleEndian.PutUint64(b, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

// The reference implementation's own test vectors (bindings/python/tests):
// a 2x2 I32 zero tensor, once padded to 8 bytes as current versions write
// it, once unpadded as early versions did, and once with metadata.
var (
	refPadded   = "@\x00\x00\x00\x00\x00\x00\x00" + `{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}` + "    " + strings.Repeat("\x00", 16)
	refUnpadded = "<\x00\x00\x00\x00\x00\x00\x00" + `{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}` + strings.Repeat("\x00", 16)
	refMetadata = "f\x00\x00\x00\x00\x00\x00\x00" + `{"__metadata__":{"framework":"pt"},"test1":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}` + "       " + strings.Repeat("\x00", 16)
)

func TestReferenceCompatibility(t *testing.T) {
	for i, tc := range []struct {
		in   string
		name string
		meta map[string]string
	}{
		{refPadded, "test", nil},
		{refUnpadded, "test", nil},
		{refMetadata, "test1", map[string]string{"framework": "pt"}},
	} {
		f, err := Decode([]byte(tc.in), nil)
		if err != nil {
			t.Fatalf("%d: Decode: %v", i, err)
		}
		if !reflect.DeepEqual(f.Metadata, tc.meta) {
			t.Errorf("%d: metadata = %v, want %v", i, f.Metadata, tc.meta)
		}
		if len(f.Tensors) != 1 {
			t.Fatalf("%d: %d tensors, want 1", i, len(f.Tensors))
		}
		got := f.Tensors[0]
		if got.Name != tc.name || got.DType != DTypeI32 || !reflect.DeepEqual(got.Shape, []int{2, 2}) || !bytes.Equal(got.Data, make([]byte, 16)) {
			t.Errorf("%d: tensor = %+v", i, got)
		}
		// Our writer must produce what the current reference writer
		// produces (the other two vectors come from older versions).
		if enc := string(Encode(f)); tc.in == refPadded && enc != tc.in {
			t.Errorf("%d: Encode =\n%q\nwant\n%q", i, enc, tc.in)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	w := make([]float32, 6)
	for i := range w {
		w[i] = float32(i) - 2.5
	}
	w[5] = float32(math.Inf(-1))
	in := &File{
		Metadata: map[string]string{"arch": `{"layers":[128,128]}`, "note": "tab\tquote\"ctrl\x01 é"},
		Tensors: []Tensor{
			F32("layer1.weight", []int{2, 3}, w),
			{Name: "scalar", DType: DTypeF64, Shape: []int{}, Data: make([]byte, 8)},
			{Name: "empty", DType: DTypeF32, Shape: []int{0, 4}, Data: []byte{}},
			{Name: "mask", DType: DTypeBool, Shape: []int{3}, Data: []byte{1, 0, 1}},
			{Name: "ids", DType: DTypeI64, Shape: []int{1}, Data: []byte{1, 2, 3, 4, 5, 6, 7, 8}},
			{Name: "also empty", DType: DTypeU8, Shape: []int{0}, Data: nil},
			{Name: "weird \"name\"\n", DType: DTypeBF16, Shape: []int{1, 1}, Data: []byte{0x80, 0x3f}},
		},
	}
	if err := in.Validate(); err != nil {
		t.Fatal(err)
	}
	b := Encode(in)
	var buf bytes.Buffer
	n, err := EncodeTo(&buf, in)
	if err != nil || n != int64(len(b)) || !bytes.Equal(buf.Bytes(), b) {
		t.Fatalf("EncodeTo = %d, %v; differs from Encode (%d bytes)", n, err, len(b))
	}
	if hl := binary.LittleEndian.Uint64(b); hl%8 != 0 {
		t.Errorf("header length %d is not a multiple of 8", hl)
	}
	out, err := Decode(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out.Metadata, in.Metadata) {
		t.Errorf("metadata = %v, want %v", out.Metadata, in.Metadata)
	}
	// Decode returns data-offset order, which is Encode's input order; an
	// empty tensor sorts before a non-empty one at the same offset.
	var names []string
	for _, tt := range out.Tensors {
		names = append(names, tt.Name)
		want, ok := in.Tensor(tt.Name)
		if !ok {
			t.Fatalf("unexpected tensor %q", tt.Name)
		}
		if tt.DType != want.DType || !reflect.DeepEqual(tt.Shape, want.Shape) || !bytes.Equal(tt.Data, want.Data) {
			t.Errorf("tensor %q = %+v, want %+v", tt.Name, tt, want)
		}
	}
	wantNames := []string{"layer1.weight", "scalar", "empty", "mask", "ids", "also empty", "weird \"name\"\n"}
	if !reflect.DeepEqual(names, wantNames) {
		t.Errorf("order = %q, want %q", names, wantNames)
	}
	got, ok := out.Tensor("layer1.weight")
	if !ok {
		t.Fatal("layer1.weight missing")
	}
	v, err := got.Float32s(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(v, w) {
		t.Errorf("Float32s = %v, want %v", v, w)
	}
	// Encoding is deterministic and stable under a second round trip.
	if again := Encode(out); !bytes.Equal(Encode(&File{Metadata: out.Metadata, Tensors: out.Tensors}), again) {
		t.Error("Encode is not deterministic")
	}
}

func TestDecodeRejects(t *testing.T) {
	f32 := func(offs string) string {
		return `{"a":{"dtype":"F32","shape":[2],"data_offsets":` + offs + `}}`
	}
	huge := make([]byte, 8)
	binary.LittleEndian.PutUint64(huge, math.MaxUint64)
	for i, tc := range []struct {
		in   []byte
		lim  *Limits
		want string // substring of the error
	}{
		{nil, nil, "at least"},
		{[]byte{1, 2, 3}, nil, "at least"},
		{huge, nil, "exceeds the limit"},
		{build(`{}`, nil)[:9], nil, "exceeds the 1 bytes"},
		{build(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []byte{0}), &Limits{MaxHeaderBytes: 10}, "exceeds the limit"},
		{build(``, nil), nil, "start with '{'"},
		{build(` {}`, nil), nil, "start with '{'"},
		{build("{\"\xff\":1}", nil), nil, "UTF-8"},
		{build(`{`, nil), nil, "header"},
		{build(`{"a":}`, nil), nil, "tensor \"a\""},
		{build(`{} x`, nil), nil, "after the JSON object"},
		{build(`{}{}`, nil), nil, "after the JSON object"},
		{build("{}\x00", nil), nil, "after the JSON object"}, // padding is spaces; a NUL once read as the end
		{build("{} \x00x", nil), nil, "after the JSON object"},
		{build(`[]`, nil), nil, "start with '{'"},
		{build(`{"a":1}`, nil), nil, `tensor "a"`},
		{build(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, []byte{0, 0}), nil, `duplicate tensor "a"`},
		{build(`{"__metadata__":{},"__metadata__":{}}`, nil), nil, "duplicate"},
		{build(`{"__metadata__":{"k":1}}`, nil), nil, `key "k": value is not a string`},
		{build(`{"__metadata__":{"k":"v","k":"w"}}`, nil), nil, `duplicate key "k"`},
		{build(`{"__metadata__":{"k":{"n":"v"}}}`, nil), nil, `not a string`},
		{build(`{"__metadata__":[]}`, nil), nil, "want an object"},
		{build(`{"a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8)), nil, `unknown dtype "F33"`},
		{build(`{"a":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8)), nil, `unknown dtype "f32"`},
		{build(`{"a":{"dtype":7,"shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8)), nil, "dtype is not a string"},
		{build(`{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, make([]byte, 8)), nil, "not a non-negative integer"},
		{build(`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,8]}}`, make([]byte, 8)), nil, "not a non-negative integer"},
		{build(`{"a":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}}`, make([]byte, 8)), nil, "not a number"},
		{build(`{"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}}`, make([]byte, 8)), nil, "shape"},
		{build(`{"a":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}}`, make([]byte, 4)), nil, "more than 8"},
		{build(`{"a":{"dtype":"F32","shape":[1,1,1],"data_offsets":[0,4]}}`, make([]byte, 4)), &Limits{MaxRank: 2}, "more than 2"},
		{build(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}`, nil), nil, "too many elements"},
		{build(`{"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}}`, nil), nil, "overflows"},
		{build(`{"a":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,0]}}`, nil), nil, "not a non-negative integer"},
		{build(`{"a":{"shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8)), nil, "missing dtype"},
		{build(`{"a":{"dtype":"F32","data_offsets":[0,8]}}`, make([]byte, 8)), nil, "missing shape"},
		{build(`{"a":{"dtype":"F32","shape":[2]}}`, make([]byte, 8)), nil, "missing data_offsets"},
		{build(`{"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8)), nil, "duplicate field dtype"},
		{build(`{"a":{"dtype":"F32","shape":[2],"shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8)), nil, "duplicate field shape"},
		{build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"data_offsets":[0,8]}}`, make([]byte, 8)), nil, "duplicate field data_offsets"},
		{build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}}`, make([]byte, 8)), nil, `unknown field "extra"`},
		{build(`{"a":{"DTYPE":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8)), nil, `unknown field "DTYPE"`},
		{build(f32(`[0]`), make([]byte, 8)), nil, "has 1 values"},
		{build(f32(`[0,8,8]`), make([]byte, 8)), nil, "more than 2"},
		{build(f32(`[0,-8]`), make([]byte, 8)), nil, "not a non-negative integer"},
		{build(f32(`[8,0]`), make([]byte, 8)), nil, "end before begin"},
		{build(f32(`[0,4]`), make([]byte, 4)), nil, "needs 8 bytes"},
		{build(f32(`[0,12]`), make([]byte, 12)), nil, "needs 8 bytes"},
		{build(f32(`[0,8]`), make([]byte, 4)), nil, "beyond the 4-byte buffer"},
		{build(f32(`[0,8]`), make([]byte, 9)), nil, "1 trailing bytes"},
		{build(f32(`[4,12]`), make([]byte, 12)), nil, "hole at byte 0"},
		{build(f32(`[0,18446744073709551615]`), make([]byte, 8)), nil, "beyond"},
		{build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, make([]byte, 12)), nil, `tensor "b": data_offsets [4,12] overlap`},
		{build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8)), nil, "overlap"},
		{build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}`, make([]byte, 16)), nil, "hole at byte 8"},
		{build(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, make([]byte, 2)), &Limits{MaxTensors: 1}, "more than 1 tensors"},
	} {
		f, err := Decode(tc.in, tc.lim)
		if err == nil {
			t.Errorf("%d: Decode accepted %q: %+v", i, tc.in, f)
			continue
		}
		if !errors.Is(err, ErrFormat) {
			t.Errorf("%d: error %v does not wrap ErrFormat", i, err)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d: error %q does not mention %q", i, err, tc.want)
		}
	}
}

func TestDecodeAccepts(t *testing.T) {
	for i, tc := range []struct {
		in     []byte
		shapes map[string][]int
	}{
		{build(`{}`, nil), map[string][]int{}},
		{build("{}\t\r\n ", nil), map[string][]int{}},
		{build(`{"__metadata__":null}`, nil), map[string][]int{}},
		{build(` `[1:]+`{"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}`, make([]byte, 4)), map[string][]int{"s": {}}},
		{build(`{"z":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}`, nil), map[string][]int{"z": {0}}},
		// Out-of-order keys are fine as long as the offsets tile the buffer.
		{build(`{"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"a":{"dtype":"U16","shape":[],"data_offsets":[2,4]},"c":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, make([]byte, 4)),
			map[string][]int{"c": {1}, "b": {1}, "a": {}}},
		{build(`{"e\u00e9\n":{"dtype":"F8_E4M3","shape":[1,1],"data_offsets":[0,1]}}`, make([]byte, 1)), map[string][]int{"eé\n": {1, 1}}},
	} {
		f, err := Decode(tc.in, nil)
		if err != nil {
			t.Errorf("%d: %v", i, err)
			continue
		}
		if len(f.Tensors) != len(tc.shapes) {
			t.Errorf("%d: %d tensors, want %d", i, len(f.Tensors), len(tc.shapes))
		}
		for _, tt := range f.Tensors {
			if want, ok := tc.shapes[tt.Name]; !ok || len(want) != len(tt.Shape) || (len(want) > 0 && !reflect.DeepEqual(want, tt.Shape)) {
				t.Errorf("%d: tensor %q shape %v, want %v", i, tt.Name, tt.Shape, want)
			}
		}
	}
}

func TestDecodeOrderAndAliasing(t *testing.T) {
	b := build(`{"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]},"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}`, []byte{1, 2, 3, 4})
	f, err := Decode(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.Tensors[0].Name != "a" || f.Tensors[1].Name != "b" {
		t.Fatalf("order %q, %q; want ascending offsets", f.Tensors[0].Name, f.Tensors[1].Name)
	}
	a := f.Tensors[0].Data
	if cap(a) != 2 {
		t.Errorf("cap(Data) = %d, want 2 so appends cannot clobber the next tensor", cap(a))
	}
	b[len(b)-4] = 9 // zero copy: the tensor sees the input change
	if a[0] != 9 {
		t.Error("Data does not alias the input")
	}
}

func TestFloat32s(t *testing.T) {
	v := []float32{1, -2, 3.5, float32(math.NaN()), math.MaxFloat32, math.SmallestNonzeroFloat32}
	tt := F32("w", []int{2, 3}, v)
	for i := range v {
		if got := math.Float32frombits(binary.LittleEndian.Uint32(tt.Data[4*i:])); math.Float32bits(got) != math.Float32bits(v[i]) {
			t.Errorf("F32 byte %d = %v, want %v", i, got, v[i])
		}
	}
	got, err := tt.Float32s(nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range v {
		if math.Float32bits(got[i]) != math.Float32bits(v[i]) {
			t.Errorf("Float32s[%d] = %v, want %v", i, got[i], v[i])
		}
	}
	// Append semantics: existing content is kept, spare capacity reused.
	buf := make([]float32, 1, 16)
	buf[0] = 42
	out, err := tt.Float32s(buf)
	if err != nil || len(out) != 7 || out[0] != 42 || out[1] != 1 || &out[0] != &buf[0] {
		t.Errorf("Float32s(buf) = %v, %v; want 42 followed by the values in buf's storage", out, err)
	}
	if n := tt.NumElements(); n != 6 {
		t.Errorf("NumElements = %d", n)
	}

	for i, bad := range []Tensor{
		{Name: "x", DType: DTypeF64, Shape: []int{1}, Data: make([]byte, 8)},
		{Name: "x", DType: DTypeF32, Shape: []int{2}, Data: make([]byte, 4)},
		{Name: "x", DType: DTypeF32, Shape: []int{-1}, Data: nil},
		F32("x", []int{3}, []float32{1, 2}),
	} {
		if _, err := bad.Float32s(nil); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), `"x"`) {
			t.Errorf("%d: Float32s error = %v, want ErrFormat naming the tensor", i, err)
		}
	}
}

func TestNumElements(t *testing.T) {
	for i, tc := range []struct {
		shape []int
		want  int
	}{
		{nil, 1}, {[]int{}, 1}, {[]int{0}, 0}, {[]int{3, 4}, 12}, {[]int{2, -1}, -1},
		{[]int{math.MaxInt, 2}, -1}, {[]int{1 << 32, 1 << 32}, -1}, {[]int{0, math.MaxInt}, 0},
	} {
		if got := (Tensor{Shape: tc.shape}).NumElements(); got != tc.want {
			t.Errorf("%d: NumElements(%v) = %d, want %d", i, tc.shape, got, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := F32("a", []int{1}, []float32{1})
	for i, tc := range []struct {
		f    File
		want string
	}{
		{File{Tensors: []Tensor{ok, ok}}, `duplicate tensor "a"`},
		{File{Tensors: []Tensor{F32("__metadata__", []int{1}, []float32{1})}}, "reserved"},
		{File{Tensors: []Tensor{F32("\xff", []int{1}, []float32{1})}}, "UTF-8"},
		{File{Tensors: []Tensor{F32("b", []int{2}, []float32{1})}}, `tensor "b": 4 data bytes`},
		{File{Tensors: []Tensor{{Name: "c", DType: "X", Shape: []int{1}, Data: []byte{0}}}}, `unknown dtype "X"`},
		{File{Tensors: []Tensor{{Name: "d", DType: DTypeU8, Shape: []int{-1}}}}, "negative"},
		{File{Metadata: map[string]string{"k": "\xff"}}, "UTF-8"},
	} {
		err := tc.f.Validate()
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d: Validate = %v, want ErrFormat mentioning %q", i, err, tc.want)
		}
		if _, err := EncodeTo(&bytes.Buffer{}, &tc.f); !errors.Is(err, ErrFormat) {
			t.Errorf("%d: EncodeTo = %v, want ErrFormat", i, err)
		}
		// Whatever Encode makes of an invalid file, Decode must refuse it
		// rather than misread it.
		if _, err := Decode(Encode(&tc.f), nil); err == nil {
			t.Errorf("%d: Decode accepted Encode of an invalid file", i)
		}
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n <= 0 {
		return 0, errors.New("disk full")
	}
	w.n--
	return len(p), nil
}

func TestEncodeToWriteError(t *testing.T) {
	f := &File{Tensors: []Tensor{F32("a", []int{1}, []float32{1})}}
	for i := range 2 {
		if _, err := EncodeTo(&failWriter{n: i}, f); err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("%d: EncodeTo = %v, want the writer's error", i, err)
		}
	}
}

func TestDTypeSize(t *testing.T) {
	want := map[DType]int{"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
		"U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "": 0, "f32": 0, "F4": 0}
	for d, n := range want {
		if got := d.Size(); got != n {
			t.Errorf("%q.Size() = %d, want %d", d, got, n)
		}
	}
}

func TestDuplicateAmongMany(t *testing.T) {
	for i, n := range []int{3, 40} {
		var h strings.Builder
		h.WriteString("{")
		for j := range n {
			if j > 0 {
				h.WriteString(",")
			}
			name := "t" + strings.Repeat("x", j)
			if j == n-1 {
				name = "t" // repeats the first
			}
			h.WriteString(`"` + name + `":{"dtype":"U8","shape":[1],"data_offsets":[` + itoa(j) + `,` + itoa(j+1) + `]}`)
		}
		h.WriteString("}")
		_, err := Decode(build(h.String(), make([]byte, n)), nil)
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), `duplicate tensor "t"`) {
			t.Errorf("%d: err = %v", i, err)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// AppendEncode writes after what dst holds, the same bytes Encode writes,
// and into a reused buffer without allocating: what a plugin's per-call
// output encoding relies on.
func TestAppendEncode(t *testing.T) {
	f := &File{Tensors: []Tensor{
		F32("z", []int{1, 3}, []float32{1, 2, 3}),
		F32("a", []int{2}, []float32{4, 5}),
	}, Metadata: map[string]string{"k": "v"}}
	want := Encode(f)
	got := AppendEncode([]byte("prefix"), f)
	if string(got[:6]) != "prefix" || !bytes.Equal(got[6:], want) {
		t.Fatalf("AppendEncode after a prefix =\n%q\nwant prefix then\n%q", got, want)
	}
	if _, err := Decode(got[6:], nil); err != nil {
		t.Fatal(err)
	}
	one := &File{Tensors: []Tensor{F32("input", []int{1, 784}, make([]float32, 784))}}
	buf := AppendEncode(nil, one)
	if allocs := testing.AllocsPerRun(100, func() { buf = AppendEncode(buf[:0], one) }); allocs != 0 {
		t.Errorf("AppendEncode into a reused buffer: %v allocations, want 0", allocs)
	}
}

// Float32View aliases aligned data, copies misaligned data, and checks
// like Float32s.
func TestFloat32View(t *testing.T) {
	want := []float32{1.5, -2, 3.25}
	enc := Encode(&File{Tensors: []Tensor{F32("x", []int{3}, want)}})
	f, err := Decode(enc, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := f.Tensors[0].Float32View()
	if err != nil || !slices.Equal(v, want) {
		t.Fatalf("view = %v, %v", v, err)
	}
	f.Tensors[0].Data[0] ^= 0x80 // flips a mantissa bit of v[0]
	if v[0] == want[0] {
		t.Error("aligned data was copied, not viewed")
	}
	// The same bytes one byte off alignment: a copy, same values.
	buf := make([]byte, 13)
	copy(buf[1:], f.Tensors[0].Data)
	odd := Tensor{Name: "x", DType: DTypeF32, Shape: []int{3}, Data: buf[1:]}
	c, err := odd.Float32View()
	if err != nil || len(c) != 3 || c[1] != -2 || c[2] != 3.25 {
		t.Fatalf("misaligned view = %v, %v", c, err)
	}
	if _, err := (Tensor{Name: "i", DType: DTypeI32, Shape: []int{1}, Data: make([]byte, 4)}).Float32View(); !errors.Is(err, ErrFormat) {
		t.Errorf("I32 data: %v", err)
	}
	if _, err := (Tensor{Name: "s", DType: DTypeF32, Shape: []int{2}, Data: make([]byte, 4)}).Float32View(); !errors.Is(err, ErrFormat) {
		t.Errorf("short data: %v", err)
	}
}
