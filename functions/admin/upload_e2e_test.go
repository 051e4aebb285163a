package main

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aiaas/aiaas/functions/internal/rietest"
	"github.com/aiaas/aiaas/nn"
)

// TestLargeUploadUnderRIE pushes a 200 MB artifact through the staged
// upload path as it runs on AWS: the admin function (under the emulator,
// with its role's rights on MinIO) answers with presigned URLs, the parts
// go straight to MinIO (never through a Lambda event, which carries 6 MiB),
// the admin function commits — verifying size and sha256 while it seals
// the bytes into the version, in bounded memory — and the infer function
// (its own role) serves the version.
func TestLargeUploadUnderRIE(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a 200 MB upload")
	}
	if raceEnabled {
		// The bootstraps are never race builds, so the race run would
		// only make the 200 MB artifact slowly; the plain run covers it.
		t.Skip("race detector: nothing of this test's own code is concurrent")
	}
	rietest.Require(t)
	mio := rietest.RequireMinIO(t)
	bucket := mio.Bucket(t)
	var mk [32]byte
	_, _ = rand.Read(mk[:])
	env := []string{
		"AIAAS_STORE=s3://" + bucket + "?endpoint=" + mio.Endpoint + "&secure=false&region=us-east-1",
		"AIAAS_MASTER_KEY=" + base64.StdEncoding.EncodeToString(mk[:]),
		"AIAAS_ADMIN_KEY=" + adminKey,
		"AIAAS_PLUGIN_CACHE_DIR=" + t.TempDir(),
		"AIAAS_BATCH_WINDOW=0s",
		"AWS_LAMBDA_LOG_FORMAT=JSON",
	}
	role := func(id string) []string {
		ak, sk := mio.RoleUser(t, "../../infra/template.yaml", id, bucket)
		return append(env[:len(env):len(env)], "AIAAS_S3_ACCESS_KEY="+ak, "AIAAS_S3_SECRET_KEY="+sk)
	}
	// The artifact, made while the bootstraps build: a dense 1024 → 48310
	// → 10 network, 200 MB of weights, written to a file (never committed).
	path := filepath.Join(t.TempDir(), "big.safetensors")
	made := make(chan error, 1)
	go func() { made <- writeBigArtifact(path) }()
	bins := rietest.BuildAll(t, ".", "../infer")
	admin := rietest.Start(t, bins[0], &rietest.Options{Env: role("AdminFunction"), Timeout: 120 * time.Second})
	infer := rietest.Start(t, bins[1], &rietest.Options{Env: role("InferFunction"), Timeout: 120 * time.Second})
	if err := <-made; err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	size, _ := io.Copy(h, f)
	sum := hex.EncodeToString(h.Sum(nil))
	if size < 200e6 {
		t.Fatalf("artifact is %d bytes, want 200 MB", size)
	}

	status, r := call(t, admin, v2("POST", "/v1/tenants", adminKey, `{"name":"acme"}`, "application/json"))
	if status != 201 {
		t.Fatalf("create tenant: %d %v", status, r)
	}
	key := r["api_key"].(string)

	// The single-request path cannot carry it: the event itself is capped.
	start := time.Now()
	status, r = call(t, admin, v2("POST", "/v1/models/big/uploads", key, fmt.Sprintf(`{"size":%d,"sha256":%q}`, size, sum), "application/json"))
	if status != 201 {
		t.Fatalf("create upload: %d %v\n%s", status, r, admin.Logs())
	}
	var up struct {
		ID        string `json:"id"`
		Multipart bool   `json:"multipart"`
		Parts     []struct {
			Number int    `json:"number"`
			URL    string `json:"url"`
			Size   int64  `json:"size"`
		} `json:"parts"`
	}
	b, _ := json.Marshal(r)
	_ = json.Unmarshal(b, &up)
	if !up.Multipart || len(up.Parts) != 3 || !strings.Contains(up.Parts[0].URL, mio.Endpoint) {
		t.Fatalf("upload: multipart %v, %d parts, first URL %.80s", up.Multipart, len(up.Parts), up.Parts[0].URL)
	}
	type part struct {
		Number int    `json:"number"`
		ETag   string `json:"etag"`
	}
	var parts []part
	off := int64(0)
	for _, p := range up.Parts {
		req, _ := http.NewRequest("PUT", p.URL, io.NewSectionReader(f, off, p.Size))
		req.ContentLength = p.Size
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("PUT part %d straight to MinIO: %d %s", p.Number, res.StatusCode, msg)
		}
		parts = append(parts, part{p.Number, res.Header.Get("ETag")})
		off += p.Size
	}
	uploaded := time.Since(start)

	// A wrong part list is refused without publishing; then the real commit.
	bad, _ := json.Marshal(map[string]any{"parts": []part{{1, parts[1].ETag}, {2, parts[1].ETag}, {3, parts[2].ETag}}})
	if status, r := call(t, admin, v2("POST", "/v1/models/big/uploads/"+up.ID+"/commit", key, string(bad), "application/json")); status != 400 {
		t.Fatalf("commit with a wrong etag: %d %v", status, r)
	}
	commit, _ := json.Marshal(map[string]any{"parts": parts})
	start = time.Now()
	status, r = call(t, admin, v2("POST", "/v1/models/big/uploads/"+up.ID+"/commit", key, string(commit), "application/json"))
	if status != 201 || r["version"] != float64(1) || r["sha256"] != sum || r["size"] != float64(size) {
		t.Fatalf("commit: %d %v\n%s", status, r, admin.Logs())
	}
	committed := time.Since(start)
	peak, perr := admin.PeakRSS()
	if perr == nil && peak > size*3/4 {
		t.Errorf("the admin function peaked at %d MiB committing a %d MiB artifact: not bounded", peak>>20, size>>20)
	}
	if status, r := call(t, admin, v2("POST", "/v1/models/big/uploads/"+up.ID+"/commit", key, string(commit), "application/json")); status != 200 || r["version"] != float64(1) {
		t.Errorf("second commit: %d %v", status, r)
	}

	// Served by the infer function.
	in := make([]float32, 1024)
	for i := range in {
		in[i] = float32(i%13) / 13
	}
	body, _ := json.Marshal(map[string]any{"inputs": []map[string]any{{"name": "input", "shape": []int{1, 1024}, "datatype": "FP32", "data": in}}})
	start = time.Now()
	status, r = call(t, infer, v2("POST", "/v2/models/big/infer", key, string(body), "application/json"))
	if status != 200 {
		t.Fatalf("infer: %d %v\n%s", status, r, infer.Logs())
	}
	outs, _ := r["outputs"].([]any)
	if len(outs) != 1 {
		t.Fatalf("infer outputs: %v", r)
	}
	t.Logf("200 MB artifact (%d bytes): 3 parts PUT to MinIO in %v; commit (verify + seal + publish) %v, admin peak RSS %d MiB (%v); first infer (load from MinIO) %v",
		size, uploaded.Round(time.Millisecond), committed.Round(time.Millisecond), peak>>20, perr, time.Since(start).Round(time.Millisecond))
}

func writeBigArtifact(path string) error {
	m, err := nn.New(nn.MLP("big", 1024, []int{48310}, "relu", 10, "softmax"), 7)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := m.WriteArtifact(bw, nn.Metadata{Provenance: map[string]string{"test": "large upload"}}); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.Close()
}
