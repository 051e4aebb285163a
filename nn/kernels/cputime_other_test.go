//go:build !linux

package kernels

import (
	"testing"
	"time"
)

// loopCPU runs f b.N times; without a per-thread CPU clock it reports
// and returns the wall-clock time per call.
func loopCPU(b *testing.B, f func()) time.Duration {
	for b.Loop() {
		f()
	}
	return b.Elapsed() / time.Duration(b.N)
}
