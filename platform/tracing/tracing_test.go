package tracing_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aiaas/aiaas/platform/config"
	"github.com/aiaas/aiaas/platform/tracing"
	"github.com/aiaas/aiaas/platform/tracing/otlptest"
)

func TestOffByDefault(t *testing.T) {
	p, err := tracing.New(context.Background(), tracing.FromConfig(config.Default(), "aiaas"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Enabled() {
		t.Fatal("tracing on with no endpoint")
	}
	r := httptest.NewRequest("GET", "/v2/health/live", nil)
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		c, span := tracing.StartHTTP(ctx, p.Tracer(), r, "/v2/health/live")
		_, inner := tracing.Start(c, p.Tracer(), "model.forward")
		tracing.End(inner, nil)
		tracing.EndHTTP(span, 200, "rid", "t1")
	})
	if allocs != 0 {
		t.Errorf("tracing off allocates %v times per request", allocs)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var nilP *tracing.Provider
	if nilP.Enabled() || nilP.Flush(ctx) != nil || nilP.Shutdown(ctx) != nil || nilP.Tracer() == nil {
		t.Fatal("a nil Provider is not tracing off")
	}
}

func TestExportAndFlush(t *testing.T) {
	rc := otlptest.New(t)
	cfg := config.Default()
	cfg.OTLPEndpoint = rc.URL
	p, err := tracing.New(context.Background(), tracing.FromConfig(cfg, "aiaas-test"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	r := httptest.NewRequest("POST", "/v2/models/m/infer", nil)
	r.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	ctx, span := tracing.StartHTTP(context.Background(), p.Tracer(), r, "/v2/models/{model}/infer")
	_, inner := tracing.Start(ctx, p.Tracer(), "model.load")
	tracing.End(inner, errors.New("not found"))
	tracing.EndHTTP(span, 503, "rid-1", "t1")
	if len(rc.Spans()) != 0 {
		t.Fatal("spans exported before the flush: the batcher should hold them")
	}
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := rc.Spans()
	if len(spans) != 2 {
		t.Fatalf("got %d spans, want 2: %+v", len(spans), spans)
	}
	root, load := rc.Named("POST /v2/models/{model}/infer"), rc.Named("model.load")
	if len(root) != 1 || len(load) != 1 {
		t.Fatalf("spans: %+v", spans)
	}
	if root[0].TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || root[0].ParentSpanID != "00f067aa0ba902b7" {
		t.Errorf("traceparent not honoured: %+v", root[0])
	}
	if load[0].ParentSpanID != root[0].SpanID || !load[0].StatusError {
		t.Errorf("model.load: %+v", load[0])
	}
	a := root[0].Attributes
	if a["http.response.status_code"] != "503" || a["http.route"] != "/v2/models/{model}/infer" || a["aiaas.tenant"] != "t1" || !root[0].StatusError {
		t.Errorf("attributes: %v", a)
	}
	if root[0].Resource["service.name"] != "aiaas-test" {
		t.Errorf("resource: %v", root[0].Resource)
	}
}

// A collector that hangs, or refuses, costs at most the flush timeout and
// is never an error on the request path (Flush's error is for the log).
func TestDeadCollectorIsBounded(t *testing.T) {
	for name, url := range map[string]string{"blackhole": otlptest.Blackhole(t), "refused": otlptest.Refused(t)} {
		t.Run(name, func(t *testing.T) {
			p, err := tracing.New(context.Background(), tracing.Config{URL: url + "/v1/traces", FlushTimeout: 200 * time.Millisecond}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Shutdown(context.Background())
			_, span := p.Tracer().Start(context.Background(), "x")
			span.End()
			start := time.Now()
			_ = p.Flush(context.Background())
			if d := time.Since(start); d > time.Second {
				t.Errorf("Flush took %v with a flush timeout of 200ms", d)
			}
			// FlushBefore never runs past the deadline it is given.
			_, span = p.Tracer().Start(context.Background(), "y")
			span.End()
			start = time.Now()
			_ = p.FlushBefore(context.Background(), time.Now().Add(120*time.Millisecond))
			if d := time.Since(start); d > 110*time.Millisecond {
				t.Errorf("FlushBefore took %v for a deadline 120ms away", d)
			}
		})
	}
}

func TestFromXRay(t *testing.T) {
	for i, tc := range []struct {
		in      string
		ok      bool
		trace   string
		span    string
		sampled bool
	}{
		{"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1", true, "5759e988bd862e3fe1be46a994272793", "53995c3f42cd8ad8", true},
		{"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0;Lineage=a87bd80c:0", true, "5759e988bd862e3fe1be46a994272793", "53995c3f42cd8ad8", false},
		{"Parent=53995c3f42cd8ad8; Root=1-5759e988-bd862e3fe1be46a994272793", true, "5759e988bd862e3fe1be46a994272793", "53995c3f42cd8ad8", false},
		{"Root=1-5759e988-bd862e3fe1be46a994272793", false, "", "", false},
		{"Root=1-5759e988-bd862e3fe1be46a99427279;Parent=53995c3f42cd8ad8", false, "", "", false},
		{"Root=2-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8", false, "", "", false},
		{"Root=1-5759e98z-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8", false, "", "", false},
		{"Root=1-00000000-000000000000000000000000;Parent=0000000000000000", false, "", "", false},
		{"", false, "", "", false},
		{strings.Repeat("a", 2000), false, "", "", false},
	} {
		sc, ok := tracing.FromXRay(tc.in)
		if ok != tc.ok {
			t.Errorf("case %d: ok %v, want %v", i, ok, tc.ok)
			continue
		}
		if !ok {
			continue
		}
		if sc.TraceID().String() != tc.trace || sc.SpanID().String() != tc.span || sc.IsSampled() != tc.sampled || !sc.IsRemote() {
			t.Errorf("case %d: %s/%s sampled %v", i, sc.TraceID(), sc.SpanID(), sc.IsSampled())
		}
	}
}

func FuzzFromXRay(f *testing.F) {
	f.Add("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
	f.Add("Root=1-;Parent=;Sampled=")
	f.Add(";;==;Root")
	f.Fuzz(func(t *testing.T, s string) {
		sc, ok := tracing.FromXRay(s)
		if ok != sc.IsValid() {
			t.Fatalf("ok %v but valid %v", ok, sc.IsValid())
		}
		if ok && !strings.Contains(strings.ToLower(s), sc.SpanID().String()) {
			t.Fatalf("span id %s not from the header %q", sc.SpanID(), s)
		}
	})
}

// Spans and flushes from many goroutines: none lost, no race.
func TestConcurrentSpansAndFlushes(t *testing.T) {
	rc := otlptest.New(t)
	p, err := tracing.New(context.Background(), tracing.Config{URL: rc.TracesURL(), FlushTimeout: 5 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 100
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				ctx, span := tracing.Start(context.Background(), p.Tracer(), "outer")
				_, inner := tracing.Start(ctx, p.Tracer(), "inner")
				tracing.End(inner, nil)
				tracing.End(span, nil)
				if i%25 == 0 {
					_ = p.Flush(ctx)
				}
			}
		}()
	}
	wg.Wait()
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(rc.Spans()); n != 2*workers*each {
		t.Fatalf("received %d spans, want %d", n, 2*workers*each)
	}
}
