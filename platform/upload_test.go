package platform_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aiaas/aiaas/internal/safetensors"
)

// endless yields b forever, counting what was read.
type endless struct {
	b    byte
	read atomic.Int64
}

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = e.b
	}
	e.read.Add(int64(len(p)))
	return len(p), nil
}

// TestUploadCheckedAsItArrives: a model upload that cannot be a model is
// refused after its first bytes, not held whole; a safetensors header
// declaring more than the limit is refused before its weights arrive; an
// upload cut short or followed by extra bytes is refused; a real artifact
// still publishes.
func TestUploadCheckedAsItArrives(t *testing.T) {
	e := newEnv(t, nil)
	key := e.tenant("acme")
	send := func(body io.Reader, ct string) int {
		req, _ := http.NewRequest("POST", e.ts.URL+"/v1/models/m/versions", body)
		req.Header.Set("Authorization", "Bearer "+key)
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		res, err := e.ts.Client().Do(req)
		if err != nil {
			return -1 // the server closed the connection on a body it refused
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	// Endless garbage, and endless garbage sent as ONNX: 400 after a few bytes.
	for _, ct := range []string{"", "application/onnx"} {
		g := &endless{b: 'x'}
		if got := send(g, ct); got != http.StatusBadRequest && got != -1 {
			t.Errorf("endless garbage (%q): %d", ct, got)
		}
		if n := g.read.Load(); n > 8<<20 {
			t.Errorf("endless garbage (%q): the server read %d bytes before refusing", ct, n)
		}
	}
	// A header declaring 3 GiB of weights: 413 before they arrive.
	header := `{"w":{"dtype":"U8","shape":[3221225472],"data_offsets":[0,3221225472]}}`
	var big bytes.Buffer
	binary.Write(&big, binary.LittleEndian, uint64(len(header)))
	big.WriteString(header)
	g := &endless{}
	if got := send(io.MultiReader(&big, g), ""); got != http.StatusRequestEntityTooLarge && got != -1 {
		t.Errorf("3 GiB declared: %d", got)
	}
	if n := g.read.Load(); n > 8<<20 {
		t.Errorf("3 GiB declared: the server read %d bytes of weights before refusing", n)
	}
	// Cut short, and extra bytes after the last tensor.
	file := safetensors.Encode(&safetensors.File{Tensors: []safetensors.Tensor{safetensors.F32("w", []int{1000}, make([]float32, 1000))}})
	if got := send(bytes.NewReader(file[:len(file)-10]), ""); got != http.StatusBadRequest {
		t.Errorf("cut short: %d", got)
	}
	r := e.do("POST", "/v1/models/m/versions", key, append(append([]byte(nil), file...), "tail"...))
	if r.status != 400 || !strings.Contains(string(r.body), "after the artifact") {
		t.Errorf("extra bytes: %d %s", r.status, r.body)
	}
	// A real artifact publishes.
	if r := e.do("POST", "/v1/models/m/versions", key, artifact(t, 1)); r.status != 201 {
		t.Fatalf("a real artifact: %d %s", r.status, r.body)
	}
}
