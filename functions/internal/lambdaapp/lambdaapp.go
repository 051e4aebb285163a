// Package lambdaapp is the wiring the Lambda functions share: configuration
// from the environment, the store, the plugin host and the platform server,
// built once at init and reused by every warm invocation, plus the per
// invocation work (audit flush, CloudWatch Embedded Metric Format line, and
// with tracing on a root span and a bounded span export).
//
// # Overview
//
// A function's main calls [Open] before lambda.Start; a configuration error
// (every bad variable at once, from platform/config) is returned there so the
// process exits during init with one clear message instead of failing every
// request. Models are not loaded at init: the platform loads each on first
// use and keeps it warm across invocations.
//
// This package must never do per-request work at init, nor anything that
// needs the network before the first invocation (init is billed and bounds
// cold start) — except what the operator asks for: AIAAS_PREWARM_ENDPOINTS
// lists endpoints whose model and plugins are loaded at init (bounded by
// PrewarmTimeout), which moves that work off the first request of every
// new environment (and, with provisioned concurrency, off requests
// altogether).
package lambdaapp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aiaas/aiaas/functions/internal/apigw"
	"github.com/aiaas/aiaas/internal/dynamodb"
	"github.com/aiaas/aiaas/internal/gcfloor"
	"github.com/aiaas/aiaas/internal/sigv4"
	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/platform"
	"github.com/aiaas/aiaas/platform/config"
	"github.com/aiaas/aiaas/platform/quota"
	"github.com/aiaas/aiaas/platform/quota/dynamo"
	"github.com/aiaas/aiaas/platform/tracing"
	"github.com/aiaas/aiaas/plugins"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// processStart is set while the program's packages initialise, just before
// main: Open reports the init time from it.
var processStart = time.Now()

// ErrConfig wraps every configuration problem found at init.
var ErrConfig = errors.New("lambdaapp: configuration")

// App is one function process's long-lived state. It is safe for
// concurrent use (the platform server is).
type App struct {
	Name   string
	Config config.Config
	Server *platform.Server
	Log    *slog.Logger

	ms      *modelstore.Store
	plugins *plugins.Host
	metrics *EMF
	tracing *tracing.Provider
	warm    atomic.Bool // false until the first invocation started
	// after runs post-response work (nil: none; work runs inline).
	after *afterResponse
	// isolated: Lambda tenant isolation (AIAAS_TENANT_ISOLATION=PER_TENANT);
	// every invocation carries the tenant of its execution environment.
	isolated bool
	// quota is the tenants' quota shared by every environment through
	// DynamoDB (AIAAS_QUOTA_TABLE); nil: each process counts alone.
	quota *dynamo.Limiter
	// fallbacksSeen is the quota's fallback count already reported as EMF.
	fallbacksSeen atomic.Uint64
	// stopGC ends the collector's headroom (internal/gcfloor).
	stopGC func()
}

// Options configure Open; nil means defaults.
type Options struct {
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Metrics receives one EMF line per invocation; default os.Stdout via
	// the caller (nil disables metrics).
	Metrics io.Writer
	// Dispatch hands training jobs to the train function (admin only).
	Dispatch platform.JobDispatcher
	// NoPlugins skips the plugin host (the train function needs none).
	NoPlugins bool
	// AfterResponse flushes each HTTP invocation's audit records and spans
	// after its response has gone, from an internal Lambda extension
	// (infer and admin; not train, whose invocations are not HTTP). Off
	// Lambda, or if Lambda refuses the extension, they flush before the
	// response as without it.
	AfterResponse bool
	// Plane is the set of routes this function serves (platform.PlaneData
	// for infer, platform.PlaneControl for admin); the others answer 404
	// saying which plane serves them.
	Plane platform.Plane
}

// Open loads the configuration from environ (os.Environ() form) and builds
// the store, the plugin host and the platform server.
func Open(ctx context.Context, name string, environ []string, opts *Options) (*App, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	environ, err := resolveSecrets(ctx, environ, http.DefaultClient)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	cfg, err := config.Load(config.Environ(environ))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	key, ok := cfg.MasterKeyBytes()
	if !ok {
		// Lambda has no local folder to keep a generated key in.
		return nil, fmt.Errorf("%w: AIAAS_MASTER_KEY: want 32 bytes in standard base64", ErrConfig)
	}
	ms, err := modelstore.Open(ctx, cfg.Store, &modelstore.Options{
		MasterKey:       key,
		SSE:             cfg.S3SSE,
		S3AccessKey:     cfg.S3AccessKey.Reveal(),
		S3SecretKey:     cfg.S3SecretKey.Reveal(),
		MaxArtifactSize: cfg.MaxArtifactBytes,
		Logger:          o.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("lambdaapp: open store: %w", err)
	}
	a := &App{Name: name, Config: cfg, Log: o.Logger, ms: ms}
	env := config.Environ(environ)
	prewarm, err := platform.ParsePrewarm(env["AIAAS_PREWARM_ENDPOINTS"])
	if err != nil {
		ms.Close()
		return nil, fmt.Errorf("%w: AIAAS_PREWARM_ENDPOINTS: %v", ErrConfig, err)
	}
	switch v := env["AIAAS_TENANT_ISOLATION"]; v {
	case "", "NONE":
	case "PER_TENANT":
		a.isolated = true
	default:
		ms.Close()
		return nil, fmt.Errorf("%w: AIAAS_TENANT_ISOLATION=%q: want NONE or PER_TENANT", ErrConfig, v)
	}
	if a.quota, err = sharedQuota(cfg, env, o.Logger); err != nil {
		ms.Close()
		return nil, err
	}
	a.tracing, err = tracing.New(ctx, tracing.FromConfig(cfg, "aiaas-"+name), &tracing.Options{
		Logger: o.Logger,
		Attributes: []attribute.KeyValue{
			attribute.String("cloud.provider", "aws"),
			attribute.String("cloud.platform", "aws_lambda"),
			attribute.String("cloud.region", env["AWS_REGION"]),
			attribute.String("faas.name", env["AWS_LAMBDA_FUNCTION_NAME"]),
			attribute.String("faas.version", env["AWS_LAMBDA_FUNCTION_VERSION"]),
			attribute.String("aiaas.function", name),
		},
	})
	if err != nil {
		ms.Close()
		return nil, fmt.Errorf("lambdaapp: tracing: %w", err)
	}
	if !o.NoPlugins {
		a.plugins, err = plugins.New(ctx, &plugins.Options{
			CacheDir:    cfg.PluginCacheDir,
			CallTimeout: cfg.PluginTimeout,
			Logger:      o.Logger,
			// A new execution environment fetches the code another
			// compiled (admin compiles each plugin when it is uploaded)
			// instead of compiling again.
			Shared: compiledCode{ms},
		})
		if err != nil {
			ms.Close()
			return nil, fmt.Errorf("lambdaapp: plugin runtime: %w", err)
		}
	}
	// AIAAS_AUDIT_AFTER_RESPONSE=off keeps the flush before the response
	// (for comparison, or where extensions are not wanted).
	if api := env["AWS_LAMBDA_RUNTIME_API"]; o.AfterResponse && api != "" && env["AIAAS_AUDIT_AFTER_RESPONSE"] != "off" {
		if a.after, err = registerAfterResponse(ctx, api, o.Logger); err != nil {
			a.Log.WarnContext(ctx, "lambda extension refused; audit records flush before each response", "err", err)
			a.after = nil
		}
	}
	var ql platform.QuotaLimiter // nil: the platform's in-process limiter
	if a.quota != nil {
		ql = a.quota
	}
	chain := EnvironmentChain(name, time.Now(), nil)
	a.Server, err = platform.New(ctx, platform.Options{
		Config: cfg, Store: platform.StoreFrom(ms), Plugins: a.plugins, Quota: ql,
		Dispatch: o.Dispatch, Logger: o.Logger, Tracing: a.tracing,
		// Flushed before each answer unless the extension flushes after
		// it: then a crash in between must be visible (audit promises).
		AuditFlushedPerRequest: a.after == nil,
		// Each execution environment writes its own chain of every
		// tenant's audit log: environments never race for one chain.
		AuditChain: chain,
		Plane:      o.Plane,
		// Many environments serve; each reports EMF lines instead.
		NoProcessMetrics: true,
		// An environment serves one request at a time, billed by the
		// millisecond: holding a refusal would only cost its caller.
		AnswerRefusalsAtOnce: true,
	})
	if err != nil {
		a.Close(ctx)
		return nil, fmt.Errorf("lambdaapp: platform: %w", err)
	}
	if o.Metrics != nil {
		a.metrics = NewEMF(o.Metrics, "aiaas")
	}
	if a.after != nil {
		a.closeOnSIGTERM()
	}
	// A function's memory (AWS_LAMBDA_FUNCTION_MEMORY_SIZE, MB) bounds
	// the collector's headroom.
	mb, _ := strconv.ParseInt(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], 10, 64)
	a.stopGC = gcfloor.Start(gcfloor.Headroom(cfg.GCHeadroomBytes, gcfloor.MemoryLimit(mb<<20)))
	a.prewarm(ctx, prewarm)
	a.Log.InfoContext(ctx, "init complete", "function", name, "tracing", a.tracing.Enabled(), "audit_after_response", a.after != nil, "audit_chain", chain,
		"init_ms", float64(time.Since(processStart).Microseconds())/1000)
	return a, nil
}

// EnvironmentChain names the audit chain of one execution environment:
// its start time (so chains list in the order environments started), the
// function and 8 random bytes (rnd, nil meaning crypto/rand).
func EnvironmentChain(function string, start time.Time, rnd io.Reader) string {
	if rnd == nil {
		rnd = rand.Reader
	}
	var b [8]byte
	_, _ = io.ReadFull(rnd, b[:])
	fn := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, function)
	if len(fn) > 24 {
		fn = fn[:24]
	}
	return start.UTC().Format("20060102T150405Z") + "-" + fn + "-" + hex.EncodeToString(b[:])
}

// ShutdownTimeout bounds the audit log's closing when Lambda shuts the
// environment down: Lambda gives a runtime with an internal extension
// 500 ms between SIGTERM and SIGKILL.
const ShutdownTimeout = 400 * time.Millisecond

// closeOnSIGTERM closes the audit log when Lambda shuts the environment
// down. With an extension registered, Lambda sends the runtime SIGTERM
// before it ends an environment; closing writes what is queued and closes
// this environment's audit promises, so a retired environment does not
// look like one that died inside its flush window. A crash sends no
// SIGTERM, and its open promise then says so, as it must.
func (a *App) closeOnSIGTERM() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM)
	go func() {
		<-ch
		ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
		err := a.Server.Close(ctx)
		cancel()
		if err != nil {
			a.Log.Error("shutdown: the audit log was not closed; its promise stays open", "err", err)
			os.Exit(1)
		}
		a.Log.Info("shutdown: audit log closed")
		os.Exit(0)
	}()
}

// PrewarmTimeout bounds the prewarming at init: Lambda allows 10 s of init
// and the function must still start if the store is slow.
const PrewarmTimeout = 7 * time.Second

// prewarm loads the listed endpoints' models and plugins. A failure is
// logged, not fatal: the endpoint then loads on its first request, as
// without prewarming.
func (a *App) prewarm(ctx context.Context, eps [][2]string) {
	if len(eps) == 0 {
		return
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, PrewarmTimeout)
	defer cancel()
	for _, e := range eps {
		t0 := time.Now()
		if err := a.Server.PrewarmEndpoint(ctx, e[0], e[1]); err != nil {
			a.Log.WarnContext(ctx, "prewarm failed; the endpoint loads on its first request", "tenant", e[0], "endpoint", e[1], "err", err)
			continue
		}
		a.Log.InfoContext(ctx, "prewarmed", "tenant", e[0], "endpoint", e[1], "ms", float64(time.Since(t0).Microseconds())/1000)
	}
	a.Log.InfoContext(ctx, "prewarm done", "endpoints", len(eps), "ms", float64(time.Since(start).Microseconds())/1000)
}

// compiledCode is plugins.SharedCache on the store: compiled plugin code
// sealed under _system/compiled/, shared by every environment of the
// deployment.
type compiledCode struct{ ms *modelstore.Store }

func (c compiledCode) List(ctx context.Context, prefix string) ([]string, error) {
	return c.ms.CompiledList(ctx, prefix)
}

func (c compiledCode) Get(ctx context.Context, name string) ([]byte, error) {
	b, err := c.ms.CompiledGet(ctx, name)
	if errors.Is(err, modelstore.ErrNotFound) {
		err = fmt.Errorf("%w: %w", os.ErrNotExist, err)
	}
	return b, err
}

func (c compiledCode) Put(ctx context.Context, name string, data []byte) error {
	return c.ms.CompiledPut(ctx, name, data)
}

// sharedQuota builds the DynamoDB quota limiter when AIAAS_QUOTA_TABLE
// names a table (the template sets it for infer and admin): then a tenant's
// rate and concurrency hold across every execution environment, not per
// environment. AIAAS_DYNAMODB_ENDPOINT overrides the regional endpoint
// (tests point it at dynalite). It does no I/O: init stays off the network.
func sharedQuota(cfg config.Config, env map[string]string, log *slog.Logger) (*dynamo.Limiter, error) {
	table := env["AIAAS_QUOTA_TABLE"]
	if table == "" {
		return nil, nil
	}
	ep := env["AIAAS_DYNAMODB_ENDPOINT"]
	if ep == "" && env["AWS_REGION"] == "" {
		return nil, fmt.Errorf("%w: AIAAS_QUOTA_TABLE needs AWS_REGION (or AIAAS_DYNAMODB_ENDPOINT)", ErrConfig)
	}
	var callTimeout time.Duration // default: the limiter's
	if v := env["AIAAS_QUOTA_TIMEOUT"]; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%w: AIAAS_QUOTA_TIMEOUT=%q: want a positive duration such as 500ms", ErrConfig, v)
		}
		callTimeout = d
	}
	db := &dynamodb.Client{Endpoint: ep, Region: env["AWS_REGION"], Creds: sigv4.FromEnv}
	l, err := dynamo.New(db, table, &dynamo.Options{
		CallTimeout: callTimeout,
		Quota:       quota.Options{RPS: cfg.TenantRPS, Burst: cfg.TenantBurst, Concurrency: cfg.TenantConcurrency},
		// A request never runs longer than the request timeout (nor the
		// function's, which is shorter), so its slot may be reclaimed
		// after that, with a margin for clock skew between environments.
		Lease:  cfg.RequestTimeout + 10*time.Second,
		Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: AIAAS_QUOTA_TABLE: %v", ErrConfig, err)
	}
	return l, nil
}

// Close releases the store, the plugin host and the tracer provider. Lambda never calls it (the
// sandbox is frozen, then discarded); tests do.
func (a *App) Close(ctx context.Context) {
	if a.Server != nil {
		_ = a.Server.Close(ctx)
	}
	if a.plugins != nil {
		_ = a.plugins.Close(ctx)
	}
	if a.ms != nil {
		a.ms.Close()
	}
	_ = a.tracing.Shutdown(ctx)
	if a.stopGC != nil {
		a.stopGC()
	}
}

// HTTPHandler serves API Gateway and function URL events: it is a
// lambda.Handler. It is safe for concurrent use.
type HTTPHandler struct {
	a       *App
	adapter *apigw.Adapter
}

// Invoke implements lambda.Handler: one root span for the invocation around
// the adapter, then the span export, bounded so that it cannot eat the
// deadline.
func (h *HTTPHandler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	ctx, span := h.a.startInvocation(ctx, "http")
	if h.a.isolated {
		// Lambda routes by the tenant ID the caller gave (X-Amz-Tenant-Id,
		// from X-Aiaas-Tenant at the REST API); the platform refuses a key
		// of any other tenant in this environment.
		lc, _ := lambdacontext.FromContext(ctx)
		id := ""
		if lc != nil {
			id = lc.TenantID
		}
		ctx = platform.WithExecutionTenant(ctx, id)
	}
	out, err := h.adapter.Invoke(ctx, payload)
	h.a.finishInvocation(ctx, span, err)
	return out, err
}

// finishInvocation ends the root span, then flushes the audit log and
// exports the spans: after the response when the internal extension runs
// (Options.AfterResponse), else before it — the sandbox may be frozen
// right after the response.
func (a *App) finishInvocation(ctx context.Context, span trace.Span, err error) {
	if a.tracing.Enabled() {
		tracing.End(span, err)
	}
	work := func() {
		if err := a.Server.FlushAudit(context.WithoutCancel(ctx)); err != nil {
			a.Log.ErrorContext(ctx, "audit flush failed", "err", err)
		}
		a.exportSpans(ctx)
	}
	if a.after != nil && a.after.finish(work) {
		return
	}
	work()
}

// HTTP returns the lambda.Handler for API Gateway / function URL events:
// each invocation writes one EMF metrics line, then flushes the audit log
// and exports its spans (see finishInvocation).
func (a *App) HTTP() *HTTPHandler {
	return &HTTPHandler{a: a, adapter: apigw.New(a.Server, &apigw.Options{
		Logger: a.Log,
		Observe: func(ctx context.Context, inv apigw.Invocation) {
			if span := trace.SpanFromContext(ctx); span.IsRecording() {
				span.SetAttributes(attribute.Int("http.response.status_code", inv.Status),
					attribute.String("http.route", inv.Route), attribute.String("aiaas.request_id", inv.RequestID))
				if inv.Status >= 500 {
					span.SetStatus(codes.Error, fmt.Sprintf("HTTP %d", inv.Status))
				}
			}
			if a.metrics != nil {
				route := inv.Route
				if route == "" {
					route = inv.Method + " " + inv.Path
				}
				a.metrics.Record(a.Name, route, inv.Status, inv.Duration)
				if a.quota != nil {
					n := a.quota.Fallbacks()
					if prev := a.fallbacksSeen.Swap(n); n > prev {
						a.metrics.Count(a.Name, "QuotaFallbacks", int(n-prev))
					}
				}
			}
		},
	})}
}

// startInvocation starts the root span of one invocation, carrying the
// Lambda request id. Under X-Ray active tracing (the trace header says
// Sampled=1) the span joins the X-Ray trace as a child of its segment;
// otherwise it starts a trace of its own with a link to the X-Ray trace, so
// that configuring a collector is enough to get traces.
func (a *App) startInvocation(ctx context.Context, trigger string) (context.Context, trace.Span) {
	cold := !a.warm.Swap(true)
	if !a.tracing.Enabled() {
		return ctx, trace.SpanFromContext(ctx)
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
	if hdr, _ := ctx.Value("x-amzn-trace-id").(string); hdr != "" { // set by aws-lambda-go
		if sc, ok := tracing.FromXRay(hdr); ok {
			if sc.IsSampled() {
				ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
			} else {
				opts = append(opts, trace.WithNewRoot(), trace.WithLinks(trace.Link{SpanContext: sc}))
			}
		}
	}
	attrs := []attribute.KeyValue{attribute.String("faas.trigger", trigger), attribute.Bool("faas.coldstart", cold)}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		attrs = append(attrs, attribute.String("faas.invocation_id", lc.AwsRequestID),
			attribute.String("cloud.resource_id", lc.InvokedFunctionArn))
	}
	opts = append(opts, trace.WithAttributes(attrs...))
	return a.tracing.Tracer().Start(ctx, a.Name, opts...)
}

// endInvocation ends the root span and exports the invocation's spans
// before the runtime may freeze the sandbox: at most AIAAS_TRACE_FLUSH_TIMEOUT,
// and never past the invocation's deadline. A failed export is logged, not
// returned.
func (a *App) endInvocation(ctx context.Context, span trace.Span, err error) {
	if !a.tracing.Enabled() {
		return
	}
	tracing.End(span, err)
	a.exportSpans(ctx)
}

// exportSpans exports the invocation's spans, bounded by the deadline.
func (a *App) exportSpans(ctx context.Context) {
	if !a.tracing.Enabled() {
		return
	}
	dl, _ := ctx.Deadline()
	if ferr := a.tracing.FlushBefore(ctx, dl); ferr != nil {
		a.Log.WarnContext(ctx, "tracing: span export failed; spans of this invocation are dropped", "err", ferr)
	}
}

// JobEvent is the asynchronous invocation payload of the train function:
// a job to run, or — the function being its own failure destination — the
// record Lambda sends when an invocation of it failed (it crashed, ran out
// of memory or timed out): the original event and why.
type JobEvent struct {
	Tenant string `json:"tenant"`
	JobID  string `json:"job_id"`

	// Set in a destination record only.
	RequestContext *struct {
		Condition string `json:"condition"` // RetriesExhausted, EventAgeExceeded
	} `json:"requestContext,omitempty"`
	RequestPayload  *JobEvent `json:"requestPayload,omitempty"`
	ResponsePayload *struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	} `json:"responsePayload,omitempty"`
}

// failureReason is a destination record's account of the failure.
func (ev *JobEvent) failureReason() string {
	why := "the train function failed"
	if ev.RequestContext != nil && ev.RequestContext.Condition == "EventAgeExceeded" {
		why = "the train function never ran it (Lambda's event age limit passed)"
	}
	if r := ev.ResponsePayload; r != nil && (r.ErrorType != "" || r.ErrorMessage != "") {
		why += ": " + strings.TrimPrefix(r.ErrorType+": "+r.ErrorMessage, ": ")
	}
	return why + "; submit it again"
}

// RunJob runs a training job event. The platform records the outcome in the
// job (including a stop on the deadline), so the returned error is only for
// the function's own error metric; a malformed event is refused up front.
// Its spans are exported before it returns.
func (a *App) RunJob(ctx context.Context, ev JobEvent) (err error) {
	ctx, span := a.startInvocation(ctx, "other")
	if span.IsRecording() {
		span.SetAttributes(attribute.String("aiaas.tenant", ev.Tenant), attribute.String("aiaas.job_id", ev.JobID))
	}
	defer func() { a.endInvocation(ctx, span, err) }()
	if p := ev.RequestPayload; p != nil {
		if p.Tenant == "" || p.JobID == "" {
			return fmt.Errorf("lambdaapp: failure record without the job's tenant and job_id")
		}
		reason := ev.failureReason()
		a.Log.ErrorContext(ctx, "a job's invocation failed; recording it", "tenant", p.Tenant, "job", p.JobID, "reason", reason)
		return a.Server.FailJob(ctx, p.Tenant, p.JobID, reason)
	}
	if ev.Tenant == "" || ev.JobID == "" {
		return fmt.Errorf("lambdaapp: job event needs tenant and job_id")
	}
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("lambdaapp: job %s panicked: %v", ev.JobID, p)
		}
		if a.metrics != nil {
			status := 200
			if err != nil {
				status = 500
			}
			a.metrics.Record(a.Name, "job", status, time.Since(start))
		}
	}()
	return a.Server.RunJob(ctx, ev.Tenant, ev.JobID)
}

// EMF writes CloudWatch Embedded Metric Format lines: CloudWatch Logs turns
// each into metrics without an API call or an agent (the Prometheus
// endpoint is for the long-running server). It is safe for concurrent use.
type EMF struct {
	mu        sync.Mutex
	w         io.Writer
	namespace string
	now       func() time.Time
}

// NewEMF returns an EMF writer to w under a CloudWatch namespace.
func NewEMF(w io.Writer, namespace string) *EMF {
	return &EMF{w: w, namespace: namespace, now: time.Now}
}

type emfLine struct {
	AWS      emfMeta `json:"_aws"`
	Function string  `json:"Function"`
	Route    string  `json:"Route"`
	Latency  float64 `json:"Latency"`
	Errors   int     `json:"Errors"`
	Status   int     `json:"Status"`
}

type emfMeta struct {
	Timestamp         int64          `json:"Timestamp"`
	CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
}

type emfDirective struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []emfMetric `json:"Metrics"`
}

type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

// Count writes one line with one count metric by Function (e.g.
// QuotaFallbacks: quota decisions made in process because DynamoDB failed).
func (e *EMF) Count(function, metric string, n int) {
	line := map[string]any{
		"_aws": emfMeta{
			Timestamp: e.now().UnixMilli(),
			CloudWatchMetrics: []emfDirective{{
				Namespace:  e.namespace,
				Dimensions: [][]string{{"Function"}},
				Metrics:    []emfMetric{{Name: metric, Unit: "Count"}},
			}},
		},
		"Function": function,
		metric:     n,
	}
	b, _ := json.Marshal(line) // plain strings and numbers: cannot fail
	b = append(b, '\n')
	e.mu.Lock()
	defer e.mu.Unlock()
	_, _ = e.w.Write(b)
}

// Record writes one line: Latency (ms) and Errors (1 for a 5xx) by Function
// and Route; Status is a plain property, searchable in Logs Insights.
func (e *EMF) Record(function, route string, status int, latency time.Duration) {
	errs := 0
	if status >= 500 {
		errs = 1
	}
	line := emfLine{
		AWS: emfMeta{
			Timestamp: e.now().UnixMilli(),
			CloudWatchMetrics: []emfDirective{{
				Namespace:  e.namespace,
				Dimensions: [][]string{{"Function", "Route"}},
				Metrics:    []emfMetric{{Name: "Latency", Unit: "Milliseconds"}, {Name: "Errors", Unit: "Count"}},
			}},
		},
		Function: function, Route: route,
		Latency: float64(latency.Microseconds()) / 1000,
		Errors:  errs, Status: status,
	}
	b, _ := json.Marshal(line) // plain strings and numbers: cannot fail
	b = append(b, '\n')
	e.mu.Lock()
	defer e.mu.Unlock()
	_, _ = e.w.Write(b)
}
