package platform

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

// metrics are the server's Prometheus series. Labels carry tenant ids and
// model names, never keys or payloads; /metrics needs the admin key, since
// one tenant must not read another's names.
type metrics struct {
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

// Buckets from 100 µs to ~10 s: inference is sub-millisecond warm and tens
// of milliseconds cold.
var latencyBuckets = prometheus.ExponentialBuckets(0.0001, 2.5, 14)

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
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
		f(c)
	}
	return m
}

// pluginCollector reports the plugin host's instances and their linear
// memory when scraped: the part of the process's memory that tenants'
// code holds, which the Go metrics do not see (it is mapped outside the
// Go heap).
type pluginCollector struct {
	h                 *plugins.Host
	instances, memory *prometheus.Desc
}

func newPluginCollector(h *plugins.Host) *pluginCollector {
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

func (m *metrics) observe(tenant, action, model string, status int, d time.Duration) {
	model = m.models.label(tenant, model)
	m.requests.WithLabelValues(tenant, action, model, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(tenant, action, model).Observe(d.Seconds())
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

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// tenantMetrics is GET /v1/metrics: the caller's own series, as JSON, for
// the console's charts. A tenant never sees another tenant's labels.
type tenantMetrics struct {
	Requests []requestSeries `json:"requests"`
	Latency  []latencySeries `json:"latency"`
}

type requestSeries struct {
	Action string  `json:"action"`
	Model  string  `json:"model,omitempty"`
	Status string  `json:"status"`
	Count  float64 `json:"count"`
}

type latencySeries struct {
	Action  string   `json:"action"`
	Model   string   `json:"model,omitempty"`
	Count   uint64   `json:"count"`
	Sum     float64  `json:"sum_seconds"`
	Buckets []bucket `json:"buckets"`
}

type bucket struct {
	LE    float64 `json:"le"`
	Count uint64  `json:"count"`
}

func (m *metrics) forTenant(tenant string) (*tenantMetrics, error) {
	fams, err := m.reg.Gather()
	if err != nil {
		return nil, err
	}
	out := &tenantMetrics{Requests: []requestSeries{}, Latency: []latencySeries{}}
	for _, f := range fams {
		switch f.GetName() {
		case "aiaas_requests_total", "aiaas_request_duration_seconds":
		default:
			continue
		}
		for _, mt := range f.GetMetric() {
			labels := map[string]string{}
			for _, lp := range mt.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if labels["tenant"] != tenant {
				continue
			}
			if c := mt.GetCounter(); c != nil {
				out.Requests = append(out.Requests, requestSeries{Action: labels["action"], Model: labels["model"], Status: labels["status"], Count: c.GetValue()})
			}
			if h := mt.GetHistogram(); h != nil {
				ls := latencySeries{Action: labels["action"], Model: labels["model"], Count: h.GetSampleCount(), Sum: h.GetSampleSum()}
				for _, b := range h.GetBucket() {
					ls.Buckets = append(ls.Buckets, bucket{LE: b.GetUpperBound(), Count: b.GetCumulativeCount()})
				}
				out.Latency = append(out.Latency, ls)
			}
		}
	}
	return out, nil
}
