package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aiaas/aiaas/internal/testserver"
	"github.com/aiaas/aiaas/sdk/client"
)

// tenantClient starts a server and makes a tenant on it.
func tenantClient(t *testing.T) (*testserver.Server, *client.Client, string) {
	s := testserver.Start(t, "file://"+t.TempDir())
	admin, _ := client.New(s.URL, &client.Options{APIKey: testserver.AdminKey})
	tn, err := admin.CreateTenant(context.Background(), "example")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := client.New(s.URL, &client.Options{APIKey: tn.APIKey})
	return s, c, tn.APIKey
}

// trainSmall trains a real MNIST model on a subset, quickly.
func trainSmall(t *testing.T) string {
	out := filepath.Join(t.TempDir(), "mnist.safetensors")
	cmd := exec.Command(filepath.Join(testserver.Build(t), "aiaas"), "train", "--dataset", "mnist",
		"--epochs", "1", "--limit", "20000", "--seed", "1", "--out", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("train: %v\n%s", err, b)
	}
	return out
}

func TestGoExample(t *testing.T) {
	_, c, _ := tenantClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := run(ctx, c, config{Model: trainSmall(t), PluginsDir: testserver.Build(t),
		Image: filepath.Join(testserver.Root(), "examples/plugins/testdata/seven.png")}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, `{"predictions":[{"label":"7"`) {
		t.Fatalf("the seven was not read as a 7: %s", out)
	}
}

func TestScriptExample(t *testing.T) {
	s, _, key := tenantClient(t)
	cmd := exec.Command("bash", filepath.Join(testserver.Root(), "examples/mnist/run.sh"))
	cmd.Env = append(os.Environ(), "AIAAS_URL="+s.URL, "AIAAS_KEY="+key, "EPOCHS=1", "LIMIT=20000",
		"AIAAS_BIN="+filepath.Join(testserver.Build(t), "aiaas"), "PLUGINS="+testserver.Build(t))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("run.sh: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `{"predictions":[{"label":"7"`) {
		t.Fatalf("run.sh output: %s", out)
	}
}
