package nn

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/aiaas/aiaas/internal/safetensors"
)

func artifactModel(t testing.TB) *Model {
	t.Helper()
	spec := MLP("clf", 5, []int{7}, "relu", 3, "softmax")
	spec.Layers = append([]Layer{spec.Layers[0], {Type: "dropout", Rate: 0.25}}, spec.Layers[1:]...)
	m := testModel(t, spec, 4)
	r := rand.New(rand.NewPCG(8, 8))
	for i := range m.layers {
		for j := range m.layers[i].b {
			m.layers[i].b[j] = float32(r.NormFloat64())
		}
	}
	return m
}

func writeArtifact(t testing.TB, m *Model, meta Metadata) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := m.WriteArtifact(&buf, meta); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestArtifactRoundTrip(t *testing.T) {
	m := artifactModel(t)
	meta := Metadata{
		Metrics:    map[string]any{"test_accuracy": 0.981, "history": []any{map[string]any{"epoch": 1.0}}},
		Provenance: map[string]string{"dataset": "mnist", "seed": "1"},
	}
	b := writeArtifact(t, m, meta)
	got, gotMeta, err := ReadArtifact(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Spec(), m.Spec()) || !reflect.DeepEqual(gotMeta.Spec, m.Spec()) {
		t.Fatalf("spec changed:\n%+v\n%+v", got.Spec(), m.Spec())
	}
	if !reflect.DeepEqual(gotMeta.Metrics, meta.Metrics) || !reflect.DeepEqual(gotMeta.Provenance, meta.Provenance) {
		t.Fatalf("metadata changed: %+v", gotMeta)
	}
	for i := range m.layers {
		for j := range m.layers[i].w {
			if math.Float32bits(m.layers[i].w[j]) != math.Float32bits(got.layers[i].w[j]) {
				t.Fatalf("layer %d weight %d not bit-exact", i, j)
			}
		}
		for j := range m.layers[i].b {
			if math.Float32bits(m.layers[i].b[j]) != math.Float32bits(got.layers[i].b[j]) {
				t.Fatalf("layer %d bias %d not bit-exact", i, j)
			}
		}
	}
	// Deterministic: writing the read model again gives the same bytes.
	if b2 := writeArtifact(t, got, *gotMeta); !bytes.Equal(b, b2) {
		t.Fatal("re-encoding differs")
	}
	// The model does not alias the input.
	clear(b)
	x := make([]float32, 5)
	o1, _ := m.Forward(nil, x, 1)
	o2, _ := got.Forward(nil, x, 1)
	if !reflect.DeepEqual(o1, o2) {
		t.Fatal("read model computes differently (or aliases its input bytes)")
	}
	// Tensor names and layout are the documented ones.
	f, err := safetensors.Decode(writeArtifact(t, m, Metadata{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tn := range f.Tensors {
		names = append(names, tn.Name)
	}
	if want := []string{"layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("tensors %v, want %v", names, want)
	}
	if w, _ := f.Tensor("layers.0.weight"); !reflect.DeepEqual(w.Shape, []int{5, 7}) {
		t.Fatalf("weight shape %v, want [in out] = [5 7]", w.Shape)
	}
	if _, ok := f.Metadata[MetaMetrics]; ok {
		t.Fatal("nil metrics written")
	}
}

// encodeWith writes m's artifact after edit changes its container.
func encodeWith(t testing.TB, m *Model, edit func(f *safetensors.File)) []byte {
	t.Helper()
	f, err := safetensors.Decode(writeArtifact(t, m, Metadata{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Copy the tensors out of the decoded buffer before editing.
	for i := range f.Tensors {
		f.Tensors[i].Data = append([]byte(nil), f.Tensors[i].Data...)
		f.Tensors[i].Shape = append([]int(nil), f.Tensors[i].Shape...)
	}
	edit(f)
	return safetensors.Encode(f)
}

func setSpec(f *safetensors.File, edit func(s *Spec)) {
	var s Spec
	_ = json.Unmarshal([]byte(f.Metadata[MetaSpec]), &s)
	edit(&s)
	b, _ := json.Marshal(s)
	f.Metadata[MetaSpec] = string(b)
}

func TestReadArtifactMalformed(t *testing.T) {
	m := artifactModel(t)
	good := writeArtifact(t, m, Metadata{})
	raw := func(edit func(b []byte) []byte) []byte {
		return edit(append([]byte(nil), good...))
	}
	nan := make([]byte, 4)
	binary.LittleEndian.PutUint32(nan, math.Float32bits(float32(math.NaN())))
	inf := make([]byte, 4)
	binary.LittleEndian.PutUint32(inf, math.Float32bits(float32(math.Inf(-1))))

	cases := []struct {
		name string
		b    []byte
		lim  *ArtifactLimits
		want string
	}{
		{"empty", nil, nil, ""},
		{"short", good[:5], nil, ""},
		{"header length past end", raw(func(b []byte) []byte { binary.LittleEndian.PutUint64(b, uint64(len(b))); return b }), nil, ""},
		{"huge header length", raw(func(b []byte) []byte { binary.LittleEndian.PutUint64(b, 1<<62); return b }), nil, ""},
		{"header not JSON", raw(func(b []byte) []byte { b[8] = 'x'; return b }), nil, ""},
		{"truncated data", good[:len(good)-4], nil, ""},
		{"trailing data", append(append([]byte(nil), good...), 0, 0, 0, 0), nil, ""},
		{"offsets out of range", shiftOffsets(t, good, "layers.2.bias", 0, 1000), nil, "beyond"},
		{"overlapping offsets", shiftOffsets(t, good, "layers.0.bias", -4, -4), nil, "overlap"},
		{"hole between tensors", shiftOffsets(t, good, "layers.0.bias", 4, 4), nil, ""},
		{"too large", good, &ArtifactLimits{MaxBytes: 100}, "limit 100"},
		{"header over limit", good, &ArtifactLimits{MaxHeaderBytes: 64}, ""},
		{"too many params", good, &ArtifactLimits{MaxParams: 10}, "parameters"},
		{"no format version", encodeWith(t, m, func(f *safetensors.File) { delete(f.Metadata, MetaFormatVersion) }), nil, "format_version"},
		{"future format version", encodeWith(t, m, func(f *safetensors.File) { f.Metadata[MetaFormatVersion] = "2" }), nil, "format_version"},
		{"no spec", encodeWith(t, m, func(f *safetensors.File) { delete(f.Metadata, MetaSpec) }), nil, "no \"aiaas.spec\""},
		{"spec not JSON", encodeWith(t, m, func(f *safetensors.File) { f.Metadata[MetaSpec] = "{" }), nil, "aiaas.spec"},
		{"spec trailing", encodeWith(t, m, func(f *safetensors.File) { f.Metadata[MetaSpec] += "{}" }), nil, "trailing"},
		{"spec unknown field", encodeWith(t, m, func(f *safetensors.File) {
			f.Metadata[MetaSpec] = strings.Replace(f.Metadata[MetaSpec], `"type":"dense"`, `"type":"dense","use_bias":false`, 1)
		}), nil, "use_bias"},
		{"spec invalid", encodeWith(t, m, func(f *safetensors.File) { setSpec(f, func(s *Spec) { s.Layers[0].Activation = "gelu" }) }), nil, "activation"},
		{"metrics not JSON", encodeWith(t, m, func(f *safetensors.File) { f.Metadata[MetaMetrics] = "[1" }), nil, "aiaas.metrics"},
		{"provenance not strings", encodeWith(t, m, func(f *safetensors.File) { f.Metadata[MetaProvenance] = `{"a":1}` }), nil, "aiaas.provenance"},
		{"missing tensor", encodeWith(t, m, func(f *safetensors.File) { f.Tensors = f.Tensors[1:] }), nil, "missing tensor \"layers.0.weight\""},
		{"extra tensor", encodeWith(t, m, func(f *safetensors.File) {
			f.Tensors = append(f.Tensors, safetensors.F32("layers.1.weight", []int{1}, []float32{1}))
		}), nil, "unexpected tensor \"layers.1.weight\""},
		{"wrong dtype", encodeWith(t, m, func(f *safetensors.File) { f.Tensors[1].DType = safetensors.DTypeI32 }), nil, "dtype I32"},
		{"F64 weights", encodeWith(t, m, func(f *safetensors.File) {
			f.Tensors[1] = safetensors.Tensor{Name: "layers.0.bias", DType: safetensors.DTypeF64, Shape: []int{7}, Data: make([]byte, 56)}
		}), nil, "dtype F64"},
		{"transposed weight", encodeWith(t, m, func(f *safetensors.File) { f.Tensors[0].Shape = []int{7, 5} }), nil, "shape [7 5], want [5 7]"},
		{"weight rank 1", encodeWith(t, m, func(f *safetensors.File) { f.Tensors[0].Shape = []int{35} }), nil, "shape [35]"},
		{"spec disagrees", encodeWith(t, m, func(f *safetensors.File) { setSpec(f, func(s *Spec) { s.Layers[0].Units = 6 }) }), nil, "shape"},
		{"NaN weight", encodeWith(t, m, func(f *safetensors.File) { copy(f.Tensors[0].Data[8:], nan) }), nil, "element 2 is NaN"},
		{"Inf bias", encodeWith(t, m, func(f *safetensors.File) { copy(f.Tensors[3].Data, inf) }), nil, "-Inf"},
	}
	for i, c := range cases {
		mm, meta, err := ReadArtifact(c.b, c.lim)
		if err == nil || mm != nil || meta != nil {
			t.Errorf("case %d (%s): accepted", i, c.name)
			continue
		}
		if !errors.Is(err, ErrArtifact) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("case %d (%s): error %q, want ErrArtifact containing %q", i, c.name, err, c.want)
		}
	}
	if _, _, err := ReadArtifact(good, nil); err != nil {
		t.Fatalf("good artifact refused: %v", err)
	}
}

// shiftOffsets rewrites the header entry of one tensor, moving its start and
// end data offsets by the given number of bytes.
func shiftOffsets(t testing.TB, good []byte, name string, start, end int) []byte {
	t.Helper()
	n := int(binary.LittleEndian.Uint64(good))
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(good[8:8+n], &hdr); err != nil {
		t.Fatal(err)
	}
	var e struct {
		Dtype       string `json:"dtype"`
		Shape       []int  `json:"shape"`
		DataOffsets [2]int `json:"data_offsets"`
	}
	if err := json.Unmarshal(hdr[name], &e); err != nil {
		t.Fatal(err)
	}
	e.DataOffsets[0] += start
	e.DataOffsets[1] += end
	hdr[name], _ = json.Marshal(e)
	h, _ := json.Marshal(hdr)
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	out = append(out, h...)
	return append(out, good[8+n:]...)
}

// FuzzReadArtifact feeds ReadArtifact arbitrary bytes. Whatever it accepts
// must be a working model that writes back to an artifact it accepts again.
func FuzzReadArtifact(f *testing.F) {
	m := artifactModel(f)
	f.Add(writeArtifact(f, m, Metadata{Metrics: map[string]any{"a": 1.0}, Provenance: map[string]string{"k": "v"}}))
	f.Add(writeArtifact(f, m, Metadata{Labels: []string{"cat", "dög", ""}}))
	f.Add(writeArtifact(f, testModel(f, MLP("t", 2, nil, "", 1, "sigmoid"), 1), Metadata{}))
	f.Add(shiftOffsets(f, writeArtifact(f, m, Metadata{}), "layers.0.bias", -4, -4))
	f.Add([]byte{})
	f.Add([]byte("\x02\x00\x00\x00\x00\x00\x00\x00{}"))
	f.Add([]byte("\xff\xff\xff\xff\xff\xff\xff\xff{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		lim := &ArtifactLimits{MaxParams: 1 << 16, MaxHeaderBytes: 1 << 16}
		mm, meta, err := ReadArtifact(b, lim)
		if err != nil {
			if !errors.Is(err, ErrArtifact) {
				t.Fatalf("error %v does not wrap ErrArtifact", err)
			}
			return
		}
		x := make([]float32, mm.InputDim()*2)
		if _, err := mm.Forward(nil, x, 2); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := mm.WriteArtifact(&buf, *meta); err != nil {
			t.Fatal(err)
		}
		if _, _, err := ReadArtifact(buf.Bytes(), lim); err != nil {
			t.Fatalf("re-read: %v", err)
		}
	})
}

// TestArtifactLabels: class names survive the round trip, and labels that
// are too many, too long or hold control characters are refused on read.
func TestArtifactLabels(t *testing.T) {
	m := artifactModel(t)
	_, meta, err := ReadArtifact(writeArtifact(t, m, Metadata{Labels: []string{"cat", "dog", "émeu"}}), nil)
	if err != nil || !reflect.DeepEqual(meta.Labels, []string{"cat", "dog", "émeu"}) {
		t.Fatalf("labels = %q, %v", meta.Labels, err)
	}
	if _, meta, _ := ReadArtifact(writeArtifact(t, m, Metadata{}), nil); meta.Labels != nil {
		t.Errorf("no labels written, %q read", meta.Labels)
	}
	for i, raw := range []string{`["a\u0007"]`, `[` + strings.Repeat(`"x",`, MaxLabels) + `"x"]`, `["` + strings.Repeat("y", MaxLabelBytes+1) + `"]`, `{"a":1}`, `[1]`} {
		b := encodeWith(t, m, func(f *safetensors.File) { f.Metadata[MetaLabels] = raw })
		if _, _, err := ReadArtifact(b, nil); !errors.Is(err, ErrArtifact) || !strings.Contains(err.Error(), MetaLabels) {
			t.Errorf("%d: err = %v", i, err)
		}
	}
	var buf bytes.Buffer
	if err := m.WriteArtifact(&buf, Metadata{Labels: []string{"tab\there"}}); err == nil {
		t.Error("a label with a control character was written")
	}
}
