package apigw

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Sentinel errors; the adapter reports them inside the {"error": ...} body of
// the response it returns, and they are exported so tests and callers of
// [Decode] can branch on them with [errors.Is].
var (
	// ErrUnknownEvent: the event is JSON but none of the HTTP shapes.
	ErrUnknownEvent = errors.New("apigw: not an API Gateway or function URL HTTP event")
	// ErrBadEvent: the event has an HTTP shape but a field is invalid
	// (method, path, base64 body, JSON syntax).
	ErrBadEvent = errors.New("apigw: malformed event")
	// ErrEventTooLarge: the event exceeds Options.MaxEventBytes.
	ErrEventTooLarge = errors.New("apigw: event too large")
	// ErrResponseTooLarge: the encoded response would exceed
	// Options.MaxResponseBytes (Lambda's synchronous payload limit).
	ErrResponseTooLarge = errors.New("apigw: response too large")
)

// Lambda's synchronous invocation payload limit is 6 MB for both the request
// and the response (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
const (
	DefaultMaxResponseBytes = 6 * 1024 * 1024
	DefaultMaxEventBytes    = 6 * 1024 * 1024
	DefaultDeadlineMargin   = 100 * time.Millisecond
)

// Kind is the shape of an HTTP event.
type Kind uint8

const (
	KindUnknown     Kind = iota
	KindHTTPAPIv2        // API Gateway HTTP API, payload format 2.0
	KindRESTv1           // API Gateway REST API (or HTTP API payload 1.0)
	KindFunctionURL      // Lambda function URL (2.0 shape)
)

// String returns a short stable name, used as a metric dimension.
func (k Kind) String() string {
	switch k {
	case KindHTTPAPIv2:
		return "httpapi-v2"
	case KindRESTv1:
		return "rest-v1"
	case KindFunctionURL:
		return "function-url"
	}
	return "unknown"
}

// Invocation describes one finished invocation, for logs and metrics.
type Invocation struct {
	Kind      Kind
	Method    string
	Path      string
	Route     string // API Gateway route key (v2) or resource (v1); may be empty
	RequestID string // the X-Request-Id the handler saw
	Status    int
	Duration  time.Duration // decode + handler + encode
	Err       error         // why the adapter, not the handler, chose the status; nil otherwise
}

// Options configure an Adapter. The zero value (and nil) means defaults.
type Options struct {
	// MaxEventBytes bounds the accepted event; default DefaultMaxEventBytes.
	MaxEventBytes int
	// MaxResponseBytes bounds the encoded JSON response; default
	// DefaultMaxResponseBytes.
	MaxResponseBytes int
	// DeadlineMargin is subtracted from the invocation deadline so that the
	// adapter can still answer 504 before Lambda kills the sandbox; default
	// DefaultDeadlineMargin. Negative means no margin.
	DeadlineMargin time.Duration
	// Logger receives handler panics; default slog.Default().
	Logger *slog.Logger
	// Observe, when set, is called once per invocation after the response is
	// encoded, on the invoking goroutine (use it for metrics or to flush
	// buffered audit events before Lambda freezes the sandbox).
	Observe func(ctx context.Context, inv Invocation)
}

// Adapter serves Lambda HTTP events with an http.Handler. It implements
// lambda.Handler (Invoke(ctx, []byte) ([]byte, error)), so the runtime passes
// the raw event through without reflection or a second JSON encoding.
//
// An Adapter is immutable after New and safe for concurrent use by multiple
// goroutines (Lambda itself invokes one event at a time per process).
type Adapter struct {
	h           http.Handler
	maxEvent    int
	maxResponse int
	margin      time.Duration
	log         *slog.Logger
	observe     func(context.Context, Invocation)
}

// New returns an Adapter serving h. opts may be nil.
func New(h http.Handler, opts *Options) *Adapter {
	if h == nil {
		panic("apigw: nil handler") // a wiring bug at init, never reachable from a request
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	a := &Adapter{h: h, maxEvent: o.MaxEventBytes, maxResponse: o.MaxResponseBytes,
		margin: o.DeadlineMargin, log: o.Logger, observe: o.Observe}
	if a.maxEvent <= 0 {
		a.maxEvent = DefaultMaxEventBytes
	}
	if a.maxResponse <= 0 {
		a.maxResponse = DefaultMaxResponseBytes
	}
	if a.margin == 0 {
		a.margin = DefaultDeadlineMargin
	} else if a.margin < 0 {
		a.margin = 0
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	return a
}

// Invoke handles one raw event and returns the raw JSON response. The error
// is always nil: every failure is an HTTP response (see the package doc), so
// API Gateway relays a meaningful status instead of its generic 502.
// It is safe for concurrent use.
func (a *Adapter) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	start := time.Now()
	inv := Invocation{}
	ev, err := a.decode(payload)
	var out []byte
	if err != nil {
		// Reply in the shape we could detect, else the 2.0 shape (the HTTP API
		// and function URLs both accept it; a REST API would fail either way).
		kind := KindHTTPAPIv2
		if ev != nil && ev.kind != KindUnknown {
			kind = ev.kind
		}
		inv.Kind, inv.Err = kind, err
		inv.Status = http.StatusBadRequest
		if errors.Is(err, ErrEventTooLarge) {
			inv.Status = http.StatusRequestEntityTooLarge
		}
		out = a.errorResponse(kind, inv.Status, err.Error())
	} else {
		inv.Kind, inv.Method, inv.Path, inv.Route = ev.kind, ev.method(), ev.path(), ev.route()
		out, inv.Status, inv.RequestID, inv.Err = a.serve(ctx, ev)
	}
	if a.observe != nil {
		inv.Duration = time.Since(start)
		a.observe(ctx, inv)
	}
	return out, nil
}

// serve runs the handler for a decoded event and encodes its response.
func (a *Adapter) serve(ctx context.Context, ev *event) (out []byte, status int, reqID string, why error) {
	if dl, ok := ctx.Deadline(); ok && a.margin > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-a.margin))
		defer cancel()
	}
	req, err := ev.request(ctx)
	if err != nil {
		return a.errorResponse(ev.kind, http.StatusBadRequest, err.Error()), http.StatusBadRequest, "", err
	}
	reqID = req.Header.Get("X-Request-Id")

	w := newResponseWriter(a.maxResponse)
	done := make(chan any, 1)
	go func() {
		// The handler runs on its own goroutine so that one which ignores its
		// context still cannot hold the invocation past the deadline.
		defer func() {
			if p := recover(); p != nil {
				a.log.ErrorContext(ctx, "apigw: handler panic", "panic", fmt.Sprint(p),
					"method", req.Method, "path", req.URL.Path, "stack", string(debug.Stack()))
				done <- p
				return
			}
			done <- nil
		}()
		a.h.ServeHTTP(w, req)
	}()

	var p any
	select {
	case p = <-done:
	case <-ctx.Done():
		select {
		case p = <-done: // finished in the same instant; its response is complete
		default:
			w.abandon()
			return a.errorResponse(ev.kind, http.StatusGatewayTimeout, "deadline exceeded"),
				http.StatusGatewayTimeout, reqID, ctx.Err()
		}
	}
	if p != nil {
		return a.errorResponse(ev.kind, http.StatusInternalServerError, "internal error"),
			http.StatusInternalServerError, reqID, fmt.Errorf("apigw: handler panic: %v", p)
	}
	if ctx.Err() != nil && !w.wrote {
		// The handler gave up on the deadline without answering.
		return a.errorResponse(ev.kind, http.StatusGatewayTimeout, "deadline exceeded"),
			http.StatusGatewayTimeout, reqID, ctx.Err()
	}
	if w.overflow {
		return a.errorResponse(ev.kind, http.StatusBadGateway, ErrResponseTooLarge.Error()),
			http.StatusBadGateway, reqID, ErrResponseTooLarge
	}
	out, err = encodeResponse(ev.kind, w)
	if err == nil && len(out) > a.maxResponse {
		err = ErrResponseTooLarge
	}
	if err != nil {
		return a.errorResponse(ev.kind, http.StatusBadGateway, err.Error()), http.StatusBadGateway, reqID, err
	}
	return out, w.status, reqID, nil
}

// errorResponse encodes {"error": msg} in the shape of kind.
func (a *Adapter) errorResponse(kind Kind, status int, msg string) []byte {
	body, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	r := wireResponse{StatusCode: status, Body: string(body)}
	if kind == KindRESTv1 {
		r.MultiValueHeaders = map[string][]string{"Content-Type": {"application/json"}}
	} else {
		r.Headers = map[string]string{"content-type": "application/json"}
	}
	out, _ := json.Marshal(&r) // cannot fail: strings, ints and maps of strings only
	return out
}

// wireResponse is the union of the three response shapes; absent fields are
// omitted so each shape's consumer sees only what it knows.
type wireResponse struct {
	StatusCode        int                 `json:"statusCode"`
	Headers           map[string]string   `json:"headers,omitempty"`
	MultiValueHeaders map[string][]string `json:"multiValueHeaders,omitempty"`
	Cookies           []string            `json:"cookies,omitempty"`
	Body              string              `json:"body"`
	IsBase64Encoded   bool                `json:"isBase64Encoded"`
}

func encodeResponse(kind Kind, w *responseWriter) ([]byte, error) {
	h := w.header
	body := w.body.Bytes()
	if h.Get("Content-Type") == "" && len(body) > 0 {
		// What net/http's server does, so the handler behaves the same here
		// and under `aiaas serve`.
		h.Set("Content-Type", http.DetectContentType(body))
	}
	r := wireResponse{StatusCode: w.status}
	if len(body) == 0 || isText(h.Get("Content-Type")) && utf8.Valid(body) {
		r.Body = string(body)
	} else {
		r.Body = base64.StdEncoding.EncodeToString(body)
		r.IsBase64Encoded = true
	}
	if kind == KindRESTv1 {
		r.MultiValueHeaders = make(map[string][]string, len(h))
		for k, vs := range h {
			r.MultiValueHeaders[k] = vs
		}
	} else {
		r.Headers = make(map[string]string, len(h))
		for k, vs := range h {
			if k == "Set-Cookie" {
				// 2.0 responses carry cookies in their own array; API Gateway
				// would otherwise merge them into one comma-joined header,
				// which browsers cannot split (Expires contains a comma).
				r.Cookies = vs
				continue
			}
			r.Headers[strings.ToLower(k)] = strings.Join(vs, ",")
		}
	}
	return json.Marshal(&r)
}

// isText reports whether a body of this media type travels as a JSON string.
func isText(contentType string) bool {
	if contentType == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch {
	case strings.HasPrefix(mt, "text/"),
		mt == "application/json", strings.HasSuffix(mt, "+json"),
		mt == "application/xml", strings.HasSuffix(mt, "+xml"),
		strings.Contains(mt, "javascript"),
		mt == "application/x-www-form-urlencoded",
		mt == "application/x-ndjson":
		return true
	}
	return false
}

// event is the union of the request shapes, decoded in one pass.
type event struct {
	kind Kind

	// 2.0 and function URL
	Version        string            `json:"version"`
	RouteKey       string            `json:"routeKey"`
	RawPath        string            `json:"rawPath"`
	RawQueryString string            `json:"rawQueryString"`
	Cookies        []string          `json:"cookies"`
	Headers        map[string]string `json:"headers"`

	// 1.0
	Resource                        string              `json:"resource"`
	Path                            string              `json:"path"`
	HTTPMethod                      string              `json:"httpMethod"`
	MultiValueHeaders               map[string][]string `json:"multiValueHeaders"`
	QueryStringParameters           map[string]string   `json:"queryStringParameters"`
	MultiValueQueryStringParameters map[string][]string `json:"multiValueQueryStringParameters"`

	Body            string `json:"body"`
	IsBase64Encoded bool   `json:"isBase64Encoded"`

	RequestContext struct {
		RequestID  string `json:"requestId"`
		DomainName string `json:"domainName"`
		HTTP       struct {
			Method   string `json:"method"`
			Path     string `json:"path"`
			SourceIP string `json:"sourceIp"`
		} `json:"http"`
		Identity struct {
			SourceIP string `json:"sourceIp"`
		} `json:"identity"`
	} `json:"requestContext"`
}

// Decode parses a raw event and builds the request it carries, with ctx as
// its context. It returns the event's kind even when the request is invalid
// (KindUnknown if the shape itself is not recognised). It is safe for
// concurrent use. Invoke uses the same code; Decode exists for tests and
// tools that replay recorded events.
func Decode(ctx context.Context, payload []byte) (*http.Request, Kind, error) {
	ev, err := decodeEvent(payload, DefaultMaxEventBytes)
	if err != nil {
		if ev != nil {
			return nil, ev.kind, err
		}
		return nil, KindUnknown, err
	}
	req, err := ev.request(ctx)
	return req, ev.kind, err
}

func (a *Adapter) decode(payload []byte) (*event, error) { return decodeEvent(payload, a.maxEvent) }

func decodeEvent(payload []byte, max int) (*event, error) {
	if len(payload) > max {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrEventTooLarge, len(payload), max)
	}
	ev := new(event)
	if err := json.Unmarshal(payload, ev); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadEvent, err)
	}
	switch {
	case ev.RequestContext.HTTP.Method != "" || ev.Version == "2.0":
		ev.kind = KindHTTPAPIv2
		if strings.Contains(ev.RequestContext.DomainName, ".lambda-url.") {
			ev.kind = KindFunctionURL
		}
	case ev.HTTPMethod != "":
		ev.kind = KindRESTv1
	default:
		return nil, ErrUnknownEvent
	}
	return ev, nil
}

func (ev *event) method() string {
	if ev.kind == KindRESTv1 {
		return ev.HTTPMethod
	}
	return ev.RequestContext.HTTP.Method
}

func (ev *event) path() string {
	if ev.kind == KindRESTv1 {
		return ev.Path
	}
	if ev.RawPath != "" {
		return ev.RawPath
	}
	return ev.RequestContext.HTTP.Path
}

func (ev *event) route() string {
	if ev.kind == KindRESTv1 {
		return ev.Resource
	}
	return ev.RouteKey
}

// request builds the *http.Request the event describes.
func (ev *event) request(ctx context.Context) (*http.Request, error) {
	method := ev.method()
	if method == "" || !validMethod(method) {
		return nil, fmt.Errorf("%w: method %q", ErrBadEvent, method)
	}
	p := ev.path()
	if p == "" {
		p = "/"
	}
	if p[0] != '/' {
		return nil, fmt.Errorf("%w: path %q does not start with /", ErrBadEvent, p)
	}

	var u *url.URL
	if ev.kind == KindRESTv1 {
		// 1.0 paths and query values arrive decoded; re-encode them.
		u = &url.URL{Path: p, RawQuery: v1Query(ev)}
	} else {
		// 2.0 rawPath is the path as sent (percent-encoding kept) and
		// rawQueryString is verbatim.
		var err error
		u, err = url.Parse(p)
		if err != nil || u.Scheme != "" || u.Host != "" || u.RawQuery != "" {
			return nil, fmt.Errorf("%w: path %q", ErrBadEvent, p)
		}
		u.RawQuery = ev.RawQueryString
	}

	var body []byte
	if ev.IsBase64Encoded {
		var err error
		if body, err = base64.StdEncoding.DecodeString(ev.Body); err != nil {
			return nil, fmt.Errorf("%w: base64 body: %v", ErrBadEvent, err)
		}
	} else if ev.Body != "" {
		body = []byte(ev.Body)
	}

	h := make(http.Header, len(ev.Headers)+len(ev.MultiValueHeaders)+2)
	if ev.kind == KindRESTv1 && len(ev.MultiValueHeaders) > 0 {
		// multiValueHeaders is a superset of headers when both are present.
		for k, vs := range ev.MultiValueHeaders {
			ck := http.CanonicalHeaderKey(k)
			for _, v := range vs {
				h.Add(ck, v)
			}
		}
	} else {
		for k, v := range ev.Headers {
			h.Add(http.CanonicalHeaderKey(k), v)
		}
	}
	if len(ev.Cookies) > 0 {
		// 2.0 lifts cookies out of the headers; put them back as one header.
		h.Set("Cookie", strings.Join(ev.Cookies, "; "))
	}
	for k, vs := range h {
		if !validHeaderName(k) {
			return nil, fmt.Errorf("%w: header name %q", ErrBadEvent, k)
		}
		for _, v := range vs {
			if !validHeaderValue(v) {
				return nil, fmt.Errorf("%w: value of header %q", ErrBadEvent, k)
			}
		}
	}
	if h.Get("X-Request-Id") == "" {
		id := ev.RequestContext.RequestID
		if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
			id = lc.AwsRequestID
		}
		if id != "" && validHeaderValue(id) {
			h.Set("X-Request-Id", id)
		}
	}

	req := &http.Request{
		Method:        method,
		URL:           u,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          http.NoBody,
		ContentLength: int64(len(body)),
		Host:          h.Get("Host"),
		RequestURI:    u.RequestURI(),
	}
	if len(body) > 0 {
		req.Body = readCloser{bytes.NewReader(body)}
		req.GetBody = nil
	}
	if req.Host == "" {
		req.Host = ev.RequestContext.DomainName
	}
	ip := ev.RequestContext.HTTP.SourceIP
	if ip == "" {
		ip = ev.RequestContext.Identity.SourceIP
	}
	if ip != "" {
		req.RemoteAddr = net.JoinHostPort(ip, "0")
	}
	return req.WithContext(ctx), nil
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// v1Query rebuilds the query string of a 1.0 event, preferring the
// multi-value map (the single-value one keeps only the last value).
func v1Query(ev *event) string {
	q := ev.MultiValueQueryStringParameters
	if len(q) == 0 {
		if len(ev.QueryStringParameters) == 0 {
			return ""
		}
		q = make(map[string][]string, len(ev.QueryStringParameters))
		for k, v := range ev.QueryStringParameters {
			q[k] = []string{v}
		}
	}
	return url.Values(q).Encode()
}

func validMethod(m string) bool { return m != "" && len(m) <= 32 && tokenOnly(m) }

func validHeaderName(k string) bool { return k != "" && len(k) <= 256 && tokenOnly(k) }

func tokenOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// validHeaderValue refuses control characters other than tab, which would
// let an event smuggle extra header lines into anything that re-serialises
// the request.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// responseWriter buffers the handler's response up to a byte limit. The
// lock matters only after a timeout, when the abandoned handler may still be
// writing while Invoke has already answered.
type responseWriter struct {
	mu       sync.Mutex
	header   http.Header
	body     bytes.Buffer
	status   int
	wrote    bool
	overflow bool
	gone     bool // abandoned: the invocation answered without this handler
	max      int
}

func newResponseWriter(max int) *responseWriter {
	return &responseWriter{header: make(http.Header), status: http.StatusOK, max: max}
}

func (w *responseWriter) lock()   { w.mu.Lock() }
func (w *responseWriter) unlock() { w.mu.Unlock() }

// Header returns the header map. After a timeout the handler may still be
// running; it then gets a private map so it cannot race with the encoder.
func (w *responseWriter) Header() http.Header {
	w.lock()
	defer w.unlock()
	if w.gone {
		return make(http.Header)
	}
	return w.header
}

func (w *responseWriter) WriteHeader(code int) {
	w.lock()
	defer w.unlock()
	if w.wrote || w.gone {
		return
	}
	if code < 100 || code > 999 {
		code = http.StatusInternalServerError
	}
	if code < 200 {
		return // informational responses cannot cross API Gateway
	}
	w.status, w.wrote = code, true
}

func (w *responseWriter) Write(p []byte) (int, error) {
	w.lock()
	defer w.unlock()
	if w.gone {
		return 0, http.ErrHandlerTimeout
	}
	w.wrote = true
	if w.overflow || w.body.Len()+len(p) > w.max {
		w.overflow = true
		return 0, ErrResponseTooLarge
	}
	return w.body.Write(p)
}

// Flush is a no-op: the response leaves only when the handler returns.
func (w *responseWriter) Flush() {}

// abandon detaches the writer from the handler; it reports false if the
// handler had already been abandoned.
func (w *responseWriter) abandon() bool {
	w.lock()
	defer w.unlock()
	if w.gone {
		return false
	}
	w.gone = true
	return true
}
