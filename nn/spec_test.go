package nn

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestSpecValidate(t *testing.T) {
	ok := MLP("m", 4, []int{8}, "relu", 3, "softmax")
	mut := func(f func(*Spec)) Spec {
		s := ok.clone()
		f(&s)
		return s
	}
	cases := []struct {
		spec Spec
		want string // "" = valid; else a substring of the error
	}{
		{ok, ""},
		{mut(func(s *Spec) { s.Layers = append(s.Layers[:1], Layer{Type: "dropout", Rate: 0.5}, s.Layers[1]) }), ""},
		{mut(func(s *Spec) { s.Layers[0].Activation = "" }), ""}, // linear
		{mut(func(s *Spec) { s.Inputs = nil }), "exactly 1 input"},
		{mut(func(s *Spec) { s.Outputs = append(s.Outputs, s.Outputs[0]) }), "exactly 1 output"},
		{mut(func(s *Spec) { s.Inputs[0].Datatype = "FP64" }), "datatype"},
		{mut(func(s *Spec) { s.Inputs[0].Shape = []int64{1, 4} }), "want [-1, N]"},
		{mut(func(s *Spec) { s.Inputs[0].Shape = []int64{-1, 4, 1} }), "want [-1, N]"},
		{mut(func(s *Spec) { s.Inputs[0].Shape = []int64{-1, 0} }), "width 0"},
		{mut(func(s *Spec) { s.Inputs[0].Shape = []int64{-1, 1 << 40} }), "width"},
		{mut(func(s *Spec) { s.Inputs[0].Name = "" }), "name"},
		{mut(func(s *Spec) { s.Inputs[0].Name = "a\x00b" }), "control"},
		{mut(func(s *Spec) { s.Outputs[0].Name = "input" }), "share the name"},
		{mut(func(s *Spec) { s.Name = strings.Repeat("x", MaxNameLen+1) }), "name longer"},
		{mut(func(s *Spec) { s.Outputs[0].Shape = []int64{-1, 5} }), "last layer has 3 units"},
		{mut(func(s *Spec) { s.Layers = nil }), "no layers"},
		{mut(func(s *Spec) { s.Layers = []Layer{{Type: "dropout", Rate: 0.1}}; s.Outputs[0].Shape[1] = 4 }), "no dense or conv2d layer"},
		{mut(func(s *Spec) { s.Layers[0].Type = "conv3d" }), "unknown type"},
		{mut(func(s *Spec) { s.Layers[0].Type = "conv2d" }), `"units" is not a field of a conv2d layer`},
		{mut(func(s *Spec) { s.Layers[0].Activation = "gelu" }), "unknown activation"},
		{mut(func(s *Spec) { s.Layers[0].Units = 0 }), "units 0"},
		{mut(func(s *Spec) { s.Layers[0].Units = -3 }), "units -3"},
		{mut(func(s *Spec) { s.Layers[0].Units = MaxUnits + 1 }), "units"},
		{mut(func(s *Spec) { s.Layers[0].Rate = 0.5 }), `"rate" is not a field of a dense layer`},
		{mut(func(s *Spec) { s.Layers = append(s.Layers, Layer{Type: "dropout", Rate: 1}) }), "dropout rate 1"},
		{mut(func(s *Spec) { s.Layers = append(s.Layers, Layer{Type: "dropout", Rate: -0.1}) }), "dropout rate"},
		{mut(func(s *Spec) { s.Layers = append(s.Layers, Layer{Type: "dropout", Units: 3}) }), `"units" is not a field of a dropout layer`},
		{mut(func(s *Spec) {
			for len(s.Layers) <= MaxLayers {
				s.Layers = append([]Layer{{Type: "dense", Units: 4}}, s.Layers...)
			}
		}), "layers, limit"},
		{MLP("big", MaxUnits, []int{MaxUnits}, "relu", 1, "linear"), "parameters"},
	}
	for i, c := range cases {
		err := c.spec.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("case %d: unexpected error %v", i, err)
		case c.want != "" && err == nil:
			t.Errorf("case %d: no error, want %q", i, c.want)
		case c.want != "" && (!errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), c.want)):
			t.Errorf("case %d: error %q, want ErrSpec containing %q", i, err, c.want)
		}
		if c.want != "" {
			if _, err := New(c.spec, 1); !errors.Is(err, ErrSpec) {
				t.Errorf("case %d: New error %v, want ErrSpec", i, err)
			}
		}
	}
}

func TestSpecIsCopied(t *testing.T) {
	s := MLP("m", 4, []int{8}, "relu", 3, "softmax")
	m, err := New(s, 1)
	if err != nil {
		t.Fatal(err)
	}
	s.Layers[0].Units = 99
	s.Inputs[0].Shape[1] = 99
	got := m.Spec()
	if got.Layers[0].Units != 8 || got.Inputs[0].Shape[1] != 4 {
		t.Fatalf("model spec aliases the caller's: %+v", got)
	}
	got.Layers[0].Units = 77
	if m.Spec().Layers[0].Units != 8 {
		t.Fatal("Spec() returns an alias")
	}
	if m.InputDim() != 4 || m.OutputDim() != 3 || m.NumParams() != 4*8+8+8*3+3 {
		t.Fatalf("dims %d %d %d", m.InputDim(), m.OutputDim(), m.NumParams())
	}
}

// FuzzSpec decodes tenant-supplied spec JSON. Validate must never panic,
// and a spec it accepts must build a model that runs.
func FuzzSpec(f *testing.F) {
	for _, s := range []Spec{
		MLP("m", 4, []int{8}, "relu", 3, "softmax"),
		{Inputs: []TensorSpec{{Name: "x", Datatype: "FP32", Shape: []int64{-1, 2}}},
			Outputs: []TensorSpec{{Name: "y", Datatype: "FP32", Shape: []int64{-1, 2}}},
			Layers:  []Layer{{Type: "dropout", Rate: 0.5}, {Type: "dense", Units: 2, Activation: "tanh"}}},
	} {
		b, _ := json.Marshal(s)
		f.Add(b)
	}
	for _, c := range convCases {
		b, _ := json.Marshal(c.spec)
		f.Add(b)
	}
	f.Add([]byte(`{"inputs":[{"name":"i","datatype":"FP32","shape":[-1,1,5,5]}],"outputs":[{"name":"o","datatype":"FP32","shape":[-1,2]}],` +
		`"layers":[{"type":"conv2d","filters":2,"kernel_size":3,"strides":[2,1],"padding":"same","dilation_rate":2},{"type":"maxpool2d","pool_size":[3,2],"padding":"same"},{"type":"batchnorm"},{"type":"global_avgpool2d"},{"type":"dense","units":2}]}`))
	f.Add([]byte(`{"inputs":[{"name":"a","datatype":"FP32","shape":[-1,1e9]}],"outputs":[],"layers":[]}`))
	f.Add([]byte(`{"layers":[{"type":"dense","units":-1}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Spec
		if json.Unmarshal(b, &s) != nil {
			return
		}
		if err := s.Validate(); err != nil {
			if !errors.Is(err, ErrSpec) {
				t.Fatalf("error %v does not wrap ErrSpec", err)
			}
			return
		}
		if specParams(s) > 1<<20 {
			return // valid but too big to build on every fuzz iteration
		}
		shapes, _, err := s.LayerShapes()
		if err != nil {
			t.Fatalf("LayerShapes after Validate: %v", err)
		}
		work := 0
		for _, sh := range shapes {
			n := 1
			for _, d := range sh {
				n *= d
			}
			work += n
		}
		if work > 1<<16 {
			return // valid but too slow to run on every fuzz iteration
		}
		m, err := New(s, 1)
		if err != nil {
			t.Fatal(err)
		}
		x := make([]float32, 2*m.InputDim())
		for i := range x {
			x[i] = float32(i%7) - 3
		}
		if _, err := m.Forward(nil, x, 2); err != nil {
			t.Fatal(err)
		}
		// A training step on any geometry the spec allows: forward and
		// backward through every layer without a panic.
		if _, err := Train(context.Background(), m, x, []int32{0, int32(m.OutputDim() - 1)}, nil, 2,
			TrainConfig{BatchSize: 2, LearningRate: 1e-3}); err != nil && !errors.Is(err, ErrSpec) {
			t.Fatal(err)
		}
	})
}
