package nn

import (
	"context"
	"fmt"
)

// Attribution methods accepted by Attribute.
const (
	AttrGradientXInput      = "gradient_x_input"
	AttrIntegratedGradients = "integrated_gradients"
)

// Limits of Attribute: steps default to DefaultIGSteps and are capped at
// MaxIGSteps, since each step is a forward and a backward pass.
const (
	DefaultIGSteps = 50
	MaxIGSteps     = 1024
	igChunk        = 64      // interpolation points per forward/backward pass
	igBudgetFloats = 1 << 20 // workspace bound per call (4 MiB), for wide models
)

// Attribute explains output target of the model for one sample x
// (InputDim values) and returns one attribution per input feature.
//
// "gradient_x_input" is x ⊙ ∂f_target/∂x. "integrated_gradients" (Sundararajan
// et al., 2017) integrates the gradient along the straight line from the zero
// baseline to x with the midpoint rule over steps points (0 means
// DefaultIGSteps), so the attributions sum to about f_target(x) − f_target(0)
// (completeness). f_target is the model's output after its last activation,
// e.g. a softmax probability. Dropout is off.
//
// Bad sizes, targets or step counts return errors wrapping ErrShape or
// ErrSpec; ctx is checked between chunks of steps. Attribute is
// goroutine-safe.
func (m *Model) Attribute(ctx context.Context, x []float32, target int, method string, steps int) ([]float32, error) {
	if err := m.checkX(x, 1); err != nil {
		return nil, err
	}
	if target < 0 || target >= m.out {
		return nil, fmt.Errorf("%w: target %d outside [0, %d)", ErrShape, target, m.out)
	}
	switch method {
	case AttrGradientXInput:
		steps = 1
	case AttrIntegratedGradients:
		if steps == 0 {
			steps = DefaultIGSteps
		}
		if steps < 1 || steps > MaxIGSteps {
			return nil, specErr("integrated gradients: steps %d outside [1, %d]", steps, MaxIGSteps)
		}
	default:
		return nil, specErr("unknown attribution method %q", method)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	chunk := max(1, min(steps, igChunk, igBudgetFloats/m.wsFloatsPerRow()))
	ws := m.newWorkspace(chunk)
	in := make([]float32, chunk*m.in)
	sum := make([]float64, m.in)
	for lo := 0; lo < steps; lo += chunk {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rows := min(chunk, steps-lo)
		for r := 0; r < rows; r++ {
			alpha := float32(1)
			if method == AttrIntegratedGradients {
				alpha = (float32(lo+r) + 0.5) / float32(steps)
			}
			row := in[r*m.in : (r+1)*m.in]
			for j, v := range x {
				row[j] = alpha * v
			}
		}
		m.forwardTrain(ws, in, rows, nil)
		d := ws.d0[:rows*m.out]
		clear(d)
		for r := 0; r < rows; r++ {
			d[r*m.out+target] = 1
		}
		dx := m.backward(ws, d, rows, false, nil, true)
		for r := 0; r < rows; r++ {
			for j, v := range dx[r*m.in : (r+1)*m.in] {
				sum[j] += float64(v)
			}
		}
	}
	out := make([]float32, m.in)
	for j, v := range x {
		out[j] = float32(float64(v) * sum[j] / float64(steps))
	}
	return out, nil
}
