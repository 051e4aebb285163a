package platform

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/aiaas/aiaas/internal/lowprio"
	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/nn/generate"
	"github.com/aiaas/aiaas/nn/graph"
	"github.com/aiaas/aiaas/platform/internal/registry"
	"github.com/aiaas/aiaas/platform/internal/serving"
)

// loadedModel is a decoded model version, shared by every request on it:
// a dense model (model, spec) or a graph model (graph), with the OIP
// signature of either.
type loadedModel struct {
	model   *nn.Model
	spec    nn.Spec
	batcher *serving.Batcher // nil when adaptive batching is off
	graph   *graph.Model
	gbatch  *serving.GraphBatcher // nil when adaptive batching is off or the graph has no batch dimension
	inputs  []nn.TensorSpec
	outputs []nn.TensorSpec
	labels  []string // class names of the first output, from the artifact; nil if none

	// rate is how long a FLOP of this model's forward pass takes, so that
	// a long pass runs on a thread of lower priority (internal/lowprio)
	// and another tenant's short request does not wait for it in the
	// kernel.
	rate lowprio.Rate

	decOnce sync.Once // the generator of a decoder graph, made on first use
	dec     *generate.Model
	decErr  error

	// params is the response parameters of a request that named the
	// version (no alias, plugins or canary), made once: read-only, as
	// every response's parameters are.
	params atomic.Pointer[plainParams]
}

// plainParams is a lineage's parameters for one version.
type plainParams struct {
	version int
	sha     string
	m       map[string]any
}

// readModel decodes an artifact of either architecture.
func readModel(b []byte) (*loadedModel, error) {
	if registry.IsGraphArtifact(b) {
		g, meta, err := graph.ReadArtifact(b, nil)
		if err != nil {
			return nil, err
		}
		return &loadedModel{graph: g, inputs: registry.Signature(g.Inputs()), outputs: registry.Signature(g.Outputs()), labels: meta.Labels}, nil
	}
	m, meta, err := nn.ReadArtifact(b, nil)
	if err != nil {
		return nil, err
	}
	spec := m.Spec()
	return &loadedModel{model: m, spec: spec, inputs: spec.Inputs, outputs: spec.Outputs, labels: meta.Labels}, nil
}

// bytes estimates what a loaded model holds: its weights (four bytes a
// parameter, as packed copies double them for dense layers) and scratch.
func (lm *loadedModel) bytes() int64 {
	if lm.graph != nil {
		return lm.graph.ConstBytes() + 1<<20
	}
	return int64(lm.model.NumParams())*4 + 64<<10
}

// modelCache keeps decoded models warm (registry.ModelCache: byte-bounded
// LRU, one load per version when many requests miss at once); this side
// loads and decodes a version, builds its batchers and counts the
// lookups.
type modelCache struct {
	s *Server
	c *registry.ModelCache[*loadedModel]
}

func newModelCache(s *Server, maxBytes int64) *modelCache {
	return &modelCache{s: s, c: registry.NewModelCache[*loadedModel](maxBytes)}
}

func (c *modelCache) get(ctx context.Context, tenant, model string, info VersionInfo) (*loadedModel, error) {
	lm, lookup, err := c.c.Get(ctx, tenant, model, info.Version, func(ctx context.Context) (*loadedModel, int64, error) {
		b, _, err := c.s.store.OpenModel(ctx, tenant, model, info.Version)
		if errors.Is(err, modelstore.ErrCorrupt) {
			// Permanent until an operator acts: not a retryable 503. The
			// storage key stays in the log, not in the answer.
			c.s.log.Error("model artifact failed its integrity check", "tenant", tenant, "model", model, "version", info.Version, "err", err)
			return nil, 0, &Error{Status: http.StatusInternalServerError, err: err, public: true,
				Msg: fmt.Sprintf("model %s version %d failed its integrity check and cannot be served; other versions and aliases are unaffected (request id %s)", model, info.Version, requestID(ctx))}
		}
		if err != nil {
			return nil, 0, err
		}
		lm, err := readModel(b)
		if err != nil {
			// The artifact was validated at publish: failing now means it
			// changed behind our back.
			return nil, 0, &Error{Status: http.StatusServiceUnavailable, err: err,
				Msg: fmt.Sprintf("model %s version %d cannot be loaded: %v", model, info.Version, err)}
		}
		batching := serving.Options{Window: c.s.cfg.BatchWindow, MaxRows: c.s.cfg.BatchMax, Lanes: c.s.cfg.BatchLanes,
			Observe: c.s.metrics.BatchRows}
		if c.s.cfg.BatchWindow > 0 && lm.model != nil {
			lm.batcher = serving.NewBatcher(lm.model, batching)
		}
		if c.s.cfg.BatchWindow > 0 && lm.graph != nil {
			lm.gbatch = serving.NewGraphBatcher(lm.graph, batching)
		}
		return lm, lm.bytes(), nil
	})
	c.s.metrics.CacheLookup(string(lookup))
	return lm, err
}

func (c *modelCache) bytes() int64 { return c.c.Bytes() }
