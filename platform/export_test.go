package platform

import (
	"context"
	"time"
)

// DemoText runs the text part of [Server.Demo] for the tenant named
// tenant, for the external tests (the whole demo trains MNIST first).
func (s *Server) DemoText(ctx context.Context, tenant, pluginsDir string) (embed, gen, skipped string, err error) {
	t, err := s.TenantByName(ctx, tenant)
	if err != nil {
		return "", "", "", err
	}
	return s.demoText(ctx, t.ID, pluginsDir, func(string, ...any) {})
}

// SetUploadClock moves the clock of upload expiry and lowers the size
// above which a staged artifact is checked as it streams; restore undoes
// both. Tests that call it must not run in parallel.
func SetUploadClock(now func() time.Time, streamAbove int64) (restore func()) {
	oldNow, oldWhole := uploadNow, describeWhole
	uploadNow, describeWhole = now, streamAbove
	return func() { uploadNow, describeWhole = oldNow, oldWhole }
}
