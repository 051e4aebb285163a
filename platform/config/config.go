// Package config reads the platform's configuration from the environment.
//
// # Overview
//
// Every setting is an AIAAS_* environment variable, parsed with
// github.com/caarlos0/env into a typed [Config]. [Load] reports every bad
// variable at once, so an operator fixes a deployment in one round trip
// instead of one variable per restart. Flags of the CLI may override fields
// after Load; [Config.Validate] checks the result again.
//
// The package only parses: it opens no store, binds no port and never logs a
// secret ([Secret] prints as "[redacted]").
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// Secret is a string that never prints: fmt, slog and JSON all see
// "[redacted]". Use [Secret.Reveal] where the value is really needed.
type Secret string

const redacted = "[redacted]"

// String implements fmt.Stringer.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString implements fmt.GoStringer, so %#v does not leak either.
func (s Secret) GoString() string { return s.String() }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText implements encoding.TextMarshaler (JSON, YAML …).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Reveal returns the secret itself.
func (s Secret) Reveal() string { return string(s) }

// Config is the whole configuration of a server or function process.
// The zero value is not valid; use [Load] or [Default].
type Config struct {
	// Addr is the listen address of `aiaas serve`.
	Addr string `env:"AIAAS_ADDR" envDefault:"127.0.0.1:8080"`
	// Store is where everything lives: file://PATH or
	// s3://BUCKET?endpoint=HOST:PORT&secure=false&region=R.
	Store string `env:"AIAAS_STORE" envDefault:"file://./data"`
	// S3AccessKey and S3SecretKey are S3/MinIO credentials; when empty the
	// standard AWS credential chain is used.
	S3AccessKey Secret `env:"AIAAS_S3_ACCESS_KEY"`
	S3SecretKey Secret `env:"AIAAS_S3_SECRET_KEY"`
	// S3SSE asks S3 for server-side encryption on top of ours:
	// "" (none), "sse-s3", or "sse-kms:KEY-ID".
	S3SSE string `env:"AIAAS_S3_SSE"`
	// AdminKey is the operator's key for /v1/tenants. In local mode an
	// empty key is generated and printed once.
	AdminKey Secret `env:"AIAAS_ADMIN_KEY"`
	// MasterKey wraps every tenant's data key: 32 bytes, standard base64.
	// In local mode an empty key is generated and kept beside the store
	// (see docs/security.md for why production must set it).
	MasterKey Secret `env:"AIAAS_MASTER_KEY"`
	// ModelCacheMB bounds the decoded models kept warm in memory.
	ModelCacheMB int `env:"AIAAS_MODEL_CACHE_MB" envDefault:"256"`
	// MaxBodyBytes bounds every request body (6 MB is Lambda's synchronous
	// payload limit). Model and plugin uploads have their own limits.
	MaxBodyBytes int64 `env:"AIAAS_MAX_BODY_BYTES" envDefault:"6291456"`
	// MaxArtifactBytes bounds a model upload.
	MaxArtifactBytes int64 `env:"AIAAS_MAX_ARTIFACT_BYTES" envDefault:"2147483648"`
	// BodyBudgetBytes bounds the request bytes the process holds at once,
	// each tenant to half of it: a request that would pass it is refused
	// (503, or 429 for a tenant's share) before the bytes are read. At
	// least twice AIAAS_MAX_ARTIFACT_BYTES, so a tenant can always upload
	// one model of the largest size.
	BodyBudgetBytes int64 `env:"AIAAS_BODY_BUDGET_BYTES" envDefault:"4294967296"`
	// GCHeadroomBytes keeps Go's collector from starting a cycle before
	// the heap has grown this much past the live heap (at most a quarter
	// of the process's memory limit: GOMEMLIMIT, the cgroup's, a Lambda
	// function's memory). A small live heap serving many requests would
	// otherwise be collected dozens of times a second. GOGC still applies
	// above it; 0 leaves the collector to GOGC alone.
	GCHeadroomBytes int64 `env:"AIAAS_GC_HEADROOM_BYTES" envDefault:"67108864"`
	// MaxGenerateTokens bounds the tokens one generate or completions
	// request may ask for.
	MaxGenerateTokens int `env:"AIAAS_MAX_GENERATE_TOKENS" envDefault:"512"`
	// RequestTimeout bounds every request end to end.
	RequestTimeout time.Duration `env:"AIAAS_REQUEST_TIMEOUT" envDefault:"30s"`
	// AuditPromiseLease is how long a server's promise of a tenant's audit
	// log lasts unrenewed: after a crash, Verify reports records the
	// server acknowledged but never wrote once this much time has passed.
	AuditPromiseLease time.Duration `env:"AIAAS_AUDIT_PROMISE_LEASE" envDefault:"1m"`
	// TenantRPS and TenantBurst are each tenant's request-rate quota
	// (token bucket); 0 disables the quota.
	TenantRPS   float64 `env:"AIAAS_TENANT_RPS" envDefault:"1000"`
	TenantBurst int     `env:"AIAAS_TENANT_BURST" envDefault:"2000"`
	// TenantConcurrency bounds each tenant's in-flight requests; 0 disables.
	TenantConcurrency int `env:"AIAAS_TENANT_CONCURRENCY" envDefault:"64"`
	// ShareWindow: while another tenant has sent a request within this
	// window, a tenant that has recently run more than the active
	// tenants' average runs at most its share of the CPUs at once (a
	// processor kept free for each other active tenant with nothing
	// running); its other requests wait their turn. 0 turns it off.
	ShareWindow time.Duration `env:"AIAAS_SHARE_WINDOW" envDefault:"1s"`
	// SharePressure: while the machine's CPU is contended (Linux's
	// pressure stall information says tasks wait for a CPU), a tenant
	// above the average is also held to fewer processors, down to a
	// tenth of one, so the light tenant's requests find a core
	// (internal/share, "CPU pressure"). Off, or where Linux does not
	// report pressure, the share above is work-conserving.
	SharePressure bool `env:"AIAAS_SHARE_PRESSURE" envDefault:"true"`
	// BatchWindow coalesces concurrent requests on one model version
	// into batched forward passes (texts of different lengths padded for
	// text encoders): a request that finds the model idle waits at most
	// this long for company. 0 turns batching off (Lambda).
	BatchWindow time.Duration `env:"AIAAS_BATCH_WINDOW" envDefault:"0s"`
	// BatchMax caps the rows of one coalesced batch.
	BatchMax int `env:"AIAAS_BATCH_MAX" envDefault:"64"`
	// BatchLanes is how many batches of one graph model run at once
	// (0 = GOMAXPROCS).
	BatchLanes int `env:"AIAAS_BATCH_LANES" envDefault:"0"`
	// PluginCacheDir holds wazero's compilation cache ("" = per-user cache
	// folder; /tmp on Lambda).
	PluginCacheDir string `env:"AIAAS_PLUGIN_CACHE_DIR"`
	// PluginTimeout is the deadline of one plugin call.
	PluginTimeout time.Duration `env:"AIAAS_PLUGIN_TIMEOUT" envDefault:"2s"`
	// TrainWorkers is the size of the local training worker pool.
	TrainWorkers int `env:"AIAAS_TRAIN_WORKERS" envDefault:"1"`
	// JobStale: a running job (training or evaluation) with no sign of
	// life for this long is reported failed — its worker died. Workers
	// beat every fifth of it.
	JobStale time.Duration `env:"AIAAS_JOB_STALE" envDefault:"10m"`
	// StaleUploadAge: `aiaas serve` removes partial uploads (temporary
	// files, S3 multipart uploads) that a killed process left and that are
	// older than this, at start and hourly; 0 turns the sweep off. It must
	// exceed the longest upload. 24h matches the SAM bucket's lifecycle
	// rule.
	StaleUploadAge time.Duration `env:"AIAAS_STALE_UPLOAD_AGE" envDefault:"24h"`
	// DebugAddr, when set, serves Go's profiler (net/http/pprof) on a
	// separate listener — keep it on loopback.
	DebugAddr string `env:"AIAAS_DEBUG_ADDR"`
	// LogLevel is debug, info, warn or error; LogFormat is json or text.
	LogLevel  string `env:"AIAAS_LOG_LEVEL" envDefault:"info"`
	LogFormat string `env:"AIAAS_LOG_FORMAT" envDefault:"json"`

	// Tracing (OpenTelemetry) takes the standard OTEL_* variables so that
	// a collector's usual setup works unchanged. It is off unless an OTLP
	// endpoint is set; spans go over OTLP/HTTP with protobuf bodies.
	// OTLPEndpoint is the collector's base URL (/v1/traces is appended);
	// OTLPTracesEndpoint, when set, is the full traces URL and wins.
	OTLPEndpoint       string `env:"OTEL_EXPORTER_OTLP_ENDPOINT"`
	OTLPTracesEndpoint string `env:"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"`
	// OTLPProtocol must be http/protobuf (or unset): no gRPC exporter is
	// linked, so saying grpc is a configuration error, not a silent switch.
	OTLPProtocol string `env:"OTEL_EXPORTER_OTLP_PROTOCOL"`
	// OTelSDKDisabled turns tracing off even with an endpoint set.
	OTelSDKDisabled bool `env:"OTEL_SDK_DISABLED"`
	// OTelServiceName is the service.name of every span ("" = aiaas, or
	// aiaas-FUNCTION on Lambda).
	OTelServiceName string `env:"OTEL_SERVICE_NAME"`
	// TracesSampler and TracesSamplerArg are the OTel sampler names
	// (always_on, always_off, traceidratio and their parentbased_ forms)
	// and the ratio for the traceidratio samplers.
	TracesSampler    string `env:"OTEL_TRACES_SAMPLER" envDefault:"parentbased_always_on"`
	TracesSamplerArg string `env:"OTEL_TRACES_SAMPLER_ARG"`
	// TraceFlushTimeout bounds the span export at the end of each Lambda
	// invocation and at server shutdown, so a dead collector costs at most
	// this much.
	TraceFlushTimeout time.Duration `env:"AIAAS_TRACE_FLUSH_TIMEOUT" envDefault:"500ms"`
}

// Var describes one environment variable, for --help.
type Var struct {
	Name, Default, Help string
}

// help texts, in the order --help prints them.
var vars = []Var{
	{"AIAAS_ADDR", "", "listen address of aiaas serve"},
	{"AIAAS_STORE", "", "file://PATH or s3://BUCKET?endpoint=HOST:PORT&secure=false&region=R"},
	{"AIAAS_S3_ACCESS_KEY", "", "S3/MinIO access key (else the AWS credential chain)"},
	{"AIAAS_S3_SECRET_KEY", "", "S3/MinIO secret key"},
	{"AIAAS_S3_SSE", "", "S3 server-side encryption: sse-s3 or sse-kms:KEY-ID (ours is always on)"},
	{"AIAAS_ADMIN_KEY", "", "operator key for /v1/tenants (generated and printed once locally)"},
	{"AIAAS_MASTER_KEY", "", "base64 32-byte key wrapping tenants' data keys (generated locally)"},
	{"AIAAS_MODEL_CACHE_MB", "", "memory for decoded models kept warm"},
	{"AIAAS_MAX_BODY_BYTES", "", "largest request body"},
	{"AIAAS_MAX_ARTIFACT_BYTES", "", "largest model upload"},
	{"AIAAS_BODY_BUDGET_BYTES", "", "request bytes the process holds at once (each tenant half); past it 503/429"},
	{"AIAAS_GC_HEADROOM_BYTES", "", "the heap grows this much past its live data before Go collects (at most a quarter of the memory limit; 0 = GOGC alone)"},
	{"AIAAS_MAX_GENERATE_TOKENS", "", "most tokens one generate or completions request may ask for"},
	{"AIAAS_REQUEST_TIMEOUT", "", "deadline of one request"},
	{"AIAAS_AUDIT_PROMISE_LEASE", "", "after a crash, audit verify reports records acknowledged but not written once this has passed"},
	{"AIAAS_TENANT_RPS", "", "requests per second per tenant (0 = no quota)"},
	{"AIAAS_TENANT_BURST", "", "burst above the rate per tenant"},
	{"AIAAS_TENANT_CONCURRENCY", "", "in-flight requests per tenant (0 = no quota)"},
	{"AIAAS_SHARE_WINDOW", "", "while another tenant was active this recently, the heaviest tenants run at most their share of the CPUs at once (0 = off)"},
	{"AIAAS_SHARE_PRESSURE", "", "while the CPU is contended (Linux pressure stall information), also hold the heaviest tenants to fewer processors"},
	{"AIAAS_BATCH_WINDOW", "", "adaptive batching window, e.g. 2ms (0 = off)"},
	{"AIAAS_BATCH_MAX", "", "largest coalesced batch"},
	{"AIAAS_BATCH_LANES", "", "batches of one graph model that run at once (0 = GOMAXPROCS)"},
	{"AIAAS_PLUGIN_CACHE_DIR", "", "wazero compilation cache folder"},
	{"AIAAS_PLUGIN_TIMEOUT", "", "deadline of one plugin call"},
	{"AIAAS_TRAIN_WORKERS", "", "local training workers"},
	{"AIAAS_JOB_STALE", "", "a running job with no heartbeat this long is reported failed (its worker died)"},
	{"AIAAS_STALE_UPLOAD_AGE", "", "serve removes partial uploads left by killed processes once this old (0 = never); must exceed the longest upload"},
	{"AIAAS_DEBUG_ADDR", "", "listen address for Go's profiler (net/http/pprof); keep it on loopback"},
	{"AIAAS_LOG_LEVEL", "", "debug, info, warn or error"},
	{"AIAAS_LOG_FORMAT", "", "json or text"},
	{"OTEL_EXPORTER_OTLP_ENDPOINT", "", "OTLP/HTTP collector base URL; tracing is off unless this or the next is set"},
	{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "", "full OTLP/HTTP traces URL (wins over the base URL)"},
	{"OTEL_EXPORTER_OTLP_PROTOCOL", "", "http/protobuf (the only one supported)"},
	{"OTEL_SDK_DISABLED", "", "true turns tracing off"},
	{"OTEL_SERVICE_NAME", "", "service.name of the spans (unset: aiaas, or aiaas-FUNCTION on Lambda)"},
	{"OTEL_TRACES_SAMPLER", "", "always_on, always_off, traceidratio, or parentbased_ of one of them"},
	{"OTEL_TRACES_SAMPLER_ARG", "", "sampling ratio in [0, 1] for the traceidratio samplers"},
	{"AIAAS_TRACE_FLUSH_TIMEOUT", "", "bound of the span export per Lambda invocation and at shutdown"},
}

// Vars lists every variable with its default, for --help.
func Vars() []Var {
	defaults := map[string]string{}
	for _, f := range fieldsOf() {
		defaults[f.Key] = f.DefaultValue
	}
	out := make([]Var, len(vars))
	for i, v := range vars {
		v.Default = defaults[v.Name]
		out[i] = v
	}
	return out
}

func fieldsOf() []env.FieldParams {
	params, err := env.GetFieldParams(&Config{})
	if err != nil { // a programming error in the struct tags
		panic(err)
	}
	return params
}

// Default is the configuration with nothing set.
func Default() Config {
	c, err := Load(map[string]string{})
	if err != nil {
		panic(err) // the defaults are ours and valid; a test guards it
	}
	return c
}

// Load parses environ (usually from [Environ]) and validates the result.
// The error names every bad variable.
func Load(environ map[string]string) (Config, error) {
	var c Config
	var problems []string
	err := env.ParseWithOptions(&c, env.Options{Environment: environ})
	var agg env.AggregateError
	switch {
	case err == nil:
	case errors.As(err, &agg):
		for _, e := range agg.Errors {
			problems = append(problems, describe(e))
		}
	default:
		problems = append(problems, err.Error())
	}
	problems = append(problems, c.problems(parsedOK(problems))...)
	if len(problems) > 0 {
		sort.Strings(problems)
		return c, &Error{Problems: problems}
	}
	return c, nil
}

// Environ turns os.Environ-style pairs into the map Load takes.
func Environ(pairs []string) map[string]string {
	m := make(map[string]string, len(pairs))
	for _, kv := range pairs {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// Error lists every problem found in one pass.
type Error struct{ Problems []string }

func (e *Error) Error() string {
	return "invalid configuration: " + strings.Join(e.Problems, "; ")
}

// describe turns caarlos0/env's errors into "AIAAS_X: why".
func describe(err error) string {
	var pe env.ParseError
	if errors.As(err, &pe) {
		if f, ok := reflect.TypeFor[Config]().FieldByName(pe.Name); ok {
			key, _, _ := strings.Cut(f.Tag.Get("env"), ",")
			return fmt.Sprintf("%s: cannot parse as %s (%v)", key, kindName(pe.Type), unwrapParse(pe.Err))
		}
	}
	return err.Error()
}

func kindName(t reflect.Type) string {
	if t == reflect.TypeFor[time.Duration]() {
		return "a duration like 30s or 2ms"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Float64:
		return "a number"
	}
	return t.String()
}

// unwrapParse keeps strconv's reason ("invalid syntax") without repeating
// the value's Go type.
func unwrapParse(err error) error {
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		return fmt.Errorf("%q: %w", ne.Num, ne.Err)
	}
	return err
}

// parsedOK reports which variables failed to parse, so Validate does not
// report them a second time.
func parsedOK(problems []string) map[string]bool {
	bad := map[string]bool{}
	for _, p := range problems {
		if k, _, ok := strings.Cut(p, ":"); ok {
			bad[k] = true
		}
	}
	return bad
}

// Validate checks a Config assembled by hand or changed by flags.
func (c Config) Validate() error {
	if p := c.problems(nil); len(p) > 0 {
		sort.Strings(p)
		return &Error{Problems: p}
	}
	return nil
}

func (c Config) problems(skip map[string]bool) []string {
	var out []string
	bad := func(name, format string, a ...any) {
		if !skip[name] {
			out = append(out, name+": "+fmt.Sprintf(format, a...))
		}
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("AIAAS_ADDR", "want HOST:PORT, got %q", c.Addr)
	}
	if err := checkStore(c.Store); err != nil {
		bad("AIAAS_STORE", "%v", err)
	}
	if (c.S3AccessKey == "") != (c.S3SecretKey == "") {
		bad("AIAAS_S3_SECRET_KEY", "set both AIAAS_S3_ACCESS_KEY and AIAAS_S3_SECRET_KEY, or neither")
	}
	if c.S3SSE != "" && c.S3SSE != "sse-s3" && !strings.HasPrefix(c.S3SSE, "sse-kms:") {
		bad("AIAAS_S3_SSE", "want sse-s3 or sse-kms:KEY-ID, got %q", c.S3SSE)
	}
	if c.AdminKey != "" && len(c.AdminKey) < 24 {
		bad("AIAAS_ADMIN_KEY", "too short: use at least 24 random characters")
	}
	if c.MasterKey != "" {
		if k, err := base64.StdEncoding.DecodeString(c.MasterKey.Reveal()); err != nil || len(k) != 32 {
			bad("AIAAS_MASTER_KEY", "want 32 bytes in standard base64 (openssl rand -base64 32)")
		}
	}
	if c.ModelCacheMB < 1 {
		bad("AIAAS_MODEL_CACHE_MB", "must be at least 1, got %d", c.ModelCacheMB)
	}
	if c.MaxBodyBytes < 1024 {
		bad("AIAAS_MAX_BODY_BYTES", "must be at least 1024, got %d", c.MaxBodyBytes)
	}
	if c.MaxArtifactBytes < 1024 || c.MaxArtifactBytes > 2<<30 {
		bad("AIAAS_MAX_ARTIFACT_BYTES", "must be between 1024 and 2 GiB, got %d", c.MaxArtifactBytes)
	}
	if c.BodyBudgetBytes < 2*max(c.MaxArtifactBytes, c.MaxBodyBytes) {
		bad("AIAAS_BODY_BUDGET_BYTES", "must be at least twice AIAAS_MAX_ARTIFACT_BYTES and AIAAS_MAX_BODY_BYTES (%d), got %d", 2*max(c.MaxArtifactBytes, c.MaxBodyBytes), c.BodyBudgetBytes)
	}
	if c.GCHeadroomBytes < 0 || c.GCHeadroomBytes > 64<<30 {
		bad("AIAAS_GC_HEADROOM_BYTES", "must be between 0 and 64 GiB, got %d", c.GCHeadroomBytes)
	}
	if c.MaxGenerateTokens < 1 || c.MaxGenerateTokens > 1<<16 {
		bad("AIAAS_MAX_GENERATE_TOKENS", "must be between 1 and 65536, got %d", c.MaxGenerateTokens)
	}
	if c.JobStale < time.Second {
		bad("AIAAS_JOB_STALE", "must be at least 1s, got %v", c.JobStale)
	}
	if c.RequestTimeout <= 0 {
		bad("AIAAS_REQUEST_TIMEOUT", "must be positive, got %v", c.RequestTimeout)
	}
	if c.TenantRPS < 0 {
		bad("AIAAS_TENANT_RPS", "must not be negative")
	}
	if c.TenantRPS > 0 && c.TenantBurst < 1 {
		bad("AIAAS_TENANT_BURST", "must be at least 1 when AIAAS_TENANT_RPS is set")
	}
	if c.ShareWindow < 0 {
		bad("AIAAS_SHARE_WINDOW", "must not be negative")
	}
	if c.TenantConcurrency < 0 {
		bad("AIAAS_TENANT_CONCURRENCY", "must not be negative")
	}
	if c.BatchWindow < 0 || c.BatchWindow > time.Second {
		bad("AIAAS_BATCH_WINDOW", "must be between 0 and 1s, got %v", c.BatchWindow)
	}
	if c.BatchMax < 1 || c.BatchMax > 4096 {
		bad("AIAAS_BATCH_MAX", "must be between 1 and 4096, got %d", c.BatchMax)
	}
	if c.BatchLanes < 0 || c.BatchLanes > 256 {
		bad("AIAAS_BATCH_LANES", "must be between 0 and 256, got %d", c.BatchLanes)
	}
	if c.PluginTimeout <= 0 || c.PluginTimeout > time.Minute {
		bad("AIAAS_PLUGIN_TIMEOUT", "must be between 0 and 1m, got %v", c.PluginTimeout)
	}
	if c.StaleUploadAge < 0 {
		bad("AIAAS_STALE_UPLOAD_AGE", "must not be negative (0 turns the sweep off), got %v", c.StaleUploadAge)
	}
	if c.TrainWorkers < 0 || c.TrainWorkers > 64 {
		bad("AIAAS_TRAIN_WORKERS", "must be between 0 and 64, got %d", c.TrainWorkers)
	}
	if c.DebugAddr != "" {
		if _, _, err := net.SplitHostPort(c.DebugAddr); err != nil {
			bad("AIAAS_DEBUG_ADDR", "want HOST:PORT, got %q", c.DebugAddr)
		}
	}
	if _, err := ParseLevel(c.LogLevel); err != nil {
		bad("AIAAS_LOG_LEVEL", "%v", err)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		bad("AIAAS_LOG_FORMAT", "want json or text, got %q", c.LogFormat)
	}
	for _, e := range []struct{ name, v string }{
		{"OTEL_EXPORTER_OTLP_ENDPOINT", c.OTLPEndpoint},
		{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", c.OTLPTracesEndpoint},
	} {
		if e.v == "" {
			continue
		}
		if u, err := url.Parse(e.v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(e.name, "want an http:// or https:// URL, got %q", e.v)
		}
	}
	if c.OTLPProtocol != "" && c.OTLPProtocol != "http/protobuf" {
		bad("OTEL_EXPORTER_OTLP_PROTOCOL", "only http/protobuf is supported, got %q", c.OTLPProtocol)
	}
	switch c.TracesSampler {
	case "always_on", "always_off", "parentbased_always_on", "parentbased_always_off":
	case "traceidratio", "parentbased_traceidratio":
		if c.TracesSamplerArg != "" {
			if r, err := strconv.ParseFloat(c.TracesSamplerArg, 64); err != nil || !(r >= 0 && r <= 1) {
				bad("OTEL_TRACES_SAMPLER_ARG", "want a ratio in [0, 1], got %q", c.TracesSamplerArg)
			}
		}
	default:
		bad("OTEL_TRACES_SAMPLER", "want always_on, always_off, traceidratio or parentbased_ of one of them, got %q", c.TracesSampler)
	}
	if c.TraceFlushTimeout <= 0 || c.TraceFlushTimeout > 30*time.Second {
		bad("AIAAS_TRACE_FLUSH_TIMEOUT", "must be between 0 and 30s, got %v", c.TraceFlushTimeout)
	}
	return out
}

// TracesURL is where spans are exported (OTLP/HTTP), or "" when tracing
// is off.
func (c Config) TracesURL() string {
	switch {
	case c.OTelSDKDisabled:
		return ""
	case c.OTLPTracesEndpoint != "":
		return c.OTLPTracesEndpoint
	case c.OTLPEndpoint != "":
		return strings.TrimRight(c.OTLPEndpoint, "/") + "/v1/traces"
	}
	return ""
}

// TracesSamplerRatio is the traceidratio samplers' ratio (default 1).
func (c Config) TracesSamplerRatio() float64 {
	if r, err := strconv.ParseFloat(c.TracesSamplerArg, 64); err == nil && r >= 0 && r <= 1 {
		return r
	}
	return 1
}

func checkStore(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL: %v", err)
	}
	switch u.Scheme {
	case "file":
		if u.Host+u.Path == "" {
			return fmt.Errorf("file:// needs a folder, e.g. file://./data")
		}
	case "s3":
		if u.Host == "" {
			return fmt.Errorf("s3:// needs a bucket, e.g. s3://models?region=eu-west-1")
		}
	case "mem":
	default:
		return fmt.Errorf("want file://PATH or s3://BUCKET?…, got scheme %q", u.Scheme)
	}
	return nil
}

// ParseLevel parses a log level name.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("want debug, info, warn or error, got %q", s)
	}
	return l, nil
}

// MasterKeyBytes decodes MasterKey; ok is false when it is unset.
func (c Config) MasterKeyBytes() (key []byte, ok bool) {
	if c.MasterKey == "" {
		return nil, false
	}
	k, err := base64.StdEncoding.DecodeString(c.MasterKey.Reveal())
	return k, err == nil && len(k) == 32
}
