// Package registry holds the model registry's mechanics: what a version
// records beside its weights at publish ([Meta], made by [Describe] and
// encoded within the store's bound by [MarshalMeta]), and how a ref the
// client gives — "", "latest", a version number or an alias — becomes a
// version ([Registry.Resolve]), with the rules an alias must keep
// ([CheckAliasName], [Registry.CheckAlias]).
//
// # Refs and their cache
//
// Serving a warm model reads nothing from the store: a model's versions
// and aliases ([Refs]) are cached for [RefTTL], so an alias moved by
// another process is seen everywhere within it. A publish or an alias
// move in this process calls [Registry.Forget], which wins over a load in
// flight, so this process sees its own change at once. While the store is
// unavailable, a model resolved before keeps its last refs; a new one
// fails fast with the store's error.
//
// A split alias (a canary) sends its weight's percentage of requests to
// the canary version, sticky per request id, so a retried request lands
// on the same side.
//
// # Decoded models
//
// A [ModelCache] keeps decoded versions warm within a byte bound, one
// load per version when many requests miss at once. The platform's
// loader reads, verifies and decodes the artifact and builds its
// batchers; the cache returns how each lookup went ([Lookup]) for the
// platform's metrics to count.
//
// # What this package must not do
//
// It knows nothing of HTTP, tenants' keys, audit or metrics, and it
// neither decodes nor serves models. It returns
// sentinel errors with messages written for the client: the not-found
// ones ([ErrNoSuchModel], [ErrNoSuchVersion], [ErrNoSuchAlias]) wrap
// modelstore.ErrNotFound, and the platform's status table turns
// [ErrInvalidRef], [ErrInvalidAlias] and [ErrInvalidArtifact] into 400s.
// It reads a model's versions and aliases through the small [Store] it
// needs and never writes: publishing and moving aliases stay with the
// platform, which calls Forget after each.
package registry
