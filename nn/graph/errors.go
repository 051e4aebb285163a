package graph

import (
	"errors"
	"fmt"

	"github.com/aiaas/aiaas/nn"
)

// ErrUnsupported reports a well-formed model that uses something this
// runtime does not implement: an operator (named with its opset and the
// node), an attribute value, an element type. It is a client error.
var ErrUnsupported = errors.New("unsupported model")

// errNeedValue is returned by a builder that needs the value of an input
// that is only known per request (a Reshape's shape fed as a graph input):
// the planner then keys its plans on that input's value and retries.
type errNeedValue struct{ name string }

func (e *errNeedValue) Error() string {
	return fmt.Sprintf("the value of %q is needed to plan the graph", printable(e.name))
}

// graphErr reports a malformed or inconsistent graph: a client error that
// wraps nn.ErrArtifact, like any bad artifact.
func graphErr(format string, args ...any) error {
	return fmt.Errorf("%w: graph: %s", nn.ErrArtifact, fmt.Sprintf(format, args...))
}

// shapeErr reports inputs that do not fit the model (wraps nn.ErrShape).
func shapeErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", nn.ErrShape, fmt.Sprintf(format, args...))
}
