package graph

import (
	"fmt"
	"slices"
	"sort"
)

// buildFunc plans one node for one set of input types and shapes: it
// checks the node's attributes and inputs, sets every output's type and
// shape, and either sets the outputs' values (Shape, or anything computed
// from constants) or gives the kernel that computes them at run time.
type buildFunc func(b *builder)

// kernelFunc computes a node's outputs from its inputs. Shapes were
// checked when the plan was built, and out tensors have their final shape
// and storage; k holds the step's scratch and state. It returns an error
// only for what depends on input data (an index out of range), never
// panics, and allocates nothing.
type kernelFunc func(in, out []*Tensor, k *kctx) error

// kctx is what one run of a step has of its own: scratch bytes (as many
// as the builder asked for, valid during the call only) and the state
// the builder's newState made for this exec (reused by every run of the
// plan in that exec, never by two runs at once).
type kctx struct {
	scratch []byte
	state   any
}

// opVersion is the builder of one operator from one opset version until
// the next registered version.
type opVersion struct {
	since int
	build buildFunc
}

// registry maps an operator type to its versions, ascending by since. It
// is written only by package init.
var registry = map[string][]opVersion{}

// register adds the builder of op for opsets from since on. Operators
// whose semantics changed are registered once per version that changed
// them, so an opset variant is one registration, as in ONNX Runtime.
func register(op string, since int, f buildFunc) {
	vs := append(registry[op], opVersion{since: since, build: f})
	sort.Slice(vs, func(i, j int) bool { return vs[i].since < vs[j].since })
	registry[op] = vs
}

// lookupOp returns the builder of op at opset.
func lookupOp(op string, opset int) (buildFunc, error) {
	vs := registry[op]
	for i := len(vs) - 1; i >= 0; i-- {
		if vs[i].since <= opset {
			return vs[i].build, nil
		}
	}
	if len(vs) > 0 {
		return nil, fmt.Errorf("%w: operator %s at opset %d (aiaas implements it from opset %d)", ErrUnsupported, printable(op), opset, vs[0].since)
	}
	return nil, fmt.Errorf("%w: operator %s (opset %d) is not implemented", ErrUnsupported, printable(op), opset)
}

// Operators lists the operator types the runtime implements, with the
// first opset of each version registered, for documentation and the CLI.
// Internal fused operators are not listed.
func Operators() map[string][]int {
	out := map[string][]int{}
	for op, vs := range registry {
		if isInternal(op) {
			continue
		}
		for _, v := range vs {
			out[op] = append(out[op], v.since)
		}
		slices.Sort(out[op])
	}
	return out
}

// internalPrefix marks the fused operators that only Load creates; an
// artifact may not name them.
const internalPrefix = "aiaas."

func isInternal(op string) bool {
	return len(op) > len(internalPrefix) && op[:len(internalPrefix)] == internalPrefix
}
