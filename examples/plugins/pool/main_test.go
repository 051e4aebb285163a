package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/aiaas/aiaas/examples/plugins/internal/plugintest"
	"github.com/aiaas/aiaas/internal/safetensors"
	"github.com/aiaas/aiaas/plugins"
	"github.com/aiaas/aiaas/sdk/plugin"
)

// reference is sentence-transformers' mean pooling and normalization,
// written plainly in float64.
func reference(x []float32, mask []int64, batch, seq, dim int, normalize bool) [][]float64 {
	out := make([][]float64, batch)
	for b := range batch {
		sum := make([]float64, dim)
		n := 0.0
		for s := range seq {
			if mask[b*seq+s] == 0 {
				continue
			}
			n++
			for k := range dim {
				sum[k] += float64(x[(b*seq+s)*dim+k])
			}
		}
		var ss float64
		for k := range sum {
			sum[k] /= math.Max(n, 1e-9)
			ss += sum[k] * sum[k]
		}
		if normalize {
			for k := range sum {
				sum[k] /= math.Max(math.Sqrt(ss), 1e-12)
			}
		}
		out[b] = sum
	}
	return out
}

func inputs(batch, seq, dim int, mask []int64) []plugin.Tensor {
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, batch*seq*dim)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	ts := []plugin.Tensor{plugin.F32("last_hidden_state", []int{batch, seq, dim}, x)}
	if mask != nil {
		ts = append(ts, plugin.I64("attention_mask", []int{batch, seq}, mask))
	}
	return ts
}

func TestPool(t *testing.T) {
	cases := []struct {
		batch, seq, dim int
		mask            []int64
		params          map[string]string
	}{
		{1, 5, 8, nil, nil},
		{2, 4, 6, []int64{1, 1, 1, 0, 1, 1, 0, 0}, nil},    // right padding
		{2, 4, 6, []int64{0, 1, 1, 1, 1, 0, 1, 1}, nil},    // left padding, a hole
		{3, 3, 4, []int64{1, 1, 1, 0, 0, 0, 1, 0, 1}, nil}, // a row with no token
		{1, 128, 384, nil, map[string]string{"normalize": "false"}},
	}
	for i, c := range cases {
		ts := inputs(c.batch, c.seq, c.dim, c.mask)
		body, err := Pool(ts, c.params)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		var got struct{ Embeddings [][]float64 }
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		mask := c.mask
		if mask == nil {
			mask = slices.Repeat([]int64{1}, c.batch*c.seq)
		}
		x, _ := ts[0].Float32s(nil)
		want := reference(x, mask, c.batch, c.seq, c.dim, c.params["normalize"] != "false")
		if len(got.Embeddings) != c.batch {
			t.Fatalf("%d: %d rows", i, len(got.Embeddings))
		}
		for b := range want {
			var ss float64
			for k := range want[b] {
				ss += got.Embeddings[b][k] * got.Embeddings[b][k]
				if math.Abs(got.Embeddings[b][k]-want[b][k]) > 1e-5 {
					t.Fatalf("%d: row %d [%d] = %v, want %v", i, b, k, got.Embeddings[b][k], want[b][k])
				}
			}
			if c.params == nil && mask[b*c.seq : (b+1)*c.seq][0]+mask[b*c.seq+1] > 0 && math.Abs(ss-1) > 1e-5 {
				t.Errorf("%d: row %d has norm² %v", i, b, ss)
			}
		}
	}
	for _, bad := range [][]plugin.Tensor{
		{plugin.F32("x", []int{2}, []float32{1, 2})},
		{plugin.F32("last_hidden_state", []int{1, 2, 2}, []float32{1, 2, 3, 4}), plugin.I64("attention_mask", []int{1, 3}, []int64{1, 1, 1})},
		{plugin.F32("last_hidden_state", []int{1, 1, 1}, []float32{1}), plugin.F32("attention_mask", []int{1, 1}, []float32{0.5})},
		{{Name: "last_hidden_state", DType: "I64", Shape: []int{1, 1, 1}, Data: make([]byte, 8)}},
	} {
		if _, err := Pool(bad, nil); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

func FuzzPool(f *testing.F) {
	f.Add(safetensors.Encode(&safetensors.File{Tensors: inputs(2, 3, 4, []int64{1, 1, 0, 0, 1, 1})}), "true")
	f.Fuzz(func(t *testing.T, st []byte, normalize string) {
		file, err := safetensors.Decode(st, nil)
		if err != nil {
			return
		}
		body, err := Pool(file.Tensors, map[string]string{"normalize": normalize})
		if err == nil && !json.Valid(body) {
			t.Fatalf("invalid JSON %s", body)
		}
	})
}

func TestInHost(t *testing.T) {
	wasm := plugintest.Build(t, "pool")
	h := plugintest.Host(t)
	info, err := h.Validate(context.Background(), wasm)
	if err != nil || !info.Kind.Has(plugins.Postprocess) {
		t.Fatalf("validate: %v %+v", err, info)
	}
	mod := plugintest.Module(wasm)
	for i, ts := range [][]plugin.Tensor{
		inputs(1, 7, 384, nil),
		inputs(2, 4, 16, []int64{1, 1, 1, 0, 0, 1, 1, 1}),
		inputs(4, 128, 384, slices.Repeat([]int64{1, 1, 1, 1, 0}, 4*128/5+1)[:4*128]),
	} {
		got, ct, err := h.Postprocess(context.Background(), "tenant", mod, &safetensors.File{Tensors: ts, Metadata: map[string]string{"model": "m"}})
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		want, err := Pool(ts, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ct != "application/json" || !bytes.Equal(got, want) {
			t.Errorf("%d: the sandbox and native differ", i)
		}
		got, ct, err = h.Postprocess(context.Background(), "tenant", mod, &safetensors.File{Tensors: ts, Metadata: map[string]string{"format": "safetensors"}})
		if err != nil {
			t.Fatal(err)
		}
		f, err := safetensors.Decode(got, nil)
		if err != nil || ct != "application/octet-stream" || len(f.Tensors) != 1 || f.Tensors[0].Name != "embeddings" {
			t.Fatalf("%d: safetensors output: %v %s", i, err, ct)
		}
		emb, _ := f.Tensors[0].Float32s(nil)
		native, _, _, _ := Embeddings(ts, nil)
		if !slices.Equal(emb, native) {
			t.Errorf("%d: safetensors output differs", i)
		}
	}
}

// BenchmarkHost is one postprocess call through the host for one text of
// 128 tokens of all-MiniLM-L6-v2 (hidden size 384), p50.
func BenchmarkHost(b *testing.B) {
	h := plugintest.Host(b)
	mod := plugintest.Module(plugintest.Build(b, "pool"))
	ctx := context.Background()
	for _, format := range []string{"json", "safetensors"} {
		b.Run(format, func(b *testing.B) {
			in := &safetensors.File{Tensors: inputs(1, 128, 384, slices.Repeat([]int64{1}, 128)), Metadata: map[string]string{"format": format}}
			var d []time.Duration
			for b.Loop() {
				t0 := time.Now()
				if _, _, err := h.Postprocess(ctx, "tenant", mod, in); err != nil {
					b.Fatal(err)
				}
				d = append(d, time.Since(t0))
			}
			slices.Sort(d)
			b.ReportMetric(float64(d[len(d)/2].Microseconds()), "p50-µs")
		})
	}
}

// BenchmarkNative is Embeddings natively, for one text of 128 tokens.
func BenchmarkNative(b *testing.B) {
	ts := inputs(1, 128, 384, slices.Repeat([]int64{1}, 128))
	for b.Loop() {
		if _, _, _, err := Embeddings(ts, nil); err != nil {
			b.Fatal(err)
		}
	}
}
