package platform_test

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aiaas/aiaas/platform/config"
)

// TestCompressedRequestBodies: gzip and deflate bodies (Triton's clients'
// request_compression_algorithm) infer like plain ones; a corrupt one is
// 400, an unknown encoding 415, and one that inflates past the body limit
// 413, before it is held.
func TestCompressedRequestBodies(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.MaxBodyBytes = 64 << 10 })
	key := e.tenant("acme")
	e.publish(key, "clf", 1)
	plain, _ := json.Marshal(inferBody(2))
	var gz, zl bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(plain)
	w.Close()
	z := zlib.NewWriter(&zl)
	z.Write(plain)
	z.Close()
	want := outputsOf(t, e.do("POST", "/v2/models/clf/infer", key, plain))
	for enc, body := range map[string][]byte{"gzip": gz.Bytes(), "deflate": zl.Bytes()} {
		r := e.do("POST", "/v2/models/clf/infer", key, body, "Content-Encoding", enc, "Content-Type", "application/json")
		if r.status != 200 || !bytes.Equal(outputsOf(t, r), want) {
			t.Errorf("%s: %d %s", enc, r.status, r.body)
		}
	}
	corrupt := append([]byte(nil), gz.Bytes()...)
	corrupt[len(corrupt)/2] ^= 0xff
	if r := e.do("POST", "/v2/models/clf/infer", key, corrupt, "Content-Encoding", "gzip"); r.status != 400 {
		t.Errorf("corrupt gzip: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v2/models/clf/infer", key, plain, "Content-Encoding", "br"); r.status != 415 {
		t.Errorf("br: %d %s", r.status, r.body)
	}
	var bomb bytes.Buffer
	w = gzip.NewWriter(&bomb)
	w.Write([]byte(`{"inputs":[{"name":"input","datatype":"FP32","shape":[1,4],"data":[` + strings.Repeat("0,", 1<<20)))
	w.Close()
	if r := e.do("POST", "/v2/models/clf/infer", key, bomb.Bytes(), "Content-Encoding", "gzip"); r.status != 413 {
		t.Errorf("a body inflating past the limit: %d %.200s", r.status, r.body)
	}
}
