package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aiaas/aiaas/internal/safetensors"
	"github.com/aiaas/aiaas/sdk/plugin"
)

func TestTopK(t *testing.T) {
	probs := []float32{.01, .02, .05, .01, .01, .05, .01, .80, .02, .02}
	cases := []struct {
		ts     []plugin.Tensor
		params map[string]string
		want   string // first label, or the error substring
		n      int    // predictions; 0 means an error
	}{
		{[]plugin.Tensor{plugin.F32("output", []int{1, 10}, probs)}, nil, "7", 3},
		{[]plugin.Tensor{plugin.F32("logits", []int{3}, []float32{-5, 20, 3})}, map[string]string{"k": "5"}, "1", 3},
		{[]plugin.Tensor{plugin.F32("a", []int{2}, probs[:2]), plugin.F32("output", []int{10}, probs)}, map[string]string{"labels": "a,b,c,d,e,f,g,h"}, "h", 3},
		{[]plugin.Tensor{plugin.F32("a", []int{2}, probs[:2]), plugin.F32("b", []int{2}, probs[:2])}, nil, `no tensor named "output"`, 0},
		{[]plugin.Tensor{plugin.F32("output", []int{2, 5}, probs)}, nil, "want [K] or [1,K]", 0},
		{[]plugin.Tensor{{Name: "output", DType: "U8", Shape: []int{1}, Data: []byte{1}}}, nil, "want F32", 0},
		{[]plugin.Tensor{plugin.F32("output", []int{0}, nil)}, nil, "no scores", 0},
		{[]plugin.Tensor{plugin.F32("output", []int{2}, probs[:2])}, map[string]string{"k": "x"}, "parameter k", 0},
	}
	for i, c := range cases {
		body, err := TopK(c.ts, c.params)
		if c.n == 0 {
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%d: err %v, want %q", i, err, c.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("%d: %v", i, err)
			continue
		}
		var got struct {
			Predictions []struct {
				Label string  `json:"label"`
				Index int     `json:"index"`
				Score float64 `json:"score"`
			} `json:"predictions"`
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("%d: %v: %s", i, err, body)
		}
		if len(got.Predictions) != c.n || got.Predictions[0].Label != c.want {
			t.Errorf("%d: %s", i, body)
		}
		for j := 1; j < len(got.Predictions); j++ {
			if got.Predictions[j].Score > got.Predictions[j-1].Score {
				t.Errorf("%d: not sorted: %s", i, body)
			}
		}
	}
}

func FuzzTopK(f *testing.F) {
	f.Add(safetensors.Encode(&safetensors.File{Tensors: []safetensors.Tensor{safetensors.F32("output", []int{1, 3}, []float32{1, 2, 3})}}), "2", "a,b")
	f.Fuzz(func(t *testing.T, st []byte, k, labels string) {
		file, err := safetensors.Decode(st, nil)
		if err != nil {
			return
		}
		body, err := TopK(file.Tensors, map[string]string{"k": k, "labels": labels})
		if err == nil && !json.Valid(body) {
			t.Fatalf("invalid JSON %s", body)
		}
	})
}

// BenchmarkNative is postprocess as the host would see it, natively:
// decode the safetensors input, rank, render JSON.
func BenchmarkNative(b *testing.B) {
	in := safetensors.Encode(&safetensors.File{Tensors: []safetensors.Tensor{
		safetensors.F32("output", []int{1, 10}, []float32{.01, .02, .05, .01, .01, .05, .01, .80, .02, .02})}})
	b.ReportAllocs()
	var d []time.Duration
	for b.Loop() {
		t0 := time.Now()
		f, err := safetensors.Decode(in, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := postprocess(plugin.Input{Tensors: f.Tensors, Params: f.Metadata}); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(t0))
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Nanoseconds()), "p50-ns")
}

// An instance answers call after call in the same buffers: each answer
// must be what a fresh TopK gives, whatever the previous call left there
// (more predictions, longer labels, another tensor).
func TestScratchReuse(t *testing.T) {
	probs := []float32{.01, .02, .05, .01, .01, .05, .01, .80, .02, .02}
	calls := []struct {
		ts     []plugin.Tensor
		params map[string]string
	}{
		{[]plugin.Tensor{plugin.F32("output", []int{1, 10}, probs)}, map[string]string{"k": "10", "labels": "zero,one,two,three,four,five,six,seven,eight,nine"}},
		{[]plugin.Tensor{plugin.F32("output", []int{1, 10}, probs)}, nil},
		{[]plugin.Tensor{plugin.F32("logits", []int{3}, []float32{-5, 20, 3})}, map[string]string{"k": "2"}},
		{[]plugin.Tensor{plugin.F32("output", []int{1, 10}, probs)}, map[string]string{"k": "1"}},
	}
	var s scratch
	for i, c := range calls {
		want, err := TopK(c.ts, c.params)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.topK(c.ts, c.params)
		if err != nil || string(got) != string(want) {
			t.Fatalf("call %d: reused buffers answer %s (%v), fresh %s", i, got, err, want)
		}
	}
	// The softmax runs on the scratch copy, never on the caller's tensor.
	logits := plugin.F32("logits", []int{3}, []float32{-5, 20, 3})
	before := slices.Clone(logits.Data)
	if _, err := s.topK([]plugin.Tensor{logits}, nil); err != nil || !slices.Equal(logits.Data, before) {
		t.Fatalf("input tensor changed: %v", err)
	}
}
