package dynamodb

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aiaas/aiaas/internal/sigv4"
)

// The wire format DynamoDB's JSON protocol wants, and its errors mapped to
// what callers branch on.
func TestCallWireFormat(t *testing.T) {
	var got struct {
		target, ctype, auth, token string
		body                       map[string]any
	}
	answer := `{"Attributes":{"tat":{"N":"42"}}}`
	status := 200
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.target, got.ctype = r.Header.Get("X-Amz-Target"), r.Header.Get("Content-Type")
		got.auth, got.token = r.Header.Get("Authorization"), r.Header.Get("X-Amz-Security-Token")
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &got.body)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(answer))
	}))
	defer srv.Close()
	c := &Client{Endpoint: srv.URL, Region: "eu-west-1",
		Creds: func() sigv4.Credentials {
			return sigv4.Credentials{AccessKey: "AK", SecretKey: "SK", SessionToken: "TOK"}
		},
		now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }}
	out, err := c.UpdateItem(context.Background(), &UpdateItemInput{TableName: "q", Key: Item{"tenant": S("acme")},
		UpdateExpression: "SET #t = :t", ExpressionAttributeNames: map[string]string{"#t": "tat"},
		ExpressionAttributeValues: Item{":t": N(42)}, ReturnValues: "UPDATED_NEW"})
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := out["tat"].Int(); !ok || n != 42 {
		t.Fatalf("answer %v", out)
	}
	if got.target != "DynamoDB_20120810.UpdateItem" || got.ctype != "application/x-amz-json-1.0" || got.token != "TOK" ||
		!strings.HasPrefix(got.auth, "AWS4-HMAC-SHA256 Credential=AK/20260102/eu-west-1/dynamodb/aws4_request") {
		t.Fatalf("headers %+v", got)
	}
	if v := got.body["ExpressionAttributeValues"].(map[string]any)[":t"]; v.(map[string]any)["N"] != "42" || got.body["ConditionExpression"] != nil {
		t.Fatalf("body %v", got.body)
	}

	status, answer = 400, `{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"}`
	_, err = c.UpdateItem(context.Background(), &UpdateItemInput{TableName: "q"})
	var ae *APIError
	if !errors.Is(err, ErrConditionalCheckFailed) || !errors.As(err, &ae) || ae.Type != "ConditionalCheckFailedException" || ae.Status != 400 {
		t.Fatalf("conditional failure: %v", err)
	}
	status, answer = 400, `{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","Message":"Requested resource not found"}`
	if _, err = c.GetItem(context.Background(), "q", Item{"tenant": S("acme")}, true); errors.Is(err, ErrConditionalCheckFailed) ||
		!strings.Contains(err.Error(), "ResourceNotFoundException: Requested resource not found") {
		t.Fatalf("other error: %v", err)
	}
}

func TestValueInt(t *testing.T) {
	for i, c := range []struct {
		v    Value
		n    int64
		isOK bool
	}{{N(-7), -7, true}, {S("7"), 0, false}, {Value{}, 0, false}, {N(1 << 62), 1 << 62, true}} {
		if n, ok := c.v.Int(); n != c.n || ok != c.isOK {
			t.Errorf("case %d: %d %v", i, n, ok)
		}
	}
}
