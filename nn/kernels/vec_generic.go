//go:build purego || !(amd64 || arm64)

package kernels

// vecBinary and vecUnary: no vector kernels in this build, Go does all.
func vecBinary(op int, dst, a, b []float32, n int) int           { return 0 }
func vecUnary(op int, dst, a []float32, n int, s, t float32) int { return 0 }
