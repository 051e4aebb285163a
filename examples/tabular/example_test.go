package tabular_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aiaas/aiaas/internal/testserver"
	"github.com/aiaas/aiaas/sdk/client"
)

// TestScript runs run.sh against a real server: CSV → training job →
// endpoint → a prediction that must name the right species.
func TestScript(t *testing.T) {
	s := testserver.Start(t, "file://"+t.TempDir())
	admin, _ := client.New(s.URL, &client.Options{APIKey: testserver.AdminKey})
	tn, err := admin.CreateTenant(context.Background(), "tabular")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", filepath.Join(testserver.Root(), "examples/tabular/run.sh"))
	cmd.Env = append(os.Environ(), "AIAAS_URL="+s.URL, "AIAAS_KEY="+tn.APIKey,
		"AIAAS_BIN="+filepath.Join(testserver.Build(t), "aiaas"))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("run.sh: %v\n%s", err, out)
	}
	// The last line is the endpoint's OIP answer.
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var resp struct {
		Outputs []struct {
			Data []float64 `json:"data"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &resp); err != nil || len(resp.Outputs) != 1 {
		t.Fatalf("answer: %v\n%s", err, out)
	}
	p := resp.Outputs[0].Data
	if len(p) != 3 || p[2] < p[0] || p[2] < p[1] {
		t.Fatalf("a long-petalled flower was not species 2: %v", p)
	}
}
