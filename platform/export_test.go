package platform

import "context"

// DemoText runs the text part of [Server.Demo] for the tenant named
// tenant, for the external tests (the whole demo trains MNIST first).
func (s *Server) DemoText(ctx context.Context, tenant, pluginsDir string) (embed, gen, skipped string, err error) {
	t, err := s.TenantByName(ctx, tenant)
	if err != nil {
		return "", "", "", err
	}
	return s.demoText(ctx, t.ID, pluginsDir, func(string, ...any) {})
}
