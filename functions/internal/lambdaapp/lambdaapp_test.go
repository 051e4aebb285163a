package lambdaapp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aiaas/aiaas/platform"
	"github.com/aiaas/aiaas/platform/apikey"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// TestSignV4 checks the signer against the worked example of AWS's
// "Create a signed AWS API request" documentation (IAM ListUsers).
func TestSignV4(t *testing.T) {
	req, _ := http.NewRequest("GET", "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08", nil)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sign(req, nil, Credentials{AccessKey: "AKIDEXAMPLE", SecretKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"},
		"us-east-1", "iam", time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC))
	want := "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, " +
		"SignedHeaders=content-type;host;x-amz-date, " +
		"Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
	if got := req.Header.Get("Authorization"); got != want {
		t.Fatalf("Authorization =\n%s\nwant\n%s", got, want)
	}
}

func TestDispatch(t *testing.T) {
	var got struct {
		path, invType, auth, token string
		ev                         JobEvent
	}
	status := http.StatusAccepted
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.path, got.invType = r.URL.EscapedPath(), r.Header.Get("X-Amz-Invocation-Type")
		got.auth, got.token = r.Header.Get("Authorization"), r.Header.Get("X-Amz-Security-Token")
		_ = json.NewDecoder(r.Body).Decode(&got.ev)
		w.WriteHeader(status)
	}))
	defer srv.Close()
	iv := &Invoker{Function: "aiaas-TrainFunction-abc", Region: "eu-west-1", Endpoint: srv.URL,
		Creds: func() Credentials { return Credentials{AccessKey: "AK", SecretKey: "SK", SessionToken: "TOKEN"} }}
	if err := iv.Dispatch(context.Background(), "acme", "job-1"); err != nil {
		t.Fatal(err)
	}
	if got.path != "/2015-03-31/functions/aiaas-TrainFunction-abc/invocations" || got.invType != "Event" ||
		got.token != "TOKEN" || !strings.Contains(got.auth, "Credential=AK/") || !strings.Contains(got.auth, "/eu-west-1/lambda/aws4_request") ||
		got.ev != (JobEvent{Tenant: "acme", JobID: "job-1"}) {
		t.Fatalf("request = %+v", got)
	}
	status = http.StatusForbidden
	if err := iv.Dispatch(context.Background(), "acme", "job-1"); !errors.Is(err, ErrDispatch) {
		t.Fatalf("403 gave %v", err)
	}
}

func TestEMF(t *testing.T) {
	var buf bytes.Buffer
	e := NewEMF(&buf, "aiaas")
	e.now = func() time.Time { return time.UnixMilli(1700000000123) }
	e.Record("infer", "POST /v2/{proxy+}", 502, 1500*time.Microsecond)
	want := `{"_aws":{"Timestamp":1700000000123,"CloudWatchMetrics":[{"Namespace":"aiaas","Dimensions":[["Function","Route"]],"Metrics":[{"Name":"Latency","Unit":"Milliseconds"},{"Name":"Errors","Unit":"Count"}]}]},"Function":"infer","Route":"POST /v2/{proxy+}","Latency":1.5,"Errors":1,"Status":502}` + "\n"
	if buf.String() != want {
		t.Fatalf("EMF line\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestOpenReportsConfigErrors(t *testing.T) {
	_, err := Open(context.Background(), "infer", []string{"AIAAS_TENANT_RPS=fast", "AIAAS_REQUEST_TIMEOUT=soon"}, nil)
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "AIAAS_TENANT_RPS") || !strings.Contains(err.Error(), "AIAAS_REQUEST_TIMEOUT") {
		t.Fatalf("err = %v", err)
	}
	_, err = Open(context.Background(), "infer", []string{"AIAAS_STORE=file://" + t.TempDir()}, nil)
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "AIAAS_MASTER_KEY") {
		t.Fatalf("missing master key: err = %v", err)
	}
}

// TestMainsFailFastOnBadConfig runs each function's real binary with a bad
// environment: it must exit 1 during init, before lambda.Start, with one
// message naming every bad variable.
func TestMainsFailFastOnBadConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three binaries")
	}
	for i, fn := range []string{"infer", "admin", "train"} {
		bin := filepath.Join(t.TempDir(), fn)
		build := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", bin, "../../"+fn)
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("case %d (%s): build: %v\n%s", i, fn, err, out)
		}
		cmd := exec.Command(bin)
		cmd.Env = []string{"AIAAS_TENANT_RPS=fast", "AIAAS_REQUEST_TIMEOUT=soon", "AWS_LAMBDA_RUNTIME_API=127.0.0.1:1"}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("case %d (%s): exit %v, want 1; stderr %s", i, fn, err, stderr.String())
		}
		msg := stderr.String()
		if strings.Count(strings.TrimSpace(msg), "\n") != 0 || !strings.Contains(msg, "AIAAS_TENANT_RPS") || !strings.Contains(msg, "AIAAS_REQUEST_TIMEOUT") {
			t.Errorf("case %d (%s): want one line naming both variables, got %q", i, fn, msg)
		}
	}
}

// TestTenantIsolation: under Lambda tenant isolation an environment serves
// the tenant Lambda routed it (the invocation's tenant ID) and refuses every
// other key; a bad mode is an init error.
func TestTenantIsolation(t *testing.T) {
	ctx := context.Background()
	base := []string{"AIAAS_STORE=file://" + t.TempDir(), "AIAAS_MASTER_KEY=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}
	if _, err := Open(ctx, "infer", append(base, "AIAAS_TENANT_ISOLATION=yes"), nil); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "AIAAS_TENANT_ISOLATION") {
		t.Fatalf("bad mode: err = %v", err)
	}
	a, err := Open(ctx, "infer", append(base, "AIAAS_TENANT_ISOLATION=PER_TENANT"), &Options{NoPlugins: true, Plane: platform.PlaneData})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx)
	acme, acmeKey, err := a.Server.CreateTenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, err := a.Server.CreateTenant(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	h := a.HTTP()
	call := func(tenantID string, key apikey.Key) (int, string) {
		t.Helper()
		ev := map[string]any{
			"version": "2.0", "routeKey": "GET /v2/{proxy+}", "rawPath": "/v2/models/m",
			"headers":        map[string]string{"authorization": "Bearer " + key.Reveal()},
			"requestContext": map[string]any{"http": map[string]string{"method": "GET", "path": "/v2/models/m"}},
		}
		b, _ := json.Marshal(ev)
		ictx := lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: "r1", TenantID: tenantID})
		out, err := h.Invoke(ictx, b)
		if err != nil {
			t.Fatal(err)
		}
		var res struct {
			StatusCode int    `json:"statusCode"`
			Body       string `json:"body"`
		}
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return res.StatusCode, res.Body
	}
	// Its own tenant reaches the handler (no such model: 404).
	if st, body := call(acme.ID, acmeKey); st != http.StatusNotFound || !strings.Contains(body, "m") {
		t.Errorf("own key: %d %s, want the handler's 404", st, body)
	}
	if st, body := call(acme.ID, otherKey); st != http.StatusForbidden {
		t.Errorf("other tenant's key: %d %s, want 403", st, body)
	}
	if st, body := call("", acmeKey); st != http.StatusBadRequest {
		t.Errorf("no tenant ID: %d %s, want 400", st, body)
	}
}
