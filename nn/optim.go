package nn

import (
	"math"
	"runtime"
	"sync"
)

// Optimizer names accepted by TrainConfig.Optimizer.
const (
	OptSGD      = "sgd"
	OptMomentum = "momentum"
	OptAdam     = "adam"
)

// Keras defaults for Adam.
const (
	adamBeta1   = 0.9
	adamBeta2   = 0.999
	adamEpsilon = 1e-7
)

// optimizer updates one model's parameters from one batch's gradients. Its
// state is per parameter slice, in the order of (layer, weight then bias).
type optimizer struct {
	kind     string
	lr       float64
	wd       float32 // L2 weight decay on kernels
	momentum float64
	step     int
	m, v     [][]float32 // Adam moments, or momentum velocity in m
}

func newOptimizer(m *Model, kind string, lr, momentum float64) *optimizer {
	o := &optimizer{kind: kind, lr: lr, momentum: momentum}
	if kind == OptSGD && momentum != 0 {
		o.kind = OptMomentum
	}
	if o.kind == OptSGD {
		return o
	}
	for _, l := range m.layers {
		if !l.hasWeights() {
			continue
		}
		o.m = append(o.m, make([]float32, len(l.w)), make([]float32, len(l.b)))
		if o.kind == OptAdam {
			o.v = append(o.v, make([]float32, len(l.w)), make([]float32, len(l.b)))
		}
	}
	return o
}

// apply takes one step. It follows Keras 3 exactly: SGD with momentum keeps
// v ← μv − η·g, w ← w + v; Adam folds both bias corrections into the step
// size, α = η·√(1−β₂ᵗ)/(1−β₁ᵗ), and adds ε outside the square root.
func (o *optimizer) apply(m *Model, g *grads) {
	m.weightsChanged()
	o.step++
	var alpha float32
	if o.kind == OptAdam {
		t := float64(o.step)
		alpha = float32(o.lr * math.Sqrt(1-math.Pow(adamBeta2, t)) / (1 - math.Pow(adamBeta1, t)))
	}
	s := 0
	for i := range m.layers {
		l := &m.layers[i]
		if !l.hasWeights() {
			continue
		}
		if o.wd != 0 && (l.dense || l.kind == LayerConv2D) {
			gw := g.w[i]
			for j, w := range l.w {
				gw[j] += o.wd * w
			}
		}
		for _, pg := range [2][2][]float32{{l.w, g.w[i]}, {l.b, g.b[i]}} {
			p, gr := pg[0], pg[1]
			switch o.kind {
			case OptSGD:
				lr := float32(o.lr)
				for j, v := range gr {
					p[j] -= lr * v
				}
			case OptMomentum:
				lr, mu := float32(o.lr), float32(o.momentum)
				vel := o.m[s]
				for j, v := range gr {
					vel[j] = mu*vel[j] - lr*v
					p[j] += vel[j]
				}
			case OptAdam:
				adamParallel(p, gr, o.m[s], o.v[s], alpha)
			}
			s++
		}
	}
}

// adamMinSplit is the slice length from which an Adam step is split across
// cores: below it, starting a goroutine costs more than it saves.
const adamMinSplit = 1 << 14

// adamParallel runs adamStep on up to GOMAXPROCS contiguous parts of p. The
// update is element-wise, so the result does not depend on the split. On
// the MNIST model the step is a third of the single-threaded training time
// (scalar square roots and divisions over 118k parameters per batch), while
// the other core would idle.
func adamParallel(p, g, m, v []float32, alpha float32) {
	parts := min(runtime.GOMAXPROCS(0), len(p)/adamMinSplit)
	if parts < 2 {
		adamStep(p, g, m, v, alpha)
		return
	}
	var wg sync.WaitGroup
	size := (len(p) + parts - 1) / parts
	for lo := size; lo < len(p); lo += size {
		hi := min(lo+size, len(p))
		wg.Add(1)
		go func() {
			defer wg.Done()
			adamStep(p[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi], alpha)
		}()
	}
	adamStep(p[:size], g[:size], m[:size], v[:size], alpha)
	wg.Wait()
}

func adamStep(p, g, m, v []float32, alpha float32) {
	const b1, b2, eps = adamBeta1, adamBeta2, adamEpsilon
	m, v = m[:len(p)], v[:len(p)]
	g = g[:len(p)]
	for j, gj := range g {
		mj := b1*m[j] + (1-b1)*gj
		vj := b2*v[j] + (1-b2)*gj*gj
		m[j], v[j] = mj, vj
		p[j] -= alpha * mj / (float32(math.Sqrt(float64(vj))) + eps)
	}
}
