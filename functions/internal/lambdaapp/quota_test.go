package lambdaapp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

func TestSharedQuotaConfig(t *testing.T) {
	ctx := context.Background()
	base := []string{"AIAAS_STORE=mem://", "AIAAS_MASTER_KEY=" + testMasterKey}
	for i, tc := range []struct {
		env    []string
		shared bool
		bad    string
	}{
		{nil, false, ""},
		{[]string{"AIAAS_QUOTA_TABLE=aiaas-quota"}, false, "AWS_REGION"},
		{[]string{"AIAAS_QUOTA_TABLE=aiaas-quota", "AWS_REGION=eu-west-1"}, true, ""},
		{[]string{"AIAAS_QUOTA_TABLE=aiaas-quota", "AIAAS_DYNAMODB_ENDPOINT=http://127.0.0.1:1"}, true, ""},
		{[]string{"AIAAS_QUOTA_TABLE=aiaas-quota", "AWS_REGION=eu-west-1", "AIAAS_TENANT_CONCURRENCY=100000"}, false, "AIAAS_QUOTA_TABLE"},
		{[]string{"AIAAS_QUOTA_TABLE=aiaas-quota", "AWS_REGION=eu-west-1", "AIAAS_QUOTA_TIMEOUT=soon"}, false, "AIAAS_QUOTA_TIMEOUT"},
		{[]string{"AIAAS_QUOTA_TABLE=aiaas-quota", "AWS_REGION=eu-west-1", "AIAAS_QUOTA_TIMEOUT=2s"}, true, ""},
	} {
		a, err := Open(ctx, "infer", append(base, tc.env...), &Options{NoPlugins: true, Logger: slog.New(slog.DiscardHandler)})
		if tc.bad != "" {
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.bad) {
				t.Errorf("case %d: err = %v, want a configuration error naming %s", i, err, tc.bad)
			}
			continue
		}
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if (a.quota != nil) != tc.shared {
			t.Errorf("case %d: shared quota = %v, want %v", i, a.quota != nil, tc.shared)
		}
		a.Close(ctx)
	}
}

func httpEvent(t testing.TB, method, path, key, body string) []byte {
	t.Helper()
	b, err := json.Marshal(events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: "$default", RawPath: path,
		Headers: map[string]string{"host": "api.example.com", "authorization": "Bearer " + key, "content-type": "application/json"},
		Body:    body,
		RequestContext: events.APIGatewayV2HTTPRequestContext{RequestID: "apigw-1", Stage: "$default",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path, SourceIP: "192.0.2.1"}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// With the quota table unreachable the function serves (fails open to the
// in-process quota) and reports each such decision as an EMF count.
func TestQuotaStoreDownServesAndCounts(t *testing.T) {
	ctx := context.Background()
	var metrics bytes.Buffer
	a, err := Open(ctx, "infer", []string{"AIAAS_STORE=mem://", "AIAAS_MASTER_KEY=" + testMasterKey,
		"AIAAS_ADMIN_KEY=test-admin-key-0123456789abcdef",
		"AIAAS_QUOTA_TABLE=aiaas-quota", "AIAAS_DYNAMODB_ENDPOINT=http://127.0.0.1:1"},
		&Options{NoPlugins: true, Logger: slog.New(slog.DiscardHandler), Metrics: &metrics})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx)
	h := a.HTTP()
	out, err := h.Invoke(ctx, httpEvent(t, "POST", "/v1/tenants", "test-admin-key-0123456789abcdef", `{"name":"acme"}`))
	if err != nil {
		t.Fatal(err)
	}
	var res events.APIGatewayV2HTTPResponse
	var tenant struct {
		Key string `json:"api_key"`
	}
	if err := json.Unmarshal(out, &res); err != nil || json.Unmarshal([]byte(res.Body), &tenant) != nil || tenant.Key == "" {
		t.Fatalf("create tenant: %s", out)
	}
	metrics.Reset()
	out, err = h.Invoke(ctx, httpEvent(t, "GET", "/v1/models", tenant.Key, ""))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &res); err != nil || res.StatusCode != 200 {
		t.Fatalf("with the quota store down: %s", out)
	}
	if !strings.Contains(metrics.String(), `"QuotaFallbacks":1`) {
		t.Fatalf("no QuotaFallbacks count in EMF:\n%s", metrics.String())
	}
}
