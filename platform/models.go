package platform

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aiaas/aiaas/internal/cache"
	"github.com/aiaas/aiaas/internal/safetensors"
	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/nn/graph"
	"github.com/aiaas/aiaas/nn/nnbench"
	"github.com/aiaas/aiaas/nn/onnx"
)

// versionMeta is what the platform stores beside a version at publish, so
// listings never read weights.
type versionMeta struct {
	// Architecture is "dense" or "graph"; empty in versions published
	// before graphs existed (dense).
	Architecture string          `json:"architecture,omitempty"`
	Inputs       []nn.TensorSpec `json:"inputs"`
	Outputs      []nn.TensorSpec `json:"outputs"`
	Layers       []nn.Layer      `json:"layers,omitempty"`
	// Opset and Operators describe a graph: its ONNX opset and how many
	// nodes of each operator it has.
	Opset      int               `json:"opset,omitempty"`
	Operators  map[string]int    `json:"operators,omitempty"`
	Params     int               `json:"params"`
	Metrics    map[string]any    `json:"metrics,omitempty"`
	Provenance map[string]string `json:"provenance,omitempty"`
	Latency    *latency          `json:"latency,omitempty"`
	// LatencySkipped says why Latency was not measured (a large staged
	// upload is not loaded whole at publish).
	LatencySkipped string `json:"latency_skipped,omitempty"`
}

type latency struct {
	Batches []nnbench.Batch `json:"batches"`
}

// versionView is one version in GET /v1/models/{model}: the store's facts
// (never its internal keys) and what was recorded at publish.
type versionView struct {
	Version int       `json:"version"`
	SHA256  string    `json:"sha256"`
	Size    int64     `json:"size"`
	Created time.Time `json:"created"`
	versionMeta
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// checkName validates a path name before it reaches the store (which checks
// again): names are short, plain ASCII, and never "." or "..".
func checkName(kind, name string) error {
	if !nameRE.MatchString(name) || name == "." || name == ".." {
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

const (
	archDense = "dense"
	archGraph = "graph"
)

// describe validates an artifact of either architecture and returns what
// is recorded beside it, its forward-pass latency measured.
func describe(body []byte) (versionMeta, error) {
	if isGraphArtifact(body) {
		g, meta, err := graph.ReadArtifact(body, nil)
		if err != nil {
			return versionMeta{}, wrapStatus(http.StatusBadRequest, err)
		}
		vm := versionMeta{Architecture: archGraph, Inputs: signature(g.Inputs()), Outputs: signature(g.Outputs()),
			Params: int(g.NumParams()), Opset: g.Opset(), Operators: map[string]int{},
			Metrics: meta.Metrics, Provenance: meta.Provenance}
		for _, n := range meta.Graph.Nodes {
			vm.Operators[n.Op]++
		}
		// Latency at batch 1, where every other dimension is static.
		shapes := make([][]int, 0, len(vm.Inputs))
		for _, in := range vm.Inputs {
			shape := make([]int, len(in.Shape))
			for j, d := range in.Shape {
				shape[j] = int(d)
				if d < 0 && j == 0 {
					shape[j] = 1
				} else if d < 0 {
					shapes = nil
					break
				}
			}
			if shapes == nil {
				break
			}
			shapes = append(shapes, shape)
		}
		if shapes != nil {
			if lat, err := nnbench.MeasureGraph(g, shapes, nil, &nnbench.Options{Budget: publishBudget, MinCalls: 3}); err == nil {
				vm.Latency = &latency{Batches: lat}
			}
		}
		return vm, nil
	}
	m, meta, err := nn.ReadArtifact(body, nil)
	if err != nil {
		return versionMeta{}, wrapStatus(http.StatusBadRequest, err)
	}
	spec := m.Spec()
	vm := versionMeta{Architecture: archDense, Inputs: spec.Inputs, Outputs: spec.Outputs, Layers: spec.Layers, Params: m.NumParams()}
	if meta != nil {
		vm.Metrics, vm.Provenance = meta.Metrics, meta.Provenance
	}
	if lat, err := nnbench.Measure(m, []int{1, 8, 64}, &nnbench.Options{Budget: publishBudget, MinCalls: 5}); err == nil {
		vm.Latency = &latency{Batches: lat}
	}
	return vm, nil
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
func (s *Server) publish(ctx context.Context, tenant, name string, body []byte) (VersionInfo, versionMeta, error) {
	vm, err := describe(body)
	if err != nil {
		return VersionInfo{}, versionMeta{}, err
	}
	mb, err := marshalMeta(&vm)
	if err != nil {
		return VersionInfo{}, versionMeta{}, err
	}
	info, err := s.store.PublishModel(ctx, tenant, name, bytes.NewReader(body), int64(len(body)), mb)
	if err != nil {
		return VersionInfo{}, versionMeta{}, err
	}
	s.refs.forget(tenant, name)
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

// publishBudget bounds the latency measurement done at publish.
const publishBudget = 40 * time.Millisecond

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
	var vm versionMeta
	if streamed != nil {
		info, vm, err = s.publishStreamed(r.Context(), p.tenant, name, *streamed)
	} else {
		if isONNX(r.Header.Get("Content-Type"), body) {
			if body, err = fromONNX(body); err != nil {
				return err
			}
		}
		info, vm, err = s.publish(r.Context(), p.tenant, name, body)
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
	names, err := s.store.Models(r.Context(), p.tenant)
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
		refs, err := s.refs.get(r.Context(), p.tenant, n)
		if err != nil {
			if errors.Is(err, modelstore.ErrNotFound) {
				continue // a model with no published version yet
			}
			return err
		}
		out = append(out, entry{Name: n, Latest: refs.latest, Versions: len(refs.versions), Aliases: refs.aliases})
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
	vs, err := s.store.Versions(r.Context(), p.tenant, name)
	if err != nil {
		return notFoundAs(err, "model %q not found", name)
	}
	aliases, err := s.store.Aliases(r.Context(), p.tenant, name)
	if err != nil {
		return err
	}
	views := make([]versionView, 0, len(vs))
	for _, v := range vs {
		vv := versionView{Version: v.Version, SHA256: v.SHA256, Size: v.Size, Created: v.Created}
		_ = json.Unmarshal(v.Meta, &vv.versionMeta)
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
	if err := s.checkAlias(r.Context(), p.tenant, name, a); err != nil {
		return err
	}
	if body.Evaluation != "" {
		if err := s.checkEvaluationFor(r.Context(), p.tenant, body.Evaluation, name, a.Version); err != nil {
			return err
		}
	}
	if err := s.setAlias(r.Context(), p.tenant, name, alias, a); err != nil {
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

func checkAliasName(alias string) error {
	if !aliasRE.MatchString(alias) || alias == "latest" {
		return httpErr(http.StatusBadRequest, "invalid alias %q: 1-32 characters of a-z 0-9 _ -, starting with a letter; \"latest\" is reserved", truncate(alias, 40))
	}
	return nil
}

// checkAlias checks that a's weights make sense and its versions exist.
func (s *Server) checkAlias(ctx context.Context, tenant, model string, a Alias) error {
	if a.Version < 1 {
		return httpErr(http.StatusBadRequest, "\"version\" must be a published version number (1, 2, …)")
	}
	if a.CanaryWeight < 0 || a.CanaryWeight > 100 {
		return httpErr(http.StatusBadRequest, "\"canary_weight\" must be between 0 and 100")
	}
	if (a.CanaryVersion == 0) != (a.CanaryWeight == 0) {
		return httpErr(http.StatusBadRequest, "set both \"canary_version\" and \"canary_weight\", or neither")
	}
	vs, err := s.store.Versions(ctx, tenant, model)
	if err != nil {
		return notFoundAs(err, "model %q not found", model)
	}
	has := map[int]bool{}
	for _, v := range vs {
		has[v.Version] = true
	}
	for _, v := range []int{a.Version, a.CanaryVersion} {
		if v != 0 && !has[v] {
			return notFound("model %q has no version %d", model, v)
		}
	}
	return nil
}

// setAlias stores a checked alias and drops the cached refs of its model.
func (s *Server) setAlias(ctx context.Context, tenant, model, alias string, a Alias) error {
	if err := s.store.SetAlias(ctx, tenant, model, alias, a); err != nil {
		return err
	}
	s.refs.forget(tenant, model)
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

// --- version resolution -------------------------------------------------

// modelRefs is what resolving a ref needs: the versions and the aliases,
// cached briefly so a warm request reads nothing from the store. A moved
// alias is seen by every process within refTTL.
type modelRefs struct {
	latest   int
	versions map[int]VersionInfo
	aliases  map[string]Alias
}

const refTTL = 2 * time.Second

type refCache struct {
	st ModelStore
	c  *cache.Cache[refKey, *modelRefs]
}

type refKey struct{ tenant, model string }

func newRefCache(st ModelStore) refCache {
	return refCache{st: st, c: cache.New[refKey, *modelRefs](cache.Options{
		TTL: refTTL,
		// Stale-if-error: the store is down, and a model that was
		// resolved before keeps serving from the last known refs (its
		// weights are cached); new models fail fast with 503.
		Stale: func(err error) bool { return errors.Is(err, modelstore.ErrUnavailable) },
	})}
}

func (c *refCache) get(ctx context.Context, tenant, model string) (*modelRefs, error) {
	return c.c.Load(ctx, refKey{tenant, model}, func(ctx context.Context) (*modelRefs, error) {
		vs, err := c.st.Versions(ctx, tenant, model)
		if err != nil {
			return nil, err
		}
		if len(vs) == 0 {
			return nil, notFound("model %q has no versions", model)
		}
		aliases, err := c.st.Aliases(ctx, tenant, model)
		if err != nil {
			return nil, err
		}
		e := &modelRefs{versions: map[int]VersionInfo{}, aliases: aliases}
		for _, v := range vs {
			e.versions[v.Version] = v
			e.latest = max(e.latest, v.Version)
		}
		if e.aliases == nil {
			e.aliases = map[string]Alias{}
		}
		return e, nil
	})
}

func (c *refCache) forget(tenant, model string) { c.c.Forget(refKey{tenant, model}) }

// resolved is a ref turned into a version.
type resolved struct {
	version int
	info    VersionInfo
	alias   string // the alias used, "" for a number or latest
	side    string // "primary" or "canary" when the alias splits traffic
}

// resolve turns a ref — "", "latest", a version number or an alias — into
// a version. A split alias picks a side by weight, sticky per sticky key
// (the request id) when one is given.
func (s *Server) resolve(ctx context.Context, tenant, model, ref, sticky string) (resolved, error) {
	refs, err := s.refs.get(ctx, tenant, model)
	if err != nil {
		return resolved{}, notFoundAs(err, "model %q not found", model)
	}
	var res resolved
	switch {
	case ref == "" || ref == "latest":
		res.version = refs.latest
	case ref[0] >= '0' && ref[0] <= '9':
		n, err := strconv.Atoi(ref)
		if err != nil || n < 1 {
			return resolved{}, httpErr(http.StatusBadRequest, "invalid version %q", truncate(ref, 32))
		}
		res.version = n
	default:
		a, ok := refs.aliases[ref]
		if !ok {
			return resolved{}, notFound("model %q has no version or alias %q", model, truncate(ref, 32))
		}
		res.alias, res.version = ref, a.Version
		if a.CanaryVersion != 0 && a.CanaryWeight > 0 {
			res.side = "primary"
			if pick(sticky) < a.CanaryWeight {
				res.version, res.side = a.CanaryVersion, "canary"
			}
		}
	}
	info, ok := refs.versions[res.version]
	if !ok {
		// Maybe published a moment ago by another process.
		s.refs.forget(tenant, model)
		if refs, err = s.refs.get(ctx, tenant, model); err == nil {
			info, ok = refs.versions[res.version]
		}
		if !ok {
			return resolved{}, notFound("model %q has no version %d", model, res.version)
		}
	}
	res.info = info
	return res, nil
}

// pick maps a sticky key to 0..99 (random without one).
func pick(sticky string) int {
	if sticky == "" {
		return rand.IntN(100)
	}
	h := fnv.New32a()
	h.Write([]byte(sticky))
	return int(h.Sum32() % 100)
}

// versionsOf lists a model's version numbers as strings, ascending.
func versionsOf(refs *modelRefs) []string {
	nums := make([]int, 0, len(refs.versions))
	for v := range refs.versions {
		nums = append(nums, v)
	}
	sort.Ints(nums)
	out := make([]string, len(nums))
	for i, v := range nums {
		out[i] = strconv.Itoa(v)
	}
	return out
}
