package lambdaapp

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aiaas/aiaas/platform/tracing/otlptest"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

const testMasterKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

func openTraced(t *testing.T, endpoint string, extra ...string) *App {
	t.Helper()
	env := append([]string{"AIAAS_STORE=mem://", "AIAAS_MASTER_KEY=" + testMasterKey,
		"AIAAS_ADMIN_KEY=test-admin-key-0123456789abcdef", "AWS_LAMBDA_FUNCTION_NAME=aiaas-infer",
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + endpoint}, extra...)
	a, err := Open(context.Background(), "infer", env, &Options{NoPlugins: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(context.Background()) })
	return a
}

func healthEvent(t testing.TB) []byte {
	b, err := json.Marshal(events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: "GET /v2/health/live", RawPath: "/v2/health/live",
		Headers: map[string]string{"host": "api.example.com"},
		RequestContext: events.APIGatewayV2HTTPRequestContext{RequestID: "apigw-1", Stage: "$default",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "GET", Path: "/v2/health/live", SourceIP: "192.0.2.1"}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// invocationCtx is the context aws-lambda-go gives a handler: the request
// id, the deadline and the X-Ray trace header.
func invocationCtx(reqID, xray string, timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: reqID,
		InvokedFunctionArn: "arn:aws:lambda:us-east-1:123456789012:function:aiaas-infer"})
	ctx = context.WithValue(ctx, "x-amzn-trace-id", xray) //nolint:staticcheck // the runtime's own key
	return context.WithTimeout(ctx, timeout)
}

// Every invocation's spans are at the collector when Invoke returns: the
// root span with the Lambda request id, the platform's request span under
// it; an X-Ray header with Sampled=1 makes the root a child of the X-Ray
// segment, with Sampled=0 a link.
func TestSpansFlushedPerInvocation(t *testing.T) {
	rc := otlptest.New(t)
	h := openTraced(t, rc.URL).HTTP()
	for i, tc := range []struct {
		xray       string
		wantTrace  string
		wantParent string
		wantLink   bool
		cold       string
	}{
		{"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1", "5759e988bd862e3fe1be46a994272793", "53995c3f42cd8ad8", false, "true"},
		{"Root=1-6759e988-bd862e3fe1be46a994272793;Parent=63995c3f42cd8ad8;Sampled=0", "", "", true, "false"},
		{"", "", "", false, "false"},
	} {
		rc.Reset()
		reqID := "req-" + string(rune('a'+i))
		ctx, cancel := invocationCtx(reqID, tc.xray, 5*time.Second)
		out, err := h.Invoke(ctx, healthEvent(t))
		cancel()
		if err != nil || !strings.Contains(string(out), `"statusCode":200`) {
			t.Fatalf("case %d: %s %v", i, out, err)
		}
		// No waiting: the flush happened inside Invoke.
		roots, reqs := rc.Named("infer"), rc.Named("GET /v2/health/live")
		if len(roots) != 1 || len(reqs) != 1 || len(rc.Spans()) != 2 {
			t.Fatalf("case %d: spans after the invocation: %+v", i, rc.Spans())
		}
		root, req := roots[0], reqs[0]
		if root.Attributes["faas.invocation_id"] != reqID || root.Attributes["faas.coldstart"] != tc.cold ||
			root.Attributes["http.response.status_code"] != "200" || root.Resource["faas.name"] != "aiaas-infer" ||
			root.Resource["service.name"] != "aiaas-infer" {
			t.Errorf("case %d: root span %+v", i, root)
		}
		if req.ParentSpanID != root.SpanID || req.TraceID != root.TraceID || req.Attributes["aiaas.request_id"] != reqID {
			t.Errorf("case %d: request span %+v is not the root's child", i, req)
		}
		if tc.wantTrace != "" && (root.TraceID != tc.wantTrace || root.ParentSpanID != tc.wantParent) {
			t.Errorf("case %d: root %s/%s, want the X-Ray trace %s/%s", i, root.TraceID, root.ParentSpanID, tc.wantTrace, tc.wantParent)
		}
		if tc.wantTrace == "" && root.ParentSpanID != "" {
			t.Errorf("case %d: root has a parent %s", i, root.ParentSpanID)
		}
		if tc.wantLink != (len(root.Links) == 1) {
			t.Errorf("case %d: links %v", i, root.Links)
		}
	}
}

// A dead collector neither fails an invocation nor holds it: the flush
// gives up after AIAAS_TRACE_FLUSH_TIMEOUT, or earlier when the deadline is
// nearer. The bounds are far from both alternatives (the exporter's own
// 10 s timeout, the 30 s flush timeout) so that a busy machine's delays
// cannot fail the test while a flush that ignored them would.
func TestDeadCollectorDoesNotHoldInvocations(t *testing.T) {
	for name, url := range map[string]string{"blackhole": otlptest.Blackhole(t), "refused": otlptest.Refused(t)} {
		t.Run(name, func(t *testing.T) {
			for i, c := range []struct {
				flush, deadline string
				timeout         time.Duration
			}{
				{"1s", "a minute away", time.Minute}, // the flush timeout bounds it
				{"30s", "1 s away", time.Second},     // the deadline does
			} {
				h := openTraced(t, url, "AIAAS_TRACE_FLUSH_TIMEOUT="+c.flush).HTTP()
				ctx, cancel := invocationCtx("req", "", c.timeout)
				start := time.Now()
				out, err := h.Invoke(ctx, healthEvent(t))
				took := time.Since(start)
				cancel()
				if err != nil || !strings.Contains(string(out), `"statusCode":200`) {
					t.Fatalf("case %d: %s %v", i, out, err)
				}
				if took > 4*time.Second {
					t.Errorf("case %d: invocation took %v (flush timeout %s, deadline %s)", i, took, c.flush, c.deadline)
				}
			}
		})
	}
}

// The train function's invocations are traced too, and flushed.
func TestJobInvocationTraced(t *testing.T) {
	rc := otlptest.New(t)
	a := openTraced(t, rc.URL)
	ctx, cancel := invocationCtx("req-job", "", 5*time.Second)
	defer cancel()
	if err := a.RunJob(ctx, JobEvent{Tenant: "t1", JobID: "jnope"}); err == nil {
		t.Fatal("unknown job ran")
	}
	roots := rc.Named("infer")
	if len(roots) != 1 || !roots[0].StatusError || roots[0].Attributes["aiaas.job_id"] != "jnope" || roots[0].Attributes["faas.trigger"] != "other" {
		t.Fatalf("spans: %+v", rc.Spans())
	}
}

// BenchmarkInvocation is one warm invocation of the real platform handler
// (GET /v2/health/live): called directly, through the Lambda handler with
// tracing off, and with tracing on — root span, request span, and the
// per-invocation flush to a local OTLP/HTTP receiver (one POST each).
func BenchmarkInvocation(b *testing.B) {
	ev := healthEvent(b)
	open := func(b *testing.B, endpoint string) *App {
		env := []string{"AIAAS_STORE=mem://", "AIAAS_MASTER_KEY=" + testMasterKey, "OTEL_EXPORTER_OTLP_ENDPOINT=" + endpoint}
		a, err := Open(context.Background(), "infer", env, &Options{NoPlugins: true, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { a.Close(context.Background()) })
		return a
	}
	b.Run("direct", func(b *testing.B) {
		a := open(b, "")
		b.ReportAllocs()
		for b.Loop() {
			req := httptest.NewRequest("GET", "/v2/health/live", nil)
			a.Server.ServeHTTP(httptest.NewRecorder(), req)
		}
	})
	for _, traced := range []bool{false, true} {
		name := "lambda/tracing-off"
		endpoint := ""
		if traced {
			name = "lambda/tracing-on"
			endpoint = otlptest.New(b).URL
		}
		b.Run(name, func(b *testing.B) {
			h := open(b, endpoint).HTTP()
			ctx, cancel := invocationCtx("req", "", time.Hour)
			defer cancel()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := h.Invoke(ctx, ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
