package lambdaapp

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// extension speaks the AWS Parameters and Secrets Lambda Extension's local
// HTTP interface (GET /secretsmanager/get?secretId=…,
// GET /systemsmanager/parameters/get?name=…&withDecryption=true, the
// session token in X-Aws-Parameters-Secrets-Token), answering 503 to the
// first notReady requests as an extension that is still starting.
func extension(t *testing.T, notReady int32) (port string, calls *atomic.Int32) {
	calls = new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if r.Header.Get("X-Aws-Parameters-Secrets-Token") != "session-token" {
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		if n <= notReady {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		q := r.URL.Query()
		switch {
		case r.URL.Path == "/secretsmanager/get" && q.Get("secretId") == "aiaas/master-key":
			json.NewEncoder(w).Encode(map[string]any{"Name": "aiaas/master-key", "SecretString": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"})
		case r.URL.Path == "/systemsmanager/parameters/get" && q.Get("name") == "/aiaas/admin-key" && q.Get("withDecryption") == "true":
			json.NewEncoder(w).Encode(map[string]any{"Parameter": map[string]any{"Name": "/aiaas/admin-key", "Value": "admin-key-from-ssm-0123456789"}})
		default:
			http.Error(w, `{"error":"not found"}`, http.StatusBadRequest)
		}
	}))
	t.Cleanup(srv.Close)
	_, port, _ = net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	return port, calls
}

func TestSecretsFromTheExtension(t *testing.T) {
	ctx := context.Background()
	port, calls := extension(t, 2)
	base := []string{"PARAMETERS_SECRETS_EXTENSION_HTTP_PORT=" + port, "AWS_SESSION_TOKEN=session-token",
		"AIAAS_MASTER_KEY_FROM=secretsmanager:aiaas/master-key", "AIAAS_ADMIN_KEY_FROM=ssm:/aiaas/admin-key"}
	env, err := resolveSecrets(ctx, base, http.DefaultClient)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(env, "\n")
	if !strings.Contains(got, "AIAAS_MASTER_KEY=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n") || !strings.Contains(got, "AIAAS_ADMIN_KEY=admin-key-from-ssm-0123456789") {
		t.Errorf("resolved environment:\n%s", got)
	}
	if calls.Load() < 4 {
		t.Errorf("%d requests: the not-ready answers were not retried", calls.Load())
	}

	// A plain value wins (local runs); nothing is fetched.
	before := calls.Load()
	env, err = resolveSecrets(ctx, append(base, "AIAAS_MASTER_KEY=local", "AIAAS_ADMIN_KEY=local-admin"), http.DefaultClient)
	if err != nil || calls.Load() != before || strings.Count(strings.Join(env, "\n"), "AIAAS_MASTER_KEY=") != 1 {
		t.Errorf("plain values: %v, %d calls", err, calls.Load()-before)
	}

	// Errors name the variable and the reference, for each one at once.
	_, err = resolveSecrets(ctx, []string{"PARAMETERS_SECRETS_EXTENSION_HTTP_PORT=" + port, "AWS_SESSION_TOKEN=session-token",
		"AIAAS_MASTER_KEY_FROM=secretsmanager:nope", "AIAAS_ADMIN_KEY_FROM=vault:x"}, http.DefaultClient)
	if err == nil || !strings.Contains(err.Error(), "AIAAS_MASTER_KEY_FROM=secretsmanager:nope") || !strings.Contains(err.Error(), "unknown source") {
		t.Errorf("bad references: %v", err)
	}
	if _, err := resolveSecrets(ctx, []string{"AIAAS_MASTER_KEY_FROM=secretsmanager:aiaas/master-key"}, http.DefaultClient); err == nil || !strings.Contains(err.Error(), "AWS_SESSION_TOKEN") {
		t.Errorf("no session token: %v", err)
	}
}

// TestOpenReadsSecrets: a function configured with references only starts
// with the keys they name.
func TestOpenReadsSecrets(t *testing.T) {
	port, _ := extension(t, 0)
	a, err := Open(context.Background(), "admin", []string{"AIAAS_STORE=file://" + t.TempDir(),
		"PARAMETERS_SECRETS_EXTENSION_HTTP_PORT=" + port, "AWS_SESSION_TOKEN=session-token",
		"AIAAS_MASTER_KEY_FROM=secretsmanager:aiaas/master-key", "AIAAS_ADMIN_KEY_FROM=ssm:/aiaas/admin-key"}, &Options{NoPlugins: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	if a.Config.AdminKey.Reveal() != "admin-key-from-ssm-0123456789" {
		t.Errorf("admin key not from SSM")
	}
	if _, ok := a.Config.MasterKeyBytes(); !ok {
		t.Errorf("master key not from Secrets Manager")
	}
}
