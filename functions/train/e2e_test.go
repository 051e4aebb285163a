package main

// End-to-end: the real train bootstrap under the Runtime Interface Emulator
// with a short function timeout. The job is queued in a file:// store by an
// in-process platform server (the same code admin runs); the function must
// stop training before its deadline, publish what it trained and record
// why — or, when not even one epoch fits, fail the job with a reason.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aiaas/aiaas/functions/internal/rietest"
	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/platform"
	"github.com/aiaas/aiaas/platform/config"
)

const adminKey = "e2e-admin-key-0123456789abcdef"

type control struct {
	t   *testing.T
	url string
}

func (c control) do(method, path, key, body, ct string) (int, map[string]any) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return res.StatusCode, m
}

// controlPlane serves the platform over store (admin's role) with a
// dispatcher that leaves jobs queued for the function under test.
func controlPlane(t *testing.T, store, masterKey string, creds []string) control {
	return controlPlaneWith(t, store, masterKey, creds, nil)
}

func controlPlaneWith(t *testing.T, store, masterKey string, creds []string, mutate func(*config.Config)) control {
	cfg := config.Default()
	if mutate != nil {
		mutate(&cfg)
	}
	cfg.Store, cfg.AdminKey, cfg.MasterKey = store, adminKey, config.Secret(masterKey)
	mk, _ := cfg.MasterKeyBytes()
	o := &modelstore.Options{MasterKey: mk}
	if len(creds) == 2 {
		o.S3AccessKey, o.S3SecretKey = creds[0], creds[1]
	}
	ms, err := modelstore.Open(context.Background(), store, o)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := platform.New(context.Background(), platform.Options{Config: cfg, Store: platform.StoreFrom(ms),
		Dispatch: func(context.Context, string, string) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() { ts.Close(); srv.Close(context.Background()); ms.Close() })
	return control{t, ts.URL}
}

// sumsTenant starts a control plane on store (a fresh folder if "") with a
// tenant that owns the dataset "sums" (4000 rows: 3200 training rows after
// the test split, 400 batches of 8). adminCreds, if any, are the S3 keys of
// the admin role.
func sumsTenant(t *testing.T, store string, adminCreds ...string) (_, masterKey string, cp control, tenant, key string) {
	var mk [32]byte
	_, _ = rand.Read(mk[:])
	masterKey = base64.StdEncoding.EncodeToString(mk[:])
	if store == "" {
		store = "file://" + t.TempDir()
	}
	cp = controlPlane(t, store, masterKey, adminCreds)
	status, m := cp.do("POST", "/v1/tenants", adminKey, `{"name":"acme"}`, "application/json")
	if status != 201 {
		t.Fatalf("create tenant: %d %v", status, m)
	}
	tenant, key = m["id"].(string), m["api_key"].(string)
	var csv strings.Builder
	for i := 0; i < 4000; i++ {
		a, b := float32(i%17)/17, float32(i%5)/5
		label := 0
		if a+b > 0.9 {
			label = 1
		}
		fmt.Fprintf(&csv, "%g,%g,%d\n", a, b, label)
	}
	if status, m := cp.do("PUT", "/v1/datasets/sums", key, csv.String(), "text/csv"); status != 201 {
		t.Fatalf("dataset: %d %v", status, m)
	}
	return store, masterKey, cp, tenant, key
}

func TestTrainStopsBeforeDeadlineUnderRIE(t *testing.T) {
	rietest.Require(t)
	store, masterKey, cp, tenant, key := sumsTenant(t, "")
	submit := func() string {
		// 1000 epochs of 400 batches: minutes of work, far past the timeout.
		status, m := cp.do("POST", "/v1/training-jobs", key,
			`{"model":"sums","dataset":"sums","layers":[64,64],"batch_size":8,"epochs":1000,"seed":3}`, "application/json")
		if status != 202 {
			t.Fatalf("submit: %d %v", status, m)
		}
		return m["id"].(string)
	}
	// Continuation off: what the function does when it may not invoke
	// itself (TestTrainContinuesUnderRIE covers continuing).
	env := []string{"AIAAS_STORE=" + store, "AIAAS_MASTER_KEY=" + masterKey, "AIAAS_ADMIN_KEY=" + adminKey,
		"AWS_LAMBDA_LOG_FORMAT=JSON", "AIAAS_TRAIN_CONTINUE=off"}
	bootstrap := rietest.Build(t, ".")

	for i, tc := range []struct {
		timeout time.Duration
		status  string
	}{
		// 8 s: a 5 s reserve leaves about 3 s to train, then a published
		// model marked as stopped at the deadline.
		{8 * time.Second, "succeeded"},
		// 4 s: less than the reserve, so not one epoch: the job fails
		// with a reason and nothing is published.
		{4 * time.Second, "failed"},
	} {
		id := submit()
		fn := rietest.Start(t, bootstrap, &rietest.Options{Env: env, Timeout: tc.timeout})
		ctx, cancel := context.WithTimeout(context.Background(), tc.timeout+30*time.Second)
		raw, took, err := fn.Invoke(ctx, map[string]string{"tenant": tenant, "job_id": id})
		cancel()
		if err != nil || string(raw) != "null" {
			t.Fatalf("case %d: invoke: %s %v\n%s", i, raw, err, fn.Logs())
		}
		reps, _ := fn.WaitReports(context.Background(), 1)
		if len(reps) != 1 || reps[0].Duration >= tc.timeout {
			t.Errorf("case %d: the invocation ran into its %v timeout: %+v\n%s", i, tc.timeout, reps, fn.Logs())
		}
		_, job := cp.do("GET", "/v1/training-jobs/"+id, key, "", "")
		if job["status"] != tc.status {
			t.Fatalf("case %d: job %v\n%s", i, job, fn.Logs())
		}
		switch tc.status {
		case "succeeded":
			res := job["result"].(map[string]any)
			sa, _ := res["stopped_at"].(map[string]any)
			if res["stopped"] != "deadline" || sa == nil || sa["epochs_completed"].(float64) < 1 || sa["time_left_seconds"].(float64) < 1 {
				t.Fatalf("case %d: result %v", i, res)
			}
			t.Logf("timeout %v: stopped at %v; invocation %v (REPORT), %v (client)", tc.timeout, sa, reps[0].Duration, took)
		case "failed":
			if msg, _ := job["error"].(string); !strings.Contains(msg, "before the first epoch finished") || !strings.Contains(msg, "raise the function timeout") {
				t.Fatalf("case %d: error %q", i, msg)
			}
			t.Logf("timeout %v: %s", tc.timeout, job["error"])
		}
		fn.Stop()
	}
	// Only the first job published a version.
	if status, m := cp.do("GET", "/v1/models/sums", key, "", ""); status != 200 || !strings.Contains(fmt.Sprint(m), "deadline: ") {
		t.Fatalf("model: %d %v", status, m)
	}
}

// TestTrainContinuesUnderRIE: a job longer than one invocation is
// checkpointed at each deadline and continued by the function invoking
// itself asynchronously (the Lambda Invoke API, here a recorder standing in
// for Lambda, which the test then delivers to the emulator as Lambda
// would), until it finishes as one run: every epoch, no "stopped".
func TestTrainContinuesUnderRIE(t *testing.T) {
	rietest.Require(t)
	// On MinIO, the train function with its role's rights only (the admin
	// side with the admin role's): checkpoints, continuation and the
	// published model need nothing more.
	mio := rietest.RequireMinIO(t)
	bucket := mio.Bucket(t)
	store := "s3://" + bucket + "?endpoint=" + mio.Endpoint + "&secure=false&region=us-east-1"
	adminAK, adminSK := mio.RoleUser(t, "../../infra/template.yaml", "AdminFunction", bucket)
	trainAK, trainSK := mio.RoleUser(t, "../../infra/template.yaml", "TrainFunction", bucket)
	store, masterKey, cp, tenant, key := sumsTenant(t, store, adminAK, adminSK)
	// 200 epochs of 400 batches: 2–4 s of training (15 ms an epoch on the
	// 2-core machine), against about one second per 6 s invocation (the
	// 5 s reserve).
	const epochs = 200
	status, m := cp.do("POST", "/v1/training-jobs", key,
		fmt.Sprintf(`{"model":"sums","dataset":"sums","layers":[64,64],"batch_size":8,"epochs":%d,"seed":3}`, epochs), "application/json")
	if status != 202 {
		t.Fatalf("submit: %d %v", status, m)
	}
	id := m["id"].(string)

	events := make(chan []byte, 4)
	lambdaAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path != "/2015-03-31/functions/function/invocations" || r.Header.Get("X-Amz-Invocation-Type") != "Event" ||
			!strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
			http.Error(w, "not an asynchronous, signed Invoke of the train function", http.StatusBadRequest)
			return
		}
		events <- b
		w.WriteHeader(http.StatusAccepted)
	}))
	defer lambdaAPI.Close()
	env := []string{"AIAAS_STORE=" + store, "AIAAS_MASTER_KEY=" + masterKey, "AIAAS_ADMIN_KEY=" + adminKey,
		"AIAAS_S3_ACCESS_KEY=" + trainAK, "AIAAS_S3_SECRET_KEY=" + trainSK,
		"AWS_LAMBDA_LOG_FORMAT=JSON", "AIAAS_TRAIN_FUNCTION=function", "AIAAS_LAMBDA_ENDPOINT=" + lambdaAPI.URL,
		"AWS_REGION=eu-west-1", "AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret", "AWS_SESSION_TOKEN=token"}
	fn := rietest.Start(t, rietest.Build(t, "."), &rietest.Options{Env: env, Timeout: 6 * time.Second})

	payload, _ := json.Marshal(map[string]string{"tenant": tenant, "job_id": id})
	invocations := 0
	var job map[string]any
	for {
		invocations++
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		raw, _, err := fn.Invoke(ctx, json.RawMessage(payload))
		cancel()
		if err != nil || string(raw) != "null" {
			t.Fatalf("invocation %d: %s %v\n%s", invocations, raw, err, fn.Logs())
		}
		_, job = cp.do("GET", "/v1/training-jobs/"+id, key, "", "")
		if job["status"] != "queued" {
			break
		}
		select {
		case payload = <-events: // the function asked Lambda to continue the job
		default:
			t.Fatalf("invocation %d left the job queued without invoking the function again\n%s", invocations, fn.Logs())
		}
		if invocations > 40 {
			t.Fatalf("still queued after %d invocations: %v", invocations, job)
		}
	}
	if job["status"] != "succeeded" {
		t.Fatalf("job after %d invocations: %v\n%s", invocations, job, fn.Logs())
	}
	res := job["result"].(map[string]any)
	if res["stopped"] != nil || len(job["epochs"].([]any)) != epochs {
		t.Fatalf("result %v, %d epochs", res, len(job["epochs"].([]any)))
	}
	if invocations < 2 || job["continuations"].(float64) != float64(invocations-1) {
		t.Fatalf("%d invocations, continuations %v: the job never continued (make it longer)", invocations, job["continuations"])
	}
	t.Logf("%d epochs in %d invocations of 6 s", epochs, invocations)
}

// TestTrainWorkerDiesUnderRIE: jobs never hang. A train bootstrap killed in
// the middle of a job (as Lambda kills one out of memory) stops its
// heartbeat, and the job reads as failed once AIAAS_JOB_STALE has passed;
// the failure destination's record (what Lambda sends the function about a
// crashed invocation) marks a job failed at once, with the reason.
func TestTrainWorkerDiesUnderRIE(t *testing.T) {
	rietest.Require(t)
	var mk [32]byte
	_, _ = rand.Read(mk[:])
	masterKey := base64.StdEncoding.EncodeToString(mk[:])
	store := "file://" + t.TempDir()
	const stale = 2 * time.Second
	cp := controlPlaneWith(t, store, masterKey, nil, func(c *config.Config) { c.JobStale = stale })
	status, m := cp.do("POST", "/v1/tenants", adminKey, `{"name":"acme"}`, "application/json")
	if status != 201 {
		t.Fatalf("create tenant: %d %v", status, m)
	}
	tenant, key := m["id"].(string), m["api_key"].(string)
	var csv strings.Builder
	for i := 0; i < 4000; i++ {
		fmt.Fprintf(&csv, "%g,%g,%d\n", float32(i%17)/17, float32(i%5)/5, i%2)
	}
	if status, m := cp.do("PUT", "/v1/datasets/sums", key, csv.String(), "text/csv"); status != 201 {
		t.Fatalf("dataset: %d %v", status, m)
	}
	submit := func() string {
		status, m := cp.do("POST", "/v1/training-jobs", key,
			`{"model":"sums","dataset":"sums","layers":[64,64],"batch_size":8,"epochs":1000,"seed":3}`, "application/json")
		if status != 202 {
			t.Fatalf("submit: %d %v", status, m)
		}
		return m["id"].(string)
	}
	env := []string{"AIAAS_STORE=" + store, "AIAAS_MASTER_KEY=" + masterKey, "AIAAS_ADMIN_KEY=" + adminKey,
		"AWS_LAMBDA_LOG_FORMAT=JSON", "AIAAS_TRAIN_CONTINUE=off", "AIAAS_JOB_STALE=" + stale.String()}
	bootstrap := rietest.Build(t, ".")

	// Killed mid-job.
	id := submit()
	fn := rietest.Start(t, bootstrap, &rietest.Options{Env: env, Timeout: 5 * time.Minute})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		_, _, _ = fn.Invoke(ctx, map[string]string{"tenant": tenant, "job_id": id})
	}()
	poll := func(id string, until func(map[string]any) bool, within time.Duration) map[string]any {
		t.Helper()
		var job map[string]any
		for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			_, job = cp.do("GET", "/v1/training-jobs/"+id, key, "", "")
			if until(job) {
				return job
			}
		}
		t.Fatalf("job %s: still %v after %v\n%s", id, job, within, fn.Logs())
		return nil
	}
	poll(id, func(j map[string]any) bool {
		p, _ := j["progress"].(map[string]any)
		return j["status"] == "running" && p != nil && p["epoch"].(float64) >= 1
	}, time.Minute)
	fn.Stop() // the process group dies at once, as under an out-of-memory kill
	job := poll(id, func(j map[string]any) bool { return j["status"] != "running" }, time.Minute)
	if job["status"] != "failed" || !strings.Contains(fmt.Sprint(job["error"]), "no heartbeat") {
		t.Errorf("killed worker: job %v", job)
	}

	// The failure destination's record.
	id = submit()
	fn = rietest.Start(t, bootstrap, &rietest.Options{Env: env})
	rec := map[string]any{
		"version": "1.0", "timestamp": time.Now().UTC().Format(time.RFC3339),
		"requestContext":  map[string]any{"requestId": "r1", "condition": "RetriesExhausted", "approximateInvokeCount": 1},
		"requestPayload":  map[string]string{"tenant": tenant, "job_id": id},
		"responseContext": map[string]any{"statusCode": 200, "functionError": "Unhandled"},
		"responsePayload": map[string]string{"errorType": "Runtime.OutOfMemory", "errorMessage": "Runtime exited with error: signal: killed"},
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	raw, _, err := fn.Invoke(ctx, rec)
	cancel()
	if err != nil || string(raw) != "null" {
		t.Fatalf("destination record: %s %v\n%s", raw, err, fn.Logs())
	}
	_, job = cp.do("GET", "/v1/training-jobs/"+id, key, "", "")
	if job["status"] != "failed" || !strings.Contains(fmt.Sprint(job["error"]), "Runtime.OutOfMemory: Runtime exited with error: signal: killed") {
		t.Errorf("after the failure record: job %v", job)
	}
	fn.Stop()
}
