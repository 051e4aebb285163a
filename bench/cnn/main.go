// Command cnn compares aiaas' graph runtime (nn/graph) with ONNX Runtime on
// whole convolutional networks, the ONNX fixtures of
// scripts/onnx-fixtures.sh (PyTorch exports with PyTorch's output for a
// fixed input), and measures aiaas' peak RSS while serving one of them.
//
//	go run ./cnn                                   # ResNet-18 and MobileNetV2, opset 13, GOMAXPROCS 1 and 2
//	go run ./cnn -models convrelu-op13 -rounds 20  # the small net every runtime version loads
//	go run ./cnn -rss -models resnet18-op13        # only the peak RSS while serving
//
// # What is measured
//
// For each -procs value the command runs itself again with that GOMAXPROCS
// (a fresh process each), which for each model of -models:
//
//  1. loads the .onnx into ONNX Runtime (CPU provider, -ort-threads intra-op
//     threads, one inter-op thread, graph optimizations at level all, the
//     default) and into aiaas as an upload does (onnx.Convert, then
//     graph.ReadArtifact);
//  2. runs both on the fixture's input (batch 1, the very buffers that are
//     then timed) and checks aiaas and ORT against PyTorch's output and
//     against each other: max |Δ| ≤ -tol · max(1, max |PyTorch|);
//  3. counts aiaas' heap allocations per Run after warm-up
//     (runtime.MemStats.Mallocs over -allocs-runs runs);
//  4. times the two interleaved: each of -rounds rounds runs each engine
//     once, in an order that rotates from round to round, so both see the
//     same machine load; each sample is one Run on preallocated tensors
//     (aiaas gets its previous outputs back, ORT its bound output tensor).
//
// GFLOP/s use aiaas' count of the network's operations (Model.Cost:
// multiply-adds count two, element-wise operations one) for both engines,
// and are shown as a fraction of the measured single-core peak: the best n³
// SGEMM (-peak-sizes) of nn/kernels at GOMAXPROCS=1 and of ONNX Runtime's
// MLAS with one thread. At GOMAXPROCS=2 aiaas' kernels may use both cores
// while ORT keeps its one thread, so aiaas can exceed 100 %.
//
// Then, for each model, a fresh process that never loads ONNX Runtime reads
// the aiaas artifact (converted beforehand, as the model store holds it),
// runs the input once, returns the load's garbage to the OS, resets the
// kernel's peak-RSS counter (/proc/self/clear_refs) and serves -rss-runs
// requests one after another, each with a new input tensor and a new output
// as a server decodes and returns them; it reports VmHWM from
// /proc/self/status next to the bound: the model's constants
// (Model.ConstBytes) + one activation arena + 64 MiB.
//
// A model aiaas cannot load yet (an operator the runtime lacks) is reported
// as such, with ORT's times alone; a wrong output or any other error makes
// the command exit with status 1 after writing its results.
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/aiaas/aiaas/bench/internal/machine"
	"github.com/aiaas/aiaas/bench/internal/ortlib"
	"github.com/aiaas/aiaas/nn/graph"
	"github.com/aiaas/aiaas/nn/onnx"
)

// fixtureDepsMissing is scripts/onnx-fixtures.sh's exit status when the
// system Python lacks torch, torchvision or onnx.
const fixtureDepsMissing = 3

// rssSlack is what the issue allows above the weights and one arena.
const rssSlack = 64 << 20

// fixture is a fixture's NAME.json, as scripts/gen-onnx-fixtures.py writes it.
type fixture struct {
	Name   string   `json:"name"`
	Model  string   `json:"model"`
	Opset  int      `json:"opset"`
	File   string   `json:"file"`
	Ops    []string `json:"ops"`
	Input  array    `json:"input"`
	Output array    `json:"output"`
}

type array struct {
	Name   string  `json:"name"`
	File   string  `json:"file"`
	Shape  []int   `json:"shape"`
	MaxAbs float64 `json:"max_abs"`
}

// timing is one engine's samples on one model.
type timing struct {
	MedianMS float64 `json:"median_ms"`
	P99MS    float64 `json:"p99_ms"`
	MinMS    float64 `json:"min_ms"`
	Samples  int     `json:"samples"`
	GFLOPs   float64 `json:"gflops,omitempty"`
	FracPeak float64 `json:"fraction_of_single_core_peak,omitempty"`
}

// row is one model at one GOMAXPROCS.
type row struct {
	Model      string   `json:"model"`
	Opset      int      `json:"opset"`
	Ops        []string `json:"ops"`
	InputShape []int    `json:"input_shape"`
	GOMAXPROCS int      `json:"gomaxprocs"`
	// Status is "ok", "unsupported" (aiaas cannot load the model yet: ORT
	// alone was timed) or "fail" (see Error).
	Status     string   `json:"status"`
	Error      string   `json:"error,omitempty"`
	MissingOps []string `json:"aiaas_missing_ops,omitempty"`

	FLOPs      float64 `json:"flops,omitempty"` // per run, from graph.Model.Cost
	Params     int64   `json:"aiaas_params,omitempty"`
	ConstBytes int64   `json:"aiaas_const_bytes,omitempty"`
	ArenaBytes int     `json:"aiaas_arena_bytes,omitempty"`
	AiaasLoadS float64 `json:"aiaas_load_s,omitempty"` // onnx.Convert + graph.ReadArtifact
	ORTLoadS   float64 `json:"ort_load_s,omitempty"`   // session creation

	Tol           float64 `json:"tol"` // -tol · max(1, max |PyTorch|)
	DiffAiaasRef  float64 `json:"max_abs_diff_aiaas_vs_pytorch"`
	DiffORTRef    float64 `json:"max_abs_diff_ort_vs_pytorch"`
	DiffAiaasORT  float64 `json:"max_abs_diff_aiaas_vs_ort"`
	AllocsPerRun  float64 `json:"aiaas_allocs_per_run"`
	BytesPerRun   float64 `json:"aiaas_alloc_bytes_per_run"`
	AllocsRuns    int     `json:"aiaas_allocs_runs,omitempty"`
	Aiaas         *timing `json:"aiaas,omitempty"`
	ORT           *timing `json:"onnxruntime,omitempty"`
	RatioAiaasORT float64 `json:"median_ratio_aiaas_vs_ort,omitempty"` // < 1: aiaas faster
}

// procsRun is what one child process measured at one GOMAXPROCS.
type procsRun struct {
	GOMAXPROCS int                `json:"gomaxprocs"`
	Date       string             `json:"date"`
	LoadAvg    [2]float64         `json:"loadavg_1min_start_end"`
	Peaks      map[string]float64 `json:"single_core_peaks_gflops"`
	Rows       []row              `json:"rows"`
}

// rssRow is one model's peak RSS while serving, in a fresh process.
type rssRow struct {
	Model      string  `json:"model"`
	GOMAXPROCS int     `json:"gomaxprocs"`
	Runs       int     `json:"runs"`
	Status     string  `json:"status"` // "ok", "unsupported", "fail"
	Error      string  `json:"error,omitempty"`
	ConstBytes int64   `json:"const_bytes,omitempty"`
	ArenaBytes int     `json:"arena_bytes,omitempty"`
	BoundBytes int64   `json:"bound_bytes,omitempty"` // const + arena + 64 MiB
	HWMLoad    int64   `json:"vmhwm_after_load_bytes,omitempty"`
	HWMServe   int64   `json:"vmhwm_serving_bytes,omitempty"` // after the reset, over the runs
	HWMReset   bool    `json:"vmhwm_reset"`                   // false: HWMServe includes the load
	ORTMapped  bool    `json:"onnxruntime_mapped"`            // libonnxruntime in /proc/self/maps: must be false
	RSSEnd     int64   `json:"vmrss_end_bytes,omitempty"`
	HeapSys    uint64  `json:"go_heap_sys_bytes,omitempty"`
	NumGC      uint32  `json:"go_num_gc_serving,omitempty"`
	Within     bool    `json:"within_bound"`
	RunMS      float64 `json:"median_run_ms,omitempty"`
	Date       string  `json:"date"`
}

type result struct {
	Command        string             `json:"command"`
	Date           string             `json:"date"`
	LoadAvg        [2]float64         `json:"loadavg_1min_start_end"`
	Machine        machine.Info       `json:"machine"`
	Git            string             `json:"git,omitempty"`
	ORTVersion     string             `json:"onnxruntime_version,omitempty"`
	ORTThreads     int                `json:"onnxruntime_intra_op_threads"`
	Fixtures       string             `json:"fixtures"`
	Rounds         int                `json:"rounds"`
	Warmup         int                `json:"warmup"`
	TolRel         float64            `json:"tol_relative"`
	PeakGFLOPs     float64            `json:"single_core_peak_gflops,omitempty"` // best of Peaks over all runs
	Peaks          map[string]float64 `json:"single_core_peaks_gflops,omitempty"`
	Runs           []procsRun         `json:"runs,omitempty"`
	RSS            []rssRow           `json:"rss,omitempty"`
	RSSRunsPerTest int                `json:"rss_runs"`
}

type config struct {
	models     []string
	fixtures   string
	lib        string
	rounds     int
	warmup     int
	tol        float64
	allocsRuns int
	ortThreads int
	peakSizes  []int
	rssRuns    int
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("cnn: ")
	modelsFlag := flag.String("models", "resnet18-op13,mobilenet_v2-op13", "fixtures to run (names in fixtures.json), or all")
	fixtures := flag.String("fixtures", "", "fixtures folder (default: $AIAAS_ONNX_FIXTURES, else what scripts/onnx-fixtures.sh prints)")
	lib := flag.String("lib", "", "path to libonnxruntime.so (default: found under node_modules/onnxruntime-node)")
	rounds := flag.Int("rounds", 40, "interleaved rounds (one timed Run per engine each)")
	warmup := flag.Int("warmup", 3, "untimed runs per engine before the allocation count and the rounds")
	tol := flag.Float64("tol", 1e-4, "max |Δ| allowed, relative to max(1, max |PyTorch output|)")
	allocsRuns := flag.Int("allocs-runs", 10, "aiaas runs over which heap allocations are counted")
	ortThreads := flag.Int("ort-threads", 1, "ONNX Runtime intra-op threads (0: its default pool); inter-op threads are 1")
	procs := flag.String("procs", "1,2", "GOMAXPROCS values; each runs in a fresh process")
	peakSizes := flag.String("peak-sizes", "256,512,1024", "n of the n³ SGEMMs that measure the single-core peak")
	rssOnly := flag.Bool("rss", false, "only the peak RSS while serving (no ONNX Runtime anywhere)")
	rssRuns := flag.Int("rss-runs", 200, "requests served in the peak-RSS process (0: skip the RSS part); enough for a few GC cycles")
	out := flag.String("out", "", "results file; the Markdown table goes next to it as .md (default results/cnn.json, with -rss results/cnn-rss.json)")
	child := flag.String("child", "", "internal: compare or rss")
	childOut := flag.String("child-out", "", "internal: where a child writes its JSON")
	childArtifact := flag.String("child-artifact", "", "internal: the aiaas artifact an rss child serves")
	flag.Parse()

	cfg := config{fixtures: *fixtures, lib: *lib, rounds: *rounds, warmup: *warmup, tol: *tol,
		allocsRuns: *allocsRuns, ortThreads: *ortThreads, rssRuns: *rssRuns}
	var err error
	if cfg.peakSizes, err = parseInts(*peakSizes); err != nil {
		log.Fatalf("-peak-sizes: %v", err)
	}
	for _, s := range strings.Split(*modelsFlag, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.models = append(cfg.models, s)
		}
	}

	switch *child {
	case "compare":
		writeJSON(*childOut, compare(cfg))
		return
	case "rss":
		if len(cfg.models) != 1 {
			log.Fatal("an rss child serves one model")
		}
		writeJSON(*childOut, serveRSS(cfg, cfg.models[0], *childArtifact))
		return
	case "":
	default:
		log.Fatalf("unknown -child %q", *child)
	}

	// The parent: it never loads ONNX Runtime, so that the rss children it
	// starts inherit nothing of it (they are fresh processes anyway).
	procList, err := parseInts(*procs)
	if err != nil {
		log.Fatalf("-procs: %v", err)
	}
	if cfg.fixtures == "" {
		if cfg.fixtures, err = FixturesDir(); err != nil {
			log.Fatal(err)
		}
	}
	index, err := readIndex(cfg.fixtures)
	if err != nil {
		log.Fatal(err)
	}
	if len(cfg.models) == 1 && cfg.models[0] == "all" {
		cfg.models = index
	}
	for _, name := range cfg.models {
		if !slices.Contains(index, name) {
			log.Fatalf("no fixture %q in %s (there are: %s)", name, filepath.Join(cfg.fixtures, "fixtures.json"), strings.Join(index, ", "))
		}
	}
	if *out == "" {
		*out = "results/cnn.json"
		if *rssOnly {
			*out = "results/cnn-rss.json"
		}
	}

	res := result{
		Command: "go run ./cnn " + strings.Join(os.Args[1:], " "),
		Date:    time.Now().UTC().Format(time.RFC3339), Machine: machine.Describe(), Git: gitHead(),
		ORTThreads: cfg.ortThreads, Fixtures: cfg.fixtures, Rounds: cfg.rounds, Warmup: cfg.warmup, TolRel: cfg.tol,
		RSSRunsPerTest: cfg.rssRuns,
	}
	res.LoadAvg[0] = loadAvg()
	tmp, err := os.MkdirTemp("", "aiaas-cnn-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	failed := false
	// Overrides appended to this process's own flags (the last occurrence
	// of a flag wins).
	base := append(os.Args[1:len(os.Args):len(os.Args)], "-fixtures="+cfg.fixtures, "-models="+strings.Join(cfg.models, ","))

	if !*rssOnly {
		for _, p := range procList {
			f := filepath.Join(tmp, fmt.Sprintf("compare-%d.json", p))
			log.Printf("GOMAXPROCS=%d: %s", p, strings.Join(cfg.models, ", "))
			err := spawn(p, append(base, "-child=compare", "-child-out="+f))
			var pr struct {
				procsRun
				ORTVersion string `json:"onnxruntime_version"`
			}
			if rerr := readJSON(f, &pr); rerr != nil {
				log.Printf("GOMAXPROCS=%d: no results: %v (%v)", p, err, rerr)
				failed = true
				continue
			}
			if err != nil {
				log.Printf("GOMAXPROCS=%d: %v", p, err)
				failed = true
			}
			res.ORTVersion = pr.ORTVersion
			res.Runs = append(res.Runs, pr.procsRun)
		}
	}
	if cfg.rssRuns > 0 {
		for _, name := range cfg.models {
			r, err := rssInChild(cfg, name, tmp, base)
			if err != nil {
				log.Printf("rss %s: %v", name, err)
				failed = true
			}
			res.RSS = append(res.RSS, r)
		}
	}
	res.LoadAvg[1] = loadAvg()

	// The peak is the best any run measured: under a shared load a single
	// measurement can land on a bad moment, and it only ever reads low.
	res.Peaks = map[string]float64{}
	for _, r := range res.Runs {
		for k, v := range r.Peaks {
			key := fmt.Sprintf("%s (run at GOMAXPROCS=%d)", k, r.GOMAXPROCS)
			res.Peaks[key] = v
			res.PeakGFLOPs = math.Max(res.PeakGFLOPs, v)
		}
	}
	for i := range res.Runs {
		for j := range res.Runs[i].Rows {
			w := &res.Runs[i].Rows[j]
			for _, t := range []*timing{w.Aiaas, w.ORT} {
				if t != nil && res.PeakGFLOPs > 0 {
					t.FracPeak = t.GFLOPs / res.PeakGFLOPs
				}
			}
			if w.Status == "fail" {
				failed = true
			}
		}
	}
	for _, r := range res.RSS {
		if r.Status == "fail" || r.ORTMapped {
			failed = true
		}
	}

	md := markdown(&res)
	fmt.Print(md)
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		log.Fatal(err)
	}
	writeJSON(*out, res)
	if err := os.WriteFile(strings.TrimSuffix(*out, ".json")+".md", []byte(md), 0o644); err != nil {
		log.Fatal(err)
	}
	if failed {
		log.Print("some runs failed; see the results")
		os.Exit(1)
	}
}

// spawn runs this program again with GOMAXPROCS=procs (0: inherited) and
// args, its output going to our stderr.
func spawn(procs int, args []string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = os.Environ()
	if procs > 0 {
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+strconv.Itoa(procs))
	}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

// rssInChild converts the model as an upload does, writes the artifact and
// has a fresh process serve it.
func rssInChild(cfg config, name, tmp string, base []string) (rssRow, error) {
	// The child inherits our GOMAXPROCS (the environment's, or all cores).
	r := rssRow{Model: name, GOMAXPROCS: runtime.GOMAXPROCS(0), Runs: cfg.rssRuns, Status: "fail", Date: time.Now().UTC().Format(time.RFC3339)}
	fx, err := readFixture(cfg.fixtures, name)
	if err != nil {
		r.Error = err.Error()
		return r, err
	}
	b, err := os.ReadFile(filepath.Join(cfg.fixtures, fx.File))
	if err != nil {
		r.Error = err.Error()
		return r, err
	}
	art, err := onnx.Convert(b, nil)
	if err != nil {
		r.Error = "onnx.Convert: " + err.Error()
		if errors.Is(err, graph.ErrUnsupported) {
			r.Status = "unsupported"
			return r, nil
		}
		return r, err
	}
	af := filepath.Join(tmp, name+".aiaas")
	if err := os.WriteFile(af, art, 0o644); err != nil {
		return r, err
	}
	art, b = nil, nil
	f := filepath.Join(tmp, "rss-"+name+".json")
	log.Printf("rss %s: %d runs in a fresh process", name, cfg.rssRuns)
	err = spawn(0, append(base, "-child=rss", "-models="+name, "-child-artifact="+af, "-child-out="+f))
	os.Remove(af)
	if rerr := readJSON(f, &r); rerr != nil {
		r.Error = fmt.Sprintf("no results: %v (%v)", err, rerr)
		return r, errors.New(r.Error)
	}
	if err != nil && r.Status != "unsupported" {
		return r, err
	}
	return r, nil
}

// compare is the child of one GOMAXPROCS value: every model of cfg, both
// engines.
func compare(cfg config) any {
	if err := machine.UseBLAS("kernels"); err != nil { // nn's default; the graph runtime's own path
		log.Fatal(err)
	}
	if err := ortlib.Init(cfg.lib); err != nil {
		log.Fatal(err)
	}
	defer ort.DestroyEnvironment()
	pr := procsRun{GOMAXPROCS: runtime.GOMAXPROCS(0), Date: time.Now().UTC().Format(time.RFC3339), Peaks: map[string]float64{}}
	pr.LoadAvg[0] = loadAvg()

	// Single-core peak: our kernels at GOMAXPROCS=1, MLAS on one thread.
	prev := runtime.GOMAXPROCS(1)
	for _, n := range cfg.peakSizes {
		pr.Peaks[fmt.Sprintf("nn/kernels SGEMM n=%d", n)] = machine.PeakSGEMM(n, 5)
		g, err := ortlib.PeakSGEMM(n, 1, 5)
		if err != nil {
			log.Fatalf("ORT peak: %v", err)
		}
		pr.Peaks[fmt.Sprintf("onnxruntime SGEMM 1 thread n=%d", n)] = g
	}
	runtime.GOMAXPROCS(prev)
	peak := 0.0
	for _, g := range pr.Peaks {
		peak = math.Max(peak, g)
	}
	log.Printf("GOMAXPROCS=%d: ONNX Runtime %s, single-core peak %.1f GFLOP/s", pr.GOMAXPROCS, ort.GetVersion(), peak)

	for _, name := range cfg.models {
		w := compareModel(cfg, name)
		w.GOMAXPROCS = pr.GOMAXPROCS
		if w.Aiaas != nil && peak > 0 {
			w.Aiaas.FracPeak = w.Aiaas.GFLOPs / peak
		}
		if w.ORT != nil && peak > 0 {
			w.ORT.FracPeak = w.ORT.GFLOPs / peak
		}
		log.Printf("GOMAXPROCS=%d %s: %s", pr.GOMAXPROCS, name, summary(&w))
		pr.Rows = append(pr.Rows, w)
	}
	pr.LoadAvg[1] = loadAvg()
	return struct {
		procsRun
		ORTVersion string `json:"onnxruntime_version"`
	}{pr, ort.GetVersion()}
}

func describe(ts []*graph.Tensor) string {
	var s []string
	for _, t := range ts {
		s = append(s, fmt.Sprintf("%v %v", t.DType, t.Shape))
	}
	return "[" + strings.Join(s, ", ") + "]"
}

func summary(w *row) string {
	s := w.Status
	if w.Error != "" {
		s += ": " + w.Error
	}
	if w.Aiaas != nil {
		s += fmt.Sprintf("; aiaas %.3f ms", w.Aiaas.MedianMS)
	}
	if w.ORT != nil {
		s += fmt.Sprintf("; ORT %.3f ms", w.ORT.MedianMS)
	}
	if w.RatioAiaasORT > 0 {
		s += fmt.Sprintf("; aiaas/ORT %.2f×", w.RatioAiaasORT)
	}
	return s
}

type engine struct {
	name    string
	run     func() error
	samples []float64 // ms
}

// compareModel checks and times one model; errors end up in the row.
func compareModel(cfg config, name string) (w row) {
	w = row{Model: name, Status: "fail"}
	fx, err := readFixture(cfg.fixtures, name)
	if err != nil {
		w.Error = err.Error()
		return w
	}
	w.Opset, w.Ops, w.InputShape = fx.Opset, fx.Ops, fx.Input.Shape
	w.Tol = cfg.tol * math.Max(1, fx.Output.MaxAbs)
	model, err := os.ReadFile(filepath.Join(cfg.fixtures, fx.File))
	if err != nil {
		w.Error = err.Error()
		return w
	}
	x, err := readFloats(cfg.fixtures, fx.Input)
	if err != nil {
		w.Error = err.Error()
		return w
	}
	ref, err := readFloats(cfg.fixtures, fx.Output)
	if err != nil {
		w.Error = err.Error()
		return w
	}

	// ONNX Runtime, on x's very bytes.
	start := time.Now()
	xt, err := ort.NewTensor(shape64(fx.Input.Shape), x)
	if err != nil {
		w.Error = "ORT: " + err.Error()
		return w
	}
	defer xt.Destroy()
	yt, err := ort.NewEmptyTensor[float32](shape64(fx.Output.Shape))
	if err != nil {
		w.Error = "ORT: " + err.Error()
		return w
	}
	defer yt.Destroy()
	opts, err := ortlib.Options(cfg.ortThreads)
	if err != nil {
		w.Error = "ORT: " + err.Error()
		return w
	}
	sess, err := ort.NewAdvancedSessionWithONNXData(model, []string{inputName(fx)}, []string{outputName(fx)},
		[]ort.Value{xt}, []ort.Value{yt}, opts)
	opts.Destroy()
	if err != nil {
		w.Error = "ORT session: " + err.Error()
		return w
	}
	defer sess.Destroy()
	w.ORTLoadS = time.Since(start).Seconds()
	ortEng := &engine{name: "onnxruntime", run: sess.Run}
	if err := sess.Run(); err != nil {
		w.Error = "ORT Run: " + err.Error()
		return w
	}
	w.DiffORTRef = maxAbsDiff(yt.GetData(), ref)

	// aiaas, as an upload: Convert, then ReadArtifact of the artifact.
	engines := []*engine{ortEng}
	var aiaasEng *engine
	start = time.Now()
	m, err := loadAiaas(model)
	if err != nil {
		w.Error = "aiaas: " + err.Error()
		if errors.Is(err, graph.ErrUnsupported) {
			w.Status = "unsupported"
			w.MissingOps = missingOps(fx.Ops, fx.Opset)
		} else {
			return w
		}
	} else {
		w.AiaasLoadS = time.Since(start).Seconds()
		w.Params, w.ConstBytes = m.NumParams(), m.ConstBytes()
		xg := graph.WrapFloat32(fx.Input.Shape, x)
		ins := []*graph.Tensor{xg}
		if w.FLOPs, w.ArenaBytes, err = m.Cost(ins); err != nil {
			w.Error = "aiaas Cost: " + err.Error()
			return w
		}
		ctx := context.Background()
		var outs []*graph.Tensor
		aiaasEng = &engine{name: "aiaas", run: func() error {
			var err error
			outs, err = m.Run(ctx, ins, outs)
			return err
		}}
		if err := aiaasEng.run(); err != nil {
			w.Error = "aiaas Run: " + err.Error()
			return w
		}
		if len(outs) != 1 || outs[0].DType != graph.Float32 || !slices.Equal(outs[0].Shape, fx.Output.Shape) {
			w.Error = fmt.Sprintf("aiaas: outputs %s; PyTorch's is one FLOAT %v", describe(outs), fx.Output.Shape)
			return w
		}
		y := outs[0].Float32s()
		w.DiffAiaasRef = maxAbsDiff(y, ref)
		w.DiffAiaasORT = maxAbsDiff(y, yt.GetData())
		engines = append([]*engine{aiaasEng}, engines...)
	}
	var bad []string
	for _, c := range []struct {
		what string
		d    float64
		ok   bool
	}{{"ORT vs PyTorch", w.DiffORTRef, true}, {"aiaas vs PyTorch", w.DiffAiaasRef, aiaasEng != nil}, {"aiaas vs ORT", w.DiffAiaasORT, aiaasEng != nil}} {
		if c.ok && !(c.d <= w.Tol) {
			bad = append(bad, fmt.Sprintf("%s: max |Δ| %.3g > %.3g", c.what, c.d, w.Tol))
		}
	}
	if len(bad) > 0 {
		w.Status, w.Error = "fail", strings.Join(append(bad, w.Error), "; ")
		return w
	}

	for range cfg.warmup {
		for _, e := range engines {
			if err := e.run(); err != nil {
				w.Error = e.name + ": " + err.Error()
				return w
			}
		}
	}
	if aiaasEng != nil && cfg.allocsRuns > 0 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range cfg.allocsRuns {
			if err := aiaasEng.run(); err != nil {
				w.Error = "aiaas: " + err.Error()
				return w
			}
		}
		runtime.ReadMemStats(&after)
		w.AllocsRuns = cfg.allocsRuns
		w.AllocsPerRun = float64(after.Mallocs-before.Mallocs) / float64(cfg.allocsRuns)
		w.BytesPerRun = float64(after.TotalAlloc-before.TotalAlloc) / float64(cfg.allocsRuns)
	}
	for rd := range cfg.rounds {
		for k := range engines {
			e := engines[(k+rd)%len(engines)]
			t := time.Now()
			if err := e.run(); err != nil {
				w.Error = e.name + ": " + err.Error()
				return w
			}
			e.samples = append(e.samples, float64(time.Since(t).Nanoseconds())/1e6)
		}
	}
	w.ORT = stats(ortEng.samples, w.FLOPs)
	if aiaasEng != nil {
		w.Aiaas = stats(aiaasEng.samples, w.FLOPs)
		w.RatioAiaasORT = w.Aiaas.MedianMS / w.ORT.MedianMS
		w.Status = "ok"
	}
	return w
}

// loadAiaas converts an ONNX file as an upload does and loads the artifact.
func loadAiaas(model []byte) (*graph.Model, error) {
	art, err := onnx.Convert(model, nil)
	if err != nil {
		return nil, fmt.Errorf("onnx.Convert: %w", err)
	}
	m, _, err := graph.ReadArtifact(art, nil)
	if err != nil {
		return nil, fmt.Errorf("graph.ReadArtifact: %w", err)
	}
	return m, nil
}

// serveRSS is the rss child: it reads the artifact, serves cfg.rssRuns
// requests and reports its peak RSS. It never loads ONNX Runtime.
func serveRSS(cfg config, name, artifact string) rssRow {
	r := rssRow{Model: name, GOMAXPROCS: runtime.GOMAXPROCS(0), Runs: cfg.rssRuns, Status: "fail", Date: time.Now().UTC().Format(time.RFC3339)}
	fail := func(err error) rssRow {
		r.Error = err.Error()
		if errors.Is(err, graph.ErrUnsupported) {
			r.Status = "unsupported"
		}
		log.Printf("rss %s: %v", name, err)
		return r
	}
	fx, err := readFixture(cfg.fixtures, name)
	if err != nil {
		return fail(err)
	}
	x, err := readFloats(cfg.fixtures, fx.Input)
	if err != nil {
		return fail(err)
	}
	b, err := os.ReadFile(artifact)
	if err != nil {
		return fail(err)
	}
	m, _, err := graph.ReadArtifact(b, nil)
	if err != nil {
		return fail(fmt.Errorf("graph.ReadArtifact: %w", err))
	}
	b = nil
	ctx := context.Background()
	req := func() (time.Duration, error) {
		in := graph.TensorFrom(fx.Input.Shape, x) // a request's decoded input
		t := time.Now()
		out, err := m.Run(ctx, []*graph.Tensor{in}, nil) // a new output, as a response takes it away
		d := time.Since(t)
		if err == nil && (len(out) != 1 || out[0].Numel() == 0) {
			err = fmt.Errorf("%d outputs", len(out))
		}
		return d, err
	}
	flopsIn := []*graph.Tensor{graph.WrapFloat32(fx.Input.Shape, x)}
	if _, r.ArenaBytes, err = m.Cost(flopsIn); err != nil {
		return fail(err)
	}
	r.ConstBytes = m.ConstBytes()
	r.BoundBytes = r.ConstBytes + int64(r.ArenaBytes) + rssSlack
	// The load's garbage (the artifact's bytes, the decoding) back to the
	// OS, then the peak counter reset: what follows is serving.
	runtime.GC()
	debug.FreeOSMemory()
	r.HWMLoad = procStatus("VmHWM")
	r.HWMReset = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	var gc0 runtime.MemStats
	runtime.ReadMemStats(&gc0)
	times := make([]float64, 0, cfg.rssRuns)
	for range cfg.rssRuns {
		d, err := req()
		if err != nil {
			return fail(err)
		}
		times = append(times, float64(d.Nanoseconds())/1e6)
	}
	r.HWMServe = procStatus("VmHWM")
	r.RSSEnd = procStatus("VmRSS")
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.HeapSys, r.NumGC = ms.HeapSys, ms.NumGC-gc0.NumGC
	r.RunMS = quantile(times, 0.5)
	if maps, err := os.ReadFile("/proc/self/maps"); err == nil {
		r.ORTMapped = bytes.Contains(maps, []byte("libonnxruntime"))
	}
	r.Within = r.HWMServe > 0 && r.HWMServe <= r.BoundBytes
	r.Status = "ok"
	runtime.KeepAlive(m)
	log.Printf("rss %s: VmHWM %.1f MiB serving (bound %.1f MiB), %.1f MiB with the load", name, mib(r.HWMServe), mib(r.BoundBytes), mib(r.HWMLoad))
	return r
}

// procStatus returns a "kB" field of /proc/self/status in bytes (0 when
// absent).
func procStatus(key string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok || k != key {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			return 0
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		return n << 10
	}
	return 0
}

// FixturesDir returns the fixtures' folder: $AIAAS_ONNX_FIXTURES, else
// what scripts/onnx-fixtures.sh prints (found from the working directory
// up), generating them on first use. The error wraps ErrNoFixtures when
// the generator's Python modules are missing.
func FixturesDir() (string, error) {
	if dir := os.Getenv("AIAAS_ONNX_FIXTURES"); dir != "" {
		return dir, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	root := wd
	for {
		if _, err := os.Stat(filepath.Join(root, "scripts", "onnx-fixtures.sh")); err == nil {
			break
		}
		parent := filepath.Dir(root)
		if parent == root {
			return "", fmt.Errorf("scripts/onnx-fixtures.sh not found above %s; pass -fixtures", wd)
		}
		root = parent
	}
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "onnx-fixtures.sh"))
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	msg := strings.TrimSpace(stderr.String())
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == fixtureDepsMissing {
		return "", fmt.Errorf("%w: %s", ErrNoFixtures, msg)
	}
	if err != nil {
		return "", fmt.Errorf("scripts/onnx-fixtures.sh: %v: %s", err, msg)
	}
	dir := strings.TrimSpace(stdout.String())
	if _, err := os.Stat(filepath.Join(dir, "fixtures.json")); err != nil {
		return "", fmt.Errorf("scripts/onnx-fixtures.sh printed %q, not a complete fixtures folder: %v", dir, err)
	}
	return dir, nil
}

// ErrNoFixtures: the fixtures cannot be generated on this machine (its
// Python lacks torch, torchvision or onnx).
var ErrNoFixtures = errors.New("no ONNX fixtures")

func readIndex(dir string) ([]string, error) {
	var index struct {
		Fixtures []string `json:"fixtures"`
	}
	if err := readJSON(filepath.Join(dir, "fixtures.json"), &index); err != nil {
		return nil, err
	}
	if len(index.Fixtures) == 0 {
		return nil, fmt.Errorf("%s lists no fixtures", filepath.Join(dir, "fixtures.json"))
	}
	return index.Fixtures, nil
}

func readFixture(dir, name string) (*fixture, error) {
	var fx fixture
	if err := readJSON(filepath.Join(dir, name+".json"), &fx); err != nil {
		return nil, err
	}
	if len(fx.Input.Shape) == 0 || len(fx.Output.Shape) == 0 || fx.File == "" {
		return nil, fmt.Errorf("%s.json: no file, input or output shape", name)
	}
	return &fx, nil
}

func inputName(fx *fixture) string  { return orDefault(fx.Input.Name, "input") }
func outputName(fx *fixture) string { return orDefault(fx.Output.Name, "output") }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// readFloats reads a little-endian float32 file of a's shape.
func readFloats(dir string, a array) ([]float32, error) {
	b, err := os.ReadFile(filepath.Join(dir, a.File))
	if err != nil {
		return nil, err
	}
	n := 1
	for _, d := range a.Shape {
		n *= d
	}
	if len(b) != 4*n {
		return nil, fmt.Errorf("%s: %d bytes, want %d for %v float32", a.File, len(b), 4*n, a.Shape)
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v, nil
}

// missingOps lists the operators of ops the graph runtime has no version
// of at opset.
func missingOps(ops []string, opset int) []string {
	have := graph.Operators()
	var out []string
	for _, op := range ops {
		vs := have[op]
		if len(vs) == 0 || vs[0] > opset {
			out = append(out, op)
		}
	}
	return out
}

func shape64(s []int) ort.Shape {
	out := make(ort.Shape, len(s))
	for i, d := range s {
		out[i] = int64(d)
	}
	return out
}

// maxAbsDiff returns max |a-b|; a NaN or a length mismatch counts as +Inf.
func maxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	worst := 0.0
	for i := range a {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		worst = math.Max(worst, d)
	}
	return worst
}

func stats(ms []float64, flops float64) *timing {
	t := &timing{MedianMS: quantile(ms, 0.5), P99MS: quantile(ms, 0.99), MinMS: quantile(ms, 0), Samples: len(ms)}
	if flops > 0 && t.MedianMS > 0 {
		t.GFLOPs = flops / (t.MedianMS / 1e3) / 1e9
	}
	return t
}

// quantile is the nearest-rank quantile (p99 of fewer than 100 samples is
// close to the maximum).
func quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[int(q*float64(len(s)-1)+0.5)]
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad value %q", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("no values")
	}
	return out, nil
}

func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func gitHead() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func writeJSON(path string, v any) {
	js, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		log.Fatal(err)
	}
	var w io.Writer = os.Stdout
	if path != "" {
		f, err := os.Create(path)
		if err != nil {
			log.Fatal(err)
		}
		defer f.Close()
		w = f
	}
	if _, err := w.Write(append(js, '\n')); err != nil {
		log.Fatal(err)
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
