// Package hardening drives the real aiaas binary — built from source and
// started as its own process — with hostile and malformed traffic, and
// checks that one tenant can never reach another's objects and that no
// request, however malformed, gets a 5xx.
//
// # Overview
//
// The tests here are end to end on purpose: they exercise routing, auth,
// name validation and error mapping together, the way an attacker would.
// They use the folder store so they run anywhere in a few seconds.
package hardening

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aiaas/aiaas/internal/testserver"
	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/sdk/client"
)

func artifact(t *testing.T, seed int64) []byte {
	t.Helper()
	spec := nn.MLP("digits", 784, []int{8}, "relu", 10, "softmax")
	spec.Outputs[0].Name = "probabilities"
	m, err := nn.New(spec, seed)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := m.WriteArtifact(&buf, nn.Metadata{Spec: spec}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type world struct {
	s          *testserver.Server
	keyA, keyB string
	shaA       string // sha256 of A's private version, which B must never see
}

// setup starts a server with two tenants that both own a model "digits";
// A also owns "secret" and a version 2 of "digits" that B lacks.
func setup(t *testing.T) *world {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := testserver.Start(t, "file://"+t.TempDir())
	admin, err := client.New(s.URL, &client.Options{APIKey: testserver.AdminKey})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{s: s}
	for i, name := range []string{"alpha", "beta"} {
		tn, err := admin.CreateTenant(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := client.New(s.URL, &client.Options{APIKey: tn.APIKey})
		art := artifact(t, int64(i+1))
		if _, err := c.PushModel(ctx, "digits", bytes.NewReader(art), int64(len(art)), nil); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			w.keyA = tn.APIKey
			art2 := artifact(t, 99)
			pm, err := c.PushModel(ctx, "digits", bytes.NewReader(art2), int64(len(art2)), nil)
			if err != nil {
				t.Fatal(err)
			}
			w.shaA = pm.SHA256
			if _, err := c.PushModel(ctx, "secret", bytes.NewReader(art2), int64(len(art2)), nil); err != nil {
				t.Fatal(err)
			}
		} else {
			w.keyB = tn.APIKey
		}
	}
	return w
}

func do(t *testing.T, method, url, key, ctype string, body []byte, hdr http.Header) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		// The client refused to build it (e.g. a NUL in the path): the
		// server never sees it, which is fine.
		return 0, nil
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, vs := range hdr {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	res, err := noRedirect.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	return res.StatusCode, b
}

// noRedirect shows redirects instead of following them, so a path that
// ServeMux cleans (a literal "..") is seen as the 301 it is.
var noRedirect = &http.Client{
	Timeout:       30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func isJSONError(b []byte) bool {
	var e struct {
		Error string `json:"error"`
	}
	return json.Unmarshal(b, &e) == nil && e.Error != ""
}

var inferBody = func() []byte {
	x := make([]float32, 784)
	b, _ := json.Marshal(map[string]any{"inputs": []map[string]any{{"name": "input", "shape": []int{1, 784}, "datatype": "FP32", "data": x}}})
	return b
}()

// TestIsolation tries every name-bearing route with tenant B's key on
// tenant A's objects and checks the answer is the same 404 as for a
// missing object, with no byte of A's data in it.
func TestIsolation(t *testing.T) {
	w := setup(t)
	u := w.s.URL
	cases := []struct {
		method, path, ctype string
		body                []byte
		want                int
	}{
		{"GET", "/v1/models/secret", "", nil, 404},
		{"GET", "/v2/models/secret", "", nil, 404},
		{"GET", "/v2/models/secret/ready", "", nil, 404},
		{"GET", "/v2/models/digits/versions/2", "", nil, 404},
		{"GET", "/v2/models/digits/versions/2/ready", "", nil, 404},
		{"POST", "/v2/models/secret/infer", "application/json", inferBody, 404},
		{"POST", "/v2/models/digits/versions/2/infer", "application/json", inferBody, 404},
		{"PUT", "/v1/models/secret/aliases/prod", "application/json", []byte(`{"version":1}`), 404},
		{"PUT", "/v1/models/digits/aliases/prod", "application/json", []byte(`{"version":2}`), 404},
		{"POST", "/v1/models/secret/explain", "application/json", []byte(`{"input":[0]}`), 404},
	}
	for i, c := range cases {
		st, b := do(t, c.method, u+c.path, w.keyB, c.ctype, c.body, nil)
		if st != c.want {
			t.Errorf("case %d: %s %s: status %d, want %d: %s", i, c.method, c.path, st, c.want, b)
		}
		if !isJSONError(b) {
			t.Errorf("case %d: %s %s: not a JSON error: %s", i, c.method, c.path, b)
		}
		if bytes.Contains(b, []byte(w.shaA)) {
			t.Errorf("case %d: %s %s: response leaks A's sha256", i, c.method, c.path)
		}
	}
	// B's listings and tenant metrics never name A's objects.
	for i, p := range []string{"/v1/models", "/v1/models/digits", "/v1/plugins", "/v1/endpoints", "/v1/datasets", "/v1/training-jobs", "/v1/evaluations", "/v1/audit", "/v1/metrics"} {
		st, b := do(t, "GET", u+p, w.keyB, "", nil, nil)
		if st != 200 {
			t.Errorf("case %d: GET %s: status %d: %s", i, p, st, b)
		}
		if bytes.Contains(b, []byte("secret")) || bytes.Contains(b, []byte(w.shaA)) || bytes.Contains(b, []byte("alpha")) {
			t.Errorf("case %d: GET %s leaks tenant A: %s", i, p, b)
		}
	}
	// Sanity: the same requests with A's key do reach A's objects, so the
	// 404s above come from isolation, not from a broken route.
	if st, b := do(t, "GET", u+"/v1/models/secret", w.keyA, "", nil, nil); st != 200 {
		t.Fatalf("A reads its own model: %d %s", st, b)
	}
	w.s.Stop()
	log := w.s.Log.String()
	for _, k := range []string{w.keyA, w.keyB, testserver.AdminKey} {
		if strings.Contains(log, k) {
			t.Errorf("server log contains an API key")
		}
	}
}

// TestPathTricks puts hostile names in every name position: the answer is
// 400 or 404 (a JSON error), never a 5xx, and never another object.
func TestPathTricks(t *testing.T) {
	w := setup(t)
	names := []string{"..", "%2e%2e", "..%2Fsecret", "digits%2F..%2Fsecret", "%2Fetc%2Fpasswd", strings.Repeat("a", 300),
		"d%C3%AFgits", "%E2%80%AEdigits", "digits%00", "dig%20its", ".hidden", "-x", "a%5Cb", "%252e%252e"}
	routes := []struct{ method, tmpl, ctype string }{
		{"GET", "/v1/models/{}", ""},
		{"GET", "/v2/models/{}", ""},
		{"GET", "/v2/models/digits/versions/{}", ""},
		{"POST", "/v2/models/{}/infer", "application/json"},
		{"POST", "/v2/models/digits/versions/{}/infer", "application/json"},
		{"PUT", "/v1/models/digits/aliases/{}", "application/json"},
		{"GET", "/v1/plugins/{}", ""},
		{"GET", "/v1/endpoints/{}", ""},
		{"POST", "/v1/endpoints/{}/invoke", "application/octet-stream"},
		{"GET", "/v1/training-jobs/{}", ""},
		{"GET", "/v1/evaluations/{}", ""},
		{"POST", "/v1/evaluations/{}/cancel", "application/json"},
		{"DELETE", "/v1/keys/{}", ""},
	}
	for i, r := range routes {
		for j, n := range names {
			path := strings.Replace(r.tmpl, "{}", n, 1)
			st, b := do(t, r.method, w.s.URL+path, w.keyB, r.ctype, []byte(`{"version":1}`), nil)
			if st == 0 {
				continue
			}
			if (st == http.StatusMovedPermanently || st == http.StatusTemporaryRedirect || st == http.StatusPermanentRedirect) && n == ".." {
				// ServeMux cleans the literal dot segment and redirects to
				// the cleaned path; nothing was served.
				continue
			}
			if st != 400 && st != 404 {
				t.Errorf("case %d/%d: %s %s: status %d, want 400 or 404: %s", i, j, r.method, path, st, b)
			}
			if bytes.Contains(b, []byte(w.shaA)) {
				t.Errorf("case %d/%d: %s %s leaks A's sha256", i, j, r.method, path)
			}
		}
	}
}

// TestBadInput sends malformed requests; each must get its documented
// 4xx and a JSON error, never a 5xx.
func TestBadInput(t *testing.T) {
	w := setup(t)
	u := w.s.URL
	infer := u + "/v2/models/digits/infer"
	tensor := func(shape, dtype, data string) []byte {
		return []byte(`{"inputs":[{"name":"input","shape":` + shape + `,"datatype":"` + dtype + `","data":` + data + `}]}`)
	}
	zeros := "[" + strings.TrimSuffix(strings.Repeat("0,", 784), ",") + "]"
	cases := []struct {
		method, url, key, ctype string
		body                    []byte
		hdr                     http.Header
		want                    int
	}{
		{"POST", infer, w.keyB, "application/json", []byte(`{`), nil, 400},
		{"POST", infer, w.keyB, "application/json", []byte(`[]`), nil, 400},
		{"POST", infer, w.keyB, "application/json", []byte(`{"inputs":"x"}`), nil, 400},
		{"POST", infer, w.keyB, "application/json", []byte(`{"inputs":[]}`), nil, 400},
		{"POST", infer, w.keyB, "application/json", tensor("[1,783]", "FP32", zeros), nil, 400},
		{"POST", infer, w.keyB, "application/json", tensor("[1,784]", "FP32", "[0]"), nil, 400},
		{"POST", infer, w.keyB, "application/json", tensor("[1,784]", "BOGUS", zeros), nil, 400},
		{"POST", infer, w.keyB, "application/json", tensor("[1,784]", "FP32", strings.Replace(zeros, "0", `"NaN"`, 1)), nil, 400},
		{"POST", infer, w.keyB, "application/json", tensor("[1,784]", "FP32", strings.Replace(zeros, "0", `"Infinity"`, 1)), nil, 400},
		{"POST", infer, w.keyB, "application/json", tensor("[1,784]", "FP32", strings.Replace(zeros, "0", "1e999", 1)), nil, 400},
		{"POST", infer, w.keyB, "application/json", tensor("[-1,784]", "FP32", zeros), nil, 400},
		{"POST", infer, w.keyB, "application/json", tensor("[1e12,1e12]", "FP32", zeros), nil, 400},
		{"POST", infer, w.keyB, "application/json", bytes.Repeat([]byte(" "), 7<<20), nil, 413},
		{"POST", infer, "", "application/json", inferBody, nil, 401},
		{"POST", infer, "garbage", "application/json", inferBody, nil, 401},
		{"POST", infer, "", "application/json", inferBody, http.Header{"Authorization": {"Basic Zm9vOmJhcg=="}}, 401},
		{"POST", infer, w.keyB, "application/octet-stream", inferBody, http.Header{"Inference-Header-Content-Length": {"abc"}}, 400},
		{"POST", infer, w.keyB, "application/octet-stream", inferBody, http.Header{"Inference-Header-Content-Length": {"99999999"}}, 400},
		{"POST", infer, w.keyB, "application/octet-stream", inferBody, http.Header{"Inference-Header-Content-Length": {"-5"}}, 400},
		{"POST", u + "/v1/tenants", testserver.AdminKey, "application/json", []byte(`{"name":"../x"}`), nil, 400},
		{"POST", u + "/v1/tenants", testserver.AdminKey, "application/json", []byte(`{"name":1}`), nil, 400},
		{"POST", u + "/v1/tenants", w.keyB, "application/json", []byte(`{"name":"zz"}`), nil, 403},
		{"POST", u + "/v1/keys", w.keyB, "application/json", []byte(`{"name":"k","scope":"root"}`), nil, 400},
		{"POST", u + "/v1/models/digits/versions", w.keyB, "application/octet-stream", []byte("not a model"), nil, 400},
		{"PUT", u + "/v1/models/digits/aliases/prod", w.keyB, "application/json", []byte(`{"version":"one"}`), nil, 400},
		{"PUT", u + "/v1/models/digits/aliases/latest", w.keyB, "application/json", []byte(`{"version":1}`), nil, 400},
		{"PUT", u + "/v1/plugins/p", w.keyB, "application/wasm", []byte("\x00asm garbage"), nil, 400},
		{"PUT", u + "/v1/endpoints/e", w.keyB, "application/json", []byte(`{"model":7}`), nil, 400},
		{"PUT", u + "/v1/datasets/d", w.keyB, "text/csv", []byte("a,b\n\x00\x01,zz\n"), nil, 400},
		{"POST", u + "/v1/training-jobs", w.keyB, "application/json", []byte(`{"model":"m","dataset":"nope","epochs":-1}`), nil, 400},
		{"POST", u + "/v1/evaluations", w.keyB, "application/json", []byte(`{"candidates":[{"model":"digits"}],"dataset":"d","memory_mb":1}`), nil, 400},
		{"POST", u + "/v1/evaluations", w.keyB, "application/json", []byte(`{"candidates":[{"model":"secret"}],"dataset":"mnist"}`), nil, 404},
		{"PUT", u + "/v1/models/digits/aliases/prod", w.keyB, "application/json", []byte(`{"version":1,"evaluation":"e00"}`), nil, 404},
		{"POST", u + "/v1/models/digits/explain", w.keyB, "application/json", []byte(`{"input":[1,2]}`), nil, 400},
		{"GET", u + "/v1/audit?limit=abc", w.keyB, "", nil, nil, 400},
	}
	for i, c := range cases {
		st, b := do(t, c.method, c.url, c.key, c.ctype, c.body, c.hdr)
		if st >= 500 || st != c.want {
			t.Errorf("case %d: %s %s: status %d, want %d: %.200s", i, c.method, c.url, st, c.want, b)
		}
		if !isJSONError(b) {
			t.Errorf("case %d: %s %s: not a JSON error: %.200s", i, c.method, c.url, b)
		}
	}
}

// TestInferContentType: the data plane reads any Content-Type (as KServe
// and Triton do, so `curl -d` with its form type works); control-plane JSON
// routes refuse other types with 415 (docs/api.md).
func TestInferContentType(t *testing.T) {
	w := setup(t)
	for _, ct := range []string{"application/json", "text/plain", "application/x-www-form-urlencoded", ""} {
		st, b := do(t, "POST", w.s.URL+"/v2/models/digits/infer", w.keyB, ct, inferBody, nil)
		if st != http.StatusOK {
			t.Fatalf("infer with Content-Type %q: status %d: %.200s", ct, st, b)
		}
	}
	st, b := do(t, "PUT", w.s.URL+"/v1/endpoints/e", w.keyB, "text/plain", []byte(`{"model":"digits"}`), nil)
	if st != http.StatusUnsupportedMediaType || !isJSONError(b) {
		t.Fatalf("control plane with text/plain: status %d: %.200s", st, b)
	}
}
