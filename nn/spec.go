package nn

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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
	// MaxActivation is the maximum number of values of one sample's
	// activation in a convolutional network (C×H×W), input included: 4 Mi
	// floats, 16 MiB, e.g. 64 channels of 256×256.
	MaxActivation = 1 << 22
	// MaxSide is the maximum height or width of an image input, and
	// MaxKernel the maximum side of a convolution or pooling window.
	MaxSide   = 1 << 12
	MaxKernel = 64
)

// Layer types and activations understood by the engine.
const (
	LayerDense   = "dense"
	LayerDropout = "dropout"
	// Layers of convolutional networks. Activations are NCHW: a sample is
	// C×H×W values, channel by channel, as in ONNX and PyTorch.
	LayerConv2D    = "conv2d"
	LayerMaxPool2D = "maxpool2d"
	LayerAvgPool2D = "avgpool2d"
	LayerGlobalAvg = "global_avgpool2d"
	LayerBatchNorm = "batchnorm"
	LayerFlatten   = "flatten"
	PaddingValid   = "valid"
	PaddingSame    = "same"

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

// Layer is one entry of a network. The fields each type uses, named as in
// Keras:
//
//   - "dense": Units and Activation (empty means "linear"). Its input must
//     be flat: after "flatten" or "global_avgpool2d" in a convolutional
//     network.
//   - "dropout": Rate in [0, 1), active only while training.
//   - "conv2d": Filters, KernelSize, Strides (default 1), Padding ("valid",
//     the default, or "same": output side ⌈in/stride⌉, the extra padding
//     at the bottom and right as in Keras), DilationRate (default 1) and
//     Activation (softmax excepted).
//   - "maxpool2d", "avgpool2d": PoolSize, Strides (default PoolSize) and
//     Padding; "same" padding is never part of a window (average over the
//     values inside only, as Keras).
//   - "global_avgpool2d": the mean of each channel; output flat [C].
//   - "batchnorm": per channel (per feature after flatten), with running
//     statistics updated as r ← Momentum·r + (1−Momentum)·batch (default
//     0.99) and Epsilon (default 1e-3), the Keras defaults.
//   - "flatten": NCHW to flat C·H·W, channel-major (ONNX and PyTorch order,
//     not Keras's channels-last).
//
// Sizes given as one number apply to both sides; two are [height, width].
type Layer struct {
	Type         string  `json:"type"`
	Units        int     `json:"units,omitempty"`
	Activation   string  `json:"activation,omitempty"`
	Rate         float64 `json:"rate,omitempty"`
	Filters      int     `json:"filters,omitempty"`
	KernelSize   Size    `json:"kernel_size,omitempty"`
	Strides      Size    `json:"strides,omitempty"`
	Padding      string  `json:"padding,omitempty"`
	DilationRate Size    `json:"dilation_rate,omitempty"`
	PoolSize     Size    `json:"pool_size,omitempty"`
	Momentum     float64 `json:"momentum,omitempty"`
	Epsilon      float64 `json:"epsilon,omitempty"`
}

// Size is a window size, stride or dilation: [height, width], or one
// value for both. In JSON it is an array or, as in Keras, a plain number.
type Size []int

// UnmarshalJSON reads a number or an array of numbers.
func (s *Size) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = nil
		return nil
	}
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		*s = Size{n}
		return nil
	}
	var v []int
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("want a number or [height, width], have %s", b)
	}
	*s = v
	return nil
}

// Spec is the serialisable description of a network: its signatures and its
// layers. A model has exactly one input, of shape [-1, D] (a dense network)
// or [-1, C, H, W] (a convolutional one), and one output of shape [-1, K],
// where K is the width of the last layer.
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

// shape is one sample's activation: C×H×W values when spatial, else C
// features (H = W = 1).
type shape struct {
	c, h, w int
	spatial bool
}

func (s shape) size() int { return s.c * s.h * s.w }

func (s shape) String() string {
	if s.spatial {
		return fmt.Sprintf("[%d, %d, %d]", s.c, s.h, s.w)
	}
	return fmt.Sprintf("[%d]", s.c)
}

// geom is the window geometry of a convolution or pooling layer.
type geom struct {
	kh, kw, sh, sw, dh, dw int
	pt, pl                 int // padding at the top and left (bottom and right follow from the output size)
}

// layerPlan is one layer's input and output shapes and, for windowed
// layers, its geometry.
type layerPlan struct {
	in, out shape
	g       geom
}

// plan validates s and returns every layer's plan.
func (s Spec) plan() ([]layerPlan, error) {
	if len(s.Name) > MaxNameLen {
		return nil, specErr("name longer than %d bytes", MaxNameLen)
	}
	if len(s.Inputs) != 1 {
		return nil, specErr("want exactly 1 input, have %d", len(s.Inputs))
	}
	if len(s.Outputs) != 1 {
		return nil, specErr("want exactly 1 output, have %d", len(s.Outputs))
	}
	cur, err := checkInput(s.Inputs[0])
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
	plan := make([]layerPlan, len(s.Layers))
	params, dense := 0, 0
	addParams := func(n int) bool { params += n; return params <= MaxParams }
	for i, l := range s.Layers {
		p := layerPlan{in: cur}
		if err := l.checkFields(i); err != nil {
			return nil, err
		}
		switch l.Type {
		case LayerDense:
			if cur.spatial {
				return nil, specErr("layers[%d]: dense on an image %v: add a flatten or global_avgpool2d layer before it", i, cur)
			}
			if l.Units < 1 || l.Units > MaxUnits {
				return nil, specErr("layers[%d]: units %d outside [1, %d]", i, l.Units, MaxUnits)
			}
			if cur.c > MaxUnits {
				return nil, specErr("layers[%d]: dense input of %d features, limit %d", i, cur.c, MaxUnits)
			}
			if !addParams(cur.c*l.Units + l.Units) { // both ≤ 2^16: no overflow
				return nil, specErr("more than %d parameters", MaxParams)
			}
			p.out = shape{c: l.Units, h: 1, w: 1}
			dense++
		case LayerDropout:
			if !(l.Rate >= 0 && l.Rate < 1) {
				return nil, specErr("layers[%d]: dropout rate %v outside [0, 1)", i, l.Rate)
			}
			p.out = cur
		case LayerConv2D, LayerMaxPool2D, LayerAvgPool2D:
			if !cur.spatial {
				return nil, specErr("layers[%d]: %s needs an image input [C, H, W], have %v", i, l.Type, cur)
			}
			g, oh, ow, err := l.window(i, cur)
			if err != nil {
				return nil, err
			}
			p.g = g
			p.out = shape{c: cur.c, h: oh, w: ow, spatial: true}
			if l.Type == LayerConv2D {
				if l.Filters < 1 || l.Filters > MaxUnits {
					return nil, specErr("layers[%d]: filters %d outside [1, %d]", i, l.Filters, MaxUnits)
				}
				if a, _ := parseAct(l.Activation); a == actSoftmax {
					return nil, specErr("layers[%d]: softmax on a convolution", i)
				}
				k := cur.c * g.kh * g.kw // ≤ 2^16·2^12
				if k > MaxParams || !addParams(k*l.Filters+l.Filters) {
					return nil, specErr("more than %d parameters", MaxParams)
				}
				p.out.c = l.Filters
				dense++
			}
		case LayerGlobalAvg:
			if !cur.spatial {
				return nil, specErr("layers[%d]: %s needs an image input [C, H, W], have %v", i, l.Type, cur)
			}
			p.out = shape{c: cur.c, h: 1, w: 1}
		case LayerBatchNorm:
			if !(l.Momentum >= 0 && l.Momentum < 1) {
				return nil, specErr("layers[%d]: momentum %v outside [0, 1)", i, l.Momentum)
			}
			if !(l.Epsilon >= 0 && l.Epsilon <= 1) {
				return nil, specErr("layers[%d]: epsilon %v outside [0, 1]", i, l.Epsilon)
			}
			if !addParams(4 * cur.c) {
				return nil, specErr("more than %d parameters", MaxParams)
			}
			p.out = cur
		case LayerFlatten:
			p.out = shape{c: cur.size(), h: 1, w: 1}
		default:
			return nil, specErr("layers[%d]: unknown type %q", i, l.Type)
		}
		if n := p.out.size(); n < 1 || n > MaxActivation {
			return nil, specErr("layers[%d]: output %v has %d values, want 1 to %d", i, p.out, n, MaxActivation)
		}
		plan[i] = p
		cur = p.out
	}
	if dense == 0 {
		return nil, specErr("no dense or conv2d layer")
	}
	if cur.spatial {
		return nil, specErr("the last layer's output %v is an image: end with flatten or global_avgpool2d and dense", cur)
	}
	if cur.c != out {
		return nil, specErr("output shape [-1, %d] but the last layer has %d units", out, cur.c)
	}
	return plan, nil
}

// checkFields refuses a field the layer's type does not use, so that a
// typo'd spec is not silently trained as something else.
func (l Layer) checkFields(i int) error {
	used := map[string]bool{}
	switch l.Type {
	case LayerGlobalAvg, LayerFlatten:
	case LayerDense:
		used["units"], used["activation"] = true, true
	case LayerDropout:
		used["rate"] = true
	case LayerConv2D:
		used["filters"], used["kernel_size"], used["strides"], used["padding"], used["dilation_rate"], used["activation"] = true, true, true, true, true, true
	case LayerMaxPool2D, LayerAvgPool2D:
		used["pool_size"], used["strides"], used["padding"] = true, true, true
	case LayerBatchNorm:
		used["momentum"], used["epsilon"] = true, true
	default:
		return specErr("layers[%d]: unknown type %q", i, l.Type)
	}
	set := map[string]bool{
		"units": l.Units != 0, "activation": l.Activation != "", "rate": l.Rate != 0,
		"filters": l.Filters != 0, "kernel_size": l.KernelSize != nil, "strides": l.Strides != nil,
		"padding": l.Padding != "", "dilation_rate": l.DilationRate != nil, "pool_size": l.PoolSize != nil,
		"momentum": l.Momentum != 0, "epsilon": l.Epsilon != 0,
	}
	for _, f := range []string{"units", "activation", "rate", "filters", "kernel_size", "strides", "padding", "dilation_rate", "pool_size", "momentum", "epsilon"} {
		if set[f] && !used[f] {
			return specErr("layers[%d]: %q is not a field of a %s layer", i, f, l.Type)
		}
	}
	if used["activation"] {
		if _, ok := parseAct(l.Activation); !ok {
			return specErr("layers[%d]: unknown activation %q", i, l.Activation)
		}
	}
	return nil
}

// pair reads a Keras size argument: one number for both sides or
// [height, width], def when absent, each in [1, limit].
func pair(i int, field string, v []int, def [2]int, limit int) ([2]int, error) {
	switch len(v) {
	case 0:
		if v != nil {
			return def, specErr("layers[%d]: %s is empty", i, field)
		}
		return def, nil
	case 1:
		v = []int{v[0], v[0]}
	case 2:
	default:
		return def, specErr("layers[%d]: %s has %d values, want 1 or 2", i, field, len(v))
	}
	for _, x := range v {
		if x < 1 || x > limit {
			return def, specErr("layers[%d]: %s %v outside [1, %d]", i, field, v, limit)
		}
	}
	return [2]int{v[0], v[1]}, nil
}

// window resolves the geometry of a conv2d or pooling layer on input in.
func (l Layer) window(i int, in shape) (g geom, oh, ow int, err error) {
	var k, st, d [2]int
	if l.Type == LayerConv2D {
		if l.KernelSize == nil {
			return g, 0, 0, specErr("layers[%d]: kernel_size is required", i)
		}
		if k, err = pair(i, "kernel_size", l.KernelSize, [2]int{}, MaxKernel); err != nil {
			return
		}
		if d, err = pair(i, "dilation_rate", l.DilationRate, [2]int{1, 1}, MaxKernel); err != nil {
			return
		}
		if st, err = pair(i, "strides", l.Strides, [2]int{1, 1}, MaxKernel); err != nil {
			return
		}
	} else {
		if k, err = pair(i, "pool_size", l.PoolSize, [2]int{2, 2}, MaxKernel); err != nil {
			return
		}
		d = [2]int{1, 1}
		if st, err = pair(i, "strides", l.Strides, k, MaxKernel); err != nil {
			return
		}
	}
	g = geom{kh: k[0], kw: k[1], sh: st[0], sw: st[1], dh: d[0], dw: d[1]}
	ekh, ekw := (k[0]-1)*d[0]+1, (k[1]-1)*d[1]+1 // the window's extent
	switch l.Padding {
	case "", PaddingValid:
		if ekh > in.h || ekw > in.w {
			return g, 0, 0, specErr("layers[%d]: window %d×%d larger than the input %v", i, ekh, ekw, in)
		}
		oh, ow = (in.h-ekh)/st[0]+1, (in.w-ekw)/st[1]+1
	case PaddingSame:
		oh, ow = (in.h+st[0]-1)/st[0], (in.w+st[1]-1)/st[1]
		g.pt = max(0, (oh-1)*st[0]+ekh-in.h) / 2
		g.pl = max(0, (ow-1)*st[1]+ekw-in.w) / 2
	default:
		return g, 0, 0, specErr("layers[%d]: padding %q, want %q or %q", i, l.Padding, PaddingValid, PaddingSame)
	}
	return g, oh, ow, nil
}

// checkInput reads the input signature: [-1, D] or [-1, C, H, W].
func checkInput(t TensorSpec) (shape, error) {
	if len(t.Shape) != 4 {
		d, err := checkSig("inputs[0]", t)
		return shape{c: d, h: 1, w: 1}, err
	}
	if err := checkName("inputs[0]", t); err != nil {
		return shape{}, err
	}
	if t.Shape[0] != -1 {
		return shape{}, specErr("inputs[0]: shape %v, want [-1, C, H, W]", t.Shape)
	}
	for j, lim := range []int64{MaxUnits, MaxSide, MaxSide} {
		if v := t.Shape[j+1]; v < 1 || v > lim {
			return shape{}, specErr("inputs[0]: shape %v: dimension %d outside [1, %d]", t.Shape, j+1, lim)
		}
	}
	s := shape{c: int(t.Shape[1]), h: int(t.Shape[2]), w: int(t.Shape[3]), spatial: true}
	if s.size() > MaxActivation {
		return shape{}, specErr("inputs[0]: shape %v has more than %d values a sample", t.Shape, MaxActivation)
	}
	return s, nil
}

func checkName(field string, t TensorSpec) error {
	if t.Name == "" || len(t.Name) > MaxNameLen {
		return specErr("%s: name must have 1 to %d bytes", field, MaxNameLen)
	}
	if strings.ContainsFunc(t.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return specErr("%s: name has control characters", field)
	}
	if t.Datatype != DatatypeFP32 {
		return specErr("%s: datatype %q, want %q", field, t.Datatype, DatatypeFP32)
	}
	return nil
}

func checkSig(field string, t TensorSpec) (int, error) {
	if err := checkName(field, t); err != nil {
		return 0, err
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
	c.Layers = make([]Layer, len(s.Layers))
	for i, l := range s.Layers {
		l.KernelSize = slices.Clone(l.KernelSize)
		l.Strides = slices.Clone(l.Strides)
		l.DilationRate = slices.Clone(l.DilationRate)
		l.PoolSize = slices.Clone(l.PoolSize)
		c.Layers[i] = l
	}
	if s.Layers == nil {
		c.Layers = nil
	}
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

// Window is the resolved geometry of a conv2d or pooling layer, in ONNX's
// terms: kernel, strides and dilations as [height, width], and the padding
// of the four sides as ONNX's pads, [top, left, bottom, right].
type Window struct {
	Kernel, Strides, Dilations [2]int
	Pads                       [4]int
}

// LayerShapes returns, for every layer of a valid spec, the shape of one
// sample's output ([C, H, W] or [N]) and, for conv2d and pooling layers,
// its Window (zero for the others). Exporters use it to write what the
// layers compute without re-deriving "same" padding. The error wraps
// ErrSpec.
func (s Spec) LayerShapes() (shapes [][]int, windows []Window, err error) {
	plan, err := s.plan()
	if err != nil {
		return nil, nil, err
	}
	for _, p := range plan {
		if p.out.spatial {
			shapes = append(shapes, []int{p.out.c, p.out.h, p.out.w})
		} else {
			shapes = append(shapes, []int{p.out.c})
		}
		var w Window
		if p.in.spatial && p.out.spatial {
			g := p.g
			w = Window{Kernel: [2]int{g.kh, g.kw}, Strides: [2]int{g.sh, g.sw}, Dilations: [2]int{g.dh, g.dw}}
			if g.kh > 0 {
				ekh, ekw := (g.kh-1)*g.dh+1, (g.kw-1)*g.dw+1
				w.Pads = [4]int{g.pt, g.pl, (p.out.h-1)*g.sh + ekh - p.in.h - g.pt, (p.out.w-1)*g.sw + ekw - p.in.w - g.pl}
				w.Pads[2], w.Pads[3] = max(w.Pads[2], 0), max(w.Pads[3], 0)
			}
		}
		windows = append(windows, w)
	}
	return shapes, windows, nil
}
