//go:build purego || !amd64

package kernels

// peakProbe: no clock probe on this architecture (see cpu_amd64.go).
func peakProbe(n int) (cycles, flopsPerCycle float64) { return 0, 0 }
