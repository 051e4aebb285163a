package lambdaapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Secrets: the master and admin keys are never in a function's environment
// on AWS. AIAAS_MASTER_KEY_FROM and AIAAS_ADMIN_KEY_FROM name where each
// is read at init —
//
//	secretsmanager:NAME-OR-ARN   a Secrets Manager secret's SecretString
//	ssm:NAME                     an SSM Parameter Store (SecureString) value
//
// — through the AWS Parameters and Secrets Lambda Extension (a layer): a
// local HTTP interface on 127.0.0.1:2773 (PARAMETERS_SECRETS_EXTENSION_HTTP_PORT)
// that authenticates with the function's session token and caches. Each
// value is read once per execution environment. A plain AIAAS_MASTER_KEY or
// AIAAS_ADMIN_KEY (local runs, tests) takes precedence.
var secretVars = []struct{ from, to string }{
	{"AIAAS_MASTER_KEY_FROM", "AIAAS_MASTER_KEY"},
	{"AIAAS_ADMIN_KEY_FROM", "AIAAS_ADMIN_KEY"},
}

// secretWait bounds how long init waits for the extension: it starts
// with the function, and its first answer can come after ours begins.
const secretWait = 3 * time.Second

// resolveSecrets returns environ with each *_FROM variable replaced by the
// value it names. Errors name the variable and never the value.
func resolveSecrets(ctx context.Context, environ []string, client *http.Client) ([]string, error) {
	env := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	var add []string
	var errs []error
	for _, s := range secretVars {
		ref := env[s.from]
		if ref == "" || env[s.to] != "" {
			continue
		}
		v, err := fetchSecret(ctx, env, ref, client)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%s: %w", s.from, ref, err))
			continue
		}
		add = append(add, s.to+"="+v)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return append(environ[:len(environ):len(environ)], add...), nil
}

func fetchSecret(ctx context.Context, env map[string]string, ref string, client *http.Client) (string, error) {
	kind, name, _ := strings.Cut(ref, ":")
	if name == "" {
		return "", errors.New("want secretsmanager:NAME or ssm:NAME")
	}
	port := env["PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"]
	if port == "" {
		port = "2773"
	}
	base := "http://127.0.0.1:" + port
	var u string
	switch kind {
	case "secretsmanager":
		u = base + "/secretsmanager/get?secretId=" + url.QueryEscape(name)
	case "ssm":
		u = base + "/systemsmanager/parameters/get?withDecryption=true&name=" + url.QueryEscape(name)
	default:
		return "", fmt.Errorf("unknown source %q: want secretsmanager:NAME or ssm:NAME", kind)
	}
	token := env["AWS_SESSION_TOKEN"]
	if token == "" {
		return "", errors.New("no AWS_SESSION_TOKEN: the extension authenticates callers with it (outside Lambda, set the key itself)")
	}
	ctx, cancel := context.WithTimeout(ctx, secretWait)
	defer cancel()
	for {
		v, retry, err := getSecret(ctx, client, u, token, kind)
		if err == nil || !retry {
			return v, err
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("the Parameters and Secrets extension did not answer within %s (is its layer attached?): %w", secretWait, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// getSecret makes one request; retry says the extension may not be ready.
func getSecret(ctx context.Context, client *http.Client, u, token, kind string) (v string, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", false, err
	}
	req.Header.Set("X-Aws-Parameters-Secrets-Token", token)
	res, err := client.Do(req)
	if err != nil {
		return "", true, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return "", true, err
	}
	switch {
	case res.StatusCode == http.StatusOK:
	case res.StatusCode >= 500:
		return "", true, fmt.Errorf("extension: HTTP %d", res.StatusCode)
	default:
		// The body may echo the request; not the secret, but keep it short.
		return "", false, fmt.Errorf("extension: HTTP %d: %.200s", res.StatusCode, b)
	}
	var out struct {
		SecretString *string
		Parameter    *struct{ Value string }
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return "", false, fmt.Errorf("extension: not JSON: %v", err)
	}
	switch {
	case kind == "secretsmanager" && out.SecretString != nil && *out.SecretString != "":
		return strings.TrimSpace(*out.SecretString), false, nil
	case kind == "ssm" && out.Parameter != nil && out.Parameter.Value != "":
		return strings.TrimSpace(out.Parameter.Value), false, nil
	}
	return "", false, errors.New("extension: the answer has no value (a binary secret?)")
}
