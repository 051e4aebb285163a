// Command cnntrain compares aiaas' trainer with PyTorch on the reference
// MNIST CNN (examples/mnist/cnn.json: conv 32 3×3 relu → maxpool → conv 64
// 3×3 relu → maxpool → dense 128 relu → dropout 0.5 → dense 10 softmax,
// Adam 1e-3), same batch size and thread count, and checks that the model
// it trained, exported to ONNX, runs in ONNX Runtime with the same outputs.
//
//	go run ./cnntrain                         # 1 and 2 threads, batch 32 and 64, 3 rounds
//	go run ./cnntrain -procs 1 -batches 64 -rounds 1 -limit 6000
//
// # What is measured
//
// Each measurement is one epoch over the first -limit MNIST training images
// in a fresh process: aiaas (this command run again as a child with
// GOMAXPROCS set, calling nn.Train as `aiaas train` does) or PyTorch
// (lenet_torch.py with torch.set_num_threads). The epoch's own timer is
// used on both sides (data already in memory, no evaluation), scaled to
// 60,000 images: seconds per epoch. Rounds interleave the two engines,
// alternating which goes first, so both see the same machine load; the
// table gives the median of the rounds and ours/PyTorch's ratio.
//
// The first aiaas child also writes its model; the parent exports it with
// nn/onnx, runs 256 MNIST test images through ONNX Runtime (CPU provider)
// and through nn's forward pass, and reports max |Δ| (the check: ≤ 1e-4).
// That needs libonnxruntime.so from bench/node_modules (npm ci
// --ignore-scripts in bench/); without it the check is skipped and said so.
//
// Results go to -out (JSON) and the same name with .md (a table).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/aiaas/aiaas/bench/internal/machine"
	"github.com/aiaas/aiaas/bench/internal/ortlib"
	"github.com/aiaas/aiaas/bench/internal/repo"
	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/nn/dataset"
	"github.com/aiaas/aiaas/nn/kernels"
	"github.com/aiaas/aiaas/nn/onnx"
	"github.com/aiaas/aiaas/platform/training"
)

// childEnv makes the command a training child: one epoch, JSON to stdout.
const childEnv = "AIAAS_BENCH_CNNTRAIN_CHILD"

// Cell is one (engine, threads, batch) figure.
type Cell struct {
	Engine    string    `json:"engine"` // "aiaas" | "pytorch"
	Threads   int       `json:"threads"`
	Batch     int       `json:"batch"`
	Seconds   []float64 `json:"epoch_seconds"` // per round, scaled to 60,000 images
	Median    float64   `json:"median_epoch_seconds"`
	TrainLoss []float64 `json:"train_loss"`
}

// Result is the -out file.
type Result struct {
	Date      string       `json:"date"`
	Machine   machine.Info `json:"machine"`
	Kernel    string       `json:"kernel"`
	Torch     string       `json:"torch"`
	Limit     int          `json:"images_per_measured_epoch"`
	Rounds    int          `json:"rounds"`
	Cells     []Cell       `json:"cells"`
	ORT       string       `json:"onnxruntime"`
	ORTMaxAbs *float64     `json:"ort_max_abs_diff,omitempty"`
	ORTNote   string       `json:"ort_note,omitempty"`
	Command   string       `json:"command"`
}

type epochOut struct {
	Seconds float64 `json:"seconds"`
	Loss    float64 `json:"loss"`
	Torch   string  `json:"torch,omitempty"`
}

func main() {
	if os.Getenv(childEnv) != "" {
		if err := child(); err != nil {
			log.Fatal(err)
		}
		return
	}
	log.SetFlags(0)
	procs := flag.String("procs", "1,2", "thread counts (GOMAXPROCS and torch.set_num_threads)")
	batches := flag.String("batches", "32,64", "batch sizes")
	rounds := flag.Int("rounds", 3, "interleaved rounds")
	limit := flag.Int("limit", 12000, "training images per measured epoch (scaled to 60,000)")
	python := flag.String("python", "/usr/bin/python3", "Python with torch (Debian python3-torch)")
	lib := flag.String("lib", "", "libonnxruntime.so (default: bench/node_modules)")
	out := flag.String("out", "results/cnntrain.json", "results file (and .md beside it)")
	flag.Parse()
	if err := run(*procs, *batches, *rounds, *limit, *python, *lib, *out); err != nil {
		log.Fatal(err)
	}
}

func ints(s string) ([]int, error) {
	var v []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("want positive integers, got %q", s)
		}
		v = append(v, n)
	}
	return v, nil
}

func run(procsFlag, batchFlag string, rounds, limit int, python, lib, out string) error {
	procs, err := ints(procsFlag)
	if err != nil {
		return err
	}
	batches, err := ints(batchFlag)
	if err != nil {
		return err
	}
	mnist, err := dataset.MNISTDir()
	if err != nil {
		return err
	}
	root, err := repo.Root()
	if err != nil {
		return err
	}
	script := filepath.Join(root, "bench", "cnntrain", "lenet_torch.py")
	tmp, err := os.MkdirTemp("", "cnntrain")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	artifact := filepath.Join(tmp, "cnn.safetensors")

	res := Result{Date: time.Now().UTC().Format(time.RFC3339), Machine: machine.Describe(), Kernel: kernels.Name(),
		Limit: limit, Rounds: rounds, Command: "cd bench && go run ./cnntrain " + strings.Join(os.Args[1:], " ")}
	cells := map[string]*Cell{}
	cell := func(engine string, p, b int) *Cell {
		k := fmt.Sprint(engine, p, b)
		if cells[k] == nil {
			cells[k] = &Cell{Engine: engine, Threads: p, Batch: b}
		}
		return cells[k]
	}
	order := []string{}
	for _, p := range procs {
		for _, b := range batches {
			for _, e := range []string{"aiaas", "pytorch"} {
				cell(e, p, b)
				order = append(order, fmt.Sprint(e, p, b))
			}
		}
	}
	scale := 60000 / float64(limit)
	for r := range rounds {
		for _, p := range procs {
			for _, b := range batches {
				engines := []string{"aiaas", "pytorch"}
				if r%2 == 1 {
					engines[0], engines[1] = engines[1], engines[0]
				}
				for _, e := range engines {
					var eo epochOut
					var err error
					if e == "aiaas" {
						save := ""
						if _, err := os.Stat(artifact); err != nil {
							save = artifact
						}
						eo, err = runAiaas(p, b, limit, save)
					} else {
						eo, err = runTorch(python, script, mnist, p, b, limit)
						if eo.Torch != "" {
							res.Torch = eo.Torch
						}
					}
					if err != nil {
						return fmt.Errorf("%s, %d threads, batch %d: %w", e, p, b, err)
					}
					c := cell(e, p, b)
					c.Seconds = append(c.Seconds, eo.Seconds*scale)
					c.TrainLoss = append(c.TrainLoss, eo.Loss)
					log.Printf("round %d: %-7s threads %d batch %d: %.1f s/epoch (loss %.3f)", r+1, e, p, b, eo.Seconds*scale, eo.Loss)
				}
			}
		}
	}
	for _, k := range order {
		c := cells[k]
		s := append([]float64(nil), c.Seconds...)
		sort.Float64s(s)
		c.Median = s[len(s)/2]
		res.Cells = append(res.Cells, *c)
	}
	res.ORT, res.ORTMaxAbs, res.ORTNote = checkORT(lib, artifact, mnist)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
		return err
	}
	md := markdown(&res)
	fmt.Print(md)
	return os.WriteFile(strings.TrimSuffix(out, ".json")+".md", []byte(md), 0o644)
}

func runAiaas(procs, batch, limit int, save string) (epochOut, error) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"=1", "GOMAXPROCS="+strconv.Itoa(procs),
		"CNNTRAIN_BATCH="+strconv.Itoa(batch), "CNNTRAIN_LIMIT="+strconv.Itoa(limit), "CNNTRAIN_SAVE="+save)
	return runJSON(cmd)
}

func runTorch(python, script, mnist string, threads, batch, limit int) (epochOut, error) {
	cmd := exec.Command(python, script, mnist, "--threads", strconv.Itoa(threads), "--batch", strconv.Itoa(batch),
		"--limit", strconv.Itoa(limit), "--epochs", "1")
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS="+strconv.Itoa(threads))
	return runJSON(cmd)
}

// runJSON runs cmd and reads its JSON lines: the epoch's, then a summary
// (PyTorch's has its version).
func runJSON(cmd *exec.Cmd) (epochOut, error) {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return epochOut{}, fmt.Errorf("%v: %s", err, stderr.Bytes())
	}
	var eo epochOut
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(line, &m) != nil {
			continue
		}
		if s, ok := m["seconds"].(float64); ok {
			eo.Seconds = s
			eo.Loss, _ = m["loss"].(float64)
		}
		if v, ok := m["torch"].(string); ok {
			eo.Torch = v
		}
	}
	if eo.Seconds == 0 {
		return eo, fmt.Errorf("no epoch time in %q", b)
	}
	return eo, nil
}

// child trains one epoch of the reference recipe on the first
// CNNTRAIN_LIMIT images, prints {"seconds", "loss"}, and writes the model
// to CNNTRAIN_SAVE if set.
func child() error {
	batch, _ := strconv.Atoi(os.Getenv("CNNTRAIN_BATCH"))
	limit, _ := strconv.Atoi(os.Getenv("CNNTRAIN_LIMIT"))
	root, err := repo.Root()
	if err != nil {
		return err
	}
	recipe, err := os.ReadFile(filepath.Join(root, "examples", "mnist", "cnn.json"))
	if err != nil {
		return err
	}
	var req training.Request
	if err := json.Unmarshal(recipe, &req); err != nil {
		return err
	}
	dir, err := dataset.MNISTDir()
	if err != nil {
		return err
	}
	train, _, err := dataset.LoadMNIST(dir)
	if err != nil {
		return err
	}
	train = train.Subset(limit)
	spec, err := training.NetworkSpec("mnist-cnn", *req.Network, train, 10, req.Loss)
	if err != nil {
		return err
	}
	m, err := nn.New(spec, 1)
	if err != nil {
		return err
	}
	h, err := nn.Train(context.Background(), m, train.X, train.Y, nil, train.N, nn.TrainConfig{
		Optimizer: req.Optimizer, LearningRate: req.LearningRate, BatchSize: batch, Epochs: 1, Seed: 1})
	if err != nil {
		return err
	}
	if path := os.Getenv("CNNTRAIN_SAVE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := m.WriteArtifact(f, nn.Metadata{}); err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	e := h.Epochs[0]
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"seconds": e.Seconds, "loss": e.Loss, "gomaxprocs": runtime.GOMAXPROCS(0)})
}

// checkORT exports the trained model and compares ONNX Runtime's outputs
// with nn's on 256 test images.
func checkORT(lib, artifact, mnist string) (version string, maxAbs *float64, note string) {
	b, err := os.ReadFile(artifact)
	if err != nil {
		return "", nil, "no trained model: " + err.Error()
	}
	m, _, err := nn.ReadArtifact(b, nil)
	if err != nil {
		return "", nil, err.Error()
	}
	var model bytes.Buffer
	if err := onnx.Export(&model, m); err != nil {
		return "", nil, err.Error()
	}
	if err := ortlib.Init(lib); err != nil {
		return "", nil, "skipped: " + err.Error()
	}
	defer ort.DestroyEnvironment()
	version = ort.GetVersion()
	_, test, err := dataset.LoadMNIST(mnist)
	if err != nil {
		return version, nil, err.Error()
	}
	const n = 256
	x := test.X[:n*784]
	want, err := m.Forward(nil, x, n)
	if err != nil {
		return version, nil, err.Error()
	}
	xt, err := ort.NewTensor(ort.NewShape(n, 1, 28, 28), append([]float32(nil), x...))
	if err != nil {
		return version, nil, err.Error()
	}
	defer xt.Destroy()
	yt, err := ort.NewEmptyTensor[float32](ort.NewShape(n, 10))
	if err != nil {
		return version, nil, err.Error()
	}
	defer yt.Destroy()
	opts, err := ortlib.Options(1)
	if err != nil {
		return version, nil, err.Error()
	}
	defer opts.Destroy()
	spec := m.Spec()
	sess, err := ort.NewAdvancedSessionWithONNXData(model.Bytes(), []string{spec.Inputs[0].Name}, []string{spec.Outputs[0].Name},
		[]ort.Value{xt}, []ort.Value{yt}, opts)
	if err != nil {
		return version, nil, err.Error()
	}
	defer sess.Destroy()
	if err := sess.Run(); err != nil {
		return version, nil, err.Error()
	}
	var d float64
	for i, v := range yt.GetData() {
		d = math.Max(d, math.Abs(float64(v-want[i])))
	}
	verdict := "agrees with nn within 1e-4"
	if !(d <= 1e-4) {
		verdict = "DIFFERS from nn by more than 1e-4"
	}
	return version, &d, fmt.Sprintf("%d MNIST test images: ONNX Runtime %s (max |Δ| %.2g)", n, verdict, d)
}

func markdown(r *Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Reference MNIST CNN, seconds per epoch (60,000 images; measured on %d, median of %d interleaved rounds), %s, %s, kernel %s, PyTorch %s\n\n",
		r.Limit, r.Rounds, r.Date[:10], r.Machine.CPU, r.Kernel, r.Torch)
	b.WriteString("| threads | batch | aiaas s/epoch | PyTorch s/epoch | aiaas / PyTorch |\n|---:|---:|---:|---:|---:|\n")
	for i := 0; i+1 < len(r.Cells); i += 2 {
		a, t := r.Cells[i], r.Cells[i+1]
		fmt.Fprintf(&b, "| %d | %d | %.1f | %.1f | %.2f× |\n", a.Threads, a.Batch, a.Median, t.Median, a.Median/t.Median)
	}
	if r.ORTNote != "" {
		fmt.Fprintf(&b, "\nExport: %s.\n", r.ORTNote)
	}
	fmt.Fprintf(&b, "\n`%s`\n", r.Command)
	return b.String()
}
