package registry

import (
	"context"
	"regexp"

	"github.com/aiaas/aiaas/modelstore"
)

var aliasRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// CheckAliasName checks an alias's name: 1-32 characters of a-z 0-9 _ -,
// starting with a letter, so that it never reads as a version number;
// "latest" is reserved for the highest version. A bad name is
// [ErrInvalidAlias].
func CheckAliasName(alias string) error {
	if !aliasRE.MatchString(alias) || alias == "latest" {
		return errorf(ErrInvalidAlias, "invalid alias %q: 1-32 characters of a-z 0-9 _ -, starting with a letter; \"latest\" is reserved", truncate(alias, 40))
	}
	return nil
}

// CheckAlias checks that a's weights make sense ([ErrInvalidAlias] when
// they do not) and that its versions are published; it reads the store,
// not the cache, so a version published a moment ago by another process
// counts. A missing model or version wraps modelstore.ErrNotFound.
func (r *Registry) CheckAlias(ctx context.Context, tenant, model string, a modelstore.Alias) error {
	if a.Version < 1 {
		return errorf(ErrInvalidAlias, "\"version\" must be a published version number (1, 2, …)")
	}
	if a.CanaryWeight < 0 || a.CanaryWeight > 100 {
		return errorf(ErrInvalidAlias, "\"canary_weight\" must be between 0 and 100")
	}
	if (a.CanaryVersion == 0) != (a.CanaryWeight == 0) {
		return errorf(ErrInvalidAlias, "set both \"canary_version\" and \"canary_weight\", or neither")
	}
	vs, err := r.st.Versions(ctx, tenant, model)
	if err != nil {
		return modelNotFound(err, model)
	}
	has := map[int]bool{}
	for _, v := range vs {
		has[v.Version] = true
	}
	for _, v := range []int{a.Version, a.CanaryVersion} {
		if v != 0 && !has[v] {
			return errorf(ErrNoSuchVersion, "model %q has no version %d", model, v)
		}
	}
	return nil
}
