package plugins

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aiaas/aiaas/internal/safetensors"
	"github.com/aiaas/aiaas/internal/wasmasm"
	"github.com/tetratelabs/wazero"
)

// latencies runs f b.N times and reports the median per call.
func latencies(b *testing.B, f func()) {
	b.ReportAllocs()
	d := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		f()
		d = append(d, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(d[len(d)*99/100].Nanoseconds()), "p99-ns")
}

// Per-call overhead of a pooled instance: 784 floats host → guest → host,
// with and without the deadline machinery.
func BenchmarkIdentity784(b *testing.B) {
	in := rawF32(make([]float32, 784))
	for _, deadline := range []bool{true, false} {
		b.Run("deadline="+strconv.FormatBool(deadline), func(b *testing.B) {
			h := newHost(b, &Options{noDeadline: !deadline})
			m := mod(b, "identity")
			ctx := context.Background()
			if _, err := h.Preprocess(ctx, "acme", m, "", in); err != nil {
				b.Fatal(err)
			}
			latencies(b, func() {
				if _, err := h.Preprocess(ctx, "acme", m, "", in); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// The host's floor: the same round trip through the hand-assembled echo
// module, which has no language runtime at all.
func BenchmarkEcho784(b *testing.B) {
	in := safetensors.Encode(&safetensors.File{Tensors: []safetensors.Tensor{safetensors.F32("input", []int{1, 784}, make([]float32, 784))}})
	for _, deadline := range []bool{true, false} {
		b.Run("deadline="+strconv.FormatBool(deadline), func(b *testing.B) {
			h := newHost(b, &Options{noDeadline: !deadline})
			m := moduleOf(wasmasm.Echo().Bytes())
			ctx := context.Background()
			latencies(b, func() {
				if _, err := h.Preprocess(ctx, "acme", m, "x", in); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// The deadline check's cost on a guest loop: 100 passes over 784 floats
// (78,400 iterations) per call.
func BenchmarkGuestLoop(b *testing.B) {
	in := rawF32(make([]float32, 784))
	for _, deadline := range []bool{true, false} {
		b.Run("deadline="+strconv.FormatBool(deadline), func(b *testing.B) {
			h := newHost(b, &Options{noDeadline: !deadline})
			m := mod(b, "hostile")
			ctx := context.Background()
			latencies(b, func() {
				if _, err := h.Preprocess(ctx, "acme", m, "sum;100", in); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// png-to-tensor then top-k, the plugin half of an MNIST invocation.
// Compare with BenchmarkNative in examples/plugins/png-to-tensor and
// examples/plugins/top-k.
func BenchmarkPNGTopK(b *testing.B) {
	img, err := os.ReadFile("../examples/plugins/testdata/seven.png")
	if err != nil {
		b.Fatal(err)
	}
	for _, deadline := range []bool{true, false} {
		b.Run("deadline="+strconv.FormatBool(deadline), func(b *testing.B) {
			h := newHost(b, &Options{noDeadline: !deadline})
			pre, post := mod(b, "png-to-tensor"), mod(b, "top-k")
			ctx := context.Background()
			probs := safetensors.F32("output", []int{1, 10}, []float32{.01, .02, .05, .01, .01, .05, .01, .80, .02, .02})
			run := func() {
				ts, err := h.Preprocess(ctx, "acme", pre, "image/png", img)
				if err != nil || len(ts) != 1 {
					b.Fatal(err)
				}
				if _, _, err := h.Postprocess(ctx, "acme", post, &safetensors.File{Tensors: []safetensors.Tensor{probs}}); err != nil {
					b.Fatal(err)
				}
			}
			run()
			latencies(b, run)
		})
	}
}

// The plugin half of the demo endpoint's invocation, as the serving
// benchmark sends it (bench/serve/body: a 28×28 gray stroke): png-to-tensor,
// then top-k on the model's output with the metadata the platform adds,
// one after the other as an invocation runs them.
func BenchmarkDigitInvoke(b *testing.B) {
	img := image.NewGray(image.Rect(0, 0, 28, 28))
	for y := 0; y < 28; y++ {
		for x := 0; x < 28; x++ {
			if d := math.Abs(float64(x-14)) + math.Abs(float64(y-14)/2); d < 6 {
				img.SetGray(x, y, color.Gray{Y: uint8(255 - 40*int(d))})
			}
		}
	}
	var digit bytes.Buffer
	if err := png.Encode(&digit, img); err != nil {
		b.Fatal(err)
	}
	h := newHost(b, nil)
	pre, post := mod(b, "png-to-tensor"), mod(b, "top-k")
	ctx := context.Background()
	probs := &safetensors.File{
		Tensors:  []safetensors.Tensor{safetensors.F32("probabilities", []int{1, 10}, []float32{.01, .02, .05, .01, .01, .05, .01, .80, .02, .02})},
		Metadata: map[string]string{"model": "mnist", "model_version": "1"},
	}
	run := func() {
		if _, err := h.Preprocess(ctx, "acme", pre, "image/png", digit.Bytes()); err != nil {
			b.Fatal(err)
		}
		if _, _, err := h.Postprocess(ctx, "acme", post, probs); err != nil {
			b.Fatal(err)
		}
	}
	run()
	latencies(b, run)
}

// A new instance of a Go-built plugin from its compiled module, with its
// linear memory mapped (the platform default on Unix) or on the Go heap.
func BenchmarkInstantiate(b *testing.B) {
	for _, c := range placements {
		b.Run("memory="+c.name, func(b *testing.B) {
			h := newHost(b, &Options{Prewarm: -1})
			if c.memory != nil {
				h.memory = c.memory
			}
			ctx := context.Background()
			p, err := h.mustPool(ctx, "acme", mod(b, "png-to-tensor"))
			if err != nil {
				b.Fatal(err)
			}
			latencies(b, func() {
				inst, err := p.t.rt.instantiate(ctx, p.cm, p.sha)
				if err != nil {
					b.Fatal(err)
				}
				inst.close()
			})
		})
	}
}

// A memory bomb from call to refusal at a 128 MiB cap, instance replaced.
func BenchmarkMemoryBomb(b *testing.B) {
	for _, c := range placements {
		b.Run("memory="+c.name, func(b *testing.B) {
			h := newHost(b, &Options{CallTimeout: time.Minute, Prewarm: -1})
			if c.memory != nil {
				h.memory = c.memory
			}
			ctx := context.Background()
			m := mod(b, "hostile")
			latencies(b, func() {
				if _, err := h.Preprocess(ctx, "acme", m, "bomb", nil); !errors.Is(err, ErrLimit) {
					b.Fatal(err)
				}
			})
		})
	}
}

// Compiling a Go-built plugin (png-to-tensor, 3.5 MB): cold (empty cache
// folder) and warm (the machine code is read back from the cache folder,
// as on a Lambda warm start or a restarted server).
func BenchmarkCompile(b *testing.B) {
	wasm := built["png-to-tensor"]
	for _, warm := range []bool{false, true} {
		b.Run("warm="+strconv.FormatBool(warm), func(b *testing.B) {
			dir := b.TempDir()
			if warm {
				h := newHost(b, &Options{CacheDir: dir})
				if _, err := h.Validate(context.Background(), wasm); err != nil {
					b.Fatal(err)
				}
			}
			latencies(b, func() {
				d := dir
				if !warm {
					d = b.TempDir()
				}
				h, err := New(context.Background(), &Options{CacheDir: d, Logger: discardLogger})
				if err != nil {
					b.Fatal(err)
				}
				cm, _, err := h.check(context.Background(), h.vrt, wasm)
				if err != nil {
					b.Fatal(err)
				}
				cm.Close(context.Background())
				h.Close(context.Background())
			})
		})
	}
}

// Host memory per idle pooled instance: Go heap and process RSS growth
// over n instances of a Go-built plugin, divided by n.
func BenchmarkIdleInstanceMemory(b *testing.B) {
	const n = 16
	for range b.N {
		b.StopTimer()
		h := newHost(b, &Options{PoolSize: n, Prewarm: -1})
		ctx := context.Background()
		p, err := h.mustPool(ctx, "acme", mod(b, "top-k"))
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		rss0 := rssBytes()
		b.StartTimer()
		insts := make([]*instance, n)
		for i := range insts {
			if insts[i], err = p.get(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		for _, inst := range insts {
			p.put(inst, true)
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		rss1 := rssBytes()
		b.ReportMetric(float64(m1.HeapInuse-m0.HeapInuse)/n, "heap-B/instance")
		b.ReportMetric(float64(rss1-rss0)/n, "rss-B/instance")
		b.ReportMetric(float64(insts[0].memBytes()), "guest-mem-B")
		h.Close(ctx)
	}
}

func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "VmRSS:")), "%d", &kb)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkCompileStall compiles, with a bare wazero runtime (none of
// this package's checks), an instrumented module of 6 functions of locals
// live inside 400 nested loops, while one goroutine starts a collection
// every 5 ms and another sleeps 1 ms at a time. It reports how late the
// sleeper woke (stall-p99-ms, stall-max-ms): with two processors, the
// time no other goroutine could run because the compiling one could not
// be preempted while the collector waited for it (maxLoopCarried).
func BenchmarkCompileStall(b *testing.B) {
	for _, locals := range []int{1000, 500, 160} {
		b.Run(fmt.Sprintf("carried=%d", locals*400), func(b *testing.B) {
			m := wasmasm.Echo()
			for range 6 {
				m.Funcs = append(m.Funcs, wasmasm.Loops(locals, 400))
			}
			n := len(m.Funcs)
			ctx := context.Background()
			var late []time.Duration
			for i := 0; b.Loop(); i++ {
				m.Funcs = append(m.Funcs[:n], wasmasm.Func{Type: wasmasm.TyVoid, Body: bytes.Repeat([]byte{0x01}, i+1)})
				wasm, err := instrument(m.Bytes())
				if err != nil {
					b.Fatal(err)
				}
				rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
				stop := stallProbe(&late)
				cm, err := rt.CompileModule(ctx, wasm)
				stop()
				if err != nil {
					b.Fatal(err)
				}
				cm.Close(ctx)
				rt.Close(ctx)
			}
			slices.Sort(late)
			b.ReportMetric(float64(late[len(late)*99/100])/1e6, "stall-p99-ms")
			b.ReportMetric(float64(late[len(late)-1])/1e6, "stall-max-ms")
		})
	}
}

// BenchmarkFreshMemoryStall calls, from two goroutines at once, a plugin
// that grows its memory to 60 MiB and fills it, each call in a fresh
// mapping (nothing is kept for reuse, the instance is discarded after the
// call), while one goroutine starts a collection every 5 ms and another
// sleeps 1 ms at a time. It reports how late the sleeper woke
// (stall-p99-ms, stall-max-ms): with two processors, the time no other
// goroutine could run because both callers were inside guest code taking
// a page fault for every page the fill touched. prefault=true is the
// platform's behaviour (growth backed before the guest runs on,
// populate); false leaves the faults to the guest.
func BenchmarkFreshMemoryStall(b *testing.B) {
	hog := moduleOf(wasmasm.MemoryHog(960).Bytes())
	in := safetensors.Encode(&safetensors.File{Tensors: []safetensors.Tensor{safetensors.F32("input", []int{1, 4}, make([]float32, 4))}})
	for _, pf := range []bool{false, true} {
		b.Run("prefault="+strconv.FormatBool(pf), func(b *testing.B) {
			defer func(old bool) { prefaultGrowth = old }(prefaultGrowth)
			prefaultGrowth = pf
			h := newHost(b, &Options{Prewarm: -1, HighWaterBytes: 32 << 20})
			if a := mappedAllocator(0, 0); a != nil {
				h.memory = a
			} else {
				b.Skip("no mapped memory on this platform")
			}
			ctx := context.Background()
			if _, err := h.Preprocess(ctx, "acme", hog, "application/octet-stream", in); err != nil {
				b.Fatal(err) // compiled and checked before the clock starts
			}
			var late []time.Duration
			var calls []time.Duration
			var mu sync.Mutex
			for b.Loop() {
				stop := stallProbe(&late)
				var callers sync.WaitGroup
				for range 2 {
					callers.Go(func() {
						t := time.Now()
						if _, err := h.Preprocess(ctx, "acme", hog, "application/octet-stream", in); err != nil {
							b.Error(err)
						}
						mu.Lock()
						calls = append(calls, time.Since(t))
						mu.Unlock()
					})
				}
				callers.Wait()
				stop()
			}
			slices.Sort(late)
			slices.Sort(calls)
			b.ReportMetric(float64(late[len(late)*99/100])/1e6, "stall-p99-ms")
			b.ReportMetric(float64(late[len(late)-1])/1e6, "stall-max-ms")
			b.ReportMetric(float64(calls[len(calls)/2])/1e6, "call-p50-ms")
		})
	}
}

// stallProbe starts a collection every 5 ms, as a busy server has, and a
// goroutine that sleeps 1 ms at a time and appends to late how much later
// than that it woke: the time no goroutine of the process could run. The
// returned stop ends both and waits for them.
func stallProbe(late *[]time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			runtime.GC()
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			t := time.Now()
			time.Sleep(time.Millisecond)
			*late = append(*late, time.Since(t)-time.Millisecond)
		}
	})
	return func() { close(done); wg.Wait() }
}
