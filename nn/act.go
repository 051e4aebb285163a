package nn

import (
	"math"

	"github.com/aiaas/aiaas/nn/kernels"
)

var reluEpilogue = kernels.Epilogue{Act: kernels.ReLU}

// act is a parsed activation. Every derivative is written in terms of the
// activation's output A rather than its input Z, so training keeps one buffer
// per layer instead of two.
type act uint8

const (
	actLinear act = iota
	actReLU
	actTanh
	actSigmoid
	actSoftmax
)

func parseAct(s string) (act, bool) {
	switch s {
	case "", ActLinear:
		return actLinear, true
	case ActReLU:
		return actReLU, true
	case ActTanh:
		return actTanh, true
	case ActSigmoid:
		return actSigmoid, true
	case ActSoftmax:
		return actSoftmax, true
	}
	return 0, false
}

// apply replaces z (rows×cols, row-major) with act(z) in place.
func (a act) apply(z []float32, cols int) {
	switch a {
	case actReLU:
		// Vectorised; NaN stays NaN, as in Keras.
		kernels.ApplyActivation(z, &reluEpilogue)
	case actTanh:
		for i, v := range z {
			z[i] = float32(math.Tanh(float64(v)))
		}
	case actSigmoid:
		for i, v := range z {
			z[i] = sigmoid(v)
		}
	case actSoftmax:
		for r := 0; r+cols <= len(z); r += cols {
			softmaxRow(z[r : r+cols])
		}
	}
}

func sigmoid(v float32) float32 {
	// Split by sign so exp never overflows.
	if v >= 0 {
		return float32(1 / (1 + math.Exp(-float64(v))))
	}
	e := math.Exp(float64(v))
	return float32(e / (1 + e))
}

// softmaxRow computes a numerically stable softmax of one row in place, with
// float64 accumulation of the normaliser.
func softmaxRow(z []float32) {
	mx := z[0]
	for _, v := range z[1:] {
		if v > mx {
			mx = v
		}
	}
	var sum float64
	for i, v := range z {
		e := math.Exp(float64(v - mx))
		z[i] = float32(e)
		sum += e
	}
	inv := 1 / sum
	for i, v := range z {
		z[i] = float32(float64(v) * inv)
	}
}

// grad turns d, the gradient with respect to the activation's output a
// (both rows×cols), into the gradient with respect to its input, in place.
func (a act) grad(d, out []float32, cols int) {
	switch a {
	case actReLU:
		// Branch-free: on random data the branch mispredicts half the
		// time. A ReLU output is +0, -0 or positive (or NaN), so it is
		// positive exactly when its bits, read as an int32, are > 0;
		// keep d there and zero it elsewhere.
		d = d[:len(out)]
		for i, v := range out {
			b := int32(math.Float32bits(v))
			keep := uint32(int32(-b) >> 31) // all ones when b > 0 (−b < 0), zero when b ≤ 0
			if b < 0 {
				keep = 0
			}
			d[i] = math.Float32frombits(math.Float32bits(d[i]) & keep)
		}
	case actTanh:
		for i, v := range out {
			d[i] *= 1 - v*v
		}
	case actSigmoid:
		for i, v := range out {
			d[i] *= v * (1 - v)
		}
	case actSoftmax:
		// dZ_i = A_i (dA_i - Σ_j dA_j A_j): the softmax Jacobian applied
		// without materialising it.
		for r := 0; r+cols <= len(out); r += cols {
			dr, ar := d[r:r+cols], out[r:r+cols]
			var dot float64
			for j, v := range ar {
				dot += float64(v) * float64(dr[j])
			}
			for j, v := range ar {
				dr[j] = v * (dr[j] - float32(dot))
			}
		}
	}
}
