package platform_test

import (
	"context"
	"testing"

	"github.com/aiaas/aiaas/platform/config"
	"github.com/aiaas/aiaas/platform/tracing/otlptest"
)

// The long-running server batches spans and exports what is left when it
// closes: a request span per request, with the model load and the forward
// pass under an infer request's span, and a client's traceparent honoured.
func TestServerSpansExportedOnClose(t *testing.T) {
	rc := otlptest.New(t)
	e := newEnv(t, func(c *config.Config) { c.OTLPEndpoint = rc.URL })
	key := e.tenant("acme")
	e.publish(key, "clf", 1)
	if r := e.do("POST", "/v2/models/clf/infer", key, inferBody(2),
		"Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"); r.status != 200 {
		t.Fatalf("infer: %d %s", r.status, r.body)
	}
	if err := e.srv.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	infer := rc.Named("POST /v2/models/{model}/infer")
	if len(infer) != 1 {
		t.Fatalf("spans after Close: %+v", rc.Spans())
	}
	root := infer[0]
	if root.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || root.ParentSpanID != "00f067aa0ba902b7" ||
		root.Attributes["http.response.status_code"] != "200" || root.Attributes["aiaas.tenant"] == "" ||
		root.Resource["service.name"] != "aiaas" {
		t.Errorf("infer span: %+v", root)
	}
	for _, name := range []string{"model.load", "model.forward"} {
		s := rc.Named(name)
		if len(s) != 1 || s[0].ParentSpanID != root.SpanID {
			t.Errorf("%s: %+v, want one child of the request span", name, s)
		}
	}
	if len(rc.Named("POST /v1/tenants")) != 1 || len(rc.Named("POST /v1/models/{model}/versions")) != 1 {
		t.Errorf("control-plane request spans missing: %+v", rc.Spans())
	}
}
