package metrics_test

import (
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aiaas/aiaas/platform/internal/metrics"
	"github.com/aiaas/aiaas/plugins"
)

type fakePlugins []plugins.TenantStats

func (f fakePlugins) Stats() []plugins.TenantStats { return f }

// scrape is the body of GET /metrics.
func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, err := io.ReadAll(rec.Result().Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Every series an operator reads (docs/operations.md, dashboards) is
// served under its name, labels and help, once each method has fed it.
func TestHandlerServesEverySeries(t *testing.T) {
	m := metrics.New(&metrics.Options{
		BodyBytesHeld: func() int64 { return 4096 },
		Plugins:       fakePlugins{{Tenant: "t1", Idle: 2, Busy: 1, MemoryBytes: 1 << 20}},
	})
	m.Request("t1", "infer", "mnist", 200, 3*time.Millisecond)
	m.Throttled("t1", "rate")
	m.CacheLookup("hit")
	m.SetModelCacheBytes(1234)
	m.PluginCall("t1", "preprocess", time.Millisecond, errors.New("trap"))
	m.Forward("t1", "mnist", "prod", "canary", time.Millisecond, nil)
	m.BatchRows(8)
	done := m.JobRunning()
	m.JobFinished("succeeded")
	m.AuditDropped(3)
	body := scrape(t, m)
	for i, want := range []string{
		`# HELP aiaas_requests_total Requests by tenant, route action, model and status.`,
		`aiaas_requests_total{action="infer",model="mnist",status="200",tenant="t1"} 1`,
		`aiaas_request_duration_seconds_bucket{action="infer",model="mnist",tenant="t1",le="0.0001"} 0`,
		`aiaas_throttled_total{reason="rate",tenant="t1"} 1`,
		`aiaas_model_cache_total{result="hit"} 1`,
		`aiaas_model_cache_bytes 1234`,
		`aiaas_plugin_duration_seconds_count{outcome="error",stage="preprocess",tenant="t1"} 1`,
		`aiaas_forward_duration_seconds_count{model="mnist",tenant="t1"} 1`,
		`aiaas_canary_requests_total{alias="prod",model="mnist",outcome="ok",side="canary",tenant="t1"} 1`,
		`aiaas_canary_duration_seconds_count{alias="prod",model="mnist",side="canary",tenant="t1"} 1`,
		`aiaas_batch_rows_bucket{le="512"} 1`,
		`aiaas_training_jobs_running 1`,
		`aiaas_training_jobs_total{status="succeeded"} 1`,
		`aiaas_audit_dropped_total 3`,
		`aiaas_request_body_bytes_held 4096`,
		`aiaas_plugin_instances{state="busy",tenant="t1"} 1`,
		`aiaas_plugin_instances{state="idle",tenant="t1"} 2`,
		`aiaas_plugin_memory_bytes{tenant="t1"} 1.048576e+06`,
		`go_goroutines `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("%d: /metrics lacks %q", i, want)
		}
	}
	done()
	if body := scrape(t, m); !strings.Contains(body, "aiaas_training_jobs_running 0") {
		t.Error("a finished job is still counted as running")
	}
	// Latency buckets: 14, ×2.5 from 100 µs.
	if !strings.Contains(body, `le="14.901161193847656"`) {
		t.Error("latency buckets changed: no 14.9 s top bucket")
	}
}

// A tenant's view holds its own series only.
func TestTenantSeesOnlyItsOwn(t *testing.T) {
	m := metrics.New(nil)
	m.Request("a", "infer", "mine", 200, time.Millisecond)
	m.Request("b", "infer", "theirs", 500, time.Millisecond)
	got, err := m.Tenant("a")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Requests) != 1 || got.Requests[0] != (metrics.RequestSeries{Action: "infer", Model: "mine", Status: "200", Count: 1}) {
		t.Fatalf("requests: %+v", got.Requests)
	}
	if len(got.Latency) != 1 || got.Latency[0].Model != "mine" || got.Latency[0].Count != 1 || len(got.Latency[0].Buckets) != 14 {
		t.Fatalf("latency: %+v", got.Latency)
	}
	none, err := m.Tenant("nobody")
	if err != nil || none.Requests == nil || none.Latency == nil || len(none.Requests)+len(none.Latency) != 0 {
		t.Fatalf("a tenant without requests: %+v, %v (want empty, non-nil lists)", none, err)
	}
}

// Canary reads back what Forward counted through one side of one alias.
func TestCanaryReadsForward(t *testing.T) {
	m := metrics.New(nil)
	for i := range 10 {
		var err error
		if i < 3 {
			err = errors.New("bad")
		}
		m.Forward("a", "m", "prod", "canary", time.Millisecond, err)
	}
	m.Forward("a", "m", "prod", "primary", time.Millisecond, nil)
	m.Forward("a", "m", "", "", time.Millisecond, nil) // not through an alias
	m.Forward("b", "m", "prod", "canary", time.Millisecond, nil)
	c, err := m.Canary("a", "m", "prod", "canary")
	if err != nil {
		t.Fatal(err)
	}
	if c.Requests != 10 || c.Errors != 3 || c.Count != 10 || len(c.Buckets) != 14 || c.Buckets[len(c.Buckets)-1].Count != 10 {
		t.Fatalf("canary side: %+v", c)
	}
	if p, _ := m.Canary("a", "m", "prod", "primary"); p.Requests != 1 || p.Errors != 0 {
		t.Fatalf("primary side: %+v", p)
	}
	if n, _ := m.Canary("a", "m", "other", "canary"); n.Requests != 0 || n.Buckets != nil {
		t.Fatalf("an alias without traffic: %+v", n)
	}
}

// Methods are called from every request's goroutine.
func TestConcurrentUse(t *testing.T) {
	m := metrics.New(nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				model := fmt.Sprint("m", (g*200+i)%120)
				m.Request(strconv.Itoa(g%2), "infer", model, 200, time.Microsecond)
				m.Forward(strconv.Itoa(g%2), model, "prod", "canary", time.Microsecond, nil)
				if i%50 == 0 {
					if _, err := m.Tenant("0"); err != nil {
						t.Error(err)
					}
					if _, err := m.Canary("1", model, "prod", "canary"); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	tm, err := m.Tenant("0")
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, r := range tm.Requests {
		n += r.Count
	}
	if n != 4*200 {
		t.Fatalf("tenant 0 counted %v requests, want %d", n, 4*200)
	}
}
