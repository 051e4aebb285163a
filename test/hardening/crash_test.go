package hardening

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	miniogo "github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

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

// TestCrashDuringPublish: the server is SIGKILLed twice during a 52 MB
// publish, on a folder and on MinIO (where the store write is a multipart
// upload): first while the body streams in, which leaves nothing in the
// store (the server validates an artifact in memory before it writes
// one); then while the artifact streams into the store, which leaves a
// partial upload. A new server lists no version, removes the partial
// upload at start, and a retried publish gets version 1 and serves.
func TestCrashDuringPublish(t *testing.T) {
	art := bigArtifact(t)
	t.Logf("artifact: %d bytes", len(art))
	for name, store := range testserver.Stores(t) {
		t.Run(name, func(t *testing.T) { crashDuringPublish(t, store, art) })
	}
}

func crashDuringPublish(t *testing.T, store string, art []byte) {
	partial := leftovers(t, store)
	s := testserver.Start(t, store)
	_, key := tenantClientKey(t, s, "crash")

	killDuringBody(t, s, key, art)
	if n := partial(); n != 0 {
		t.Fatalf("a kill during the request body left %d partial uploads in the store", n)
	}
	model := killDuringStoreWrite(t, store, partial, key, art)

	// The age of 1 ms only suits a store no other process writes to.
	s2 := testserver.Start(t, store, "AIAAS_STALE_UPLOAD_AGE=1ms")
	for deadline := time.Now().Add(15 * time.Second); partial() > 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the partial upload is still in the store 15 s after the restart (server log below)")
		}
	}
	st, b := do(t, "GET", s2.URL+"/v1/models/"+model, key, "", nil, nil)
	switch st {
	case http.StatusNotFound: // no version was ever committed
	case http.StatusOK:
		var m struct {
			Versions []json.RawMessage `json:"versions"`
		}
		if err := json.Unmarshal(b, &m); err != nil || len(m.Versions) != 0 {
			t.Fatalf("after the crashes the model lists versions: %s", b)
		}
	default:
		t.Fatalf("GET /v1/models/%s after the crashes: %d %.300s", model, st, b)
	}
	c2, err := client.New(s2.URL, &client.Options{APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pm, err := c2.PushModel(ctx, model, bytes.NewReader(art), int64(len(art)), nil)
	if err != nil {
		t.Fatalf("retried publish: %v", err)
	}
	if pm.Version != 1 {
		t.Fatalf("retried publish got version %d, want 1", pm.Version)
	}
	req2 := &client.InferRequest{Inputs: []client.InferInput{{Name: "input", Shape: []int64{1, 784}, Datatype: "FP32", Data: make([]float32, 784)}}}
	res, err := c2.Infer(ctx, model, "1", req2)
	if err != nil {
		t.Fatalf("infer after recovery: %v", err)
	}
	if out, err := res.Output("probabilities").Float32s(); err != nil || len(out) != 10 {
		t.Fatalf("infer output: %v %v", out, err)
	}
}

// publishAsync posts body as a new version of model; the returned channel
// gets the status (0 if the connection broke).
func publishAsync(s *testserver.Server, key, model string, body io.Reader, size int64) <-chan int {
	done := make(chan int, 1)
	go func() {
		st := 0
		req, err := http.NewRequest("POST", s.URL+"/v1/models/"+model+"/versions", body)
		if err == nil {
			req.ContentLength = size
			req.Header.Set("Authorization", "Bearer "+key)
			req.Header.Set("Content-Type", "application/octet-stream")
			var res *http.Response
			if res, err = http.DefaultClient.Do(req); err == nil {
				st = res.StatusCode
				res.Body.Close()
			}
		}
		done <- st
	}()
	return done
}

// killDuringBody kills the server when 40 % of the body has arrived.
func killDuringBody(t *testing.T, s *testserver.Server, key string, art []byte) {
	t.Helper()
	pr, pw := io.Pipe()
	done := publishAsync(s, key, "m", pr, int64(len(art)))
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
	if st := <-done; st != 0 {
		t.Fatalf("the publish answered %d: the kill came too late", st)
	}
	t.Logf("killed the server after %d of %d bytes of the request body", sent, len(art))
}

// killDuringStoreWrite starts a server, sends it the whole body and kills
// it as soon as the store holds a partial upload of it; it returns the
// model whose publish was cut. The store write of 52 MB from memory takes
// tens of milliseconds, so on a loaded machine the kill can land after the
// write committed (the partial upload is gone, the version may exist):
// that attempt proves nothing, and the next one uses a new model name.
func killDuringStoreWrite(t *testing.T, store string, partial func() int, key string, art []byte) string {
	t.Helper()
	const attempts = 5
	for i := range attempts {
		model := fmt.Sprintf("m%d", i+1)
		s := testserver.Start(t, store)
		start := time.Now()
		done := publishAsync(s, key, model, bytes.NewReader(art), int64(len(art)))
		answered := 0
	wait:
		for partial() == 0 {
			select {
			case answered = <-done:
				break wait
			default:
			}
			time.Sleep(time.Millisecond)
		}
		if answered != 0 {
			t.Logf("attempt %d: the publish finished (status %d) before a partial upload showed in the store", i+1, answered)
			continue
		}
		if err := s.Cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		s.Cmd.Wait()
		if st := <-done; st != 0 {
			t.Logf("attempt %d: the publish answered %d: the kill came too late", i+1, st)
			continue
		}
		if partial() == 0 {
			t.Logf("attempt %d: the store write committed between seeing its partial upload and the kill", i+1)
			continue
		}
		t.Logf("killed the server during the store write of %s, %v after the request", model, time.Since(start).Round(time.Millisecond))
		return model
	}
	t.Fatalf("in %d attempts the kill never landed during the store write", attempts)
	return ""
}

// leftovers returns a counter of the partial uploads in a test store:
// temporary files in a folder, incomplete multipart uploads in a bucket.
func leftovers(t *testing.T, store string) func() int {
	t.Helper()
	if dir, ok := strings.CutPrefix(store, "file://"); ok {
		return func() int {
			n := 0
			err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					if errors.Is(err, fs.ErrNotExist) {
						return nil // renamed or removed while we walked
					}
					return err
				}
				if strings.HasPrefix(d.Name(), ".tmp-") {
					n++
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	u, err := url.Parse(store)
	if err != nil {
		t.Fatal(err)
	}
	c, err := miniogo.New(u.Query().Get("endpoint"), &miniogo.Options{
		Creds: credentials.NewStaticV4(os.Getenv("AIAAS_TEST_S3_ACCESS_KEY"), os.Getenv("AIAAS_TEST_S3_SECRET_KEY"), "")})
	if err != nil {
		t.Fatal(err)
	}
	return func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n := 0
		for up := range c.ListIncompleteUploads(ctx, u.Host, "", true) {
			if up.Err != nil {
				t.Fatal(up.Err)
			}
			n++
		}
		return n
	}
}

// TestCrashInAuditWindowIsVisible: inferences are answered, then the
// server is SIGKILLed before it could be sure their audit records were
// written (they are flushed once a second). After a restart and the
// promise's lease, audit verify of that tenant says records may be
// missing and names the writer that died — never a silent "ok" — while a
// tenant the dead server never served still verifies ok.
func TestCrashInAuditWindowIsVisible(t *testing.T) {
	for name, store := range testserver.Stores(t) {
		t.Run(name, func(t *testing.T) { crashInAuditWindow(t, store) })
	}
}

func crashInAuditWindow(t *testing.T, store string) {
	const lease = "AIAAS_AUDIT_PROMISE_LEASE=1s"
	s := testserver.Start(t, store, lease)
	c, key := tenantClientKey(t, s, "acme")
	_, other := tenantClientKey(t, s, "quiet")
	ctx := context.Background()
	art := artifact(t, 1)
	if _, err := c.PushModel(ctx, "digits", bytes.NewReader(art), int64(len(art)), nil); err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"inputs":[{"name":"input","datatype":"FP32","shape":[1,784],"data":[` + strings.TrimSuffix(strings.Repeat("0,", 784), ",") + `]}]}`)
	for range 5 {
		if st, b := do(t, "POST", s.URL+"/v2/models/digits/infer", key, "application/json", body, nil); st != 200 {
			t.Fatalf("infer: %d %s", st, b)
		}
	}
	if err := s.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	s.Cmd.Wait()

	s2 := testserver.Start(t, store, lease)
	time.Sleep(1500 * time.Millisecond) // the dead server's lease runs out
	st, b := do(t, "GET", s2.URL+"/v1/audit/verify", key, "", nil, nil)
	var v struct {
		OK       bool     `json:"ok"`
		Problems []string `json:"problems"`
	}
	if err := json.Unmarshal(b, &v); err != nil || st != 200 {
		t.Fatalf("verify: %d %s", st, b)
	}
	if v.OK || len(v.Problems) == 0 || !strings.Contains(strings.Join(v.Problems, " "), "stopped without closing the log") {
		t.Fatalf("after a crash inside the flush window, verify says %s", b)
	}
	if st, b := do(t, "GET", s2.URL+"/v1/audit/verify", other, "", nil, nil); st != 200 || !strings.Contains(string(b), `"ok":true`) {
		t.Fatalf("the tenant the dead server never served: %d %s", st, b)
	}
	t.Logf("verify after the crash: %s", b)
}
