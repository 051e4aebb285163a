package platform

import (
	"strings"
	"testing"
)

// FuzzDecodeUploadRequests: the create and commit bodies are untrusted;
// decoding never panics, and what it accepts is within limits.
func FuzzDecodeUploadRequests(f *testing.F) {
	good := strings.Repeat("ab", 32)
	for _, s := range []string{
		`{"size": 10, "sha256": "` + good + `"}`,
		`{"size": 10, "sha256": "` + good + `", "part_size": 5242880, "content_type": "application/onnx"}`,
		`{"size": 10, "sha256": "` + good + `", "task": "regression"}`,
		`{"parts": [{"number": 1, "etag": "\"abc\""}, {"number": 2, "etag": "x"}]}`,
		`{"size": -1}`, `[]`, ``, `{"parts": null}`, `{"size": 1e99}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, kind := range []string{"models", "datasets"} {
			c, err := decodeCreateUpload(b, kind, 1<<30)
			if err == nil && (c.Size < 1 || c.Size > 1<<30 || len(c.SHA256) != 64 || (c.PartSize != 0 && c.PartSize < 5<<20)) {
				t.Fatalf("accepted %+v", c)
			}
		}
		parts, err := decodeCommitUpload(b)
		if err == nil {
			for i, p := range parts {
				if p.Number != i+1 || p.ETag == "" || len(p.ETag) > 256 {
					t.Fatalf("accepted part %d: %+v", i, p)
				}
			}
		}
	})
}
