package platform

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/aiaas/aiaas/internal/safetensors"
	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/nn/graph"
	"github.com/aiaas/aiaas/nn/onnx"
	"github.com/aiaas/aiaas/platform/internal/registry"
)

// versionView is one version in GET /v1/models/{model}: the store's facts
// (never its internal keys) and what was recorded at publish.
type versionView struct {
	Version int       `json:"version"`
	SHA256  string    `json:"sha256"`
	Size    int64     `json:"size"`
	Created time.Time `json:"created"`
	registry.Meta
}

// validName reports whether s is a resource name: 1-128 of A-Z a-z 0-9 .
// _ -, starting with a letter or digit (names are checked on every request,
// so by hand rather than by regexp; name_internal_test.go holds the two
// equal).
func validName(s string) bool {
	if len(s) == 0 || len(s) > 128 || !alnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !alnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func alnum(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' }

// checkName validates a path name before it reaches the store (which checks
// again): names are short, plain ASCII, and never "." or "..".
func checkName(kind, name string) error {
	if !validName(name) || name == "." || name == ".." {
		return httpErr(http.StatusBadRequest, "invalid %s name %q: use 1-128 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit", kind, truncate(name, 64))
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Publish validates a model artifact (safetensors, dense or graph: what
// nn and nn/graph write), measures its latency and stores it as the next
// version of a tenant's (by id) model. An artifact that is not a model is
// an *Error with status 400 that wraps the decoder's error.
func (s *Server) Publish(ctx context.Context, tenant, model string, artifact []byte) (VersionInfo, error) {
	if err := checkName("model", model); err != nil {
		return VersionInfo{}, err
	}
	info, _, err := s.publish(ctx, tenant, model, artifact)
	return info, err
}

// publish validates an artifact, measures its latency and stores it as the
// model's next version.
func (s *Server) publish(ctx context.Context, tenant, name string, body []byte) (VersionInfo, registry.Meta, error) {
	vm, err := registry.Describe(body)
	if err != nil {
		// Publish promises an *Error: the status is the table's (400).
		return VersionInfo{}, registry.Meta{}, wrapStatus(statusOf(err), err)
	}
	mb, err := registry.MarshalMeta(&vm)
	if err != nil {
		return VersionInfo{}, registry.Meta{}, err
	}
	info, err := s.store.PublishModel(ctx, tenant, name, bytes.NewReader(body), int64(len(body)), mb)
	if err != nil {
		return VersionInfo{}, registry.Meta{}, err
	}
	s.refs.Forget(tenant, name)
	return info, vm, nil
}

// isONNX tells an ONNX upload from a safetensors one: by Content-Type, or
// by the bytes (safetensors' JSON header starts at offset 8 with '{').
func isONNX(contentType string, b []byte) bool {
	if strings.HasPrefix(contentType, "application/onnx") {
		return true
	}
	return len(b) > 8 && b[8] != '{'
}

// fromONNX converts an ONNX model to our artifact (a dense one for a chain
// of dense layers, a graph otherwise), so every version in the store has
// one format and serving never parses protobuf.
func fromONNX(b []byte) ([]byte, error) {
	art, err := onnx.Convert(b, nil)
	if err != nil {
		return nil, wrapStatus(http.StatusBadRequest, err)
	}
	return art, nil
}

// readUpload reads a model upload, checking it as it arrives so that a
// body that cannot be a model is refused after its first bytes rather than
// held whole. A safetensors artifact's header is read and checked first;
// it says how many bytes of weights follow (a header declaring more than
// AIAAS_MAX_ARTIFACT_BYTES is refused before they arrive, and anything
// after them is an error). A dense artifact larger than describeWhole is
// returned as a stream, to be checked on its way to the store
// ([Server.publishStreamed]) rather than held; a smaller one, or a graph,
// is read whole. An ONNX file (by content type, or when byte 9 is not the
// '{' of a safetensors header) must start with a field of an ONNX
// ModelProto and is then read whole: protobuf cannot be checked in
// pieces; nn/onnx bounds its parse.
func (s *Server) readUpload(r *http.Request) ([]byte, *streamedArtifact, error) {
	br := bufio.NewReaderSize(r.Body, 64<<10)
	peek, err := br.Peek(9)
	if len(peek) == 0 {
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, nil, bodyErr(err)
		}
		return nil, nil, httpErr(http.StatusBadRequest, "empty body: send the safetensors model artifact or an ONNX model")
	}
	if isONNX(r.Header.Get("Content-Type"), peek) {
		if !onnxStart(peek[0]) {
			return nil, nil, httpErr(http.StatusBadRequest, "neither a safetensors model artifact (its 9th byte is not '{') nor an ONNX model (no ModelProto field at byte 0)")
		}
		body, err := io.ReadAll(br)
		if err != nil {
			return nil, nil, bodyErr(err)
		}
		return body, nil, nil
	}
	prefix, dataLen, err := safetensors.ReadHeader(br, &safetensors.Limits{MaxHeaderBytes: 8 << 20, MaxRank: 8})
	if err != nil {
		if errors.Is(err, safetensors.ErrFormat) {
			return nil, nil, httpErr(http.StatusBadRequest, "not a model artifact: %v", err)
		}
		return nil, nil, bodyErr(err)
	}
	total := int64(len(prefix)) + dataLen
	if total > s.cfg.MaxArtifactBytes {
		return nil, nil, httpErr(http.StatusRequestEntityTooLarge, "the artifact's header declares %d bytes, the limit is %d (AIAAS_MAX_ARTIFACT_BYTES)", total, s.cfg.MaxArtifactBytes)
	}
	trailing := func() error {
		if n, _ := br.Read(make([]byte, 1)); n > 0 {
			return httpErr(http.StatusBadRequest, "bytes after the artifact's last tensor")
		}
		return nil
	}
	if total > describeWhole {
		f, err := safetensors.DecodeHeader(prefix, dataLen, &safetensors.Limits{MaxHeaderBytes: 8 << 20, MaxRank: 8, MaxTensors: 4*nn.MaxLayers + 1})
		if err != nil {
			return nil, nil, httpErr(http.StatusBadRequest, "not a model artifact: %v", err)
		}
		if !graph.IsArtifact(f.Metadata) {
			if st, ok := r.Body.(interface{ stream() }); ok {
				st.stream() // held: the header and what is in flight
			}
			return nil, &streamedArtifact{header: f, prefix: prefix, rest: br, size: total,
				end: func([]byte) error { return trailing() },
				why: fmt.Sprintf("an artifact of %d bytes: checked from its header and streamed weights; latency is measured at publish up to %d bytes", total, describeWhole)}, nil
		}
	}
	body := make([]byte, total)
	copy(body, prefix)
	if _, err := io.ReadFull(br, body[len(prefix):]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, nil, httpErr(http.StatusBadRequest, "the artifact is cut short: its header declares %d bytes of weights", dataLen)
		}
		return nil, nil, bodyErr(err)
	}
	if err := trailing(); err != nil {
		return nil, nil, err
	}
	return body, nil, nil
}

// onnxStart reports whether b can start an ONNX ModelProto: the tag of one
// of its fields (ir_version, producer_name, producer_version, domain,
// model_version, doc_string, graph, opset_import, metadata_props, or the
// first byte of a two-byte tag: training_info, functions).
func onnxStart(b byte) bool {
	switch b {
	case 0x08, 0x12, 0x1a, 0x22, 0x28, 0x32, 0x3a, 0x42, 0x72, 0xa2, 0xca:
		return true
	}
	return false
}

func (s *Server) handlePublishModel(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	name := r.PathValue("model")
	if err := checkName("model", name); err != nil {
		return err
	}
	body, streamed, err := s.readUpload(r)
	if err != nil {
		return err
	}
	var info VersionInfo
	var vm registry.Meta
	if streamed != nil {
		info, vm, err = s.publishStreamed(r.Context(), p.Tenant, name, *streamed)
	} else {
		if isONNX(r.Header.Get("Content-Type"), body) {
			if body, err = fromONNX(body); err != nil {
				return err
			}
		}
		info, vm, err = s.publish(r.Context(), p.Tenant, name, body)
	}
	if err != nil {
		return err
	}
	setAuditObject(r, fmt.Sprintf("models/%s/versions/%d", name, info.Version))
	writeJSON(w, http.StatusCreated, map[string]any{
		"model": name, "version": info.Version, "sha256": info.SHA256, "size": info.Size,
		"inputs": vm.Inputs, "outputs": vm.Outputs,
	})
	return nil
}

func (s *Server) handleListModels(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	names, err := s.store.Models(r.Context(), p.Tenant)
	if err != nil {
		return err
	}
	type entry struct {
		Name     string           `json:"name"`
		Latest   int              `json:"latest"`
		Versions int              `json:"versions"`
		Aliases  map[string]Alias `json:"aliases"`
	}
	out := []entry{}
	for _, n := range names {
		refs, err := s.refs.Refs(r.Context(), p.Tenant, n)
		if err != nil {
			if errors.Is(err, modelstore.ErrNotFound) {
				continue // a model with no published version yet
			}
			return err
		}
		out = append(out, entry{Name: n, Latest: refs.Latest, Versions: len(refs.Versions), Aliases: refs.Aliases})
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": out})
	return nil
}

func (s *Server) handleGetModel(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	name := r.PathValue("model")
	if err := checkName("model", name); err != nil {
		return err
	}
	vs, err := s.store.Versions(r.Context(), p.Tenant, name)
	if err != nil {
		return notFoundAs(err, "model %q not found", name)
	}
	aliases, err := s.store.Aliases(r.Context(), p.Tenant, name)
	if err != nil {
		return err
	}
	views := make([]versionView, 0, len(vs))
	for _, v := range vs {
		vv := versionView{Version: v.Version, SHA256: v.SHA256, Size: v.Size, Created: v.Created}
		_ = json.Unmarshal(v.Meta, &vv.Meta)
		views = append(views, vv)
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": name, "aliases": aliases, "versions": views})
	return nil
}

var aliasRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

func (s *Server) handleSetAlias(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r.Context())
	name, alias := r.PathValue("model"), r.PathValue("alias")
	if err := checkName("model", name); err != nil {
		return err
	}
	if err := checkAliasName(alias); err != nil {
		return err
	}
	// The body is an Alias, and optionally the evaluation that justifies
	// the move (recorded in the audit record).
	var body struct {
		Alias
		Evaluation string `json:"evaluation,omitempty"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	a := body.Alias
	if err := s.checkAlias(r.Context(), p.Tenant, name, a); err != nil {
		return err
	}
	if body.Evaluation != "" {
		if err := s.checkEvaluationFor(r.Context(), p.Tenant, body.Evaluation, name, a.Version); err != nil {
			return err
		}
	}
	if err := s.setAlias(r.Context(), p.Tenant, name, alias, a); err != nil {
		return err
	}
	setAuditObject(r, fmt.Sprintf("models/%s/aliases/%s", name, alias))
	res := map[string]any{"model": name, "alias": alias, "version": a.Version,
		"canary_version": a.CanaryVersion, "canary_weight": a.CanaryWeight}
	if body.Evaluation != "" {
		setAuditJustification(r, "evaluations/"+body.Evaluation)
		res["evaluation"] = body.Evaluation
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// SetAlias points alias of a tenant's (by id) model at a.Version, and
// optionally sends a.CanaryWeight percent of the traffic to
// a.CanaryVersion. Both versions must be published. An invalid alias or
// weight is an *Error with status 400; a missing model or version wraps
// modelstore.ErrNotFound.
func (s *Server) SetAlias(ctx context.Context, tenant, model, alias string, a Alias) error {
	if err := checkName("model", model); err != nil {
		return err
	}
	if err := checkAliasName(alias); err != nil {
		return err
	}
	if err := s.checkAlias(ctx, tenant, model, a); err != nil {
		return err
	}
	return s.setAlias(ctx, tenant, model, alias, a)
}

// Aliases returns the aliases of a tenant's (by id) model, by name; a
// model without aliases has none, a missing model wraps
// modelstore.ErrNotFound.
func (s *Server) Aliases(ctx context.Context, tenant, model string) (map[string]Alias, error) {
	if _, err := s.LatestVersion(ctx, tenant, model); err != nil {
		return nil, err
	}
	aliases, err := s.store.Aliases(ctx, tenant, model)
	if err != nil {
		return nil, err
	}
	if aliases == nil {
		aliases = map[string]Alias{}
	}
	return aliases, nil
}

// LatestVersion returns the highest published version of a tenant's (by
// id) model. A model without versions wraps modelstore.ErrNotFound. It
// reads the store, not the short-lived cache of versions, so a version
// published by another process is seen at once.
func (s *Server) LatestVersion(ctx context.Context, tenant, model string) (int, error) {
	if err := checkName("model", model); err != nil {
		return 0, err
	}
	vs, err := s.store.Versions(ctx, tenant, model)
	if err != nil {
		return 0, notFoundAs(err, "model %q not found", model)
	}
	latest := 0
	for _, v := range vs {
		latest = max(latest, v.Version)
	}
	if latest == 0 {
		return 0, notFound("model %q has no versions", model)
	}
	return latest, nil
}

// checkAliasName applies the registry's rule for alias names; SetAlias
// promises an *Error with status 400 for a bad one.
func checkAliasName(alias string) error {
	if err := registry.CheckAliasName(alias); err != nil {
		return wrapStatus(statusOf(err), err)
	}
	return nil
}

// checkAlias checks that a's weights make sense and its versions exist;
// SetAlias promises an *Error with status 400 for bad weights, and a
// missing model or version wraps modelstore.ErrNotFound.
func (s *Server) checkAlias(ctx context.Context, tenant, model string, a Alias) error {
	err := s.refs.CheckAlias(ctx, tenant, model, a)
	if errors.Is(err, registry.ErrInvalidAlias) {
		return wrapStatus(statusOf(err), err)
	}
	return err
}

// setAlias stores a checked alias and drops the cached refs of its model.
func (s *Server) setAlias(ctx context.Context, tenant, model, alias string, a Alias) error {
	if err := s.store.SetAlias(ctx, tenant, model, alias, a); err != nil {
		return err
	}
	s.refs.Forget(tenant, model)
	return nil
}

// notFoundAs rewrites a store not-found into a message naming the object
// as the client named it.
func notFoundAs(err error, format string, a ...any) error {
	if errors.Is(err, modelstore.ErrNotFound) {
		return notFound(format, a...)
	}
	return err
}
