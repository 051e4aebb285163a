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
