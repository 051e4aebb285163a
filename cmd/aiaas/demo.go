package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"

	"github.com/aiaas/aiaas/modelstore"
	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/nn/dataset"
	"github.com/aiaas/aiaas/platform"
	"github.com/aiaas/aiaas/platform/apikey"
	"github.com/aiaas/aiaas/platform/training"
)

// demoOptions configures [setupDemo].
type demoOptions struct {
	// PluginsDir holds png-to-tensor.wasm and top-k.wasm (make plugins),
	// and wordpiece.wasm, bpe.wasm and pool.wasm for the text endpoints
	// (made only when all three are there).
	PluginsDir string
	// DataDir receives the demo key and the sample request files.
	DataDir string
	// Log receives progress lines for the person waiting.
	Log func(string)
}

// demoInfo is what the demo prints.
type demoInfo struct {
	Tenant, Key, Model, Endpoint string
	SampleJSON, SamplePNG        string
	// TextEmbed and TextGen name the text endpoints (random-weight
	// models), or are empty with TextSkipped saying why.
	TextEmbed, TextGen, TextSkipped string
}

const (
	demoTenant   = "demo"
	demoModel    = "mnist"
	demoEndpoint = "mnist"
	demoCNN      = "mnist-cnn"
)

// demoCNNNetwork is the reference CNN of examples/mnist/cnn.json. The demo
// trains it on the first 12,000 images for two epochs (about 97 %, seconds
// on two cores); the full recipe reaches 99 %.
var demoCNNNetwork = training.Network{
	InputShape: []int{1, 28, 28},
	Layers: []nn.Layer{
		{Type: nn.LayerConv2D, Filters: 32, KernelSize: []int{3, 3}, Activation: nn.ActReLU},
		{Type: nn.LayerMaxPool2D, PoolSize: []int{2, 2}},
		{Type: nn.LayerConv2D, Filters: 64, KernelSize: []int{3, 3}, Activation: nn.ActReLU},
		{Type: nn.LayerMaxPool2D, PoolSize: []int{2, 2}},
		{Type: nn.LayerFlatten},
		{Type: nn.LayerDense, Units: 128, Activation: nn.ActReLU},
		{Type: nn.LayerDropout, Rate: 0.5},
		{Type: nn.LayerDense, Units: 10, Activation: nn.ActSoftmax},
	},
}

// setupDemo makes sure the demo tenant, its MNIST model (trained with the
// reference recipe on first start), the example plugins and the mnist
// endpoint exist, with the text-embed and text-gen endpoints over
// random-weight models when the tokenizer plugins were built, and writes
// sample requests. It is idempotent.
func setupDemo(ctx context.Context, s *platform.Server, o demoOptions) (*demoInfo, error) {
	logf := func(format string, a ...any) {
		if o.Log != nil {
			o.Log(fmt.Sprintf(format, a...))
		}
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, err
	}
	t, err := s.TenantByName(ctx, demoTenant)
	if err != nil {
		if !errors.Is(err, modelstore.ErrNotFound) {
			return nil, err
		}
		if t, _, err = s.CreateTenant(ctx, demoTenant); err != nil {
			return nil, err
		}
		logf("created tenant %q (%s)", t.Name, t.ID)
	}
	key, err := demoKey(ctx, s, t.ID, filepath.Join(o.DataDir, "key"))
	if err != nil {
		return nil, err
	}

	// The models: trained once, on first start.
	mlp := training.Request{Model: demoModel, Dataset: training.MNIST, Layers: []int{128, 128}, Seed: 1}
	cnn := training.Request{Model: demoCNN, Dataset: training.MNIST, Network: &demoCNNNetwork, BatchSize: 32, Epochs: 2, Limit: 12000, Seed: 1}
	for _, d := range []struct {
		req  training.Request
		what string
	}{
		{mlp, "the MNIST model (reference recipe: 128-128 relu, Adam, 5 epochs)"},
		{cnn, "the MNIST CNN (examples/mnist/cnn.json on 12,000 images, 2 epochs)"},
	} {
		if err := demoTrain(ctx, s, t.ID, d.req, d.what, logf); err != nil {
			return nil, err
		}
	}
	for _, model := range []string{demoModel, demoCNN} {
		aliases, err := s.Aliases(ctx, t.ID, model)
		if err != nil {
			return nil, err
		}
		if _, ok := aliases["prod"]; ok {
			continue
		}
		latest, err := s.LatestVersion(ctx, t.ID, model)
		if err != nil {
			return nil, err
		}
		if err := s.SetAlias(ctx, t.ID, model, "prod", platform.Alias{Version: latest}); err != nil {
			return nil, err
		}
	}

	// The example plugins and the endpoint.
	ep := platform.Endpoint{Name: demoEndpoint, Model: demoModel, Version: "prod"}
	if s.PluginsEnabled() {
		for _, name := range []string{"png-to-tensor", "top-k"} {
			path := filepath.Join(o.PluginsDir, name+".wasm")
			wasm, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("plugin %s: %w (build the example plugins with 'make plugins')", name, err)
			}
			if _, err := s.PutPlugin(ctx, t.ID, name, wasm); err != nil {
				return nil, fmt.Errorf("plugin %s: %w", name, err)
			}
		}
		ep.Preprocess, ep.Postprocess = "png-to-tensor", "top-k"
	}
	if err := s.PutEndpoint(ctx, t.ID, ep); err != nil {
		return nil, err
	}
	ep.Name, ep.Model = demoCNN, demoCNN
	if err := s.PutEndpoint(ctx, t.ID, ep); err != nil {
		return nil, err
	}

	info := &demoInfo{Tenant: demoTenant, Key: key, Model: demoModel, Endpoint: demoEndpoint,
		SampleJSON: filepath.Join(o.DataDir, "sample.json"), SamplePNG: filepath.Join(o.DataDir, "digit.png")}
	if info.TextEmbed, info.TextGen, info.TextSkipped, err = demoText(ctx, s, t.ID, o.PluginsDir, logf); err != nil {
		return nil, err
	}
	if err := writeSamples(info.SampleJSON, info.SamplePNG); err != nil {
		return nil, err
	}
	return info, nil
}

// demoTrain trains and publishes req.Model unless it has a version.
func demoTrain(ctx context.Context, s *platform.Server, tenant string, req training.Request, what string, logf func(string, ...any)) error {
	if _, err := s.LatestVersion(ctx, tenant, req.Model); err == nil {
		return nil
	} else if !errors.Is(err, modelstore.ErrNotFound) {
		return err
	}
	logf("training %s — first start only", what)
	train, test, _, err := training.LoadLocal(training.MNIST, "", 0, 1)
	if err != nil {
		return err
	}
	m, meta, res, err := training.Run(ctx, req, train, test, func(p nn.Progress) {
		if p.Batch == p.Batches {
			logf("  epoch %d/%d: loss %.4f accuracy %.4f", p.Epoch, p.Epochs, p.Loss, p.Accuracy)
		}
	})
	if err != nil {
		return err
	}
	meta.Provenance["trainer"] = "aiaas serve --demo"
	var buf bytes.Buffer
	if err := m.WriteArtifact(&buf, meta); err != nil {
		return err
	}
	info, err := s.Publish(ctx, tenant, req.Model, buf.Bytes())
	if err != nil {
		return err
	}
	logf("published %s version %d: test accuracy %.4f", req.Model, info.Version, res.TestAccuracy)
	return nil
}

// demoKey reuses the key saved in path while it is valid, else makes one.
func demoKey(ctx context.Context, s *platform.Server, tenant, path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		key := strings.TrimSpace(string(b))
		if owner, err := s.KeyTenant(ctx, key); err == nil && owner == tenant {
			return key, nil
		}
	}
	k, err := s.CreateKey(ctx, tenant, "demo", apikey.ScopeManage)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(k.Reveal()+"\n"), 0o600); err != nil {
		return "", err
	}
	return k.Reveal(), nil
}

// writeSamples writes a real MNIST test digit as an OIP request and as a
// PNG drawn the way a person would (dark ink on white, larger than 28×28).
func writeSamples(jsonPath, pngPath string) error {
	dir, err := dataset.MNISTDir()
	if err != nil {
		return err
	}
	_, test, err := dataset.LoadMNIST(dir)
	if err != nil {
		return err
	}
	if test.N == 0 {
		return errors.New("empty MNIST test set")
	}
	x := test.X[:test.Features] // test image 0: a 7
	req := map[string]any{
		"id":     "demo-1",
		"inputs": []map[string]any{{"name": "input", "shape": []int{1, test.Features}, "datatype": "FP32", "data": x}},
	}
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if err := os.WriteFile(jsonPath, b, 0o644); err != nil {
		return err
	}
	const scale = 4
	img := image.NewGray(image.Rect(0, 0, 28*scale, 28*scale))
	for y := 0; y < 28*scale; y++ {
		for xx := 0; xx < 28*scale; xx++ {
			v := x[(y/scale)*28+xx/scale]
			img.SetGray(xx, y, color.Gray{Y: uint8(255 - v*255)})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return err
	}
	return os.WriteFile(pngPath, buf.Bytes(), 0o644)
}
