package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fakeAPI is a small in-memory server that follows the HTTP contract for
// the routes the client commands use, with two keys: "manage-key" (scope
// manage) and "invoke-key" (scope invoke), and "admin-key" for tenants.
type fakeAPI struct {
	mu        sync.Mutex
	models    map[string][]int64 // model → sizes of its versions
	endpoints map[string]map[string]any
	polls     int
	auditOK   bool
	lastBody  []byte
	lastCT    string
}

func newFakeAPI(t *testing.T) (*fakeAPI, *httptest.Server) {
	f := &fakeAPI{models: map[string][]int64{"mnist": {100, 200}}, endpoints: map[string]map[string]any{}, auditOK: true}
	mux := http.NewServeMux()
	fail := func(w http.ResponseWriter, status int, msg string) {
		w.Header().Set("Content-Type", "application/json")
		if status == 429 || status == 503 {
			w.Header().Set("Retry-After", "0")
		}
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"error": msg})
	}
	reply := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	auth := func(scope string, h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Request-Id", "req-9")
			key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			switch {
			case scope == "admin" && key != "admin-key", key == "" || key == "revoked":
				fail(w, 401, "unknown or revoked key")
			case key == "invoke-key" && scope != "invoke":
				fail(w, 403, "key lacks scope manage")
			case scope != "admin" && key != "manage-key" && key != "invoke-key":
				fail(w, 401, "unknown key")
			default:
				f.mu.Lock()
				defer f.mu.Unlock()
				h(w, r)
			}
		}
	}
	mux.HandleFunc("POST /v1/tenants", auth("admin", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Name string }
		json.NewDecoder(r.Body).Decode(&req)
		reply(w, 201, map[string]any{"id": "t1", "name": req.Name, "api_key": "aiaas_secret"})
	}))
	mux.HandleFunc("POST /v1/keys", auth("manage", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Name, Scope string }
		json.NewDecoder(r.Body).Decode(&req)
		reply(w, 201, map[string]any{"id": "k2", "name": req.Name, "scope": req.Scope, "api_key": "aiaas_k2", "created": "2026-11-29T01:00:00Z"})
	}))
	mux.HandleFunc("GET /v1/keys", auth("manage", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, map[string]any{"keys": []any{map[string]any{"id": "k1", "name": "ci", "scope": "invoke", "created": "2026-11-29T01:00:00Z"}}})
	}))
	mux.HandleFunc("DELETE /v1/keys/{id}", auth("manage", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != "k1" {
			fail(w, 404, "key not found")
			return
		}
		w.WriteHeader(204)
	}))
	mux.HandleFunc("POST /v1/models/{model}/versions", auth("manage", func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength < 0 {
			fail(w, 411, "length required")
			return
		}
		if r.ContentLength > 1<<20 {
			fail(w, 413, "artifact over the limit")
			return
		}
		b, _ := io.ReadAll(r.Body)
		if !bytes.HasPrefix(b, []byte("ST")) {
			fail(w, 400, "not a safetensors artifact")
			return
		}
		m := r.PathValue("model")
		f.models[m] = append(f.models[m], int64(len(b)))
		reply(w, 201, map[string]any{"model": m, "version": len(f.models[m]), "sha256": "abcdef0123456789", "size": len(b), "inputs": []any{}, "outputs": []any{}})
	}))
	mux.HandleFunc("GET /v1/models", auth("manage", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, map[string]any{"models": []any{map[string]any{"name": "mnist", "latest": 2, "versions": 2, "aliases": map[string]any{"prod": map[string]any{"version": 1}}}}})
	}))
	mux.HandleFunc("GET /v1/models/{model}", auth("manage", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := f.models[r.PathValue("model")]; !ok {
			fail(w, 404, fmt.Sprintf("model %q not found", r.PathValue("model")))
			return
		}
		reply(w, 200, map[string]any{"name": "mnist", "aliases": map[string]any{"prod": map[string]any{"version": 1}},
			"versions": []any{map[string]any{"version": 1, "sha256": "aa", "size": 100, "metrics": map[string]any{"test_accuracy": 0.9731}}}})
	}))
	mux.HandleFunc("PUT /v1/models/{model}/aliases/{alias}", auth("manage", func(w http.ResponseWriter, r *http.Request) {
		var a struct {
			Version       int `json:"version"`
			CanaryVersion int `json:"canary_version"`
			CanaryWeight  int `json:"canary_weight"`
		}
		json.NewDecoder(r.Body).Decode(&a)
		if a.Version > len(f.models[r.PathValue("model")]) {
			fail(w, 400, fmt.Sprintf("version %d does not exist", a.Version))
			return
		}
		reply(w, 200, map[string]any{"model": r.PathValue("model"), "alias": r.PathValue("alias"), "version": a.Version, "canary_version": a.CanaryVersion, "canary_weight": a.CanaryWeight})
	}))
	mux.HandleFunc("PUT /v1/plugins/{plugin}", auth("manage", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if !bytes.HasPrefix(b, []byte("\x00asm")) {
			fail(w, 400, "invalid module: missing export \"alloc\"")
			return
		}
		reply(w, 201, map[string]any{"name": r.PathValue("plugin"), "sha256": "cc", "size": len(b), "exports": []string{"preprocess"}, "abi_version": 1})
	}))
	mux.HandleFunc("PUT /v1/endpoints/{endpoint}", auth("manage", func(w http.ResponseWriter, r *http.Request) {
		var e map[string]any
		f.lastBody, _ = io.ReadAll(r.Body)
		json.Unmarshal(f.lastBody, &e)
		e["name"] = r.PathValue("endpoint")
		status := 201
		if _, ok := f.endpoints[r.PathValue("endpoint")]; ok {
			status = 200
		}
		f.endpoints[r.PathValue("endpoint")] = e
		reply(w, status, e)
	}))
	mux.HandleFunc("GET /v1/endpoints", auth("manage", func(w http.ResponseWriter, r *http.Request) {
		var es []any
		for _, e := range f.endpoints {
			es = append(es, e)
		}
		reply(w, 200, map[string]any{"endpoints": es})
	}))
	mux.HandleFunc("POST /openai/v1/embeddings", auth("invoke", func(w http.ResponseWriter, r *http.Request) {
		f.lastBody, _ = io.ReadAll(r.Body)
		reply(w, 200, map[string]any{"object": "list", "model": "minilm",
			"data":  []any{map[string]any{"object": "embedding", "index": 0, "embedding": []float32{0.6, 0.8}}},
			"usage": map[string]int{"prompt_tokens": 3, "total_tokens": 3}})
	}))
	mux.HandleFunc("POST /v2/models/{model}/generate", auth("invoke", func(w http.ResponseWriter, r *http.Request) {
		f.lastBody, _ = io.ReadAll(r.Body)
		if r.PathValue("model") != "gpt2" {
			fail(w, 404, "endpoint not found")
			return
		}
		reply(w, 200, map[string]any{"model_name": "gpt2", "model_version": "1", "text_output": " there was a cat", "finish_reason": "length"})
	}))
	mux.HandleFunc("POST /v2/models/{model}/generate_stream", auth("invoke", func(w http.ResponseWriter, r *http.Request) {
		f.lastBody, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		for _, ev := range []string{`{"text_output":" there"}`, `{"text_output":" was"}`, `{"text_output":"","finish_reason":"stop"}`} {
			fmt.Fprintf(w, "data: %s\n\n", ev)
		}
	}))
	mux.HandleFunc("POST /v1/endpoints/{endpoint}/invoke", auth("invoke", func(w http.ResponseWriter, r *http.Request) {
		f.lastBody, _ = io.ReadAll(r.Body)
		f.lastCT = r.Header.Get("Content-Type")
		switch r.PathValue("endpoint") {
		case "digits":
			reply(w, 200, map[string]any{"predictions": []any{map[string]any{"label": "7", "index": 7, "score": 0.98}}})
		case "echo":
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write([]byte{0, 1, 2, 255})
		case "busy":
			fail(w, 429, "over quota")
		default:
			fail(w, 404, "endpoint not found")
		}
	}))
	mux.HandleFunc("GET /v2/models/{model}", auth("invoke", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, map[string]any{"name": r.PathValue("model"), "platform": "aiaas-gonum", "versions": []string{"1"},
			"inputs": []any{map[string]any{"name": "pixels", "datatype": "FP32", "shape": []int{-1, 3}}}, "outputs": []any{}})
	}))
	mux.HandleFunc("POST /v2/models/{model}/infer", auth("invoke", func(w http.ResponseWriter, r *http.Request) {
		f.lastBody, _ = io.ReadAll(r.Body)
		var req struct {
			Inputs []struct {
				Name  string
				Shape []int
				Data  []float64
			}
		}
		if err := json.Unmarshal(f.lastBody, &req); err != nil || len(req.Inputs) != 1 {
			fail(w, 400, "bad request")
			return
		}
		sum := 0.0
		for _, v := range req.Inputs[0].Data {
			sum += v
		}
		reply(w, 200, map[string]any{"model_name": r.PathValue("model"), "model_version": "2", "parameters": map[string]any{"model_version": "2", "model_sha256": "feedbeef"},
			"outputs": []any{map[string]any{"name": "sum", "datatype": "FP32", "shape": []int{1, 1}, "data": []float64{sum}}}})
	}))
	mux.HandleFunc("POST /v1/training-jobs", auth("manage", func(w http.ResponseWriter, r *http.Request) {
		f.lastBody, _ = io.ReadAll(r.Body)
		reply(w, 202, map[string]any{"id": "j1", "status": "queued", "model": "iris"})
	}))
	mux.HandleFunc("GET /v1/training-jobs/{id}", auth("manage", func(w http.ResponseWriter, r *http.Request) {
		f.polls++
		switch {
		case r.PathValue("id") == "jfail":
			reply(w, 200, map[string]any{"id": "jfail", "status": "failed", "model": "iris", "error": "dataset has NaN"})
		case f.polls < 3:
			reply(w, 200, map[string]any{"id": "j1", "status": "running", "model": "iris",
				"progress": map[string]any{"epoch": 1, "epochs": 2, "batch": 3, "batches": 4, "loss": 0.5, "accuracy": 0.8},
				"epochs":   []any{}})
		default:
			reply(w, 200, map[string]any{"id": "j1", "status": "succeeded", "model": "iris",
				"epochs": []any{map[string]any{"epoch": 1, "loss": 0.5, "accuracy": 0.8, "seconds": 0.1}, map[string]any{"epoch": 2, "loss": 0.3, "accuracy": 0.9, "seconds": 0.1}},
				"result": map[string]any{"version": 4, "test_accuracy": 0.93, "sha256": "dd"}})
		}
	}))
	mux.HandleFunc("GET /v1/audit", auth("manage", func(w http.ResponseWriter, r *http.Request) {
		f.lastBody = []byte(r.URL.RawQuery)
		// Two chains merged: a page per chain, then the end.
		switch r.URL.Query().Get("cursor") {
		case "":
			reply(w, 200, map[string]any{"records": []any{map[string]any{"seq": 1, "time": "2026-11-29T01:00:00Z", "actor": "k1", "action": "infer", "object": "models/mnist", "status": 200, "latency_ms": 1.2, "prev": "", "hash": "h1", "chain": "env-a"}}, "next_after": 0, "next_cursor": "c1"})
		case "c1":
			reply(w, 200, map[string]any{"records": []any{map[string]any{"seq": 1, "time": "2026-11-29T01:00:01Z", "actor": "k1", "action": "infer", "object": "models/mnist", "status": 200, "latency_ms": 1.2, "prev": "", "hash": "h2", "chain": "env-b"}}, "next_after": 0, "next_cursor": "c2"})
		default:
			reply(w, 200, map[string]any{"records": []any{}, "next_after": 0, "next_cursor": "c2"})
		}
	}))
	mux.HandleFunc("GET /v1/audit/verify", auth("manage", func(w http.ResponseWriter, r *http.Request) {
		if f.auditOK {
			reply(w, 200, map[string]any{"records": 10, "segments": 2, "ok": true, "chains": []any{
				map[string]any{"id": "env-a", "records": 4, "segments": 1, "ok": true}, map[string]any{"id": "env-b", "records": 6, "segments": 1, "ok": true}}})
		} else {
			reply(w, 200, map[string]any{"records": 10, "segments": 1, "ok": false, "problems": []string{"seq 4: hash mismatch"}})
		}
	}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return f, srv
}

func clientEnv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestClientCommands(t *testing.T) {
	f, srv := newFakeAPI(t)
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	artifact := write("m.safetensors", "ST"+strings.Repeat("x", 5000))
	bad := write("bad.safetensors", "nope")
	wasm := write("p.wasm", "\x00asm\x01\x00\x00\x00")
	png := write("seven.png", "\x89PNG\r\n\x1a\n....")
	reqFile := write("req.json", `{"inputs":[{"name":"pixels","datatype":"FP32","shape":[1,2],"data":[1.5,2]}]}`)
	recipe := write("cnn.json", `{"network":{"input_shape":[1,28,28],"layers":[{"type":"conv2d","filters":8,"kernel_size":3},{"type":"flatten"},{"type":"dense","units":10}]},"batch_size":64,"epochs":3,"augment":{"shift":2}}`)

	l, _ := net.Listen("tcp", "127.0.0.1:0")
	deadURL := "http://" + l.Addr().String()
	l.Close()

	manage := map[string]string{"AIAAS_URL": srv.URL, "AIAAS_KEY": "manage-key"}
	invoke := map[string]string{"AIAAS_URL": srv.URL, "AIAAS_KEY": "invoke-key"}
	admin := map[string]string{"AIAAS_URL": srv.URL, "AIAAS_ADMIN_KEY": "admin-key"}
	for i, tc := range []struct {
		args     []string
		env      map[string]string
		code     int
		stdout   string // substring; with --output json also checked as one JSON object
		stderr   string
		lastBody string // substring of what the server got last
	}{
		{[]string{"tenant", "create", "acme"}, admin, exitOK, "aiaas_secret", "", ""},
		{[]string{"tenant", "create", "acme", "--output", "json"}, admin, exitOK, `"api_key":"aiaas_secret"`, "", ""},
		{[]string{"tenant", "create", "acme", "--admin-key", "wrong"}, admin, exitAuth, "", "check AIAAS_KEY", ""},
		{[]string{"tenant", "create", "acme"}, manage, exitUsage, "", "AIAAS_ADMIN_KEY", ""},
		{[]string{"key", "create", "ci", "--scope", "invoke", "--output", "json"}, manage, exitOK, `"api_key":"aiaas_k2"`, "", ""},
		{[]string{"key", "create", "ci", "--scope", "root"}, manage, exitUsage, "", "invoke or manage", ""},
		{[]string{"key", "list"}, manage, exitOK, "k1", "", ""},
		{[]string{"key", "revoke", "k1", "--output", "json"}, manage, exitOK, `"revoked":true`, "", ""},
		{[]string{"key", "revoke", "k9"}, manage, exitNotFound, "", "key not found", ""},
		{[]string{"key", "list"}, invoke, exitAuth, "", "403", ""},
		{[]string{"key", "list", "--key", "revoked"}, manage, exitAuth, "", "check AIAAS_KEY", ""},
		{[]string{"model", "push", "mnist", artifact, "--output", "json"}, manage, exitOK, `"version":3`, "100%", ""},
		{[]string{"model", "push", "mnist", bad}, manage, exitInvalid, "", "not a safetensors artifact", ""},
		{[]string{"model", "push", "mnist", filepath.Join(dir, "missing")}, manage, exitUsage, "", "no such file", ""},
		{[]string{"model", "push", "mnist"}, manage, exitUsage, "", "NAME FILE", ""},
		{[]string{"model", "list"}, manage, exitOK, "prod=1", "", ""},
		{[]string{"model", "list", "--output", "json"}, manage, exitOK, `"latest":2`, "", ""},
		{[]string{"model", "show", "mnist"}, manage, exitOK, "0.9731", "", ""},
		{[]string{"model", "show", "nope", "--output", "json"}, manage, exitNotFound, "", `model "nope" not found`, ""},
		{[]string{"model", "alias", "mnist", "prod", "2", "--canary", "3", "--weight", "10"}, manage, exitOK, "canary version 3 at 10%", "", ""},
		{[]string{"model", "alias", "mnist", "prod", "9"}, manage, exitInvalid, "", "version 9 does not exist", ""},
		{[]string{"model", "alias", "mnist", "prod", "two"}, manage, exitUsage, "", "version number", ""},
		{[]string{"model", "alias", "mnist", "prod", "2", "--weight", "10"}, manage, exitUsage, "", "go together", ""},
		{[]string{"plugin", "push", "png", wasm, "--output", "json"}, manage, exitOK, `"abi_version":1`, "", ""},
		{[]string{"plugin", "push", "png", bad}, manage, exitInvalid, "", `missing export "alloc"`, ""},
		{[]string{"endpoint", "create", "digits", "--model", "mnist", "--version", "prod", "--preprocess", "png", "--postprocess", "top-k"}, manage, exitOK, "endpoint digits created: png -> mnist@prod -> top-k", "", `"postprocess":"top-k"`},
		{[]string{"endpoint", "create", "digits", "--model", "mnist", "--output", "json"}, manage, exitOK, `"model":"mnist"`, "", ""},
		{[]string{"endpoint", "create", "minilm", "--model", "minilm", "--preprocess", "wordpiece", "--postprocess", "pool", "--forward-inputs", "attention_mask"}, manage, exitOK, "", "", `"forward_inputs":["attention_mask"]`},
		{[]string{"endpoint", "create", "gpt2", "--model", "gpt2", "--preprocess", "bpe", "--postprocess", "bpe", "--max-tokens", "32", "--eos", "50256"}, manage, exitOK, "", "", `"generation":{"eos_token_ids":[50256],"max_tokens":32}`},
		{[]string{"endpoint", "create", "digits"}, manage, exitUsage, "", "--model is required", ""},
		{[]string{"endpoint", "list"}, manage, exitOK, "digits", "", ""},
		{[]string{"invoke", "digits", png}, invoke, exitOK, `{"predictions":[{"index":7,"label":"7","score":0.98}]}`, "", "\x89PNG"},
		{[]string{"invoke", "digits", png, "--output", "json"}, invoke, exitOK, `"encoding":"json"`, "", ""},
		{[]string{"invoke", "echo", png, "--output", "json"}, invoke, exitOK, `"body":"AAEC/w=="`, "", ""},
		{[]string{"invoke", "busy", png}, invoke, exitRetry, "", "over quota", ""},
		{[]string{"invoke", "nope", png}, invoke, exitNotFound, "", "endpoint not found", ""},
		{[]string{"infer", "iris", "--data", "[1, 2, 3.5]"}, invoke, exitOK, "sum FP32 [1 1]: [6.5]", "", `"name":"pixels","shape":[1,3]`},
		{[]string{"infer", "iris", "--data", "[[1,2],[3,4]]", "--input", "x", "--output", "json"}, invoke, exitOK, `"model_sha256":"feedbeef"`, "", `"shape":[2,2]`},
		{[]string{"infer", "iris", "--file", reqFile}, invoke, exitOK, "[3.5]", "", `"data":[1.5,2]`},
		{[]string{"infer", "iris", "--data", "[[1,2],[3]]"}, invoke, exitUsage, "", "ragged", ""},
		{[]string{"infer", "iris"}, invoke, exitUsage, "", "exactly one of --data and --file", ""},
		{[]string{"embed", "minilm", "a cat"}, invoke, exitOK, "2 dims", "", `"input":["a cat"]`},
		{[]string{"embed", "minilm", "a cat", "--output", "json"}, invoke, exitOK, `"embedding":[0.6,0.8]`, "", ""},
		{[]string{"embed", "minilm"}, invoke, exitUsage, "", "ENDPOINT TEXT", ""},
		{[]string{"generate", "gpt2", "Once upon a time", "--max-tokens", "8", "--temperature", "0.5", "--seed", "3", "--stop", "."}, invoke, exitOK, " there was a cat", "", `"max_tokens":8,"temperature":0.5,"seed":3,"stop":["."]`},
		{[]string{"generate", "gpt2", "Once", "--stream"}, invoke, exitOK, " there was", "finish: stop", ""},
		{[]string{"generate", "gpt2", "Once", "--output", "json"}, invoke, exitOK, `"finish_reason":"length"`, "", ""},
		{[]string{"generate", "nope", "Once"}, invoke, exitNotFound, "", "endpoint not found", ""},
		{[]string{"generate", "gpt2", "Once", "--temperature", "hot"}, invoke, exitUsage, "", "--temperature", ""},
		{[]string{"job", "submit", "--model", "iris", "--dataset", "iris", "--layers", "16", "--epochs", "50", "--output", "json"}, manage, exitOK, `"status":"queued"`, "", `"layers":[16]`},
		{[]string{"job", "submit", "--model", "iris", "--dataset", "iris", "--wait", "--poll", "1ms"}, manage, exitOK, "published version 4", "epoch 2: loss 0.3000", ""},
		{[]string{"job", "show", "jfail", "--wait", "--poll", "1ms"}, manage, exitFailure, "failed", "dataset has NaN", ""},
		{[]string{"job", "submit", "--model", "iris", "--dataset", "iris", "--layers", "16,x"}, manage, exitUsage, "", "--layers", ""},
		// A recipe: the flags set override it (epochs), the others (the
		// flags' defaults: layers 128,128, batch 32) do not.
		{[]string{"job", "submit", "--model", "cnn", "--dataset", "mnist", "--spec", recipe, "--epochs", "7", "--output", "json"}, manage, exitOK, `"status":"queued"`, "",
			`"model":"cnn","dataset":"mnist","batch_size":64,"epochs":7,"network":{"input_shape":[1,28,28],"layers":[{"type":"conv2d","filters":8,"kernel_size":[3]},{"type":"flatten"},{"type":"dense","units":10}]},"augment":{"shift":2}}`},
		{[]string{"job", "submit", "--model", "cnn", "--dataset", "mnist", "--spec", reqFile}, manage, exitUsage, "", "unknown field", ""},
		{[]string{"audit", "list", "--since", "2026-11-29T00:00:00Z", "--limit", "5"}, manage, exitOK, "models/mnist", "", "limit=5&since=2026-11-29T00%3A00%3A00Z"},
		{[]string{"audit", "list", "--since", "yesterday"}, manage, exitUsage, "", "neither", ""},
		{[]string{"audit", "verify", "--output", "json"}, manage, exitOK, `"ok":true`, "", ""},
		{[]string{"audit", "verify"}, manage, exitOK, "env-b", "", ""},
		{[]string{"audit", "list", "--all", "--output", "json"}, manage, exitOK, `"env-b"`, "", "cursor=c2"},
		{[]string{"model", "list"}, map[string]string{"AIAAS_URL": deadURL, "AIAAS_KEY": "manage-key"}, exitUnreachable, "", "is the server running? start it with 'aiaas serve' or set AIAAS_URL", ""},
		{[]string{"model", "list", "--url", "not a url"}, manage, exitUsage, "", "bad server URL", ""},
	} {
		f.mu.Lock()
		f.polls, f.lastBody = 0, nil
		f.mu.Unlock()
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, &stdout, &stderr, clientEnv(tc.env))
		name := strings.Join(tc.args, " ")
		if code != tc.code {
			t.Errorf("case %d (%s): exit %d, want %d; stderr %q", i, name, code, tc.code, stderr.String())
		}
		if !strings.Contains(stdout.String(), tc.stdout) {
			t.Errorf("case %d (%s): stdout %q, want it to contain %q", i, name, stdout.String(), tc.stdout)
		}
		if !strings.Contains(stderr.String(), tc.stderr) {
			t.Errorf("case %d (%s): stderr %q, want it to contain %q", i, name, stderr.String(), tc.stderr)
		}
		if tc.code == exitOK && strings.Contains(name, "--output json") {
			var obj map[string]any
			dec := json.NewDecoder(&stdout)
			if err := dec.Decode(&obj); err != nil || dec.More() {
				t.Errorf("case %d (%s): stdout is not exactly one JSON object: %v", i, name, err)
			}
		}
		if tc.code != exitOK && strings.Contains(name, "--output json") && stdout.Len() != 0 {
			t.Errorf("case %d (%s): failure printed to stdout: %q", i, name, stdout.String())
		}
		if tc.lastBody != "" {
			f.mu.Lock()
			got := string(f.lastBody)
			f.mu.Unlock()
			if !strings.Contains(got, tc.lastBody) {
				t.Errorf("case %d (%s): server got %q, want it to contain %q", i, name, got, tc.lastBody)
			}
		}
	}

	// A broken chain exits 1 and says why.
	f.mu.Lock()
	f.auditOK = false
	f.mu.Unlock()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"audit", "verify"}, &stdout, &stderr, clientEnv(manage)); code != exitFailure ||
		!strings.Contains(stdout.String(), "seq 4: hash mismatch") || !strings.Contains(stderr.String(), "audit chain broken") {
		t.Errorf("broken audit: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}

// TestClientCommandsHelp checks that every client command has --help with
// an example.
func TestClientCommandsHelp(t *testing.T) {
	for _, c := range commands {
		if !isClientCommand(c.name) {
			continue
		}
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append(strings.Fields(c.name), "--help"), &stdout, &stderr, clientEnv(nil))
		if code != exitOK || !strings.Contains(stdout.String(), "Examples:\n  aiaas") && !strings.Contains(stdout.String(), "Examples:\n  AIAAS") {
			t.Errorf("%s --help: exit %d, output %q", c.name, code, stdout.String())
		}
		if !strings.Contains(stdout.String(), "-url") {
			t.Errorf("%s --help lacks --url", c.name)
		}
	}
}

func isClientCommand(name string) bool {
	for _, p := range []string{"tenant ", "key ", "model push", "model list", "model show", "model alias", "plugin ", "dataset ", "endpoint ", "invoke", "infer", "job ", "audit ", "evaluate", "evaluation "} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func TestParseTensor(t *testing.T) {
	for i, tc := range []struct {
		in    string
		shape string
		ok    bool
	}{
		{`[1,2,3]`, "[1 3]", true},
		{`[[1,2],[3,4],[5,6]]`, "[3 2]", true},
		{`[[[1],[2]]]`, "[1 2 1]", true},
		{`[]`, "", false},
		{`[[1,2],[3]]`, "", false},
		{`[1,[2]]`, "", false},
		{`[[1],[[2]]]`, "", false},
		{`[[1],2]`, "", false},
		{`["a"]`, "", false},
		{`[1] [2]`, "", false},
		{`{"a":1}`, "", false},
		{strings.Repeat("[", 20) + "1" + strings.Repeat("]", 20), "", false},
	} {
		vals, shape, err := parseTensor(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("case %d (%s): err %v", i, tc.in, err)
			continue
		}
		if tc.ok {
			n := int64(1)
			for _, d := range shape {
				n *= d
			}
			if fmt.Sprint(shape) != tc.shape || n != int64(len(vals)) {
				t.Errorf("case %d (%s): shape %v, %d values", i, tc.in, shape, len(vals))
			}
		}
	}
}

func FuzzParseTensor(f *testing.F) {
	for _, s := range []string{`[1,2,3]`, `[[1,2],[3,4]]`, `[[1],[[2]]]`, `[1e400]`, `[[[]]]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		vals, shape, err := parseTensor(s)
		if err != nil {
			return
		}
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		if n != int64(len(vals)) || len(shape) < 2 {
			t.Fatalf("%q: shape %v with %d values", s, shape, len(vals))
		}
	})
}

// TestCommandTable: every command in the table once, each with a name, a
// summary and a run, so the table is the whole CLI.
func TestCommandTable(t *testing.T) {
	seen := map[string]bool{}
	for i, c := range commands {
		switch {
		case c == nil:
			t.Fatalf("commands[%d] is nil", i)
		case c.name == "" || c.summary == "" || c.setup == nil:
			t.Errorf("commands[%d] %q lacks a name, summary or setup", i, c.name)
		case seen[c.name]:
			t.Errorf("%q is in the table twice", c.name)
		}
		seen[c.name] = true
	}
	for _, want := range []string{"serve", "train", "model push", "invoke", "evaluate", "audit verify"} {
		if !seen[want] {
			t.Errorf("%q is missing from the table", want)
		}
	}
}
