package apigw

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// The adapter must be usable directly as lambda.Start's argument without
// reflection, i.e. implement lambda.Handler.
var _ lambda.Handler = (*Adapter)(nil)

func readEvent(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEventRoundTrip checks that the recorded events are valid instances of
// aws-lambda-go's event types: decode, re-encode, compare as JSON values.
func TestEventRoundTrip(t *testing.T) {
	cases := []struct {
		file string
		into any
	}{
		{"httpapi-v2-get.json", &events.APIGatewayV2HTTPRequest{}},
		{"httpapi-v2-post-base64.json", &events.APIGatewayV2HTTPRequest{}},
		{"rest-v1-post.json", &events.APIGatewayProxyRequest{}},
		{"function-url.json", &events.LambdaFunctionURLRequest{}},
	}
	for i, c := range cases {
		raw := readEvent(t, c.file)
		if err := json.Unmarshal(raw, c.into); err != nil {
			t.Fatalf("case %d (%s): unmarshal: %v", i, c.file, err)
		}
		again, err := json.Marshal(c.into)
		if err != nil {
			t.Fatalf("case %d: marshal: %v", i, err)
		}
		var a, b map[string]any
		_ = json.Unmarshal(raw, &a)
		_ = json.Unmarshal(again, &b)
		// aws-lambda-go's types omit fields we recorded from AWS's examples
		// (e.g. v1 identity's null fields); every field they do model must
		// survive the trip unchanged.
		for k, bv := range b {
			if av, ok := a[k]; ok && k != "requestContext" && !reflect.DeepEqual(av, bv) {
				t.Errorf("case %d (%s): field %q changed: %v -> %v", i, c.file, k, av, bv)
			}
		}
	}
}

// recorder is a handler that records the request it saw and answers with
// a configurable response.
type recorder struct {
	req    *http.Request
	body   []byte
	answer func(w http.ResponseWriter, r *http.Request)
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.req = r
	rc.body, _ = io.ReadAll(r.Body)
	if rc.answer != nil {
		rc.answer(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"ok":true}`)
}

func TestDecodeRecordedEvents(t *testing.T) {
	cases := []struct {
		file       string
		kind       Kind
		method     string
		requestURI string
		host       string
		remote     string
		headers    map[string][]string
		body       []byte
	}{
		{
			file: "httpapi-v2-get.json", kind: KindHTTPAPIv2, method: "GET",
			requestURI: "/v2/models/mnist/versions/3?verbose=1&tag=a&tag=b%20c",
			host:       "r3pmxmplak.execute-api.us-east-2.amazonaws.com", remote: "205.255.255.176:0",
			headers: map[string][]string{
				"Cookie":        {"session=abc123; theme=dark"},
				"Authorization": {"Bearer aiaas_demo_key"},
				"X-Multi":       {"one,two"},
				"X-Request-Id":  {"JKJaXmPLvHcESHA="},
			},
		},
		{
			file: "httpapi-v2-post-base64.json", kind: KindHTTPAPIv2, method: "POST",
			requestURI: "/v1/endpoints/digits/invoke",
			host:       "r3pmxmplak.execute-api.us-east-2.amazonaws.com", remote: "[2001:db8::1]:0",
			headers: map[string][]string{"Content-Type": {"image/png"}},
			body:    []byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'},
		},
		{
			file: "rest-v1-post.json", kind: KindRESTv1, method: "POST",
			requestURI: "/v2/models/mnist/infer?tag=a&tag=b+c&verbose=1",
			host:       "1234567890.execute-api.us-east-1.amazonaws.com", remote: "192.0.2.10:0",
			headers: map[string][]string{"X-Multi": {"one", "two"}, "Content-Type": {"application/json"}},
			body:    []byte(`{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[0.5,1]}]}`),
		},
		{
			file: "function-url.json", kind: KindFunctionURL, method: "GET",
			requestURI: "/v2/health/ready",
			host:       "abcdefghijklmnopqrstuvwxyz0123.lambda-url.us-west-2.on.aws", remote: "203.0.113.7:0",
			headers: map[string][]string{"Cookie": {"cookie1=value1"}, "X-Request-Id": {"client-chosen-id"}},
		},
	}
	for i, c := range cases {
		req, kind, err := Decode(context.Background(), readEvent(t, c.file))
		if err != nil {
			t.Fatalf("case %d (%s): %v", i, c.file, err)
		}
		if kind != c.kind || req.Method != c.method || req.RequestURI != c.requestURI ||
			req.Host != c.host || req.RemoteAddr != c.remote {
			t.Errorf("case %d (%s): got kind=%v %s %s host=%s remote=%s", i, c.file, kind, req.Method, req.RequestURI, req.Host, req.RemoteAddr)
		}
		if req.URL.RequestURI() != c.requestURI {
			t.Errorf("case %d: URL.RequestURI()=%q", i, req.URL.RequestURI())
		}
		for k, want := range c.headers {
			if got := req.Header.Values(k); !reflect.DeepEqual(got, want) {
				t.Errorf("case %d: header %s = %q, want %q", i, k, got, want)
			}
		}
		body, _ := io.ReadAll(req.Body)
		if !bytes.Equal(body, c.body) || req.ContentLength != int64(len(c.body)) {
			t.Errorf("case %d: body %q (len %d), want %q", i, body, req.ContentLength, c.body)
		}
	}
}

func TestRequestIDFromLambdaContext(t *testing.T) {
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "lambda-req-1"})
	req, _, err := Decode(ctx, readEvent(t, "httpapi-v2-get.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := req.Header.Get("X-Request-Id"); got != "lambda-req-1" {
		t.Fatalf("X-Request-Id = %q", got)
	}
	// A client-chosen id wins.
	req, _, _ = Decode(ctx, readEvent(t, "function-url.json"))
	if got := req.Header.Get("X-Request-Id"); got != "client-chosen-id" {
		t.Fatalf("X-Request-Id = %q", got)
	}
}

// response is what a caller of any shape sees; decoding into the union of
// aws-lambda-go's response types keeps the check honest.
type response struct {
	StatusCode        int                 `json:"statusCode"`
	Headers           map[string]string   `json:"headers"`
	MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
	Cookies           []string            `json:"cookies"`
	Body              string              `json:"body"`
	IsBase64Encoded   bool                `json:"isBase64Encoded"`
}

func invoke(t testing.TB, a *Adapter, ctx context.Context, ev []byte) response {
	t.Helper()
	out, err := a.Invoke(ctx, ev)
	if err != nil {
		t.Fatalf("Invoke returned error %v", err)
	}
	var r response
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("response is not JSON: %v: %s", err, out)
	}
	return r
}

func (r response) body(t testing.TB) []byte {
	if !r.IsBase64Encoded {
		return []byte(r.Body)
	}
	b, err := base64.StdEncoding.DecodeString(r.Body)
	if err != nil {
		t.Fatalf("bad base64 body: %v", err)
	}
	return b
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestResponses(t *testing.T) {
	binary := []byte{0, 1, 2, 0xff, 0xfe}
	cases := []struct {
		name    string
		event   string
		answer  func(w http.ResponseWriter, r *http.Request)
		status  int
		b64     bool
		body    []byte
		headers map[string]string   // v2 headers (lower-case keys)
		multi   map[string][]string // v1 multiValueHeaders
		cookies []string
	}{
		{
			name: "v2 json", event: "httpapi-v2-get.json", status: 200,
			body: []byte(`{"ok":true}`), headers: map[string]string{"content-type": "application/json"},
		},
		{
			name: "v2 binary and cookies", event: "httpapi-v2-post-base64.json", status: 201, b64: true, body: binary,
			answer: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/octet-stream")
				w.Header().Add("X-Multi", "a")
				w.Header().Add("X-Multi", "b")
				http.SetCookie(w, &http.Cookie{Name: "a", Value: "1"})
				http.SetCookie(w, &http.Cookie{Name: "b", Value: "2", Expires: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)})
				w.WriteHeader(201)
				_, _ = w.Write(binary)
			},
			headers: map[string]string{"content-type": "application/octet-stream", "x-multi": "a,b"},
			cookies: []string{"a=1", "b=2; Expires=Tue, 01 Jan 2030 00:00:00 GMT"},
		},
		{
			name: "v1 multi-value headers", event: "rest-v1-post.json", status: 404,
			answer: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/problem+json")
				w.Header().Add("Set-Cookie", "x=1")
				w.Header().Add("Set-Cookie", "y=2")
				w.WriteHeader(404)
				_, _ = io.WriteString(w, `{"error":"not found"}`)
			},
			body:  []byte(`{"error":"not found"}`),
			multi: map[string][]string{"Content-Type": {"application/problem+json"}, "Set-Cookie": {"x=1", "y=2"}},
		},
		{
			name: "text type but invalid utf-8 goes base64", event: "function-url.json", status: 200, b64: true,
			body: []byte{'a', 0xff, 'b'},
			answer: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				_, _ = w.Write([]byte{'a', 0xff, 'b'})
			},
			headers: map[string]string{"content-type": "text/plain; charset=utf-8"},
		},
		{
			name: "sniffed content type", event: "function-url.json", status: 200,
			body:    []byte("<html><body>hi</body></html>"),
			answer:  func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "<html><body>hi</body></html>") },
			headers: map[string]string{"content-type": "text/html; charset=utf-8"},
		},
		{
			name: "empty 204", event: "httpapi-v2-get.json", status: 204,
			answer: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) },
		},
		{
			name: "panic becomes 500", event: "httpapi-v2-get.json", status: 500,
			answer:  func(w http.ResponseWriter, r *http.Request) { panic("boom") },
			body:    []byte(`{"error":"internal error"}`),
			headers: map[string]string{"content-type": "application/json"},
		},
		{
			name: "panic on v1 becomes 500", event: "rest-v1-post.json", status: 500,
			answer: func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) },
			body:   []byte(`{"error":"internal error"}`),
			multi:  map[string][]string{"Content-Type": {"application/json"}},
		},
		{
			name: "over-size response becomes 502", event: "httpapi-v2-get.json", status: 502,
			answer: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				chunk := bytes.Repeat([]byte("x"), 1024)
				for i := 0; i < 100; i++ {
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
			},
			body: []byte(`{"error":"apigw: response too large"}`),
		},
		{
			name: "response under the byte cap but over it once base64-encoded becomes 502", event: "httpapi-v2-get.json", status: 502,
			answer: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/octet-stream")
				_, _ = w.Write(make([]byte, 40*1024))
			},
			body: []byte(`{"error":"apigw: response too large"}`),
		},
	}
	for i, c := range cases {
		rc := &recorder{answer: c.answer}
		a := New(rc, &Options{Logger: quietLogger(), MaxResponseBytes: 50 * 1024})
		r := invoke(t, a, context.Background(), readEvent(t, c.event))
		if r.StatusCode != c.status || r.IsBase64Encoded != c.b64 {
			t.Errorf("case %d (%s): status %d b64 %v, want %d %v; body %s", i, c.name, r.StatusCode, r.IsBase64Encoded, c.status, c.b64, r.Body)
		}
		if got := r.body(t); !bytes.Equal(got, c.body) && !(len(got) == 0 && len(c.body) == 0) {
			t.Errorf("case %d (%s): body %q, want %q", i, c.name, got, c.body)
		}
		for k, v := range c.headers {
			if r.Headers[k] != v {
				t.Errorf("case %d (%s): header %s = %q, want %q (all: %v)", i, c.name, k, r.Headers[k], v, r.Headers)
			}
		}
		if _, ok := r.Headers["set-cookie"]; ok {
			t.Errorf("case %d (%s): set-cookie leaked into v2 headers", i, c.name)
		}
		for k, v := range c.multi {
			if !reflect.DeepEqual(r.MultiValueHeaders[k], v) {
				t.Errorf("case %d (%s): multi header %s = %q, want %q", i, c.name, k, r.MultiValueHeaders[k], v)
			}
		}
		if c.multi != nil && r.Headers != nil {
			t.Errorf("case %d (%s): v1 response has a headers map", i, c.name)
		}
		if !reflect.DeepEqual(r.Cookies, c.cookies) {
			t.Errorf("case %d (%s): cookies %q, want %q", i, c.name, r.Cookies, c.cookies)
		}
	}
}

func TestBadEvents(t *testing.T) {
	v2 := func(mutate func(m map[string]any)) []byte {
		var m map[string]any
		_ = json.Unmarshal(readEvent(t, "httpapi-v2-post-base64.json"), &m)
		mutate(m)
		b, _ := json.Marshal(m)
		return b
	}
	cases := []struct {
		name   string
		event  []byte
		status int
		err    error
	}{
		{"not json", []byte("{"), 400, ErrBadEvent},
		{"json but not http", []byte(`{"Records":[]}`), 400, ErrUnknownEvent},
		{"null", []byte(`null`), 400, ErrUnknownEvent},
		{"bad base64", v2(func(m map[string]any) { m["body"] = "!!!" }), 400, ErrBadEvent},
		{"bad method", v2(func(m map[string]any) {
			m["requestContext"].(map[string]any)["http"].(map[string]any)["method"] = "GE T"
		}), 400, ErrBadEvent},
		{"relative path", v2(func(m map[string]any) { m["rawPath"] = "v1/x" }), 400, ErrBadEvent},
		{"absolute url path", v2(func(m map[string]any) { m["rawPath"] = "//evil.example/x" }), 400, ErrBadEvent},
		{"header injection", v2(func(m map[string]any) {
			m["headers"].(map[string]any)["x-a"] = "1\r\nX-Admin: yes"
		}), 400, ErrBadEvent},
		{"bad header name", v2(func(m map[string]any) { m["headers"].(map[string]any)["a b"] = "1" }), 400, ErrBadEvent},
		{"too large", append(append([]byte(`{"version":"2.0","body":"`), bytes.Repeat([]byte("a"), 2048)...), `"}`...), 413, ErrEventTooLarge},
	}
	for i, c := range cases {
		rc := &recorder{}
		var seen Invocation
		a := New(rc, &Options{MaxEventBytes: 1024 + 512, Observe: func(_ context.Context, inv Invocation) { seen = inv }})
		r := invoke(t, a, context.Background(), c.event)
		if r.StatusCode != c.status {
			t.Errorf("case %d (%s): status %d, want %d: %s", i, c.name, r.StatusCode, c.status, r.Body)
		}
		if !errors.Is(seen.Err, c.err) {
			t.Errorf("case %d (%s): Invocation.Err = %v, want %v", i, c.name, seen.Err, c.err)
		}
		if rc.req != nil {
			t.Errorf("case %d (%s): handler was called", i, c.name)
		}
		var e struct{ Error string }
		if err := json.Unmarshal([]byte(r.Body), &e); err != nil || e.Error == "" {
			t.Errorf("case %d (%s): body is not an error object: %s", i, c.name, r.Body)
		}
	}
}

func TestDeadline(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	cases := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"handler honours ctx", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }},
		{"handler ignores ctx", func(w http.ResponseWriter, r *http.Request) {
			<-release
			_, _ = io.WriteString(w, "late") // must not race with the encoder
			w.Header().Set("X-Late", "1")
		}},
	}
	for i, c := range cases {
		var seen Invocation
		// A margin of 1.5 s before a 2 s deadline: answered at about
		// 0.5 s; a margin not applied answers at 2 s. The bound between
		// leaves a busy machine 1.2 s of delay.
		a := New(c.handler, &Options{DeadlineMargin: 1500 * time.Millisecond, Observe: func(_ context.Context, inv Invocation) { seen = inv }})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		start := time.Now()
		r := invoke(t, a, ctx, readEvent(t, "httpapi-v2-get.json"))
		took := time.Since(start)
		cancel()
		if r.StatusCode != http.StatusGatewayTimeout || !errors.Is(seen.Err, context.DeadlineExceeded) {
			t.Errorf("case %d (%s): status %d err %v", i, c.name, r.StatusCode, seen.Err)
		}
		if took > 1700*time.Millisecond {
			t.Errorf("case %d (%s): answered after %v, margin not applied", i, c.name, took)
		}
	}
}

func TestObserve(t *testing.T) {
	var seen Invocation
	a := New(&recorder{}, &Options{Observe: func(_ context.Context, inv Invocation) { seen = inv }})
	invoke(t, a, context.Background(), readEvent(t, "rest-v1-post.json"))
	want := Invocation{Kind: KindRESTv1, Method: "POST", Path: "/v2/models/mnist/infer", Route: "/v2/{proxy+}",
		RequestID: "c6af9ac6-7b61-11e6-9a41-93e8deadbeef", Status: 200}
	seen.Duration = 0
	if seen != want {
		t.Fatalf("Invocation = %+v, want %+v", seen, want)
	}
}

func TestIsText(t *testing.T) {
	cases := []struct {
		ct   string
		text bool
	}{
		{"text/plain", true}, {"text/csv; charset=utf-8", true}, {"application/json", true},
		{"application/problem+json", true}, {"application/xml", true}, {"image/svg+xml", true},
		{"application/javascript", true}, {"application/x-www-form-urlencoded", true},
		{"application/octet-stream", false}, {"image/png", false}, {"", false}, {";;", false},
		{"application/vnd.safetensors", false},
	}
	for i, c := range cases {
		if got := isText(c.ct); got != c.text {
			t.Errorf("case %d: isText(%q) = %v", i, c.ct, got)
		}
	}
}

func TestConcurrentInvoke(t *testing.T) {
	a := New(&echo{}, nil)
	ev := readEvent(t, "httpapi-v2-post-base64.json")
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; i < 50; i++ {
				out, _ := a.Invoke(context.Background(), ev)
				if !strings.Contains(string(out), `"statusCode":200`) {
					errs <- errors.New(string(out))
					return
				}
			}
			errs <- nil
		}()
	}
	for g := 0; g < 8; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// echo returns the request body with its content type; it is stateless and
// so usable from many goroutines.
type echo struct{}

func (echo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
	_, _ = w.Write(b)
}

func FuzzInvoke(f *testing.F) {
	for _, name := range []string{"httpapi-v2-get.json", "httpapi-v2-post-base64.json", "rest-v1-post.json", "function-url.json"} {
		f.Add(readEvent(f, name))
	}
	f.Add([]byte(`{"httpMethod":"GET","path":"/%zz"}`))
	f.Add([]byte(`{"version":"2.0","rawPath":"/a","rawQueryString":"%%%","requestContext":{"http":{"method":"GET"}}}`))
	f.Add([]byte(`{"version":"2.0","cookies":["a\u0000=b"],"requestContext":{"http":{"method":"POST"}}}`))
	f.Add([]byte(`[]`))
	a := New(echo{}, &Options{Logger: quietLogger()})
	f.Fuzz(func(t *testing.T, ev []byte) {
		out, err := a.Invoke(context.Background(), ev)
		if err != nil {
			t.Fatalf("Invoke returned an error: %v", err)
		}
		var r response
		if err := json.Unmarshal(out, &r); err != nil || r.StatusCode < 200 || r.StatusCode > 599 {
			t.Fatalf("not a valid response: %v: %s", err, out)
		}
	})
}

// BenchmarkAdapter compares a warm invocation through the adapter with
// calling the same handler directly with an equivalent request; the
// difference is the adapter's overhead.
func BenchmarkAdapter(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"model_name":"mnist","outputs":[{"name":"y","shape":[1,10],"datatype":"FP32","data":[0,0,0,0,0,0,0,1,0,0]}]}`)
	})
	for _, name := range []string{"httpapi-v2-get.json", "rest-v1-post.json"} {
		ev := readEvent(b, name)
		b.Run("direct/"+name, func(b *testing.B) {
			req, _, err := Decode(context.Background(), ev)
			if err != nil {
				b.Fatal(err)
			}
			body, _ := io.ReadAll(req.Body)
			b.ReportAllocs()
			for b.Loop() {
				req.Body = io.NopCloser(bytes.NewReader(body))
				w := &discardWriter{h: make(http.Header)}
				h.ServeHTTP(w, req)
			}
		})
		b.Run("adapter/"+name, func(b *testing.B) {
			a := New(h, nil)
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			defer cancel()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Invoke(ctx, ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}
