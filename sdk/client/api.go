package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"
)

// Live reports GET /v2/health/live. Goroutine-safe.
func (c *Client) Live(ctx context.Context) (bool, error) {
	var v struct {
		Live bool `json:"live"`
	}
	err := c.doJSON(ctx, &call{method: http.MethodGet, path: "/v2/health/live"}, &v)
	return v.Live, err
}

// Ready reports GET /v2/health/ready. Goroutine-safe.
func (c *Client) Ready(ctx context.Context) (bool, error) {
	var v struct {
		Ready bool `json:"ready"`
	}
	err := c.doJSON(ctx, &call{method: http.MethodGet, path: "/v2/health/ready"}, &v)
	return v.Ready, err
}

// ServerMetadata returns GET /v2. Goroutine-safe.
func (c *Client) ServerMetadata(ctx context.Context) (*ServerMetadata, error) {
	var v ServerMetadata
	if err := c.doJSON(ctx, &call{method: http.MethodGet, path: "/v2"}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// modelPath is /v2/models/{model}[/versions/{version}].
func modelPath(model, version string) (string, error) {
	m, err := seg("model", model)
	if err != nil {
		return "", err
	}
	p := "/v2/models/" + m
	if version != "" {
		v, err := seg("version", version)
		if err != nil {
			return "", err
		}
		p += "/versions/" + v
	}
	return p, nil
}

// ModelMetadata returns the OIP metadata of a model; version "" means the
// latest. Goroutine-safe.
func (c *Client) ModelMetadata(ctx context.Context, model, version string) (*ModelMetadata, error) {
	p, err := modelPath(model, version)
	if err != nil {
		return nil, err
	}
	var v ModelMetadata
	if err := c.doJSON(ctx, &call{method: http.MethodGet, path: p}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// ModelReady reports whether a model version can serve. Goroutine-safe.
func (c *Client) ModelReady(ctx context.Context, model, version string) (bool, error) {
	p, err := modelPath(model, version)
	if err != nil {
		return false, err
	}
	var v struct {
		Ready bool `json:"ready"`
	}
	err = c.doJSON(ctx, &call{method: http.MethodGet, path: p + "/ready"}, &v)
	return v.Ready, err
}

// PutEndpoint creates or replaces an endpoint; created reports a 201.
// Goroutine-safe.
func (c *Client) PutEndpoint(ctx context.Context, name string, e *Endpoint) (ep *Endpoint, created bool, err error) {
	n, err := seg("endpoint", name)
	if err != nil {
		return nil, false, err
	}
	if e == nil || e.Model == "" {
		return nil, false, fmt.Errorf("%w: endpoint needs a model", ErrInvalidArgument)
	}
	// The endpoint as given, without what the server sets (name from the
	// path, timestamps): every field the type gains is sent too.
	body := *e
	body.Name, body.Created, body.Updated = "", time.Time{}, time.Time{}
	b, err := jsonBody(body)
	if err != nil {
		return nil, false, err
	}
	k := &call{method: http.MethodPut, path: "/v1/endpoints/" + n, body: b}
	resp, err := c.do(ctx, k)
	if err != nil {
		return nil, false, err
	}
	created = resp.StatusCode == http.StatusCreated
	var out Endpoint
	if err := c.decode(resp, k, &out); err != nil {
		return nil, false, err
	}
	return &out, created, nil
}

// Endpoints lists the tenant's endpoints. Goroutine-safe.
func (c *Client) Endpoints(ctx context.Context) ([]Endpoint, error) {
	var v struct {
		Endpoints []Endpoint `json:"endpoints"`
	}
	err := c.doJSON(ctx, &call{method: http.MethodGet, path: "/v1/endpoints"}, &v)
	return v.Endpoints, err
}

// Endpoint returns one endpoint. Goroutine-safe.
func (c *Client) Endpoint(ctx context.Context, name string) (*Endpoint, error) {
	n, err := seg("endpoint", name)
	if err != nil {
		return nil, err
	}
	var v Endpoint
	if err := c.doJSON(ctx, &call{method: http.MethodGet, path: "/v1/endpoints/" + n}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// DeleteEndpoint deletes an endpoint. Goroutine-safe.
func (c *Client) DeleteEndpoint(ctx context.Context, name string) error {
	n, err := seg("endpoint", name)
	if err != nil {
		return err
	}
	return c.doJSON(ctx, &call{method: http.MethodDelete, path: "/v1/endpoints/" + n}, nil)
}

// Invoke sends body (streamed, with its content type) to an endpoint and
// returns the response bytes and their content type. If body is an
// io.Seeker the call is retried on 429/503; size is taken from a
// reader with a Len method or an io.Seeker (*os.File), else the body is
// sent chunked.
// Goroutine-safe.
func (c *Client) Invoke(ctx context.Context, endpoint, contentType string, body io.Reader) (respBody []byte, respContentType string, err error) {
	n, err := seg("endpoint", endpoint)
	if err != nil {
		return nil, "", err
	}
	if body == nil {
		return nil, "", fmt.Errorf("%w: nil body", ErrInvalidArgument)
	}
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	k := &call{method: http.MethodPost, path: "/v1/endpoints/" + n + "/invoke", safe: true,
		body: streamBody(body, sizeOf(body), contentType), header: http.Header{"Accept": {"*/*"}}}
	resp, err := c.do(ctx, k)
	if err != nil {
		return nil, "", err
	}
	ct := resp.Header.Get("Content-Type")
	b, err := c.readAll(resp)
	if err != nil {
		return nil, "", fmt.Errorf("invoke %s: %w", endpoint, err)
	}
	return b, ct, nil
}

// sizeOf finds the remaining length of the readers that know it; -1
// otherwise (chunked encoding).
func sizeOf(r io.Reader) int64 {
	switch v := r.(type) {
	case interface{ Len() int }:
		return int64(v.Len())
	case io.Seeker:
		cur, err := v.Seek(0, io.SeekCurrent)
		if err != nil {
			return -1
		}
		end, err := v.Seek(0, io.SeekEnd)
		if err != nil {
			return -1
		}
		if _, err := v.Seek(cur, io.SeekStart); err != nil {
			return -1
		}
		return end - cur
	}
	return -1
}

// CreateTenant creates a tenant (admin key) and returns it with its first
// manage key, shown only this once. Not retried. Goroutine-safe.
func (c *Client) CreateTenant(ctx context.Context, name string) (*Tenant, error) {
	if name == "" {
		return nil, fmt.Errorf("%w: empty tenant name", ErrInvalidArgument)
	}
	b, err := jsonBody(map[string]string{"name": name})
	if err != nil {
		return nil, err
	}
	var v Tenant
	if err := c.doJSON(ctx, &call{method: http.MethodPost, path: "/v1/tenants", body: b}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Tenants lists the tenants (admin key). Goroutine-safe.
func (c *Client) Tenants(ctx context.Context) ([]Tenant, error) {
	var v struct {
		Tenants []Tenant `json:"tenants"`
	}
	err := c.doJSON(ctx, &call{method: http.MethodGet, path: "/v1/tenants"}, &v)
	return v.Tenants, err
}

// CreateKey makes an API key of scope ScopeInvoke or ScopeManage; its
// APIKey is shown only this once. Goroutine-safe.
func (c *Client) CreateKey(ctx context.Context, name, scope string) (*Key, error) {
	if name == "" {
		return nil, fmt.Errorf("%w: empty key name", ErrInvalidArgument)
	}
	if scope != ScopeInvoke && scope != ScopeManage {
		return nil, fmt.Errorf("%w: scope %q: want %q or %q", ErrInvalidArgument, scope, ScopeInvoke, ScopeManage)
	}
	b, err := jsonBody(map[string]string{"name": name, "scope": scope})
	if err != nil {
		return nil, err
	}
	var v Key
	if err := c.doJSON(ctx, &call{method: http.MethodPost, path: "/v1/keys", body: b}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Keys lists the tenant's keys, revoked ones included, following the
// server's pages. Goroutine-safe.
func (c *Client) Keys(ctx context.Context) ([]Key, error) {
	var all []Key
	after := ""
	for {
		var v struct {
			Keys      []Key  `json:"keys"`
			NextAfter string `json:"next_after"`
		}
		q := url.Values{"limit": {"1000"}}
		if after != "" {
			q.Set("after", after)
		}
		if err := c.doJSON(ctx, &call{method: http.MethodGet, path: "/v1/keys", query: q}, &v); err != nil {
			return all, err
		}
		all = append(all, v.Keys...)
		if v.NextAfter == "" || v.NextAfter == after {
			return all, nil
		}
		after = v.NextAfter
	}
}

// RevokeKey revokes a key by id. Goroutine-safe.
func (c *Client) RevokeKey(ctx context.Context, id string) error {
	n, err := seg("key", id)
	if err != nil {
		return err
	}
	return c.doJSON(ctx, &call{method: http.MethodDelete, path: "/v1/keys/" + n}, nil)
}

// countingReader reports the bytes read so far.
type countingReader struct {
	r        io.Reader
	n        atomic.Int64
	progress func(int64)
}

func (cr *countingReader) Read(p []byte) (int, error) {
	n, err := cr.r.Read(p)
	if n > 0 {
		sent := cr.n.Add(int64(n))
		if cr.progress != nil {
			cr.progress(sent)
		}
	}
	return n, err
}

// upload streams r (exactly size bytes) to path.
func (c *Client) upload(ctx context.Context, method, path, ct string, r io.Reader, size int64, progress func(int64), out any) (*http.Response, error) {
	if r == nil || size < 0 {
		return nil, fmt.Errorf("%w: upload needs a reader and its size", ErrInvalidArgument)
	}
	k := &call{method: method, path: path, body: streamBody(r, size, ct)}
	if progress != nil {
		k.wrap = func(r io.Reader) io.Reader { return &countingReader{r: r, progress: progress} }
	}
	resp, err := c.do(ctx, k)
	if err != nil {
		return nil, err
	}
	return resp, c.decode(resp, k, out)
}

func (c *Client) decode(resp *http.Response, k *call, out any) error {
	b, err := c.readAll(resp)
	if err != nil {
		return fmt.Errorf("%s %s: %w", k.method, k.path, err)
	}
	if err := jsonUnmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: %w: %v", k.method, k.path, ErrInvalidResponse, err)
	}
	return nil
}

// PushModel uploads a safetensors artifact of size bytes as the model's
// next version, streaming r; progress (may be nil) gets the bytes sent so
// far. It is not retried (a retry could publish two versions) unless the
// server refused it with 429/503 and r is an io.Seeker. Goroutine-safe.
func (c *Client) PushModel(ctx context.Context, name string, r io.Reader, size int64, progress func(sent int64)) (*PushedModel, error) {
	n, err := seg("model", name)
	if err != nil {
		return nil, err
	}
	var v PushedModel
	if _, err := c.upload(ctx, http.MethodPost, "/v1/models/"+n+"/versions", "application/octet-stream", r, size, progress, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Models lists the tenant's models. Goroutine-safe.
func (c *Client) Models(ctx context.Context) ([]ModelSummary, error) {
	var v struct {
		Models []ModelSummary `json:"models"`
	}
	err := c.doJSON(ctx, &call{method: http.MethodGet, path: "/v1/models"}, &v)
	return v.Models, err
}

// Model returns a model's versions and aliases. Goroutine-safe.
func (c *Client) Model(ctx context.Context, name string) (*Model, error) {
	n, err := seg("model", name)
	if err != nil {
		return nil, err
	}
	var v Model
	if err := c.doJSON(ctx, &call{method: http.MethodGet, path: "/v1/models/" + n}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// SetAlias points alias at a version (and optionally a canary).
// Goroutine-safe.
func (c *Client) SetAlias(ctx context.Context, model, alias string, a Alias) (*AliasResult, error) {
	m, err := seg("model", model)
	if err != nil {
		return nil, err
	}
	al, err := seg("alias", alias)
	if err != nil {
		return nil, err
	}
	if a.Version < 1 || a.CanaryWeight < 0 || a.CanaryWeight > 100 || (a.CanaryWeight > 0 && a.CanaryVersion < 1) {
		return nil, fmt.Errorf("%w: alias wants version >= 1 and canary weight 0..100 with a canary version", ErrInvalidArgument)
	}
	b, err := jsonBody(a)
	if err != nil {
		return nil, err
	}
	var v AliasResult
	if err := c.doJSON(ctx, &call{method: http.MethodPut, path: "/v1/models/" + m + "/aliases/" + al, body: b}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Explain returns per-input attributions for a prediction. Goroutine-safe.
func (c *Client) Explain(ctx context.Context, model string, req *ExplainRequest) (*Explanation, error) {
	m, err := seg("model", model)
	if err != nil {
		return nil, err
	}
	if req == nil || len(req.Input) == 0 {
		return nil, fmt.Errorf("%w: explain needs an input", ErrInvalidArgument)
	}
	b, err := jsonBody(req)
	if err != nil {
		return nil, err
	}
	var v Explanation
	if err := c.doJSON(ctx, &call{method: http.MethodPost, path: "/v1/models/" + m + "/explain", body: b, safe: true}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// PushPlugin uploads a WebAssembly module as plugin name, streaming r. An
// invalid module fails with a 400 *APIError carrying the server's reason.
// Goroutine-safe.
func (c *Client) PushPlugin(ctx context.Context, name string, r io.Reader, size int64, progress func(sent int64)) (*Plugin, error) {
	n, err := seg("plugin", name)
	if err != nil {
		return nil, err
	}
	var v Plugin
	if _, err := c.upload(ctx, http.MethodPut, "/v1/plugins/"+n, "application/wasm", r, size, progress, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Plugins lists the tenant's plugins. Goroutine-safe.
func (c *Client) Plugins(ctx context.Context) ([]Plugin, error) {
	var v struct {
		Plugins []Plugin `json:"plugins"`
	}
	err := c.doJSON(ctx, &call{method: http.MethodGet, path: "/v1/plugins"}, &v)
	return v.Plugins, err
}

// Plugin returns one plugin. Goroutine-safe.
func (c *Client) Plugin(ctx context.Context, name string) (*Plugin, error) {
	n, err := seg("plugin", name)
	if err != nil {
		return nil, err
	}
	var v Plugin
	if err := c.doJSON(ctx, &call{method: http.MethodGet, path: "/v1/plugins/" + n}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// PutDataset uploads a CSV or IDX training set, streaming r.
// Goroutine-safe.
func (c *Client) PutDataset(ctx context.Context, name string, r io.Reader, size int64, progress func(sent int64)) (*Dataset, error) {
	n, err := seg("dataset", name)
	if err != nil {
		return nil, err
	}
	var v Dataset
	if _, err := c.upload(ctx, http.MethodPut, "/v1/datasets/"+n, "application/octet-stream", r, size, progress, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// SubmitTrainingJob queues a training job. Not retried on transport
// errors (it could queue two jobs). Goroutine-safe.
func (c *Client) SubmitTrainingJob(ctx context.Context, req *TrainingRequest) (*TrainingJob, error) {
	if req == nil || req.Model == "" || req.Dataset == "" {
		return nil, fmt.Errorf("%w: training job needs a model and a dataset", ErrInvalidArgument)
	}
	b, err := jsonBody(req)
	if err != nil {
		return nil, err
	}
	var v TrainingJob
	if err := c.doJSON(ctx, &call{method: http.MethodPost, path: "/v1/training-jobs", body: b}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// TrainingJob returns a job's state. Goroutine-safe.
func (c *Client) TrainingJob(ctx context.Context, id string) (*TrainingJob, error) {
	n, err := seg("job", id)
	if err != nil {
		return nil, err
	}
	var v TrainingJob
	if err := c.doJSON(ctx, &call{method: http.MethodGet, path: "/v1/training-jobs/" + n}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// TrainingJobs lists the tenant's jobs. Goroutine-safe.
func (c *Client) TrainingJobs(ctx context.Context) ([]TrainingJob, error) {
	var v struct {
		Jobs []TrainingJob `json:"jobs"`
	}
	err := c.doJSON(ctx, &call{method: http.MethodGet, path: "/v1/training-jobs"}, &v)
	return v.Jobs, err
}

// WaitTrainingJob polls a job every poll (1s if <= 0) until it succeeds,
// fails or is canceled, or ctx ends, calling onUpdate (may be nil) with
// every state it sees. It returns the final state; a failed or canceled job
// is not an error (check Status). Goroutine-safe.
func (c *Client) WaitTrainingJob(ctx context.Context, id string, poll time.Duration, onUpdate func(*TrainingJob)) (*TrainingJob, error) {
	if poll <= 0 {
		poll = time.Second
	}
	for {
		j, err := c.TrainingJob(ctx, id)
		if err != nil {
			return nil, err
		}
		if onUpdate != nil {
			onUpdate(j)
		}
		if j.Done() {
			return j, nil
		}
		if err := sleepCtx(ctx, poll); err != nil {
			return j, err
		}
	}
}

// Audit reads one page of the tenant's audit log. Goroutine-safe.
func (c *Client) Audit(ctx context.Context, q *AuditQuery) (*AuditPage, error) {
	v := url.Values{}
	if q != nil {
		if q.After > 0 {
			v.Set("after", strconv.FormatUint(q.After, 10))
		}
		if q.Cursor != "" {
			v.Set("cursor", q.Cursor)
		}
		if !q.Since.IsZero() {
			v.Set("since", q.Since.UTC().Format(time.RFC3339))
		}
		if !q.Until.IsZero() {
			v.Set("until", q.Until.UTC().Format(time.RFC3339))
		}
		if q.Limit > 0 {
			v.Set("limit", strconv.Itoa(q.Limit))
		}
	}
	var p AuditPage
	if err := c.doJSON(ctx, &call{method: http.MethodGet, path: "/v1/audit", query: v}, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// VerifyAudit asks the server to check the audit log's hash chain.
// Goroutine-safe.
func (c *Client) VerifyAudit(ctx context.Context) (*AuditVerification, error) {
	var v AuditVerification
	if err := c.doJSON(ctx, &call{method: http.MethodGet, path: "/v1/audit/verify"}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Metrics returns the Prometheus text of GET /metrics (admin key).
// Goroutine-safe.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	k := &call{method: http.MethodGet, path: "/metrics", header: http.Header{"Accept": {"text/plain"}}}
	resp, err := c.do(ctx, k)
	if err != nil {
		return "", err
	}
	b, err := c.readAll(resp)
	return string(b), err
}
