// Command ort compares aiaas' forward pass with ONNX Runtime's, in one
// process, on the same weights and the same inputs.
//
// The model (an artifact given with -artifact, or a freshly initialised
// MNIST MLP 784-128-128-10) is exported with nn/onnx and loaded into ONNX
// Runtime's CPU provider twice: with one intra-op thread and with its
// default thread pool. For each batch size every engine's outputs are
// checked against ours (max |Δ| ≤ -tol), then the engines are timed
// interleaved: each round runs every engine once, in an order that rotates
// from round to round, so all see the same machine load. Each sample is one
// Forward (or Run) call on preallocated buffers.
//
//	go run ./ort -lib node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/aiaas/aiaas/bench/internal/machine"
	"github.com/aiaas/aiaas/bench/internal/ortlib"
	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/nn/onnx"
)

type engine struct {
	name    string
	threads int // ORT intra-op threads; 0 = ORT default; -1 = ours
	run     func() error
	out     []float32
	samples []float64 // µs per call
}

type row struct {
	Batch       int     `json:"batch"`
	Engine      string  `json:"engine"`
	MedianUS    float64 `json:"median_us"`
	P99US       float64 `json:"p99_us"`
	Samples     int     `json:"samples"`
	GFLOPs      float64 `json:"gflops"`
	FracPeak    float64 `json:"fraction_of_measured_peak"`
	RatioVsORT1 float64 `json:"median_ratio_vs_ort_1thread"` // ours / ORT(1 thread): < 1 means we are faster
	MaxAbsDiff  float64 `json:"max_abs_diff_vs_aiaas"`
}

type result struct {
	Command    string             `json:"command"`
	Date       string             `json:"date"`
	Machine    machine.Info       `json:"machine"`
	PeakGFLOPs float64            `json:"measured_peak_gflops"` // best of Peaks
	Peaks      map[string]float64 `json:"peaks_gflops"`         // n³ SGEMM per implementation and size`
	ORTVersion string             `json:"onnxruntime_version"`
	Model      string             `json:"model"`
	Params     int                `json:"params"`
	Rounds     int                `json:"rounds"`
	Rows       []row              `json:"rows"`
}

func main() {
	lib := flag.String("lib", "", "path to libonnxruntime.so (default: found under node_modules/onnxruntime-node)")
	artifact := flag.String("artifact", "", "aiaas model artifact (default: a fresh 784-128-128-10 MNIST MLP)")
	batches := flag.String("batches", "1,8,64,256", "batch sizes")
	rounds := flag.Int("rounds", 40, "interleaved rounds per batch size")
	callsFor := flag.Int("rows-per-round", 256, "each engine runs ceil(this/batch) timed calls per round")
	tol := flag.Float64("tol", 1e-4, "max |Δ| allowed between engines' outputs")
	out := flag.String("out", "results/ort.json", "results file")
	blasList := flag.String("blas", "gonum,kernels", "BLAS implementations to run aiaas on (interleaved); the first is the reference for max |Δ|")
	flag.Parse()
	log.SetFlags(0)

	blasNames := strings.Split(*blasList, ",")
	for _, b := range blasNames {
		if err := machine.UseBLAS(b); err != nil {
			log.Fatal(err)
		}
	}
	if err := ortlib.Init(*lib); err != nil {
		log.Fatalf("ort: %v", err)
	}
	defer ort.DestroyEnvironment()

	var m *nn.Model
	var err error
	if *artifact != "" {
		b, err := os.ReadFile(*artifact)
		if err != nil {
			log.Fatal(err)
		}
		if m, _, err = nn.ReadArtifact(b, nil); err != nil {
			log.Fatal(err)
		}
	} else if m, err = nn.New(nn.MLP("mnist", 784, []int{128, 128}, nn.ActReLU, 10, nn.ActSoftmax), 1); err != nil {
		log.Fatal(err)
	}
	var model bytes.Buffer
	if err := onnx.Export(&model, m); err != nil {
		log.Fatal(err)
	}
	spec := m.Spec()
	inName, outName := spec.Inputs[0].Name, spec.Outputs[0].Name

	info := machine.Describe()
	peaks := map[string]float64{}
	// The peak is the best square SGEMM any implementation reaches here;
	// sizes from cache-resident to memory-bound, since under a shared load
	// one size alone can land on a bad moment.
	for _, n := range []int{256, 512, 1024} {
		for _, b := range blasNames {
			machine.UseBLAS(b)
			peaks[fmt.Sprintf("blas32 %s n=%d", b, n)] = machine.PeakSGEMM(n, 5)
		}
		for _, th := range []int{1, 0} {
			g, err := ortlib.PeakSGEMM(n, th, 5)
			if err != nil {
				log.Fatalf("ort peak: %v", err)
			}
			peaks[fmt.Sprintf("onnxruntime threads=%d n=%d", th, n)] = g
		}
	}
	peak := 0.0
	for _, g := range peaks {
		peak = math.Max(peak, g)
	}
	res := result{
		Command: "go run ./ort " + strings.Join(os.Args[1:], " "),
		Date:    time.Now().UTC().Format(time.RFC3339), Machine: info, PeakGFLOPs: peak, Peaks: peaks,
		ORTVersion: ort.GetVersion(), Model: strings.TrimSpace(fmt.Sprintf("MLP %d-%v-%d %s", m.InputDim(), layerWidths(spec), m.OutputDim(), *artifact)),
		Params: m.NumParams(), Rounds: *rounds,
	}
	log.Printf("machine: %s, nproc %d, n³ SGEMM GFLOP/s %v (theoretical %.0f), ORT %s",
		info.CPU, info.NProc, peaks, info.TheoreticalGFLOP, res.ORTVersion)

	r := rand.New(rand.NewPCG(7, 7))
	for _, bs := range strings.Split(*batches, ",") {
		batch, err := strconv.Atoi(strings.TrimSpace(bs))
		if err != nil || batch < 1 {
			log.Fatalf("bad batch %q", bs)
		}
		x := make([]float32, batch*m.InputDim())
		for i := range x {
			x[i] = r.Float32() // MNIST pixels are in [0, 1]
		}
		var engines []*engine
		for _, b := range blasNames {
			e := &engine{name: "aiaas " + b, threads: -1, out: make([]float32, batch*m.OutputDim())}
			e.run = func() error {
				machine.UseBLAS(b) // one pointer store; it must precede each call as engines alternate
				_, err := m.Forward(e.out, x, batch)
				return err
			}
			engines = append(engines, e)
		}
		ours := engines[0]
		var cleanup []func()
		for _, th := range []int{1, 0} {
			e, done, err := ortEngine(model.Bytes(), inName, outName, x, batch, m.InputDim(), m.OutputDim(), th)
			if err != nil {
				log.Fatalf("ort session: %v", err)
			}
			engines = append(engines, e)
			cleanup = append(cleanup, done)
		}
		// Correctness first, on the very buffers that are timed.
		for _, e := range engines {
			if err := e.run(); err != nil {
				log.Fatalf("%s batch %d: %v", e.name, batch, err)
			}
		}
		diffs := map[string]float64{}
		for _, e := range engines {
			d := maxDiff(e.out, ours.out)
			diffs[e.name] = d
			if !(d <= *tol) {
				log.Fatalf("%s batch %d: outputs differ from aiaas by %g > %g", e.name, batch, d, *tol)
			}
		}
		calls := (*callsFor + batch - 1) / batch
		for i := 0; i < 3; i++ { // warm-up: pools, caches, ORT's arena
			for _, e := range engines {
				e.run()
			}
		}
		for rd := 0; rd < *rounds; rd++ {
			for k := range engines {
				e := engines[(k+rd)%len(engines)]
				for c := 0; c < calls; c++ {
					t := time.Now()
					if err := e.run(); err != nil {
						log.Fatal(err)
					}
					e.samples = append(e.samples, float64(time.Since(t).Nanoseconds())/1e3)
				}
			}
		}
		flops := m.ForwardFLOPs(batch)
		var ort1 float64
		for _, e := range engines {
			med, p99 := quantile(e.samples, 0.5), quantile(e.samples, 0.99)
			if e.threads == 1 {
				ort1 = med
			}
			gf := flops / (med / 1e6) / 1e9
			res.Rows = append(res.Rows, row{Batch: batch, Engine: e.name, MedianUS: med, P99US: p99, Samples: len(e.samples),
				GFLOPs: gf, FracPeak: gf / peak, MaxAbsDiff: diffs[e.name]})
		}
		for i := len(res.Rows) - len(engines); i < len(res.Rows); i++ {
			res.Rows[i].RatioVsORT1 = res.Rows[i].MedianUS / ort1
		}
		for _, f := range cleanup {
			f()
		}
	}

	fmt.Printf("Forward pass, %s (%d params), %d interleaved rounds; %s, nproc %d, measured peak (best n³ SGEMM) %.1f GFLOP/s; ONNX Runtime %s\n\n",
		res.Model, res.Params, res.Rounds, info.CPU, info.NProc, peak, res.ORTVersion)
	fmt.Println("| batch | engine | median µs | p99 µs | GFLOP/s | % of peak | median / ORT 1-thread | max abs diff |")
	fmt.Println("|---:|---|---:|---:|---:|---:|---:|---:|")
	for _, w := range res.Rows {
		fmt.Printf("| %d | %s | %.1f | %.1f | %.2f | %.1f %% | %.2f× | %.1e |\n", w.Batch, w.Engine, w.MedianUS, w.P99US, w.GFLOPs, 100*w.FracPeak, w.RatioVsORT1, w.MaxAbsDiff)
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		log.Fatal(err)
	}
	js, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(*out, append(js, '\n'), 0o644); err != nil {
		log.Fatal(err)
	}
}

func ortEngine(model []byte, inName, outName string, x []float32, batch, in, outDim, threads int) (*engine, func(), error) {
	opts, err := ortlib.Options(threads)
	if err != nil {
		return nil, nil, err
	}
	defer opts.Destroy()
	xt, err := ort.NewTensor(ort.NewShape(int64(batch), int64(in)), x)
	if err != nil {
		return nil, nil, err
	}
	yt, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(batch), int64(outDim)))
	if err != nil {
		return nil, nil, err
	}
	s, err := ort.NewAdvancedSessionWithONNXData(model, []string{inName}, []string{outName}, []ort.Value{xt}, []ort.Value{yt}, opts)
	if err != nil {
		return nil, nil, err
	}
	name := "onnxruntime default threads"
	if threads == 1 {
		name = "onnxruntime 1 thread"
	}
	e := &engine{name: name, threads: threads, out: yt.GetData()}
	e.run = s.Run
	return e, func() { s.Destroy(); xt.Destroy(); yt.Destroy() }, nil
}

func layerWidths(s nn.Spec) []int {
	var w []int
	for _, l := range s.Layers[:len(s.Layers)-1] {
		if l.Type == nn.LayerDense {
			w = append(w, l.Units)
		}
	}
	return w
}

func maxDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

func quantile(v []float64, q float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[int(q*float64(len(s)-1)+0.5)]
}
