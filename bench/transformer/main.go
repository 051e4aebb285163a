// Command transformer compares aiaas' graph runtime (nn/graph) with ONNX
// Runtime on the transformer fixtures of `scripts/onnx-fixtures.sh
// transformers`: the MiniLM-L6-shaped BERT encoder (batch 1, -seq tokens)
// and the GPT-2-small-shaped decoder's prefill (-seq tokens, an empty
// cache: logits and the 24 present tensors).
//
//	go run ./transformer                              # bert-op17, gpt2-op17, seq 128
//	go run ./transformer -models bert-op14 -profile   # aiaas' time per operator too
//
// Both engines load the same .onnx (aiaas as an upload does: onnx.Convert,
// graph.ReadArtifact; ORT with its CPU provider, -ort-threads intra-op
// threads, one inter-op thread, optimizations all), run the same inputs
// (random token ids from a fixed seed), and their outputs must agree within
// -tol · max(1, max |ORT|). Then -rounds rounds run each engine once, in an
// order that rotates from round to round so that both see the same load;
// the medians and their ratio are reported. GOMAXPROCS is the process's
// (set GOMAXPROCS=1 for the single-thread comparison). ORT's intra-op
// threads do not spin after a run unless -ort-spin: spinning, they took
// the second core from aiaas' next round (BERT at two threads: aiaas 23
// ms in the rounds, 16 ms alone). -out writes JSON.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/aiaas/aiaas/bench/internal/ortlib"
	"github.com/aiaas/aiaas/bench/internal/repo"
	"github.com/aiaas/aiaas/nn/graph"
	"github.com/aiaas/aiaas/nn/onnx"
)

type result struct {
	Model      string  `json:"model"`
	Seq        int     `json:"seq"`
	GOMAXPROCS int     `json:"gomaxprocs"`
	ORTThreads int     `json:"ort_threads"`
	GFLOP      float64 `json:"gflop"`
	AiaasMS    float64 `json:"aiaas_median_ms"`
	ORTMS      float64 `json:"ort_median_ms"`
	Ratio      float64 `json:"ratio_aiaas_ort"`
	MaxDiff    float64 `json:"max_abs_diff"`
	Tol        float64 `json:"tol"`
	Allocs     float64 `json:"allocs_per_run"`
}

func main() {
	log.SetFlags(0)
	dir := flag.String("fixtures", os.Getenv("AIAAS_TRANSFORMER_FIXTURES"), "fixtures folder (default: scripts/onnx-fixtures.sh transformers)")
	models := flag.String("models", "bert-op17,gpt2-op17", "fixtures to compare")
	seq := flag.Int("seq", 128, "tokens")
	rounds := flag.Int("rounds", 20, "timed rounds")
	warmup := flag.Int("warmup", 3, "untimed rounds first")
	ortThreads := flag.Int("ort-threads", 1, "ONNX Runtime intra-op threads")
	tol := flag.Float64("tol", 1e-4, "relative tolerance of aiaas vs ORT")
	profile := flag.Bool("profile", false, "print aiaas' time per operator")
	spin := flag.Bool("ort-spin", false, "let ONNX Runtime's intra-op threads spin after a run (its default); off, they do not take the core aiaas' next round needs")
	out := flag.String("out", "", "write the results as JSON")
	decodeCtx := flag.String("decode", "", "instead: greedy decoding tokens/s at these context lengths (comma-separated) of the -models decoders")
	steps := flag.Int("steps", 16, "with -decode: timed decoding steps per generation")
	plotFile := flag.String("plot", "", "with -decode: draw tokens/s vs context into this PNG")
	lib := flag.String("lib", "", "libonnxruntime.so (default: under node_modules)")
	flag.Parse()
	var err error
	if *dir, err = repo.TransformerFixtures(*dir); err != nil {
		log.Fatal(err)
	}
	if err := ortlib.Init(*lib); err != nil {
		log.Fatal(err)
	}
	defer ort.DestroyEnvironment()
	log.Printf("ONNX Runtime %s, %d intra-op thread(s); aiaas GOMAXPROCS=%d; %s", ort.GetVersion(), *ortThreads, runtime.GOMAXPROCS(0), *dir)
	if *decodeCtx != "" {
		var contexts []int
		for _, f := range strings.Split(*decodeCtx, ",") {
			c, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				log.Fatalf("-decode: %v", err)
			}
			contexts = append(contexts, c)
		}
		fmt.Println("| model | context | steps | aiaas tokens/s | ORT tokens/s | aiaas / ORT | same tokens |")
		fmt.Println("|---|---:|---:|---:|---:|---:|---|")
		var all []decodeResult
		for _, name := range strings.Split(*models, ",") {
			res, err := decode(*dir, name, contexts, *steps, *rounds, *ortThreads, *spin)
			if err != nil {
				log.Fatalf("%s: %v", name, err)
			}
			all = append(all, res...)
		}
		if *out != "" {
			b, _ := json.MarshalIndent(all, "", " ")
			if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
				log.Fatal(err)
			}
		}
		if *plotFile != "" {
			if err := plotDecode(all, *plotFile); err != nil {
				log.Fatal(err)
			}
		}
		return
	}
	var results []result
	failed := false
	fmt.Println("| model | tokens | GFLOP | aiaas ms | ORT ms | aiaas / ORT | max \\|Δ\\| aiaas vs ORT | allocs / run |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---|---:|")
	for _, name := range strings.Split(*models, ",") {
		r, err := compare(*dir, name, *seq, *rounds, *warmup, *ortThreads, *tol, *profile, *spin)
		if err != nil {
			log.Printf("%s: %v", name, err)
			failed = true
			continue
		}
		results = append(results, r)
		fmt.Printf("| %s | %d | %.2f | %.2f | %.2f | %.3f | %.2g (tol %.2g) | %.0f |\n", r.Model, r.Seq, r.GFLOP, r.AiaasMS, r.ORTMS, r.Ratio, r.MaxDiff, r.Tol, r.Allocs)
	}
	if *out != "" {
		b, _ := json.MarshalIndent(results, "", " ")
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	if failed {
		os.Exit(1)
	}
}

// fixtures runs scripts/onnx-fixtures.sh transformers from the repository.
type fixture struct {
	Model  string         `json:"model"`
	File   string         `json:"file"`
	Config map[string]int `json:"config"`
}

func compare(dir, name string, seq, rounds, warmup, ortThreads int, tol float64, profile, spin bool) (result, error) {
	r := result{Model: name, Seq: seq, GOMAXPROCS: runtime.GOMAXPROCS(0), ORTThreads: ortThreads}
	var fx fixture
	b, err := os.ReadFile(filepath.Join(dir, name+".json"))
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &fx); err != nil {
		return r, err
	}
	model, err := os.ReadFile(filepath.Join(dir, fx.File))
	if err != nil {
		return r, err
	}
	rng := rand.New(rand.NewPCG(1, uint64(seq)))
	ids := make([]int64, seq)
	for i := range ids {
		ids[i] = 1000 + rng.Int64N(int64(fx.Config["vocab_size"]-1000))
	}
	ones := make([]int64, seq)
	for i := range ones {
		ones[i] = 1
	}
	// The inputs, by name, and the outputs' shapes.
	type in struct {
		name  string
		shape []int64
		i64   []int64
	}
	var ins []in
	var outNames []string
	var outShapes [][]int64
	switch fx.Model {
	case "bert":
		ins = []in{{"input_ids", []int64{1, int64(seq)}, ids}, {"attention_mask", []int64{1, int64(seq)}, ones}, {"token_type_ids", []int64{1, int64(seq)}, make([]int64, seq)}}
		outNames, outShapes = []string{"last_hidden_state"}, [][]int64{{1, int64(seq), int64(fx.Config["hidden"])}}
	case "gpt2":
		ins = []in{{"input_ids", []int64{1, int64(seq)}, ids}, {"attention_mask", []int64{1, int64(seq)}, ones}}
		outNames, outShapes = []string{"logits"}, [][]int64{{1, int64(seq), int64(fx.Config["vocab_size"])}}
		h, hd := int64(fx.Config["heads"]), int64(fx.Config["hidden"]/fx.Config["heads"])
		for i := 0; i < fx.Config["layers"]; i++ {
			for _, kv := range []string{"key", "value"} {
				ins = append(ins, in{name: fmt.Sprintf("past_key_values.%d.%s", i, kv), shape: []int64{1, h, 0, hd}})
				outNames = append(outNames, fmt.Sprintf("present.%d.%s", i, kv))
				outShapes = append(outShapes, []int64{1, h, int64(seq), hd})
			}
		}
	default:
		return r, fmt.Errorf("unknown model %q", fx.Model)
	}

	// ONNX Runtime.
	var ortIns, ortOuts []ort.Value
	var inNames []string
	for _, x := range ins {
		inNames = append(inNames, x.name)
		var v ort.Value
		if x.i64 != nil {
			v, err = ort.NewTensor(ort.Shape(x.shape), x.i64)
		} else {
			v, err = ort.NewEmptyTensor[float32](ort.Shape(x.shape))
		}
		if err != nil {
			return r, fmt.Errorf("ORT input %s: %w", x.name, err)
		}
		defer v.Destroy()
		ortIns = append(ortIns, v)
	}
	var ortY []*ort.Tensor[float32]
	for _, s := range outShapes {
		v, err := ort.NewEmptyTensor[float32](ort.Shape(s))
		if err != nil {
			return r, err
		}
		defer v.Destroy()
		ortOuts = append(ortOuts, v)
		ortY = append(ortY, v)
	}
	opts, err := ortlib.Options(ortThreads)
	if err != nil {
		return r, err
	}
	if !spin {
		if err := opts.AddSessionConfigEntry("session.intra_op.allow_spinning", "0"); err != nil {
			opts.Destroy()
			return r, err
		}
	}
	sess, err := ort.NewAdvancedSessionWithONNXData(model, inNames, outNames, ortIns, ortOuts, opts)
	opts.Destroy()
	if err != nil {
		return r, fmt.Errorf("ORT session: %w", err)
	}
	defer sess.Destroy()

	// aiaas.
	art, err := onnx.Convert(model, nil)
	if err != nil {
		return r, err
	}
	m, _, err := graph.ReadArtifact(art, nil)
	if err != nil {
		return r, err
	}
	art, model = nil, nil
	var gins []*graph.Tensor
	for _, x := range ins {
		shape := make([]int, len(x.shape))
		for i, d := range x.shape {
			shape[i] = int(d)
		}
		if x.i64 != nil {
			gins = append(gins, graph.TensorFrom(shape, x.i64))
		} else {
			gins = append(gins, graph.NewTensor(graph.Float32, shape...))
		}
	}
	ctx := context.Background()
	var gouts []*graph.Tensor
	aiaasRun := func() error {
		var err error
		gouts, err = m.Run(ctx, gins, gouts)
		return err
	}
	if err := aiaasRun(); err != nil {
		return r, err
	}
	if err := sess.Run(); err != nil {
		return r, err
	}
	flops, _, _ := m.Cost(gins)
	r.GFLOP = flops / 1e9
	for i, y := range ortY {
		want := y.GetData()
		got := gouts[i].Float32s()
		if len(got) != len(want) {
			return r, fmt.Errorf("output %s: %d values, ORT %d", outNames[i], len(got), len(want))
		}
		scale := 0.0
		for _, v := range want {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
		t := tol * math.Max(1, scale)
		for j := range got {
			d := math.Abs(float64(got[j]) - float64(want[j]))
			if !(d <= t) {
				return r, fmt.Errorf("output %s: max |Δ| %.3g at %d > %.3g", outNames[i], d, j, t)
			}
			if d > r.MaxDiff {
				r.MaxDiff, r.Tol = d, t
			}
		}
		if r.Tol == 0 {
			r.Tol = t
		}
	}
	for range warmup {
		if err := aiaasRun(); err != nil {
			return r, err
		}
		if err := sess.Run(); err != nil {
			return r, err
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.Mallocs
	if err := aiaasRun(); err != nil {
		return r, err
	}
	runtime.ReadMemStats(&ms)
	r.Allocs = float64(ms.Mallocs - before)
	engines := []func() error{aiaasRun, sess.Run}
	samples := [2][]float64{}
	for rd := 0; rd < rounds; rd++ {
		for k := range engines {
			e := (k + rd) % 2
			t := time.Now()
			if err := engines[e](); err != nil {
				return r, err
			}
			samples[e] = append(samples[e], float64(time.Since(t).Nanoseconds())/1e6)
		}
	}
	r.AiaasMS, r.ORTMS = median(samples[0]), median(samples[1])
	r.Ratio = r.AiaasMS / r.ORTMS
	if profile {
		prof, err := m.Profile(ctx, gins, 5)
		if err != nil {
			return r, err
		}
		byOp := map[string]time.Duration{}
		var total time.Duration
		for _, p := range prof {
			byOp[p.Op] += p.Time / 5
			total += p.Time / 5
		}
		type kv struct {
			op string
			t  time.Duration
		}
		var list []kv
		for k, v := range byOp {
			list = append(list, kv{k, v})
		}
		sort.Slice(list, func(i, j int) bool { return list[i].t > list[j].t })
		log.Printf("%s: aiaas per operator (%.2f ms in all):", name, total.Seconds()*1e3)
		for _, e := range list {
			log.Printf("  %-22s %8.3f ms %5.1f%%", e.op, e.t.Seconds()*1e3, 100*e.t.Seconds()/total.Seconds())
		}
	}
	return r, nil
}

func median(v []float64) float64 {
	s := append([]float64{}, v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return math.NaN()
	}
	return s[len(s)/2]
}
