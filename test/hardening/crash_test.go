package hardening

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aiaas/aiaas/internal/testserver"
	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/sdk/client"
)

// bigArtifact is a 784→16384→10 MLP: about 13M parameters, ~52 MB, large
// enough that its upload takes a while through a slow reader.
func bigArtifact(t *testing.T) []byte {
	t.Helper()
	spec := nn.MLP("big", 784, []int{16384}, "relu", 10, "softmax")
	spec.Outputs[0].Name = "probabilities"
	m, err := nn.New(spec, 1)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := m.WriteArtifact(&buf, nn.Metadata{Spec: spec}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestCrashDuringPublish: the server is SIGKILLed while a 52 MB version is
// streaming in; a new server on the same store (a folder, and MinIO, where
// the upload is a multipart one) lists no version (the half-written upload
// never became one), and a retried publish gets version 1 and serves.
func TestCrashDuringPublish(t *testing.T) {
	art := bigArtifact(t)
	t.Logf("artifact: %d bytes", len(art))
	for name, store := range testserver.Stores(t) {
		t.Run(name, func(t *testing.T) { crashDuringPublish(t, store, art) })
	}
}

func crashDuringPublish(t *testing.T, store string, art []byte) {
	s := testserver.Start(t, store)
	_, key := tenantClientKey(t, s, "crash")

	pr, pw := io.Pipe()
	req, err := http.NewRequest("POST", s.URL+"/v1/models/m/versions", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(art))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/octet-stream")
	upload := make(chan error, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
			if res.StatusCode < 300 {
				err = io.EOF // the upload finished: the kill came too late
			}
		}
		upload <- err
	}()
	// Feed 40% of the artifact in 1 MiB chunks with small sleeps, then
	// kill the server with the upload half done.
	sent := 0
	for sent < len(art)*2/5 {
		n := min(1<<20, len(art)-sent)
		if _, err := pw.Write(art[sent : sent+n]); err != nil {
			t.Fatalf("upload broke before the kill after %d bytes: %v", sent, err)
		}
		sent += n
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	s.Cmd.Wait()
	pw.CloseWithError(io.ErrUnexpectedEOF)
	if err := <-upload; err == io.EOF {
		t.Fatal("the upload completed before the kill")
	}
	t.Logf("killed the server after %d of %d bytes", sent, len(art))

	s2 := testserver.Start(t, store)
	st, b := do(t, "GET", s2.URL+"/v1/models/m", key, "", nil, nil)
	switch st {
	case http.StatusNotFound: // no version was ever committed
	case http.StatusOK:
		var m struct {
			Versions []json.RawMessage `json:"versions"`
		}
		if err := json.Unmarshal(b, &m); err != nil || len(m.Versions) != 0 {
			t.Fatalf("after the crash the model lists versions: %s", b)
		}
	default:
		t.Fatalf("GET /v1/models/m after the crash: %d %.300s", st, b)
	}
	c2, err := client.New(s2.URL, &client.Options{APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pm, err := c2.PushModel(ctx, "m", bytes.NewReader(art), int64(len(art)), nil)
	if err != nil {
		t.Fatalf("retried publish: %v", err)
	}
	if pm.Version != 1 {
		t.Fatalf("retried publish got version %d, want 1", pm.Version)
	}
	req2 := &client.InferRequest{Inputs: []client.InferInput{{Name: "input", Shape: []int64{1, 784}, Datatype: "FP32", Data: make([]float32, 784)}}}
	res, err := c2.Infer(ctx, "m", "1", req2)
	if err != nil {
		t.Fatalf("infer after recovery: %v", err)
	}
	if out, err := res.Output("probabilities").Float32s(); err != nil || len(out) != 10 {
		t.Fatalf("infer output: %v %v", out, err)
	}
}
