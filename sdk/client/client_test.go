package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recorded is what the test server saw of one request.
type recorded struct {
	method, path, rawPath, query string
	auth, contentType            string
	contentLength                int64
	header                       http.Header
	body                         []byte
}

// server is an httptest server answering every request with the reply
// its handler chooses, recording what it received.
type server struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
}

func newServer(t *testing.T, reply func(w http.ResponseWriter, r *http.Request, body []byte)) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, recorded{r.Method, r.URL.Path, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), r.ContentLength, r.Header.Clone(), body})
		s.mu.Unlock()
		w.Header().Set("X-Request-Id", "req-1")
		reply(w, r, body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) last() recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reqs[len(s.reqs)-1]
}

func (s *server) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

func writeJSON(w http.ResponseWriter, status int, v string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, v)
}

func newClient(t testing.TB, url string, opts *Options) *Client {
	t.Helper()
	if opts == nil {
		opts = &Options{APIKey: "k-test"}
	}
	c, err := New(url, opts)
	if err != nil {
		t.Fatal(err)
	}
	c.sleep = func(ctx context.Context, d time.Duration) error { return ctx.Err() }
	return c
}

func TestNew(t *testing.T) {
	for i, tc := range []struct {
		url  string
		opts *Options
		ok   bool
	}{
		{"http://127.0.0.1:8080", nil, true},
		{"https://api.example.com/aiaas/", nil, true},
		{"127.0.0.1:8080", nil, false},
		{"ftp://x", nil, false},
		{"http://", nil, false},
		{"http://x?a=b", nil, false},
		{"http://x", &Options{Retry: &RetryPolicy{MaxAttempts: 0}}, false},
		{"http://x", &Options{Retry: &RetryPolicy{MaxAttempts: 1, BaseDelay: -1}}, false},
		{"http://x", &Options{Retry: &RetryPolicy{MaxAttempts: 1}}, true},
	} {
		_, err := New(tc.url, tc.opts)
		if (err == nil) != tc.ok {
			t.Errorf("case %d (%q): err = %v, want ok=%v", i, tc.url, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("case %d: %v is not ErrInvalidArgument", i, err)
		}
	}
}

// TestRoutes checks that each method sends the contract's method, path
// and body, and decodes the contract's answer.
func TestRoutes(t *testing.T) {
	var answer struct {
		status int
		body   string
	}
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		if answer.status == http.StatusNoContent {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		writeJSON(w, answer.status, answer.body)
	})
	c := newClient(t, s.URL+"/prefix", nil)
	ctx := context.Background()
	ts := time.Date(2026, 11, 29, 1, 2, 3, 0, time.UTC)
	for i, tc := range []struct {
		name         string
		status       int
		reply        string
		call         func() (any, error)
		method, path string
		query        string
		reqBody      string // JSON compared semantically; "" = no body
		want         string // JSON of the decoded result
	}{
		{"live", 200, `{"live":true}`, func() (any, error) { return c.Live(ctx) }, "GET", "/v2/health/live", "", "", `true`},
		{"ready", 200, `{"ready":true}`, func() (any, error) { return c.Ready(ctx) }, "GET", "/v2/health/ready", "", "", `true`},
		{"server metadata", 200, `{"name":"aiaas","version":"1","extensions":["binary_tensor_data"]}`,
			func() (any, error) { return c.ServerMetadata(ctx) }, "GET", "/v2", "", "", `{"name":"aiaas","version":"1","extensions":["binary_tensor_data"]}`},
		{"model metadata", 200, `{"name":"mnist","versions":["1","2"],"platform":"aiaas-gonum","inputs":[{"name":"input","datatype":"FP32","shape":[-1,784]}],"outputs":[]}`,
			func() (any, error) { return c.ModelMetadata(ctx, "mnist", "") }, "GET", "/v2/models/mnist", "", "",
			`{"name":"mnist","versions":["1","2"],"platform":"aiaas-gonum","inputs":[{"name":"input","datatype":"FP32","shape":[-1,784]}],"outputs":[]}`},
		{"model metadata version", 200, `{"name":"mnist","platform":"aiaas-gonum","inputs":null,"outputs":null}`,
			func() (any, error) { return c.ModelMetadata(ctx, "mnist", "prod") }, "GET", "/v2/models/mnist/versions/prod", "", "",
			`{"name":"mnist","platform":"aiaas-gonum","inputs":null,"outputs":null}`},
		{"model ready", 200, `{"name":"mnist","ready":true}`, func() (any, error) { return c.ModelReady(ctx, "mnist", "2") }, "GET", "/v2/models/mnist/versions/2/ready", "", "", `true`},
		{"put endpoint", 201, `{"name":"digits","model":"mnist","version":"prod","preprocess":"png","created":"2026-11-29T01:02:03Z","updated":"2026-11-29T01:02:03Z"}`,
			func() (any, error) {
				e, created, err := c.PutEndpoint(ctx, "digits", &Endpoint{Model: "mnist", Version: "prod", Preprocess: "png"})
				return []any{e, created}, err
			}, "PUT", "/v1/endpoints/digits", "", `{"model":"mnist","version":"prod","preprocess":"png"}`,
			`[{"name":"digits","model":"mnist","version":"prod","preprocess":"png","created":"2026-11-29T01:02:03Z","updated":"2026-11-29T01:02:03Z"},true]`},
		{"put text endpoint", 200, `{"name":"minilm","model":"m","version":"","preprocess":"wordpiece","postprocess":"pool","forward_inputs":["attention_mask"],"generation":{"max_tokens":8}}`,
			func() (any, error) {
				e, created, err := c.PutEndpoint(ctx, "minilm", &Endpoint{Model: "m", Preprocess: "wordpiece", Postprocess: "pool",
					ForwardInputs: []string{"attention_mask"}, Generation: &GenerationConfig{MaxTokens: 8}})
				return []any{e, created}, err
			}, "PUT", "/v1/endpoints/minilm", "",
			`{"model":"m","version":"","preprocess":"wordpiece","postprocess":"pool","forward_inputs":["attention_mask"],"generation":{"max_tokens":8}}`,
			`[{"name":"minilm","model":"m","version":"","preprocess":"wordpiece","postprocess":"pool","forward_inputs":["attention_mask"],"generation":{"max_tokens":8}},false]`},
		{"list endpoints", 200, `{"endpoints":[{"name":"a","model":"m","version":""}]}`, func() (any, error) { return c.Endpoints(ctx) }, "GET", "/v1/endpoints", "", "",
			`[{"name":"a","model":"m","version":""}]`},
		{"get endpoint", 200, `{"name":"a b","model":"m","version":"1"}`, func() (any, error) { return c.Endpoint(ctx, "a b") }, "GET", "/v1/endpoints/a%20b", "", "",
			`{"name":"a b","model":"m","version":"1"}`},
		{"delete endpoint", 204, ``, func() (any, error) { return nil, c.DeleteEndpoint(ctx, "a") }, "DELETE", "/v1/endpoints/a", "", "", `null`},
		{"create tenant", 201, `{"id":"t1","name":"acme","api_key":"aiaas_x"}`, func() (any, error) { return c.CreateTenant(ctx, "acme") }, "POST", "/v1/tenants", "", `{"name":"acme"}`,
			`{"id":"t1","name":"acme","api_key":"aiaas_x"}`},
		{"list tenants", 200, `{"tenants":[{"id":"t1","name":"acme","created":"2026-11-29T01:02:03Z"}]}`, func() (any, error) { return c.Tenants(ctx) }, "GET", "/v1/tenants", "", "",
			`[{"id":"t1","name":"acme","created":"2026-11-29T01:02:03Z"}]`},
		{"create key", 201, `{"id":"k1","name":"ci","scope":"invoke","api_key":"aiaas_y","created":"2026-11-29T01:02:03Z"}`,
			func() (any, error) { return c.CreateKey(ctx, "ci", ScopeInvoke) }, "POST", "/v1/keys", "", `{"name":"ci","scope":"invoke"}`,
			`{"id":"k1","name":"ci","scope":"invoke","api_key":"aiaas_y","created":"2026-11-29T01:02:03Z"}`},
		{"list keys", 200, `{"keys":[{"id":"k1","name":"ci","scope":"invoke","created":"2026-11-29T01:02:03Z","revoked":"2026-11-29T01:02:03Z"}]}`,
			func() (any, error) { return c.Keys(ctx) }, "GET", "/v1/keys", "limit=1000", "",
			`[{"id":"k1","name":"ci","scope":"invoke","created":"2026-11-29T01:02:03Z","revoked":"2026-11-29T01:02:03Z"}]`},
		{"revoke key", 204, ``, func() (any, error) { return nil, c.RevokeKey(ctx, "k1") }, "DELETE", "/v1/keys/k1", "", "", `null`},
		{"list models", 200, `{"models":[{"name":"mnist","latest":3,"versions":3,"aliases":{"prod":{"version":2}}}]}`,
			func() (any, error) { return c.Models(ctx) }, "GET", "/v1/models", "", "",
			`[{"name":"mnist","latest":3,"versions":3,"aliases":{"prod":{"version":2}}}]`},
		{"get model", 200, `{"name":"mnist","aliases":{"prod":{"version":2,"canary_version":3,"canary_weight":10}},"versions":[{"version":1,"sha256":"ab","size":9,"created":"2026-11-29T01:02:03Z","inputs":[],"outputs":[],"metrics":{"test_accuracy":0.97},"latency":{"batches":[{"batch":1,"median_ns":1000,"p99_ns":2000}]}}]}`,
			func() (any, error) { return c.Model(ctx, "mnist") }, "GET", "/v1/models/mnist", "", "",
			`{"name":"mnist","aliases":{"prod":{"version":2,"canary_version":3,"canary_weight":10}},"versions":[{"version":1,"sha256":"ab","size":9,"created":"2026-11-29T01:02:03Z","inputs":[],"outputs":[],"metrics":{"test_accuracy":0.97},"latency":{"batches":[{"batch":1,"median_ns":1000,"p99_ns":2000}]}}]}`},
		{"set alias", 200, `{"model":"mnist","alias":"prod","version":2,"canary_version":3,"canary_weight":10}`,
			func() (any, error) {
				return c.SetAlias(ctx, "mnist", "prod", Alias{Version: 2, CanaryVersion: 3, CanaryWeight: 10})
			}, "PUT", "/v1/models/mnist/aliases/prod", "", `{"version":2,"canary_version":3,"canary_weight":10}`,
			`{"model":"mnist","alias":"prod","version":2,"canary_version":3,"canary_weight":10}`},
		{"explain", 200, `{"model":"mnist","version":3,"target":7,"method":"gradient_x_input","output":[0.1,0.9],"attributions":[0.5,-0.5]}`,
			func() (any, error) {
				target := 7
				return c.Explain(ctx, "mnist", &ExplainRequest{Version: "prod", Input: []float32{1, 2}, Target: &target, Method: MethodGradientXInput})
			}, "POST", "/v1/models/mnist/explain", "", `{"version":"prod","input":[1,2],"target":7,"method":"gradient_x_input"}`,
			`{"model":"mnist","version":"3","target":7,"method":"gradient_x_input","output":[0.1,0.9],"attributions":[0.5,-0.5]}`},
		{"list plugins", 200, `{"plugins":[{"name":"png","sha256":"cd","size":10,"exports":["preprocess"],"abi_version":1}]}`,
			func() (any, error) { return c.Plugins(ctx) }, "GET", "/v1/plugins", "", "",
			`[{"name":"png","sha256":"cd","size":10,"exports":["preprocess"],"abi_version":1}]`},
		{"get plugin", 200, `{"name":"png","sha256":"cd","size":10,"exports":[],"abi_version":1}`,
			func() (any, error) { return c.Plugin(ctx, "png") }, "GET", "/v1/plugins/png", "", "",
			`{"name":"png","sha256":"cd","size":10,"exports":[],"abi_version":1}`},
		{"submit job", 202, `{"id":"j1","status":"queued","model":"mnist"}`,
			func() (any, error) {
				return c.SubmitTrainingJob(ctx, &TrainingRequest{Model: "mnist", Dataset: "mnist", Layers: []int{128, 128}, Activation: "relu", Optimizer: "adam", LearningRate: 0.001, BatchSize: 32, Epochs: 5, Seed: 1})
			}, "POST", "/v1/training-jobs", "", `{"model":"mnist","dataset":"mnist","layers":[128,128],"activation":"relu","optimizer":"adam","learning_rate":0.001,"batch_size":32,"epochs":5,"seed":1}`,
			`{"id":"j1","status":"queued","model":"mnist"}`},
		{"get job", 200, `{"id":"j1","status":"succeeded","model":"mnist","progress":{"epoch":5,"epochs":5,"batch":10,"batches":10,"loss":0.1,"accuracy":0.9},"epochs":[{"epoch":1,"loss":0.3,"accuracy":0.9,"val_loss":0.2,"seconds":1.5}],"result":{"version":4,"test_accuracy":0.97,"sha256":"ef"},"created":"2026-11-29T01:02:03Z"}`,
			func() (any, error) { return c.TrainingJob(ctx, "j1") }, "GET", "/v1/training-jobs/j1", "", "",
			`{"id":"j1","status":"succeeded","model":"mnist","progress":{"epoch":5,"epochs":5,"batch":10,"batches":10,"loss":0.1,"accuracy":0.9},"epochs":[{"epoch":1,"loss":0.3,"accuracy":0.9,"val_loss":0.2,"seconds":1.5}],"result":{"version":4,"test_accuracy":0.97,"sha256":"ef"},"created":"2026-11-29T01:02:03Z"}`},
		{"list jobs", 200, `{"jobs":[{"id":"j1","status":"running","model":"mnist"}]}`, func() (any, error) { return c.TrainingJobs(ctx) }, "GET", "/v1/training-jobs", "", "",
			`[{"id":"j1","status":"running","model":"mnist"}]`},
		{"audit", 200, `{"records":[{"seq":5,"time":"2026-11-29T01:02:03Z","request_id":"r","actor":"k1","action":"infer","object":"models/mnist","status":200,"latency_ms":1.5,"prev":"aa","hash":"bb"}],"next_after":5}`,
			func() (any, error) { return c.Audit(ctx, &AuditQuery{After: 4, Since: ts, Limit: 10}) }, "GET", "/v1/audit", "after=4&limit=10&since=2026-11-29T01%3A02%3A03Z", "",
			`{"records":[{"seq":5,"time":"2026-11-29T01:02:03Z","request_id":"r","actor":"k1","action":"infer","object":"models/mnist","status":200,"latency_ms":1.5,"prev":"aa","hash":"bb"}],"next_after":5}`},
		{"audit verify", 200, `{"records":9,"segments":1,"ok":false,"problems":["seq 3: hash mismatch"]}`,
			func() (any, error) { return c.VerifyAudit(ctx) }, "GET", "/v1/audit/verify", "", "",
			`{"records":9,"segments":1,"ok":false,"problems":["seq 3: hash mismatch"]}`},
	} {
		answer.status, answer.body = tc.status, tc.reply
		got, err := tc.call()
		if err != nil {
			t.Errorf("case %d (%s): %v", i, tc.name, err)
			continue
		}
		r := s.last()
		if r.method != tc.method || r.rawPath != "/prefix"+tc.path || r.query != tc.query {
			t.Errorf("case %d (%s): sent %s %s?%s, want %s /prefix%s?%s", i, tc.name, r.method, r.rawPath, r.query, tc.method, tc.path, tc.query)
		}
		if r.auth != "Bearer k-test" {
			t.Errorf("case %d (%s): Authorization %q", i, tc.name, r.auth)
		}
		if tc.reqBody == "" {
			if len(r.body) != 0 {
				t.Errorf("case %d (%s): unexpected body %s", i, tc.name, r.body)
			}
		} else {
			if !jsonEqual(t, r.body, []byte(tc.reqBody)) {
				t.Errorf("case %d (%s): body %s, want %s", i, tc.name, r.body, tc.reqBody)
			}
			if r.contentType != "application/json" || r.contentLength != int64(len(r.body)) {
				t.Errorf("case %d (%s): Content-Type %q Content-Length %d", i, tc.name, r.contentType, r.contentLength)
			}
		}
		gotJSON, _ := json.Marshal(got)
		if !jsonEqual(t, gotJSON, []byte(tc.want)) {
			t.Errorf("case %d (%s): decoded %s, want %s", i, tc.name, gotJSON, tc.want)
		}
	}
}

func jsonEqual(t testing.TB, a, b []byte) bool {
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Errorf("bad JSON %s: %v", a, err)
		return false
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Errorf("bad JSON %s: %v", b, err)
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

func TestInvalidArguments(t *testing.T) {
	c := newClient(t, "http://127.0.0.1:1", nil)
	ctx := context.Background()
	for i, f := range []func() error{
		func() error { _, err := c.ModelMetadata(ctx, "", ""); return err },
		func() error { _, err := c.ModelMetadata(ctx, "m", ".."); return err },
		func() error { _, _, err := c.PutEndpoint(ctx, "e", &Endpoint{}); return err },
		func() error { _, err := c.CreateKey(ctx, "ci", "root"); return err },
		func() error { _, err := c.SetAlias(ctx, "m", "prod", Alias{Version: 0}); return err },
		func() error {
			_, err := c.SetAlias(ctx, "m", "prod", Alias{Version: 1, CanaryWeight: 101, CanaryVersion: 2})
			return err
		},
		func() error { _, err := c.PushModel(ctx, "m", nil, 1, nil); return err },
		func() error { _, err := c.PushModel(ctx, "m", strings.NewReader(""), -1, nil); return err },
		func() error { _, err := c.Infer(ctx, "m", "", &InferRequest{}); return err },
		func() error {
			_, err := c.Infer(ctx, "m", "", &InferRequest{Inputs: []InferInput{{Name: "x", Datatype: "FP32", Shape: []int64{1, 3}, Data: []float32{1, 2}}}})
			return err
		},
		func() error {
			_, err := c.InferBinary(ctx, "m", "", &InferRequest{Inputs: []InferInput{{Name: "x", Datatype: "FP64", Shape: []int64{2}, Data: []float32{1, 2}}}})
			return err
		},
		func() error { _, err := c.SubmitTrainingJob(ctx, &TrainingRequest{Model: "m"}); return err },
		func() error { _, err := c.Explain(ctx, "m", &ExplainRequest{}); return err },
	} {
		if err := f(); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("case %d: err = %v, want ErrInvalidArgument", i, err)
		}
	}
}

func TestAPIError(t *testing.T) {
	for i, tc := range []struct {
		status     int
		body       string
		retryAfter string
		is         func(error) bool
		msg        string
		wantRA     time.Duration
	}{
		{404, `{"error":"model \"x\" not found"}`, "", IsNotFound, `model "x" not found`, 0},
		{401, `{"error":"unknown key"}`, "", IsUnauthorized, "unknown key", 0},
		{403, `{"error":"key lacks scope manage"}`, "", IsForbidden, "key lacks scope manage", 0},
		{400, `{"error":"bad shape"}`, "", IsBadRequest, "bad shape", 0},
		{409, `{"error":"exists"}`, "", IsConflict, "exists", 0},
		{413, `{"error":"too large"}`, "", IsTooLarge, "too large", 0},
		{429, `{"error":"quota"}`, "3", IsRateLimited, "quota", 3 * time.Second},
		{503, `<html>bad gateway</html>`, "1", IsUnavailable, "<html>bad gateway</html>", time.Second},
		{500, ``, "", func(err error) bool { return StatusCode(err) == 500 }, "Internal Server Error", 0},
	} {
		s := newServer(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
			if tc.retryAfter != "" {
				w.Header().Set("Retry-After", tc.retryAfter)
			}
			writeJSON(w, tc.status, tc.body)
		})
		c := newClient(t, s.URL, &Options{Retry: &RetryPolicy{MaxAttempts: 1}})
		_, err := c.Models(context.Background())
		var ae *APIError
		if !errors.As(err, &ae) {
			t.Errorf("case %d: err %v is not an *APIError", i, err)
			continue
		}
		if !tc.is(err) || ae.Status != tc.status || ae.Message != tc.msg || ae.RequestID != "req-1" || ae.RetryAfter != tc.wantRA {
			t.Errorf("case %d: got %+v", i, ae)
		}
		if !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), "req-1") {
			t.Errorf("case %d: message %q", i, err)
		}
		if IsNotFound(err) != (tc.status == 404) || IsRetryable(err) != (tc.status == 429 || tc.status == 503) {
			t.Errorf("case %d: helper mismatch", i)
		}
	}
}

func TestRetry(t *testing.T) {
	for i, tc := range []struct {
		name     string
		statuses []int // replies in order, then 200
		call     func(c *Client) error
		attempts int
		wantErr  bool
	}{
		{"GET retried on 429 then ok", []int{429, 503}, func(c *Client) error { _, err := c.Models(context.Background()); return err }, 3, false},
		{"gives up after MaxAttempts", []int{503, 503, 503, 503}, func(c *Client) error { _, err := c.Models(context.Background()); return err }, 3, true},
		{"500 not retried", []int{500}, func(c *Client) error { _, err := c.Models(context.Background()); return err }, 1, true},
		{"404 not retried", []int{404}, func(c *Client) error { _, err := c.Models(context.Background()); return err }, 1, true},
		{"POST refused with 429 is retried", []int{429}, func(c *Client) error { _, err := c.CreateTenant(context.Background(), "a"); return err }, 2, false},
		{"seekable upload retried", []int{503}, func(c *Client) error {
			_, err := c.PushModel(context.Background(), "m", strings.NewReader("weights"), 7, nil)
			return err
		}, 2, false},
		{"stream upload not retried", []int{503}, func(c *Client) error {
			_, err := c.PushModel(context.Background(), "m", io.LimitReader(strings.NewReader("weights"), 7), 7, nil)
			return err
		}, 1, true},
	} {
		var n atomic.Int32
		s := newServer(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
			k := int(n.Add(1)) - 1
			if k < len(tc.statuses) {
				w.Header().Set("Retry-After", "0")
				writeJSON(w, tc.statuses[k], `{"error":"busy"}`)
				return
			}
			if r.Method == http.MethodPost && r.URL.Path == "/v1/models/m/versions" && string(body) != "weights" {
				writeJSON(w, 400, `{"error":"short body"}`)
				return
			}
			writeJSON(w, 200, `{"models":[],"id":"x"}`)
		})
		c := newClient(t, s.URL, &Options{Retry: &RetryPolicy{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}})
		var slept []time.Duration
		c.sleep = func(ctx context.Context, d time.Duration) error { slept = append(slept, d); return nil }
		err := tc.call(c)
		if (err != nil) != tc.wantErr || s.count() != tc.attempts {
			t.Errorf("case %d (%s): err %v, %d attempts; want err=%v, %d attempts", i, tc.name, err, s.count(), tc.wantErr, tc.attempts)
		}
		if len(slept) != s.count()-1 {
			t.Errorf("case %d (%s): slept %d times for %d attempts", i, tc.name, len(slept), s.count())
		}
	}
}

func TestRetryUnreachable(t *testing.T) {
	// A closed port: every attempt is a dial error, so even a POST is
	// retried (the server never received it).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c := newClient(t, "http://"+addr, &Options{Retry: &RetryPolicy{MaxAttempts: 3}})
	sleeps := 0
	c.sleep = func(context.Context, time.Duration) error { sleeps++; return nil }
	_, err = c.CreateTenant(context.Background(), "acme")
	if !IsUnreachable(err) || !IsRetryable(err) || sleeps != 2 {
		t.Fatalf("err %v (unreachable %v), sleeps %d", err, IsUnreachable(err), sleeps)
	}
}

func TestBackoffHonoursRetryAfter(t *testing.T) {
	c := newClient(t, "http://x", &Options{Retry: &RetryPolicy{MaxAttempts: 5, BaseDelay: 10 * time.Millisecond, MaxDelay: 2 * time.Second}})
	for i, tc := range []struct {
		attempt    int
		retryAfter time.Duration
		lo, hi     time.Duration
	}{
		{1, 0, 0, 10 * time.Millisecond},
		{3, 0, 0, 40 * time.Millisecond},
		{30, 0, 0, 2 * time.Second},
		{1, time.Second, time.Second, time.Second},
		{1, time.Hour, 2 * time.Second, 2 * time.Second},
	} {
		for range 50 {
			if d := c.backoff(tc.attempt, tc.retryAfter); d < tc.lo || d > tc.hi {
				t.Fatalf("case %d: backoff %v outside [%v, %v]", i, d, tc.lo, tc.hi)
			}
		}
	}
}

// genReader yields n deterministic bytes without holding them.
type genReader struct{ n, off int64 }

func (g *genReader) Read(p []byte) (int, error) {
	if g.off >= g.n {
		return 0, io.EOF
	}
	k := min(int64(len(p)), g.n-g.off)
	for i := range k {
		p[i] = byte(g.off + i)
	}
	g.off += k
	return int(k), nil
}

func TestPushModelStreams(t *testing.T) {
	const size = 32 << 20
	var got atomic.Int64
	var gotLen atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotLen.Store(r.ContentLength)
		n, _ := io.Copy(io.Discard, r.Body)
		got.Store(n)
		if r.Header.Get("Content-Type") != "application/octet-stream" {
			writeJSON(w, 400, `{"error":"content type"}`)
			return
		}
		writeJSON(w, 201, fmt.Sprintf(`{"model":"mnist","version":3,"sha256":"ab","size":%d,"inputs":[],"outputs":[]}`, n))
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, nil)
	var last, calls int64
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	pm, err := c.PushModel(context.Background(), "mnist", &genReader{n: size}, size, func(sent int64) {
		if sent < last {
			t.Errorf("progress went back: %d after %d", sent, last)
		}
		last = sent
		calls++
	})
	runtime.ReadMemStats(&ms1)
	if err != nil {
		t.Fatal(err)
	}
	if pm.Version != 3 || pm.Size != size || got.Load() != size || gotLen.Load() != size {
		t.Fatalf("pushed %+v; server got %d bytes, Content-Length %d", pm, got.Load(), gotLen.Load())
	}
	if last != size || calls < 2 {
		t.Fatalf("progress ended at %d after %d calls", last, calls)
	}
	// Streaming: the client must not have buffered the 32 MiB upload (the
	// test server side discards it too).
	if alloc := ms1.TotalAlloc - ms0.TotalAlloc; alloc > 8<<20 {
		t.Errorf("uploading %d bytes allocated %d bytes: the body was buffered", size, alloc)
	}
}

func TestUploadsSendTheirContentType(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		writeJSON(w, 201, fmt.Sprintf(`{"name":"x","sha256":"s","size":%d,"exports":["preprocess"],"abi_version":1}`, len(body)))
	})
	c := newClient(t, s.URL, nil)
	ctx := context.Background()
	p, err := c.PushPlugin(ctx, "png", bytes.NewReader([]byte("\x00asm\x01\x00\x00\x00")), 8, nil)
	if err != nil || p.Size != 8 || p.ABIVersion != 1 {
		t.Fatalf("PushPlugin: %+v, %v", p, err)
	}
	if r := s.last(); r.method != "PUT" || r.path != "/v1/plugins/png" || r.contentType != "application/wasm" || r.contentLength != 8 {
		t.Fatalf("PushPlugin sent %+v", r)
	}
	d, err := c.PutDataset(ctx, "iris", strings.NewReader("1,2,0\n"), 6, nil)
	if err != nil || d.Size != 6 {
		t.Fatalf("PutDataset: %+v, %v", d, err)
	}
	if r := s.last(); r.method != "PUT" || r.path != "/v1/datasets/iris" || string(r.body) != "1,2,0\n" || r.contentLength != 6 {
		t.Fatalf("PutDataset sent %+v", r)
	}
}

func TestInvoke(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		if r.Header.Get("Content-Type") != "image/png" {
			writeJSON(w, 400, `{"error":"want png"}`)
			return
		}
		writeJSON(w, 200, fmt.Sprintf(`{"predictions":[{"label":"7","index":7,"score":0.98}],"bytes":%d}`, len(body)))
	})
	c := newClient(t, s.URL, nil)
	b, ct, err := c.Invoke(context.Background(), "digits", "image/png", bytes.NewReader([]byte("\x89PNG....")))
	if err != nil || ct != "application/json" || !strings.Contains(string(b), `"bytes":8`) {
		t.Fatalf("Invoke: %s %q %v", b, ct, err)
	}
	if r := s.last(); r.path != "/v1/endpoints/digits/invoke" || r.contentLength != 8 {
		t.Fatalf("sent %+v", r)
	}
	if _, _, err := c.Invoke(context.Background(), "digits", "text/plain", strings.NewReader("x")); !IsBadRequest(err) {
		t.Fatalf("want 400, got %v", err)
	}
}

func TestResponseLimit(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		writeJSON(w, 200, `{"models":[`+strings.Repeat(`{"name":"m"},`, 1000)+`{}]}`)
	})
	c := newClient(t, s.URL, &Options{MaxResponseBytes: 1024})
	if _, err := c.Models(context.Background()); !errors.Is(err, ErrInvalidResponse) {
		t.Fatalf("err = %v, want ErrInvalidResponse", err)
	}
}

func TestWaitTrainingJob(t *testing.T) {
	var n atomic.Int32
	states := []string{
		`{"id":"j1","status":"queued","model":"m"}`,
		`{"id":"j1","status":"running","model":"m","progress":{"epoch":1,"epochs":2,"batch":5,"batches":10,"loss":0.5,"accuracy":0.8}}`,
		`{"id":"j1","status":"succeeded","model":"m","result":{"version":4,"test_accuracy":0.97,"sha256":"ab"}}`,
	}
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		k := min(int(n.Add(1))-1, len(states)-1)
		writeJSON(w, 200, states[k])
	})
	c := newClient(t, s.URL, nil)
	var seen []string
	j, err := c.WaitTrainingJob(context.Background(), "j1", time.Millisecond, func(j *TrainingJob) { seen = append(seen, j.Status) })
	if err != nil || j.Status != JobSucceeded || j.Result.Version != 4 {
		t.Fatalf("job %+v, %v", j, err)
	}
	if strings.Join(seen, ",") != "queued,running,succeeded" {
		t.Fatalf("updates %v", seen)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	n.Store(0)
	s2 := newServer(t, func(w http.ResponseWriter, r *http.Request, _ []byte) { writeJSON(w, 200, states[1]) })
	c2 := newClient(t, s2.URL, nil)
	if _, err := c2.WaitTrainingJob(ctx, "j1", 5*time.Millisecond, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want deadline, got %v", err)
	}
}

// Keys follows the server's pages until next_after is absent.
func TestKeysPages(t *testing.T) {
	var calls []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls = append(calls, r.URL.RawQuery)
		switch r.URL.Query().Get("after") {
		case "":
			w.Write([]byte(`{"keys":[{"id":"k1"},{"id":"k2"}],"next_after":"k2"}`))
		case "k2":
			w.Write([]byte(`{"keys":[{"id":"k3"}]}`))
		default:
			w.WriteHeader(500)
		}
	}))
	defer srv.Close()
	c, err := New(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := c.Keys(context.Background())
	if err != nil || len(ks) != 3 || ks[2].ID != "k3" || len(calls) != 2 {
		t.Fatalf("keys %+v, %v after %v", ks, err, calls)
	}
}
