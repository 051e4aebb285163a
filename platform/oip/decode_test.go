package oip

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestDecodeRequestDatatypes(t *testing.T) {
	for i, tc := range []struct {
		body  string
		shape []int64
		f32   []float32
		bytes []string
	}{
		{`{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[1,2.5,-3e2,0.0039215684]}]}`, []int64{2, 2}, []float32{1, 2.5, -300, 0.0039215684}, nil},
		{`{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[[1,2.5],[-3e2,0.0039215684]]}]}`, []int64{2, 2}, []float32{1, 2.5, -300, 0.0039215684}, nil},
		{`{"inputs":[{"name":"x","shape":[2,1,2],"datatype":"FP32","data":[[[1,2]],[[3,4]]]}]}`, []int64{2, 1, 2}, []float32{1, 2, 3, 4}, nil},
		{`{"inputs":[{"name":"x","shape":[3],"datatype":"FP32","data":[3.4028234663852886e38,-1.401298464324817e-45,0.1]}]}`, []int64{3}, []float32{math.MaxFloat32, -math.SmallestNonzeroFloat32, 0.1}, nil},
		{`{"inputs":[{"name":"x","shape":[2],"datatype":"FP64","data":[0.1,1e30]}]}`, []int64{2}, []float32{0.1, 1e30}, nil},
		{`{"inputs":[{"name":"x","shape":[2],"datatype":"FP16","data":[65504,-0.5]}]}`, []int64{2}, []float32{65504, -0.5}, nil},
		{`{"inputs":[{"name":"x","shape":[3],"datatype":"BOOL","data":[true,false,true]}]}`, []int64{3}, []float32{1, 0, 1}, nil},
		{`{"inputs":[{"name":"x","shape":[2],"datatype":"UINT8","data":[0,255]}]}`, []int64{2}, []float32{0, 255}, nil},
		{`{"inputs":[{"name":"x","shape":[2],"datatype":"UINT16","data":[0,65535]}]}`, []int64{2}, []float32{0, 65535}, nil},
		{`{"inputs":[{"name":"x","shape":[2],"datatype":"UINT32","data":[0,4294967295]}]}`, []int64{2}, []float32{0, 4294967295}, nil},
		{`{"inputs":[{"name":"x","shape":[2],"datatype":"UINT64","data":[0,18446744073709551615]}]}`, []int64{2}, []float32{0, 18446744073709551615}, nil},
		{`{"inputs":[{"name":"x","shape":[2],"datatype":"INT8","data":[-128,127]}]}`, []int64{2}, []float32{-128, 127}, nil},
		{`{"inputs":[{"name":"x","shape":[2],"datatype":"INT16","data":[-32768,32767]}]}`, []int64{2}, []float32{-32768, 32767}, nil},
		{`{"inputs":[{"name":"x","shape":[2],"datatype":"INT32","data":[-2147483648,2147483647]}]}`, []int64{2}, []float32{-2147483648, 2147483647}, nil},
		{`{"inputs":[{"name":"x","shape":[3],"datatype":"INT64","data":[-9223372036854775808,9223372036854775807,2.0]}]}`, []int64{3}, []float32{-9223372036854775808, 9223372036854775807, 2}, nil},
		{`{"inputs":[{"name":"x","shape":[1,2],"datatype":"BYTES","data":["a\u00e9\n","\ud83d\ude00"]}]}`, []int64{1, 2}, nil, []string{"aé\n", "😀"}},
		{`{"inputs":[{"name":"x","shape":[],"datatype":"FP32","data":[7]}]}`, []int64{}, []float32{7}, nil},
		{`{"inputs":[{"name":"x","shape":[0],"datatype":"FP32","data":[]}]}`, []int64{0}, []float32{}, nil},
		{`{"inputs":[{"name":"x","shape":[2,0],"datatype":"FP32","data":[[],[]]}]}`, []int64{2, 0}, []float32{}, nil},
		{`{"inputs":[{"name":"x","shape":[2,0],"datatype":"FP32","data":[]}]}`, []int64{2, 0}, []float32{}, nil},
		{`{"inputs":[{"data":[[1,2],[3,4]],"datatype":"INT8","shape":[2,2],"name":"x"}]}`, []int64{2, 2}, []float32{1, 2, 3, 4}, nil},
		{" \n{\"inputs\" : [ { \"data\" : [ [ 1 , 2 ] ] , \"datatype\":\"FP32\",\"shape\":[1,2],\"name\":\"x\", \"extra\": {\"a\":[1,{}]} } ], \"future\": null } \t", []int64{1, 2}, []float32{1, 2}, nil},
	} {
		req, err := DecodeRequest([]byte(tc.body), -1, nil)
		if err != nil {
			t.Errorf("%d: %v", i, err)
			continue
		}
		in := req.Inputs[0]
		if in.Name != "x" || !reflect.DeepEqual(in.Shape, tc.shape) {
			t.Errorf("%d: name %q shape %v", i, in.Name, in.Shape)
		}
		if tc.bytes != nil {
			if len(in.Bytes) != len(tc.bytes) || in.F32 != nil {
				t.Fatalf("%d: Bytes = %q", i, in.Bytes)
			}
			for j, b := range in.Bytes {
				if string(b) != tc.bytes[j] {
					t.Errorf("%d: Bytes[%d] = %q, want %q", i, j, b, tc.bytes[j])
				}
			}
			continue
		}
		if len(in.F32) != len(tc.f32) {
			t.Fatalf("%d: F32 = %v, want %v", i, in.F32, tc.f32)
		}
		for j := range in.F32 {
			if math.Float32bits(in.F32[j]) != math.Float32bits(tc.f32[j]) {
				t.Errorf("%d: F32[%d] = %v, want %v", i, j, in.F32[j], tc.f32[j])
			}
		}
	}
}

// The fast float path must agree bit for bit with strconv, including on
// float32 midpoints such as 2^24+1, where double rounding would go wrong.
func TestFastFloat(t *testing.T) {
	cases := []string{"0", "-0", "1", "0.5", "0.1", "0.2", "0.3", "128", "9999999", "0.0039215", "1.000001",
		"0.0000000001", "123.4567", "-8388607", "16777215", "16777217", "16777219", "-16777217", "33554435",
		"0.0000001", "3.333333", "1e10", "1E-5", "2.5e+3", "123456789012345", "1234567890123456",
		"1e22", "1e23", "1e-22", "1e-23", "4.7e-38", "1.17549435e-38", "3.4028234e38", "0.000000000000000000000000000000000000000000001"}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200000 {
		digits := strconv.FormatUint(rng.Uint64N(1<<uint(rng.IntN(54))), 10)
		if p := rng.IntN(len(digits) + 1); p < len(digits) && rng.IntN(2) == 0 {
			digits = digits[:p] + "." + digits[p:]
			if digits[0] == '.' {
				digits = "0" + digits
			}
		}
		if rng.IntN(3) == 0 {
			digits += "e" + strconv.Itoa(rng.IntN(60)-30)
		}
		cases = append(cases, digits)
	}
	for i, c := range cases {
		s := newScanner([]byte(c), 0)
		raw, f, exact, err := s.NumValue()
		if err != nil || string(raw) != c {
			t.Fatalf("%d: numValue(%s) = %q, %v", i, c, raw, err)
		}
		want64, _ := strconv.ParseFloat(c, 64)
		if exact && f != want64 {
			t.Fatalf("%d: %s: fast float64 %v, strconv %v", i, c, f, want64)
		}
		want32, err32 := strconv.ParseFloat(c, 32)
		got, err := convertNumber(raw, f, exact, FP32)
		if (err != nil) != (err32 != nil) || (err == nil && math.Float32bits(got) != math.Float32bits(float32(want32))) {
			t.Fatalf("%d: %s -> %v (%v), strconv %v (%v)", i, c, got, err, float32(want32), err32)
		}
	}
}

func TestDecodeRequestFields(t *testing.T) {
	body := `{"id":"42","parameters":{"binary_data_output":true,"k":"v","n":1.5},
	  "inputs":[{"name":"a","shape":[1],"datatype":"FP32","parameters":{"p":false},"data":[1]},
	            {"name":"b","shape":[1],"datatype":"INT32","data":[2]}],
	  "outputs":[{"name":"o1"},{"name":"o2","parameters":{"binary_data":false,"classification":3}}]}`
	req, err := DecodeRequest([]byte(body), -1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if req.ID != "42" || !req.BinaryOutput || req.Parameters["k"] != "v" || req.Parameters["n"] != jsonNumber("1.5") {
		t.Errorf("request = %+v", req)
	}
	if len(req.Inputs) != 2 || req.Inputs[0].Parameters["p"] != false || req.Inputs[1].F32[0] != 2 {
		t.Errorf("inputs = %+v", req.Inputs)
	}
	if len(req.Outputs) != 2 || !req.Outputs[0].Binary || req.Outputs[1].Binary || req.Outputs[1].Parameters["classification"] != jsonNumber("3") {
		t.Errorf("outputs = %+v", req.Outputs)
	}
}

// The protocol's words are read without a copy when plain and the same
// when escaped; other strings keep their own bytes.
func TestDecodeRequestWords(t *testing.T) {
	body := `{"inputs":[{"name":"a","shape":[1],"datatype":"\u0046P32","parameters":{"binary_d\u0061ta_size":4,"FP32x":1}},
	  {"name":"b","shape":[1],"datatype":"INT64","data":[7]}]}`
	bin := []byte{0, 0, 128, 63}
	req, err := DecodeRequest(append([]byte(body), bin...), len(body), nil)
	if err != nil {
		t.Fatal(err)
	}
	in := req.Inputs[0]
	if in.Datatype != FP32 || in.F32[0] != 1 || in.Parameters["FP32x"] != jsonNumber("1") || req.Inputs[1].Datatype != INT64 {
		t.Fatalf("inputs = %+v", req.Inputs)
	}
	if _, err := DecodeRequest([]byte(`{"inputs":[{"name":"a","shape":[1],"datatype":"FP32 ","data":[1]}]}`), -1, nil); err == nil {
		t.Fatal(`datatype "FP32 " accepted`)
	}
}

func TestDecodeRequestRejects(t *testing.T) {
	in := func(fields string) string { return `{"inputs":[{` + fields + `}]}` }
	fp := func(shape, data string) string {
		return in(`"name":"x","shape":` + shape + `,"datatype":"FP32","data":` + data)
	}
	typed := func(dt, data string) string {
		return in(`"name":"x","shape":[1],"datatype":"` + dt + `","data":` + data)
	}
	for i, tc := range []struct {
		body string
		lim  *Limits
		want string
	}{
		{``, nil, "want a JSON object"},
		{`[]`, nil, "want a JSON object"},
		{`{}`, nil, `missing "inputs"`},
		{`{"inputs":[]}`, nil, `"inputs" is empty`},
		{`{"inputs":{}}`, nil, "inputs"},
		{`{"inputs":[1]}`, nil, "inputs[0]"},
		{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]} x`, nil, "after the JSON object"},
		{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]`, nil, "end of JSON"},
		{`{"id":1,"inputs":[]}`, nil, "id"},
		{`{"id":"a","id":"b","inputs":[]}`, nil, `duplicate "id"`},
		{`{"parameters":{"a":[1]},"inputs":[]}`, nil, "string, number or boolean"},
		{`{"parameters":{"a":1,"a":2},"inputs":[]}`, nil, `duplicate parameter "a"`},
		{`{"parameters":{"binary_data_output":"yes"},` + fp(`[1]`, `[1]`)[1:], nil, "binary_data_output must be a boolean"},
		{in(`"shape":[1],"datatype":"FP32","data":[1]`), nil, `missing "name"`},
		{in(`"name":"x","datatype":"FP32","data":[1]`), nil, `missing "shape"`},
		{in(`"name":"x","shape":[1],"data":[1]`), nil, `missing "datatype"`},
		{in(`"name":"x","shape":[1],"datatype":"FP32"`), nil, `missing "data"`},
		{in(`"name":"","shape":[1],"datatype":"FP32","data":[1]`), nil, "empty name"},
		{in(`"name":"a\u0001","shape":[1],"datatype":"FP32","data":[1]`), nil, "control character"},
		{in(`"name":"` + strings.Repeat("n", 257) + `","shape":[1],"datatype":"FP32","data":[1]`), nil, "longer than 256"},
		{in(`"name":"x","name":"y","shape":[1],"datatype":"FP32","data":[1]`), nil, "duplicate"},
		{in(`"name":7,"shape":[1],"datatype":"FP32","data":[1]`), nil, "want a string"},
		{in(`"name":"x","shape":[1],"datatype":"FP128","data":[1]`), nil, `unknown datatype "FP128"`},
		{in(`"name":"x","shape":[1],"datatype":"fp32","data":[1]`), nil, `unknown datatype "fp32"`},
		{in(`"name":"x","shape":"1","datatype":"FP32","data":[1]`), nil, "shape"},
		{fp(`[-1]`, `[1]`), nil, "not a non-negative integer"},
		{fp(`[1.5]`, `[1]`), nil, "not a non-negative integer"},
		{fp(`[1,1,1,1,1,1,1,1,1]`, `[1]`), nil, "more than 8 dimensions"},
		{fp(`[1]`, `1`), nil, "want an array"},
		{fp(`[1]`, `{"a":1}`), nil, "want an array"},
		{fp(`[2]`, `[1]`), nil, "needs 2 elements"},
		{fp(`[2]`, `[1,2,3]`), nil, "more than the 2 elements"},
		{fp(`[1000]`, `[1,2,3]`), nil, "holds fewer"},
		{fp(`[2,2]`, `[1,2,3]`), nil, "needs 4 elements, data has 3"},
		{fp(`[2,2]`, `[[1,2],[3]]`), nil, "1 items at dimension 1"},
		{fp(`[2,2]`, `[[1,2],[3,4],[5,6]]`), nil, "more than 2 items at dimension 0"},
		{fp(`[2,2]`, `[[1,2],[3,4,5]]`), nil, "more than 2 items at dimension 1"},
		{fp(`[2,2]`, `[[1,2],3,4]`), nil, "dimension 1"},
		{fp(`[2,2]`, `[[1,[2]],[3,4]]`), nil, "element 1"},
		{fp(`[2,2,1]`, `[[1,2],[3,4]]`), nil, "dimension 2"},
		{fp(`[4]`, `[[1,2],[3,4]]`), nil, "element 0"},
		{fp(`[2]`, `[1,"2"]`), nil, `input "x": data element 1`},
		{fp(`[2]`, `[1,"NaN"]`), nil, `data element 1`},
		{fp(`[2]`, `[1,NaN]`), nil, `input "x": data element 1: offset 63: unexpected 'N'`},
		{in(`"name":"x","data":[1,NaN],"shape":[2],"datatype":"FP32"`), nil, `inputs[0]: data: offset 33: unexpected 'N'`},
		{fp(`[2]`, `[1,Infinity]`), nil, `data element 1`},
		{fp(`[2]`, `[1,true]`), nil, `data element 1`},
		{fp(`[2]`, `[1,null]`), nil, `data element 1`},
		{fp(`[1]`, `[1e39]`), nil, "out of FP32 range"},
		{fp(`[1]`, `[-1e39]`), nil, "out of FP32 range"},
		{fp(`[1]`, `[01]`), nil, "data"},
		{fp(`[1]`, `[1.]`), nil, "malformed number"},
		{fp(`[1]`, `[.5]`), nil, "number"},
		{fp(`[1]`, `[1e]`), nil, "malformed number"},
		{fp(`[1]`, `[+1]`), nil, "number"},
		{fp(`[2]`, `[1 2]`), nil, "','"},
		{fp(`[2]`, `[1,]`), nil, "number"},
		{typed("FP64", `[1e300]`), nil, "out of float32 range"},
		{typed("FP64", `[1e400]`), nil, "out of range"},
		{typed("FP16", `[65505]`), nil, "out of FP16 range"},
		{typed("FP16", `[-1e6]`), nil, "out of FP16 range"},
		{typed("UINT8", `[256]`), nil, "out of UINT8 range"},
		{typed("UINT8", `[-1]`), nil, "out of UINT8 range"},
		{typed("UINT8", `[1.5]`), nil, "not an integer"},
		{typed("INT8", `[-129]`), nil, "out of INT8 range"},
		{typed("INT16", `[32768]`), nil, "out of INT16 range"},
		{typed("UINT16", `[65536]`), nil, "out of UINT16 range"},
		{typed("INT32", `[2147483648]`), nil, "out of INT32 range"},
		{typed("UINT32", `[4294967296]`), nil, "out of UINT32 range"},
		{typed("UINT64", `[18446744073709551616e10]`), nil, "out of UINT64 range"},
		{typed("INT64", `[-1e19]`), nil, "out of INT64 range"},
		{typed("INT32", `["1"]`), nil, "want a number"},
		{typed("BOOL", `[1]`), nil, "true or false"},
		{typed("BOOL", `["true"]`), nil, "true or false"},
		{typed("BYTES", `[1]`), nil, "want a string"},
		{typed("BYTES", "[\"\xff\"]"), nil, "UTF-8"},
		{typed("BYTES", "[\"a\nb\"]"), nil, "control character"},
		{typed("BYTES", `["\x"]`), nil, "escape"},
		{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]},{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`, nil, `duplicate input "x"`},
		{fp(`[1]`, `[1]`)[:len(fp(`[1]`, `[1]`))-1] + `,"outputs":[{"name":"o"},{"name":"o"}]}`, nil, `duplicate output "o"`},
		{fp(`[1]`, `[1]`)[:len(fp(`[1]`, `[1]`))-1] + `,"outputs":[{}]}`, nil, `outputs[0]: missing "name"`},
		{fp(`[1]`, `[1]`)[:len(fp(`[1]`, `[1]`))-1] + `,"outputs":[{"name":"o","parameters":{"binary_data":1}}]}`, nil, "binary_data must be a boolean"},
		{fp(`[1]`, `[1]`)[:len(fp(`[1]`, `[1]`))-1] + `,"outputs":"o"}`, nil, "outputs"},
		{fp(`[1]`, `[1]`), &Limits{MaxBodyBytes: 10}, "exceeds the limit"},
		{fp(`[2,3]`, `[1,2,3,4,5,6]`), &Limits{MaxElements: 5}, "more than 5 elements"},
		{fp(`[4294967296,4294967296]`, `[1]`), nil, "more than 16777216 elements"},
		{fp(`[9223372036854775807,9223372036854775807]`, `[1]`), nil, "elements"},
		{`{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1]},{"name":"b","shape":[1],"datatype":"FP32","data":[1]}]}`, &Limits{MaxInputs: 1}, "more than 1 inputs"},
		{fp(`[1]`, strings.Repeat("[", 100)+strings.Repeat("]", 100)), nil, "data element 0"},
		{in(`"data":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `,"name":"x","shape":[1],"datatype":"FP32"`), nil, "nesting"},
		{in(`"data":[[1,2],[3,4]],"name":"x","shape":[2,2],"datatype":"FP32","parameters":{"binary_data_size":16}`), nil, `both "data" and binary_data_size`},
		{in(`"data":[1],"name":"x","shape":[2],"datatype":"FP32"`), nil, "needs 2 elements, data has 1"},
		{`{"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `,"inputs":[]}`, nil, "nesting"},
		{in(`"name":"x","shape":[1],"datatype":"FP32","data":[1],"parameters":{"binary_data_size":4}`), nil, `both "data" and binary_data_size`},
		{in(`"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":-4}`), nil, "non-negative integer"},
		{in(`"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":"4"}`), nil, "non-negative integer"},
		{in(`"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}`), nil, "without an Inference-Header-Content-Length"},
		// The specification's own example sends 1 BOOL for shape [3]:
		// refused, as the element count must match.
		{`{"id":"42","inputs":[{"name":"input0","shape":[2,2],"datatype":"UINT32","data":[1,2,3,4]},{"name":"input1","shape":[3],"datatype":"BOOL","data":[true]}],"outputs":[{"name":"output0"}]}`, nil, `input "input1": shape [3] needs 3 elements, data has 1`},
	} {
		_, err := DecodeRequest([]byte(tc.body), -1, tc.lim)
		if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d: err = %v, want ErrBadRequest mentioning %q\nbody: %.200s", i, err, tc.want, tc.body)
		}
	}
}

func TestTooLargeSentinel(t *testing.T) {
	_, err := DecodeRequest([]byte(`{"inputs":[{"name":"x","shape":[9],"datatype":"FP32","data":[1]}]}`), -1, &Limits{MaxElements: 4})
	if !errors.Is(err, ErrTooLarge) || !errors.Is(err, ErrBadRequest) {
		t.Errorf("err = %v, want both ErrTooLarge and ErrBadRequest", err)
	}
	_, err = DecodeRequest([]byte(`{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1]}]}`), -1, nil)
	if errors.Is(err, ErrTooLarge) {
		t.Errorf("err = %v is not about size", err)
	}
}

// binBody builds a request whose inputs are all binary.
func binBody(header string, bins ...[]byte) ([]byte, int) {
	b := []byte(header)
	n := len(b)
	for _, x := range bins {
		b = append(b, x...)
	}
	return b, n
}

func le32(v ...float32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

func TestBinaryInputs(t *testing.T) {
	header := `{"inputs":[` +
		`{"name":"a","shape":[1,2],"datatype":"FP32","parameters":{"binary_data_size":8}},` +
		`{"name":"j","shape":[1],"datatype":"INT32","data":[5]},` +
		`{"name":"s","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":11}},` +
		`{"name":"h","shape":[2],"datatype":"FP16","parameters":{"binary_data_size":4}},` +
		`{"name":"i","shape":[2],"datatype":"INT16","parameters":{"binary_data_size":4}},` +
		`{"name":"u","shape":[1],"datatype":"UINT64","parameters":{"binary_data_size":8}},` +
		`{"name":"d","shape":[1],"datatype":"FP64","parameters":{"binary_data_size":8}},` +
		`{"name":"t","shape":[2],"datatype":"BOOL","parameters":{"binary_data_size":2}}` +
		`],"outputs":[{"name":"o","parameters":{"binary_data":true}}]}`
	bytesData := append(binary.LittleEndian.AppendUint32(nil, 3), "abc"...)
	bytesData = binary.LittleEndian.AppendUint32(bytesData, 0)
	body, hl := binBody(header,
		le32(1.5, -2),
		bytesData,
		[]byte{0x00, 0x3c, 0x00, 0xc0}, // FP16 1, -2
		[]byte{0xff, 0xff, 0x02, 0x00}, // INT16 -1, 2
		binary.LittleEndian.AppendUint64(nil, 1<<40),
		binary.LittleEndian.AppendUint64(nil, math.Float64bits(0.25)),
		[]byte{1, 0},
	)
	req, err := DecodeRequest(body, hl, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]float32{"a": {1.5, -2}, "j": {5}, "h": {1, -2}, "i": {-1, 2}, "u": {1 << 40}, "d": {0.25}, "t": {1, 0}}
	for _, in := range req.Inputs {
		if in.Name == "s" {
			if len(in.Bytes) != 2 || string(in.Bytes[0]) != "abc" || len(in.Bytes[1]) != 0 || !in.Binary {
				t.Errorf("s = %q", in.Bytes)
			}
			continue
		}
		if !reflect.DeepEqual(in.F32, want[in.Name]) || in.Binary != (in.Name != "j") {
			t.Errorf("%s = %v (binary %v), want %v", in.Name, in.F32, in.Binary, want[in.Name])
		}
	}
	if !req.Outputs[0].Binary {
		t.Error("binary_data output parameter lost")
	}
}

func TestBinaryRejects(t *testing.T) {
	one := func(dt string, shape string, size int) string {
		return `{"inputs":[{"name":"x","shape":` + shape + `,"datatype":"` + dt + `","parameters":{"binary_data_size":` + itoa(size) + `}}]}`
	}
	nan := le32(float32(math.NaN()))
	for i, tc := range []struct {
		header string
		bin    []byte
		hl     int // -2: use len(header)
		want   string
	}{
		{one("FP32", "[2]", 8), le32(1), -2, "exceeds the 4 binary bytes left"},
		{one("FP32", "[2]", 4), le32(1), -2, "needs 8 bytes"},
		{one("FP32", "[1]", 4), le32(1, 2), -2, "4 binary bytes after the JSON header are not claimed"},
		{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`, le32(1), -2, "not claimed"},
		{one("FP32", "[1]", 4), le32(1), 10000, "is 10000 but the body has only"},
		{one("FP32", "[1]", 4), le32(1), -5, "negative Inference-Header-Content-Length"},
		{one("FP32", "[1]", 4), nan, -2, "data element 0 is NaN"},
		{one("FP32", "[1]", 4), le32(float32(math.Inf(1))), -2, "data element 0 is +Inf"},
		{one("FP16", "[1]", 2), []byte{0x00, 0x7c}, -2, "is +Inf"},
		{one("FP64", "[1]", 8), binary.LittleEndian.AppendUint64(nil, math.Float64bits(1e300)), -2, "out of float32 range"},
		{one("FP64", "[1]", 8), binary.LittleEndian.AppendUint64(nil, math.Float64bits(math.NaN())), -2, "NaN"},
		{one("BOOL", "[1]", 1), []byte{2}, -2, "neither 0 nor 1"},
		{one("BYTES", "[1]", 3), []byte{1, 0, 0}, -2, "truncated length"},
		{one("BYTES", "[1]", 6), []byte{5, 0, 0, 0, 1, 2}, -2, "length 5 exceeds the 2 bytes left"},
		{one("BYTES", "[1]", 6), []byte{1, 0, 0, 0, 1, 2}, -2, "1 binary bytes after"},
		{one("BYTES", "[2]", 5), []byte{1, 0, 0, 0, 1}, -2, "element 1: truncated"},
		{one("FP32", "[4294967296]", 4), le32(1), -2, "elements"},
	} {
		body := append([]byte(tc.header), tc.bin...)
		hl := tc.hl
		if hl == -2 {
			hl = len(tc.header)
		}
		_, err := DecodeRequest(body, hl, nil)
		if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d: err = %v, want ErrBadRequest mentioning %q", i, err, tc.want)
		}
	}
}

func TestHalf(t *testing.T) {
	for i, tc := range []struct {
		h uint16
		f float32
	}{
		{0x0000, 0}, {0x3c00, 1}, {0xc000, -2}, {0x7bff, 65504}, {0x0001, 5.9604645e-08}, {0x03ff, 6.097555e-05},
		{0x0400, 6.1035156e-05}, {0x3555, 0.33325195}, {0x7c00, float32(math.Inf(1))},
	} {
		if got := halfToFloat32(tc.h); got != tc.f {
			t.Errorf("%d: halfToFloat32(%#x) = %v, want %v", i, tc.h, got, tc.f)
		}
		if got := float32ToHalf(tc.f); got != tc.h {
			t.Errorf("%d: float32ToHalf(%v) = %#x, want %#x", i, tc.f, got, tc.h)
		}
	}
	// Every finite half round-trips.
	for h := 0; h < 1<<16; h++ {
		f := halfToFloat32(uint16(h))
		if math.IsNaN(float64(f)) {
			continue
		}
		if back := float32ToHalf(f); back != uint16(h) {
			t.Fatalf("%#x -> %v -> %#x", h, f, back)
		}
	}
	if got := float32ToHalf(65520); got != 0x7c00 {
		t.Errorf("65520 rounds to %#x, want +Inf", got)
	}
	if got := float32ToHalf(1e-9); got != 0 {
		t.Errorf("1e-9 rounds to %#x, want 0", got)
	}
}

// TestExactInt64: INT64 and INT32 elements beyond float32's 2^24 come
// through exactly in I64, from JSON and binary data, and exact integer
// outputs are written exactly.
func TestExactInt64(t *testing.T) {
	big := int64(1)<<53 + 1
	body := []byte(`{"inputs":[{"name":"ids","shape":[3],"datatype":"INT64","data":[16777217, -9007199254740993, 2.0]}]}`)
	req, err := DecodeRequest(body, -1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := req.Inputs[0].I64; len(got) != 3 || got[0] != 16777217 || got[1] != -big || got[2] != 2 {
		t.Fatalf("JSON I64 %v", got)
	}
	hdr := []byte(`{"inputs":[{"name":"ids","shape":[2],"datatype":"INT64","parameters":{"binary_data_size":16}}]}`)
	bin := binary.LittleEndian.AppendUint64(nil, uint64(big))
	bin = binary.LittleEndian.AppendUint64(bin, uint64(1<<62))
	req, err = DecodeRequest(append(append([]byte{}, hdr...), bin...), len(hdr), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := req.Inputs[0].I64; len(got) != 2 || got[0] != big || got[1] != 1<<62 {
		t.Fatalf("binary I64 %v", got)
	}
	if req, err := DecodeRequest([]byte(`{"inputs":[{"name":"x","shape":[1],"datatype":"UINT8","data":[7]}]}`), -1, nil); err != nil || req.Inputs[0].I64 != nil {
		t.Fatalf("UINT8 gets no I64: %v %v", req, err)
	}
	out, _ := AppendResponse(nil, &InferenceResponse{ModelName: "m", Outputs: []ResponseOutput{{Name: "ids", Shape: []int64{1}, Datatype: INT64, I64: []int64{big}}}})
	if !bytes.Contains(out, []byte(`"data":[9007199254740993]`)) {
		t.Fatalf("response %s", out)
	}
	out, n := AppendResponse(nil, &InferenceResponse{ModelName: "m", Outputs: []ResponseOutput{{Name: "ids", Shape: []int64{1}, Datatype: INT64, I64: []int64{big}, Binary: true}}})
	if got := int64(binary.LittleEndian.Uint64(out[n:])); got != big || len(out)-n != 8 {
		t.Fatalf("binary response %d (%d bytes)", got, len(out)-n)
	}
}

// TestHeaderLengthMismatch: requests as Triton's Python client builds them
// (compact JSON, then the raw tensor) with a wrong
// Inference-Header-Content-Length get an error that names the header and
// where the JSON really ends, not what the cut JSON or the shifted binary
// data happened to break ("needs 784 elements").
func TestHeaderLengthMismatch(t *testing.T) {
	header := `{"inputs":[{"name":"input","shape":[1,784],"datatype":"FP32","parameters":{"binary_data_size":3136}}],"outputs":[{"name":"probabilities","parameters":{"binary_data":true}}]}`
	body := append([]byte(header), make([]byte, 3136)...)
	n := len(header)
	if _, err := DecodeRequest(body, n, nil); err != nil {
		t.Fatalf("the right length: %v", err)
	}
	for i, tc := range []struct {
		hl   int
		want string
	}{
		{n - 1, "the JSON header is cut at byte " + itoa(n-1) + ": Inference-Header-Content-Length is " + itoa(n-1) + " but the JSON header ends at byte " + itoa(n)},
		{40, "the JSON header is cut at byte 40"},
		{0, "the JSON header is cut at byte 0"},
		{n + 1, "Inference-Header-Content-Length is " + itoa(n+1) + " but the JSON header ends at byte " + itoa(n)},
		{n + 3136, "Inference-Header-Content-Length is " + itoa(n+3136) + " but the JSON header ends at byte " + itoa(n)},
		{n + 3137, "Inference-Header-Content-Length is " + itoa(n+3137) + " but the body has only " + itoa(n+3136) + " bytes"},
	} {
		_, err := DecodeRequest(body, tc.hl, nil)
		if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d: header length %d: err = %v, want %q", i, tc.hl, err, tc.want)
		}
	}
	// Whitespace after the object inside the header is still JSON: the
	// length agrees, and an error there is the decoder's own.
	padded := append([]byte(header+"\n"), make([]byte, 3136)...)
	if _, err := DecodeRequest(padded, n+1, nil); err != nil {
		t.Errorf("a header with a trailing newline: %v", err)
	}
	// A header length that runs into binary data starting with a NUL byte
	// (zeros are common in tensors) is not taken for the end of the JSON.
	small := `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}}]}`
	nul := append([]byte(small+"\x00\x00"), le32(1)...)
	if _, err := DecodeRequest(nul, len(small)+2, nil); err == nil || !strings.Contains(err.Error(), "but the JSON header ends at byte "+itoa(len(small))) {
		t.Errorf("a header length into zero bytes: %v", err)
	}
	// A JSON header that is broken on its own keeps the decoder's message.
	broken := `{"inputs":[{"name":"input","shape":[1,784],"datatype":"FP32","parameters":{"binary_data_size":3136}}],]}`
	_, err := DecodeRequest(append([]byte(broken), make([]byte, 3136)...), len(broken), nil)
	if err == nil || strings.Contains(err.Error(), "Inference-Header-Content-Length") {
		t.Errorf("broken JSON: %v", err)
	}
}
