package platform_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aiaas/aiaas/internal/safetensors"
	"github.com/aiaas/aiaas/platform/config"
)

// TestBodyBudgetOverHTTP: uploads in flight hold their bytes against the
// process's body budget. A tenant past half of it is refused with 429 and
// Retry-After before its bytes are read; the process past all of it
// refuses anyone's next body with 503; another tenant's inference is
// unaffected while the first tenant's uploads hang; and once they end, the
// budget is whole again.
func TestBodyBudgetOverHTTP(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.MaxBodyBytes, c.MaxArtifactBytes, c.BodyBudgetBytes = 1<<20, 2<<20, 4<<20 // 2 MiB a tenant
	})
	a, b, c := e.tenant("a"), e.tenant("b"), e.tenant("c")
	e.publish(b, "clf", 1)

	// A safetensors file of 1.5 MiB of weights (and no spec: the upload is
	// refused once whole): the server reads it all, and holds it.
	file := safetensors.Encode(&safetensors.File{Tensors: []safetensors.Tensor{
		safetensors.F32("w", []int{1500 << 8}, make([]float32, 1500<<8))}})
	// start sends n bytes of that upload and keeps the body open: the
	// server holds them until the body ends or the request fails.
	type upload struct {
		w    *io.PipeWriter
		done chan *http.Response
	}
	start := func(key string, n int) upload {
		pr, pw := io.Pipe()
		req, _ := http.NewRequest("POST", e.ts.URL+"/v1/models/big/versions", pr)
		req.Header.Set("Authorization", "Bearer "+key)
		u := upload{pw, make(chan *http.Response, 1)}
		go func() {
			res, err := e.ts.Client().Do(req)
			if err != nil {
				u.done <- nil
				return
			}
			u.done <- res
		}()
		go pw.Write(file[:n])
		return u
	}
	status := func(u upload) int {
		select {
		case res := <-u.done:
			if res == nil {
				return -1
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusTooManyRequests || res.StatusCode == http.StatusServiceUnavailable {
				if res.Header.Get("Retry-After") == "" {
					t.Errorf("%d without Retry-After", res.StatusCode)
				}
			}
			return res.StatusCode
		case <-time.After(30 * time.Second):
			t.Fatal("no answer")
			return 0
		}
	}
	heldRe := regexp.MustCompile(`(?m)^aiaas_request_body_bytes_held (\S+)$`)
	held := func(atLeast float64) {
		// Wait until the server has read (and reserved) what was sent.
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if m := heldRe.FindStringSubmatch(string(e.do("GET", "/metrics", adminKey, nil).body)); m != nil {
				if v, _ := strconv.ParseFloat(m[1], 64); v >= atLeast {
					return
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("the server never held %v bytes", atLeast)
	}
	a1 := start(a, 1500<<10)
	held(1500 << 10)
	a2 := start(a, 1500<<10) // a's second: past its 2 MiB share
	if got := status(a2); got != http.StatusTooManyRequests {
		t.Fatalf("tenant a's second upload: %d, want 429", got)
	}
	// b infers while a's upload hangs.
	if r := e.do("POST", "/v2/models/clf/infer", b, inferBody(1)); r.status != 200 {
		t.Fatalf("tenant b's inference: %d %s", r.status, r.body)
	}
	c1 := start(c, 1500<<10)
	held(3000 << 10)
	b1 := start(b, 1500<<10) // the process: a 1.5 + c 1.5 + b 1.5 > 4 MiB
	if got := status(b1); got != http.StatusServiceUnavailable {
		t.Fatalf("an upload past the process's budget: %d, want 503", got)
	}
	// The hanging uploads end — cut short: 400 — and the budget is whole.
	a1.w.Close()
	c1.w.Close()
	if got := status(a1); got != http.StatusBadRequest {
		t.Errorf("tenant a's first upload: %d, want 400 (cut short)", got)
	}
	status(c1)
	if r := e.do("POST", "/v1/models/clf/versions", a, artifact(t, 2)); r.status != 201 {
		t.Fatalf("after the uploads ended, tenant a's upload: %d %s", r.status, r.body)
	}
}

// TestDatasetCheckedNotHeld: a dataset upload is checked value by value
// and stored as it came, its values never held: a 30 KiB gzip of 3 M
// values (12 MiB parsed, which a tenant share of 16 MiB could not hold
// twice while its arrays grew) is accepted with its counts, a bad value
// deep inside it is still found, and the budget is whole after each.
func TestDatasetCheckedNotHeld(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.MaxBodyBytes, c.MaxArtifactBytes, c.BodyBudgetBytes = 1<<20, 1<<20, 32<<20 // 16 MiB a tenant
	})
	a := e.tenant("a")
	csvGz := func(rows int, last string) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		row := []byte(strings.Repeat("0,", 99) + "1\n") // 99 features
		for range rows {
			zw.Write(row)
		}
		zw.Write([]byte(last))
		zw.Close()
		return buf.Bytes()
	}
	heldRe := regexp.MustCompile(`(?m)^aiaas_request_body_bytes_held (\S+)$`)
	whole := func(when string) {
		t.Helper()
		if m := heldRe.FindStringSubmatch(string(e.do("GET", "/metrics", adminKey, nil).body)); m == nil || m[1] != "0" {
			t.Errorf("%s: the budget holds %v bytes, want 0", when, m)
		}
	}
	big := csvGz(30000, "")
	r := e.do("PUT", "/v1/datasets/big", a, big, "Content-Type", "text/csv")
	if r.status != http.StatusCreated || r.json(t)["rows"] != float64(30000) || r.json(t)["features"] != float64(99) {
		t.Fatalf("a %d KiB gzip of 3 M values: %d %s, want 201 with its 30,000 rows", len(big)>>10, r.status, r.body)
	}
	whole("after the upload")
	bad := csvGz(30000, strings.Repeat("0,", 50)+"x,"+strings.Repeat("0,", 48)+"1\n")
	if r := e.do("PUT", "/v1/datasets/bad", a, bad, "Content-Type", "text/csv"); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "line 30001 column 51") {
		t.Errorf("a bad value on line 30,001: %d %s", r.status, r.body)
	}
	whole("after the refusal")
	// It was stored.
	if r := e.do("GET", "/v1/datasets", a, nil); !strings.Contains(string(r.body), `"big"`) {
		t.Errorf("the dataset is not listed: %s", r.body)
	}
}
