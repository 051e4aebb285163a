// Package tracing is aiaas's OpenTelemetry tracing: one [Provider] per
// process, exporting spans over OTLP/HTTP (protobuf bodies) to a collector,
// or a no-op tracer when no endpoint is configured.
//
// # Overview
//
// The configuration comes from the standard OTEL_* variables, parsed with
// the rest in platform/config ([FromConfig]). With no endpoint the
// [Provider] hands out the OpenTelemetry no-op tracer: starting a span then
// costs a context lookup and no allocation, so the platform instruments its
// hot path unconditionally.
//
// Spans are queued by a batch span processor. The long-running server lets
// it export in the background and calls [Provider.Shutdown] on exit. A
// Lambda function calls [Provider.Flush] at the end of every invocation,
// because the sandbox is frozen (and maybe discarded) as soon as the
// invocation returns; Flush is bounded by a short timeout so that a dead or
// slow collector costs at most that much and never fails the invocation.
//
// [FromXRay] turns Lambda's X-Ray trace header (_X_AMZN_TRACE_ID) into a
// remote span context, so a function's spans can join the X-Ray trace.
//
// This package must never make a request fail: export errors are logged and
// dropped, never returned on the request path.
package tracing

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/aiaas/aiaas/platform/config"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// InstrumentationName names the tracer of every aiaas span.
const InstrumentationName = "github.com/aiaas/aiaas"

// Config is what New needs. The zero value is tracing off.
type Config struct {
	// URL is the OTLP/HTTP traces URL (e.g. http://collector:4318/v1/traces);
	// "" turns tracing off.
	URL string
	// ServiceName is the service.name resource attribute; default "aiaas".
	ServiceName string
	// Sampler is an OTEL_TRACES_SAMPLER name; default parentbased_always_on.
	// Ratio is the traceidratio samplers' ratio.
	Sampler string
	Ratio   float64
	// FlushTimeout bounds Flush and Shutdown; default 500 ms.
	FlushTimeout time.Duration
}

// FromConfig takes the tracing settings of a process configuration;
// service is the default service name when OTEL_SERVICE_NAME is unset.
func FromConfig(c config.Config, service string) Config {
	if c.OTelServiceName != "" {
		service = c.OTelServiceName
	}
	return Config{URL: c.TracesURL(), ServiceName: service, Sampler: c.TracesSampler,
		Ratio: c.TracesSamplerRatio(), FlushTimeout: c.TraceFlushTimeout}
}

// Options configure New; nil means defaults.
type Options struct {
	// Attributes are added to the resource of every span (e.g. faas.name).
	Attributes []attribute.KeyValue
	// Logger receives export errors (the OpenTelemetry error handler is
	// process-global, so the last New with a Logger wins); default: the
	// OpenTelemetry default (the standard log package).
	Logger *slog.Logger
}

// Provider owns the tracer provider of a process. Its methods are safe for
// concurrent use, and on a nil *Provider (tracing off).
type Provider struct {
	tp     *sdktrace.TracerProvider // nil when off
	tracer trace.Tracer
	flush  time.Duration
}

var (
	noopTracer = noop.NewTracerProvider().Tracer(InstrumentationName)
	// noopSpan is what the Start functions return when tracing is off,
	// without putting it in the context: that would cost an allocation
	// per span, and nothing would read it.
	noopSpan = trace.SpanFromContext(context.Background())
)

// New builds a Provider. It opens no connection: the first export does.
func New(ctx context.Context, cfg Config, opts *Options) (*Provider, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	p := &Provider{tracer: noopTracer, flush: cfg.FlushTimeout}
	if p.flush <= 0 {
		p.flush = 500 * time.Millisecond
	}
	if cfg.URL == "" {
		return p, nil
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(cfg.URL))
	if err != nil {
		return nil, err
	}
	if cfg.ServiceName == "" {
		cfg.ServiceName = "aiaas"
	}
	attrs := append([]attribute.KeyValue{attribute.String("service.name", cfg.ServiceName)}, o.Attributes...)
	// Default carries telemetry.sdk.* and OTEL_RESOURCE_ATTRIBUTES; ours win.
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attrs...))
	if err != nil {
		res = resource.NewSchemaless(attrs...)
	}
	if o.Logger != nil {
		log := o.Logger
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			log.Warn("tracing: export failed; spans dropped", "err", err)
		}))
	}
	p.tp = sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sampler(cfg.Sampler, cfg.Ratio)),
	)
	p.tracer = p.tp.Tracer(InstrumentationName)
	return p, nil
}

func sampler(name string, ratio float64) sdktrace.Sampler {
	switch name {
	case "always_on":
		return sdktrace.AlwaysSample()
	case "always_off":
		return sdktrace.NeverSample()
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio)
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample())
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))
	}
	return sdktrace.ParentBased(sdktrace.AlwaysSample())
}

// Enabled reports whether spans are exported.
func (p *Provider) Enabled() bool { return p != nil && p.tp != nil }

// Tracer returns the tracer for aiaas spans (the no-op tracer when off).
func (p *Provider) Tracer() trace.Tracer {
	if p == nil {
		return noopTracer
	}
	return p.tracer
}

// Flush exports every ended span now, waiting at most the flush timeout
// (and never past ctx's deadline). Lambda functions call it before each
// invocation returns. The error is for logging only.
func (p *Provider) Flush(ctx context.Context) error {
	if !p.Enabled() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.flush)
	defer cancel()
	return p.tp.ForceFlush(ctx)
}

// FlushBefore is Flush, but gives up early enough to return before
// deadline (zero means no deadline): an invocation must answer in time
// even when the collector does not.
func (p *Provider) FlushBefore(ctx context.Context, deadline time.Time) error {
	if !p.Enabled() {
		return nil
	}
	d := p.flush
	if !deadline.IsZero() {
		if left := time.Until(deadline) - 50*time.Millisecond; left < d {
			d = left
		}
	}
	if d <= 0 {
		return context.DeadlineExceeded
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d)
	defer cancel()
	return p.tp.ForceFlush(ctx)
}

// Shutdown exports what is left (bounded by the flush timeout and ctx)
// and stops the provider. The server calls it on exit.
func (p *Provider) Shutdown(ctx context.Context) error {
	if !p.Enabled() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.flush)
	defer cancel()
	return p.tp.Shutdown(ctx)
}

// StartHTTP starts the server span of an HTTP request named
// "METHOD ROUTE". Its parent is the span already in ctx (a Lambda
// invocation's), else the W3C traceparent header of r. End it with
// [EndHTTP].
func StartHTTP(ctx context.Context, t trace.Tracer, r *http.Request, route string) (context.Context, trace.Span) {
	if t == noopTracer {
		return ctx, noopSpan
	}
	if !trace.SpanContextFromContext(ctx).IsValid() && r.Header.Get("Traceparent") != "" {
		ctx = propagation.TraceContext{}.Extract(ctx, propagation.HeaderCarrier(r.Header))
	}
	return t.Start(ctx, r.Method+" "+route, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("http.request.method", r.Method),
			attribute.String("http.route", route),
			attribute.String("url.path", r.URL.Path),
		))
}

// EndHTTP records the response status on span and ends it; a 5xx marks the
// span as an error.
func EndHTTP(span trace.Span, status int, requestID, tenant string) {
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("http.response.status_code", status),
			attribute.String("aiaas.request_id", requestID))
		if tenant != "" {
			span.SetAttributes(attribute.String("aiaas.tenant", tenant))
		}
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	}
	span.End()
}

// Start starts an internal span (model load, plugin call, forward pass);
// with tracing off it returns ctx itself and costs no allocation.
func Start(ctx context.Context, t trace.Tracer, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if t == noopTracer {
		return ctx, noopSpan
	}
	if len(attrs) == 0 {
		return t.Start(ctx, name)
	}
	return t.Start(ctx, name, trace.WithAttributes(attrs...))
}

// End ends span, recording err (if any) as its status.
func End(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
