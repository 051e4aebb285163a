// Package metrics holds the server's Prometheus series: what the platform
// counts about requests, quotas, the model cache, plugins, forward passes,
// canary splits, training jobs and the audit log, and the two ways they are
// read back (the operator's /metrics scrape and a tenant's own series).
//
// # Overview
//
// A [Metrics] is made once per server by [New] and fed through
// domain-named methods ([Metrics.Request], [Metrics.Throttled],
// [Metrics.Forward], …), so the rest of the platform names what happened
// and never touches a Prometheus type. It is the only package of the
// platform that imports github.com/prometheus/...: the series' names,
// labels and buckets are an operator's contract (docs/operations.md and
// the dashboards read them), and keeping them in one file keeps them from
// drifting.
//
// Labels carry tenant ids and model names, never keys or payloads. The
// model names one tenant puts in labels are bounded (see [Metrics.Request]),
// because every label value is a series held for the life of the process.
//
// All methods are safe for concurrent use.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/aiaas/aiaas/plugins"
)

// Metrics is the server's set of series and the registry that serves them.
// It is safe for concurrent use.
type Metrics struct {
	reg          *prometheus.Registry
	models       modelLabels
	requests     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	throttled    *prometheus.CounterVec
	cache        *prometheus.CounterVec
	cacheBytes   prometheus.Gauge
	pluginTime   *prometheus.HistogramVec
	computeTime  *prometheus.HistogramVec
	canary       *prometheus.CounterVec
	canaryTime   *prometheus.HistogramVec
	jobs         *prometheus.CounterVec
	jobsRunning  prometheus.Gauge
	batchRows    prometheus.Histogram
	auditDropped prometheus.Counter
}

// PluginStats is what the plugin series are read from on each scrape: the
// plugin host's instances and their linear memory, per tenant.
// *plugins.Host implements it.
type PluginStats interface {
	Stats() []plugins.TenantStats
}

// Options are the series whose values live elsewhere in the server and are
// read when scraped. The zero value (or nil) leaves them out.
type Options struct {
	// BodyBytesHeld, if set, is read on each scrape as
	// aiaas_request_body_bytes_held: the bytes of request bodies reserved
	// against the body budget by requests in flight.
	BodyBytesHeld func() int64

	// Plugins, if set, is read on each scrape as aiaas_plugin_instances and
	// aiaas_plugin_memory_bytes. Leave it nil (not a nil *plugins.Host)
	// when the server runs no plugins.
	Plugins PluginStats
}

// Buckets from 100 µs to ~10 s: inference is sub-millisecond warm and tens
// of milliseconds cold.
var latencyBuckets = prometheus.ExponentialBuckets(0.0001, 2.5, 14)

// New registers the server's series, with the Go runtime's and the
// process's, in a registry of their own: a second server in the same
// process (tests do this) must not collide with the first.
func New(opts *Options) *Metrics {
	if opts == nil {
		opts = &Options{}
	}
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aiaas_requests_total", Help: "Requests by tenant, route action, model and status.",
	}, []string{"tenant", "action", "model", "status"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "aiaas_request_duration_seconds", Help: "Request latency by tenant, route action and model.", Buckets: latencyBuckets,
	}, []string{"tenant", "action", "model"})
	m.throttled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aiaas_throttled_total", Help: "Requests refused with 429 by tenant and quota (rate, concurrency).",
	}, []string{"tenant", "reason"})
	m.cache = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aiaas_model_cache_total", Help: "Model cache lookups by result (hit, miss, error).",
	}, []string{"result"})
	m.cacheBytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "aiaas_model_cache_bytes", Help: "Bytes of decoded models held in the cache.",
	})
	m.pluginTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "aiaas_plugin_duration_seconds", Help: "Plugin call latency by tenant, stage and outcome.", Buckets: latencyBuckets,
	}, []string{"tenant", "stage", "outcome"})
	m.computeTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "aiaas_forward_duration_seconds", Help: "Forward-pass latency by tenant and model.", Buckets: latencyBuckets,
	}, []string{"tenant", "model"})
	m.canary = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aiaas_canary_requests_total", Help: "Requests through a split alias by side (primary, canary) and outcome (ok, error).",
	}, []string{"tenant", "model", "alias", "side", "outcome"})
	m.canaryTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "aiaas_canary_duration_seconds", Help: "Latency of requests through a split alias by side.", Buckets: latencyBuckets,
	}, []string{"tenant", "model", "alias", "side"})
	m.jobs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aiaas_training_jobs_total", Help: "Training jobs finished by status.",
	}, []string{"status"})
	m.jobsRunning = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "aiaas_training_jobs_running", Help: "Training jobs running now.",
	})
	m.batchRows = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "aiaas_batch_rows", Help: "Rows per forward pass after adaptive batching.", Buckets: prometheus.ExponentialBuckets(1, 2, 10),
	})
	m.auditDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "aiaas_audit_dropped_total", Help: "Audit records dropped because the store was unavailable for too long.",
	})
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.throttled, m.cache, m.cacheBytes, m.pluginTime,
		m.computeTime, m.canary, m.canaryTime, m.jobs, m.jobsRunning, m.batchRows, m.auditDropped,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		m.reg.MustRegister(c)
	}
	if held := opts.BodyBytesHeld; held != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "aiaas_request_body_bytes_held",
			Help: "Bytes of request bodies reserved against AIAAS_BODY_BUDGET_BYTES by requests in flight.",
		}, func() float64 { return float64(held()) }))
	}
	if opts.Plugins != nil {
		m.reg.MustRegister(newPluginCollector(opts.Plugins))
	}
	return m
}

// pluginCollector reports the plugin host's instances and their linear
// memory when scraped: the part of the process's memory that tenants'
// code holds, which the Go metrics do not see (it is mapped outside the
// Go heap).
type pluginCollector struct {
	h                 PluginStats
	instances, memory *prometheus.Desc
}

func newPluginCollector(h PluginStats) *pluginCollector {
	return &pluginCollector{
		h: h,
		instances: prometheus.NewDesc("aiaas_plugin_instances",
			"Plugin instances by tenant and state (idle: pooled; busy: running a call or starting).", []string{"tenant", "state"}, nil),
		memory: prometheus.NewDesc("aiaas_plugin_memory_bytes",
			"Linear memory of a tenant's plugin instances, each as of its last call.", []string{"tenant"}, nil),
	}
}

func (c *pluginCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.instances
	ch <- c.memory
}

func (c *pluginCollector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.h.Stats() {
		ch <- prometheus.MustNewConstMetric(c.instances, prometheus.GaugeValue, float64(st.Idle), st.Tenant, "idle")
		ch <- prometheus.MustNewConstMetric(c.instances, prometheus.GaugeValue, float64(st.Busy), st.Tenant, "busy")
		ch <- prometheus.MustNewConstMetric(c.memory, prometheus.GaugeValue, float64(st.MemoryBytes), st.Tenant)
	}
}

// Request counts a finished request and its latency, by tenant, route
// action, model and status. The model label is bounded per tenant: past
// maxModelSeries names, a tenant's new models are counted as "_other", so
// a tenant creating models in a loop cannot grow /metrics without end.
func (m *Metrics) Request(tenant, action, model string, status int, d time.Duration) {
	model = m.models.label(tenant, model)
	m.requests.WithLabelValues(tenant, action, model, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(tenant, action, model).Observe(d.Seconds())
}

// Throttled counts a request refused with 429 for the tenant's quota named
// by reason (rate, concurrency).
func (m *Metrics) Throttled(tenant, reason string) {
	m.throttled.WithLabelValues(tenant, reason).Inc()
}

// CacheLookup counts a model cache lookup by its result: "hit", "miss" or
// "error".
func (m *Metrics) CacheLookup(result string) {
	m.cache.WithLabelValues(result).Inc()
}

// SetModelCacheBytes records the bytes of decoded models the cache holds.
// The server sets it just before a scrape, so the value is current without
// the cache reporting every change.
func (m *Metrics) SetModelCacheBytes(n int64) {
	m.cacheBytes.Set(float64(n))
}

// PluginCall records a plugin call of d by tenant and stage (preprocess,
// postprocess); its outcome is "ok" when err is nil, else "error".
func (m *Metrics) PluginCall(tenant, stage string, d time.Duration, err error) {
	m.pluginTime.WithLabelValues(tenant, stage, outcome(err)).Observe(d.Seconds())
}

// Forward records a forward pass of d for tenant's model (the label bounded
// as in [Metrics.Request]). When the pass went through a split alias — side
// is "primary" or "canary", empty otherwise — it is also counted, with its
// outcome ("ok" when err is nil, else "error"), in the canary series that
// [Metrics.Canary] reads back.
func (m *Metrics) Forward(tenant, model, alias, side string, d time.Duration, err error) {
	model = m.models.label(tenant, model)
	m.computeTime.WithLabelValues(tenant, model).Observe(d.Seconds())
	if side != "" {
		m.canary.WithLabelValues(tenant, model, alias, side, outcome(err)).Inc()
		m.canaryTime.WithLabelValues(tenant, model, alias, side).Observe(d.Seconds())
	}
}

// BatchRows records the rows of one forward pass after adaptive batching.
func (m *Metrics) BatchRows(n int) {
	m.batchRows.Observe(float64(n))
}

// JobRunning counts a training job as running until the returned done is
// called; call it once, typically deferred.
func (m *Metrics) JobRunning() (done func()) {
	m.jobsRunning.Inc()
	return m.jobsRunning.Dec
}

// JobFinished counts a training job that finished with status (succeeded,
// failed, canceled).
func (m *Metrics) JobFinished(status string) {
	m.jobs.WithLabelValues(status).Inc()
}

// AuditDropped counts n audit records dropped because the store was
// unavailable for too long.
func (m *Metrics) AuditDropped(n int) {
	m.auditDropped.Add(float64(n))
}

// Handler serves every series in the Prometheus text format. It shows
// every tenant's labels, so it belongs behind the operator's key.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

func outcome(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

// maxModelSeries bounds the model names one tenant puts in metric labels:
// every label value is a series kept for the life of the process, so a
// tenant creating models in a loop would grow /metrics without end. The
// names past it are counted under otherModels.
const (
	maxModelSeries = 50
	otherModels    = "_other"
)

// modelLabels remembers which model names each tenant has in labels. It
// is safe for concurrent use.
type modelLabels struct {
	mu   sync.Mutex
	seen map[string]map[string]bool // tenant → model names
}

// label is model, or otherModels once the tenant has maxModelSeries
// others.
func (l *modelLabels) label(tenant, model string) string {
	if model == "" {
		return ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil {
		l.seen = map[string]map[string]bool{}
	}
	names := l.seen[tenant]
	if names[model] {
		return model
	}
	if len(names) >= maxModelSeries {
		return otherModels
	}
	if names == nil {
		names = map[string]bool{}
		l.seen[tenant] = names
	}
	names[model] = true
	return model
}
