package nn

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every error returned by this package wraps exactly one of
// them (or a context error), so the HTTP layer can map them to a status with
// errors.Is: ErrShape and ErrSpec and ErrArtifact are the caller's fault (4xx).
var (
	// ErrShape reports input that does not fit the model: sizes, batch
	// counts, labels outside [0, OutputDim), NaN or infinite training data.
	ErrShape = errors.New("nn: input does not fit the model")
	// ErrSpec reports an invalid network specification or training
	// configuration.
	ErrSpec = errors.New("nn: invalid spec")
	// ErrArtifact reports a malformed or inconsistent model artifact.
	ErrArtifact = errors.New("nn: invalid artifact")
)

// Limits on specs. Specs come from tenants, so every size that turns into an
// allocation is bounded before anything is allocated.
const (
	// MaxLayers is the maximum number of entries in Spec.Layers.
	MaxLayers = 64
	// MaxUnits is the maximum width of any layer, input included.
	MaxUnits = 1 << 16
	// MaxParams is the maximum number of weights and biases of a model
	// (64 Mi parameters, 256 MiB as float32).
	MaxParams = 1 << 26
	// MaxNameLen is the maximum length of a model or tensor name.
	MaxNameLen = 128
)

// Layer types and activations understood by the engine.
const (
	LayerDense   = "dense"
	LayerDropout = "dropout"

	ActLinear  = "linear"
	ActReLU    = "relu"
	ActTanh    = "tanh"
	ActSigmoid = "sigmoid"
	ActSoftmax = "softmax"
)

// DatatypeFP32 is the only tensor datatype of the v1 signatures (Open
// Inference Protocol spelling).
const DatatypeFP32 = "FP32"

// TensorSpec names and types one input or output of a model. Shape uses -1
// for the batch dimension, as in the Open Inference Protocol.
type TensorSpec struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// Layer is one entry of a network. Type is "dense" (Units and Activation;
// an empty Activation means "linear") or "dropout" (Rate in [0, 1), active
// only while training).
type Layer struct {
	Type       string  `json:"type"`
	Units      int     `json:"units,omitempty"`
	Activation string  `json:"activation,omitempty"`
	Rate       float64 `json:"rate,omitempty"`
}

// Spec is the serialisable description of a network: its signatures and its
// layers. In v1 a model has exactly one input of shape [-1, D] and one
// output of shape [-1, K], where K is the width of the last layer.
type Spec struct {
	Name    string       `json:"name,omitempty"`
	Inputs  []TensorSpec `json:"inputs"`
	Outputs []TensorSpec `json:"outputs"`
	Layers  []Layer      `json:"layers"`
}

// MLP returns the spec of a multi-layer perceptron: in inputs, one dense
// layer per entry of hidden with the given activation, and a dense output
// layer of out units with outAct (usually "softmax"). The input is named
// "input" and the output "output". The result still has to pass Validate.
// MLP is a pure function.
func MLP(name string, in int, hidden []int, activation string, out int, outAct string) Spec {
	s := Spec{
		Name:    name,
		Inputs:  []TensorSpec{{Name: "input", Datatype: DatatypeFP32, Shape: []int64{-1, int64(in)}}},
		Outputs: []TensorSpec{{Name: "output", Datatype: DatatypeFP32, Shape: []int64{-1, int64(out)}}},
	}
	for _, h := range hidden {
		s.Layers = append(s.Layers, Layer{Type: LayerDense, Units: h, Activation: activation})
	}
	s.Layers = append(s.Layers, Layer{Type: LayerDense, Units: out, Activation: outAct})
	return s
}

// Validate checks that s is a well-formed v1 spec within the package limits
// (MaxLayers, MaxUnits, MaxParams, MaxNameLen). The error wraps ErrSpec and
// names the field at fault. Validate is goroutine-safe.
func (s Spec) Validate() error {
	_, err := s.plan()
	return err
}

func specErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrSpec, fmt.Sprintf(format, args...))
}

// plan validates s and returns, for each layer, its input and output width.
func (s Spec) plan() ([][2]int, error) {
	if len(s.Name) > MaxNameLen {
		return nil, specErr("name longer than %d bytes", MaxNameLen)
	}
	if len(s.Inputs) != 1 {
		return nil, specErr("want exactly 1 input, have %d", len(s.Inputs))
	}
	if len(s.Outputs) != 1 {
		return nil, specErr("want exactly 1 output, have %d", len(s.Outputs))
	}
	in, err := checkSig("inputs[0]", s.Inputs[0])
	if err != nil {
		return nil, err
	}
	out, err := checkSig("outputs[0]", s.Outputs[0])
	if err != nil {
		return nil, err
	}
	if s.Inputs[0].Name == s.Outputs[0].Name {
		return nil, specErr("input and output share the name %q", s.Inputs[0].Name)
	}
	if len(s.Layers) == 0 {
		return nil, specErr("no layers")
	}
	if len(s.Layers) > MaxLayers {
		return nil, specErr("%d layers, limit %d", len(s.Layers), MaxLayers)
	}
	plan := make([][2]int, len(s.Layers))
	width, params, dense := in, 0, 0
	for i, l := range s.Layers {
		switch l.Type {
		case LayerDense:
			if l.Units < 1 || l.Units > MaxUnits {
				return nil, specErr("layers[%d]: units %d outside [1, %d]", i, l.Units, MaxUnits)
			}
			if _, ok := parseAct(l.Activation); !ok {
				return nil, specErr("layers[%d]: unknown activation %q", i, l.Activation)
			}
			if l.Rate != 0 {
				return nil, specErr("layers[%d]: rate set on a dense layer", i)
			}
			params += width*l.Units + l.Units // both ≤ 2^16: no overflow
			if params > MaxParams {
				return nil, specErr("more than %d parameters", MaxParams)
			}
			plan[i] = [2]int{width, l.Units}
			width = l.Units
			dense++
		case LayerDropout:
			if !(l.Rate >= 0 && l.Rate < 1) {
				return nil, specErr("layers[%d]: dropout rate %v outside [0, 1)", i, l.Rate)
			}
			if l.Units != 0 || l.Activation != "" {
				return nil, specErr("layers[%d]: units or activation set on a dropout layer", i)
			}
			plan[i] = [2]int{width, width}
		default:
			return nil, specErr("layers[%d]: unknown type %q", i, l.Type)
		}
	}
	if dense == 0 {
		return nil, specErr("no dense layer")
	}
	if width != out {
		return nil, specErr("output shape [-1, %d] but the last layer has %d units", out, width)
	}
	return plan, nil
}

func checkSig(field string, t TensorSpec) (int, error) {
	if t.Name == "" || len(t.Name) > MaxNameLen {
		return 0, specErr("%s: name must have 1 to %d bytes", field, MaxNameLen)
	}
	if strings.ContainsFunc(t.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return 0, specErr("%s: name has control characters", field)
	}
	if t.Datatype != DatatypeFP32 {
		return 0, specErr("%s: datatype %q, want %q", field, t.Datatype, DatatypeFP32)
	}
	if len(t.Shape) != 2 || t.Shape[0] != -1 {
		return 0, specErr("%s: shape %v, want [-1, N]", field, t.Shape)
	}
	if t.Shape[1] < 1 || t.Shape[1] > MaxUnits {
		return 0, specErr("%s: width %d outside [1, %d]", field, t.Shape[1], MaxUnits)
	}
	return int(t.Shape[1]), nil
}

// clone returns a deep copy, so a Model never shares slices with its caller.
func (s Spec) clone() Spec {
	c := s
	c.Inputs = cloneSigs(s.Inputs)
	c.Outputs = cloneSigs(s.Outputs)
	c.Layers = append([]Layer(nil), s.Layers...)
	return c
}

func cloneSigs(ts []TensorSpec) []TensorSpec {
	if ts == nil {
		return nil
	}
	out := make([]TensorSpec, len(ts))
	for i, t := range ts {
		out[i] = t
		out[i].Shape = append([]int64(nil), t.Shape...)
	}
	return out
}
