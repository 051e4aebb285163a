package oip

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\ngot  %q\nwant %q", name, got, want)
	}
}

func TestAppendResponseJSON(t *testing.T) {
	r := &InferenceResponse{
		ModelName: "mnist", ModelVersion: "3", ID: "42",
		Parameters: map[string]any{"z": json.Number("1"), "a": "x<y>&", "b": true, "f": 0.5},
		Outputs: []ResponseOutput{
			{Name: "probabilities", Shape: []int64{1, 10}, Datatype: FP32,
				F32: []float32{0.1, 0.2, 1e-7, 0, 1, 0.33333334, 3.4028235e38, -2.5, 123456.79, 1e-45}},
			{Name: "class", Shape: []int64{1}, Datatype: INT64, F32: []float32{7}},
			{Name: "mask", Shape: []int64{3}, Datatype: BOOL, F32: []float32{1, 0, -3}},
			{Name: "small", Shape: []int64{4}, Datatype: UINT8, F32: []float32{-1, 2.9, 255, 300}},
			{Name: "label", Shape: []int64{2}, Datatype: BYTES, Bytes: [][]byte{[]byte("seven"), []byte("quote\"\n\u2028")}},
			{Name: "bad", Shape: []int64{2}, F32: []float32{float32(math.NaN()), float32(math.Inf(-1))}, Parameters: map[string]any{"note": "non-finite"}},
		},
	}
	body, hl := AppendResponse(nil, r)
	if hl != -1 {
		t.Errorf("jsonHeaderLen = %d, want -1", hl)
	}
	if !json.Valid(body) {
		t.Fatalf("invalid JSON: %s", body)
	}
	golden(t, "response.json", body)

	// What a generic JSON client sees.
	var got struct {
		ModelName    string `json:"model_name"`
		ModelVersion string `json:"model_version"`
		ID           string
		Outputs      []struct {
			Name     string
			Shape    []int64
			Datatype string
			Data     []any
		}
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got.ModelName != "mnist" || got.ModelVersion != "3" || got.ID != "42" || len(got.Outputs) != 6 {
		t.Fatalf("decoded %+v", got)
	}
	for j, v := range got.Outputs[0].Data {
		if f := float32(v.(float64)); f != r.Outputs[0].F32[j] {
			t.Errorf("probabilities[%d] = %v, want %v", j, f, r.Outputs[0].F32[j])
		}
	}
	if !reflect.DeepEqual(got.Outputs[3].Data, []any{0.0, 2.0, 255.0, 255.0}) {
		t.Errorf("UINT8 data = %v", got.Outputs[3].Data)
	}
	if got.Outputs[4].Data[1] != "quote\"\n\u2028" {
		t.Errorf("BYTES data = %q", got.Outputs[4].Data)
	}
	if got.Outputs[5].Datatype != FP32 || got.Outputs[5].Data[0] != nil {
		t.Errorf("non-finite output = %+v", got.Outputs[5])
	}

	// Appending keeps what dst held.
	pre := []byte("prefix")
	body2, _ := AppendResponse(pre, r)
	if !bytes.Equal(body2[:6], pre) || !bytes.Equal(body2[6:], body) {
		t.Error("AppendResponse does not append")
	}
	// Minimal response: no version, no id.
	min, _ := AppendResponse(nil, &InferenceResponse{ModelName: "m"})
	if string(min) != `{"model_name":"m","outputs":[]}` {
		t.Errorf("minimal = %s", min)
	}
}

func TestAppendResponseBinary(t *testing.T) {
	r := &InferenceResponse{
		ModelName: "mnist",
		Outputs: []ResponseOutput{
			{Name: "p", Shape: []int64{1, 3}, Datatype: FP32, F32: []float32{0.25, 0.5, 0.25}, Binary: true},
			{Name: "class", Shape: []int64{1}, Datatype: INT64, F32: []float32{1}},
			{Name: "h", Shape: []int64{2}, Datatype: FP16, F32: []float32{1, -2}, Binary: true, Parameters: map[string]any{"binary_data_size": 99, "x": "y"}},
			{Name: "s", Shape: []int64{1}, Datatype: BYTES, Bytes: [][]byte{[]byte("ab")}, Binary: true},
			{Name: "i", Shape: []int64{2}, Datatype: INT16, F32: []float32{-1, 40000}, Binary: true},
		},
	}
	body, hl := AppendResponse(nil, r)
	if hl <= 0 || hl >= len(body) {
		t.Fatalf("jsonHeaderLen = %d of %d", hl, len(body))
	}
	if !json.Valid(body[:hl]) {
		t.Fatalf("header is not JSON: %s", body[:hl])
	}
	golden(t, "response_binary.json", body[:hl])
	want := append(le32(0.25, 0.5, 0.25), 0x00, 0x3c, 0x00, 0xc0)
	want = append(binary.LittleEndian.AppendUint32(want, 2), "ab"...)
	want = append(want, 0xff, 0xff, 0xff, 0x7f)
	if !bytes.Equal(body[hl:], want) {
		t.Errorf("binary part = % x\nwant          % x", body[hl:], want)
	}
	var hdr struct {
		Outputs []struct {
			Name       string
			Parameters map[string]any
			Data       []any
		}
	}
	if err := json.Unmarshal(body[:hl], &hdr); err != nil {
		t.Fatal(err)
	}
	sizes := 0
	for _, o := range hdr.Outputs {
		if n, ok := o.Parameters["binary_data_size"].(float64); ok {
			sizes += int(n)
			if o.Data != nil {
				t.Errorf("%s: binary output also has data", o.Name)
			}
		}
	}
	if sizes != len(body)-hl {
		t.Errorf("binary_data_size sum %d, binary part %d bytes", sizes, len(body)-hl)
	}
}

func TestMetadataGolden(t *testing.T) {
	for i, tc := range []struct {
		file string
		v    any
	}{
		{"server_metadata.json", ServerMetadata{Name: "aiaas", Version: "0.1.0", Extensions: []string{"binary_tensor_data"}}},
		{"server_metadata_empty.json", ServerMetadata{Name: "aiaas", Version: "0.1.0"}},
		{"model_metadata.json", ModelMetadata{Name: "mnist", Versions: []string{"1", "2"}, Platform: "aiaas_gonum",
			Inputs:  []TensorMetadata{{Name: "input", Datatype: FP32, Shape: []int64{-1, 784}}},
			Outputs: []TensorMetadata{{Name: "probabilities", Datatype: FP32, Shape: []int64{-1, 10}}, {Name: "scalar", Datatype: FP32}}}},
		{"model_metadata_minimal.json", ModelMetadata{Name: "m", Platform: "aiaas_gonum"}},
		{"model_ready.json", ModelReady{Name: "mnist", Ready: true}},
		{"server_live.json", ServerLive{Live: true}},
		{"server_ready.json", ServerReady{Live: true, Ready: true}},
		{"error.json", ErrorResponse{Error: "model \"x\" not found"}},
	} {
		b, err := json.Marshal(tc.v)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		golden(t, tc.file, b)
		// Round trip through the same struct.
		p := reflect.New(reflect.TypeOf(tc.v))
		if err := json.Unmarshal(b, p.Interface()); err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		b2, _ := json.Marshal(p.Elem().Interface())
		if !bytes.Equal(b, b2) {
			t.Errorf("%d: round trip %s != %s", i, b2, b)
		}
	}
	if got := AppendError(nil, "bad <input>"); string(got) != `{"error":"bad \u003cinput\u003e"}` {
		t.Errorf("AppendError = %s", got)
	}
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for i, s := range []string{"", "plain", "q\"b\\", "\x00\x1f\x7f", "<>&", "é😀", "\u2028\u2029", "\xff\xfe", "a\xc3"} {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("%d: appendString(%q) = %s, want %s", i, s, got, want)
		}
	}
}

// Binary outputs of every datatype read back through the binary input path
// as the values the JSON encoding would show.
func TestBinaryOutputRoundTrip(t *testing.T) {
	vals := []float32{0, 1, -1, 2.75, 300, -70000, 1e10}
	for i, dt := range []string{BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64} {
		out := ResponseOutput{Name: "o", Shape: []int64{int64(len(vals))}, Datatype: dt, F32: vals, Binary: true}
		body, hl := AppendResponse(nil, &InferenceResponse{ModelName: "m", Outputs: []ResponseOutput{out}})
		bin := body[hl:]
		header := `{"inputs":[{"name":"o","shape":[7],"datatype":"` + dt + `","parameters":{"binary_data_size":` + itoa(len(bin)) + `}}]}`
		req, err := DecodeRequest(append([]byte(header), bin...), len(header), nil)
		if dt == FP16 {
			// 1e10 and -70000 overflow half precision to ±Inf, which the
			// decoder rightly refuses.
			if err == nil {
				t.Errorf("%d: FP16 infinities accepted", i)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%d %s: %v", i, dt, err)
		}
		// The JSON encoding of the same output is the reference.
		plain := out
		plain.Binary = false
		js, _ := AppendResponse(nil, &InferenceResponse{ModelName: "m", Outputs: []ResponseOutput{plain}})
		var doc struct{ Outputs []struct{ Data []any } }
		if err := json.Unmarshal(js, &doc); err != nil {
			t.Fatal(err)
		}
		for j, v := range req.Inputs[0].F32 {
			var want float32
			switch x := doc.Outputs[0].Data[j].(type) {
			case bool:
				if x {
					want = 1
				}
			case float64:
				want = float32(x)
			}
			if v != want {
				t.Errorf("%d %s: element %d = %v via binary, %v via JSON", i, dt, j, v, want)
			}
		}
	}
}

func TestAppendParamTypes(t *testing.T) {
	p := map[string]any{
		"s": "x", "b": false, "n": json.Number("12.5"), "bad": json.Number("x"), "i": 3, "i64": int64(-4), "i32": int32(5),
		"u": uint64(6), "f": 1.5, "nan": math.NaN(), "f32": float32(0.1), "inf32": float32(math.Inf(1)),
		"list": []int{1, 2}, "ch": make(chan int),
	}
	got := string(appendParams(nil, p, "", 0))
	want := `{"b":false,"bad":"x","ch":"` + fmtChan(p["ch"]) + `","f":1.5,"f32":0.1,"i":3,"i32":5,"i64":-4,"inf32":null,"list":[1,2],"n":12.5,"nan":null,"s":"x","u":6}`
	if got != want {
		t.Errorf("appendParams =\n%s\nwant\n%s", got, want)
	}
	if !json.Valid([]byte(got)) {
		t.Error("invalid JSON")
	}
}

// A parameter named "" is a member like any other (the fuzzer found it
// dropped: "" also meant "no extra member").
func TestAppendParamsEmptyKey(t *testing.T) {
	p := map[string]any{"": json.Number("0"), "a": true}
	if got, want := string(appendParams(nil, p, "", 0)), `{"":0,"a":true}`; got != want {
		t.Errorf("no extra: %s, want %s", got, want)
	}
	if got, want := string(appendParams(nil, p, "binary_data_size", 8)), `{"":0,"a":true,"binary_data_size":8}`; got != want {
		t.Errorf("with extra: %s, want %s", got, want)
	}
}
