package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		if err := child(); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRun runs the whole comparison on a few hundred images, one round:
// both engines train, the table and the JSON are written, and the export
// check runs (or says why it was skipped). Needs Debian's python3-torch.
func TestRun(t *testing.T) {
	if err := exec.Command("/usr/bin/python3", "-c", "import torch").Run(); err != nil {
		t.Skip("no python3-torch at /usr/bin/python3 (scripts/deps.sh installs it)")
	}
	out := filepath.Join(t.TempDir(), "r.json")
	if err := run("1", "32", 1, 320, "/usr/bin/python3", "", out); err != nil {
		t.Fatal(err)
	}
	var res Result
	b, err := os.ReadFile(out)
	if err != nil || json.Unmarshal(b, &res) != nil {
		t.Fatalf("results: %v %s", err, b)
	}
	if len(res.Cells) != 2 || res.Cells[0].Engine != "aiaas" || res.Cells[1].Engine != "pytorch" ||
		res.Cells[0].Median <= 0 || res.Cells[1].Median <= 0 || !strings.HasPrefix(res.Torch, "1.") {
		t.Fatalf("cells %+v, torch %q", res.Cells, res.Torch)
	}
	if res.ORTMaxAbs == nil && !strings.HasPrefix(res.ORTNote, "skipped") {
		t.Errorf("the export check neither ran nor was skipped: %q", res.ORTNote)
	}
	if res.ORTMaxAbs != nil && *res.ORTMaxAbs > 1e-4 {
		t.Errorf("ONNX Runtime differs from nn by %g", *res.ORTMaxAbs)
	}
	md, err := os.ReadFile(strings.TrimSuffix(out, ".json") + ".md")
	if err != nil || !strings.Contains(string(md), "| 1 | 32 |") {
		t.Errorf("table: %v\n%s", err, md)
	}
}

func TestInts(t *testing.T) {
	if v, err := ints("1, 2"); err != nil || len(v) != 2 || v[1] != 2 {
		t.Errorf("ints(1, 2) = %v, %v", v, err)
	}
	for _, bad := range []string{"0", "a", "1,,2", ""} {
		if _, err := ints(bad); err == nil {
			t.Errorf("ints(%q) accepted", bad)
		}
	}
}
