package platform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/nn/graph"
	"github.com/aiaas/aiaas/platform/internal/auth"
	"github.com/aiaas/aiaas/platform/internal/jobs"
	"github.com/aiaas/aiaas/platform/internal/records"
	"github.com/aiaas/aiaas/platform/internal/registry"
	"github.com/aiaas/aiaas/plugins"
)

// Error is an error with the HTTP status the client gets. Only this layer
// chooses statuses: lower packages return sentinel errors, and [statusOf]
// maps them. Decisions inside the platform test sentinels with errors.Is,
// never statuses.
type Error struct {
	Status     int
	Msg        string
	RetryAfter time.Duration // sets Retry-After on 429/503
	err        error
	// public lets a 500's message reach the client: set only where the
	// message was written for the client and holds nothing internal.
	public bool
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.err }

func httpErr(status int, format string, a ...any) *Error {
	return &Error{Status: status, Msg: fmt.Sprintf(format, a...)}
}

// wrapStatus attaches a status to err, keeping its message and chain.
func wrapStatus(status int, err error) *Error {
	return &Error{Status: status, Msg: err.Error(), err: err}
}

// statusTable maps the sentinels of the packages below to statuses; the
// first one an error wraps wins. It is the only place that does.
var statusTable = [...]struct {
	err    error
	status int
}{
	// First: a dispatcher's error may wrap anything, a deadline included,
	// and the failed dispatch is what the client must hear about.
	{jobs.ErrShareFull, http.StatusTooManyRequests},
	{jobs.ErrQueueFull, http.StatusServiceUnavailable},
	{jobs.ErrDispatch, http.StatusServiceUnavailable},

	// Before the decoders' sentinels: a bad artifact is the client's
	// whatever its decoder wrapped.
	{registry.ErrInvalidArtifact, http.StatusBadRequest},
	{registry.ErrInvalidRef, http.StatusBadRequest},
	{registry.ErrInvalidAlias, http.StatusBadRequest},

	{nn.ErrShape, http.StatusBadRequest},
	{nn.ErrSpec, http.StatusBadRequest},
	{nn.ErrArtifact, http.StatusBadRequest},
	{graph.ErrUnsupported, http.StatusBadRequest},
	{context.DeadlineExceeded, http.StatusGatewayTimeout},

	{modelstore.ErrNotFound, http.StatusNotFound},
	{modelstore.ErrExists, http.StatusConflict},
	{modelstore.ErrInvalidName, http.StatusBadRequest},
	{modelstore.ErrTooLarge, http.StatusRequestEntityTooLarge},
	{modelstore.ErrUnavailable, http.StatusServiceUnavailable},
	// A corrupt object is refused for good (until an operator acts):
	// 500, not a retryable 503. Model loads say so in their own words
	// (modelcache.go); elsewhere the message stays in the log.
	{modelstore.ErrCorrupt, http.StatusInternalServerError},
	{modelstore.ErrExpired, http.StatusGone},          // a staged upload past its expiry
	{modelstore.ErrIncomplete, http.StatusBadRequest}, // a staged upload's commit without every part

	{plugins.ErrInvalidModule, http.StatusBadRequest},
	{plugins.ErrPluginError, http.StatusUnprocessableEntity},
	{plugins.ErrLimit, http.StatusUnprocessableEntity},
	{plugins.ErrBusy, http.StatusServiceUnavailable},
	{plugins.ErrTimeout, http.StatusGatewayTimeout},
	{plugins.ErrTrap, http.StatusBadGateway},
	{plugins.ErrClosed, http.StatusServiceUnavailable},

	{auth.ErrUnauthenticated, http.StatusUnauthorized},
	{auth.ErrForbidden, http.StatusForbidden},
	{auth.ErrThrottled, http.StatusTooManyRequests}, // an address past its unknown-key budget
	{auth.ErrKeyLimit, http.StatusConflict},

	{records.ErrInvalid, http.StatusBadRequest}, // an endpoint's fields out of their bounds
}

// opaque are sentinels whose wrapped messages carry internals (storage
// endpoints, object keys): the client gets the public text instead, and
// the full error goes to the log under the request id.
var opaque = [...]struct {
	err error
	msg string
}{
	{modelstore.ErrUnavailable, "storage is temporarily unavailable; retry shortly"},
}

// retryAfter are sentinels whose Retry-After is not the 503's second: a
// job's place frees when a job ends, so a client should wait longer.
var retryAfter = [...]struct {
	err   error
	after time.Duration
}{
	{jobs.ErrShareFull, 30 * time.Second},
	{jobs.ErrQueueFull, 30 * time.Second},
}

// retryAfterOf is the Retry-After err's sentinel asks for, or 0.
func retryAfterOf(err error) time.Duration {
	for _, r := range retryAfter {
		if errors.Is(err, r.err) {
			return r.after
		}
	}
	return 0
}

// notFound is the platform's own 404. It wraps modelstore.ErrNotFound, so
// callers test every not-found alike, with errors.Is.
func notFound(format string, a ...any) *Error {
	return &Error{Status: http.StatusNotFound, Msg: fmt.Sprintf(format, a...), err: modelstore.ErrNotFound}
}

// statusOf picks the status for err: an *Error's own, else that of the
// first sentinel in statusTable err wraps, else 500.
func statusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	for _, s := range statusTable {
		if errors.Is(err, s.err) {
			return s.status
		}
	}
	return http.StatusInternalServerError
}

// writeError sends {"error": "..."}. A 500 hides the internal message from
// the client (it is logged with the request id instead).
func writeError(w http.ResponseWriter, r *http.Request, err error) int {
	if clientGone(r, err) {
		// Nobody reads this answer; 499 (nginx's "client closed request")
		// keeps it out of the 5xx figures and the error log, where the
		// last in-flight requests of every wrk run used to land.
		err = &Error{Status: StatusClientClosed, Msg: "the client closed the request"}
	}
	status := statusOf(err)
	msg := err.Error()
	var e *Error
	isErr := errors.As(err, &e)
	if status == http.StatusInternalServerError && !(isErr && e.public) {
		msg = "internal error (request id " + requestID(r.Context()) + ")"
	}
	if !(isErr && e.public) {
		for _, o := range opaque {
			if errors.Is(err, o.err) {
				msg = o.msg + " (request id " + requestID(r.Context()) + ")"
				break
			}
		}
	}
	after := retryAfterOf(err)
	if isErr && e.RetryAfter > 0 {
		after = e.RetryAfter
	} else if t := (*auth.ThrottledError)(nil); errors.As(err, &t) {
		after = t.Wait
	}
	if after > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(after.Round(time.Second)/time.Second))))
	} else if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	if strings.HasPrefix(r.URL.Path, "/openai/") {
		// OpenAI's clients read {"error": {"message", "type", …}}.
		writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "type": openAIErrorType(status), "param": nil, "code": nil}})
		return status
	}
	writeJSON(w, status, map[string]string{"error": msg})
	return status
}

// openAIErrorType is the "type" OpenAI's API gives errors of a status.
func openAIErrorType(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return "authentication_error"
	case status == http.StatusForbidden:
		return "permission_error"
	case status == http.StatusNotFound:
		return "not_found_error"
	case status == http.StatusTooManyRequests:
		return "rate_limit_error"
	case status < 500:
		return "invalid_request_error"
	}
	return "server_error"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"internal error: response encoding"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	w.Write(b)
	w.Write([]byte{'\n'})
}
