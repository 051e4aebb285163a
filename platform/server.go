// Package platform is the multi-tenant inference service: one http.Handler
// that the local server (`aiaas serve`) and the Lambda functions both run.
//
// # Overview
//
// A request is authenticated by its API key (→ tenant and scope), admitted
// by the tenant's quota, routed, and audited. The data plane speaks the Open
// Inference Protocol v2 (/v2/...); endpoints (/v1/endpoints/{name}/invoke)
// run raw bytes through a tenant's preprocess plugin, a forward pass and a
// postprocess plugin; the control plane (/v1/...) manages tenants, keys,
// models, aliases, plugins, endpoints, training jobs and the audit log.
//
// The platform holds no state of its own beyond caches: everything lives in
// the [Store], so any number of processes (Lambda instances) can serve the
// same tenants.
//
// # Layout
//
// This package holds the Server, its routes and middleware (middleware.go,
// one concern per wrapper), the one status table (errors.go) and the
// handlers, kept thin. The mechanics below it live in packages a reader
// can name from the request path:
//
//   - internal/auth: API keys to principals, the auth cache (revocation
//     wins over lookups in flight), the unknown-key guard;
//   - internal/registry: refs and aliases to versions (the short-lived
//     refs cache, canary sides), version metadata, the decoded-model cache;
//   - internal/serving: the dense and graph batchers, Server-Timing;
//   - internal/jobs: the training and evaluation queue, per-tenant
//     shares, heartbeats and stale jobs;
//   - internal/metrics: every Prometheus series (its only importer);
//   - internal/records: the endpoint and plugin records of a tenant
//     and their short-lived cache (/v1/endpoints, /v1/plugins);
//   - audit, quota, oip, training, evaluation, tracing, config: the
//     audit log, quotas, the OIP codec, training and evaluation runs,
//     spans, configuration.
//
// # Isolation
//
// Every store call carries the tenant id taken from the authenticated key,
// never from the request; another tenant's object is therefore simply not
// found, and the answer is the same 404 a missing object gets.
package platform

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/aiaas/aiaas/platform/apikey"
	"github.com/aiaas/aiaas/platform/audit"
	"github.com/aiaas/aiaas/platform/config"
	"github.com/aiaas/aiaas/platform/internal/auth"
	"github.com/aiaas/aiaas/platform/internal/jobs"
	"github.com/aiaas/aiaas/platform/internal/metrics"
	"github.com/aiaas/aiaas/platform/internal/records"
	"github.com/aiaas/aiaas/platform/internal/registry"
	"github.com/aiaas/aiaas/platform/internal/share"
	"github.com/aiaas/aiaas/platform/quota"
	"github.com/aiaas/aiaas/platform/tracing"
	"github.com/aiaas/aiaas/platform/training"
	"github.com/aiaas/aiaas/plugins"
)

// Version is the server version reported by GET /v2.
var Version = "0.1.0"

// Options configures a Server. Store is required.
type Options struct {
	Config config.Config
	Store  Store
	// Plugins runs tenant wasm; nil disables plugin upload and endpoints
	// that name plugins.
	Plugins *plugins.Host
	// Dispatch hands training jobs to another worker (the Lambda train
	// function); nil runs them in a local pool of Config.TrainWorkers.
	Dispatch JobDispatcher
	Logger   *slog.Logger
	// Tracing exports the platform's spans; nil builds one from Config's
	// OTEL_* settings, owned by the Server (Close shuts it down). A Lambda
	// function passes its own, which it flushes after every invocation.
	Tracing *tracing.Provider
	// AuditFlushedPerRequest says the caller flushes the audit log before
	// each answer (the Lambda functions: FlushAudit): no record can be
	// acknowledged and then lost, so the log needs no promises.
	AuditFlushedPerRequest bool
	// AuditChain names this process's own hash chain in every tenant's
	// audit log (audit.Options.Chain): each Lambda execution environment
	// writes one, so environments never contend. Empty: the single chain.
	AuditChain string
	// AnswerRefusalsAtOnce answers a request over its tenant's rate quota
	// at once. By default the server holds the 429 until the retry would
	// be due (at most a second), so a client looping on refusals goes at
	// the quota's pace instead of taking the cores from other tenants.
	AnswerRefusalsAtOnce bool
	// AuditFlushInterval is how often queued audit records are written
	// (0: every second, audit.Options.FlushInterval).
	AuditFlushInterval time.Duration
	// Plane restricts the server to one plane's routes (a Lambda function
	// each); the others answer 404 naming the plane that serves them.
	// Health and server metadata are served by every plane. Zero: all.
	Plane Plane
	// NoProcessMetrics removes GET /metrics and GET /v1/metrics: where
	// many processes serve (Lambda), one process's counters mislead; the
	// functions report CloudWatch EMF instead.
	NoProcessMetrics bool
	// Quota enforces the tenants' rate and concurrency quotas; nil builds
	// the in-process limiter from Config (one process's quota). The Lambda
	// functions pass one shared by all their environments.
	Quota QuotaLimiter
}

// Plane names the routes one deployment unit serves.
type Plane string

const (
	// PlaneAll serves every route (aiaas serve).
	PlaneAll Plane = ""
	// PlaneData serves the routes any tenant key may call: OIP, generate,
	// OpenAI, endpoint invoke, explain (the infer function).
	PlaneData Plane = "data"
	// PlaneControl serves the routes that need scope manage or the admin
	// key (the admin function).
	PlaneControl Plane = "control"
)

// planeOf is the plane of a route by its access class.
func planeOf(acc access) Plane {
	switch acc {
	case public:
		return PlaneAll
	case invoke:
		return PlaneData
	}
	return PlaneControl
}

type execTenantKey struct{}

// WithExecutionTenant marks ctx as served by an execution environment
// dedicated to one tenant (Lambda tenant isolation): a request whose key
// belongs to any other tenant — or with no tenant given, id "" — is
// refused with 403 before it reaches a handler.
func WithExecutionTenant(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, execTenantKey{}, id)
}

// Server is the platform's http.Handler. It is safe for concurrent use.
type Server struct {
	cfg       config.Config
	store     Store
	plugins   *plugins.Host
	dispatch  JobDispatcher
	refs      *registry.Registry
	records   *records.Records
	log       *slog.Logger
	mux       *http.ServeMux
	handler   http.Handler // mux, connections taking turns (turns.go)
	auth      *auth.Authenticator
	quota     QuotaLimiter
	share     *share.Gate
	holds     chan struct{} // slots of refusals held back (holdRefusal)
	bodies    *bodyBudget
	audit     *audit.Log
	metrics   *metrics.Metrics
	models    *modelCache
	jobs      *jobs.Queue
	ready     atomic.Bool
	started   time.Time
	tracing   *tracing.Provider
	ownTrace  bool
	tracer    trace.Tracer
	plane     Plane
	noProcMet bool
	stats     statsTable // OIP inference counters of this process (Triton's statistics extension)
}

// New builds a Server. Close releases it.
func New(ctx context.Context, opts Options) (*Server, error) {
	if opts.Store == nil {
		return nil, errors.New("platform: Options.Store is required")
	}
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:       opts.Config,
		store:     opts.Store,
		plugins:   opts.Plugins,
		dispatch:  opts.Dispatch,
		log:       opts.Logger,
		mux:       http.NewServeMux(),
		started:   time.Now(),
		bodies:    newBodyBudget(opts.Config.BodyBudgetBytes),
		plane:     opts.Plane,
		noProcMet: opts.NoProcessMetrics,
	}
	s.handler = withTurn(time.Now, runtime.Gosched, s.mux)
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.auth = auth.New(s.store)
	if k := opts.Config.AdminKey.Reveal(); k != "" {
		s.auth.SetAdminHash(apikey.Key(k).Hash())
	}
	s.tracing = opts.Tracing
	if s.tracing == nil {
		tp, err := tracing.New(ctx, tracing.FromConfig(s.cfg, "aiaas"), &tracing.Options{Logger: s.log})
		if err != nil {
			return nil, fmt.Errorf("platform: tracing: %w", err)
		}
		s.tracing, s.ownTrace = tp, true
	}
	s.tracer = s.tracing.Tracer()
	mopts := &metrics.Options{BodyBytesHeld: func() int64 { return s.bodies.held() }}
	if s.plugins != nil {
		mopts.Plugins = s.plugins
	}
	s.metrics = metrics.New(mopts)
	s.quota = opts.Quota
	if s.quota == nil {
		s.quota = localQuota{quota.New(&quota.Options{RPS: s.cfg.TenantRPS, Burst: s.cfg.TenantBurst, Concurrency: s.cfg.TenantConcurrency})}
	}
	s.share = share.New(runtime.GOMAXPROCS(0), s.cfg.ShareWindow)
	if s.cfg.SharePressure {
		s.share.UsePressure(share.CPUPressure()).Background(shareUntenanted)
	}
	if !opts.AnswerRefusalsAtOnce {
		s.holds = make(chan struct{}, maxHeldRefusals)
	}
	al, err := audit.New(auditStore{s.store}, &audit.Options{
		Logger:        s.log,
		Dropped:       func(tenant string, n int) { s.metrics.AuditDropped(n) },
		NoPromise:     opts.AuditFlushedPerRequest,
		PromiseLease:  s.cfg.AuditPromiseLease,
		Chain:         opts.AuditChain,
		FlushInterval: opts.AuditFlushInterval,
		// A record carries its request's start and is written at its end.
		MaxSkew: s.cfg.RequestTimeout + time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("platform: %w", err)
	}
	s.audit = al
	// Records are cached as long as a model's refs, so an endpoint and the
	// alias it names go stale together.
	s.refs, s.records = registry.New(s.store), records.New(s.store, &records.Options{TTL: registry.RefTTL})
	s.models = newModelCache(s, int64(s.cfg.ModelCacheMB)<<20)
	s.jobs = newJobQueue(s)
	s.routes()
	s.ready.Store(true)
	return s, nil
}

// Close flushes the audit log, stops the workers and, when the Server built
// its own tracing provider, exports the last spans.
func (s *Server) Close(ctx context.Context) error {
	s.ready.Store(false)
	s.jobs.Close()
	err := s.audit.Close(ctx)
	if s.ownTrace {
		if e := s.tracing.Shutdown(ctx); e != nil {
			s.log.Warn("tracing: shutdown", "err", e)
		}
	}
	return err
}

// Tracer is the tracer of the platform's spans (no-op when tracing is off).
func (s *Server) Tracer() trace.Tracer { return s.tracer }

// FlushAudit writes queued audit records now (Lambda calls it before an
// invocation returns, so nothing is lost when the instance is frozen).
func (s *Server) FlushAudit(ctx context.Context) error { return s.audit.Flush(ctx) }

// ServeHTTP implements http.Handler. An http.Server that serves s should
// also set its ConnContext field to s.ConnContext, so that connections take
// turns for the processors (turns.go).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// access is who may call a route: auth's classes, under the short names
// the route table reads.
type access = auth.Access

const (
	public = auth.Public // no key: health, server metadata
	invoke = auth.Invoke // a tenant key with scope invoke or manage
	manage = auth.Manage // a tenant key with scope manage
	admin  = auth.Admin  // the operator's admin key
)

// StatusClientClosed is the status recorded (in logs, metrics, audit) for
// a request whose client went away before it was answered.
const StatusClientClosed = 499

// clientGone reports whether err is the request's own cancellation: the
// client closed the connection (a request timeout is DeadlineExceeded,
// and stays a 504).
func clientGone(r *http.Request, err error) bool {
	return errors.Is(err, context.Canceled) && errors.Is(r.Context().Err(), context.Canceled)
}

// route registers a handler with authentication, quota, limits, audit and
// metrics around it. action names the route in audit records and metrics.
func (s *Server) route(pattern string, acc access, action string, h func(http.ResponseWriter, *http.Request) error) {
	if pl := planeOf(acc); s.plane != PlaneAll && pl != PlaneAll && pl != s.plane {
		// Another function serves it; say which rather than a bare 404.
		s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			writeError(w, r, notFound("%s %s is served by the %s plane, not this one (%s); on Lambda, use the stack's %s",
				r.Method, truncate(r.URL.Path, 100), pl, s.plane, map[Plane]string{PlaneData: "DataPlaneUrl output", PlaneControl: "ApiUrl output"}[pl]))
		})
		return
	}
	s.mux.Handle(pattern, s.chain(pattern, acc, action, h))
}

// auditFlushTimeout bounds the wait for a control-plane action's audit
// record before the action is answered anyway.
const auditFlushTimeout = 5 * time.Second

// routeOf drops the method from a ServeMux pattern ("POST /v2/x" → "/v2/x").
func routeOf(pattern string) string {
	if _, path, ok := strings.Cut(pattern, " "); ok {
		return path
	}
	return pattern
}

// bodyLimit is the request size limit of a route: uploads have their own.
func (s *Server) bodyLimit(action string) int64 {
	switch action {
	case "model.publish":
		return s.cfg.MaxArtifactBytes
	case "plugin.put":
		return maxPluginBytes
	case "dataset.put":
		return maxDatasetBytes
	case "upload.part":
		return maxServerPart
	case "model.upload", "dataset.upload":
		return 64 << 10
	}
	return s.cfg.MaxBodyBytes
}

const (
	maxPluginBytes  = 32 << 20
	maxDatasetBytes = training.MaxDatasetBytes
)

// bodyErr turns a body-size overrun into 413.
// decodedBody undoes a request's Content-Encoding: gzip and deflate (what
// Triton's clients send with request_compression_algorithm), identity;
// anything else is 415.
func decodedBody(encoding string, body io.ReadCloser) (io.ReadCloser, error) {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "identity":
		return body, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			if errors.As(err, new(*http.MaxBytesError)) {
				return nil, bodyErr(err)
			}
			return nil, httpErr(http.StatusBadRequest, "Content-Encoding gzip: %v", err)
		}
		return struct {
			io.Reader
			io.Closer
		}{decodeErrs{zr, "gzip"}, body}, nil
	case "deflate":
		zr, err := zlib.NewReader(body)
		if err != nil {
			return nil, httpErr(http.StatusBadRequest, "Content-Encoding deflate: %v", err)
		}
		return struct {
			io.Reader
			io.Closer
		}{decodeErrs{zr, "deflate"}, body}, nil
	}
	return nil, httpErr(http.StatusUnsupportedMediaType, "Content-Encoding %q is not supported: send gzip, deflate or none", truncate(encoding, 40))
}

// decodeErrs makes a corrupt compressed body the client's error (400).
type decodeErrs struct {
	r   io.Reader
	enc string
}

func (d decodeErrs) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && err != io.EOF && !errors.As(err, new(*http.MaxBytesError)) && !errors.As(err, new(*budgetError)) {
		err = httpErr(http.StatusBadRequest, "Content-Encoding %s: %v", d.enc, err)
	}
	return n, err
}

func bodyErr(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return httpErr(http.StatusRequestEntityTooLarge, "request body larger than %d bytes", mbe.Limit)
	}
	var be *budgetError
	if errors.As(err, &be) {
		return &Error{Status: be.status, RetryAfter: budgetRetry, Msg: be.msg}
	}
	return err
}

func setRateHeaders(h http.Header, d quota.Decision) {
	if d.Limit == 0 {
		return
	}
	// Canonical keys assigned directly: one allocation per value.
	h["X-Ratelimit-Limit"] = []string{strconv.Itoa(d.Limit)}
	h["X-Ratelimit-Remaining"] = []string{strconv.Itoa(d.Remaining)}
	h["X-Ratelimit-Reset"] = []string{strconv.Itoa(int(d.Reset.Seconds() + 0.999))}
}

func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validRequestID accepts a client's id only if it is short and plain, so it
// is safe in logs and headers.
func validRequestID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	// hold keeps the status and body (a control-plane answer: small JSON)
	// until commit, so that the audit record is written first. A refusal
	// (4xx) changed nothing and is not held: its record goes with the
	// periodic flush, so a tenant's stream of refused requests does not
	// cost a synced write each.
	hold bool
	buf  bytes.Buffer
}

// heldStatus reports whether an answer with this status waits for its
// audit record.
func heldStatus(code int) bool { return code < 400 || code >= 500 }

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
		if r.hold && !heldStatus(code) {
			r.hold = false
		}
		if r.hold {
			return
		}
	} else if r.hold {
		return
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	if r.hold {
		return r.buf.Write(b)
	}
	return r.ResponseWriter.Write(b)
}

// commit sends a held answer.
func (r *statusRecorder) commit() {
	if !r.hold {
		return
	}
	r.hold = false
	if r.status != 0 {
		r.ResponseWriter.WriteHeader(r.status)
	}
	if r.buf.Len() > 0 {
		r.ResponseWriter.Write(r.buf.Bytes())
	}
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// decodeJSON reads a small JSON request body strictly: unknown fields and
// trailing data are errors, so a typo in a field name is not silently
// ignored.
func decodeJSON(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return httpErr(http.StatusUnsupportedMediaType, "Content-Type must be application/json, got %q", ct)
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if err == io.EOF {
			return httpErr(http.StatusBadRequest, "%v", errNotJSON)
		}
		if e := bodyErr(err); e != err {
			return e
		}
		return httpErr(http.StatusBadRequest, "invalid JSON body: %v", err)
	}
	if dec.More() {
		return httpErr(http.StatusBadRequest, "invalid JSON body: data after the object")
	}
	return nil
}
