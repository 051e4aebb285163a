package graph

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"github.com/aiaas/aiaas/internal/safetensors"
	"github.com/aiaas/aiaas/nn"
)

// MetaGraph is the metadata key of a graph artifact's architecture: the
// Graph as JSON. A graph artifact has it instead of nn.MetaSpec; the other
// keys (format version, metrics, provenance) are those of nn.
const MetaGraph = "aiaas.graph"

// Metadata is what a graph artifact carries besides its tensors.
type Metadata struct {
	Graph      *Graph
	Metrics    map[string]any
	Provenance map[string]string
	Labels     []string // class names of the first output, as nn.Metadata.Labels
}

// IsArtifact reports whether a decoded safetensors metadata map is a graph
// artifact's.
func IsArtifact(meta map[string]string) bool {
	_, ok := meta[MetaGraph]
	return ok
}

// ArtifactLimits bound what ReadArtifact accepts. Zero fields take the
// defaults.
type ArtifactLimits struct {
	MaxBytes       int // whole file; default 4 GiB
	MaxHeaderBytes int // JSON header, graph included; default 64 MiB
	MaxTensors     int // default 65,536
	Graph          *Limits
	Load           *Options
}

func (l *ArtifactLimits) withDefaults() ArtifactLimits {
	var o ArtifactLimits
	if l != nil {
		o = *l
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 4 << 30
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = 64 << 20
	}
	if o.MaxTensors <= 0 {
		o.MaxTensors = 1 << 16
	}
	return o
}

// WriteArtifact writes a graph artifact: g as JSON under MetaGraph, the
// metrics and provenance as nn writes them, and every tensor (sorted by
// name, so the output is deterministic) as a safetensors tensor.
func WriteArtifact(w io.Writer, g *Graph, tensors map[string]*Tensor, meta Metadata) error {
	js, err := json.Marshal(g)
	if err != nil {
		return fmt.Errorf("graph: write artifact: %w", err)
	}
	md := map[string]string{nn.MetaFormatVersion: "1", MetaGraph: string(js)}
	if meta.Metrics != nil {
		b, err := json.Marshal(meta.Metrics)
		if err != nil {
			return fmt.Errorf("graph: write artifact: metrics: %w", err)
		}
		md[nn.MetaMetrics] = string(b)
	}
	if meta.Provenance != nil {
		b, err := json.Marshal(meta.Provenance)
		if err != nil {
			return fmt.Errorf("graph: write artifact: provenance: %w", err)
		}
		md[nn.MetaProvenance] = string(b)
	}
	if meta.Labels != nil {
		b, err := json.Marshal(meta.Labels)
		if err != nil {
			return fmt.Errorf("graph: write artifact: labels: %w", err)
		}
		if _, err := nn.ParseLabels(string(b)); err != nil {
			return fmt.Errorf("graph: write artifact: %w", err)
		}
		md[nn.MetaLabels] = string(b)
	}
	names := make([]string, 0, len(tensors))
	for n := range tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	f := &safetensors.File{Metadata: md}
	for _, n := range names {
		t := tensors[n]
		f.Tensors = append(f.Tensors, safetensors.Tensor{Name: n, DType: t.DType.safetensors(), Shape: t.Shape, Data: t.data})
	}
	if _, err := safetensors.EncodeTo(w, f); err != nil {
		return fmt.Errorf("graph: write artifact: %w", err)
	}
	return nil
}

// ReadArtifact decodes and loads a graph artifact from untrusted bytes:
// the safetensors container within lim, the graph JSON (unknown fields
// refused), the tensors (copied into aligned memory) and then Load, which
// validates and plans the graph. Errors wrap nn.ErrArtifact,
// ErrUnsupported or nn.ErrShape. It does not retain b.
func ReadArtifact(b []byte, lim *ArtifactLimits) (*Model, *Metadata, error) {
	l := lim.withDefaults()
	if len(b) > l.MaxBytes {
		return nil, nil, graphErr("%d bytes, limit %d", len(b), l.MaxBytes)
	}
	f, err := safetensors.Decode(b, &safetensors.Limits{MaxHeaderBytes: l.MaxHeaderBytes, MaxTensors: l.MaxTensors, MaxRank: 8})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", nn.ErrArtifact, err)
	}
	if v := f.Metadata[nn.MetaFormatVersion]; v != "1" {
		return nil, nil, graphErr("format_version %q, want \"1\"", v)
	}
	raw, ok := f.Metadata[MetaGraph]
	if !ok {
		return nil, nil, graphErr("no %q metadata: not a graph artifact", MetaGraph)
	}
	g := &Graph{}
	dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(g); err != nil {
		return nil, nil, graphErr("%s: %v", MetaGraph, err)
	}
	if dec.More() {
		return nil, nil, graphErr("%s: trailing data", MetaGraph)
	}
	meta := &Metadata{Graph: g}
	if raw, ok := f.Metadata[nn.MetaMetrics]; ok {
		if err := json.Unmarshal([]byte(raw), &meta.Metrics); err != nil {
			return nil, nil, graphErr("%s: %v", nn.MetaMetrics, err)
		}
	}
	if raw, ok := f.Metadata[nn.MetaProvenance]; ok {
		if err := json.Unmarshal([]byte(raw), &meta.Provenance); err != nil {
			return nil, nil, graphErr("%s: %v", nn.MetaProvenance, err)
		}
	}
	if raw, ok := f.Metadata[nn.MetaLabels]; ok {
		labels, err := nn.ParseLabels(raw)
		if err != nil {
			return nil, nil, graphErr("%v", err)
		}
		meta.Labels = labels
	}
	tensors := make(map[string]*Tensor, len(f.Tensors))
	for _, st := range f.Tensors {
		dt, ok := fromSafetensors(st.DType)
		if !ok {
			return nil, nil, fmt.Errorf("%w: tensor %q: dtype %s", ErrUnsupported, printable(st.Name), st.DType)
		}
		t, err := TensorFromBytes(dt, st.Shape, st.Data)
		if err != nil {
			return nil, nil, graphErr("tensor %q: %v", printable(st.Name), err)
		}
		tensors[st.Name] = t
	}
	m, err := Load(g, tensors, l.Load)
	if err != nil {
		return nil, nil, err
	}
	return m, meta, nil
}
