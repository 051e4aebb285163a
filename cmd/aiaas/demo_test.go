package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The demo lives here, in the CLI, so the Lambda functions do not carry
// it. Package dependencies cannot show that: platform needs nn/dataset
// (which imports image/png) for training jobs, so `go list -deps
// ./functions/infer` lists the same packages before and after the move
// (539 at the time).
// The linked binaries do show it: while the demo was in platform,
// functions/infer and functions/admin linked platform.(*Server).Demo and
// the rest of the demo, and with it image/png's encoder (used only to
// write the sample digit). This test builds each function as it is
// deployed and fails if a demo symbol of platform or the PNG encoder is
// linked in again; it failed on the commit before the move (infer and
// admin), and passes after it.
func TestLambdaBinariesCarryNoDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three Lambda binaries")
	}
	dir := t.TempDir()
	for _, fn := range []string{"infer", "admin", "train"} {
		bin := filepath.Join(dir, fn)
		build := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", bin, "./functions/"+fn)
		build.Dir = "../.."
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build functions/%s: %v\n%s", fn, err, b)
		}
		nm := exec.Command("go", "tool", "nm", bin)
		out, err := nm.Output()
		if err != nil {
			t.Fatalf("go tool nm functions/%s: %v", fn, err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) < 3 {
				continue
			}
			sym := f[len(f)-1]
			demo := strings.Contains(sym, "aiaas/aiaas/platform.") && strings.Contains(strings.ToLower(sym), "demo")
			if demo || strings.HasPrefix(sym, "image/png.(*Encoder)") {
				t.Errorf("functions/%s links %s: the demo belongs to cmd/aiaas", fn, sym)
			}
		}
	}
}
