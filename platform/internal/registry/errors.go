package registry

import (
	"errors"
	"fmt"

	"github.com/aiaas/aiaas/modelstore"
)

// The registry's sentinel errors. Every error it returns for a name the
// client gave wraps one of them, with a message written for the client;
// the platform's status table turns them into statuses. The not-found
// ones wrap modelstore.ErrNotFound, so callers test every not-found alike,
// with errors.Is, and a missing model answers exactly as another tenant's.
var (
	// ErrNoSuchModel is a model without published versions (or another
	// tenant's).
	ErrNoSuchModel = fmt.Errorf("registry: no such model: %w", modelstore.ErrNotFound)
	// ErrNoSuchVersion is a version number the model never published.
	ErrNoSuchVersion = fmt.Errorf("registry: no such version: %w", modelstore.ErrNotFound)
	// ErrNoSuchAlias is a ref that is neither a number nor one of the
	// model's aliases.
	ErrNoSuchAlias = fmt.Errorf("registry: no such alias: %w", modelstore.ErrNotFound)
	// ErrInvalidRef is a ref that starts as a number but is not a
	// version number (1, 2, …).
	ErrInvalidRef = errors.New("registry: invalid version ref")
	// ErrInvalidAlias is an alias name, or an alias's versions and
	// weights, that break the alias rules ([CheckAliasName], [CheckAlias]).
	ErrInvalidAlias = errors.New("registry: invalid alias")
	// ErrInvalidArtifact is an upload that is not a model artifact of
	// either architecture; it also wraps the decoder's error.
	ErrInvalidArtifact = errors.New("registry: invalid model artifact")
)

// clientError is a message for the client that wraps a sentinel (and,
// for a bad artifact, the decoder's error too).
type clientError struct {
	msg      string
	sentinel error
	cause    error
}

func (e *clientError) Error() string { return e.msg }

// Unwrap returns the sentinel and the cause, so errors.Is finds either.
func (e *clientError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.sentinel}
	}
	return []error{e.sentinel, e.cause}
}

func errorf(sentinel error, format string, a ...any) error {
	return &clientError{msg: fmt.Sprintf(format, a...), sentinel: sentinel}
}

// invalidArtifact keeps the decoder's message, as the client has always
// seen it, and marks it as a bad artifact.
func invalidArtifact(err error) error {
	return &clientError{msg: err.Error(), sentinel: ErrInvalidArtifact, cause: err}
}

// truncate bounds a client-given name quoted back in a message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
