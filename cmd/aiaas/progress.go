package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/aiaas/aiaas/nn"
)

// trainProgress draws a bar per epoch on a terminal and prints one plain
// line per epoch otherwise (logs, CI, pipes).
type trainProgress struct {
	c      *cli
	epochs int
	bar    *progressbar.ProgressBar
	epoch  int
	start  time.Time
}

func newTrainProgress(c *cli, epochs int) *trainProgress {
	return &trainProgress{c: c, epochs: epochs, start: time.Now()}
}

func (p *trainProgress) update(pr nn.Progress) {
	if pr.Epoch != p.epoch {
		p.epoch = pr.Epoch
		p.start = time.Now()
		if p.c.tty {
			if p.bar != nil {
				_ = p.bar.Finish()
			}
			p.bar = progressbar.NewOptions(pr.Batches,
				progressbar.OptionSetWriter(p.c.stderr),
				progressbar.OptionSetDescription(fmt.Sprintf("epoch %d/%d", pr.Epoch, pr.Epochs)),
				progressbar.OptionShowCount(),
				progressbar.OptionSetWidth(30),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.c.stderr) }),
			)
		}
	}
	if p.bar != nil {
		p.bar.Describe(fmt.Sprintf("epoch %d/%d loss %.4f acc %.4f", pr.Epoch, pr.Epochs, pr.Loss, pr.Accuracy))
		_ = p.bar.Set(pr.Batch)
		return
	}
	if pr.Batch == pr.Batches {
		p.c.logf("epoch %d/%d: loss %.4f accuracy %.4f (%.1fs)", pr.Epoch, pr.Epochs, pr.Loss, pr.Accuracy, time.Since(p.start).Seconds())
	}
}

func (p *trainProgress) done() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

// writeArtifact writes the model atomically (temp file, fsync, rename) and
// returns its sha256, so an interrupted run never leaves half a file under
// the requested name.
func writeArtifact(path string, m *nn.Model, meta nn.Metadata) (string, error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".aiaas-artifact-*")
	if err != nil {
		return "", fmt.Errorf("write artifact: %w", err)
	}
	defer os.Remove(f.Name()) // no-op after the rename
	h := sha256.New()
	if err := m.WriteArtifact(io.MultiWriter(f, h), meta); err != nil {
		f.Close()
		return "", fmt.Errorf("write artifact: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", fmt.Errorf("write artifact: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("write artifact: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return "", fmt.Errorf("write artifact: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
