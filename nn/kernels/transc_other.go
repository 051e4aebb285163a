//go:build purego || !amd64

package kernels

func vecExp(dst, x []float32) bool                        { return false }
func vecExpSubSum(x []float32, m float32) (float32, bool) { return 0, false }
func vecMax(x []float32) (float32, bool)                  { return 0, false }
func vecGelu(dst, x []float32, tanh bool) bool            { return false }
