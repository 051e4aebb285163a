package lambdaapp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/aiaas/aiaas/internal/sigv4"
)

// ErrDispatch: the train function could not be invoked.
var ErrDispatch = errors.New("lambdaapp: dispatch training job")

// Credentials are AWS credentials as Lambda provides them in the
// environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN).
type Credentials = sigv4.Credentials

// Invoker starts another Lambda function asynchronously (InvocationType
// Event) through the Lambda Invoke API, signed with SigV4 by the standard
// library: the admin function needs this one call, which does not justify
// the AWS SDK's size and init time. It is safe for concurrent use.
type Invoker struct {
	Function string // name or ARN
	Region   string
	Creds    func() Credentials
	Endpoint string // default https://lambda.REGION.amazonaws.com
	Client   *http.Client
	now      func() time.Time
}

// InvokerFromEnv returns an Invoker of function fn with the region and the
// credentials Lambda puts in the environment (read per call: Lambda may
// rotate the role's session credentials between invocations), and the
// endpoint AIAAS_LAMBDA_ENDPOINT when set (tests; empty means AWS).
func InvokerFromEnv(fn string) *Invoker {
	return &Invoker{
		Function: fn,
		Region:   os.Getenv("AWS_REGION"),
		Endpoint: os.Getenv("AIAAS_LAMBDA_ENDPOINT"),
		Creds:    sigv4.FromEnv,
	}
}

// Dispatch is a platform.JobDispatcher: it sends {"tenant","job_id"} to the
// train function and returns once Lambda accepted the event (202).
// It is safe for concurrent use.
func (iv *Invoker) Dispatch(ctx context.Context, tenant, jobID string) error {
	body, _ := json.Marshal(JobEvent{Tenant: tenant, JobID: jobID})
	ep := iv.Endpoint
	if ep == "" {
		ep = "https://lambda." + iv.Region + ".amazonaws.com"
	}
	u := ep + "/2015-03-31/functions/" + url.PathEscape(iv.Function) + "/invocations"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrDispatch, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Amz-Invocation-Type", "Event")
	now := time.Now
	if iv.now != nil {
		now = iv.now
	}
	sign(req, body, iv.Creds(), iv.Region, "lambda", now().UTC())
	client := iv.Client
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrDispatch, err)
	}
	defer res.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	// Lambda answers 202 to an Event invocation; the Runtime Interface
	// Emulator (tests) runs every invocation synchronously and answers 200.
	if res.StatusCode != http.StatusAccepted && res.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: %s: %s", ErrDispatch, res.Status, msg)
	}
	return nil
}

// sign adds SigV4 headers to req, whose body is payload.
func sign(req *http.Request, payload []byte, c Credentials, region, service string, t time.Time) {
	sigv4.Sign(req, payload, c, region, service, t)
}
