package ortlib

import (
	"os"
	"testing"
)

// TestPeakSGEMM starts ONNX Runtime from the library Find finds and times a
// small product; without npm ci in bench/ it checks only that Find says so.
func TestPeakSGEMM(t *testing.T) {
	lib := Find()
	if lib == "" {
		if err := Init(""); err == nil {
			t.Fatal("Init without a library succeeded")
		}
		t.Skip("no libonnxruntime.so under bench/node_modules (npm ci --ignore-scripts in bench/)")
	}
	if _, err := os.Stat(lib); err != nil {
		t.Fatalf("Find returned %q: %v", lib, err)
	}
	if err := Init(lib); err != nil {
		t.Fatal(err)
	}
	for _, threads := range []int{1, 0} {
		g, err := PeakSGEMM(64, threads, 3)
		if err != nil || !(g > 0) {
			t.Errorf("threads %d: %v GFLOP/s, %v", threads, g, err)
		}
	}
}
