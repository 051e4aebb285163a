package nn_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/aiaas/aiaas/internal/safetensors"
	"github.com/aiaas/aiaas/nn"
)

// TestCheckArtifactHeader: the header-only check accepts what
// ReadArtifact accepts and refuses a tensor of the wrong shape, a missing
// one and an extra one, without the weights.
func TestCheckArtifactHeader(t *testing.T) {
	spec := nn.MLP("x", 6, []int{5}, "relu", 3, "softmax")
	m, err := nn.New(spec, 1)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := m.WriteArtifact(&buf, nn.Metadata{Metrics: map[string]any{"acc": 0.5}}); err != nil {
		t.Fatal(err)
	}
	check := func(b []byte) error {
		prefix, dataLen, err := safetensors.ReadHeader(bytes.NewReader(b), nil)
		if err != nil {
			return err
		}
		f, err := safetensors.DecodeHeader(prefix, dataLen, nil)
		if err != nil {
			return err
		}
		_, _, err = nn.CheckArtifactHeader(f, nil)
		return err
	}
	if err := check(buf.Bytes()); err != nil {
		t.Fatalf("valid artifact: %v", err)
	}
	f, err := safetensors.Decode(buf.Bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, mutate := range []func(f *safetensors.File) *safetensors.File{
		func(f *safetensors.File) *safetensors.File { // wrong shape
			g := *f
			g.Tensors = append([]safetensors.Tensor(nil), f.Tensors...)
			g.Tensors[0].Shape = []int{g.Tensors[0].Shape[1], g.Tensors[0].Shape[0]}
			return &g
		},
		func(f *safetensors.File) *safetensors.File { // missing
			g := *f
			g.Tensors = f.Tensors[1:]
			return &g
		},
		func(f *safetensors.File) *safetensors.File { // extra
			g := *f
			g.Tensors = append(append([]safetensors.Tensor(nil), f.Tensors...), safetensors.F32("extra", []int{1}, []float32{1}))
			return &g
		},
	} {
		b := safetensors.Encode(mutate(f))
		if err := check(b); !errors.Is(err, nn.ErrArtifact) {
			t.Errorf("%d: header check: %v, want ErrArtifact", i, err)
		}
		if _, _, err := nn.ReadArtifact(b, nil); err == nil {
			t.Errorf("%d: ReadArtifact accepts what the header check refuses", i)
		}
	}
	// DecodeHeader checks offsets against the data length it is told.
	prefix, dataLen, _ := safetensors.ReadHeader(bytes.NewReader(buf.Bytes()), nil)
	if _, err := safetensors.DecodeHeader(prefix, dataLen+4, nil); !errors.Is(err, safetensors.ErrFormat) {
		t.Errorf("DecodeHeader with trailing data: %v", err)
	}
}
