package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/aiaas/aiaas/functions/internal/rietest"
	"github.com/aiaas/aiaas/internal/dynamodb"
	"github.com/aiaas/aiaas/internal/sigv4"
	"github.com/aiaas/aiaas/platform/quota/dynamo"
)

// quotaTable creates a table on the dynalite that scripts/dynalite.sh
// started and returns its endpoint and name; skipped without one unless
// AIAAS_REQUIRE_DYNAMODB=1.
func quotaTable(t *testing.T) (endpoint, table string) {
	t.Helper()
	endpoint = os.Getenv("AIAAS_TEST_DYNAMODB_ENDPOINT")
	if endpoint == "" {
		if os.Getenv("AIAAS_REQUIRE_DYNAMODB") == "1" {
			t.Fatal("AIAAS_REQUIRE_DYNAMODB=1 but AIAAS_TEST_DYNAMODB_ENDPOINT is unset: eval \"$(scripts/dynalite.sh start)\"")
		}
		t.Skip("no DynamoDB: eval \"$(scripts/dynalite.sh start)\"")
	}
	db := &dynamodb.Client{Endpoint: endpoint, Region: "us-east-1",
		Creds: func() sigv4.Credentials { return sigv4.Credentials{AccessKey: "test", SecretKey: "test"} }}
	var b [6]byte
	_, _ = rand.Read(b[:])
	table = "aiaas-quota-" + hex.EncodeToString(b[:])
	if err := db.CreateTable(context.Background(), table, dynamo.HashKey); err != nil {
		t.Fatal(err)
	}
	return endpoint, table
}

// Two infer execution environments (two bootstraps under the emulator) on
// one quota table: a tenant's burst of 4 is 4 across both, not 4 each, and
// another tenant is not held back. The rate is one request per 100 s, so no
// token comes back while the test runs, however slow the machine.
func TestQuotaAcrossEnvironmentsUnderRIE(t *testing.T) {
	rietest.Require(t)
	endpoint, table := quotaTable(t)
	adminEnv, inferEnv, _ := s3Env(t)

	admin := rietest.Start(t, rietest.Build(t, "../admin"), &rietest.Options{Env: adminEnv})
	keys := map[string]string{}
	for _, name := range []string{"acme", "globex"} {
		body, _ := json.Marshal(map[string]string{"name": name})
		r, _ := call(t, admin, v2Event("POST", "/v1/tenants", e2eAdminKey, body, "application/json"))
		var tenant struct {
			APIKey string `json:"api_key"`
		}
		if r.StatusCode != 201 || json.Unmarshal(r.bytes(), &tenant) != nil {
			t.Fatalf("create tenant %s: %d %s", name, r.StatusCode, r.bytes())
		}
		keys[name] = tenant.APIKey
	}
	if r, _ := call(t, admin, v2Event("POST", "/v1/models/clf/versions", keys["acme"], artifact(t), "application/octet-stream")); r.StatusCode != 201 {
		t.Fatalf("publish: %d %s", r.StatusCode, r.bytes())
	}
	admin.Stop()

	env := append(inferEnv[:len(inferEnv):len(inferEnv)],
		"AIAAS_QUOTA_TABLE="+table, "AIAAS_DYNAMODB_ENDPOINT="+endpoint,
		// dynalite on a loaded machine can take longer than the 500 ms
		// after which the functions would fall back to per-environment
		// quotas (what this test must not see).
		"AIAAS_QUOTA_TIMEOUT=10s",
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_SESSION_TOKEN=",
		"AIAAS_TENANT_RPS=0.01", "AIAAS_TENANT_BURST=4", "AIAAS_TENANT_CONCURRENCY=8")
	bootstrap := rietest.Build(t, ".")
	envs := []*rietest.Function{rietest.Start(t, bootstrap, &rietest.Options{Env: env}), rietest.Start(t, bootstrap, &rietest.Options{Env: env})}
	for i, want := range []int{200, 200, 200, 200, 429, 429} {
		fn := envs[i%2]
		r, _ := call(t, fn, v2Event("GET", "/v2/models/clf", keys["acme"], nil, ""))
		if r.StatusCode != want {
			t.Fatalf("request %d (environment %d): %d %s, want %d\n%s", i, i%2, r.StatusCode, r.bytes(), want, fn.Logs())
		}
		if want == 429 && (r.Headers["retry-after"] == "" && r.Headers["Retry-After"] == "") {
			t.Errorf("request %d: 429 without Retry-After: %v", i, r.Headers)
		}
	}
	if r, _ := call(t, envs[1], v2Event("GET", "/v2/models/clf", keys["globex"], nil, "")); r.StatusCode == 429 {
		t.Errorf("tenant globex throttled by acme's quota: %s", r.bytes())
	}
	for i, fn := range envs {
		if logs := fn.Logs(); strings.Contains(logs, "quota store unavailable") || strings.Contains(logs, "QuotaFallbacks") {
			t.Errorf("environment %d fell back to its in-process quota:\n%s", i, logs)
		}
	}
}
