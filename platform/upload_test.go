package platform_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"math"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aiaas/aiaas/internal/safetensors"
	"github.com/aiaas/aiaas/platform"
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

// TestLargeUploadStreamed: a one-request upload of a dense artifact past
// the streaming threshold (lowered to 1 MiB here, 64 MiB in production) is
// checked as it streams to the store rather than held — on the folder
// store, its bytes reach the store's file while the request holds less
// than 1 MiB of the body budget — and serves exactly what the same bytes
// read whole serve. A NaN weight, bytes after the artifact and a body cut
// short are refused and publish nothing.
func TestLargeUploadStreamed(t *testing.T) {
	for name, storeURL := range stores(t) {
		t.Run(name, func(t *testing.T) {
			e := newEnvOn(t, storeURL, nil)
			key := e.tenant("acme")
			big := bigArtifact(t, 6) // 6 MiB of weights
			input := map[string]any{"inputs": []map[string]any{{"name": "input", "shape": []int{2, 256}, "datatype": "FP32", "data": seq(512)}}}

			// Read whole (the default threshold), for reference.
			if r := e.do("POST", "/v1/models/whole/versions", key, big); r.status != 201 {
				t.Fatalf("read whole: %d %s", r.status, r.body)
			}
			want := e.do("POST", "/v2/models/whole/infer", key, input)
			restore := platform.SetUploadClock(time.Now, 1<<20)
			defer restore()

			// Streamed: sent through a pipe, all but its last MiB first.
			pr, pw := io.Pipe()
			defer pw.CloseWithError(errors.New("the test ended")) // a failed test must not leave the server waiting
			req, _ := http.NewRequest("POST", e.ts.URL+"/v1/models/streamed/versions", pr)
			req.Header.Set("Authorization", "Bearer "+key)
			done := make(chan resp, 1)
			go func() {
				res, err := e.ts.Client().Do(req)
				if err != nil {
					done <- resp{status: -1, body: []byte(err.Error())}
					return
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				done <- resp{status: res.StatusCode, body: b}
			}()
			rest := make(chan struct{})
			go func() {
				pw.Write(big[:len(big)-1<<20])
				<-rest
				pw.Write(big[len(big)-1<<20:])
				pw.Close()
			}()
			if dir, ok := strings.CutPrefix(storeURL, "file://"); ok {
				// The store's temporary file passes 4 MiB while the
				// request holds less than 1 MiB: held whole, nothing
				// would reach the store before the body's end.
				deadline := time.Now().Add(30 * time.Second)
				for largestTemp(dir) < 4<<20 {
					if time.Now().After(deadline) {
						t.Fatalf("no store file grew past 4 MiB while the upload was in flight (largest %d bytes): the body was not streamed", largestTemp(dir))
					}
					time.Sleep(10 * time.Millisecond)
				}
				m := regexp.MustCompile(`(?m)^aiaas_request_body_bytes_held (\S+)$`).FindStringSubmatch(string(e.do("GET", "/metrics", adminKey, nil).body))
				if v, _ := strconv.ParseFloat(m[1], 64); m == nil || v >= 1<<20 {
					t.Errorf("the streamed upload holds %v bytes of the body budget", m)
				}
			}
			close(rest)
			var r resp
			select {
			case r = <-done:
			case <-time.After(60 * time.Second):
				t.Fatal("the streamed upload got no answer")
			}
			if r.status != 201 || !strings.Contains(string(r.body), `"version":1`) {
				t.Fatalf("streamed: %d %s", r.status, r.body)
			}
			if r := e.do("GET", "/v1/models/streamed", key, nil); !strings.Contains(string(r.body), "latency_skipped") {
				t.Errorf("the streamed version's metadata does not say its latency was skipped: %s", r.body)
			}
			got := e.do("POST", "/v2/models/streamed/infer", key, input)
			if got.status != 200 || want.status != 200 || !bytes.Equal(outputData(t, got.body), outputData(t, want.body)) {
				t.Errorf("streamed and whole versions answer differently:\n%d %s\n%d %s", got.status, got.body, want.status, want.body)
			}

			refused := func(what string, body io.Reader, want string) {
				t.Helper()
				req, _ := http.NewRequest("POST", e.ts.URL+"/v1/models/bad/versions", body)
				req.Header.Set("Authorization", "Bearer "+key)
				res, err := e.ts.Client().Do(req)
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != 400 || !strings.Contains(string(b), want) {
					t.Errorf("%s: %d %s, want 400 %q", what, res.StatusCode, b, want)
				}
			}
			bad := append([]byte(nil), big...)
			binary.LittleEndian.PutUint32(bad[len(bad)-8:], math.Float32bits(float32(math.NaN())))
			refused("a NaN weight", bytes.NewReader(bad), "NaN")
			refused("bytes after the artifact", io.MultiReader(bytes.NewReader(big), strings.NewReader("tail")), "after the artifact")
			refused("cut short", io.MultiReader(bytes.NewReader(big[:len(big)-10])), "cut short") // no length: chunked
			if r := e.do("GET", "/v1/models/bad", key, nil); r.status != 404 {
				t.Errorf("a refused upload published something: %d %s", r.status, r.body)
			}
		})
	}
}

// largestTemp is the size of the largest temporary file under dir.
func largestTemp(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), ".tmp-") {
			if fi, err := d.Info(); err == nil {
				n = max(n, fi.Size())
			}
		}
		return nil
	})
	return n
}

// seq is 0, 0.001, 0.002, … n values.
func seq(n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(i) / 1000
	}
	return s
}

// outputData is the JSON of an inference answer's outputs' data.
func outputData(t *testing.T, body []byte) []byte {
	t.Helper()
	var r struct {
		Outputs []struct {
			Data json.RawMessage `json:"data"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(body, &r); err != nil || len(r.Outputs) == 0 {
		t.Fatalf("not an inference answer: %s", body)
	}
	return r.Outputs[0].Data
}
