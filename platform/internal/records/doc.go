// Package records keeps a tenant's small configuration records: the
// endpoints that bind a model ref to plugins, and the records of uploaded
// plugin modules. It is what the endpoint and plugin routes, invoke and
// the text routes read on every request.
//
// # Overview
//
// [Records] reads, writes, lists and deletes [Endpoint] and [Plugin]
// records through the small [Store] it needs, and keeps what it read in a
// short-lived cache ([DefaultTTL]) so a warm invoke reads nothing from the
// store; a missing record is cached too. A write or delete made through
// [Records] is seen by this process at once: a read that started before
// it and finishes after it never puts the old record back (internal/cache's
// forgetting wins against loads in flight). Other processes see it within
// the cache's TTL.
//
// [CheckEndpoint] holds the bounds of an endpoint's own fields; the
// platform checks names, resolves the model and looks up the plugins.
//
// # What this package must not do
//
// It knows nothing of HTTP, plugins or models: it neither validates nor
// runs a module (the platform does, through plugins.Host) and stores no
// blobs. It returns errors wrapping [ErrInvalid] or the store's sentinels
// (modelstore.ErrNotFound), whose messages are written for the client,
// and the platform's one status table turns them into 400 and 404. The
// records' JSON is what other processes and clients read: a field's name
// never changes here.
package records
