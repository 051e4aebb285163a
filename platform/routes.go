package platform

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aiaas/aiaas/internal/yield"
	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/nn/dataset"
	"github.com/aiaas/aiaas/platform/audit"
	"github.com/aiaas/aiaas/platform/console"
	"github.com/aiaas/aiaas/platform/training"
)

// routes is the whole HTTP surface; docs/api.md documents each route.
func (s *Server) routes() {
	// Health and server metadata: no key, so probes and clients can
	// discover the server.
	s.route("GET /v2/health/live", public, "health.live", s.handleLive)
	s.route("GET /v2/health/ready", public, "health.ready", s.handleReady)
	s.route("GET /v2", public, "server.metadata", s.handleServerMetadata)
	s.route("GET /v2/{$}", public, "server.metadata", s.handleServerMetadata)

	// Open Inference Protocol v2 data plane.
	s.route("GET /v2/models/{model}", invoke, "model.metadata", s.handleModelMetadata)
	s.route("GET /v2/models/{model}/versions/{version}", invoke, "model.metadata", s.handleModelMetadata)
	s.route("GET /v2/models/{model}/ready", invoke, "model.ready", s.handleModelReady)
	s.route("GET /v2/models/{model}/versions/{version}/ready", invoke, "model.ready", s.handleModelReady)
	s.route("POST /v2/models/{model}/infer", invoke, "infer", s.handleInfer)
	s.route("POST /v2/models/{model}/versions/{version}/infer", invoke, "infer", s.handleInfer)

	// Triton's read-only model configuration and statistics extensions.
	// (Like Triton's, /v2/models/stats shadows the metadata of a model
	// named "stats"; its versions stay reachable.)
	s.route("GET /v2/models/{model}/config", invoke, "model.config", s.handleModelConfig)
	s.route("GET /v2/models/{model}/versions/{version}/config", invoke, "model.config", s.handleModelConfig)
	s.route("GET /v2/models/stats", invoke, "model.stats", s.handleModelStats)
	s.route("GET /v2/models/{model}/stats", invoke, "model.stats", s.handleModelStats)
	s.route("GET /v2/models/{model}/versions/{version}/stats", invoke, "model.stats", s.handleModelStats)

	// Text through endpoints: Triton's generate extension and OpenAI's
	// embeddings and completions (model names an endpoint).
	s.route("POST /v2/models/{model}/generate", invoke, "generate", s.handleGenerate)
	s.route("POST /v2/models/{model}/generate_stream", invoke, "generate", s.handleGenerateStream)
	s.route("POST /openai/v1/embeddings", invoke, "openai.embeddings", s.handleEmbeddings)
	s.route("POST /openai/v1/completions", invoke, "openai.completions", s.handleCompletions)

	// Endpoints: raw bytes → plugins → model → plugins → raw bytes.
	s.route("POST /v1/endpoints/{endpoint}/invoke", invoke, "endpoint.invoke", s.handleInvoke)
	s.route("PUT /v1/endpoints/{endpoint}", manage, "endpoint.put", s.handlePutEndpoint)
	s.route("GET /v1/endpoints", manage, "endpoint.list", s.handleListEndpoints)
	s.route("GET /v1/endpoints/{endpoint}", manage, "endpoint.get", s.handleGetEndpoint)
	s.route("DELETE /v1/endpoints/{endpoint}", manage, "endpoint.delete", s.handleDeleteEndpoint)

	// Control plane.
	s.route("POST /v1/tenants", admin, "tenant.create", s.handleCreateTenant)
	s.route("GET /v1/tenants", admin, "tenant.list", s.handleListTenants)
	s.route("POST /v1/keys", manage, "key.create", s.handleCreateKey)
	s.route("GET /v1/keys", manage, "key.list", s.handleListKeys)
	s.route("DELETE /v1/keys/{id}", manage, "key.revoke", s.handleRevokeKey)
	s.route("POST /v1/models/{model}/versions", manage, "model.publish", s.handlePublishModel)
	s.route("GET /v1/models", manage, "model.list", s.handleListModels)
	s.route("GET /v1/models/{model}", manage, "model.get", s.handleGetModel)
	s.route("PUT /v1/models/{model}/aliases/{alias}", manage, "model.alias", s.handleSetAlias)
	s.route("POST /v1/models/{model}/explain", invoke, "model.explain", s.handleExplain)
	s.route("PUT /v1/plugins/{plugin}", manage, "plugin.put", s.handlePutPlugin)
	s.route("GET /v1/plugins", manage, "plugin.list", s.handleListPlugins)
	s.route("GET /v1/plugins/{plugin}", manage, "plugin.get", s.handleGetPlugin)
	s.route("PUT /v1/datasets/{dataset}", manage, "dataset.put", s.handlePutDataset)
	// Staged uploads for what one request cannot carry (uploads.go); the
	// commit is audited as the publish it is.
	s.route("POST /v1/models/{model}/uploads", manage, "model.upload", s.handleCreateUpload)
	s.route("POST /v1/models/{model}/uploads/{id}/commit", manage, "model.publish", s.handleCommitUpload)
	s.route("DELETE /v1/models/{model}/uploads/{id}", manage, "model.upload.abort", s.handleAbortUpload)
	s.route("POST /v1/datasets/{dataset}/uploads", manage, "dataset.upload", s.handleCreateUpload)
	s.route("POST /v1/datasets/{dataset}/uploads/{id}/commit", manage, "dataset.put", s.handleCommitUpload)
	s.route("DELETE /v1/datasets/{dataset}/uploads/{id}", manage, "dataset.upload.abort", s.handleAbortUpload)
	s.route("PUT /v1/uploads/{id}/parts/{n}", public, "upload.part", s.handleUploadPart)
	s.route("GET /v1/datasets", manage, "dataset.list", s.handleListDatasets)
	s.route("POST /v1/training-jobs", manage, "job.submit", s.handleSubmitJob)
	s.route("GET /v1/training-jobs", manage, "job.list", s.handleListJobs)
	s.route("GET /v1/training-jobs/{id}", manage, "job.get", s.handleGetJob)
	s.route("POST /v1/evaluations", manage, "evaluation.submit", s.handleSubmitEvaluation)
	s.route("GET /v1/evaluations", manage, "evaluation.list", s.handleListEvaluations)
	s.route("GET /v1/evaluations/{id}", manage, "evaluation.get", s.handleGetEvaluation)
	s.route("POST /v1/evaluations/{id}/cancel", manage, "evaluation.cancel", s.handleCancelEvaluation)
	s.route("GET /v1/audit", manage, actionAuditRead, s.handleAudit)
	s.route("GET /v1/audit/verify", manage, actionAuditVerify, s.handleAuditVerify)
	if s.noProcMet {
		gone := func(w http.ResponseWriter, r *http.Request) error {
			return notFound("this deployment runs many processes and one process's counters would mislead: its metrics are CloudWatch embedded metrics (namespace aiaas, dimensions function and route); see infra/README.md")
		}
		s.route("GET /v1/metrics", public, "metrics.tenant", gone)
		s.route("GET /metrics", public, "metrics", gone)
		s.route("GET /v1/models/{model}/aliases/{alias}/canary", public, "model.canary", gone)
	} else {
		// Canary analysis reads the same per-process counters.
		s.route("GET /v1/models/{model}/aliases/{alias}/canary", manage, "model.canary", s.handleCanary)
		s.route("GET /v1/metrics", invoke, "metrics.tenant", func(w http.ResponseWriter, r *http.Request) error {
			tm, err := s.metrics.Tenant(principalOf(r.Context()).Tenant)
			if err != nil {
				return err
			}
			writeJSON(w, http.StatusOK, tm)
			return nil
		})
		s.route("GET /metrics", admin, "metrics", func(w http.ResponseWriter, r *http.Request) error {
			s.metrics.SetModelCacheBytes(s.models.bytes())
			s.metrics.Handler().ServeHTTP(w, r)
			return nil
		})
	}

	// The web console: static files, no key (the page asks for one).
	ui := console.Handler()
	s.mux.Handle("GET /console/", ui)
	s.mux.Handle("GET /console", ui)
	s.mux.Handle("GET /{$}", ui)

	// Everything else: a JSON 405 with Allow when the path exists for
	// other methods (RFC 9110; clients such as Triton's tell a wrong
	// method from a missing model by it), else a JSON 404 — rather than
	// the mux's text ones.
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allow := s.allowed(r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, r, httpErr(http.StatusMethodNotAllowed, "%s is not allowed on %s; allowed: %s", r.Method, truncate(r.URL.Path, 100), strings.Join(allow, ", ")))
			return
		}
		writeError(w, r, notFound("no route %s %s; see docs/api.md", r.Method, truncate(r.URL.Path, 100)))
	})
}

// allowed lists the methods with a route for r's path.
func (s *Server) allowed(r *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host, Header: http.Header{}}
		if _, pattern := s.mux.Handler(probe); pattern != "/" && pattern != "" {
			out = append(out, m)
		}
	}
	return out
}

func (s *Server) handleLive(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]bool{"live": true})
	return nil
}

// handleReady answers 200 when the server can take requests: started, and
// the store answering. The spec's ready object is {"live": bool}; "ready"
// is added for readers of the KServe docs.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) error {
	ready := s.ready.Load()
	if ready {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if _, err := s.store.SystemList(ctx, "health."); err != nil {
			ready = false
		}
	}
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]bool{"live": true, "ready": ready})
	return nil
}

// Extensions the server supports, listed in server metadata.
var extensions = []string{"binary_tensor_data", "model_repository_versions", "generate", "aiaas_endpoints", "aiaas_explain", "aiaas_openai", "classification", "model_configuration", "statistics"}

func (s *Server) handleServerMetadata(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"name": "aiaas", "version": Version, "extensions": extensions})
	return nil
}

// --- datasets -----------------------------------------------------------

func (s *Server) handlePutDataset(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	name := r.PathValue("dataset")
	if err := checkName("dataset", name); err != nil {
		return err
	}
	if name == training.MNIST {
		return httpErr(http.StatusBadRequest, "%q is reserved for the built-in MNIST data", name)
	}
	body, err := readAll(r)
	if err != nil {
		return err
	}
	res, err := s.putDataset(r.Context(), p.Tenant, name, r.URL.Query().Get("task"), body)
	if err != nil {
		return err
	}
	setAuditObject(r, "datasets/"+name)
	writeJSON(w, http.StatusCreated, res)
	return nil
}

// putDataset checks a dataset (task "regression" checks a CSV whose last
// column is a number, for evaluations with task regression; otherwise it
// is a class) and stores it.
func (s *Server) putDataset(ctx context.Context, tenant, name, task string, body []byte) (map[string]any, error) {
	if task != "" && task != "classification" && task != "regression" {
		return nil, httpErr(http.StatusBadRequest, "task must be classification or regression, got %q", truncate(task, 32))
	}
	// Checked, not parsed into arrays: the upload is stored as it came,
	// and a 1 MiB gzip that inflates to 64 Mi values would otherwise
	// allocate 256 MiB of them (two at once took 1.3 GiB of RSS, and
	// stalled every tenant's requests while they grew).
	set, err := training.CheckDataset(body, task == "regression")
	if errors.Is(err, dataset.ErrTooLarge) {
		return nil, wrapStatus(http.StatusRequestEntityTooLarge, err)
	}
	if err != nil {
		return nil, wrapStatus(http.StatusBadRequest, err)
	}
	sum, err := s.store.PutBlob(ctx, tenant, "datasets", name, bytes.NewReader(body), int64(len(body)))
	if err != nil {
		return nil, err
	}
	res := map[string]any{"name": name, "sha256": sum, "size": len(body),
		"rows": set.N, "features": set.Features, "classes": set.Classes}
	if set.Shape != nil {
		res["shape"], res["class_names"] = set.Shape, set.ClassNames
	}
	return res, nil
}

func (s *Server) handleListDatasets(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	infos, err := s.store.ListBlobs(r.Context(), p.Tenant, "datasets")
	if err != nil {
		return err
	}
	if infos == nil {
		infos = []BlobInfo{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"datasets": infos})
	return nil
}

// --- audit --------------------------------------------------------------

func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	q := audit.Query{}
	v := r.URL.Query()
	if a := v.Get("after"); a != "" {
		n, err := strconv.ParseUint(a, 10, 64)
		if err != nil {
			return httpErr(http.StatusBadRequest, "after must be a sequence number")
		}
		q.AfterSeq = n
	}
	q.Cursor = v.Get("cursor")
	if q.AfterSeq > 0 && q.Cursor != "" {
		return httpErr(http.StatusBadRequest, "give after (the single chain's sequence number) or cursor (every chain, merged by time), not both")
	}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if t := v.Get(f.name); t != "" {
			tt, err := time.Parse(time.RFC3339, t)
			if err != nil {
				return httpErr(http.StatusBadRequest, "%s must be an RFC 3339 time like 2026-11-29T10:00:00Z", f.name)
			}
			*f.dst = tt
		}
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return httpErr(http.StatusBadRequest, "limit must be between 1 and 1000")
		}
		q.Limit = n
	}
	// The records of the requests just before this one may be queued;
	// write them so the reader sees its own actions (this tenant's only:
	// reading one's log must not write everyone's).
	_ = s.audit.FlushTenantIf(r.Context(), p.Tenant, notLogRead)
	page, err := s.audit.ReadPage(r.Context(), p.Tenant, q)
	if err != nil {
		return auditErr(err)
	}
	writeAuditPage(w, page)
	return nil
}

// writeAuditPage answers a page of the log: {"next_after", "next_cursor"
// (once the log has several chains), "records"}. next_after pages a
// server's single chain; next_cursor pages every chain (Lambda
// environments) merged. The records are written in the log's own form,
// without reflection, giving up the processor between records: a page of
// a thousand records is milliseconds of encoding.
func writeAuditPage(w http.ResponseWriter, page *audit.Page) {
	// A page is built whole for its length, in a buffer used again: a
	// tenant paging in a loop allocated more for these than for anything
	// else on the path.
	bp := pageBufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxPooledPage {
			pageBufs.Put(bp)
		}
	}()
	b := slices.Grow((*bp)[:0], 64+512*len(page.Records)) // a record is 400–500 bytes with its two hashes
	b = append(b, `{"next_after":`...)
	b = strconv.AppendUint(b, page.NextAfter, 10)
	if page.NextCursor != "" {
		b = append(b, `,"next_cursor":`...)
		b = strconv.AppendQuote(b, page.NextCursor) // digits, dots and a chain name: nothing JSON escapes differently
	}
	b = append(b, `,"records":[`...)
	var y yield.Point
	for i := range page.Records {
		if i > 0 {
			b = append(b, ',')
		}
		b = audit.AppendJSON(b, &page.Records[i])
		y.Maybe()
	}
	b = append(b, "]}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	w.Write(b)
	*bp = b
}

// pageBufs holds the buffers of audit pages; one over maxPooledPage (a
// page of a thousand long records) is left to the collector.
var pageBufs = sync.Pool{New: func() any { return new([]byte) }}

const maxPooledPage = 1 << 20

func (s *Server) handleAuditVerify(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	_ = s.audit.FlushTenantIf(r.Context(), p.Tenant, notLogRead)
	res, err := s.audit.Verify(r.Context(), p.Tenant)
	if err != nil {
		return auditErr(err)
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// notLogRead is true of every audit record but those of reads of the log
// itself, which reach it with the periodic flush (within a second; on
// Lambda at the end of the invocation) rather than each forcing a write
// of the log by the next read.
func notLogRead(r *audit.Record) bool {
	return r.Action != actionAuditRead && r.Action != actionAuditVerify
}

const (
	actionAuditRead   = "audit.read"
	actionAuditVerify = "audit.verify"
)

// auditErr makes a read over the audit log's bounds a 422 with the reason,
// and a bad cursor a 400.
func auditErr(err error) error {
	switch {
	case errors.Is(err, audit.ErrTooMuch):
		return httpErr(http.StatusUnprocessableEntity, "%v", err)
	case errors.Is(err, audit.ErrBadCursor):
		return httpErr(http.StatusBadRequest, "%v", err)
	}
	return err
}

func auditRecord(actor, action, object string, status int) audit.Record {
	return audit.Record{Time: time.Now(), Actor: actor, Action: action, Object: object, Status: status}
}

// auditStore adapts the platform Store to the audit log's needs.
type auditStore struct{ st RecordStore }

func (a auditStore) Create(ctx context.Context, tenant, name string, data []byte) error {
	err := a.st.Create(ctx, tenant, "audit", name, data)
	if err != nil && errors.Is(err, modelstore.ErrExists) {
		return errors.Join(audit.ErrConflict, err)
	}
	return err
}

func (a auditStore) Put(ctx context.Context, tenant, name string, data []byte) error {
	return a.st.Put(ctx, tenant, "audit", name, data)
}

func (a auditStore) Read(ctx context.Context, tenant, name string) ([]byte, error) {
	b, err := a.st.Get(ctx, tenant, "audit", name)
	if err != nil && errors.Is(err, modelstore.ErrNotFound) {
		return nil, errors.Join(audit.ErrMissing, err)
	}
	return b, err
}

func (a auditStore) List(ctx context.Context, tenant, prefix, after string, limit int) ([]string, error) {
	return a.st.List(ctx, tenant, "audit", prefix, after, limit)
}
