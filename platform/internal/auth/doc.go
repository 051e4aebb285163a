// Package auth decides who a request acts as: it resolves a presented API
// key to a [Principal], keeps the API-key records, and says whether a
// principal may use a route of a given [Access] class.
//
// # Overview
//
// An [Authenticator] checks a key against the operator's admin key hash
// and the key records of the store, through a short-lived cache: a warm
// request costs no store read. Known and unknown keys are cached apart,
// so a flood of guessed keys never pushes out real tenants' keys, and a
// [Guard] bounds, per client address, the store reads spent on keys that
// turn out not to exist.
//
// # Revocation
//
// [Authenticator.Revoke] (and [Authenticator.Forget] for a record changed
// elsewhere) takes effect in this process at once: a lookup that read the
// key's record before the revocation and finishes after it never puts the
// old record back in the cache (internal/cache's forgetting wins against
// loads in flight). Other processes see it within [CacheTTL].
//
// # What this package must not do
//
// It knows nothing of HTTP: no requests, headers or statuses. It returns
// errors wrapping [ErrUnauthenticated], [ErrForbidden], [ErrThrottled],
// [ErrKeyLimit] or the store's sentinels (modelstore.ErrNotFound), whose
// messages are written for the client, and the platform's one status
// table turns them into 401, 403, 429, 409 and 404. It never stores or
// logs a key, only its hash.
package auth
