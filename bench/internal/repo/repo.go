// Package repo finds the aiaas repository around a benchmark and runs its
// scripts, so every bench command works from any folder of the checkout.
package repo

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Root is the nearest folder above the working directory that holds
// scripts/onnx-fixtures.sh.
func Root() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "scripts", "onnx-fixtures.sh")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no aiaas checkout (scripts/onnx-fixtures.sh) above %s", wd)
		}
	}
}

// Script runs scripts/NAME with args from the repository root, its stderr
// to ours, and returns its trimmed stdout.
func Script(name string, args ...string) (string, error) {
	root, err := Root()
	if err != nil {
		return "", err
	}
	cmd := exec.Command("bash", append([]string{filepath.Join(root, "scripts", name)}, args...)...)
	cmd.Dir, cmd.Stderr = root, os.Stderr
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("scripts/%s %s: %w", name, strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(b)), nil
}

// TransformerFixtures is dir, or when it is empty the folder of the
// transformer fixtures that scripts/onnx-fixtures.sh makes (generating
// them on first use).
func TransformerFixtures(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	return Script("onnx-fixtures.sh", "transformers")
}
