package nn

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"github.com/aiaas/aiaas/nn/kernels"
)

// Forward works on chunks of at most fwdChunk rows, and fewer when layers
// are wide, so that each of its two pooled scratch buffers holds at most
// fwdScratchFloats floats (1 MiB) whatever the batch and the width: memory
// per concurrent call stays bounded, and a chunk of activations stays in L2.
const (
	fwdChunk         = 256
	fwdScratchFloats = 1 << 18
)

// layer is one compiled entry of a Spec.
type layer struct {
	kind       string // Layer.Type
	dense      bool   // kind == LayerDense
	in, out    int    // values per sample: inS.size(), outS.size()
	inS, outS  shape
	g          geom // conv2d and pooling
	act        act
	rate       float64         // dropout only
	w          []float32       // dense: in×out row-major, the Keras kernel layout, so y = x·W + b is one NoTrans Gemm; conv2d: F×C×KH×KW (ONNX, PyTorch); batchnorm: γ
	b          []float32       // dense: out; conv2d: F; batchnorm: β
	mean, vari []float32       // batchnorm running statistics
	mom, eps   float32         // batchnorm
	pk         *kernels.Packed // w packed for kernels.Dense (references w and b); valid while Model.packed
}

// tensor is one named parameter array of a layer, as stored in artifacts.
type tensor struct {
	name      string
	shape     []int
	v         []float32
	trainable bool
}

// tensors lists layer i's parameters in artifact order: weight and bias,
// then a batch normalisation's running mean and variance.
func (l *layer) tensors(i int) []tensor {
	switch l.kind {
	case LayerDense:
		return []tensor{{WeightName(i), []int{l.in, l.out}, l.w, true}, {BiasName(i), []int{l.out}, l.b, true}}
	case LayerConv2D:
		return []tensor{{WeightName(i), []int{l.outS.c, l.inS.c, l.g.kh, l.g.kw}, l.w, true}, {BiasName(i), []int{l.outS.c}, l.b, true}}
	case LayerBatchNorm:
		c := l.inS.c
		return []tensor{{WeightName(i), []int{c}, l.w, true}, {BiasName(i), []int{c}, l.b, true},
			{RunningMeanName(i), []int{c}, l.mean, false}, {RunningVarName(i), []int{c}, l.vari, false}}
	}
	return nil
}

// hasWeights reports whether the layer has trainable parameters (w and b).
func (l *layer) hasWeights() bool { return l.w != nil }

// Model is a network with its weights.
//
// A Model is immutable after New or ReadArtifact except through Train, and
// Forward, Evaluate, Attribute, WriteArtifact and the accessors are
// goroutine-safe on it. Train mutates the weights in place and must not run
// concurrently with anything else on the same Model.
type Model struct {
	spec     Spec
	layers   []layer
	in, out  int
	hidden   int // widest non-input activation
	params   int
	lastDens int // index of the last layer that is not dropout; trailing dropouts are identities at inference
	inShape  shape
	spatial  bool // has layers other than dense and dropout: Forward goes layer by layer
	fwdRows  int  // rows per Forward chunk
	// packed says every dense layer's pk holds its current weights. New,
	// ReadArtifact and Clone pack; a training step clears it, and Forward
	// (Train's validation pass) or Train's return packs again. It is only
	// written while Train owns the model, so concurrent Forward calls on a
	// model that is not training only read it.
	packed bool

	scratch sync.Pool // *fwdScratch
}

// errNoModel guards the zero Model, which has no layers: a Model comes from
// New, ReadArtifact or Clone.
var errNoModel = fmt.Errorf("%w: model not built with New or ReadArtifact", ErrSpec)

type fwdScratch struct {
	a, b []float32
	conv convScratch
}

// New builds a model for spec with Glorot-uniform weights drawn from a
// generator seeded with seed, and zero biases (the Keras defaults). The same
// spec and seed always give bit-identical weights. Errors wrap ErrSpec.
func New(spec Spec, seed int64) (*Model, error) {
	m, err := build(spec)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	for i := range m.layers {
		l := &m.layers[i]
		var fanIn, fanOut int
		switch l.kind {
		case LayerDense:
			fanIn, fanOut = l.in, l.out
		case LayerConv2D:
			rf := l.g.kh * l.g.kw
			fanIn, fanOut = l.inS.c*rf, l.outS.c*rf
		default:
			continue
		}
		limit := math.Sqrt(6 / float64(fanIn+fanOut))
		for j := range l.w {
			l.w[j] = float32((2*rng.Float64() - 1) * limit)
		}
	}
	m.pack()
	return m, nil
}

// pack packs every dense layer's weights for kernels.Dense: once per built,
// loaded or trained model, instead of once per product as a GEMM does.
func (m *Model) pack() {
	for i := range m.layers {
		if l := &m.layers[i]; l.dense {
			l.pk = kernels.Pack(l.w, l.in, l.out, l.b)
		}
	}
	m.packed = true
}

// repack packs again if a training step moved the weights.
func (m *Model) repack() {
	if !m.packed {
		m.pack()
	}
}

// weightsChanged records that the weights moved since the last pack.
func (m *Model) weightsChanged() { m.packed = false }

// build validates spec and allocates zeroed weights (and batch
// normalisations at γ 1, β 0, running mean 0 and variance 1).
func build(spec Spec) (*Model, error) {
	plan, err := spec.plan()
	if err != nil {
		return nil, err
	}
	m := &Model{spec: spec.clone(), layers: make([]layer, len(plan))}
	m.in = plan[0].in.size()
	m.inShape = plan[0].in
	scratch := 0
	for i, p := range plan {
		l := spec.Layers[i]
		ly := layer{kind: l.Type, dense: l.Type == LayerDense, in: p.in.size(), out: p.out.size(), inS: p.in, outS: p.out, g: p.g, rate: l.Rate}
		ly.act, _ = parseAct(l.Activation)
		switch l.Type {
		case LayerDense:
			ly.w = make([]float32, ly.in*ly.out)
			ly.b = make([]float32, ly.out)
			m.lastDens = i
		case LayerConv2D:
			ly.w = make([]float32, p.out.c*p.in.c*p.g.kh*p.g.kw)
			ly.b = make([]float32, p.out.c)
			m.lastDens = i
			m.spatial = true
			scratch = max(scratch, ly.colLen(), ly.out)
		case LayerBatchNorm:
			c := p.in.c
			ly.w, ly.b, ly.mean, ly.vari = make([]float32, c), make([]float32, c), make([]float32, c), make([]float32, c)
			for j := range c {
				ly.w[j], ly.vari[j] = 1, 1
			}
			ly.mom, ly.eps = float32(l.Momentum), float32(l.Epsilon)
			if l.Momentum == 0 {
				ly.mom = 0.99
			}
			if l.Epsilon == 0 {
				ly.eps = 1e-3
			}
			m.lastDens = i
			m.spatial = true
		case LayerMaxPool2D, LayerAvgPool2D, LayerGlobalAvg, LayerFlatten:
			m.lastDens = i
			m.spatial = true
		}
		for _, t := range ly.tensors(i) {
			m.params += len(t.v)
		}
		m.hidden = max(m.hidden, ly.out)
		m.out = ly.out
		m.layers[i] = ly
	}
	m.fwdRows = max(1, min(fwdChunk, fwdScratchFloats/max(m.hidden, scratch)))
	return m, nil
}

// Spec returns a copy of the model's spec. It is goroutine-safe.
func (m *Model) Spec() Spec { return m.spec.clone() }

// InputDim returns the number of features per sample. It is goroutine-safe.
func (m *Model) InputDim() int { return m.in }

// OutputDim returns the number of outputs per sample. It is goroutine-safe.
func (m *Model) OutputDim() int { return m.out }

// NumParams returns the number of weights and biases. It is goroutine-safe.
func (m *Model) NumParams() int { return m.params }

// Forward computes the model's output for batch samples. x holds
// batch×InputDim() values, row-major; the result holds batch×OutputDim().
// dst is reused when its capacity is large enough and must not overlap x.
// Dropout layers are identities. Sizes that do not match return an error
// wrapping ErrShape; Forward never panics on them.
//
// Forward is goroutine-safe. Its scratch buffers come from a per-model
// sync.Pool, so steady-state calls with a large enough dst allocate nothing.
func (m *Model) Forward(dst, x []float32, batch int) ([]float32, error) {
	return m.ForwardContext(context.Background(), dst, x, batch)
}

// ForwardContext is Forward that stops between chunks of rows once ctx is
// done, returning ctx's error: a request past its deadline does not keep
// a core busy for the rest of a large batch.
func (m *Model) ForwardContext(ctx context.Context, dst, x []float32, batch int) ([]float32, error) {
	if err := m.checkX(x, batch); err != nil {
		return nil, err
	}
	need := batch * m.out
	if cap(dst) >= need {
		dst = dst[:need]
	} else {
		dst = make([]float32, need)
	}
	s, _ := m.scratch.Get().(*fwdScratch)
	if s == nil {
		s = &fwdScratch{}
	}
	if n := min(batch, m.fwdRows) * m.hidden; len(s.a) < n {
		s.a, s.b = make([]float32, n), make([]float32, n)
	}
	if m.spatial {
		m.sizeConvScratch(&s.conv, min(batch, m.fwdRows))
	}
	if !m.packed {
		// Only inside Train (its validation pass), which owns the model:
		// see Model.packed.
		m.pack()
	}
	fused := m.fused()
	for r := 0; r < batch; r += m.fwdRows {
		if err := ctx.Err(); err != nil {
			m.scratch.Put(s)
			return nil, err
		}
		rows := min(m.fwdRows, batch-r)
		m.forwardChunk(dst[r*m.out:(r+rows)*m.out], x[r*m.in:(r+rows)*m.in], rows, s, fused)
	}
	m.scratch.Put(s)
	return dst, nil
}

func (m *Model) checkX(x []float32, batch int) error {
	if m == nil || m.in == 0 {
		return errNoModel
	}
	if batch < 1 {
		return fmt.Errorf("%w: batch %d, want at least 1", ErrShape, batch)
	}
	if len(x)%m.in != 0 || len(x)/m.in != batch {
		return fmt.Errorf("%w: input has %d values, want batch %d × %d", ErrShape, len(x), batch, m.in)
	}
	return nil
}

// fused reports whether Forward can run the packed weights through
// kernels.Dense: nn/kernels is the registered BLAS (a program that
// registers another one with blas32.Use gets it used).
func (m *Model) fused() bool {
	return fuseForward && blas32.Implementation() == kernels.Implementation()
}

// fuseForward lets benchmarks compare the fused path with the unfused one
// on the same BLAS; it is never changed outside them.
var fuseForward = true

func (m *Model) forwardChunk(dst, x []float32, rows int, s *fwdScratch, fused bool) {
	cur, free := x, s.a
	for i := 0; i <= m.lastDens; i++ {
		l := &m.layers[i]
		if l.kind == LayerDropout {
			continue // dropout is the identity at inference
		}
		out := free[:rows*l.out]
		if i == m.lastDens {
			out = dst
		}
		switch {
		case !l.dense:
			m.spatialForward(l, out, cur, rows, &s.conv, nil)
		case fused:
			denseFused(out, cur, l, rows)
		default:
			denseForward(out, cur, l, rows)
		}
		cur = out
		if &free[0] == &s.a[0] {
			free = s.b
		} else {
			free = s.a
		}
	}
}

// sizeConvScratch makes s large enough for rows samples through every
// convolution of m.
func (m *Model) sizeConvScratch(s *convScratch, rows int) {
	var col, fm int
	for i := range m.layers {
		if l := &m.layers[i]; l.kind == LayerConv2D {
			col, fm = max(col, l.colLen()), max(fm, l.out)
		}
	}
	if len(s.col) < rows*col {
		s.col = make([]float32, rows*col)
	}
	if len(s.fm) < rows*fm {
		s.fm = make([]float32, rows*fm)
	}
}

// spatialForward runs one layer that is neither dense nor dropout. In
// training, st (batch normalisation) is non-nil and records what the
// backward pass needs.
func (m *Model) spatialForward(l *layer, out, in []float32, rows int, cs *convScratch, st *bnStats) {
	switch l.kind {
	case LayerConv2D:
		l.convForward(out, in, rows, cs)
	case LayerMaxPool2D, LayerAvgPool2D:
		l.poolForward(out, in, rows)
	case LayerGlobalAvg:
		l.gapForward(out, in, rows)
	case LayerBatchNorm:
		l.bnForward(out, in, rows, st)
	case LayerFlatten:
		copy(out, in[:len(out)])
	}
}

// denseForward computes out = act(in·W + b) for rows samples.
func denseForward(out, in []float32, l *layer, rows int) {
	for r := 0; r < rows; r++ {
		copy(out[r*l.out:(r+1)*l.out], l.b)
	}
	blas32.Gemm(blas.NoTrans, blas.NoTrans, 1,
		blas32.General{Rows: rows, Cols: l.in, Stride: l.in, Data: in},
		blas32.General{Rows: l.in, Cols: l.out, Stride: l.out, Data: l.w},
		1, blas32.General{Rows: rows, Cols: l.out, Stride: l.out, Data: out})
	l.act.apply(out, l.out)
}

// denseFused computes out = act(in·W + b) for rows samples with the packed
// weights: bias and ReLU in the kernel's epilogue, the other activations
// right after, while out is still in cache.
func denseFused(out, in []float32, l *layer, rows int) {
	if l.act == actReLU {
		kernels.Dense(out, in, rows, l.pk, kernels.ReLU)
		return
	}
	kernels.Dense(out, in, rows, l.pk, kernels.Linear)
	l.act.apply(out, l.out)
}

// workspace holds what a backward pass needs for a fixed batch size: every
// layer's output, dropout masks, max-pooling argmaxes, batch-normalisation
// statistics, the convolutions' im2col matrices and two gradient buffers.
// It belongs to one goroutine.
type workspace struct {
	batch int
	train bool        // the last forwardTrain ran in training mode
	acts  [][]float32 // acts[0] aliases the input; acts[i+1] is layer i's output
	masks [][]float32 // per dropout layer: 0 or 1/(1-rate)
	stats []bnStats   // per batch normalisation
	cols  [][]float32 // per convolution: its im2col matrix
	fm    []float32   // the convolutions' filter-major scratch
	t     []float32   // the convolutions' transposed weight gradient
	d0    []float32
	d1    []float32
}

// wsFloatsPerRow is the size of a workspace per row of its batch, in floats.
func (m *Model) wsFloatsPerRow() int {
	n := 2 * max(m.hidden, m.in)
	fm := 0
	for _, l := range m.layers {
		n += l.out
		switch l.kind {
		case LayerDropout:
			n += l.out // mask
		case LayerConv2D:
			n += l.colLen()
			fm = max(fm, l.out)
		}
	}
	return n + fm
}

func (m *Model) newWorkspace(batch int) *workspace {
	n := len(m.layers)
	ws := &workspace{batch: batch, acts: make([][]float32, n+1), masks: make([][]float32, n),
		stats: make([]bnStats, n), cols: make([][]float32, n)}
	fm := 0
	for i, l := range m.layers {
		ws.acts[i+1] = make([]float32, batch*l.out)
		switch l.kind {
		case LayerDropout:
			ws.masks[i] = make([]float32, batch*l.out)
		case LayerBatchNorm:
			ws.stats[i] = bnStats{mean: make([]float32, l.inS.c), inv: make([]float32, l.inS.c)}
		case LayerConv2D:
			ws.cols[i] = make([]float32, batch*l.colLen())
			fm = max(fm, l.out)
			ws.t = make([]float32, max(len(ws.t), len(l.w)))
		}
	}
	ws.fm = make([]float32, batch*fm)
	w := max(m.hidden, m.in)
	ws.d0, ws.d1 = make([]float32, batch*w), make([]float32, batch*w)
	return ws
}

// forwardTrain runs rows ≤ ws.batch samples and keeps every activation.
// With rng non-nil the model is in training mode: dropout is active
// (inverted dropout, as in Keras) and batch normalisations use the batch's
// statistics and update their running ones; with rng nil, everything runs
// as at inference.
func (m *Model) forwardTrain(ws *workspace, x []float32, rows int, rng *rand.Rand) []float32 {
	ws.acts[0] = x[:rows*m.in]
	ws.train = rng != nil
	for i := range m.layers {
		l := &m.layers[i]
		in, out := ws.acts[i][:rows*l.in], ws.acts[i+1][:rows*l.out]
		switch l.kind {
		case LayerDense:
			if rng != nil {
				denseForwardTrain(out, in, l, rows)
			} else {
				denseForward(out, in, l, rows)
			}
			continue
		case LayerDropout:
		default:
			cs := convScratch{col: ws.cols[i], fm: ws.fm, train: rng != nil}
			var st *bnStats
			if rng != nil && l.kind == LayerBatchNorm {
				st = &ws.stats[i]
			}
			m.spatialForward(l, out, in, rows, &cs, st)
			continue
		}
		mask := ws.masks[i][:rows*l.out]
		if rng == nil || l.rate == 0 {
			for j := range mask {
				mask[j] = 1
			}
			copy(out, in)
			continue
		}
		keep := float32(1 / (1 - l.rate))
		for j := range mask {
			if rng.Float64() < l.rate {
				mask[j] = 0
			} else {
				mask[j] = keep
			}
			out[j] = in[j] * mask[j]
		}
	}
	return ws.acts[len(m.layers)][:rows*m.out]
}

// grads holds one gradient slice per weight and bias slice of a model.
type grads struct{ w, b [][]float32 }

func (m *Model) newGrads() *grads {
	g := &grads{w: make([][]float32, len(m.layers)), b: make([][]float32, len(m.layers))}
	for i, l := range m.layers {
		if l.hasWeights() {
			g.w[i], g.b[i] = make([]float32, len(l.w)), make([]float32, len(l.b))
		}
	}
	return g
}

// backward propagates d, the gradient of a scalar with respect to the
// model's output (rows×OutputDim, overwritten), through the activations kept
// by forwardTrain. With fused set, d is already the gradient with respect to
// the last layer's pre-activation (softmax + cross-entropy). It fills g
// (weights and biases, overwritten) when g is non-nil, and returns the
// gradient with respect to the input when wantDX is set. After a
// forwardTrain in inference mode (attributions), batch normalisations are
// the fixed affine maps they are at inference and fill no gradient.
func (m *Model) backward(ws *workspace, d []float32, rows int, fused bool, g *grads, wantDX bool) []float32 {
	cur := d
	for i := len(m.layers) - 1; i >= 0; i-- {
		l := &m.layers[i]
		if l.kind == LayerDropout {
			mask := ws.masks[i][:rows*l.out]
			for j := range cur {
				cur[j] *= mask[j]
			}
			continue
		}
		if (l.dense || l.kind == LayerConv2D) && !(fused && i == len(m.layers)-1) {
			out, cols := ws.acts[i+1][:rows*l.out], l.out
			parallelRows(rows, rows*cols, func(lo, hi int) {
				l.act.grad(cur[lo*cols:hi*cols], out[lo*cols:hi*cols], cols)
			})
		}
		needDX := i > 0 || wantDX
		var gw, gb []float32
		if g != nil {
			gw, gb = g.w[i], g.b[i]
		}
		if !l.hasWeights() && !needDX {
			return nil
		}
		next := ws.d0
		if len(cur) > 0 && len(ws.d0) > 0 && &cur[0] == &ws.d0[0] {
			next = ws.d1
		}
		next = next[:rows*l.in]
		dx := next
		if !needDX {
			dx = nil
		}
		in := ws.acts[i][:rows*l.in]
		switch l.kind {
		case LayerDense:
			l.denseBackward(dx, cur, in, rows, gw, gb)
		case LayerConv2D:
			cs := convScratch{col: ws.cols[i], fm: ws.fm, t: ws.t, train: true}
			l.convBackward(dx, cur, rows, &cs, gw, gb)
		case LayerMaxPool2D, LayerAvgPool2D:
			l.poolBackward(dx, cur, in, ws.acts[i+1][:rows*l.out], rows)
		case LayerGlobalAvg:
			l.gapBackward(dx, cur, rows)
		case LayerBatchNorm:
			if ws.train {
				l.bnBackward(dx, cur, in, rows, &ws.stats[i], gw, gb)
			} else {
				l.bnBackwardInference(dx, cur, rows)
			}
		case LayerFlatten:
			copy(dx, cur)
		}
		if !needDX {
			return nil
		}
		cur = next
	}
	return cur
}

// denseBackward takes d, the gradient with respect to the layer's
// pre-activation output, fills gw and gb when non-nil and writes the input
// gradient into dx when non-nil.
func (l *layer) denseBackward(dx, d, in []float32, rows int, gw, gb []float32) {
	if gw != nil {
		trainGemm(blas.Trans, blas.NoTrans, l.in, l.out, rows, in, l.in, d, l.out, gw, l.out)
		clear(gb)
		for r := 0; r < rows; r++ {
			row := d[r*l.out : (r+1)*l.out]
			for j, v := range row {
				gb[j] += v
			}
		}
	}
	if dx != nil {
		trainGemm(blas.NoTrans, blas.Trans, rows, l.in, l.out, d, l.out, l.w, l.out, dx, l.in)
	}
}

// denseForwardTrain is denseForward in a training step (trainGemm).
func denseForwardTrain(out, in []float32, l *layer, rows int) {
	for r := 0; r < rows; r++ {
		copy(out[r*l.out:(r+1)*l.out], l.b)
	}
	trainGemmAcc(blas.NoTrans, blas.NoTrans, rows, l.out, l.in, in, l.in, l.w, l.out, out, l.out)
	l.act.apply(out, l.out)
}

// trainGemm computes C = op(A)·op(B) for a training step: with nn/kernels
// registered as the BLAS, kernels.SgemmTrain, which uses every core for
// products a serving process would run on one; otherwise the registered
// BLAS. trainGemmAcc is C += op(A)·op(B).
func trainGemm(tA, tB blas.Transpose, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	trainSgemm(tA, tB, m, n, k, a, lda, b, ldb, 0, c, ldc)
}

func trainGemmAcc(tA, tB blas.Transpose, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	trainSgemm(tA, tB, m, n, k, a, lda, b, ldb, 1, c, ldc)
}

func trainSgemm(tA, tB blas.Transpose, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if impl := blas32.Implementation(); impl != kernels.Implementation() {
		impl.Sgemm(tA, tB, m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
		return
	}
	kernels.SgemmTrain(tA, tB, m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
}

// Clone returns a deep copy of m with its own weights, e.g. to fine-tune a
// served model with Train while the original keeps serving. It is
// goroutine-safe (not during Train on m).
func (m *Model) Clone() *Model {
	c := &Model{spec: m.spec.clone(), layers: append([]layer(nil), m.layers...),
		in: m.in, out: m.out, hidden: m.hidden, params: m.params, lastDens: m.lastDens, fwdRows: m.fwdRows,
		inShape: m.inShape, spatial: m.spatial}
	for i := range c.layers {
		l := &c.layers[i]
		l.w, l.b = slices.Clone(l.w), slices.Clone(l.b)
		l.mean, l.vari = slices.Clone(l.mean), slices.Clone(l.vari)
	}
	c.pack()
	return c
}
