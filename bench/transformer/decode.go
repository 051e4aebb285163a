package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/color"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	ort "github.com/yalue/onnxruntime_go"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/aiaas/aiaas/bench/internal/ortlib"
	"github.com/aiaas/aiaas/nn/generate"
	"github.com/aiaas/aiaas/nn/graph"
	"github.com/aiaas/aiaas/nn/onnx"
)

// decodeResult is one context length of the decoding comparison.
type decodeResult struct {
	Model      string  `json:"model"`
	Context    int     `json:"context"` // tokens in the cache at the last step
	Steps      int     `json:"steps"`   // timed decoding steps, from Context-Steps to Context
	GOMAXPROCS int     `json:"gomaxprocs"`
	ORTThreads int     `json:"ort_threads"`
	AiaasTPS   float64 `json:"aiaas_tokens_per_s"` // median over rounds
	ORTTPS     float64 `json:"ort_tokens_per_s"`
	Ratio      float64 `json:"ratio_aiaas_ort"` // tokens/s, aiaas over ORT
	SameTokens bool    `json:"same_tokens"`     // both engines chose the same greedy ids
}

// decode compares greedy decoding of a GPT-2 fixture: for each context c,
// a prompt of c-steps random tokens is prefilled (untimed) and steps
// tokens are generated, one per step, the cache fed back. aiaas decodes
// through nn/generate, as the generate routes do; ONNX Runtime in the
// usual loop: each step's present tensors, which it allocates, become the
// next step's past inputs, and the next id is the argmax of the logits.
// Rounds alternate which engine goes first.
func decode(dir, name string, contexts []int, steps, rounds, ortThreads int, spin bool) ([]decodeResult, error) {
	var fx fixture
	b, err := os.ReadFile(filepath.Join(dir, name+".json"))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &fx); err != nil {
		return nil, err
	}
	if fx.Model != "gpt2" {
		return nil, fmt.Errorf("%s is a %s, not a decoder", name, fx.Model)
	}
	model, err := os.ReadFile(filepath.Join(dir, fx.File))
	if err != nil {
		return nil, err
	}
	layers := fx.Config["layers"]
	inNames := []string{"input_ids", "attention_mask"}
	outNames := []string{"logits"}
	for i := range layers {
		inNames = append(inNames, fmt.Sprintf("past_key_values.%d.key", i), fmt.Sprintf("past_key_values.%d.value", i))
		outNames = append(outNames, fmt.Sprintf("present.%d.key", i), fmt.Sprintf("present.%d.value", i))
	}
	opts, err := ortlib.Options(ortThreads)
	if err != nil {
		return nil, err
	}
	if !spin {
		if err := opts.AddSessionConfigEntry("session.intra_op.allow_spinning", "0"); err != nil {
			opts.Destroy()
			return nil, err
		}
	}
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(model, inNames, outNames, opts)
	opts.Destroy()
	if err != nil {
		return nil, fmt.Errorf("ORT session: %w", err)
	}
	defer sess.Destroy()

	art, err := onnx.Convert(model, nil)
	if err != nil {
		return nil, err
	}
	m, _, err := graph.ReadArtifact(art, nil)
	if err != nil {
		return nil, err
	}
	art, model = nil, nil
	lm, err := generate.New(m)
	if err != nil {
		return nil, err
	}
	heads, hd := int64(fx.Config["heads"]), int64(fx.Config["hidden"]/fx.Config["heads"])

	// ortGenerate prefills prompt and decodes steps tokens, returning them
	// and the time of the decoding steps.
	ortGenerate := func(prompt []int64) ([]int64, time.Duration, error) {
		var all []ort.Value
		defer func() {
			for _, v := range all {
				v.Destroy()
			}
		}()
		newIn := func(shape []int64, data []int64) (ort.Value, error) {
			v, err := ort.NewTensor(ort.Shape(shape), data)
			if err == nil {
				all = append(all, v)
			}
			return v, err
		}
		ids, err := newIn([]int64{1, int64(len(prompt))}, prompt)
		if err != nil {
			return nil, 0, err
		}
		mask, err := newIn([]int64{1, int64(len(prompt))}, ones(len(prompt)))
		if err != nil {
			return nil, 0, err
		}
		in := []ort.Value{ids, mask}
		for range 2 * layers {
			v, err := ort.NewEmptyTensor[float32](ort.Shape{1, heads, 0, hd})
			if err != nil {
				return nil, 0, err
			}
			all = append(all, v)
			in = append(in, v)
		}
		var toks []int64
		var start time.Time
		var prev []ort.Value // the last step's outputs, this step's past
		defer func() {
			for _, v := range prev {
				v.Destroy()
			}
		}()
		n := len(prompt)
		for step := 0; step <= steps; step++ {
			if step == 1 {
				start = time.Now()
			}
			out := make([]ort.Value, len(outNames))
			if err := sess.Run(in, out); err != nil {
				return nil, 0, err
			}
			for _, v := range prev {
				v.Destroy()
			}
			prev = out
			lg, ok := out[0].(*ort.Tensor[float32])
			if !ok {
				return nil, 0, errors.New("ORT logits are not FP32")
			}
			sh := lg.GetShape()
			v := int(sh[2])
			data := lg.GetData()
			id := argmax(data[len(data)-v:])
			if step == steps {
				break
			}
			toks = append(toks, id)
			n++
			if ids, err = newIn([]int64{1, 1}, []int64{id}); err != nil {
				return nil, 0, err
			}
			if mask, err = newIn([]int64{1, int64(n)}, ones(n)); err != nil {
				return nil, 0, err
			}
			in = append([]ort.Value{ids, mask}, out[1:]...)
		}
		return toks, time.Since(start), nil
	}
	aiaasGenerate := func(prompt []int64) ([]int64, time.Duration, error) {
		var start time.Time
		res, err := lm.Generate(context.Background(), prompt, &generate.Options{MaxTokens: steps + 1}, func(t generate.Token) error {
			if start.IsZero() {
				start = time.Now()
			}
			return nil
		})
		if err != nil {
			return nil, 0, err
		}
		return res.Tokens[:steps], time.Since(start), nil
	}

	var results []decodeResult
	rng := rand.New(rand.NewPCG(2, 3))
	for _, c := range contexts {
		if c <= steps {
			return nil, fmt.Errorf("context %d: at most the %d decoding steps", c, steps)
		}
		prompt := make([]int64, c-steps)
		for i := range prompt {
			prompt[i] = 1000 + rng.Int64N(int64(fx.Config["vocab_size"]-1000))
		}
		r := decodeResult{Model: name, Context: c, Steps: steps, GOMAXPROCS: runtime.GOMAXPROCS(0), ORTThreads: ortThreads, SameTokens: true}
		var tps [2][]float64
		engines := []func([]int64) ([]int64, time.Duration, error){aiaasGenerate, ortGenerate}
		for rd := 0; rd < rounds; rd++ {
			var toks [2][]int64
			for k := range engines {
				e := (k + rd) % 2
				t, d, err := engines[e](prompt)
				if err != nil {
					return nil, fmt.Errorf("context %d: %w", c, err)
				}
				toks[e] = t
				tps[e] = append(tps[e], float64(steps)/d.Seconds())
			}
			if !slices.Equal(toks[0], toks[1]) {
				r.SameTokens = false
			}
		}
		r.AiaasTPS, r.ORTTPS = median(tps[0]), median(tps[1])
		r.Ratio = r.AiaasTPS / r.ORTTPS
		if !r.SameTokens {
			log.Printf("context %d: the engines chose different greedy tokens (random weights leave near-ties)", c)
		}
		fmt.Printf("| %s | %d | %d | %.1f | %.1f | %.2f | %v |\n", name, c, steps, r.AiaasTPS, r.ORTTPS, r.Ratio, r.SameTokens)
		results = append(results, r)
	}
	return results, nil
}

func ones(n int) []int64 {
	v := make([]int64, n)
	for i := range v {
		v[i] = 1
	}
	return v
}

func argmax(v []float32) int64 {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return int64(best)
}

// plotDecode draws tokens/s against context length for both engines.
func plotDecode(res []decodeResult, file string) error {
	if len(res) == 0 {
		return nil
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s greedy decoding, batch 1 (GOMAXPROCS %d, ORT %d thread(s))", res[0].Model, res[0].GOMAXPROCS, res[0].ORTThreads)
	p.X.Label.Text = "context (tokens in the cache)"
	p.Y.Label.Text = "tokens/s"
	p.Y.Min = 0
	p.Legend.Top = true
	var a, o plotter.XYs
	for _, r := range res {
		a = append(a, plotter.XY{X: float64(r.Context), Y: r.AiaasTPS})
		o = append(o, plotter.XY{X: float64(r.Context), Y: r.ORTTPS})
	}
	for i, s := range []struct {
		name string
		xy   plotter.XYs
		c    color.RGBA
	}{{"aiaas", a, color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 255}}, {"ONNX Runtime 1.30", o, color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 255}}} {
		l, pts, err := plotter.NewLinePoints(s.xy)
		if err != nil {
			return err
		}
		l.Color, pts.Color = s.c, s.c
		l.Width = vg.Points(1.5)
		if i == 1 {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		p.Add(l, pts)
		p.Legend.Add(s.name, l, pts)
	}
	return p.Save(7*vg.Inch, 4*vg.Inch, file)
}
