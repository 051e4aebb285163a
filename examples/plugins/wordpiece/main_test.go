package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aiaas/aiaas/examples/plugins/internal/plugintest"
	"github.com/aiaas/aiaas/internal/safetensors"
	"github.com/aiaas/aiaas/plugins"
	"github.com/aiaas/aiaas/sdk/plugin"
	"github.com/aiaas/aiaas/sdk/plugin/tokenizer"
)

// loaded makes sure the plugin's tokenizer is there natively: a test
// binary compiled before scripts/fetch-vocab.sh ran (a fresh clone's
// first go test) embeds no vocabulary, so read the file it would have.
func loaded(t testing.TB) {
	t.Helper()
	plugintest.Vocab(t)
	if loadErr == nil {
		return
	}
	b, err := os.ReadFile("vocab/tokenizer.bin")
	if err != nil {
		t.Fatal(err)
	}
	if tok, err = tokenizer.LoadBinary(b); err != nil {
		t.Fatal(err)
	}
	loadErr = nil
}

// The plugin logic runs natively here (the vocabulary is embedded when
// scripts/fetch-vocab.sh has run, which plugintest.Vocab does); TestInHost
// builds the wasm module and runs it in the real host.

func ints(t testing.TB, ts []plugin.Tensor, name string) ([]int64, []int) {
	t.Helper()
	for _, x := range ts {
		if x.Name == name {
			v, err := plugin.Int64s(x, nil)
			if err != nil {
				t.Fatal(err)
			}
			return v, x.Shape
		}
	}
	t.Fatalf("no tensor %q", name)
	return nil, nil
}

func TestPrepare(t *testing.T) {
	loaded(t)
	cases := []struct {
		ct, body string
		ids      []int64
		types    []int64
		mask     []int64
		shape    []int
	}{
		{"text/plain", "naïve façade café déjà", []int64{101, 15743, 8508, 7668, 2139, 3900, 102}, nil, nil, []int{1, 7}},
		{"", "Hello, world!", []int64{101, 7592, 1010, 2088, 999, 102}, nil, nil, []int{1, 6}},
		{"application/json", `{"inputs": ["Hello, world!", "hi"]}`,
			[]int64{101, 7592, 1010, 2088, 999, 102, 101, 7632, 102, 0, 0, 0}, nil,
			[]int64{1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0}, []int{2, 6}},
		{"application/json", `{"input": "hi", "parameters": {"max_length": 5, "padding": "max_length"}}`,
			[]int64{101, 7632, 102, 0, 0}, nil, []int64{1, 1, 1, 0, 0}, []int{1, 5}},
		{"text/plain; max_length=4", "a b c d e", []int64{101, 1037, 1038, 102}, nil, nil, []int{1, 4}},
		{"application/json", `{"inputs": "a b", "text_pair": "c", "parameters": {"add_special_tokens": true}}`,
			[]int64{101, 1037, 1038, 102, 1039, 102}, []int64{0, 0, 0, 0, 1, 1}, nil, []int{1, 6}},
		{"text/plain; add_special_tokens=false", "hi", []int64{7632}, nil, nil, []int{1, 1}},
		{"text/plain", "", []int64{101, 102}, nil, nil, []int{1, 2}},
	}
	for i, c := range cases {
		ts, err := Prepare(c.ct, []byte(c.body))
		if err != nil {
			t.Errorf("%d: %v", i, err)
			continue
		}
		ids, shape := ints(t, ts, "input_ids")
		types, _ := ints(t, ts, "token_type_ids")
		mask, _ := ints(t, ts, "attention_mask")
		if !slices.Equal(ids, c.ids) || !slices.Equal(shape, c.shape) || c.types != nil && !slices.Equal(types, c.types) || c.mask != nil && !slices.Equal(mask, c.mask) {
			t.Errorf("%d: ids %v %v types %v mask %v", i, ids, shape, types, mask)
		}
		if ts[0].DType != "I64" {
			t.Errorf("%d: dtype %s", i, ts[0].DType)
		}
	}
	ts, err := Prepare("text/plain; dtype=F32", []byte("hi"))
	if err != nil || ts[0].DType != "F32" {
		t.Fatalf("F32: %v", err)
	}
	if v, _ := ts[0].Float32s(nil); !slices.Equal(v, []float32{101, 7632, 102}) {
		t.Errorf("F32 ids %v", v)
	}
	for _, bad := range []struct{ ct, body string }{
		{"text/plain", "\xff"},
		{"text/plain; charset=latin1", "x"},
		{"application/json", `{"inputs": 3}`},
		{"application/json", `{"inputs": []}`},
		{"application/json", `{}`},
		{"application/json", `{"inputs": ["a"], "text_pair": ["b", "c"]}`},
		{"text/plain; max_length=0", "x"},
		{"text/plain; padding=sideways", "x"},
		{"text/plain; truncation=false; max_length=3", "a b c d"},
		{"application/json", `{"inputs": [` + strings.Repeat(`"a",`, 300) + `"a"]}`},
	} {
		if _, err := Prepare(bad.ct, []byte(bad.body)); err == nil {
			t.Errorf("%q %q: no error", bad.ct, bad.body)
		}
	}
}

func FuzzPrepare(f *testing.F) {
	loaded(f)
	f.Add("text/plain", []byte("naïve café 我爱北京 👍🏽"))
	f.Add("application/json", []byte(`{"inputs": ["a", "b"], "text_pair": ["c", "d"], "parameters": {"max_length": 3}}`))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		ts, err := Prepare(ct, body)
		if err != nil {
			return
		}
		if len(ts) != 3 || ts[0].NumElements() != ts[1].NumElements() || ts[0].NumElements() != ts[2].NumElements() {
			t.Fatalf("tensors %v", ts)
		}
	})
}

// sentence128 is English text of exactly 128 tokens with [CLS] and [SEP].
func sentence128(t testing.TB) string {
	words := strings.Fields(strings.Repeat("Tokenizers split text into pieces that a model knows, and the model reads them as ids. ", 10))
	for n := len(words); n > 0; n-- {
		s := strings.Join(words[:n], " ")
		if e, _ := tok.Encode(s, nil); e.Len() == 128 {
			return s
		}
	}
	t.Fatal("no 128-token sentence")
	return ""
}

func TestInHost(t *testing.T) {
	plugintest.Vocab(t)
	wasm := plugintest.Build(t, "wordpiece")
	h := plugintest.Host(t)
	mod := plugintest.Module(wasm)
	info, err := h.Validate(context.Background(), wasm)
	if err != nil || !info.Kind.Has(plugins.Preprocess) {
		t.Fatalf("validate: %v %+v", err, info)
	}
	loaded(t)
	inputs := []struct{ ct, body string }{
		{"text/plain", "naïve façade café déjà"},
		{"application/json", `{"inputs": ["Ångström résumé", "我爱北京天安门", "👨‍👩‍👧 family", "  tabs\tand\nnewlines  "]}`},
		{"application/json", `{"inputs": ["How old are you?"], "text_pair": ["I'm 6 years old."], "parameters": {"max_length": 16, "padding": "max_length"}}`},
		{"text/plain", sentence128(t)},
		{"text/plain", strings.Repeat("long text ", 100000)}, // 1 MB, truncated at 128 tokens
	}
	for i, in := range inputs {
		got, err := h.Preprocess(context.Background(), "tenant", mod, in.ct, []byte(in.body))
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		want, err := Prepare(in.ct, []byte(in.body))
		if err != nil {
			t.Fatal(err)
		}
		a := safetensors.Encode(&safetensors.File{Tensors: got})
		b := safetensors.Encode(&safetensors.File{Tensors: want})
		if !bytes.Equal(a, b) {
			t.Errorf("%d: the sandbox and native differ", i)
		}
	}
	if _, err := h.Preprocess(context.Background(), "tenant", mod, "application/json", []byte(`{"inputs": 3}`)); err == nil ||
		!strings.Contains(err.Error(), "inputs must be") {
		t.Errorf("bad request: %v", err)
	}
	// What the result looks like to a client that reads it as JSON.
	got, _ := h.Preprocess(context.Background(), "tenant", mod, "text/plain", []byte("Hello, world!"))
	ids, _ := ints(t, got, "input_ids")
	js, _ := json.Marshal(ids)
	if string(js) != "[101,7592,1010,2088,999,102]" {
		t.Errorf("ids %s", js)
	}
}

// BenchmarkPreprocess is the latency of one call through the host for a
// 128-token sentence (p50), against the same natively.
func BenchmarkPreprocess(b *testing.B) {
	loaded(b)
	body := []byte(sentence128(b))
	b.Run("host", func(b *testing.B) {
		h := plugintest.Host(b)
		mod := plugintest.Module(plugintest.Build(b, "wordpiece"))
		ctx := context.Background()
		if _, err := h.Preprocess(ctx, "tenant", mod, "text/plain", body); err != nil {
			b.Fatal(err)
		}
		var d []time.Duration
		for b.Loop() {
			t0 := time.Now()
			if _, err := h.Preprocess(ctx, "tenant", mod, "text/plain", body); err != nil {
				b.Fatal(err)
			}
			d = append(d, time.Since(t0))
		}
		slices.Sort(d)
		b.ReportMetric(float64(d[len(d)/2].Microseconds()), "p50-µs")
		b.ReportMetric(128/d[len(d)/2].Seconds(), "tokens/s")
	})
	b.Run("native", func(b *testing.B) {
		var d []time.Duration
		for b.Loop() {
			t0 := time.Now()
			ts, err := Prepare("text/plain", body)
			if err != nil {
				b.Fatal(err)
			}
			safetensors.Encode(&safetensors.File{Tensors: ts})
			d = append(d, time.Since(t0))
		}
		slices.Sort(d)
		b.ReportMetric(float64(d[len(d)/2].Microseconds()), "p50-µs")
		b.ReportMetric(128/d[len(d)/2].Seconds(), "tokens/s")
	})
}
