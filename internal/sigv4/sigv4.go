// Package sigv4 signs AWS API requests with Signature Version 4, using the
// standard library only: the Lambda functions make a handful of AWS calls
// (Lambda Invoke, DynamoDB's item calls), which do not justify the AWS
// SDK's size and init time in every bootstrap.
//
// It signs; it never sends, retries or reads credentials from anywhere but
// its caller.
package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"
)

// Credentials are AWS credentials as Lambda provides them in the
// environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN).
type Credentials struct {
	AccessKey, SecretKey, SessionToken string
}

// FromEnv reads the credentials from the process environment. Call it per
// request: Lambda may rotate the role's session credentials between
// invocations.
func FromEnv() Credentials {
	return Credentials{
		AccessKey:    os.Getenv("AWS_ACCESS_KEY_ID"),
		SecretKey:    os.Getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken: os.Getenv("AWS_SESSION_TOKEN"),
	}
}

// Sign adds the SigV4 headers (X-Amz-Date, X-Amz-Security-Token,
// Authorization) to req, whose body is payload, for service in region at
// time t. Every header already set on req is signed.
func Sign(req *http.Request, payload []byte, c Credentials, region, service string, t time.Time) {
	t = t.UTC()
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
			canonQuery = append(canonQuery, escape(k)+"="+escape(v))
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

// escape is RFC 3986 escaping as SigV4 wants it (space as %20, ~ kept).
func escape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}
