package serving

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aiaas/aiaas/nn/graph"
)

func ints(i ...int64) graph.Attr { return graph.Attr{Kind: graph.AttrInts, Ints: i} }
func intAttr(i int64) graph.Attr { return graph.Attr{Kind: graph.AttrInt, I: i} }

func randTensor(r *rand.Rand, shape ...int) *graph.Tensor {
	t := graph.NewTensor(graph.Float32, shape...)
	for i := range t.Float32s() {
		t.Float32s()[i] = float32(r.NormFloat64())
	}
	return t
}

func loadGraph(t *testing.T, g *graph.Graph, ts map[string]*graph.Tensor) *graph.Model {
	t.Helper()
	m, err := graph.Load(g, ts, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// attentionEncoder is one self-attention layer as BERT exports it:
// embeddings, Q·Kᵀ/√d plus (1 − mask)·−10000, softmax, ·V. Its hidden
// states are [batch, seq, 8] and its pooled output the first token's.
// A padded key changes no real token's output, as in BERT.
func attentionEncoder(t *testing.T) *graph.Model {
	t.Helper()
	const vocab, dim = 50, 8
	r := rand.New(rand.NewPCG(3, 4))
	seq := []string{"batch", "sequence"}
	g := &graph.Graph{Opset: 13,
		Inputs: []graph.Value{
			{Name: "input_ids", DType: graph.Int64, Shape: []int64{-1, -1}, Dims: seq},
			{Name: "attention_mask", DType: graph.Int64, Shape: []int64{-1, -1}, Dims: seq},
			{Name: "token_type_ids", DType: graph.Int64, Shape: []int64{-1, -1}, Dims: seq},
		},
		Outputs: []graph.Value{
			{Name: "last_hidden_state", DType: graph.Float32, Shape: []int64{-1, -1, dim}, Dims: []string{"batch", "sequence", ""}},
			{Name: "pooled", DType: graph.Float32, Shape: []int64{-1, dim}, Dims: []string{"batch", ""}},
		},
		Nodes: []graph.Node{
			{Op: "Gather", Inputs: []string{"E", "input_ids"}, Outputs: []string{"we"}},
			{Op: "Gather", Inputs: []string{"T", "token_type_ids"}, Outputs: []string{"te"}},
			{Op: "Add", Inputs: []string{"we", "te"}, Outputs: []string{"x"}},
			{Op: "MatMul", Inputs: []string{"x", "Wq"}, Outputs: []string{"q"}},
			{Op: "MatMul", Inputs: []string{"x", "Wk"}, Outputs: []string{"k"}},
			{Op: "MatMul", Inputs: []string{"x", "Wv"}, Outputs: []string{"v"}},
			{Op: "Transpose", Inputs: []string{"k"}, Outputs: []string{"kt"}, Attrs: map[string]graph.Attr{"perm": ints(0, 2, 1)}},
			{Op: "MatMul", Inputs: []string{"q", "kt"}, Outputs: []string{"qk"}},
			{Op: "Mul", Inputs: []string{"qk", "scale"}, Outputs: []string{"s"}},
			{Op: "Cast", Inputs: []string{"attention_mask"}, Outputs: []string{"mf"}, Attrs: map[string]graph.Attr{"to": intAttr(1)}},
			{Op: "Unsqueeze", Inputs: []string{"mf", "axis1"}, Outputs: []string{"m3"}},
			{Op: "Sub", Inputs: []string{"one", "m3"}, Outputs: []string{"inv"}},
			{Op: "Mul", Inputs: []string{"inv", "neg"}, Outputs: []string{"bias"}},
			{Op: "Add", Inputs: []string{"s", "bias"}, Outputs: []string{"sb"}},
			{Op: "Softmax", Inputs: []string{"sb"}, Outputs: []string{"p"}, Attrs: map[string]graph.Attr{"axis": intAttr(-1)}},
			{Op: "MatMul", Inputs: []string{"p", "v"}, Outputs: []string{"last_hidden_state"}},
			{Op: "Gather", Inputs: []string{"last_hidden_state", "zero"}, Outputs: []string{"pooled"}, Attrs: map[string]graph.Attr{"axis": intAttr(1)}},
		},
	}
	return loadGraph(t, g, map[string]*graph.Tensor{
		"E": randTensor(r, vocab, dim), "T": randTensor(r, 2, dim),
		"Wq": randTensor(r, dim, dim), "Wk": randTensor(r, dim, dim), "Wv": randTensor(r, dim, dim),
		"scale": graph.TensorFrom([]int{}, []float32{float32(1 / math.Sqrt(dim))}),
		"one":   graph.TensorFrom([]int{}, []float32{1}),
		"neg":   graph.TensorFrom([]int{}, []float32{-10000}),
		"axis1": graph.TensorFrom([]int{1}, []int64{1}),
		"zero":  graph.TensorFrom([]int{}, []int64{0}),
	})
}

// textInputs is rows texts of n tokens each (ids from r, mask 1, type 0).
func textInputs(r *rand.Rand, rows, n int) []*graph.Tensor {
	ids, mask, types := make([]int64, rows*n), make([]int64, rows*n), make([]int64, rows*n)
	for i := range ids {
		ids[i], mask[i], types[i] = 1+r.Int64N(49), 1, int64(i%2)
	}
	shape := []int{rows, n}
	return []*graph.Tensor{graph.TensorFrom(shape, ids), graph.TensorFrom(shape, mask), graph.TensorFrom(shape, types)}
}

// rowsSeen records the batch sizes a batcher reports.
type rowsSeen struct {
	mu sync.Mutex
	n  []int
}

func (s *rowsSeen) add(n int) { s.mu.Lock(); s.n = append(s.n, n); s.mu.Unlock() }
func (s *rowsSeen) get() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.n)
}

// waitQueued waits until the batcher holds n queued requests.
func waitQueued(t *testing.T, b *GraphBatcher, n int) {
	t.Helper()
	for range 10000 {
		b.mu.Lock()
		q := len(b.queue)
		b.mu.Unlock()
		if q == n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("the batcher never held %d queued requests", n)
}

type result struct {
	out []*graph.Tensor
	err error
}

// submit runs in through b in a goroutine once the queue holds queued
// requests, and waits until it is queued too.
func submit(t *testing.T, ctx context.Context, b *GraphBatcher, in []*graph.Tensor, queued int) chan result {
	t.Helper()
	c := make(chan result, 1)
	go func() {
		out, err := b.Do(ctx, in)
		c <- result{out, err}
	}()
	waitQueued(t, b, queued+1)
	return c
}

func sameTensors(t *testing.T, what string, got, want []*graph.Tensor) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d outputs, want %d", what, len(got), len(want))
	}
	for i := range want {
		if !slices.Equal(got[i].Shape, want[i].Shape) {
			t.Fatalf("%s: output %d shape %v, want %v", what, i, got[i].Shape, want[i].Shape)
		}
		g, w := got[i].Float32s(), want[i].Float32s()
		for j := range w {
			if d := math.Abs(float64(g[j] - w[j])); d > 1e-5*(1+math.Abs(float64(w[j]))) {
				t.Fatalf("%s: output %d [%d] = %v, want %v", what, i, j, g[j], w[j])
			}
		}
	}
}

func TestGraphBatcherEligibility(t *testing.T) {
	enc := attentionEncoder(t)
	b := NewGraphBatcher(enc, Options{Window: time.Millisecond, MaxRows: 8})
	if b == nil || !b.pad || !slices.Equal(b.seqOut, []bool{true, false}) {
		t.Fatalf("attention encoder: batcher %+v, want padding with the hidden states cut", b)
	}
	gather := func(in, out graph.Value) *graph.Graph {
		return &graph.Graph{Opset: 13, Inputs: []graph.Value{in}, Outputs: []graph.Value{out},
			Nodes: []graph.Node{{Op: "Gather", Inputs: []string{"E", in.Name}, Outputs: []string{out.Name}}}}
	}
	e := map[string]*graph.Tensor{"E": graph.NewTensor(graph.Float32, 10, 4)}
	ids := graph.Value{Name: "ids", DType: graph.Int64, Shape: []int64{-1, 3}}
	for _, c := range []struct {
		name         string
		in, out      graph.Value
		batched, pad bool
	}{
		{"dynamic", ids, graph.Value{Name: "y", DType: graph.Float32, Shape: []int64{-1, 3, 4}}, true, false},
		{"inferred output", ids, graph.Value{Name: "y", DType: graph.Float32}, true, false},
		{"static batch", graph.Value{Name: "ids", DType: graph.Int64, Shape: []int64{1, 3}}, graph.Value{Name: "y", DType: graph.Float32, Shape: []int64{1, 3, 4}}, false, false},
		{"named apart", graph.Value{Name: "ids", DType: graph.Int64, Shape: []int64{-1, 3}, Dims: []string{"N", ""}},
			graph.Value{Name: "y", DType: graph.Float32, Shape: []int64{-1, 3, 4}, Dims: []string{"M", "", ""}}, false, false},
		{"mask, inferred output", graph.Value{Name: "attention_mask", DType: graph.Int64, Shape: []int64{-1, -1}}, graph.Value{Name: "y", DType: graph.Float32}, true, true},
		{"mask", graph.Value{Name: "attention_mask", DType: graph.Int64, Shape: []int64{-1, -1}}, graph.Value{Name: "y", DType: graph.Float32, Shape: []int64{-1, -1, 4}}, true, true},
	} {
		b := NewGraphBatcher(loadGraph(t, gather(c.in, c.out), e), Options{Window: time.Millisecond, MaxRows: 8})
		if (b != nil) != c.batched || (b != nil && b.pad != c.pad) {
			t.Errorf("%s: batcher %+v, want batched %v padded %v", c.name, b, c.batched, c.pad)
		}
	}
}

// TestGraphBatcherPadding: texts of several lengths run as one padded
// batch, and each gets what it gets alone.
func TestGraphBatcherPadding(t *testing.T) {
	m := attentionEncoder(t)
	var seen rowsSeen
	b := NewGraphBatcher(m, Options{Window: time.Hour, MaxRows: 6, Observe: seen.add}) // the batch runs when full
	r := rand.New(rand.NewPCG(1, 2))
	reqs := [][]*graph.Tensor{textInputs(r, 1, 3), textInputs(r, 2, 7), textInputs(r, 1, 1), textInputs(r, 1, 5), textInputs(r, 1, 7)}
	var want [][]*graph.Tensor
	for _, in := range reqs {
		out, err := m.Run(context.Background(), in, nil)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, out)
	}
	var got []chan result
	for i, in := range reqs {
		got = append(got, submit(t, context.Background(), b, in, i))
		if i == len(reqs)-2 {
			break
		}
	}
	// The last request fills the batch (6 rows) and lets it run.
	last, err := b.Do(context.Background(), reqs[len(reqs)-1])
	if err != nil {
		t.Fatal(err)
	}
	sameTensors(t, "request 4", last, want[4])
	for i, c := range got {
		res := <-c
		if res.err != nil {
			t.Fatal(res.err)
		}
		sameTensors(t, "request "+string(rune('0'+i)), res.out, want[i])
	}
	if s := seen.get(); !slices.Equal(s, []int{6}) {
		t.Fatalf("batches of %v rows, want one of 6", s)
	}
	idle(t, b)
}

// idle fails unless b holds no lane and no queued request.
func idle(t *testing.T, b *GraphBatcher) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.running != 0 || b.collecting != nil || len(b.queue) != 0 {
		t.Fatalf("batcher left %d lanes running, collecting %v, %d queued", b.running, b.collecting != nil, len(b.queue))
	}
}

// TestGraphBatcherStress: many clients, texts of every length, some
// leaving early, over two lanes: every answer is the request's own, and
// the batcher ends idle.
func TestGraphBatcherStress(t *testing.T) {
	m := attentionEncoder(t)
	var seen rowsSeen
	b := NewGraphBatcher(m, Options{Window: 200 * time.Microsecond, MaxRows: 8, Lanes: 2, Observe: seen.add})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 11))
			for i := range 40 {
				in := textInputs(r, 1+r.IntN(3), 1+r.IntN(12))
				ctx, cancel := context.WithCancel(context.Background())
				if i%7 == 3 {
					after := time.Duration(r.IntN(300)) * time.Microsecond
					go func() { time.Sleep(after); cancel() }()
				}
				got, err := b.Do(ctx, in)
				cancel()
				if errors.Is(err, context.Canceled) {
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				want, _ := m.Run(context.Background(), in, nil)
				for j := range want {
					if !slices.Equal(got[j].Shape, want[j].Shape) {
						errs <- errors.New("wrong shape")
						return
					}
					for k, w := range want[j].Float32s() {
						if d := math.Abs(float64(got[j].Float32s()[k] - w)); d > 1e-5*(1+math.Abs(float64(w))) {
							errs <- errors.New("wrong value")
							return
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	idle(t, b)
	batched := 0
	for _, n := range seen.get() {
		if n > 3 {
			batched++
		}
	}
	t.Logf("%d batches, %d of more rows than one request has", len(seen.get()), batched)
}

// TestGraphBatcherKeys: requests of other shapes wait for their own batch;
// the lead passes to them when the first batch is done.
func TestGraphBatcherKeys(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	g := &graph.Graph{Opset: 13,
		Inputs:  []graph.Value{{Name: "x", DType: graph.Float32, Shape: []int64{-1, -1, 4}}},
		Outputs: []graph.Value{{Name: "y", DType: graph.Float32, Shape: []int64{-1, -1, 3}}},
		Nodes:   []graph.Node{{Op: "MatMul", Inputs: []string{"x", "W"}, Outputs: []string{"y"}}},
	}
	m := loadGraph(t, g, map[string]*graph.Tensor{"W": randTensor(r, 4, 3)})
	var seen rowsSeen
	b := NewGraphBatcher(m, Options{Window: time.Hour, MaxRows: 3, Observe: seen.add})
	if b.pad {
		t.Fatal("a float model is padded")
	}
	reqs := [][]*graph.Tensor{{randTensor(r, 1, 2, 4)}, {randTensor(r, 1, 3, 4)}, {randTensor(r, 2, 3, 4)}, {randTensor(r, 1, 2, 4)}, {randTensor(r, 1, 2, 4)}}
	var got []chan result
	for i, in := range reqs {
		got = append(got, submit(t, context.Background(), b, in, i))
		if i == 3 {
			break
		}
	}
	// Queued: a(1) b(1) b(2) a(1); the fifth fills a's batch to 3 rows.
	got = append(got, make(chan result, 1))
	out, err := b.Do(context.Background(), reqs[4])
	got[4] <- result{out, err}
	for i, c := range got {
		res := <-c
		if res.err != nil {
			t.Fatal(res.err)
		}
		want, err := m.Run(context.Background(), reqs[i], nil)
		if err != nil {
			t.Fatal(err)
		}
		sameTensors(t, "request "+string(rune('0'+i)), res.out, want)
	}
	if s := seen.get(); !slices.Equal(s, []int{3, 3}) {
		t.Fatalf("batches of %v rows, want 3 then 3", s)
	}
}

// TestGraphBatcherRerun: a bad request in a batch fails alone, and a graph
// whose output loses the batch dimension is answered request by request.
func TestGraphBatcherRerun(t *testing.T) {
	m := attentionEncoder(t)
	b := NewGraphBatcher(m, Options{Window: time.Hour, MaxRows: 3})
	r := rand.New(rand.NewPCG(7, 8))
	good, bad := textInputs(r, 1, 4), textInputs(r, 1, 2)
	bad[0].Int64s()[1] = 1000 // beyond the vocabulary
	other := textInputs(r, 1, 3)
	c1 := submit(t, context.Background(), b, good, 0)
	c2 := submit(t, context.Background(), b, bad, 1)
	out, err := b.Do(context.Background(), other)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := m.Run(context.Background(), other, nil)
	sameTensors(t, "other", out, want)
	if res := <-c1; res.err != nil {
		t.Fatalf("a good request failed with a bad one: %v", res.err)
	} else {
		want, _ := m.Run(context.Background(), good, nil)
		sameTensors(t, "good", res.out, want)
	}
	if res := <-c2; res.err == nil {
		t.Fatal("an out-of-vocabulary id ran")
	}

	// Reshape to [-1]: the output's first dimension is not the batch.
	g := &graph.Graph{Opset: 13,
		Inputs:  []graph.Value{{Name: "x", DType: graph.Float32, Shape: []int64{-1, 4}}},
		Outputs: []graph.Value{{Name: "y", DType: graph.Float32, Shape: []int64{-1}}},
		Nodes:   []graph.Node{{Op: "Reshape", Inputs: []string{"x", "flat"}, Outputs: []string{"y"}}},
	}
	flat := loadGraph(t, g, map[string]*graph.Tensor{"flat": graph.TensorFrom([]int{1}, []int64{-1})})
	b = NewGraphBatcher(flat, Options{Window: time.Hour, MaxRows: 2})
	x1, x2 := randTensor(r, 1, 4), randTensor(r, 1, 4)
	c := submit(t, context.Background(), b, []*graph.Tensor{x1}, 0)
	out, err = b.Do(context.Background(), []*graph.Tensor{x2})
	if err != nil {
		t.Fatal(err)
	}
	sameTensors(t, "x2", out, []*graph.Tensor{graph.TensorFrom([]int{4}, x2.Float32s())})
	res := <-c
	if res.err != nil {
		t.Fatal(res.err)
	}
	sameTensors(t, "x1", res.out, []*graph.Tensor{graph.TensorFrom([]int{4}, x1.Float32s())})
}

// TestGraphBatcherCancel: a queued request whose client leaves is taken
// out of the queue; the others are answered.
func TestGraphBatcherCancel(t *testing.T) {
	m := attentionEncoder(t)
	var seen rowsSeen
	b := NewGraphBatcher(m, Options{Window: time.Hour, MaxRows: 3, Observe: seen.add})
	r := rand.New(rand.NewPCG(9, 10))
	a, gone, c := textInputs(r, 1, 2), textInputs(r, 1, 3), textInputs(r, 1, 4)
	ca := submit(t, context.Background(), b, a, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cg := submit(t, ctx, b, gone, 1)
	cancel()
	if res := <-cg; !errors.Is(res.err, context.Canceled) {
		t.Fatalf("cancelled request: %v", res.err)
	}
	waitQueued(t, b, 1)
	// Two rows queued now: two more fill the batch.
	if _, err := b.Do(context.Background(), textInputs(r, 2, 4)[:1:1]); err == nil {
		t.Fatal("one input of three ran")
	}
	cc := submit(t, context.Background(), b, c, 1)
	if _, err := b.Do(context.Background(), textInputs(r, 1, 4)); err != nil {
		t.Fatal(err)
	}
	for name, ch := range map[string]chan result{"a": ca, "c": cc} {
		res := <-ch
		if res.err != nil {
			t.Fatalf("%s: %v", name, res.err)
		}
	}
	if s := seen.get(); !slices.Equal(s, []int{1, 3}) {
		t.Fatalf("batches of %v rows, want the refused request alone, then 3", s)
	}
}

// FuzzGraphBatcher: requests of any shapes and ids — empty sequences,
// unknown ids, inputs that disagree — batched together get exactly what
// each gets alone: the same outputs, or an error when alone it fails.
func FuzzGraphBatcher(f *testing.F) {
	f.Add([]byte{1, 3, 0, 2, 7, 0, 1, 1, 0})
	f.Add([]byte{2, 0, 0, 1, 5, 200, 3, 2, 9, 1, 1, 1})
	m := attentionEncoder(&testing.T{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var reqs [][]*graph.Tensor
		for len(b) >= 3 && len(reqs) < 6 {
			rows, seq, flags := int(b[0]%4), int(b[1]%9), b[2]
			b = b[3:]
			mk := func(rows, seq int) *graph.Tensor {
				v := make([]int64, rows*seq)
				for i := range v {
					if len(b) > 0 {
						v[i] = int64(b[0] % 60) // ids ≥ 50 are out of the vocabulary
						b = b[1:]
					}
				}
				return graph.TensorFrom([]int{rows, seq}, v)
			}
			in := []*graph.Tensor{mk(rows, seq), mk(rows, seq), mk(rows, seq)}
			for i := range in[1].Int64s() {
				in[1].Int64s()[i] = 1
				in[2].Int64s()[i] &= 1
			}
			if flags&1 != 0 {
				in[2] = mk(rows, seq+1) // a mismatched input
			}
			if flags&2 != 0 {
				in = in[:2] // an input missing
			}
			reqs = append(reqs, in)
		}
		bt := NewGraphBatcher(m, Options{Window: time.Millisecond, MaxRows: 8})
		var wg sync.WaitGroup
		res := make([]result, len(reqs))
		for i, in := range reqs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[i].out, res[i].err = bt.Do(context.Background(), in)
			}()
		}
		wg.Wait()
		for i, in := range reqs {
			want, werr := m.Run(context.Background(), in, nil)
			if (werr == nil) != (res[i].err == nil) {
				t.Fatalf("request %d: batched error %v, alone %v", i, res[i].err, werr)
			}
			if werr == nil {
				sameTensors(t, "request", res[i].out, want)
			}
		}
		idle(t, bt)
	})
}
