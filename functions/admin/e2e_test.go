package main

// End-to-end control plane: the real admin and train bootstraps, each under
// its own Runtime Interface Emulator, share a store; a training job
// submitted to admin is dispatched to train through the Lambda Invoke API
// (SigV4-signed, pointed at the emulator with AIAAS_LAMBDA_ENDPOINT), trains,
// publishes a version and records its result, which admin then serves.
// A file:// store keeps this test independent of MinIO; the infer e2e test
// covers S3.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aiaas/aiaas/functions/internal/rietest"
	"github.com/aws/aws-lambda-go/events"
)

const adminKey = "e2e-admin-key-0123456789abcdef"

func v2(method, path, key, body, ct string) events.APIGatewayV2HTTPRequest {
	h := map[string]string{"host": "api.example.com"}
	if key != "" {
		h["authorization"] = "Bearer " + key
	}
	if ct != "" {
		h["content-type"] = ct
	}
	return events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "ANY /v1/{proxy+}", RawPath: path, Headers: h, Body: body,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RequestID: "e2e", Stage: "$default",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path, SourceIP: "192.0.2.1"},
		},
	}
}

func call(t *testing.T, fn *rietest.Function, ev events.APIGatewayV2HTTPRequest) (int, map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	raw, _, err := fn.Invoke(ctx, ev)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", ev.RequestContext.HTTP.Method, ev.RawPath, err, fn.Logs())
	}
	var r struct {
		StatusCode      int
		Body            string
		IsBase64Encoded bool
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("response %s: %v", raw, err)
	}
	body := []byte(r.Body)
	if r.IsBase64Encoded {
		body, _ = base64.StdEncoding.DecodeString(r.Body)
	}
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	return r.StatusCode, m
}

func TestControlPlaneUnderRIE(t *testing.T) {
	rietest.Require(t)
	// On MinIO, each function with its own role's rights (from
	// infra/template.yaml), not the root user's.
	mio := rietest.RequireMinIO(t)
	bucket := mio.Bucket(t)
	var mk [32]byte
	_, _ = rand.Read(mk[:])
	env := []string{
		"AIAAS_STORE=s3://" + bucket + "?endpoint=" + mio.Endpoint + "&secure=false&region=us-east-1",
		"AIAAS_MASTER_KEY=" + base64.StdEncoding.EncodeToString(mk[:]),
		"AIAAS_ADMIN_KEY=" + adminKey,
		"AIAAS_PLUGIN_CACHE_DIR=" + t.TempDir(),
		"AWS_LAMBDA_LOG_FORMAT=JSON",
	}
	role := func(id string) []string {
		ak, sk := mio.RoleUser(t, "../../infra/template.yaml", id, bucket)
		return append(env[:len(env):len(env)], "AIAAS_S3_ACCESS_KEY="+ak, "AIAAS_S3_SECRET_KEY="+sk)
	}
	train := rietest.Start(t, rietest.Build(t, "../train"), &rietest.Options{Env: role("TrainFunction"), Timeout: 60 * time.Second})
	admin := rietest.Start(t, rietest.Build(t, "."), &rietest.Options{Env: append(role("AdminFunction"),
		"AIAAS_TRAIN_FUNCTION=function", // the emulator serves one function, named "function"
		"AIAAS_LAMBDA_ENDPOINT=http://"+train.Addr(),
		"AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret", "AWS_SESSION_TOKEN=token",
	), Timeout: 60 * time.Second})

	status, m := call(t, admin, v2("POST", "/v1/tenants", adminKey, `{"name":"acme"}`, "application/json"))
	if status != 201 {
		t.Fatalf("create tenant: %d %v", status, m)
	}
	key := m["api_key"].(string)
	var csv strings.Builder
	for i := 0; i < 300; i++ {
		a, b := float32(i%17)/17, float32(i%5)/5
		label := 0
		if a+b > 0.9 {
			label = 1
		}
		fmt.Fprintf(&csv, "%g,%g,%d\n", a, b, label)
	}
	if status, m := call(t, admin, v2("PUT", "/v1/datasets/sums", key, csv.String(), "text/csv")); status != 201 {
		t.Fatalf("dataset: %d %v", status, m)
	}
	status, m = call(t, admin, v2("POST", "/v1/training-jobs", key,
		`{"model":"sums","dataset":"sums","layers":[16],"epochs":20,"seed":3}`, "application/json"))
	if status != 202 {
		t.Fatalf("submit: %d %v\nadmin logs:\n%s", status, m, admin.Logs())
	}
	id := m["id"].(string)
	var job map[string]any
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		_, job = call(t, admin, v2("GET", "/v1/training-jobs/"+id, key, "", ""))
		if s := job["status"]; s == "succeeded" || s == "failed" || s == "canceled" {
			break
		}
	}
	if job["status"] != "succeeded" {
		t.Fatalf("job: %v\ntrain logs:\n%s", job, train.Logs())
	}
	if v := job["result"].(map[string]any)["version"]; v != float64(1) {
		t.Fatalf("published version %v", v)
	}
	// The job ran in the train function, not in admin (which has no
	// workers once it can dispatch).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if reps, err := train.WaitReports(ctx, 1); err != nil {
		t.Fatalf("train function was never invoked (%v, %d reports)", err, len(reps))
	}
	// A malformed or unknown job event is logged, not retried.
	before := len(train.Reports())
	if raw, _, err := train.Invoke(ctx, map[string]string{"tenant": "acme", "job_id": "nope"}); err != nil || string(raw) != "null" {
		t.Fatalf("unknown job: %s %v", raw, err)
	}
	// The answer can come before the log is read: the invocation's REPORT
	// line follows everything the function printed.
	if _, err := train.WaitReports(ctx, before+1); err != nil {
		t.Fatalf("no REPORT for the unknown job's invocation: %v", err)
	}
	if !strings.Contains(train.Logs(), "training job ended with an error") {
		t.Errorf("unknown job not logged:\n%s", train.Logs())
	}
}
