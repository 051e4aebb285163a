package plugins

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aiaas/aiaas/internal/safetensors"
	"github.com/aiaas/aiaas/internal/wasmasm"
)

func f32s(t testing.TB, ts []safetensors.Tensor, name string) []float32 {
	t.Helper()
	for _, x := range ts {
		if x.Name == name {
			v, err := x.Float32s(nil)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no tensor %q in %d", name, len(ts))
	return nil
}

func rawF32(v []float32) []byte {
	return safetensors.F32("x", []int{len(v)}, v).Data
}

func TestIdentityRoundTrip(t *testing.T) {
	h := newHost(t, nil)
	ctx := context.Background()
	in := make([]float32, 784)
	for i := range in {
		in[i] = float32(i) / 7
	}
	ts, err := h.Preprocess(ctx, "acme", mod(t, "identity"), "application/octet-stream", rawF32(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 1 || ts[0].Name != "input" || len(ts[0].Shape) != 2 || ts[0].Shape[1] != 784 {
		t.Fatalf("tensors %+v", ts)
	}
	got := f32s(t, ts, "input")
	for i := range in {
		if got[i] != in[i] {
			t.Fatalf("element %d: %v != %v", i, got[i], in[i])
		}
	}
	body, ct, err := h.Postprocess(ctx, "acme", mod(t, "identity"), &safetensors.File{Tensors: ts})
	if err != nil {
		t.Fatal(err)
	}
	if ct != "application/x-safetensors" {
		t.Errorf("content type %q", ct)
	}
	f, err := safetensors.Decode(body, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.Tensors[0].Data, ts[0].Data) {
		t.Error("postprocess changed the tensor")
	}
	// Wrong kind: top-k has no preprocess.
	if _, err := h.Preprocess(ctx, "acme", mod(t, "top-k"), "", nil); !errors.Is(err, ErrInvalidModule) {
		t.Errorf("preprocess on a postprocess-only plugin: %v", err)
	}
}

// The hand-assembled echo plugin proves a module built without Go or any
// toolchain works through the ABI.
func TestHandMadePlugin(t *testing.T) {
	h := newHost(t, nil)
	want := safetensors.Encode(&safetensors.File{Tensors: []safetensors.Tensor{safetensors.F32("input", []int{1, 3}, []float32{1, 2, 3})}})
	ts, err := h.Preprocess(context.Background(), "acme", moduleOf(wasmasm.Echo().Bytes()), "x", want)
	if err != nil {
		t.Fatal(err)
	}
	if got := f32s(t, ts, "input"); len(got) != 3 || got[2] != 3 {
		t.Fatalf("got %v", got)
	}
	// Its output is not safetensors when its input is not.
	_, err = h.Preprocess(context.Background(), "acme", moduleOf(wasmasm.Echo().Bytes()), "x", []byte("nope"))
	if !errors.Is(err, ErrPluginError) {
		t.Fatalf("garbage output: %v", err)
	}
}

// digit draws a dark "7"-like stroke on a light w×h background.
func digit(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{250, 250, 245, 255})
		}
	}
	ink := color.RGBA{10, 10, 20, 255}
	th := max(1, w/20)
	for x := w / 4; x < 3*w/4; x++ { // top bar
		for d := 0; d < th; d++ {
			img.Set(x, h/5+d, ink)
		}
	}
	for y := h / 5; y < 4*h/5; y++ { // diagonal
		x := 3*w/4 - (y-h/5)*(w/4)/(3*h/5)
		for d := 0; d < th; d++ {
			img.Set(x+d, y, ink)
		}
	}
	return img
}

func encodePNG(t testing.TB, img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestPNGToTensor(t *testing.T) {
	h := newHost(t, nil)
	ctx := context.Background()
	cases := []struct {
		ct   string
		body []byte
		err  error
	}{
		{"image/png", encodePNG(t, digit(280, 280)), nil},
		{"image/png", encodePNG(t, digit(37, 90)), nil},
		{"image/jpeg", encodeJPEG(t, digit(400, 300)), nil},
		{"", encodePNG(t, digit(64, 64)), nil}, // sniffed
		{"image/png", []byte("\x89PNG\r\n\x1a\nbroken"), ErrPluginError},
		{"text/plain", []byte("7"), ErrPluginError},
	}
	for i, c := range cases {
		ts, err := h.Preprocess(ctx, "acme", mod(t, "png-to-tensor"), c.ct, c.body)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("%d: got %v, want %v", i, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%d: %v", i, err)
			continue
		}
		px := f32s(t, ts, "input")
		if len(px) != 784 || ts[0].Shape[0] != 1 {
			t.Fatalf("%d: shape %v", i, ts[0].Shape)
		}
		var mass, mx, my float64
		x0, x1, y0, y1 := 28, -1, 28, -1
		for j, v := range px {
			if v < 0 || v > 1 {
				t.Fatalf("%d: pixel %d = %v outside [0,1]", i, j, v)
			}
			x, y := j%28, j/28
			mass += float64(v)
			mx += float64(v) * (float64(x) + .5)
			my += float64(v) * (float64(y) + .5)
			if v > 0.1 {
				x0, x1, y0, y1 = min(x0, x), max(x1, x), min(y0, y), max(y1, y)
			}
		}
		// Inverted (ink is bright), centred by mass, longest side ≈ 20 px.
		if mass < 10 || math.Abs(mx/mass-14) > 1.5 || math.Abs(my/mass-14) > 1.5 {
			t.Errorf("%d: mass %.1f centre (%.2f, %.2f)", i, mass, mx/mass, my/mass)
		}
		if side := max(x1-x0+1, y1-y0+1); side < 18 || side > 21 {
			t.Errorf("%d: digit box %d px, want about 20", i, side)
		}
	}
}

func TestTopK(t *testing.T) {
	h := newHost(t, nil)
	probs := []float32{.01, .02, .05, .01, .01, .05, .01, .80, .02, .02}
	logits := []float32{0, 1, 2, 3, 9, 1, 0, 8, 1, 7}
	cases := []struct {
		shape  []int
		v      []float32
		params map[string]string
		want   []int
		label0 string
	}{
		{[]int{1, 10}, probs, nil, []int{7, 2, 5}, "7"},
		{[]int{10}, logits, map[string]string{"k": "2"}, []int{4, 7}, "4"},
		{[]int{1, 10}, probs, map[string]string{"k": "1", "labels": "zero,one,two,three,four,five,six,seven,eight,nine"}, []int{7}, "seven"},
	}
	for i, c := range cases {
		body, ct, err := h.Postprocess(context.Background(), "acme", mod(t, "top-k"),
			&safetensors.File{Metadata: c.params, Tensors: []safetensors.Tensor{safetensors.F32("output", c.shape, c.v)}})
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		var got struct {
			Predictions []struct {
				Label string
				Index int
				Score float64
			}
		}
		if ct != "application/json" || json.Unmarshal(body, &got) != nil {
			t.Fatalf("%d: %s %s", i, ct, body)
		}
		if len(got.Predictions) != len(c.want) || got.Predictions[0].Label != c.label0 {
			t.Fatalf("%d: %s", i, body)
		}
		sum := 0.0
		for j, p := range got.Predictions {
			if p.Index != c.want[j] {
				t.Errorf("%d: prediction %d index %d want %d", i, j, p.Index, c.want[j])
			}
			sum += p.Score
		}
		if sum > 1.0001 || got.Predictions[0].Score < 0.5 {
			t.Errorf("%d: scores %s", i, body)
		}
	}
	_, _, err := h.Postprocess(context.Background(), "acme", mod(t, "top-k"),
		&safetensors.File{Metadata: map[string]string{"k": "0"}, Tensors: []safetensors.Tensor{safetensors.F32("output", []int{2}, []float32{1, 2})}})
	if !errors.Is(err, ErrPluginError) || !strings.Contains(err.Error(), "parameter k") {
		t.Errorf("bad k: %v", err)
	}
}

// capture is a slog handler that keeps records for tests.
type capture struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (c *capture) Enabled(context.Context, slog.Level) bool { return true }
func (c *capture) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	c.recs = append(c.recs, r.Clone())
	c.mu.Unlock()
	return nil
}
func (c *capture) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *capture) WithGroup(string) slog.Handler      { return c }

func (c *capture) find(msg string) map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.recs {
		if r.Message == msg {
			m := map[string]string{}
			r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
			return m
		}
	}
	return nil
}

// Every limit, hit by a hostile module; after each, a good call on the
// same pool must succeed (the broken instance was replaced).
func TestLimits(t *testing.T) {
	logs := &capture{}
	h := newHost(t, &Options{
		CallTimeout:      10 * time.Second, // a Go runtime's out-of-memory traceback takes 0.6 s, more under -race
		MemoryLimitPages: 512,              // 32 MiB
		HighWaterBytes:   24 << 20,
		MaxOutputBytes:   1 << 20,
		MaxInputBytes:    1 << 20,
		MaxLogBytes:      100,
		PoolSize:         1,
		Logger:           slog.New(logs),
	})
	ctx := context.Background()
	m := mod(t, "hostile")
	cases := []struct {
		mode    string
		body    []byte
		err     error
		msg     string
		discard bool // the instance must be replaced
	}{
		{"bomb", nil, ErrLimit, "memory", true},
		{"big;2", nil, ErrLimit, "output is", false},
		{"panic", nil, ErrTrap, "", true},
		{"recurse", nil, nil, "", true}, // ErrTrap or ErrLimit: stack growth is memory growth
		{"error;10", nil, ErrPluginError, "eeeeeeeeee", false},
		{"error;10000", nil, ErrPluginError, strings.Repeat("e", 4096), false},
		{"badtensor", nil, ErrPluginError, "invalid tensors", false},
		{"keep;28000", nil, nil, "", true}, // succeeds, but past the high-water mark
		{"ok", make([]byte, 1<<20), ErrLimit, "input is", false},
		{"print;50", nil, nil, "", false},
	}
	for i, c := range cases {
		p, err := h.mustPool(ctx, "acme", m)
		if err != nil {
			t.Fatal(err)
		}
		p.quiesce(t)
		before := p.stats().created
		_, err = h.Preprocess(ctx, "acme", m, c.mode, c.body)
		switch {
		case c.mode == "recurse":
			if !errors.Is(err, ErrTrap) && !errors.Is(err, ErrLimit) {
				t.Errorf("%d %s: %v", i, c.mode, err)
			}
		case c.err == nil && err != nil:
			t.Errorf("%d %s: %v", i, c.mode, err)
		case c.err != nil && (!errors.Is(err, c.err) || !strings.Contains(err.Error(), c.msg)):
			t.Errorf("%d %s: got %v, want %v containing %q", i, c.mode, err, c.err, c.msg)
		}
		if err != nil && strings.Contains(err.Error(), "wasm stack trace") {
			t.Errorf("%d %s: the guest's stack trace reaches the caller: %v", i, c.mode, err)
		}
		// A good call after the bad one.
		ts, err := h.Preprocess(ctx, "acme", m, "ok", nil)
		if err != nil || len(ts) != 1 {
			t.Fatalf("%d %s: the next call failed: %v", i, c.mode, err)
		}
		p.quiesce(t)
		replaced := p.stats().created > before
		if replaced != c.discard {
			t.Errorf("%d %s: instance replaced = %v, want %v", i, c.mode, replaced, c.discard)
		}
	}
	out := logs.find("plugin output")
	if out == nil || out["tenant"] != "acme" || len(out["output"]) != 100 || out["dropped_bytes"] == "0" {
		t.Errorf("captured output: %v", out)
	}
}

func TestTimeout(t *testing.T) {
	h := newHost(t, &Options{CallTimeout: 200 * time.Millisecond})
	ctx := context.Background()
	m := mod(t, "hostile")
	start := time.Now()
	_, err := h.Preprocess(ctx, "acme", m, "loop", nil)
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "did not return within 200ms") {
		t.Fatalf("loop: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the deadline took %v to stop the guest", d)
	}
	// The caller's own deadline is reported as the caller's error.
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := h.Preprocess(cctx, "acme", m, "loop", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("caller deadline: %v", err)
	}
	if _, err := h.Preprocess(ctx, "acme", m, "ok", nil); err != nil {
		t.Fatalf("after timeouts: %v", err)
	}
}

// mustPool returns the pool of (tenant, m), creating it.
func (h *Host) mustPool(ctx context.Context, tenant string, m Module) (*pool, error) {
	tt, err := h.tenant(ctx, tenant)
	if err != nil {
		return nil, err
	}
	return tt.pool(ctx, m)
}

// quiesce waits for the pool's background replacements to finish.
func (p *pool) quiesce(t testing.TB) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if s := p.stats(); s.idle == s.total && len(p.slots) == 0 {
			return
		}
	}
	t.Fatalf("pool did not quiesce: %+v", p.stats())
}

func TestValidContentType(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json":            true,
		"text/plain; charset=utf-8":   true,
		"image/png":                   true,
		"text/plain\x00":              false,
		"text/plain; a=\"b\x00c\"":    false,
		"text/plain\r\nX-Evil: 1":     false,
		"text/plain; charset=\x7futf": false,
		"":                            false,
		"not a type":                  false,
	} {
		if got := validContentType(ct); got != want {
			t.Errorf("validContentType(%q) = %v, want %v", ct, got, want)
		}
	}
}

// TestTenantShare: a tenant whose calls all loop until their deadline
// holds at most half the host's guest slots; another tenant's calls run
// in the other half instead of waiting for a slot and failing busy.
func TestTenantShare(t *testing.T) {
	h := newHost(t, &Options{MaxConcurrency: 4, PoolSize: 4, CallTimeout: 3 * time.Second, QueueTimeout: 500 * time.Millisecond})
	ctx := context.Background()
	m := mod(t, "hostile")
	for _, tenant := range []string{"a", "b"} { // instances ready before the load
		if _, err := h.Preprocess(ctx, tenant, m, "ok", nil); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	busy := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := h.Preprocess(ctx, "a", m, "loop", nil)
			busy <- err
		}()
	}
	// a's two slots are taken: its other two calls fail busy.
	for range 2 {
		if err := <-busy; !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), `tenant "a"`) {
			t.Fatalf("a's calls past its share: %v", err)
		}
	}
	for i := range 5 {
		if _, err := h.Preprocess(ctx, "b", m, "ok", nil); err != nil {
			t.Fatalf("b's call %d beside a's looping ones: %v", i, err)
		}
	}
	wg.Wait()
	for range 2 {
		if err := <-busy; !errors.Is(err, ErrTimeout) {
			t.Errorf("a's looping calls: %v", err)
		}
	}
}
