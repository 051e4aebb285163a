package nn

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/aiaas/aiaas/internal/yield"
)

// Training limits: a TrainConfig comes from a tenant's training job.
// MaxTrainFloats bounds the per-batch workspace (every layer's activations
// and two gradient buffers, batch × widths): 2^27 floats, 512 MiB.
const (
	MaxBatchSize   = 1 << 16
	MaxEpochs      = 100_000
	MaxTrainFloats = 1 << 27
)

// TrainConfig configures Train. Zero fields take the Keras defaults: loss
// sparse_categorical_crossentropy, optimizer adam, learning rate 0.001 for
// adam and 0.01 for sgd/momentum, batch size 32, 1 epoch. Adam uses
// β₁ 0.9, β₂ 0.999, ε 1e-7 (Keras); "momentum" is SGD with Momentum
// (default 0.9), and "sgd" with a non-zero Momentum is the same thing.
type TrainConfig struct {
	Loss         string
	Optimizer    string
	LearningRate float64
	Momentum     float64
	// WeightDecay adds WeightDecay·w to the gradient of every dense and
	// conv2d kernel (not biases or batch normalisations): L2
	// regularisation, PyTorch's weight_decay on those tensors.
	WeightDecay float64
	// Schedule, when set, changes the learning rate from epoch to epoch.
	Schedule        *Schedule
	BatchSize       int
	Epochs          int
	Seed            int64
	ValidationSplit float64 // the last fraction of the samples, taken before shuffling (Keras)
	EarlyStopping   *EarlyStopping
	// StopAt, when set, stops training between batches once the clock
	// passes it (a deadline that leaves time to evaluate and save the
	// model): Train then returns the history so far with Stopped
	// "deadline" and a nil error, and m holds the weights of the last
	// completed batch.
	StopAt time.Time
	// Augment, when set, randomly shifts and flips the training images
	// (not the validation ones) of a model with an image input.
	Augment *Augment
	// Resume, when set, continues the run a StopAt deadline stopped (see
	// Checkpoint): the model must be the one that run left, and the data
	// and the other fields the same.
	Resume *Checkpoint
	// Progress, when set, is called from Train's goroutine at most about
	// ten times a second and after the last batch of every epoch. It must
	// be cheap; Loss and Accuracy are the running means of the epoch.
	Progress func(Progress)
}

// Augment is data augmentation for image inputs, drawn afresh for every
// sample of every epoch from Train's seeded generator (so runs stay
// reproducible): a shift by up to Shift pixels in each direction (the
// uncovered border is 0) and, with FlipHorizontal, a left-right mirror
// half of the time. Off by default.
type Augment struct {
	Shift          int  `json:"shift,omitempty"`
	FlipHorizontal bool `json:"flip_horizontal,omitempty"`
}

func (a *Augment) on() bool { return a != nil && (a.Shift > 0 || a.FlipHorizontal) }

// apply writes the augmented copy of one sample src (shape s) into dst.
func (a *Augment) apply(dst, src []float32, s shape, rng *rand.Rand) {
	if !s.spatial {
		copy(dst, src)
		return
	}
	dy, dx := 0, 0
	if a.Shift > 0 {
		dy, dx = rng.IntN(2*a.Shift+1)-a.Shift, rng.IntN(2*a.Shift+1)-a.Shift
	}
	flip := a.FlipHorizontal && rng.IntN(2) == 1
	clear(dst[:s.size()])
	for c := range s.c {
		for y := range s.h {
			sy := y - dy
			if sy < 0 || sy >= s.h {
				continue
			}
			out := dst[(c*s.h+y)*s.w : (c*s.h+y+1)*s.w]
			in := src[(c*s.h+sy)*s.w : (c*s.h+sy+1)*s.w]
			for x := range s.w {
				sx := x - dx
				if flip {
					sx = s.w - 1 - sx
				}
				if sx >= 0 && sx < s.w {
					out[x] = in[sx]
				}
			}
		}
	}
}

// Schedule is a learning-rate schedule, applied at the start of every
// epoch e (from 0) to the base rate η:
//
//   - "step": η·Gamma^⌊e/StepEpochs⌋ (Gamma default 0.1, StepEpochs
//     default 1), PyTorch's StepLR;
//   - "cosine": MinRate + (η−MinRate)·(1+cos(π·e/Epochs))/2, PyTorch's
//     CosineAnnealingLR with T_max the number of epochs.
type Schedule struct {
	Kind       string  `json:"kind"`
	StepEpochs int     `json:"step_epochs,omitempty"`
	Gamma      float64 `json:"gamma,omitempty"`
	MinRate    float64 `json:"min_rate,omitempty"`
}

// Schedule kinds.
const (
	ScheduleStep   = "step"
	ScheduleCosine = "cosine"
)

// rate returns the learning rate of epoch e (from 0) of epochs.
func (s *Schedule) rate(base float64, e, epochs int) float64 {
	if s == nil {
		return base
	}
	switch s.Kind {
	case ScheduleStep:
		return base * math.Pow(cmpF(s.Gamma, 0.1), float64(e/cmp0(s.StepEpochs, 1)))
	case ScheduleCosine:
		return s.MinRate + (base-s.MinRate)*(1+math.Cos(math.Pi*float64(e)/float64(epochs)))/2
	}
	return base
}

func (s *Schedule) validate(base float64) error {
	if s == nil {
		return nil
	}
	switch s.Kind {
	case ScheduleStep:
		if s.StepEpochs < 0 || s.StepEpochs > MaxEpochs || !(s.Gamma >= 0 && s.Gamma <= 1) || s.MinRate != 0 {
			return specErr("step schedule: step_epochs in [1, %d], gamma in (0, 1], no min_rate", MaxEpochs)
		}
	case ScheduleCosine:
		if !(s.MinRate >= 0 && s.MinRate <= base) || s.StepEpochs != 0 || s.Gamma != 0 {
			return specErr("cosine schedule: min_rate in [0, learning rate], no step_epochs or gamma")
		}
	default:
		return specErr("unknown schedule %q, want %q or %q", s.Kind, ScheduleStep, ScheduleCosine)
	}
	return nil
}

func cmpF(v, def float64) float64 {
	if v == 0 {
		return def
	}
	return v
}

// EarlyStopping stops training when Monitor has not improved by more than
// MinDelta for Patience epochs (Keras' callback, with its counting: with
// Patience p, training stops at the p-th epoch in a row without
// improvement, and at the first one when p is 0). Monitor is "val_loss"
// (the default; "loss" when there is no validation split), "loss",
// "val_accuracy" or "accuracy".
type EarlyStopping struct {
	Monitor            string
	Patience           int
	MinDelta           float64
	RestoreBestWeights bool
}

// Progress is a snapshot of a running epoch.
type Progress struct {
	Epoch, Epochs, Batch, Batches int
	Loss, Accuracy                float64
}

// EpochMetrics are the results of one epoch; Epoch counts from 1.
type EpochMetrics struct {
	Epoch       int      `json:"epoch"`
	Loss        float64  `json:"loss"`
	Accuracy    float64  `json:"accuracy"`
	ValLoss     *float64 `json:"val_loss,omitempty"`
	ValAccuracy *float64 `json:"val_accuracy,omitempty"`
	Seconds     float64  `json:"seconds"`
}

// History is what Train returns: the metrics of every completed epoch and
// why training stopped early, if it did.
type History struct {
	Epochs  []EpochMetrics `json:"epochs"`
	Stopped string         `json:"stopped,omitempty"` // "early_stopping" | "canceled" | "deadline" | ""
	// Where a canceled or deadline stop happened: the epoch under way
	// (from 1), the batches of it completed, and the batches per epoch;
	// zero otherwise.
	StoppedEpoch int `json:"stopped_epoch,omitempty"`
	StoppedBatch int `json:"stopped_batch,omitempty"`
	Batches      int `json:"batches_per_epoch,omitempty"`
	// Checkpoint, after a "deadline" stop, is what TrainConfig.Resume
	// needs to continue the run.
	Checkpoint *Checkpoint `json:"-"`
}

// Stop reasons in History.Stopped.
const (
	StoppedEarly    = "early_stopping"
	StoppedCanceled = "canceled"
	StoppedDeadline = "deadline" // TrainConfig.StopAt passed
)

type trainCfg struct {
	loss     lossKind
	opt      string
	lr, mom  float64
	wd       float64
	batch    int
	epochs   int
	monitor  string
	maximise bool
}

func (c TrainConfig) resolve(hasVal bool) (trainCfg, error) {
	var t trainCfg
	var ok bool
	if t.loss, ok = parseLoss(c.Loss); !ok {
		return t, specErr("unknown loss %q", c.Loss)
	}
	t.opt = c.Optimizer
	switch t.opt {
	case "":
		t.opt = OptAdam
	case OptAdam, OptSGD, OptMomentum:
	default:
		return t, specErr("unknown optimizer %q", c.Optimizer)
	}
	t.lr = c.LearningRate
	if t.lr == 0 {
		t.lr = 0.01
		if t.opt == OptAdam {
			t.lr = 0.001
		}
	}
	if !(t.lr > 0 && t.lr <= 10) {
		return t, specErr("learning rate %v outside (0, 10]", c.LearningRate)
	}
	t.mom = c.Momentum
	if t.opt == OptMomentum && t.mom == 0 {
		t.mom = 0.9
	}
	if !(t.mom >= 0 && t.mom < 1) {
		return t, specErr("momentum %v outside [0, 1)", c.Momentum)
	}
	if t.opt == OptAdam && c.Momentum != 0 {
		return t, specErr("momentum is not an adam parameter")
	}
	t.wd = c.WeightDecay
	if !(t.wd >= 0 && t.wd < 1) {
		return t, specErr("weight decay %v outside [0, 1)", c.WeightDecay)
	}
	if err := c.Schedule.validate(t.lr); err != nil {
		return t, err
	}
	if a := c.Augment; a != nil && (a.Shift < 0 || a.Shift > MaxKernel) {
		return t, specErr("augment: shift %d outside [0, %d]", a.Shift, MaxKernel)
	}
	t.batch, t.epochs = cmp0(c.BatchSize, 32), cmp0(c.Epochs, 1)
	if t.batch < 1 || t.batch > MaxBatchSize {
		return t, specErr("batch size %d outside [1, %d]", c.BatchSize, MaxBatchSize)
	}
	if t.epochs < 1 || t.epochs > MaxEpochs {
		return t, specErr("epochs %d outside [1, %d]", c.Epochs, MaxEpochs)
	}
	if !(c.ValidationSplit >= 0 && c.ValidationSplit < 1) {
		return t, specErr("validation split %v outside [0, 1)", c.ValidationSplit)
	}
	if es := c.EarlyStopping; es != nil {
		t.monitor = es.Monitor
		if t.monitor == "" {
			t.monitor = "loss"
			if hasVal {
				t.monitor = "val_loss"
			}
		}
		switch t.monitor {
		case "loss":
		case "accuracy":
			t.maximise = true
		case "val_loss", "val_accuracy":
			if !hasVal {
				return t, specErr("early stopping monitors %q without a validation split", t.monitor)
			}
			t.maximise = t.monitor == "val_accuracy"
		default:
			return t, specErr("unknown early-stopping monitor %q", es.Monitor)
		}
		if es.Patience < 0 || !(es.MinDelta >= 0) {
			return t, specErr("early stopping: negative patience or min delta")
		}
	}
	return t, nil
}

func cmp0(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// Train fits m in place to n samples: x holds n×InputDim features; y holds
// class labels for sparse_categorical_crossentropy (or, for the other losses,
// may stand in for one-hot targets); targets holds n×OutputDim values for
// categorical_crossentropy and mse. Mini-batches are drawn from a fresh
// permutation every epoch, from a generator seeded with cfg.Seed, so the
// same model, data and config give bit-identical weights and history.
//
// Cancelling ctx stops training between batches: Train then returns the
// history of the completed epochs with Stopped "canceled" and ctx.Err(), and
// m holds the weights of the last completed batch. Bad configurations wrap
// ErrSpec, as does a loss that becomes NaN or infinite (divergence); data
// that does not fit the model (sizes, labels outside [0, OutputDim), NaN or
// infinite features or targets) wraps ErrShape.
//
// Train mutates m and is not goroutine-safe: nothing else may use m while it
// runs.
func Train(ctx context.Context, m *Model, x []float32, y []int32, targets []float32, n int, cfg TrainConfig) (*History, error) {
	nTrain := n
	if cfg.ValidationSplit > 0 {
		nTrain = int(math.Ceil(float64(n) * (1 - cfg.ValidationSplit)))
	}
	c, err := cfg.resolve(nTrain < n)
	if err != nil {
		return nil, err
	}
	if n < 1 { // before checkData, so nTrain is not used in the error path
		return nil, fmt.Errorf("%w: %d samples", ErrShape, n)
	}
	if err := m.checkData(x, y, targets, n, c.loss); err != nil {
		return nil, err
	}
	defer m.repack() // training steps unpack the weights (Model.packed); Forward wants them packed
	if nTrain < 1 {
		return nil, fmt.Errorf("%w: no training samples left after the validation split", ErrShape)
	}
	if y == nil && targets == nil {
		return nil, fmt.Errorf("%w: neither labels nor targets", ErrShape)
	}
	// Losses on dense targets accept labels, one-hot encoded per batch.
	oneHot := c.loss != lossSparseCE && targets == nil

	src := rand.NewPCG(uint64(cfg.Seed), 0xda3e39cb94b95bdb)
	rng := rand.New(src)
	batch := min(c.batch, nTrain)
	if per := m.wsFloatsPerRow(); batch > MaxTrainFloats/per {
		return nil, specErr("batch size %d too large for this model: at most %d", batch, MaxTrainFloats/per)
	}
	ws := m.newWorkspace(batch)
	g := m.newGrads()
	opt := newOptimizer(m, c.opt, c.lr, c.mom)
	opt.wd = float32(c.wd)
	last := m.layers[len(m.layers)-1]
	fused := last.dense && last.act == actSoftmax && c.loss != lossMSE

	xb := make([]float32, batch*m.in)
	var yb []int32
	if y != nil {
		yb = make([]int32, batch)
	}
	var tb []float32
	if targets != nil || oneHot {
		tb = make([]float32, batch*m.out)
	}
	dOut := ws.d0[:batch*m.out]
	perm := make([]int, nTrain)
	for i := range perm {
		perm[i] = i
	}
	batches := (nTrain + batch - 1) / batch

	h := &History{}
	var best float64
	var bestW [][]float32
	wait := 0
	first, firstBatch := 1, 0
	var carried float64 // seconds of the resumed epoch before the stop
	rc := cfg.Resume
	if rc != nil {
		if err := rc.resume(nTrain, batch, c.epochs, src, opt); err != nil {
			return nil, err
		}
		h.Epochs = append([]EpochMetrics(nil), rc.History.Epochs...)
		first, firstBatch, carried = rc.Epoch, rc.Batch, rc.seconds
		best, wait = rc.best, rc.wait
		if rc.bestW != nil {
			bestW = m.snapshot(nil)
			if len(bestW) != len(rc.bestW) {
				return nil, specErr("resume: the best weights do not match the model")
			}
			for i := range bestW {
				if len(bestW[i]) != len(rc.bestW[i]) {
					return nil, specErr("resume: the best weights do not match the model")
				}
				copy(bestW[i], rc.bestW[i])
			}
		}
	}
	var yp yield.Point
	for epoch := first; epoch <= c.epochs; epoch++ {
		start := time.Now()
		lastReport := start
		opt.lr = cfg.Schedule.rate(c.lr, epoch-1, c.epochs)
		var lossSum float64
		var hits, seen int
		b0 := 0
		if rc != nil && epoch == first {
			// The checkpoint's order for this epoch, and its sums so far.
			copy(perm, rc.perm)
			b0, lossSum, hits, seen = firstBatch, rc.lossSum, rc.hits, rc.seen
			start = start.Add(-time.Duration(carried * float64(time.Second)))
		} else {
			rng.Shuffle(nTrain, func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		}
		for bi := b0; bi < batches; bi++ {
			yp.Maybe() // a job trains beside the server's requests
			if err := ctx.Err(); err != nil {
				h.Stopped, h.StoppedEpoch, h.StoppedBatch, h.Batches = StoppedCanceled, epoch, bi, batches
				return h, err
			}
			if (!cfg.StopAt.IsZero() && time.Now().After(cfg.StopAt)) || (testStopAt > 0 && (epoch-1)*batches+bi == testStopAt && rc == nil) {
				h.Stopped, h.StoppedEpoch, h.StoppedBatch, h.Batches = StoppedDeadline, epoch, bi, batches
				h.Checkpoint = m.checkpoint(h, epoch, bi, perm, src, opt, lossSum, hits, seen,
					time.Since(start).Seconds(), best, wait, bestW, batch)
				return h, nil
			}
			lo := bi * batch
			rows := min(batch, nTrain-lo)
			for r, idx := range perm[lo : lo+rows] {
				if cfg.Augment.on() {
					cfg.Augment.apply(xb[r*m.in:(r+1)*m.in], x[idx*m.in:(idx+1)*m.in], m.inShape, rng)
				} else {
					copy(xb[r*m.in:(r+1)*m.in], x[idx*m.in:(idx+1)*m.in])
				}
				if yb != nil {
					yb[r] = y[idx]
				}
				switch {
				case targets != nil:
					copy(tb[r*m.out:(r+1)*m.out], targets[idx*m.out:(idx+1)*m.out])
				case oneHot:
					row := tb[r*m.out : (r+1)*m.out]
					clear(row)
					row[y[idx]] = 1
				}
			}
			out := m.forwardTrain(ws, xb, rows, rng)
			var tr []float32
			if tb != nil {
				tr = tb[:rows*m.out]
			}
			loss := lossGrad(c.loss, out, m.out, yb, tr, rows, fused, dOut[:rows*m.out])
			hits += correct(out, m.out, yb, tr, rows)
			lossSum += loss * float64(rows)
			seen += rows
			m.backward(ws, dOut[:rows*m.out], rows, fused, g, false)
			opt.apply(m, g)
			if cfg.Progress != nil {
				if now := time.Now(); bi == batches-1 || now.Sub(lastReport) >= 100*time.Millisecond {
					lastReport = now
					cfg.Progress(Progress{Epoch: epoch, Epochs: c.epochs, Batch: bi + 1, Batches: batches,
						Loss: lossSum / float64(seen), Accuracy: float64(hits) / float64(seen)})
				}
			}
		}
		em := EpochMetrics{Epoch: epoch, Loss: lossSum / float64(seen), Accuracy: float64(hits) / float64(seen)}
		if math.IsNaN(em.Loss) || math.IsInf(em.Loss, 0) {
			// The weights are no longer finite and WriteArtifact would
			// refuse them: report the cause rather than train on.
			return h, specErr("training diverged in epoch %d (loss %v): lower the learning rate", epoch, em.Loss)
		}
		if nTrain < n {
			var vt []float32
			if targets != nil {
				vt = targets[nTrain*m.out:]
			}
			var vy []int32
			if y != nil {
				vy = y[nTrain:]
			}
			vl, va, err := m.evaluate(ctx, x[nTrain*m.in:], vy, vt, n-nTrain, c.loss)
			if err != nil {
				h.Stopped = StoppedCanceled
				return h, err
			}
			em.ValLoss, em.ValAccuracy = &vl, &va
		}
		em.Seconds = time.Since(start).Seconds()
		h.Epochs = append(h.Epochs, em)

		if es := cfg.EarlyStopping; es != nil {
			cur := pick(em, c.monitor)
			improved := epoch == 1
			if !improved {
				if c.maximise {
					improved = cur-es.MinDelta > best
				} else {
					improved = cur+es.MinDelta < best
				}
			}
			if improved {
				best, wait = cur, 0
				if es.RestoreBestWeights {
					bestW = m.snapshot(bestW)
				}
			} else if wait++; wait >= es.Patience {
				h.Stopped = StoppedEarly
				if es.RestoreBestWeights && bestW != nil {
					m.restore(bestW)
				}
				return h, nil
			}
		}
	}
	return h, nil
}

// testStopAt, when positive, makes Train stop as at a StopAt deadline
// before that many batches have run in all (a first run only, not a
// resumed one): the tests' deterministic deadline.
var testStopAt int

func pick(e EpochMetrics, monitor string) float64 {
	switch monitor {
	case "accuracy":
		return e.Accuracy
	case "val_loss":
		return *e.ValLoss
	case "val_accuracy":
		return *e.ValAccuracy
	}
	return e.Loss
}

// snapshot copies every parameter of m, running statistics included, into
// dst (allocated when nil).
func (m *Model) snapshot(dst [][]float32) [][]float32 {
	k := 0
	for i := range m.layers {
		for _, t := range m.layers[i].tensors(i) {
			if k == len(dst) {
				dst = append(dst, make([]float32, len(t.v)))
			}
			copy(dst[k], t.v)
			k++
		}
	}
	return dst
}

func (m *Model) restore(src [][]float32) {
	k := 0
	for i := range m.layers {
		for _, t := range m.layers[i].tensors(i) {
			copy(t.v, src[k])
			k++
		}
	}
	m.weightsChanged()
}

// checkData checks the sizes of a data set against m and the loss, and
// that every label names an output.
func (m *Model) checkData(x []float32, y []int32, targets []float32, n int, loss lossKind) error {
	if m == nil || m.in == 0 {
		return errNoModel
	}
	if n < 1 {
		return fmt.Errorf("%w: %d samples", ErrShape, n)
	}
	if len(x)%m.in != 0 || len(x)/m.in != n {
		return fmt.Errorf("%w: features have %d values, want %d samples × %d", ErrShape, len(x), n, m.in)
	}
	if loss == lossSparseCE && y == nil {
		return fmt.Errorf("%w: sparse_categorical_crossentropy needs labels", ErrShape)
	}
	if y != nil {
		if len(y) != n {
			return fmt.Errorf("%w: %d labels for %d samples", ErrShape, len(y), n)
		}
		for i, v := range y {
			if v < 0 || int(v) >= m.out {
				return fmt.Errorf("%w: label %d of sample %d outside [0, %d)", ErrShape, v, i, m.out)
			}
		}
	}
	if targets != nil && (len(targets)%m.out != 0 || len(targets)/m.out != n) {
		return fmt.Errorf("%w: targets have %d values, want %d samples × %d", ErrShape, len(targets), n, m.out)
	}
	if i := nonFinite(x); i >= 0 {
		return fmt.Errorf("%w: feature %d of sample %d is %v", ErrShape, i%m.in, i/m.in, x[i])
	}
	if i := nonFinite(targets); i >= 0 {
		return fmt.Errorf("%w: target %d of sample %d is %v", ErrShape, i%m.out, i/m.out, targets[i])
	}
	return nil
}

// nonFinite returns the index of the first NaN or infinite value, or -1.
func nonFinite(v []float32) int {
	for i, x := range v {
		if x-x != 0 { // NaN and ±Inf only
			return i
		}
	}
	return -1
}

// Evaluate returns the mean sparse categorical cross-entropy and the
// accuracy of m on n labelled samples, with dropout off. It is
// goroutine-safe.
func (m *Model) Evaluate(x []float32, y []int32, n int) (loss, accuracy float64, err error) {
	if err := m.checkData(x, y, nil, n, lossSparseCE); err != nil {
		return 0, 0, err
	}
	return m.evaluate(context.Background(), x, y, nil, n, lossSparseCE)
}

func (m *Model) evaluate(ctx context.Context, x []float32, y []int32, targets []float32, n int, kind lossKind) (float64, float64, error) {
	chunk := max(1, min(1024, fwdScratchFloats/m.out)) // bounds the output buffer for wide outputs
	out := make([]float32, min(n, chunk)*m.out)
	var t1h []float32
	if kind != lossSparseCE && targets == nil {
		t1h = make([]float32, min(n, chunk)*m.out)
	}
	var lossSum float64
	hits := 0
	for lo := 0; lo < n; lo += chunk {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		rows := min(chunk, n-lo)
		p, err := m.Forward(out, x[lo*m.in:(lo+rows)*m.in], rows)
		if err != nil {
			return 0, 0, err
		}
		var yr []int32
		if y != nil {
			yr = y[lo : lo+rows]
		}
		var tr []float32
		switch {
		case targets != nil:
			tr = targets[lo*m.out : (lo+rows)*m.out]
		case t1h != nil:
			tr = t1h[:rows*m.out]
			clear(tr)
			for r, v := range yr {
				tr[r*m.out+int(v)] = 1
			}
		}
		lossSum += lossGrad(kind, p, m.out, yr, tr, rows, false, nil) * float64(rows)
		hits += correct(p, m.out, yr, tr, rows)
	}
	return lossSum / float64(n), float64(hits) / float64(n), nil
}
