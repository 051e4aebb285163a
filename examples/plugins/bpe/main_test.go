package main

import (
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
	b, err := os.ReadFile("vocab/gpt2.bin")
	if err != nil {
		t.Fatal(err)
	}
	if tok, err = tokenizer.LoadBinary(b); err != nil {
		t.Fatal(err)
	}
	loadErr = nil
	if id, ok := tok.TokenToID("<|endoftext|>"); ok {
		eos = id
	}
}

func ready(t testing.TB) { t.Helper(); loaded(t) }

func ids(t testing.TB, ts []plugin.Tensor, name string) []int64 {
	t.Helper()
	for _, x := range ts {
		if x.Name == name {
			v, err := plugin.Int64s(x, nil)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no tensor %q", name)
	return nil
}

// golden are the texts of the tokenizer's golden tests.
func golden(t testing.TB) []string {
	b, err := os.ReadFile("../../../sdk/plugin/tokenizer/testdata/golden/gpt2.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Cases []struct {
			Text string  `json:"text"`
			IDs  []int64 `json:"ids"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range f.Cases {
		out = append(out, c.Text)
	}
	return out
}

func TestEncodeDecode(t *testing.T) {
	ready(t)
	ts, err := Encode("text/plain", []byte("Hello world"))
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(t, ts, "input_ids"); !slices.Equal(got, []int64{15496, 995}) || !slices.Equal(ts[0].Shape, []int{1, 2}) ||
		!slices.Equal(ids(t, ts, "attention_mask"), []int64{1, 1}) {
		t.Errorf("Hello world: %v %v", got, ts[0].Shape)
	}
	ts, _ = Encode("application/json", []byte(`{"inputs": "a b c d e", "parameters": {"max_length": 2, "truncation_side": "left"}}`))
	if got := ids(t, ts, "input_ids"); !slices.Equal(got, []int64{288, 304}) { // " d", " e"
		t.Errorf("left truncation: %v", got)
	}
	for _, bad := range []struct{ ct, body string }{
		{"application/json", `{"inputs": ["a", "b"]}`},
		{"text/plain; max_length=0", "x"},
		{"text/plain", "\xff"},
	} {
		if _, err := Encode(bad.ct, []byte(bad.body)); err == nil {
			t.Errorf("%q %q: no error", bad.ct, bad.body)
		}
	}
	// Decode: a [2, n] batch, an I32 tensor, EOS dropped or kept.
	out, err := Decode([]plugin.Tensor{plugin.I64("output_ids", []int{2, 3}, []int64{15496, 995, 50256, 40, 1101, 50256})}, nil)
	if err != nil || string(out) != `[{"generated_text":"Hello world"},{"generated_text":"I'm"}]` {
		t.Errorf("Decode: %s %v", out, err)
	}
	out, _ = Decode([]plugin.Tensor{plugin.F32("x", []int{3}, []float32{15496, 995, 50256})}, map[string]string{"skip_special_tokens": "false"})
	if string(out) != `[{"generated_text":"Hello world\u003c|endoftext|\u003e"}]` {
		t.Errorf("Decode keeping EOS: %s", out)
	}
	// Half a character: U+FFFD, valid JSON.
	e, _ := Encode("text/plain", []byte("🍕"))
	pizza := ids(t, e, "input_ids")
	out, err = Decode([]plugin.Tensor{plugin.I64("sequences", []int{1, 1}, pizza[:1])}, nil)
	if err != nil || !json.Valid(out) || !strings.Contains(string(out), "\ufffd") {
		t.Errorf("half a character: %s %v", out, err)
	}
	for _, bad := range [][]plugin.Tensor{
		{plugin.F32("a", []int{1}, []float32{0.5})},
		{plugin.F32("a", []int{1, 1, 1}, []float32{1})},
		{plugin.F32("a", []int{1}, []float32{1}), plugin.F32("b", []int{1}, []float32{1})},
	} {
		if _, err := Decode(bad, nil); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

func FuzzEncode(f *testing.F) {
	loaded(f)
	f.Add("text/plain", []byte("naïve café 我爱北京 👍🏽"))
	f.Add("application/json", []byte(`{"inputs": "x", "parameters": {"max_length": 3}}`))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		ts, err := Encode(ct, body)
		if err != nil {
			return
		}
		out, err := Decode(ts[:1], nil)
		if err != nil || !json.Valid(out) {
			t.Fatalf("Decode(Encode): %s %v", out, err)
		}
	})
}

// TestInHost runs the module in the host both ways: text → ids → text
// gives the text back, for every golden text.
func TestInHost(t *testing.T) {
	loaded(t)
	wasm := plugintest.Build(t, "bpe")
	h := plugintest.Host(t)
	t0 := time.Now()
	info, err := h.Validate(context.Background(), wasm)
	if err != nil || !info.Kind.Has(plugins.Preprocess) || !info.Kind.Has(plugins.Postprocess) {
		t.Fatalf("validate: %v %+v", err, info)
	}
	t.Logf("compile and start (loads the vocabulary): %v", time.Since(t0))
	t0 = time.Now()
	if _, err := h.Validate(context.Background(), wasm); err != nil {
		t.Fatal(err)
	}
	t.Logf("again, compiled: %v", time.Since(t0))
	mod := plugintest.Module(wasm)
	ctx := context.Background()
	for _, text := range golden(t) {
		ts, err := h.Preprocess(ctx, "tenant", mod, "text/plain; charset=utf-8", []byte(text))
		if err != nil {
			t.Fatalf("%+q: %v", text, err)
		}
		want, _ := Encode("text/plain", []byte(text))
		if !slices.Equal(ids(t, ts, "input_ids"), ids(t, want, "input_ids")) {
			t.Errorf("%+q: the sandbox and native differ", text)
		}
		// The model would generate here; echo the prompt's ids back.
		body, ct, err := h.Postprocess(ctx, "tenant", mod, &safetensors.File{
			Tensors: []safetensors.Tensor{ts[0]}, Metadata: map[string]string{"model": "gpt2"}})
		if err != nil {
			t.Fatalf("%+q: %v", text, err)
		}
		var got []struct {
			Text string `json:"generated_text"`
		}
		if err := json.Unmarshal(body, &got); err != nil || ct != "application/json" || len(got) != 1 || got[0].Text != text {
			t.Errorf("%+q: round trip %s (%v)", text, body, err)
		}
	}
}

// BenchmarkHost is the latency of one call each way through the host for
// a text of about 128 tokens (p50).
func BenchmarkHost(b *testing.B) {
	ready(b)
	text := []byte(strings.Repeat("Tokenizers split text into pieces that a model knows, and the model reads them as ids. ", 7))
	h := plugintest.Host(b)
	mod := plugintest.Module(plugintest.Build(b, "bpe"))
	ctx := context.Background()
	ts, err := h.Preprocess(ctx, "tenant", mod, "text/plain", text)
	if err != nil {
		b.Fatal(err)
	}
	n := ts[0].NumElements()
	p50 := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	b.Run("preprocess", func(b *testing.B) {
		var d []time.Duration
		for b.Loop() {
			t0 := time.Now()
			if _, err := h.Preprocess(ctx, "tenant", mod, "text/plain", text); err != nil {
				b.Fatal(err)
			}
			d = append(d, time.Since(t0))
		}
		b.ReportMetric(float64(p50(d).Microseconds()), "p50-µs")
		b.ReportMetric(float64(n), "tokens")
	})
	b.Run("postprocess", func(b *testing.B) {
		in := &safetensors.File{Tensors: ts[:1], Metadata: map[string]string{}}
		var d []time.Duration
		for b.Loop() {
			t0 := time.Now()
			if _, _, err := h.Postprocess(ctx, "tenant", mod, in); err != nil {
				b.Fatal(err)
			}
			d = append(d, time.Since(t0))
		}
		b.ReportMetric(float64(p50(d).Microseconds()), "p50-µs")
	})
}
