package platform_test

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"testing"
)

func inflate(t *testing.T, enc string, b []byte) []byte {
	t.Helper()
	var r io.Reader
	var err error
	switch enc {
	case "gzip":
		r, err = gzip.NewReader(bytes.NewReader(b))
	case "deflate":
		r, err = zlib.NewReader(bytes.NewReader(b))
	default:
		t.Fatalf("Content-Encoding %q", enc)
	}
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s body: %v", enc, err)
	}
	return out
}

// TestCompressedResponses: with Accept-Encoding as Triton's clients send
// it (response_compression_algorithm), JSON and binary-extension answers
// above 1 KiB come gzip'd (or deflated) with Vary, and inflate to exactly
// the uncompressed answer — for the binary extension the
// Inference-Header-Content-Length counts the inflated JSON header, as the
// clients, which inflate before splitting, read it. Small answers, errors,
// q=0 and clients that do not ask go out plain.
func TestCompressedResponses(t *testing.T) {
	e := newEnv(t, nil)
	key := e.tenant("acme")
	e.publish(key, "clf", 1)
	big, _ := json.Marshal(inferBody(64)) // 64×3 probabilities: a few KiB of JSON
	plain := e.do("POST", "/v2/models/clf/infer", key, big)
	if plain.status != 200 || plain.header.Get("Content-Encoding") != "" || len(plain.body) < 1024 {
		t.Fatalf("plain: %d %q %d bytes", plain.status, plain.header.Get("Content-Encoding"), len(plain.body))
	}
	for _, enc := range []string{"gzip", "deflate"} {
		r := e.do("POST", "/v2/models/clf/infer", key, big, "Accept-Encoding", enc)
		if r.status != 200 || r.header.Get("Content-Encoding") != enc || r.header.Get("Vary") != "Accept-Encoding" {
			t.Fatalf("%s: %d, Content-Encoding %q, Vary %q", enc, r.status, r.header.Get("Content-Encoding"), r.header.Get("Vary"))
		}
		if len(r.body) >= len(plain.body) {
			t.Errorf("%s: %d bytes, plain %d", enc, len(r.body), len(plain.body))
		}
		if got := inflate(t, enc, r.body); !bytes.Equal(got, plain.body) {
			t.Errorf("%s: inflated body differs from the plain one:\n%.200s\n%.200s", enc, got, plain.body)
		}
	}

	// Binary extension, requested as tritonclient does (binary outputs,
	// binary inputs, Accept-Encoding: gzip).
	body, hl := tritonBody(128, `{"binary_data":true}`)
	plainBin := e.do("POST", "/v2/models/clf/infer", key, body, "Inference-Header-Content-Length", hl)
	r := e.do("POST", "/v2/models/clf/infer", key, body, "Inference-Header-Content-Length", hl, "Accept-Encoding", "gzip")
	if plainBin.status != 200 || r.status != 200 || r.header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("binary: %d / %d %q", plainBin.status, r.status, r.header.Get("Content-Encoding"))
	}
	n, err := strconv.Atoi(r.header.Get("Inference-Header-Content-Length"))
	got := inflate(t, "gzip", r.body)
	if err != nil || r.header.Get("Inference-Header-Content-Length") != plainBin.header.Get("Inference-Header-Content-Length") || !bytes.Equal(got, plainBin.body) {
		t.Fatalf("binary: header length %q (plain %q), inflated body equal: %v", r.header.Get("Inference-Header-Content-Length"),
			plainBin.header.Get("Inference-Header-Content-Length"), bytes.Equal(got, plainBin.body))
	}
	if !json.Valid(got[:n]) || len(got)-n != 128*3*4 {
		t.Errorf("binary: JSON header %q, %d tensor bytes", got[:n], len(got)-n)
	}

	// Plain answers: tiny bodies, errors, a refused coding, no header.
	small, _ := json.Marshal(inferBody(1))
	for i, tc := range []struct {
		path, accept string
		body         []byte
		vary         bool
	}{
		{"/v2/models/clf/infer", "gzip", small, true},
		{"/v2/models/nope/infer", "gzip", small, true},
		{"/v2/models/clf/infer", "gzip;q=0, br", big, false},
		{"/v2/models/clf/infer", "identity", big, false},
		{"/v2/models/clf/infer", "", big, false},
	} {
		r := e.do("POST", tc.path, key, tc.body, "Accept-Encoding", tc.accept)
		if r.header.Get("Content-Encoding") != "" || !json.Valid(r.body) || (r.header.Get("Vary") != "") != tc.vary {
			t.Errorf("case %d: %d Content-Encoding %q Vary %q %.100s", i, r.status, r.header.Get("Content-Encoding"), r.header.Get("Vary"), r.body)
		}
	}

	// Other routes go through the same wrapper: model metadata, when it
	// is compressed, inflates to the JSON.
	r = e.do("GET", "/v2/models/clf", key, nil, "Accept-Encoding", "gzip, deflate")
	if r.status != 200 || (r.header.Get("Content-Encoding") == "gzip") != (len(r.body) > 0 && !json.Valid(r.body)) {
		t.Errorf("metadata: %d %q", r.status, r.header.Get("Content-Encoding"))
	}
	if r.header.Get("Content-Encoding") == "gzip" && !strings.Contains(string(inflate(t, "gzip", r.body)), `"name":"clf"`) {
		t.Error("metadata did not inflate")
	}
}

// TestTritonClientRoundTrip sends what tritonclient.http's infer sends
// with request_compression_algorithm="gzip",
// response_compression_algorithm="gzip" and
// InferRequestedOutput(class_count=2): the whole body (JSON header and
// binary tensor) gzip'd, Inference-Header-Content-Length counting the
// uncompressed JSON, Accept-Encoding: gzip; and reads the answer as
// InferResult does: inflate the whole body, then split at the header
// length.
func TestTritonClientRoundTrip(t *testing.T) {
	e := newEnv(t, nil)
	key := e.tenant("acme")
	e.publish(key, "clf", 1)
	const rows = 100
	body, hl := tritonBody(rows, `{"classification":2,"binary_data":true}`)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(body)
	zw.Close()
	r := e.do("POST", "/v2/models/clf/infer", key, gz.Bytes(), "Content-Encoding", "gzip", "Accept-Encoding", "gzip",
		"Inference-Header-Content-Length", hl, "Content-Type", "application/octet-stream")
	if r.status != 200 || r.header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("%d %q %.200s", r.status, r.header.Get("Content-Encoding"), r.body)
	}
	got := inflate(t, "gzip", r.body)
	n, err := strconv.Atoi(r.header.Get("Inference-Header-Content-Length"))
	if err != nil || n > len(got) {
		t.Fatalf("header length %q for %d inflated bytes", r.header.Get("Inference-Header-Content-Length"), len(got))
	}
	var res struct {
		Outputs []struct {
			Name       string         `json:"name"`
			Datatype   string         `json:"datatype"`
			Shape      []int          `json:"shape"`
			Parameters map[string]int `json:"parameters"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(got[:n], &res); err != nil || len(res.Outputs) != 1 {
		t.Fatalf("JSON header: %v %q", err, got[:n])
	}
	o := res.Outputs[0]
	if o.Datatype != "BYTES" || len(o.Shape) != 2 || o.Shape[0] != rows || o.Shape[1] != 2 || o.Parameters["binary_data_size"] != len(got)-n {
		t.Fatalf("output: %+v, %d binary bytes", o, len(got)-n)
	}
	var strs []string
	for b := got[n:]; len(b) >= 4; {
		size := int(b[0]) | int(b[1])<<8 | int(b[2])<<16 | int(b[3])<<24
		strs, b = append(strs, string(b[4:4+size])), b[4+size:]
	}
	if cls := parseClasses(t, strs); len(cls) != rows*2 || cls[0].value < cls[1].value {
		t.Errorf("classifications: %q…", strs[:4])
	}
}

// TestHeaderLengthErrors: a wrong Inference-Header-Content-Length, on a
// request otherwise as tritonclient sends it (plain or gzip'd, where the
// length counts the inflated bytes), is a 400 that names the header —
// never the misleading "needs N elements" of the cut JSON.
func TestHeaderLengthErrors(t *testing.T) {
	e := newEnv(t, nil)
	key := e.tenant("acme")
	e.publish(key, "clf", 1)
	body, hl := tritonBody(1, `{"binary_data":true}`)
	n, _ := strconv.Atoi(hl)
	gzipped := func(b []byte) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(b)
		zw.Close()
		return buf.Bytes()
	}
	for i, tc := range []struct {
		body []byte
		hl   int
		enc  string
		want string
	}{
		{body, n - 12, "", "the JSON header is cut at byte " + strconv.Itoa(n-12)},
		{body, n + 4, "", "but the JSON header ends at byte " + hl},
		{body, len(body) + 1, "", "but the body has only " + strconv.Itoa(len(body)) + " bytes"},
		{gzipped(body), n - 1, "gzip", "the JSON header is cut at byte " + strconv.Itoa(n-1)},
		{gzipped(body), len(body) + 5, "gzip", "but the body has only " + strconv.Itoa(len(body)) + " bytes"},
	} {
		r := e.do("POST", "/v2/models/clf/infer", key, tc.body, "Inference-Header-Content-Length", strconv.Itoa(tc.hl), "Content-Encoding", tc.enc)
		if r.status != 400 || !strings.Contains(string(r.body), tc.want) || strings.Contains(string(r.body), "needs") {
			t.Errorf("case %d: %d %s, want 400 %q", i, r.status, r.body, tc.want)
		}
	}
}
