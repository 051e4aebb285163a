package platform

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	"github.com/aiaas/aiaas/platform/apikey"
	"github.com/aiaas/aiaas/platform/training"
)

// DemoOptions configures [Server.Demo].
type DemoOptions struct {
	// PluginsDir holds png-to-tensor.wasm and top-k.wasm (make plugins),
	// and wordpiece.wasm, bpe.wasm and pool.wasm for the text endpoints
	// (made only when all three are there).
	PluginsDir string
	// DataDir receives the demo key and the sample request files.
	DataDir string
	// Log receives progress lines for the person waiting.
	Log func(string)
}

// DemoInfo is what the demo prints.
type DemoInfo struct {
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

// Demo makes sure the demo tenant, its MNIST model (trained with the
// reference recipe on first start), the example plugins and the mnist
// endpoint exist, with the text-embed and text-gen endpoints over
// random-weight models when the tokenizer plugins were built, and writes
// sample requests. It is idempotent.
func (s *Server) Demo(ctx context.Context, o DemoOptions) (*DemoInfo, error) {
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
	key, err := s.demoKey(ctx, t.ID, filepath.Join(o.DataDir, "key"))
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
		if err := s.demoTrain(ctx, t.ID, d.req, d.what, logf); err != nil {
			return nil, err
		}
	}
	for _, model := range []string{demoModel, demoCNN} {
		refs, err := s.refs.get(ctx, t.ID, model)
		if err != nil {
			return nil, err
		}
		if _, ok := refs.aliases["prod"]; !ok {
			if err := s.store.SetAlias(ctx, t.ID, model, "prod", Alias{Version: refs.latest}); err != nil {
				return nil, err
			}
			s.refs.forget(t.ID, model)
		}
	}

	// The example plugins and the endpoint.
	ep := Endpoint{Name: demoEndpoint, Model: demoModel, Version: "prod"}
	if s.plugins != nil {
		for _, name := range []string{"png-to-tensor", "top-k"} {
			path := filepath.Join(o.PluginsDir, name+".wasm")
			wasm, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("plugin %s: %w (build the example plugins with 'make plugins')", name, err)
			}
			if err := s.demoPlugin(ctx, t.ID, name, wasm); err != nil {
				return nil, fmt.Errorf("plugin %s: %w", name, err)
			}
		}
		ep.Preprocess, ep.Postprocess = "png-to-tensor", "top-k"
	}
	if _, _, err := s.putEndpoint(ctx, t.ID, ep); err != nil {
		return nil, err
	}
	ep.Name, ep.Model = demoCNN, demoCNN
	if _, _, err := s.putEndpoint(ctx, t.ID, ep); err != nil {
		return nil, err
	}

	info := &DemoInfo{Tenant: demoTenant, Key: key, Model: demoModel, Endpoint: demoEndpoint,
		SampleJSON: filepath.Join(o.DataDir, "sample.json"), SamplePNG: filepath.Join(o.DataDir, "digit.png")}
	if info.TextEmbed, info.TextGen, info.TextSkipped, err = s.demoText(ctx, t.ID, o.PluginsDir, logf); err != nil {
		return nil, err
	}
	if err := writeSamples(info.SampleJSON, info.SamplePNG); err != nil {
		return nil, err
	}
	return info, nil
}

// demoTrain trains and publishes req.Model unless it has a version.
func (s *Server) demoTrain(ctx context.Context, tenant string, req training.Request, what string, logf func(string, ...any)) error {
	vs, err := s.store.Versions(ctx, tenant, req.Model)
	if err != nil && !errors.Is(err, modelstore.ErrNotFound) {
		return err
	}
	if len(vs) > 0 {
		return nil
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
	info, _, err := s.publish(ctx, tenant, req.Model, buf.Bytes())
	if err != nil {
		return err
	}
	logf("published %s version %d: test accuracy %.4f", req.Model, info.Version, res.TestAccuracy)
	return nil
}

// demoPlugin stores a plugin unless the same module is stored under that
// name already: validating compiles and starts the module (a second for
// the tokenizers), which a restart of the demo need not pay again.
func (s *Server) demoPlugin(ctx context.Context, tenant, name string, wasm []byte) error {
	sum := sha256.Sum256(wasm)
	if old, err := s.pluginRecord(ctx, tenant, name); err == nil && old.SHA256 == hex.EncodeToString(sum[:]) {
		return nil
	}
	_, err := s.putPlugin(ctx, tenant, name, wasm)
	return err
}

// demoKey reuses the key saved in path while it is valid, else makes one.
func (s *Server) demoKey(ctx context.Context, tenant, path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		if k, err := apikey.Parse(strings.TrimSpace(string(b))); err == nil {
			if rb, err := s.store.SystemGet(ctx, "key."+k.Hash()); err == nil {
				var rec keyRecord
				if json.Unmarshal(rb, &rec) == nil && rec.Tenant == tenant && rec.Revoked == nil {
					return k.Reveal(), nil
				}
			}
		}
	}
	k, _, err := s.createKey(ctx, tenant, "demo", apikey.ScopeManage)
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
