package lambdaapp

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"
)

// ErrDispatch: the train function could not be invoked.
var ErrDispatch = errors.New("lambdaapp: dispatch training job")

// Credentials are AWS credentials as Lambda provides them in the
// environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN).
type Credentials struct {
	AccessKey, SecretKey, SessionToken string
}

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
		Creds: func() Credentials {
			return Credentials{
				AccessKey:    os.Getenv("AWS_ACCESS_KEY_ID"),
				SecretKey:    os.Getenv("AWS_SECRET_ACCESS_KEY"),
				SessionToken: os.Getenv("AWS_SESSION_TOKEN"),
			}
		},
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

// sign adds SigV4 headers (X-Amz-Date, X-Amz-Security-Token, Authorization)
// to req, whose body is payload.
func sign(req *http.Request, payload []byte, c Credentials, region, service string, t time.Time) {
	amzDate := t.Format("20060102T150405Z")
	day := t.Format("20060102")
	req.Header.Set("X-Amz-Date", amzDate)
	if c.SessionToken != "" {
		req.Header.Set("X-Amz-Security-Token", c.SessionToken)
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	headers := map[string]string{"host": host}
	for k, vs := range req.Header {
		headers[strings.ToLower(k)] = strings.TrimSpace(strings.Join(vs, ","))
	}
	names := make([]string, 0, len(headers))
	for k := range headers {
		names = append(names, k)
	}
	sort.Strings(names)
	var canonHeaders strings.Builder
	for _, k := range names {
		canonHeaders.WriteString(k + ":" + headers[k] + "\n")
	}
	signed := strings.Join(names, ";")
	path := req.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	if service != "s3" {
		// Every service but S3 signs the path URI-encoded twice.
		path = strings.ReplaceAll(path, "%", "%25")
	}
	q := req.URL.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var canonQuery []string
	for _, k := range keys {
		vs := append([]string(nil), q[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			canonQuery = append(canonQuery, awsEscape(k)+"="+awsEscape(v))
		}
	}
	sum := sha256.Sum256(payload)
	canonical := strings.Join([]string{req.Method, path, strings.Join(canonQuery, "&"),
		canonHeaders.String(), signed, hex.EncodeToString(sum[:])}, "\n")
	scope := day + "/" + region + "/" + service + "/aws4_request"
	creq := sha256.Sum256([]byte(canonical))
	toSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(creq[:])
	k := hmacSHA256([]byte("AWS4"+c.SecretKey), day)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	k = hmacSHA256(k, "aws4_request")
	sig := hex.EncodeToString(hmacSHA256(k, toSign))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+c.AccessKey+"/"+scope+
		", SignedHeaders="+signed+", Signature="+sig)
}

func hmacSHA256(key []byte, s string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return m.Sum(nil)
}

// awsEscape is RFC 3986 escaping as SigV4 wants it (space as %20, ~ kept).
func awsEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}
