package platform

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/plugins"
)

// TestStatusOf: the status every sentinel maps to, through wrapping, and
// the platform's own not-found tests as the store's does.
func TestStatusOf(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
	}{
		{modelstore.ErrNotFound, 404},
		{modelstore.ErrExists, 409},
		{modelstore.ErrInvalidName, 400},
		{modelstore.ErrTooLarge, 413},
		{modelstore.ErrUnavailable, 503},
		{modelstore.ErrCorrupt, 500},
		{modelstore.ErrExpired, 410},
		{modelstore.ErrIncomplete, 400},
		{plugins.ErrInvalidModule, 400},
		{plugins.ErrPluginError, 422},
		{plugins.ErrLimit, 422},
		{plugins.ErrBusy, 503},
		{plugins.ErrTimeout, 504},
		{plugins.ErrTrap, 502},
		{plugins.ErrClosed, 503},
		{errors.New("anything else"), 500},
		{httpErr(http.StatusTeapot, "own status"), 418},
		{wrapStatus(http.StatusConflict, modelstore.ErrNotFound), 409}, // an *Error's own status wins
	} {
		if got := statusOf(fmt.Errorf("context: %w", c.err)); got != c.want {
			t.Errorf("statusOf(%v) = %d, want %d", c.err, got, c.want)
		}
	}
	nf := notFound("model %q not found", "m")
	if !errors.Is(nf, modelstore.ErrNotFound) || statusOf(nf) != 404 || nf.Error() != `model "m" not found` {
		t.Fatalf("notFound: %v, errors.Is %v, status %d", nf, errors.Is(nf, modelstore.ErrNotFound), statusOf(nf))
	}
}
