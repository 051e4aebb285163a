package platform

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aiaas/aiaas/platform/internal/serving"
)

// PrewarmEndpoint does ahead of time what an endpoint's first invocation
// would: it loads the model version the endpoint resolves to into the
// model cache and starts an instance of each of its plugins (fetching
// their compiled code, or compiling it). A Lambda function calls it at
// init for the endpoints named in AIAAS_PREWARM_ENDPOINTS, so a new
// execution environment's first request does not pay for them.
// tenant is the tenant's ID.
func (s *Server) PrewarmEndpoint(ctx context.Context, tenant, name string) error {
	if err := checkName("endpoint", name); err != nil {
		return err
	}
	ep, err := s.endpoint(ctx, tenant, name)
	if err != nil {
		return err
	}
	var t serving.Timings
	if _, err := s.load(ctx, tenant, ep.Model, ep.Version, "", &t); err != nil {
		return fmt.Errorf("model %s: %w", ep.Model, err)
	}
	for _, pl := range []string{ep.Preprocess, ep.Postprocess} {
		if pl == "" {
			continue
		}
		if s.plugins == nil {
			return errors.New("plugins are disabled in this process")
		}
		rec, err := s.pluginRecord(ctx, tenant, pl)
		if err != nil {
			return err
		}
		if err := s.plugins.Warm(ctx, tenant, s.module(tenant, rec)); err != nil {
			return fmt.Errorf("plugin %s: %w", pl, err)
		}
	}
	return nil
}

// ParsePrewarm reads a prewarm list: comma-separated TENANT_ID/ENDPOINT
// pairs, spaces allowed around them.
func ParsePrewarm(v string) ([][2]string, error) {
	var out [][2]string
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		tenant, ep, ok := strings.Cut(f, "/")
		if !ok || tenant == "" || ep == "" || strings.Contains(ep, "/") {
			return nil, fmt.Errorf("%q: want TENANT_ID/ENDPOINT", f)
		}
		if err := checkName("endpoint", ep); err != nil {
			return nil, fmt.Errorf("%q: %v", f, err)
		}
		out = append(out, [2]string{tenant, ep})
	}
	return out, nil
}
