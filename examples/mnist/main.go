// Command mnist is the MNIST example end to end, in Go with sdk/client:
// push a trained model, point the prod alias at it, upload the example
// plugins, bind them into an endpoint, and send it a PNG of a digit.
//
//	go run ./cmd/aiaas train --dataset mnist --out mnist.safetensors
//	scripts/build-plugins.sh build/plugins
//	AIAAS_URL=http://127.0.0.1:8080 AIAAS_KEY=aiaas_… \
//	  go run ./examples/mnist -model mnist.safetensors -plugins build/plugins \
//	  -image examples/plugins/testdata/seven.png
//
// The same steps with the CLI are in run.sh.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/aiaas/aiaas/sdk/client"
)

// config is what the example needs.
type config struct {
	Model, PluginsDir, Image string
}

func main() {
	var cfg config
	flag.StringVar(&cfg.Model, "model", "mnist.safetensors", "model artifact from 'aiaas train'")
	flag.StringVar(&cfg.PluginsDir, "plugins", "build/plugins", "folder with png-to-tensor.wasm and top-k.wasm")
	flag.StringVar(&cfg.Image, "image", "examples/plugins/testdata/seven.png", "a PNG or JPEG of a digit")
	flag.Parse()
	url := os.Getenv("AIAAS_URL")
	if url == "" {
		url = "http://127.0.0.1:8080"
	}
	c, err := client.New(url, &client.Options{APIKey: os.Getenv("AIAAS_KEY")})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := run(ctx, c, cfg, os.Stderr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(out)
}

func run(ctx context.Context, c *client.Client, cfg config, log *os.File) (string, error) {
	say := func(format string, a ...any) { fmt.Fprintf(log, format+"\n", a...) }
	art, err := os.ReadFile(cfg.Model)
	if err != nil {
		return "", err
	}
	pm, err := c.PushModel(ctx, "mnist", bytes.NewReader(art), int64(len(art)), nil)
	if err != nil {
		return "", fmt.Errorf("push model: %w", err)
	}
	say("pushed mnist version %d (sha256 %.12s…)", pm.Version, pm.SHA256)
	if _, err := c.SetAlias(ctx, "mnist", "prod", client.Alias{Version: pm.Version}); err != nil {
		return "", fmt.Errorf("alias: %w", err)
	}
	for _, name := range []string{"png-to-tensor", "top-k"} {
		wasm, err := os.ReadFile(filepath.Join(cfg.PluginsDir, name+".wasm"))
		if err != nil {
			return "", err
		}
		p, err := c.PushPlugin(ctx, name, bytes.NewReader(wasm), int64(len(wasm)), nil)
		if err != nil {
			return "", fmt.Errorf("push plugin %s: %w", name, err)
		}
		say("uploaded plugin %s (exports %v)", p.Name, p.Exports)
	}
	if _, _, err := c.PutEndpoint(ctx, "digits", &client.Endpoint{Model: "mnist", Version: "prod",
		Preprocess: "png-to-tensor", Postprocess: "top-k"}); err != nil {
		return "", fmt.Errorf("endpoint: %w", err)
	}
	img, err := os.ReadFile(cfg.Image)
	if err != nil {
		return "", err
	}
	body, ctype, err := c.Invoke(ctx, "digits", "image/png", bytes.NewReader(img))
	if err != nil {
		return "", fmt.Errorf("invoke: %w", err)
	}
	say("endpoint answered %s", ctype)
	return string(body), nil
}
