package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/platform"
	"github.com/aiaas/aiaas/platform/config"
	"github.com/aiaas/aiaas/plugins"
)

// deps are the long-lived parts a server process opens once.
type deps struct {
	ms      *modelstore.Store
	store   platform.Store
	plugins *plugins.Host
}

func openDeps(ctx context.Context, cfg config.Config, logger *slog.Logger) (*deps, error) {
	key, ok := cfg.MasterKeyBytes()
	if !ok {
		return nil, fmt.Errorf("AIAAS_MASTER_KEY: want 32 bytes in standard base64")
	}
	ms, err := modelstore.Open(ctx, cfg.Store, &modelstore.Options{
		MasterKey:       key,
		SSE:             cfg.S3SSE,
		S3AccessKey:     cfg.S3AccessKey.Reveal(),
		S3SecretKey:     cfg.S3SecretKey.Reveal(),
		MaxArtifactSize: cfg.MaxArtifactBytes,
		Logger:          logger,
	})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", redactStore(cfg.Store), err)
	}
	host, err := plugins.New(ctx, &plugins.Options{
		CacheDir:    cfg.PluginCacheDir,
		CallTimeout: cfg.PluginTimeout,
		Logger:      logger,
	})
	if err != nil {
		ms.Close()
		return nil, fmt.Errorf("plugin runtime: %w", err)
	}
	return &deps{ms: ms, store: platform.StoreFrom(ms), plugins: host}, nil
}

func (d *deps) close() {
	d.plugins.Close(context.Background())
	d.ms.Close()
}
