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
