package nn

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"

	"github.com/aiaas/aiaas/internal/safetensors"
)

// Metadata keys of a model artifact's safetensors "__metadata__" object.
// Every value is a string, as safetensors requires; the structured ones are
// JSON.
const (
	MetaFormatVersion = "format_version"   // "1"
	MetaSpec          = "aiaas.spec"       // JSON Spec
	MetaMetrics       = "aiaas.metrics"    // JSON object, optional
	MetaProvenance    = "aiaas.provenance" // JSON object of strings, optional
	MetaLabels        = "aiaas.labels"     // JSON array of strings, optional: the class names of the output, by index

	// MaxLabels and MaxLabelBytes bound an artifact's labels.
	MaxLabels     = 1 << 16
	MaxLabelBytes = 256

	artifactVersion = "1"
)

// Metadata is what an artifact carries besides its weights.
type Metadata struct {
	Spec       Spec
	Metrics    map[string]any    // e.g. "test_accuracy", "history"
	Provenance map[string]string // e.g. "dataset", "git_commit", "created_at"
	// Labels names the classes of the (first) output: Labels[i] is class
	// i. Training on a dataset that names its classes (a folder per
	// class) records them; serving uses them for Triton's classification
	// extension. Nil when the classes have no names.
	Labels []string
}

// ParseLabels decodes and checks the MetaLabels value of an artifact.
// Goroutine-safe.
func ParseLabels(raw string) ([]string, error) {
	var labels []string
	if err := json.Unmarshal([]byte(raw), &labels); err != nil {
		return nil, fmt.Errorf("%s: %v", MetaLabels, err)
	}
	if len(labels) > MaxLabels {
		return nil, fmt.Errorf("%s: %d labels, limit %d", MetaLabels, len(labels), MaxLabels)
	}
	for i, l := range labels {
		if len(l) > MaxLabelBytes {
			return nil, fmt.Errorf("%s: label %d is longer than %d bytes", MetaLabels, i, MaxLabelBytes)
		}
		for _, r := range l {
			if r < 0x20 || r == 0x7f {
				return nil, fmt.Errorf("%s: label %d has a control character", MetaLabels, i)
			}
		}
	}
	return labels, nil
}

// ArtifactLimits bound what ReadArtifact accepts. Zero fields take the
// defaults.
type ArtifactLimits struct {
	MaxBytes       int // whole file; default 1 GiB
	MaxParams      int // default MaxParams
	MaxHeaderBytes int // JSON header, metadata included; default 8 MiB
}

func (l *ArtifactLimits) withDefaults() ArtifactLimits {
	var o ArtifactLimits
	if l != nil {
		o = *l
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 1 << 30
	}
	if o.MaxParams <= 0 || o.MaxParams > MaxParams {
		o.MaxParams = MaxParams
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = 8 << 20
	}
	return o
}

// WeightName and BiasName return the tensor names of layer i's parameters
// (i is its index in Spec.Layers, every layer counted). A dense weight has
// shape [in, out], the Keras kernel layout; a conv2d weight [F, C, KH, KW],
// the ONNX and PyTorch layout; a batchnorm's weight and bias are γ and β
// [C]. Biases are [out], [F] and [C].
func WeightName(i int) string { return "layers." + strconv.Itoa(i) + ".weight" }

// BiasName: see WeightName.
func BiasName(i int) string { return "layers." + strconv.Itoa(i) + ".bias" }

// RunningMeanName and RunningVarName return the tensor names of batch
// normalisation i's running statistics ([C] each; its weight and bias are γ
// and β). The names are PyTorch's.
func RunningMeanName(i int) string { return "layers." + strconv.Itoa(i) + ".running_mean" }

// RunningVarName: see RunningMeanName.
func RunningVarName(i int) string { return "layers." + strconv.Itoa(i) + ".running_var" }

// WriteArtifact writes m as a safetensors model artifact: F32 tensors
// layers.{i}.weight [in, out] and layers.{i}.bias [out] for each dense layer
// in order, and the spec, meta.Metrics and meta.Provenance as JSON strings in
// "__metadata__". meta.Spec is ignored: the model's own spec is written. The
// output is deterministic. A model with NaN or infinite weights is refused,
// since ReadArtifact would refuse the file. WriteArtifact is goroutine-safe (not during Train).
func (m *Model) WriteArtifact(w io.Writer, meta Metadata) error {
	if m == nil || m.in == 0 {
		return errNoModel
	}
	for i := range m.layers {
		for _, t := range m.layers[i].tensors(i) {
			if j := nonFinite(t.v); j >= 0 {
				return fmt.Errorf("nn: write artifact: %s element %d is %v", t.name, j, t.v[j])
			}
		}
	}
	md := map[string]string{MetaFormatVersion: artifactVersion}
	if meta.Labels != nil {
		b, err := json.Marshal(meta.Labels)
		if err != nil {
			return fmt.Errorf("nn: write artifact: %s: %w", MetaLabels, err)
		}
		if _, err := ParseLabels(string(b)); err != nil {
			return fmt.Errorf("nn: write artifact: %w", err)
		}
		md[MetaLabels] = string(b)
	}
	for k, v := range map[string]any{MetaSpec: m.spec, MetaMetrics: meta.Metrics, MetaProvenance: meta.Provenance} {
		if k != MetaSpec && reflectNil(v) {
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("nn: write artifact: %s: %w", k, err)
		}
		md[k] = string(b)
	}
	f := &safetensors.File{Metadata: md}
	for i := range m.layers {
		for _, t := range m.layers[i].tensors(i) {
			f.Tensors = append(f.Tensors, safetensors.F32(t.name, t.shape, t.v))
		}
	}
	if _, err := safetensors.EncodeTo(w, f); err != nil {
		return fmt.Errorf("nn: write artifact: %w", err)
	}
	return nil
}

func reflectNil(v any) bool {
	switch t := v.(type) {
	case map[string]any:
		return t == nil
	case map[string]string:
		return t == nil
	}
	return v == nil
}

func artErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrArtifact, fmt.Sprintf(format, args...))
}

// ReadArtifact decodes a model artifact from untrusted bytes. It rejects,
// with an error wrapping ErrArtifact (and, for container errors,
// safetensors.ErrFormat): files over the limits, a malformed safetensors
// container (header length, JSON, offsets out of range or overlapping), a
// missing or unknown format version, a missing or invalid spec, missing or
// extra tensors, tensors whose dtype is not F32 or whose shape does not match
// the spec, and NaN or infinite weights. The model does not alias b.
// ReadArtifact is goroutine-safe.
func ReadArtifact(b []byte, lim *ArtifactLimits) (*Model, *Metadata, error) {
	l := lim.withDefaults()
	if len(b) > l.MaxBytes {
		return nil, nil, artErr("%d bytes, limit %d", len(b), l.MaxBytes)
	}
	f, err := safetensors.Decode(b, &safetensors.Limits{
		MaxHeaderBytes: l.MaxHeaderBytes,
		MaxTensors:     4*MaxLayers + 1, // one more than a model can use, so "extra tensor" is reported as such
		MaxRank:        4,               // conv2d weights are [F, C, KH, KW]
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrArtifact, err)
	}
	spec, meta, err := readMeta(f, l)
	if err != nil {
		return nil, nil, err
	}
	m, err := build(spec)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrArtifact, err)
	}
	used := 0
	for i := range m.layers {
		for _, t := range m.layers[i].tensors(i) {
			if err := loadTensor(f, t.name, t.shape, t.v); err != nil {
				return nil, nil, err
			}
			used++
		}
		if l := &m.layers[i]; l.kind == LayerBatchNorm {
			for c, v := range l.vari {
				if v < 0 {
					return nil, nil, artErr("tensor %q: element %d is negative (%v)", RunningVarName(i), c, v)
				}
			}
		}
	}
	if len(f.Tensors) != used {
		for _, t := range f.Tensors {
			if !m.expects(t.Name) {
				return nil, nil, artErr("unexpected tensor %q", t.Name)
			}
		}
		return nil, nil, artErr("%d tensors, want %d", len(f.Tensors), used)
	}
	m.pack()
	return m, meta, nil
}

// readMeta reads and checks the metadata of a decoded artifact: format
// version, spec, metrics, provenance and labels.
func readMeta(f *safetensors.File, l ArtifactLimits) (Spec, *Metadata, error) {
	var err error
	if v, ok := f.Metadata[MetaFormatVersion]; !ok || v != artifactVersion {
		return Spec{}, nil, artErr("format_version %q, want %q", v, artifactVersion)
	}
	raw, ok := f.Metadata[MetaSpec]
	if !ok {
		return Spec{}, nil, artErr("no %q metadata", MetaSpec)
	}
	var spec Spec
	dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
	dec.DisallowUnknownFields() // a field we do not know changes the network: refuse rather than ignore it
	if err := dec.Decode(&spec); err != nil {
		return Spec{}, nil, artErr("%s: %v", MetaSpec, err)
	}
	if dec.More() {
		return Spec{}, nil, artErr("%s: trailing data", MetaSpec)
	}
	if err := spec.Validate(); err != nil {
		return Spec{}, nil, fmt.Errorf("%w: %w", ErrArtifact, err)
	}
	if n := specParams(spec); n > l.MaxParams {
		return Spec{}, nil, artErr("%d parameters, limit %d", n, l.MaxParams)
	}
	meta := &Metadata{Spec: spec.clone()}
	if raw, ok := f.Metadata[MetaMetrics]; ok {
		if err := json.Unmarshal([]byte(raw), &meta.Metrics); err != nil {
			return Spec{}, nil, artErr("%s: %v", MetaMetrics, err)
		}
	}
	if raw, ok := f.Metadata[MetaProvenance]; ok {
		if err := json.Unmarshal([]byte(raw), &meta.Provenance); err != nil {
			return Spec{}, nil, artErr("%s: %v", MetaProvenance, err)
		}
	}
	if raw, ok := f.Metadata[MetaLabels]; ok {
		if meta.Labels, err = ParseLabels(raw); err != nil {
			return Spec{}, nil, artErr("%v", err)
		}
	}
	return spec, meta, nil
}

// CheckArtifactHeader checks a dense artifact from its safetensors header
// alone (safetensors.DecodeHeader): what ReadArtifact checks except the
// weights' values (NaN, infinities, negative running variances), which a
// caller streaming the data checks as it passes, or the load does. It
// allocates nothing in proportion to the weights, so a server can describe
// a model of gigabytes holding only its header. It is goroutine-safe.
func CheckArtifactHeader(f *safetensors.File, lim *ArtifactLimits) (Spec, *Metadata, error) {
	l := lim.withDefaults()
	if len(f.Tensors) > 4*MaxLayers {
		return Spec{}, nil, artErr("%d tensors, limit %d", len(f.Tensors), 4*MaxLayers)
	}
	spec, meta, err := readMeta(f, l)
	if err != nil {
		return Spec{}, nil, err
	}
	plan, err := spec.plan()
	if err != nil {
		return Spec{}, nil, fmt.Errorf("%w: %w", ErrArtifact, err)
	}
	type want struct {
		name  string
		shape []int
	}
	var wants []want
	for i, p := range plan {
		switch spec.Layers[i].Type {
		case LayerDense:
			wants = append(wants, want{WeightName(i), []int{p.in.size(), p.out.size()}}, want{BiasName(i), []int{p.out.size()}})
		case LayerConv2D:
			wants = append(wants, want{WeightName(i), []int{p.out.c, p.in.c, p.g.kh, p.g.kw}}, want{BiasName(i), []int{p.out.c}})
		case LayerBatchNorm:
			c := []int{p.in.c}
			wants = append(wants, want{WeightName(i), c}, want{BiasName(i), c}, want{RunningMeanName(i), c}, want{RunningVarName(i), c})
		}
	}
	seen := make(map[string]bool, len(wants))
	for _, w := range wants {
		t, ok := f.Tensor(w.name)
		if !ok {
			return Spec{}, nil, artErr("missing tensor %q", w.name)
		}
		if t.DType != safetensors.DTypeF32 {
			return Spec{}, nil, artErr("tensor %q: dtype %s, want F32", w.name, t.DType)
		}
		if !slices.Equal(t.Shape, w.shape) {
			return Spec{}, nil, artErr("tensor %q: shape %v, want %v", w.name, t.Shape, w.shape)
		}
		seen[w.name] = true
	}
	for _, t := range f.Tensors {
		if !seen[t.Name] {
			return Spec{}, nil, artErr("unexpected tensor %q", t.Name)
		}
	}
	return spec, meta, nil
}

func (m *Model) expects(name string) bool {
	for i := range m.layers {
		for _, t := range m.layers[i].tensors(i) {
			if t.name == name {
				return true
			}
		}
	}
	return false
}

func specParams(s Spec) int {
	plan, err := s.plan()
	if err != nil {
		return 0
	}
	n := 0
	for i, p := range plan {
		switch s.Layers[i].Type {
		case LayerDense:
			n += p.in.size()*p.out.size() + p.out.size()
		case LayerConv2D:
			n += p.out.c*p.in.c*p.g.kh*p.g.kw + p.out.c
		case LayerBatchNorm:
			n += 4 * p.in.c
		}
	}
	return n
}

func loadTensor(f *safetensors.File, name string, shape []int, dst []float32) error {
	t, ok := f.Tensor(name)
	if !ok {
		return artErr("missing tensor %q", name)
	}
	if t.DType != safetensors.DTypeF32 {
		return artErr("tensor %q: dtype %s, want F32", name, t.DType)
	}
	if !slices.Equal(t.Shape, shape) {
		return artErr("tensor %q: shape %v, want %v", name, t.Shape, shape)
	}
	v, err := t.Float32s(dst[:0])
	if err != nil {
		return fmt.Errorf("%w: %w", ErrArtifact, err)
	}
	if len(v) != len(dst) || &v[0] != &dst[0] {
		return artErr("tensor %q: %d values, want %d", name, len(v), len(dst))
	}
	for j, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return artErr("tensor %q: element %d is %v", name, j, x)
		}
	}
	return nil
}
