package registry_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/platform/internal/registry"
)

// fakeStore holds one tenant's models in memory and counts its reads.
type fakeStore struct {
	versions map[string][]modelstore.VersionInfo
	aliases  map[string]map[string]modelstore.Alias
	reads    atomic.Int32
	down     bool
}

func (f *fakeStore) Versions(_ context.Context, _, model string) ([]modelstore.VersionInfo, error) {
	f.reads.Add(1)
	if f.down {
		return nil, fmt.Errorf("dial: %w", modelstore.ErrUnavailable)
	}
	vs, ok := f.versions[model]
	if !ok {
		return nil, fmt.Errorf("models/%s: %w", model, modelstore.ErrNotFound)
	}
	return vs, nil
}

func (f *fakeStore) Aliases(_ context.Context, _, model string) (map[string]modelstore.Alias, error) {
	return f.aliases[model], nil
}

func newStore() *fakeStore {
	return &fakeStore{
		versions: map[string][]modelstore.VersionInfo{
			"mnist": {{Version: 1, SHA256: "a"}, {Version: 2, SHA256: "b"}, {Version: 3, SHA256: "c"}},
		},
		aliases: map[string]map[string]modelstore.Alias{
			"mnist": {"prod": {Version: 2}, "split": {Version: 1, CanaryVersion: 3, CanaryWeight: 50}},
		},
	}
}

// TestResolve: each form of ref, and each failure with the message the
// client has always read and the sentinel the platform maps.
func TestResolve(t *testing.T) {
	ctx := context.Background()
	r := registry.New(newStore())
	for _, c := range []struct {
		ref     string
		version int
		alias   string
	}{{"", 3, ""}, {"latest", 3, ""}, {"1", 1, ""}, {"prod", 2, "prod"}} {
		res, err := r.Resolve(ctx, "t", "mnist", c.ref, "")
		if err != nil || res.Version != c.version || res.Alias != c.alias || res.Side != "" || res.Info.Version != c.version {
			t.Errorf("%q: %+v, %v", c.ref, res, err)
		}
	}
	for _, c := range []struct {
		model, ref, msg string
		is              error
	}{
		{"nope", "", `model "nope" not found`, registry.ErrNoSuchModel},
		{"mnist", "9", `model "mnist" has no version 9`, registry.ErrNoSuchVersion},
		{"mnist", "staging", `model "mnist" has no version or alias "staging"`, registry.ErrNoSuchAlias},
		{"mnist", "0", `invalid version "0"`, registry.ErrInvalidRef},
		{"mnist", "1x", `invalid version "1x"`, registry.ErrInvalidRef},
	} {
		_, err := r.Resolve(ctx, "t", c.model, c.ref, "")
		if err == nil || err.Error() != c.msg || !errors.Is(err, c.is) {
			t.Errorf("%s@%q: %v", c.model, c.ref, err)
		}
		if notFound := c.is != registry.ErrInvalidRef; errors.Is(err, modelstore.ErrNotFound) != notFound {
			t.Errorf("%s@%q: wraps ErrNotFound = %v", c.model, c.ref, !notFound)
		}
	}
}

// TestResolveCanary: a split alias is sticky per key, sends about its
// weight to the canary, and ResolvePrimary always means the primary.
func TestResolveCanary(t *testing.T) {
	ctx := context.Background()
	r := registry.New(newStore())
	canary := 0
	for i := range 1000 {
		key := fmt.Sprint("req-", i)
		a, err := r.Resolve(ctx, "t", "mnist", "split", key)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := r.Resolve(ctx, "t", "mnist", "split", key)
		if a.Version != b.Version || a.Side != b.Side {
			t.Fatalf("%s: %+v then %+v", key, a, b)
		}
		switch a.Side {
		case "canary":
			canary++
			if a.Version != 3 {
				t.Fatalf("canary side at version %d", a.Version)
			}
		case "primary":
			if a.Version != 1 {
				t.Fatalf("primary side at version %d", a.Version)
			}
		default:
			t.Fatalf("side %q", a.Side)
		}
	}
	if canary < 400 || canary > 600 {
		t.Errorf("%d of 1000 on the canary at weight 50", canary)
	}
	res, err := r.ResolvePrimary(ctx, "t", "mnist", "split")
	if err != nil || res.Version != 1 || res.Side != "" || res.Alias != "split" {
		t.Errorf("primary: %+v, %v", res, err)
	}
}

// TestRefsCache: warm resolves read nothing; Forget makes a new version
// visible at once; an unavailable store keeps serving the last refs.
func TestRefsCache(t *testing.T) {
	ctx := context.Background()
	st := newStore()
	r := registry.New(st)
	if _, err := r.Resolve(ctx, "t", "mnist", "prod", ""); err != nil {
		t.Fatal(err)
	}
	n := st.reads.Load()
	for range 10 {
		r.Resolve(ctx, "t", "mnist", "prod", "")
	}
	if st.reads.Load() != n {
		t.Errorf("%d store reads on warm resolves", st.reads.Load()-n)
	}
	st.versions["mnist"] = append(st.versions["mnist"], modelstore.VersionInfo{Version: 4})
	r.Forget("t", "mnist")
	refs, err := r.Refs(ctx, "t", "mnist")
	if err != nil || refs.Latest != 4 || len(refs.VersionList()) != 4 || refs.VersionList()[3] != "4" {
		t.Fatalf("after Forget: %+v, %v", refs, err)
	}
	st.down = true
	if _, err := r.Refs(ctx, "t", "mnist"); err != nil {
		t.Errorf("cached refs while the store is down: %v", err)
	}
	if _, err := r.Refs(ctx, "t", "other"); !errors.Is(err, modelstore.ErrUnavailable) {
		t.Errorf("a new model while the store is down: %v", err)
	}
}

// TestAliasRules: names and weights that break the rules are
// ErrInvalidAlias; versions that were never published are not found.
func TestAliasRules(t *testing.T) {
	for _, name := range []string{"latest", "1prod", "Prod", "", "a-very-long-alias-name-of-more-than-32"} {
		if err := registry.CheckAliasName(name); !errors.Is(err, registry.ErrInvalidAlias) {
			t.Errorf("%q: %v", name, err)
		}
	}
	if err := registry.CheckAliasName("prod_2-b"); err != nil {
		t.Error(err)
	}
	ctx := context.Background()
	r := registry.New(newStore())
	for _, a := range []modelstore.Alias{{}, {Version: 1, CanaryWeight: 101, CanaryVersion: 2}, {Version: 1, CanaryVersion: 2}, {Version: 1, CanaryWeight: 5}} {
		if err := r.CheckAlias(ctx, "t", "mnist", a); !errors.Is(err, registry.ErrInvalidAlias) {
			t.Errorf("%+v: %v", a, err)
		}
	}
	if err := r.CheckAlias(ctx, "t", "mnist", modelstore.Alias{Version: 1, CanaryVersion: 7, CanaryWeight: 5}); err == nil || err.Error() != `model "mnist" has no version 7` || !errors.Is(err, modelstore.ErrNotFound) {
		t.Errorf("missing canary version: %v", err)
	}
	if err := r.CheckAlias(ctx, "t", "nope", modelstore.Alias{Version: 1}); err == nil || err.Error() != `model "nope" not found` || !errors.Is(err, registry.ErrNoSuchModel) {
		t.Errorf("missing model: %v", err)
	}
	if err := r.CheckAlias(ctx, "t", "mnist", modelstore.Alias{Version: 3, CanaryVersion: 1, CanaryWeight: 10}); err != nil {
		t.Error(err)
	}
}

// TestDescribeRefusesNonModels: a body that is not an artifact is
// ErrInvalidArtifact and keeps the decoder's message.
func TestDescribeRefusesNonModels(t *testing.T) {
	_, err := registry.Describe([]byte("not a model"))
	if !errors.Is(err, registry.ErrInvalidArtifact) || err.Error() == "" || strings.HasPrefix(err.Error(), "registry:") {
		t.Errorf("%v", err)
	}
}
