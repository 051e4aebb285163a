package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestDefaultsAreValid(t *testing.T) {
	c := Default()
	if c.Addr != "127.0.0.1:8080" || c.Store != "file://./data" {
		t.Fatalf("defaults changed: %+v", c)
	}
	if c.RequestTimeout != 30*time.Second || c.MaxBodyBytes != 6<<20 {
		t.Fatalf("defaults changed: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestLoadNamesEveryBadVariable(t *testing.T) {
	for i, tc := range []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{"AIAAS_MODEL_CACHE_MB": "lots", "AIAAS_REQUEST_TIMEOUT": "soon"},
			[]string{"AIAAS_MODEL_CACHE_MB: cannot parse", "AIAAS_REQUEST_TIMEOUT: cannot parse"}},
		{map[string]string{"AIAAS_STORE": "ftp://x", "AIAAS_ADDR": "nope", "AIAAS_LOG_LEVEL": "loud"},
			[]string{"AIAAS_STORE:", "AIAAS_ADDR:", "AIAAS_LOG_LEVEL:"}},
		{map[string]string{"AIAAS_MASTER_KEY": "c2hvcnQ=", "AIAAS_S3_ACCESS_KEY": "only-one"},
			[]string{"AIAAS_MASTER_KEY:", "AIAAS_S3_SECRET_KEY:"}},
		{map[string]string{"AIAAS_BATCH_MAX": "0", "AIAAS_TENANT_RPS": "-1", "AIAAS_MODEL_CACHE_MB": "0"},
			[]string{"AIAAS_BATCH_MAX:", "AIAAS_TENANT_RPS:", "AIAAS_MODEL_CACHE_MB:"}},
		{map[string]string{"AIAAS_STALE_UPLOAD_AGE": "-1h"}, []string{"AIAAS_STALE_UPLOAD_AGE: must not be negative"}},
		{map[string]string{"AIAAS_GC_HEADROOM_BYTES": "-1"}, []string{"AIAAS_GC_HEADROOM_BYTES: must be between 0 and 64 GiB"}},
	} {
		_, err := Load(tc.env)
		if err == nil {
			t.Errorf("case %d: no error", i)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("case %d: error %q does not mention %q", i, err, w)
			}
		}
		// A variable that failed to parse is reported once, not twice.
		if strings.Count(err.Error(), "AIAAS_MODEL_CACHE_MB") > 1 {
			t.Errorf("case %d: reported twice: %v", i, err)
		}
	}
}

func TestLoadGoodValues(t *testing.T) {
	c, err := Load(map[string]string{
		"AIAAS_STORE":             "s3://models?endpoint=127.0.0.1:9000&secure=false",
		"AIAAS_S3_ACCESS_KEY":     "a",
		"AIAAS_S3_SECRET_KEY":     "b",
		"AIAAS_MASTER_KEY":        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"AIAAS_BATCH_WINDOW":      "2ms",
		"AIAAS_MODEL_CACHE_MB":    "64",
		"AIAAS_STALE_UPLOAD_AGE":  "0",
		"AIAAS_GC_HEADROOM_BYTES": "0",
	})
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := c.MasterKeyBytes(); !ok || len(k) != 32 {
		t.Fatalf("master key not decoded")
	}
	if c.BatchWindow != 2*time.Millisecond || c.ModelCacheMB != 64 || c.StaleUploadAge != 0 || c.GCHeadroomBytes != 0 {
		t.Fatalf("got %+v", c)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	c := Default()
	c.AdminKey = "super-secret-admin-key-value"
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("cfg", "config", c, "key", c.AdminKey)
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), buf.String()} {
		if strings.Contains(s, "super-secret") {
			t.Fatalf("secret leaked: %s", s)
		}
	}
	if c.AdminKey.Reveal() != "super-secret-admin-key-value" {
		t.Fatal("Reveal lost the value")
	}
}

func TestVarsDocumentEveryField(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range Vars() {
		seen[v.Name] = true
		if v.Help == "" {
			t.Errorf("%s has no help", v.Name)
		}
	}
	for _, f := range fieldsOf() {
		if !seen[f.Key] {
			t.Errorf("%s is not listed in --help", f.Key)
		}
	}
	if len(seen) != len(fieldsOf()) {
		t.Errorf("help lists %d variables, Config has %d", len(seen), len(fieldsOf()))
	}
}

func TestTracingVariables(t *testing.T) {
	for i, tc := range []struct {
		env     map[string]string
		url     string
		ratio   float64
		problem string
	}{
		{map[string]string{}, "", 1, ""},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}, "http://collector:4318/v1/traces", 1, ""},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://b/x"}, "https://b/x", 1, ""},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_SDK_DISABLED": "true"}, "", 1, ""},
		{map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}, "", 0.25, ""},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, "", 0, "OTEL_EXPORTER_OTLP_ENDPOINT:"},
		{map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "", 0, "OTEL_EXPORTER_OTLP_PROTOCOL: only http/protobuf"},
		{map[string]string{"OTEL_TRACES_SAMPLER": "sometimes"}, "", 0, "OTEL_TRACES_SAMPLER:"},
		{map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, "", 0, "OTEL_TRACES_SAMPLER_ARG:"},
		{map[string]string{"AIAAS_TRACE_FLUSH_TIMEOUT": "0s"}, "", 0, "AIAAS_TRACE_FLUSH_TIMEOUT:"},
		{map[string]string{"OTEL_SDK_DISABLED": "maybe"}, "", 0, "OTEL_SDK_DISABLED:"},
	} {
		c, err := Load(tc.env)
		if tc.problem != "" {
			if err == nil || !strings.Contains(err.Error(), tc.problem) {
				t.Errorf("case %d: error %v, want one mentioning %q", i, err, tc.problem)
			}
			continue
		}
		if err != nil {
			t.Errorf("case %d: %v", i, err)
			continue
		}
		if got := c.TracesURL(); got != tc.url {
			t.Errorf("case %d: TracesURL %q, want %q", i, got, tc.url)
		}
		if got := c.TracesSamplerRatio(); got != tc.ratio {
			t.Errorf("case %d: ratio %v, want %v", i, got, tc.ratio)
		}
	}
}
