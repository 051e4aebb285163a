package platform_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/platform"
	"github.com/aiaas/aiaas/platform/config"
)

type stagedUpload struct {
	ID        string `json:"id"`
	PartSize  int64  `json:"part_size"`
	Multipart bool   `json:"multipart"`
	Parts     []struct {
		Number int    `json:"number"`
		URL    string `json:"url"`
		Size   int64  `json:"size"`
	} `json:"parts"`
	CommitURL string `json:"commit_url"`
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// createUpload asks for an upload of body (announcing sum, or body's own
// sha256 when sum is "").
func (e *env) createUpload(key, path string, body []byte, sum string, partSize int64) stagedUpload {
	e.t.Helper()
	if sum == "" {
		sum = sha(body)
	}
	req := map[string]any{"size": len(body), "sha256": sum}
	if partSize > 0 {
		req["part_size"] = partSize
	}
	r := e.do("POST", path+"/uploads", key, req)
	if r.status != 201 {
		e.t.Fatalf("create upload: %d %s", r.status, r.body)
	}
	var u stagedUpload
	if err := json.Unmarshal(r.body, &u); err != nil {
		e.t.Fatal(err)
	}
	return u
}

// putParts PUTs body's parts to their URLs (no key) and returns the
// commit body.
func (e *env) putParts(u stagedUpload, body []byte) map[string]any {
	e.t.Helper()
	var parts []map[string]any
	off := int64(0)
	for _, p := range u.Parts {
		st, etag, msg := put(e.t, p.URL, body[off:off+p.Size])
		if st != 200 {
			e.t.Fatalf("PUT part %d: %d %s", p.Number, st, msg)
		}
		parts = append(parts, map[string]any{"number": p.Number, "etag": etag})
		off += p.Size
	}
	return map[string]any{"parts": parts}
}

func put(t *testing.T, u string, b []byte) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest("PUT", u, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	msg, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header.Get("ETag"), string(msg)
}

// bigArtifact is a dense artifact of about mb MiB.
func bigArtifact(t *testing.T, mb int) []byte {
	spec := nn.MLP("x", 256, []int{mb * 1024}, "relu", 4, "softmax")
	return artifactOf(t, spec, 1)
}

// TestStagedUploads runs the large-upload path on every store: one PUT,
// multipart (on S3; parts to the server elsewhere), the streamed check of
// a large dense artifact, and every refusal.
func TestStagedUploads(t *testing.T) {
	for name, storeURL := range stores(t) {
		t.Run(name, func(t *testing.T) {
			e := newEnvOn(t, storeURL, nil)
			key := e.tenant("acme")

			// Small, one part: committed, served.
			small := artifact(t, 3)
			u := e.createUpload(key, "/v1/models/m", small, "", 0)
			if len(u.Parts) != 1 || u.Multipart {
				t.Fatalf("small upload: %+v", u)
			}
			if !strings.HasPrefix(u.CommitURL, "http") {
				t.Errorf("commit_url %q", u.CommitURL)
			}
			e.putParts(u, small)
			r := e.do("POST", "/v1/models/m/uploads/"+u.ID+"/commit", key, nil)
			if r.status != 201 || r.json(t)["version"].(float64) != 1 || r.json(t)["sha256"] != sha(small) {
				t.Fatalf("commit: %d %s", r.status, r.body)
			}
			if r := e.do("POST", "/v2/models/m/infer", key, inferBody(2)); r.status != 200 {
				t.Fatalf("infer after commit: %d %s", r.status, r.body)
			}
			// Committed twice (a client whose answer was lost): the first
			// commit's answer again, 200, and no second version.
			if r := e.do("POST", "/v1/models/m/uploads/"+u.ID+"/commit", key, nil); r.status != 200 || r.json(t)["version"] != float64(1) {
				t.Errorf("double commit: %d %s", r.status, r.body)
			}
			if r := e.do("GET", "/v1/models/m", key, nil); strings.Count(string(r.body), `"version":`) != 1 {
				t.Errorf("a second commit published again: %s", r.body)
			}

			// About 7 MiB in 5 MiB parts, with the streamed check (the
			// threshold lowered to 1 MiB): version 2, latency skipped.
			restore := platform.SetUploadClock(time.Now, 1<<20)
			defer restore()
			big := bigArtifact(t, 7)
			u = e.createUpload(key, "/v1/models/m", big, "", 5<<20)
			if len(u.Parts) != 2 || u.Parts[1].Size != int64(len(big))-5<<20 {
				t.Fatalf("big upload parts: %+v", u.Parts)
			}
			if name == "s3" != u.Multipart {
				t.Errorf("%s: multipart %v", name, u.Multipart)
			}
			commit := e.putParts(u, big)
			r = e.do("POST", "/v1/models/m/uploads/"+u.ID+"/commit", key, commit)
			if r.status != 201 || r.json(t)["version"].(float64) != 2 {
				t.Fatalf("big commit: %d %s", r.status, r.body)
			}
			r = e.do("GET", "/v1/models/m", key, nil)
			if !strings.Contains(string(r.body), "latency_skipped") {
				t.Errorf("big version's metadata does not say its latency was skipped: %s", r.body)
			}
			if r := e.do("POST", "/v2/models/m/versions/2/infer", key, map[string]any{"inputs": []map[string]any{{"name": "input", "shape": []int{1, 256}, "datatype": "FP32", "data": make([]float32, 256)}}}); r.status != 200 {
				t.Fatalf("infer v2: %d %s", r.status, r.body)
			}

			// A wrong sha256: 400, nothing published, and the upload can
			// be aborted.
			u = e.createUpload(key, "/v1/models/m", big, strings.Repeat("0", 64), 5<<20)
			commit = e.putParts(u, big)
			if r := e.do("POST", "/v1/models/m/uploads/"+u.ID+"/commit", key, commit); r.status != 400 || !strings.Contains(string(r.body), "sha256") {
				t.Errorf("sha256 mismatch: %d %s", r.status, r.body)
			}
			if r := e.do("DELETE", "/v1/models/m/uploads/"+u.ID, key, nil); r.status != 200 {
				t.Errorf("abort: %d %s", r.status, r.body)
			}
			if r := e.do("POST", "/v1/models/m/uploads/"+u.ID+"/commit", key, commit); r.status != 404 {
				t.Errorf("commit after abort: %d %s", r.status, r.body)
			}
			// The same for the whole-read path (small artifact).
			u = e.createUpload(key, "/v1/models/m", small, sha(big), 0)
			e.putParts(u, small)
			if r := e.do("POST", "/v1/models/m/uploads/"+u.ID+"/commit", key, nil); r.status != 400 || !strings.Contains(string(r.body), "sha256") {
				t.Errorf("sha256 mismatch (small): %d %s", r.status, r.body)
			}

			// NaN weights in a streamed artifact: 400.
			bad := append([]byte(nil), big...)
			binary.LittleEndian.PutUint32(bad[len(bad)-8:], math.Float32bits(float32(math.NaN())))
			u = e.createUpload(key, "/v1/models/m", bad, "", 5<<20)
			commit = e.putParts(u, bad)
			if r := e.do("POST", "/v1/models/m/uploads/"+u.ID+"/commit", key, commit); r.status != 400 || !strings.Contains(string(r.body), "NaN") {
				t.Errorf("NaN weight: %d %s", r.status, r.body)
			}

			// A part never sent (wrong size): 400 on commit.
			u = e.createUpload(key, "/v1/models/m", small, "", 0)
			if r := e.do("POST", "/v1/models/m/uploads/"+u.ID+"/commit", key, nil); r.status != 400 {
				t.Errorf("commit with nothing uploaded: %d %s", r.status, r.body)
			}
			if name != "s3" {
				// The server's own part URLs: wrong size, tampered, expired.
				if st, _, msg := put(t, u.Parts[0].URL, small[:10]); st != 400 {
					t.Errorf("short part: %d %s", st, msg)
				}
				tampered := strings.Replace(u.Parts[0].URL, "parts/1", "parts/2", 1)
				if st, _, msg := put(t, tampered, small); st != 403 && st != 404 {
					t.Errorf("tampered part URL: %d %s", st, msg)
				}
				pu, _ := url.Parse(u.Parts[0].URL)
				q := pu.Query()
				q.Set("expires", "99999999999")
				pu.RawQuery = q.Encode()
				if st, _, msg := put(t, pu.String(), small); st != 403 || !strings.Contains(msg, "signature") {
					t.Errorf("extended expiry: %d %s", st, msg)
				}
				platform.SetUploadClock(func() time.Time { return time.Now().Add(3 * time.Hour) }, 1<<20)
				if st, _, msg := put(t, u.Parts[0].URL, small); st != 403 || !strings.Contains(msg, "expired") {
					t.Errorf("expired part URL: %d %s", st, msg)
				}
				if r := e.do("POST", "/v1/models/m/uploads/"+u.ID+"/commit", key, nil); r.status != 410 {
					t.Errorf("commit of an expired upload: %d %s", r.status, r.body)
				}
				platform.SetUploadClock(time.Now, 1<<20)
			}

			// Another tenant's upload id answers 404, as a missing one.
			other := e.tenant("globex")
			u = e.createUpload(key, "/v1/models/m", small, "", 0)
			e.putParts(u, small)
			for _, path := range []string{"/v1/models/m/uploads/" + u.ID + "/commit", "/v1/models/m/uploads/" + strings.Repeat("a", 32) + "/commit", "/v1/models/n/uploads/" + u.ID + "/commit"} {
				k := other
				if strings.Contains(path, "aaaa") || strings.Contains(path, "/n/") {
					k = key
				}
				if r := e.do("POST", path, k, nil); r.status != 404 {
					t.Errorf("%s: %d %s", path, r.status, r.body)
				}
			}
			if r := e.do("POST", "/v1/models/m/uploads/"+u.ID+"/commit", key, nil); r.status != 201 {
				t.Errorf("own commit after the others' 404s: %d %s", r.status, r.body)
			}

			// Datasets take the same path.
			csv := []byte(sumsCSV(200))
			u = e.createUpload(key, "/v1/datasets/sums", csv, "", 0)
			e.putParts(u, csv)
			if r := e.do("POST", "/v1/datasets/sums/uploads/"+u.ID+"/commit", key, nil); r.status != 201 || r.json(t)["rows"] == nil {
				t.Errorf("dataset commit: %d %s", r.status, r.body)
			}

			// The audit log names the upload and the publish it made.
			r = e.do("GET", "/v1/audit?limit=1000", key, nil)
			for _, want := range []string{`"model.upload"`, `"model.publish"`, `"dataset.upload"`} {
				if !strings.Contains(string(r.body), want) {
					t.Errorf("audit log lacks %s", want)
				}
			}
		})
	}
}

// TestStagedUploadRequests: bad create bodies are 4xx JSON errors.
func TestStagedUploadRequests(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.MaxArtifactBytes = 100 << 20 })
	key := e.tenant("acme")
	good := strings.Repeat("ab", 32)
	for i, c := range []struct {
		body   any
		status int
	}{
		{`{"size": 10}`, 400},
		{`{"size": 0, "sha256": "` + good + `"}`, 400},
		{`{"size": 200000000, "sha256": "` + good + `"}`, 413},
		{`{"size": 10, "sha256": "` + strings.ToUpper(good) + `"}`, 400},
		{`{"size": 10, "sha256": "` + good + `", "extra": 1}`, 400},
		{`{"size": 10, "sha256": "` + good + `", "part_size": 1024}`, 400},
		{`{"size": 10, "sha256": "` + good + `", "content_type": "text/html"}`, 400},
		{`{"size": 10, "sha256": "` + good + `", "task": "regression"}`, 400},
		{`[]`, 400},
		{`{"size": 10, "sha256": "` + good + `"}`, 201},
	} {
		r := e.do("POST", "/v1/models/m/uploads", key, c.body)
		if r.status != c.status {
			t.Errorf("%d: %d %s, want %d", i, r.status, r.body, c.status)
		}
		if r.status >= 400 {
			if _, ok := r.json(t)["error"]; !ok {
				t.Errorf("%d: no JSON error: %s", i, r.body)
			}
		}
	}
	if r := e.do("POST", "/v1/datasets/mnist/uploads", key, `{"size": 10, "sha256": "`+good+`"}`); r.status != 400 {
		t.Errorf("upload to mnist: %d", r.status)
	}
	if r := e.do("POST", "/v1/models/m/uploads", "", `{"size": 10, "sha256": "`+good+`"}`); r.status != 401 {
		t.Errorf("no key: %d", r.status)
	}
}

// TestStagedUploadONNX: an ONNX model takes the staged path too (read
// whole at commit and converted, as a one-request upload is), by content
// type or by its bytes.
func TestStagedUploadONNX(t *testing.T) {
	e := newEnv(t, nil)
	key := e.tenant("acme")
	b, err := os.ReadFile("../nn/onnx/testdata/torch_mlp.onnx")
	if err != nil {
		t.Fatal(err)
	}
	for i, ct := range []string{"application/onnx", ""} {
		req := map[string]any{"size": len(b), "sha256": sha(b)}
		if ct != "" {
			req["content_type"] = ct
		}
		r := e.do("POST", "/v1/models/torch/uploads", key, req)
		if r.status != 201 {
			t.Fatalf("%d: create: %d %s", i, r.status, r.body)
		}
		var u stagedUpload
		_ = json.Unmarshal(r.body, &u)
		e.putParts(u, b)
		r = e.do("POST", "/v1/models/torch/uploads/"+u.ID+"/commit", key, nil)
		if r.status != 201 || r.json(t)["version"] != float64(i+1) {
			t.Fatalf("%d: commit: %d %s", i, r.status, r.body)
		}
	}
	if r := e.do("GET", "/v2/models/torch", key, nil); r.status != 200 {
		t.Fatalf("metadata: %d %s", r.status, r.body)
	}
}
