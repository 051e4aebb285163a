package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // profiles on AIAAS_DEBUG_ADDR only
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aiaas/aiaas/internal/gcfloor"
	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/platform"
	"github.com/aiaas/aiaas/platform/config"
)

var cmdServe = &command{
	name:    "serve",
	summary: "run the platform's HTTP server (the local form of the Lambda functions)",
	detail: `
Serves the Open Inference Protocol v2 data plane, endpoints and the control
plane on AIAAS_ADDR, with everything stored under AIAAS_STORE. Configuration
comes from the environment (below); flags override it. Bad configuration
stops start-up with one message naming every bad variable.

With --demo, the first start creates a demo tenant, trains the MNIST model
(about a minute), uploads the example plugins from --plugins-dir and creates
the "mnist" endpoint; when --plugins-dir also holds wordpiece, bpe and pool,
it publishes two tiny random-weight text models and makes the "text-embed"
and "text-gen" endpoints (plumbing to try, not language models). Every
start prints the URL, the demo key and curl lines that work as printed.
Later starts reuse the data.

Local mode: when AIAAS_ADMIN_KEY is unset, an admin key is generated and
printed once (its hash is kept in the store); when AIAAS_MASTER_KEY is unset
and the store is a folder, a master key is generated and kept in that folder
(see docs/security.md: production sets AIAAS_MASTER_KEY).`,
	more: envHelp,
	examples: []string{
		"aiaas serve",
		"AIAAS_STORE='s3://models?endpoint=127.0.0.1:9000&secure=false' AIAAS_S3_ACCESS_KEY=… AIAAS_S3_SECRET_KEY=… aiaas serve --addr :8080",
		"aiaas serve --demo --plugins-dir build/plugins",
	},
	setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		addr := fs.String("addr", "", "listen address (overrides AIAAS_ADDR)")
		store := fs.String("store", "", "store URL (overrides AIAAS_STORE)")
		demo := fs.Bool("demo", false, "set up and print the demo tenant, model, plugins and endpoint")
		pluginsDir := fs.String("plugins-dir", "build/plugins", "folder with the example plugins' .wasm files (--demo)")
		return func(ctx context.Context, c *cli, args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %q", args[0])
			}
			return serve(ctx, c, *addr, *store, *demo, *pluginsDir)
		}
	},
}

// envHelp lists the configuration variables for --help.
func envHelp() string {
	var b strings.Builder
	b.WriteString("Environment:\n")
	width := 0
	for _, v := range config.Vars() {
		width = max(width, len(v.Name))
	}
	for _, v := range config.Vars() {
		def := v.Default
		if def == "" {
			def = "unset"
		}
		fmt.Fprintf(&b, "  %-*s %s (default: %s)\n", width, v.Name, v.Help, def)
	}
	return b.String()
}

func serve(ctx context.Context, c *cli, addr, storeURL string, demo bool, pluginsDir string) error {
	// The variables come through c.getenv, so tests can pass their own.
	env := map[string]string{}
	for _, v := range config.Vars() {
		if val := c.getenv(v.Name); val != "" {
			env[v.Name] = val
		}
	}
	cfg, err := config.Load(env)
	if addr != "" {
		cfg.Addr = addr
	}
	if storeURL != "" {
		cfg.Store = storeURL
	}
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		return usagef("%v", err)
	}
	logger := newLogger(c.stderr, cfg)
	defer gcfloor.Start(gcfloor.Headroom(cfg.GCHeadroomBytes, gcfloor.MemoryLimit()))()

	localDir := ""
	if u, err := url.Parse(cfg.Store); err == nil && u.Scheme == "file" {
		localDir = u.Host + u.Path
	}
	if cfg.MasterKey == "" {
		if localDir == "" {
			return usagef("AIAAS_MASTER_KEY is required with a %s store (32 random bytes, base64: openssl rand -base64 32)", strings.SplitN(cfg.Store, ":", 2)[0])
		}
		k, created, err := localMasterKey(localDir)
		if err != nil {
			return err
		}
		cfg.MasterKey = config.Secret(k)
		if created {
			c.logf("generated a master key in %s (local mode; set AIAAS_MASTER_KEY in production)", filepath.Join(localDir, masterKeyFile))
		}
	}

	deps, err := openDeps(ctx, cfg, logger)
	if err != nil {
		return &exitError{exitUnreachable, err}
	}
	defer deps.close()

	srv, err := platform.New(ctx, platform.Options{Config: cfg, Store: deps.store, Plugins: deps.plugins, Logger: logger})
	if err != nil {
		return err
	}
	if cfg.AdminKey == "" {
		key, created, err := srv.LocalAdminKey(ctx)
		if err != nil {
			return &exitError{exitUnreachable, err}
		}
		if created {
			c.logf("admin key (shown once; keep it to create tenants): %s", key)
		}
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return &exitError{exitFailure, fmt.Errorf("listen on %s: %w (is another server running? set AIAAS_ADDR or --addr)", cfg.Addr, err)}
	}
	base := "http://" + ln.Addr().String()
	hs := &http.Server{
		Handler:           srv,
		ConnContext:       srv.ConnContext, // connections take turns for the CPUs
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	if cfg.StaleUploadAge > 0 {
		sctx, stop := context.WithCancel(ctx)
		defer stop()
		go sweepUploads(sctx, deps.ms, cfg.StaleUploadAge, logger)
	}
	if cfg.DebugAddr != "" {
		go func() {
			// The default mux holds net/http/pprof's handlers only.
			err := http.ListenAndServe(cfg.DebugAddr, http.DefaultServeMux)
			logger.Warn("debug listener stopped", "addr", cfg.DebugAddr, "err", err)
		}()
	}
	logger.Info("serving", "url", base, "store", redactStore(cfg.Store))
	if demo {
		info, err := setupDemo(ctx, srv, demoOptions{PluginsDir: pluginsDir, DataDir: demoDir(localDir), Log: func(s string) { c.logf("%s", s) }})
		if err != nil {
			hs.Close()
			return fmt.Errorf("demo setup: %w", err)
		}
		printDemo(c, base, info)
	} else {
		c.logf("aiaas serving on %s (store %s)", base, redactStore(cfg.Store))
	}

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	c.logf("shutting down: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	return srv.Close(sctx)
}

// sweepUploads removes partial uploads older than age that killed
// processes left in the store, now and then hourly, until ctx ends. A
// failure is logged and retried an hour later.
func sweepUploads(ctx context.Context, ms *modelstore.Store, age time.Duration, log *slog.Logger) {
	tk := time.NewTicker(time.Hour)
	defer tk.Stop()
	for {
		n, err := ms.Sweep(ctx, time.Now().Add(-age))
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.Warn("sweeping partial uploads failed; retrying later", "err", err)
		case n > 0:
			log.Info("removed partial uploads left by killed processes", "count", n, "older_than", age.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
	}
}

const masterKeyFile = ".master-key"

// localMasterKey reads or creates the local mode's master key file.
func localMasterKey(dir string) (key string, created bool, err error) {
	path := filepath.Join(dir, masterKeyFile)
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), false, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", false, err
	}
	var k [32]byte
	rand.Read(k[:])
	s := base64.StdEncoding.EncodeToString(k[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) { // another process won the race
		b, err := os.ReadFile(path)
		return strings.TrimSpace(string(b)), false, err
	}
	if err != nil {
		return "", false, err
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		return "", false, err
	}
	return s, true, f.Close()
}

func demoDir(storeDir string) string {
	if storeDir == "" {
		return filepath.Join(os.TempDir(), "aiaas-demo")
	}
	return filepath.Join(storeDir, "demo")
}

func printDemo(c *cli, base string, d *demoInfo) {
	out := struct {
		URL         string `json:"url"`
		Tenant      string `json:"tenant"`
		Key         string `json:"key"`
		Model       string `json:"model"`
		Endpoint    string `json:"endpoint"`
		Sample      string `json:"sample_json"`
		Digit       string `json:"sample_png"`
		TextEmbed   string `json:"text_embed_endpoint,omitempty"`
		TextGen     string `json:"text_gen_endpoint,omitempty"`
		TextSkipped string `json:"text_skipped,omitempty"`
	}{base, d.Tenant, d.Key, d.Model, d.Endpoint, d.SampleJSON, d.SamplePNG, d.TextEmbed, d.TextGen, d.TextSkipped}
	_ = c.emit(out, func(w io.Writer) {
		fmt.Fprintf(w, `
aiaas is ready at %[1]s   (console: %[1]s/console/)

  demo tenant  %[2]s
  API key      %[3]s
  model        %[4]s (alias prod)      endpoint  %[5]s (png-to-tensor → mnist → top-k)
`, base, d.Tenant, d.Key, d.Model, d.Endpoint)
		if d.TextEmbed != "" {
			fmt.Fprintf(w, `  text         %[1]s (wordpiece → encoder → pool)   %[2]s (bpe → decoder → bpe)
               RANDOM WEIGHTS: these two models only try the plumbing (the
               console's Text page, the OpenAI and Triton text routes); their
               similarities and text mean nothing. For real ones, export an
               encoder or a GPT-2 to ONNX and upload it: docs/models.md#text-models
`, d.TextEmbed, d.TextGen)
		} else {
			fmt.Fprintf(w, "  text         no text endpoints: %s\n", d.TextSkipped)
		}
		fmt.Fprintf(w, `
Try:
  export AIAAS_URL=%[1]s AIAAS_KEY=%[3]s
  curl -s %[1]s/v2/models/%[4]s/infer -H "Authorization: Bearer %[3]s" -d @%[6]s
  curl -s %[1]s/v1/endpoints/%[5]s/invoke -H "Authorization: Bearer %[3]s" -H "Content-Type: image/png" --data-binary @%[7]s
`, base, d.Tenant, d.Key, d.Model, d.Endpoint, d.SampleJSON, d.SamplePNG)
		if d.TextEmbed != "" {
			fmt.Fprintf(w, `  curl -s %[1]s/openai/v1/embeddings -H "Authorization: Bearer %[2]s" -H "Content-Type: application/json" -d '{"model":"%[3]s","input":["The cat sat.","A cat sat."]}'
  curl -sN %[1]s/openai/v1/completions -H "Authorization: Bearer %[2]s" -H "Content-Type: application/json" -d '{"model":"%[4]s","prompt":"Once upon a time","max_tokens":16,"stream":true}'
`, base, d.Key, d.TextEmbed, d.TextGen)
		}
		fmt.Fprint(w, "\nStop with Ctrl-C.\n")
	})
}

// redactStore drops credentials a URL might carry.
func redactStore(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable)"
	}
	u.User = nil
	return u.String()
}

func newLogger(w io.Writer, cfg config.Config) *slog.Logger {
	lvl, _ := config.ParseLevel(cfg.LogLevel)
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
