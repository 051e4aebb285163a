package platform_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/platform"
	"github.com/aiaas/aiaas/platform/apikey"
)

// The Go API a program embedding the server uses (cmd/aiaas's demo does)
// acts as the HTTP API does, and answers with the store's sentinels.
func TestEmbedderAPI(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	tn, _, err := e.srv.CreateTenant(ctx, "embed")
	if err != nil {
		t.Fatal(err)
	}
	id := tn.ID

	if _, err := e.srv.LatestVersion(ctx, id, "iris"); !errors.Is(err, modelstore.ErrNotFound) {
		t.Errorf("LatestVersion of a missing model: %v, want ErrNotFound", err)
	}
	if _, err := e.srv.Aliases(ctx, id, "iris"); !errors.Is(err, modelstore.ErrNotFound) {
		t.Errorf("Aliases of a missing model: %v, want ErrNotFound", err)
	}
	if _, err := e.srv.Publish(ctx, id, "iris", []byte("not a model")); err == nil {
		t.Error("Publish of garbage: no error")
	}
	for want := 1; want <= 2; want++ {
		info, err := e.srv.Publish(ctx, id, "iris", artifact(t, int64(want)))
		if err != nil || info.Version != want {
			t.Fatalf("Publish %d: %+v %v", want, info, err)
		}
	}
	if v, err := e.srv.LatestVersion(ctx, id, "iris"); err != nil || v != 2 {
		t.Errorf("LatestVersion: %d %v, want 2", v, err)
	}
	if a, err := e.srv.Aliases(ctx, id, "iris"); err != nil || len(a) != 0 {
		t.Errorf("Aliases before any: %v %v", a, err)
	}
	if err := e.srv.SetAlias(ctx, id, "iris", "prod", platform.Alias{Version: 3}); !errors.Is(err, modelstore.ErrNotFound) {
		t.Errorf("SetAlias to a missing version: %v, want ErrNotFound", err)
	}
	if err := e.srv.SetAlias(ctx, id, "iris", "latest", platform.Alias{Version: 1}); err == nil {
		t.Error("SetAlias of the reserved alias latest: no error")
	}
	if err := e.srv.SetAlias(ctx, id, "iris", "prod", platform.Alias{Version: 1}); err != nil {
		t.Fatal(err)
	}
	if a, err := e.srv.Aliases(ctx, id, "iris"); err != nil || a["prod"].Version != 1 {
		t.Errorf("Aliases: %v %v, want prod → 1", a, err)
	}

	if e.srv.PluginsEnabled() {
		t.Error("PluginsEnabled on a server without a plugin runtime")
	}
	if _, err := e.srv.PutPlugin(ctx, id, "p", []byte("\x00asm")); err == nil {
		t.Error("PutPlugin without a plugin runtime: no error")
	}
	if err := e.srv.PutEndpoint(ctx, id, platform.Endpoint{Name: "ep", Model: "nope"}); !errors.Is(err, modelstore.ErrNotFound) {
		t.Errorf("PutEndpoint over a missing model: %v, want ErrNotFound", err)
	}
	if err := e.srv.PutEndpoint(ctx, id, platform.Endpoint{Name: "ep", Model: "iris", Version: "prod"}); err != nil {
		t.Fatal(err)
	}

	key, err := e.srv.CreateKey(ctx, id, "embedder", apikey.ScopeInvoke)
	if err != nil {
		t.Fatal(err)
	}
	if owner, err := e.srv.KeyTenant(ctx, key.Reveal()); err != nil || owner != id {
		t.Errorf("KeyTenant: %q %v, want %q", owner, err, id)
	}
	if _, err := e.srv.KeyTenant(ctx, apikey.New().Reveal()); !errors.Is(err, modelstore.ErrNotFound) {
		t.Errorf("KeyTenant of an unknown key: %v, want ErrNotFound", err)
	}
	if _, err := e.srv.KeyTenant(ctx, "garbage"); !errors.Is(err, modelstore.ErrNotFound) {
		t.Errorf("KeyTenant of a malformed key: %v, want ErrNotFound", err)
	}
	// The endpoint answers through HTTP with the key made here.
	r := e.do("POST", "/v1/endpoints/ep/invoke", key.Reveal(), map[string]any{
		"inputs": []map[string]any{{"name": "input", "shape": []int{1, 4}, "datatype": "FP32", "data": []float32{1, 2, 3, 4}}}})
	if r.status != 200 {
		t.Errorf("invoke: %d %s", r.status, r.body)
	}
}
