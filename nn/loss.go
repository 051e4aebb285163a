package nn

import "math"

// Loss names accepted by TrainConfig.Loss.
const (
	LossSparseCategoricalCrossentropy = "sparse_categorical_crossentropy"
	LossCategoricalCrossentropy       = "categorical_crossentropy"
	LossMSE                           = "mse"
)

// probEps clips probabilities before the logarithm, as Keras does
// (backend epsilon 1e-7), so a confident wrong answer costs about 16, not +Inf.
const probEps = 1e-7

type lossKind uint8

const (
	lossSparseCE lossKind = iota
	lossCE
	lossMSE
)

func parseLoss(s string) (lossKind, bool) {
	switch s {
	case LossSparseCategoricalCrossentropy, "":
		return lossSparseCE, true
	case LossCategoricalCrossentropy:
		return lossCE, true
	case LossMSE, "mean_squared_error":
		return lossMSE, true
	}
	return 0, false
}

// lossGrad computes the mean loss of rows samples of the output p
// (rows×k), and, when d is non-nil, writes the gradient of that mean into d:
// with respect to the pre-activation of the last layer when fused is set
// (softmax + cross-entropy: p·Σt − t), else with respect to p. Exactly one
// of labels and targets is used: labels for sparse cross-entropy, targets
// (rows×k) for the others. The sum is accumulated in float64.
func lossGrad(kind lossKind, p []float32, k int, labels []int32, targets []float32, rows int, fused bool, d []float32) float64 {
	var sum float64
	inv := 1 / float64(rows)
	for r := 0; r < rows; r++ {
		pr := p[r*k : (r+1)*k]
		var dr []float32
		if d != nil {
			dr = d[r*k : (r+1)*k]
		}
		switch kind {
		case lossSparseCE:
			y := int(labels[r])
			pv, clipped := clipProb(pr[y])
			sum -= math.Log(pv)
			if dr == nil {
				continue
			}
			if fused {
				for j, v := range pr {
					dr[j] = float32(float64(v) * inv)
				}
				dr[y] -= float32(inv)
				continue
			}
			clear(dr)
			if !clipped {
				dr[y] = float32(-inv / pv)
			}
		case lossCE:
			tr := targets[r*k : (r+1)*k]
			var tsum float64
			for j, t := range tr {
				pv, clipped := clipProb(pr[j])
				sum -= float64(t) * math.Log(pv)
				tsum += float64(t)
				if dr != nil && !fused {
					if clipped {
						dr[j] = 0
					} else {
						dr[j] = float32(-float64(t) * inv / pv)
					}
				}
			}
			if dr != nil && fused {
				for j, v := range pr {
					dr[j] = float32((float64(v)*tsum - float64(tr[j])) * inv)
				}
			}
		case lossMSE:
			tr := targets[r*k : (r+1)*k]
			var s float64
			for j, v := range pr {
				e := float64(v) - float64(tr[j])
				s += e * e
				if dr != nil {
					dr[j] = float32(2 * e * inv / float64(k))
				}
			}
			sum += s / float64(k)
		}
	}
	return sum * inv
}

func clipProb(p float32) (float64, bool) {
	v := float64(p)
	switch {
	case v < probEps:
		return probEps, true
	case v > 1-probEps:
		return 1 - probEps, true
	case v != v: // NaN: let the loss show it
		return v, false
	}
	return v, false
}

// correct counts the samples whose arg-max output matches the label, or the
// arg-max of the target; with one output it thresholds both at 0.5, as
// Keras' binary accuracy does.
func correct(p []float32, k int, labels []int32, targets []float32, rows int) int {
	n := 0
	for r := 0; r < rows; r++ {
		pr := p[r*k : (r+1)*k]
		var want int
		switch {
		case labels != nil:
			want = int(labels[r])
		case k == 1:
			if (targets[r] > 0.5) == (pr[0] > 0.5) {
				n++
			}
			continue
		default:
			want = argmax(targets[r*k : (r+1)*k])
		}
		if k == 1 {
			if (want == 1) == (pr[0] > 0.5) {
				n++
			}
			continue
		}
		if argmax(pr) == want {
			n++
		}
	}
	return n
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}
