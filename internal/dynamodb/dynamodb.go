// Package dynamodb is a small DynamoDB client: the JSON protocol over HTTP
// with SigV4 (internal/sigv4), for the few item calls the platform makes
// (the shared quota store). It keeps the Lambda bootstrap free of the AWS
// SDK, whose size and init time one table does not justify.
//
// It sends one request per call and never retries: its caller decides,
// because a quota check on the request path would rather fall back than
// wait. Values are plain data ([Item], [Value]); only the attribute types
// the platform stores (S, N, BOOL) exist.
package dynamodb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aiaas/aiaas/internal/sigv4"
)

// ErrConditionalCheckFailed is the error of a write whose
// ConditionExpression was false (errors.Is works on an *APIError).
var ErrConditionalCheckFailed = errors.New("dynamodb: conditional check failed")

// APIError is an error answered by DynamoDB.
type APIError struct {
	Op      string
	Status  int
	Type    string // e.g. "ConditionalCheckFailedException"
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("dynamodb: %s: %d %s: %s", e.Op, e.Status, e.Type, e.Message)
}

// Is makes errors.Is(err, ErrConditionalCheckFailed) true for that type.
func (e *APIError) Is(target error) bool {
	return target == ErrConditionalCheckFailed && e.Type == "ConditionalCheckFailedException"
}

// Value is one attribute value.
type Value struct {
	S    *string `json:"S,omitempty"`
	N    *string `json:"N,omitempty"`
	BOOL *bool   `json:"BOOL,omitempty"`
}

// S is a string value.
func S(s string) Value { return Value{S: &s} }

// N is a number value.
func N(n int64) Value { s := fmt.Sprint(n); return Value{N: &s} }

// Int is the value as an integer; ok is false when it is not an integral N.
func (v Value) Int() (n int64, ok bool) {
	if v.N == nil {
		return 0, false
	}
	_, err := fmt.Sscan(*v.N, &n)
	return n, err == nil
}

// Item is an item or a key: attribute name → value.
type Item map[string]Value

// Client calls DynamoDB. It is safe for concurrent use.
type Client struct {
	// Endpoint is the base URL; default https://dynamodb.REGION.amazonaws.com.
	Endpoint string
	Region   string
	// Creds is called per request (Lambda may rotate session credentials).
	Creds func() sigv4.Credentials
	// HTTP sends the requests; default a client that keeps connections
	// alive (a TLS handshake per call would cost more than the call).
	HTTP *http.Client
	now  func() time.Time
}

// FromEnv returns a client configured as Lambda provides: AWS_REGION, the
// role's credentials in AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// AWS_SESSION_TOKEN, and endpoint (when not empty; tests point it at
// dynalite).
func FromEnv(endpoint string) *Client {
	return &Client{Endpoint: endpoint, Region: os.Getenv("AWS_REGION"), Creds: sigv4.FromEnv}
}

var defaultHTTP = &http.Client{Transport: &http.Transport{
	Proxy:               http.ProxyFromEnvironment,
	MaxIdleConns:        64,
	MaxIdleConnsPerHost: 64,
	IdleConnTimeout:     90 * time.Second,
	TLSHandshakeTimeout: 5 * time.Second,
	ForceAttemptHTTP2:   true,
}}

// Call sends operation op (e.g. "UpdateItem") with the request in and
// decodes the answer into out (nil: discarded).
func (c *Client) Call(ctx context.Context, op string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("dynamodb: %s: %w", op, err)
	}
	ep := strings.TrimSuffix(c.Endpoint, "/")
	if ep == "" {
		ep = "https://dynamodb." + c.Region + ".amazonaws.com"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep+"/", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("dynamodb: %s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", "DynamoDB_20120810."+op)
	now := time.Now
	if c.now != nil {
		now = c.now
	}
	var creds sigv4.Credentials
	if c.Creds != nil {
		creds = c.Creds()
	}
	region := c.Region
	if region == "" {
		region = "us-east-1"
	}
	sigv4.Sign(req, body, creds, region, "dynamodb", now())
	hc := c.HTTP
	if hc == nil {
		hc = defaultHTTP
	}
	res, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("dynamodb: %s: %w", op, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("dynamodb: %s: %w", op, err)
	}
	if res.StatusCode != http.StatusOK {
		var e struct {
			Type     string `json:"__type"`
			Message  string `json:"message"`
			Message2 string `json:"Message"`
		}
		_ = json.Unmarshal(b, &e)
		if e.Message == "" {
			e.Message = e.Message2
		}
		if e.Message == "" && e.Type == "" {
			e.Message = strings.TrimSpace(string(b))
		}
		// "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"
		typ := e.Type[strings.LastIndexByte(e.Type, '#')+1:]
		return &APIError{Op: op, Status: res.StatusCode, Type: typ, Message: e.Message}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("dynamodb: %s: decode answer: %w", op, err)
	}
	return nil
}

// UpdateItemInput is the request of UpdateItem.
type UpdateItemInput struct {
	TableName                 string
	Key                       Item
	UpdateExpression          string
	ConditionExpression       string            `json:",omitempty"`
	ExpressionAttributeNames  map[string]string `json:",omitempty"`
	ExpressionAttributeValues Item              `json:",omitempty"`
	ReturnValues              string            `json:",omitempty"`
}

// UpdateItem updates (or creates) one item and returns the attributes
// ReturnValues asks for.
func (c *Client) UpdateItem(ctx context.Context, in *UpdateItemInput) (Item, error) {
	var out struct{ Attributes Item }
	if err := c.Call(ctx, "UpdateItem", in, &out); err != nil {
		return nil, err
	}
	return out.Attributes, nil
}

// GetItem reads one item (nil when there is none); consistent asks for a
// strongly consistent read.
func (c *Client) GetItem(ctx context.Context, table string, key Item, consistent bool) (Item, error) {
	in := struct {
		TableName      string
		Key            Item
		ConsistentRead bool
	}{table, key, consistent}
	var out struct{ Item Item }
	if err := c.Call(ctx, "GetItem", in, &out); err != nil {
		return nil, err
	}
	return out.Item, nil
}

// CreateTable creates a table with a string hash key, billed on demand,
// and waits until it is ACTIVE: before that its items cannot be written
// (tests and local runs; the template declares the real one).
func (c *Client) CreateTable(ctx context.Context, table, hashKey string) error {
	in := map[string]any{
		"TableName":            table,
		"AttributeDefinitions": []map[string]string{{"AttributeName": hashKey, "AttributeType": "S"}},
		"KeySchema":            []map[string]string{{"AttributeName": hashKey, "KeyType": "HASH"}},
		"BillingMode":          "PAY_PER_REQUEST",
	}
	if err := c.Call(ctx, "CreateTable", in, nil); err != nil {
		return err
	}
	for {
		var out struct{ Table struct{ TableStatus string } }
		if err := c.Call(ctx, "DescribeTable", map[string]string{"TableName": table}, &out); err != nil {
			return err
		}
		if out.Table.TableStatus == "ACTIVE" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("dynamodb: table %s is %s: %w", table, out.Table.TableStatus, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
