package nn

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func testModel(t testing.TB, spec Spec, seed int64) *Model {
	t.Helper()
	m, err := New(spec, seed)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func randInput(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.Float64())
	}
	return x
}

// refForward is an independent float64 forward pass, the oracle for Forward.
func refForward(m *Model, x []float32, batch int) []float64 {
	cur := make([]float64, len(x))
	for i, v := range x {
		cur[i] = float64(v)
	}
	for _, l := range m.layers {
		if !l.dense {
			continue
		}
		next := make([]float64, batch*l.out)
		for r := 0; r < batch; r++ {
			for o := 0; o < l.out; o++ {
				s := float64(l.b[o])
				for i := 0; i < l.in; i++ {
					s += cur[r*l.in+i] * float64(l.w[i*l.out+o])
				}
				next[r*l.out+o] = s
			}
			row := next[r*l.out : (r+1)*l.out]
			switch l.act {
			case actReLU:
				for j, v := range row {
					row[j] = math.Max(v, 0)
				}
			case actTanh:
				for j, v := range row {
					row[j] = math.Tanh(v)
				}
			case actSigmoid:
				for j, v := range row {
					row[j] = 1 / (1 + math.Exp(-v))
				}
			case actSoftmax:
				mx, s := math.Inf(-1), 0.0
				for _, v := range row {
					mx = math.Max(mx, v)
				}
				for j, v := range row {
					row[j] = math.Exp(v - mx)
					s += row[j]
				}
				for j := range row {
					row[j] /= s
				}
			}
		}
		cur = next
	}
	return cur
}

func TestForwardMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for ci, spec := range []Spec{
		MLP("a", 13, []int{17, 9}, "relu", 5, "softmax"),
		MLP("b", 7, []int{3}, "tanh", 2, "sigmoid"),
		MLP("c", 7, []int{6, 6}, "softmax", 4, "linear"),
		{Inputs: []TensorSpec{{Name: "x", Datatype: "FP32", Shape: []int64{-1, 5}}},
			Outputs: []TensorSpec{{Name: "y", Datatype: "FP32", Shape: []int64{-1, 3}}},
			Layers:  []Layer{{Type: "dropout", Rate: 0.5}, {Type: "dense", Units: 3, Activation: "relu"}, {Type: "dropout", Rate: 0.2}}},
	} {
		m := testModel(t, spec, int64(ci))
		for i := range m.layers {
			for j := range m.layers[i].b {
				m.layers[i].b[j] = float32(r.NormFloat64() * 0.1)
			}
		}
		for _, batch := range []int{1, 3, fwdChunk + 5} { // the last one spans two chunks
			x := randInput(r, batch*m.in)
			got, err := m.Forward(nil, x, batch)
			if err != nil {
				t.Fatal(err)
			}
			want := refForward(m, x, batch)
			if len(got) != len(want) {
				t.Fatalf("case %d batch %d: %d outputs, want %d", ci, batch, len(got), len(want))
			}
			for i := range want {
				if d := math.Abs(float64(got[i]) - want[i]); d > 1e-5+1e-5*math.Abs(want[i]) {
					t.Fatalf("case %d batch %d: out[%d] = %v, want %v", ci, batch, i, got[i], want[i])
				}
			}
		}
	}
}

func TestForwardShapeErrors(t *testing.T) {
	m := testModel(t, MLP("m", 4, []int{8}, "relu", 3, "softmax"), 1)
	cases := []struct {
		x     []float32
		batch int
	}{
		{nil, 1},
		{make([]float32, 4), 0},
		{make([]float32, 4), -1},
		{make([]float32, 4), 2},
		{make([]float32, 5), 1},
		{make([]float32, 8), 1},
		{make([]float32, 3), 1},
		{make([]float32, 4), math.MaxInt},
		{make([]float32, 4), math.MinInt},
	}
	for i, c := range cases {
		out, err := m.Forward(nil, c.x, c.batch)
		if !errors.Is(err, ErrShape) || out != nil {
			t.Errorf("case %d: (%v, %v), want ErrShape", i, out, err)
		}
	}
}

func TestForwardReusesDst(t *testing.T) {
	m := testModel(t, MLP("m", 4, []int{8}, "relu", 3, "softmax"), 1)
	x := make([]float32, 2*4)
	dst := make([]float32, 100)
	out, err := m.Forward(dst, x, 2)
	if err != nil || len(out) != 6 || &out[0] != &dst[0] {
		t.Fatalf("dst not reused: len %d err %v", len(out), err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := m.Forward(dst, x, 2); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 && !raceEnabled { // the race detector may drop pooled objects
		t.Errorf("%v allocations per steady-state Forward, want 0", allocs)
	}
}

// TestForwardConcurrent hammers one model from many goroutines with
// different batch sizes; run it under -race. Each result must equal the
// single-threaded one bit for bit.
func TestForwardConcurrent(t *testing.T) {
	m := testModel(t, MLP("m", 20, []int{32, 16}, "relu", 4, "softmax"), 3)
	r := rand.New(rand.NewPCG(5, 6))
	batches := []int{1, 2, 7, 64, fwdChunk + 1}
	inputs := make([][]float32, len(batches))
	want := make([][]float32, len(batches))
	for i, b := range batches {
		inputs[i] = randInput(r, b*m.in)
		var err error
		if want[i], err = m.Forward(nil, inputs[i], b); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var dst []float32
			for it := 0; it < 50; it++ {
				i := (g + it) % len(batches)
				out, err := m.Forward(dst, inputs[i], batches[i])
				if err != nil {
					errs <- err.Error()
					return
				}
				for j := range out {
					if math.Float32bits(out[j]) != math.Float32bits(want[i][j]) {
						errs <- "result differs from the single-threaded one"
						return
					}
				}
				dst = out
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

func TestGlorotInit(t *testing.T) {
	a := testModel(t, MLP("m", 300, []int{100}, "relu", 10, "softmax"), 42)
	b := testModel(t, MLP("m", 300, []int{100}, "relu", 10, "softmax"), 42)
	c := testModel(t, MLP("m", 300, []int{100}, "relu", 10, "softmax"), 43)
	l := a.layers[0]
	limit := math.Sqrt(6.0 / 400)
	var sum, sq float64
	for i, v := range l.w {
		if math.Abs(float64(v)) > limit {
			t.Fatalf("w[%d] = %v outside ±%v", i, v, limit)
		}
		if v != b.layers[0].w[i] {
			t.Fatal("same seed, different weights")
		}
		sum += float64(v)
		sq += float64(v) * float64(v)
	}
	n := float64(len(l.w))
	// Uniform(−a, a) has mean 0 and variance a²/3.
	if mean := sum / n; math.Abs(mean) > 0.01*limit*10 {
		t.Errorf("mean %v", mean)
	}
	if v := sq / n; math.Abs(v-limit*limit/3) > 0.05*limit*limit/3 {
		t.Errorf("variance %v, want %v", v, limit*limit/3)
	}
	for _, v := range l.b {
		if v != 0 {
			t.Fatal("non-zero bias")
		}
	}
	if c.layers[0].w[0] == l.w[0] && c.layers[0].w[1] == l.w[1] {
		t.Error("different seeds, same weights")
	}
}

// FuzzForward feeds Forward arbitrary sizes: it must return ErrShape or a
// result of the right length, never panic.
func FuzzForward(f *testing.F) {
	m, err := New(MLP("m", 3, []int{5}, "relu", 2, "softmax"), 1)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(3, 1, 0)
	f.Add(6, 2, 4)
	f.Add(0, 0, 0)
	f.Add(4, 1, 2)
	f.Add(3, -1, 1)
	f.Add(300, 100, 500)
	f.Fuzz(func(t *testing.T, n, batch, dstCap int) {
		if n < 0 || n > 1<<16 || dstCap < 0 || dstCap > 1<<16 {
			return
		}
		out, err := m.Forward(make([]float32, 0, dstCap), make([]float32, n), batch)
		if err != nil {
			if !errors.Is(err, ErrShape) {
				t.Fatalf("error %v does not wrap ErrShape", err)
			}
			return
		}
		if n != batch*3 || len(out) != batch*2 {
			t.Fatalf("n %d batch %d: accepted, %d outputs", n, batch, len(out))
		}
	})
}

func TestClone(t *testing.T) {
	m := testModel(t, MLP("m", 4, []int{8}, "relu", 3, "softmax"), 1)
	c := m.Clone()
	x := randInput(rand.New(rand.NewPCG(1, 1)), 8)
	y := []int32{0, 2}
	before, _ := m.Forward(nil, x, 2)
	if _, err := Train(t.Context(), c, x, y, nil, 2, TrainConfig{Epochs: 5, LearningRate: 0.1}); err != nil {
		t.Fatal(err)
	}
	after, _ := m.Forward(nil, x, 2)
	moved, _ := c.Forward(nil, x, 2)
	for i := range before {
		if before[i] != after[i] {
			t.Fatal("training the clone changed the original")
		}
	}
	same := true
	for i := range before {
		same = same && before[i] == moved[i]
	}
	if same || !reflectDeepEqualSpec(c.Spec(), m.Spec()) {
		t.Fatal("clone did not train, or its spec differs")
	}
}

func reflectDeepEqualSpec(a, b Spec) bool {
	ab, _ := json.Marshal(a)
	bb, _ := json.Marshal(b)
	return string(ab) == string(bb)
}

// The zero Model and a nil *Model answer errors, not panics.
func TestZeroModel(t *testing.T) {
	for i, m := range []*Model{nil, {}} {
		if _, err := m.Forward(nil, []float32{1}, 1); !errors.Is(err, ErrSpec) {
			t.Errorf("case %d: Forward: %v", i, err)
		}
		if _, err := Train(t.Context(), m, []float32{1}, []int32{0}, nil, 1, TrainConfig{}); !errors.Is(err, ErrSpec) {
			t.Errorf("case %d: Train: %v", i, err)
		}
		if _, _, err := m.Evaluate([]float32{1}, []int32{0}, 1); !errors.Is(err, ErrSpec) {
			t.Errorf("case %d: Evaluate: %v", i, err)
		}
		if _, err := m.Attribute(t.Context(), []float32{1}, 0, AttrGradientXInput, 0); !errors.Is(err, ErrSpec) {
			t.Errorf("case %d: Attribute: %v", i, err)
		}
		if err := m.WriteArtifact(io.Discard, Metadata{}); !errors.Is(err, ErrSpec) {
			t.Errorf("case %d: WriteArtifact: %v", i, err)
		}
	}
}

// Wide models work on fewer rows at a time, so a call's scratch stays
// bounded; the results must not depend on the chunking.
func TestForwardWideChunks(t *testing.T) {
	m := testModel(t, MLP("wide", 3, []int{MaxUnits}, "relu", 2, "softmax"), 1)
	if m.fwdRows != fwdScratchFloats/MaxUnits || m.fwdRows < 1 {
		t.Fatalf("fwdRows %d", m.fwdRows)
	}
	const batch = 9 // spans several chunks
	x := randInput(rand.New(rand.NewPCG(4, 4)), batch*3)
	got, err := m.Forward(nil, x, batch)
	if err != nil {
		t.Fatal(err)
	}
	for r := 0; r < batch; r++ {
		one, err := m.Forward(nil, x[r*3:(r+1)*3], 1)
		if err != nil {
			t.Fatal(err)
		}
		for j := range one {
			if d := math.Abs(float64(one[j] - got[r*2+j])); d > 1e-6 {
				t.Fatalf("row %d: %v vs %v", r, one, got[r*2:r*2+2])
			}
		}
	}
	s, _ := m.scratch.Get().(*fwdScratch)
	if s != nil && len(s.a) > fwdScratchFloats {
		t.Fatalf("scratch of %d floats", len(s.a))
	}
}

// ForwardContext stops at a done context instead of finishing the batch,
// and computes what Forward computes otherwise.
func TestForwardContext(t *testing.T) {
	m := testModel(t, MLP("ctx", 16, []int{32}, "relu", 4, "softmax"), 1)
	batch := 3*m.fwdRows + 1
	x := make([]float32, batch*16)
	for i := range x {
		x[i] = float32(i%13) / 13
	}
	want, err := m.Forward(nil, x, batch)
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.ForwardContext(context.Background(), nil, x, batch)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("ForwardContext = %v, %v; want Forward's", err, got[:4])
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.ForwardContext(ctx, nil, x, batch); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	ctx, cancel = context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel()
	if _, err := m.ForwardContext(ctx, nil, x, batch); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("past its deadline: %v", err)
	}
}
