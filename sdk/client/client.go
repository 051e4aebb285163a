package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Version is sent in the default User-Agent.
const Version = "0.1.0"

// DefaultMaxResponseBytes bounds how much of a response body is read.
const DefaultMaxResponseBytes = 64 << 20

// maxErrorBody bounds the part of an error response that is decoded: a
// message is a sentence, not a payload.
const maxErrorBody = 64 << 10

var (
	// ErrInvalidArgument reports an argument the client refused before
	// sending anything (empty name, tensor data that does not fit its shape).
	ErrInvalidArgument = errors.New("client: invalid argument")
	// ErrInvalidResponse reports a response the client could not decode:
	// malformed JSON, a bad binary tensor header, a body over the limit.
	ErrInvalidResponse = errors.New("client: invalid response")
)

// Options configure a Client. The zero value (or nil) means defaults.
type Options struct {
	// APIKey is sent as "Authorization: Bearer <key>" when not empty.
	APIKey string
	// HTTPClient does the requests; nil means a client with no overall
	// timeout (use the context for deadlines).
	HTTPClient *http.Client
	// UserAgent replaces "aiaas-go-client/<Version>".
	UserAgent string
	// Retry is the retry policy; nil means DefaultRetryPolicy.
	Retry *RetryPolicy
	// MaxResponseBytes bounds every response body; 0 means
	// DefaultMaxResponseBytes.
	MaxResponseBytes int64
}

// RetryPolicy says how often and how patiently a refused request is
// retried (see the package doc for which requests qualify).
type RetryPolicy struct {
	// MaxAttempts counts the first try; 1 disables retries.
	MaxAttempts int
	// BaseDelay is the first backoff; it doubles on every attempt.
	BaseDelay time.Duration
	// MaxDelay caps a single wait, including a server's Retry-After.
	MaxDelay time.Duration
}

// DefaultRetryPolicy is used when Options.Retry is nil.
var DefaultRetryPolicy = RetryPolicy{MaxAttempts: 4, BaseDelay: 200 * time.Millisecond, MaxDelay: 10 * time.Second}

// Client calls one aiaas server. It is safe for concurrent use; create one
// and share it.
type Client struct {
	base    *url.URL
	key     string
	hc      *http.Client
	ua      string
	retry   RetryPolicy
	maxBody int64
	// sleep waits between attempts; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
}

// New returns a client of the server at baseURL ("http://127.0.0.1:8080",
// or a URL with a path prefix such as "https://api.example.com/aiaas").
// opts may be nil.
func New(baseURL string, opts *Options) (*Client, error) {
	if opts == nil {
		opts = &Options{}
	}
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("%w: base URL %q: %v", ErrInvalidArgument, baseURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: base URL %q: want http:// or https://HOST[:PORT]", ErrInvalidArgument, baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%w: base URL %q: must not have a query or fragment", ErrInvalidArgument, baseURL)
	}
	c := &Client{base: u, key: opts.APIKey, hc: opts.HTTPClient, ua: opts.UserAgent, maxBody: opts.MaxResponseBytes, sleep: sleepCtx}
	if c.hc == nil {
		c.hc = &http.Client{}
	}
	if c.ua == "" {
		c.ua = "aiaas-go-client/" + Version
	}
	if c.maxBody <= 0 {
		c.maxBody = DefaultMaxResponseBytes
	}
	c.retry = DefaultRetryPolicy
	if opts.Retry != nil {
		c.retry = *opts.Retry
		if c.retry.MaxAttempts < 1 {
			return nil, fmt.Errorf("%w: Retry.MaxAttempts must be at least 1", ErrInvalidArgument)
		}
		if c.retry.BaseDelay < 0 || c.retry.MaxDelay < 0 {
			return nil, fmt.Errorf("%w: Retry delays must not be negative", ErrInvalidArgument)
		}
	}
	return c, nil
}

// BaseURL returns the server URL the client was made with. Goroutine-safe.
func (c *Client) BaseURL() string { return c.base.String() }

// APIError is the server's refusal: a 4xx or 5xx status and its
// {"error": "…"} message.
type APIError struct {
	Status    int
	Message   string
	RequestID string // the server's X-Request-Id, for support and the audit log
	// RetryAfter is the server's Retry-After (429, 503), 0 if absent.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	s := strconv.Itoa(e.Status)
	if t := http.StatusText(e.Status); t != "" {
		s += " " + t
	}
	s += ": " + e.Message
	if e.RequestID != "" {
		s += " (request " + e.RequestID + ")"
	}
	return s
}

// StatusCode returns the HTTP status of err if it is (or wraps) an
// *APIError, else 0.
func StatusCode(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// IsNotFound reports a 404: the object does not exist or is another
// tenant's.
func IsNotFound(err error) bool { return StatusCode(err) == http.StatusNotFound }

// IsUnauthorized reports a 401: the key is missing, unknown or revoked.
func IsUnauthorized(err error) bool { return StatusCode(err) == http.StatusUnauthorized }

// IsForbidden reports a 403: the key lacks the scope.
func IsForbidden(err error) bool { return StatusCode(err) == http.StatusForbidden }

// IsBadRequest reports a 400: the server refused the input.
func IsBadRequest(err error) bool { return StatusCode(err) == http.StatusBadRequest }

// IsConflict reports a 409.
func IsConflict(err error) bool { return StatusCode(err) == http.StatusConflict }

// IsTooLarge reports a 413: the body is over the server's limit.
func IsTooLarge(err error) bool { return StatusCode(err) == http.StatusRequestEntityTooLarge }

// IsRateLimited reports a 429: over quota.
func IsRateLimited(err error) bool { return StatusCode(err) == http.StatusTooManyRequests }

// IsUnavailable reports a 503: the store or the plugin runtime is
// unavailable.
func IsUnavailable(err error) bool { return StatusCode(err) == http.StatusServiceUnavailable }

// IsRetryable reports an error worth retrying later: 429, 503, or a
// request that never reached the server.
func IsRetryable(err error) bool {
	return IsRateLimited(err) || IsUnavailable(err) || IsUnreachable(err)
}

// IsUnreachable reports that the server could not be reached at all
// (connection refused, unknown host): the request was never received.
func IsUnreachable(err error) bool {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return true
	}
	var de *net.DNSError
	return errors.As(err, &de)
}

// body produces a request body for one attempt. A nil body func means no
// body; rewind reports whether a new attempt can have the body again.
type body struct {
	open        func() (io.Reader, error)
	size        int64 // -1: unknown
	contentType string
	replayable  bool
}

func jsonBody(v any) (*body, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidArgument, err)
	}
	return bytesBody(b, "application/json"), nil
}

func bytesBody(b []byte, ct string) *body {
	return &body{open: func() (io.Reader, error) { return bytes.NewReader(b), nil }, size: int64(len(b)), contentType: ct, replayable: true}
}

// streamBody wraps a caller's reader. It is replayable only if r can seek:
// the client rewinds it to where it started.
func streamBody(r io.Reader, size int64, ct string) *body {
	b := &body{size: size, contentType: ct}
	s, ok := r.(io.Seeker)
	var start int64
	if ok {
		if off, err := s.Seek(0, io.SeekCurrent); err == nil {
			start, b.replayable = off, true
		}
	}
	first := true
	b.open = func() (io.Reader, error) {
		if !first {
			if _, err := s.Seek(start, io.SeekStart); err != nil {
				return nil, err
			}
		}
		first = false
		if size >= 0 {
			return io.LimitReader(r, size), nil
		}
		return r, nil
	}
	return b
}

// call is one API request.
type call struct {
	method string
	path   string // already escaped
	query  url.Values
	body   *body
	header http.Header
	// safe marks a POST without side effects (infer, invoke, explain),
	// retried like an idempotent request.
	safe bool
	// wrap lets uploads count bytes.
	wrap func(io.Reader) io.Reader
}

func (c *Client) url(path string, q url.Values) string {
	u := c.base.String() + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// do sends the call, retrying per the policy, and returns a 2xx response
// whose body the caller must close. Any other status becomes an *APIError.
func (c *Client) do(ctx context.Context, k *call) (*http.Response, error) {
	idempotent := k.safe || k.method == http.MethodGet || k.method == http.MethodPut || k.method == http.MethodDelete || k.method == http.MethodHead
	for attempt := 1; ; attempt++ {
		resp, err := c.once(ctx, k)
		if err == nil && resp.StatusCode < 300 {
			return resp, nil
		}
		var retryAfter time.Duration
		retry := false
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			// A dial error means the server never got the request; any
			// other transport error might have come after it acted.
			retry = IsUnreachable(err) || idempotent
			err = fmt.Errorf("%s %s: %w", k.method, k.path, err)
		} else {
			apiErr := c.apiError(resp)
			err = apiErr
			retryAfter = apiErr.RetryAfter
			// 429 and 503 are refusals before any work was done.
			retry = apiErr.Status == http.StatusTooManyRequests || apiErr.Status == http.StatusServiceUnavailable
		}
		if !retry || attempt >= c.retry.MaxAttempts || (k.body != nil && !k.body.replayable) {
			return nil, err
		}
		if werr := c.sleep(ctx, c.backoff(attempt, retryAfter)); werr != nil {
			return nil, werr
		}
	}
}

// backoff is full jitter over an exponential ceiling, but never less than
// the server's Retry-After (capped by MaxDelay so a hostile header cannot
// park the caller).
func (c *Client) backoff(attempt int, retryAfter time.Duration) time.Duration {
	ceil := c.retry.BaseDelay << min(attempt-1, 20)
	if c.retry.MaxDelay > 0 && ceil > c.retry.MaxDelay {
		ceil = c.retry.MaxDelay
	}
	d := time.Duration(0)
	if ceil > 0 {
		d = time.Duration(rand.Int64N(int64(ceil) + 1))
	}
	if retryAfter > d {
		d = retryAfter
	}
	if c.retry.MaxDelay > 0 && d > c.retry.MaxDelay {
		d = c.retry.MaxDelay
	}
	return d
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (c *Client) once(ctx context.Context, k *call) (*http.Response, error) {
	var r io.Reader
	size := int64(0)
	if k.body != nil {
		var err error
		if r, err = k.body.open(); err != nil {
			return nil, err
		}
		size = k.body.size
		if k.wrap != nil {
			r = k.wrap(r)
		}
	}
	req, err := http.NewRequestWithContext(ctx, k.method, c.url(k.path, k.query), r)
	if err != nil {
		return nil, err
	}
	if k.body != nil {
		// NewRequest only knows the length of its own reader types; set it
		// so the server can refuse an oversized upload before reading it.
		req.ContentLength = size
		if size == 0 {
			req.Body = http.NoBody
		}
		req.GetBody = nil
		if k.body.contentType != "" {
			req.Header.Set("Content-Type", k.body.contentType)
		}
	}
	for h, v := range k.header {
		req.Header[h] = v
	}
	req.Header.Set("User-Agent", c.ua)
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	return c.hc.Do(req)
}

// apiError reads and closes a non-2xx response.
func (c *Client) apiError(resp *http.Response) *APIError {
	defer resp.Body.Close()
	e := &APIError{Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if s, err := strconv.Atoi(ra); err == nil && s >= 0 {
			e.RetryAfter = time.Duration(min(s, 86400)) * time.Second
		} else if t, err := http.ParseTime(ra); err == nil {
			e.RetryAfter = max(time.Until(t), 0)
		}
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var msg struct {
		Error string `json:"error"`
	}
	var oai struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &msg) == nil && msg.Error != "" {
		e.Message = msg.Error
	} else if json.Unmarshal(raw, &oai) == nil && oai.Error.Message != "" {
		e.Message = oai.Error.Message // the /openai/ routes' shape
	} else {
		// Not our JSON (a proxy's HTML page): keep a short plain excerpt.
		e.Message = strings.TrimSpace(string(raw))
		if len(e.Message) > 200 {
			e.Message = e.Message[:200] + "…"
		}
		if e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
		if e.Message == "" {
			e.Message = "HTTP " + strconv.Itoa(resp.StatusCode)
		}
	}
	return e
}

// readAll reads a response body up to the client's limit.
func (c *Client) readAll(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > c.maxBody {
		return nil, fmt.Errorf("%w: body over %d bytes", ErrInvalidResponse, c.maxBody)
	}
	return b, nil
}

// doJSON sends k and decodes a JSON response into out (nil: discard).
func (c *Client) doJSON(ctx context.Context, k *call, out any) error {
	resp, err := c.do(ctx, k)
	if err != nil {
		return err
	}
	b, err := c.readAll(resp)
	if err != nil {
		return fmt.Errorf("%s %s: %w", k.method, k.path, err)
	}
	if err := jsonUnmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: %w: %v", k.method, k.path, ErrInvalidResponse, err)
	}
	return nil
}

// seg escapes one path segment and refuses empty or traversal names.
func seg(kind, name string) (string, error) {
	if name == "" || name == "." || name == ".." {
		return "", fmt.Errorf("%w: %s name %q", ErrInvalidArgument, kind, name)
	}
	return url.PathEscape(name), nil
}

// jsonUnmarshal decodes b into out; a nil out discards the body.
func jsonUnmarshal(b []byte, out any) error {
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}
