package safetensors

import (
	"bytes"
	"reflect"
	"testing"
)

func FuzzDecode(f *testing.F) {
	f.Add([]byte(refPadded))
	f.Add([]byte(refUnpadded))
	f.Add([]byte(refMetadata))
	f.Add(build(`{}`, nil))
	f.Add(build(`{"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"a":{"dtype":"U16","shape":[],"data_offsets":[2,4]},"c":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, make([]byte, 4)))
	f.Add(build(`{"z":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"y":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]}}`, nil))
	f.Add(build(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}`, nil))
	f.Add(Encode(&File{Metadata: map[string]string{"k": "v\"\\\x00"}, Tensors: []Tensor{F32("w\u2028", []int{2, 1}, []float32{1, 2})}}))
	lim := &Limits{MaxHeaderBytes: 1 << 16, MaxTensors: 64, MaxRank: 4}
	f.Fuzz(func(t *testing.T, b []byte) {
		// ReadHeader accepts every header Decode accepts, reads only the
		// header, and declares exactly the data that follows it.
		prefix, dataLen, herr := ReadHeader(bytes.NewReader(b), lim)
		d, err := Decode(b, lim)
		if err != nil {
			return
		}
		if herr != nil {
			t.Fatalf("Decode accepts what ReadHeader refuses: %v", herr)
		}
		if !bytes.Equal(prefix, b[:len(prefix)]) || int64(len(b)-len(prefix)) != dataLen {
			t.Fatalf("ReadHeader: %d-byte prefix and %d bytes of data, the file has %d bytes", len(prefix), dataLen, len(b))
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("decoded file does not validate: %v", err)
		}
		for _, tt := range d.Tensors {
			if tt.DType == DTypeF32 {
				if _, err := tt.Float32s(nil); err != nil {
					t.Fatalf("Float32s of a decoded tensor: %v", err)
				}
			}
		}
		enc := Encode(d)
		d2, err := Decode(enc, nil)
		if err != nil {
			t.Fatalf("re-decode: %v\n%q", err, enc)
		}
		if len(d.Metadata) != len(d2.Metadata) || (len(d.Metadata) > 0 && !reflect.DeepEqual(d.Metadata, d2.Metadata)) {
			t.Fatalf("metadata %v != %v", d.Metadata, d2.Metadata)
		}
		if len(d.Tensors) != len(d2.Tensors) {
			t.Fatalf("%d tensors, re-decoded %d", len(d.Tensors), len(d2.Tensors))
		}
		for _, a := range d.Tensors {
			b, ok := d2.Tensor(a.Name)
			if !ok || a.DType != b.DType || !bytes.Equal(a.Data, b.Data) || len(a.Shape) != len(b.Shape) || (len(a.Shape) > 0 && !reflect.DeepEqual(a.Shape, b.Shape)) {
				t.Fatalf("tensor %q: %+v != %+v", a.Name, a, b)
			}
		}
		if enc2 := Encode(d2); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable:\n%q\n%q", enc, enc2)
		}
	})
}
