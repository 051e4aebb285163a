package serving

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aiaas/aiaas/nn"
)

// near reports whether a and b agree to float32 rounding: a batched GEMM
// sums in another order than one row's.
func near(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > 1e-6 {
			return false
		}
	}
	return true
}

// TestBatcherCoalesces: in a synctest bubble the window's clock moves only
// when every caller is blocked, so callers that arrive together are
// certain to share one batch. Each sends its own rows and must get exactly
// the outputs of those rows computed alone; the batch sizes the batcher
// reports prove that batches of more than one request formed, and that a
// full batch runs without waiting for the window.
func TestBatcherCoalesces(t *testing.T) {
	m, err := nn.New(nn.MLP("b", 6, []int{8}, "relu", 3, "softmax"), 1)
	if err != nil {
		t.Fatal(err)
	}
	const callers = 5
	in := make([][]float32, callers)
	want := make([][]float32, callers)
	rows := func(i int) int { return 1 + i%2 }
	r := rand.New(rand.NewPCG(7, 7))
	for i := range in {
		in[i] = make([]float32, rows(i)*m.InputDim())
		for j := range in[i] {
			in[i][j] = float32(r.NormFloat64())
		}
		if want[i], err = m.Forward(nil, in[i], rows(i)); err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for i := range callers {
		total += rows(i)
	}

	for _, c := range []struct {
		name    string
		maxRows int
		inOrder bool
		batches []int           // batch sizes in the order they ran
		at      []time.Duration // when each ran, in fake time
	}{
		// All 7 rows arrive at once and wait out the window together.
		{name: "window", maxRows: 64, batches: []int{total}, at: []time.Duration{time.Second}},
		// Arriving in order, 1+2+1 rows fill a batch of 4, which runs at
		// once; the last 2+1 wait out the window.
		{name: "full", maxRows: 4, inOrder: true, batches: []int{4, 3}, at: []time.Duration{0, time.Second}},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				var mu sync.Mutex
				var seen []int
				var at []time.Duration
				b := NewBatcher(m, Options{Window: time.Second, MaxRows: c.maxRows, Observe: func(n int) {
					mu.Lock()
					seen, at = append(seen, n), append(at, time.Since(start))
					mu.Unlock()
				}})
				got := make([][]float32, callers)
				errs := make([]error, callers)
				var wg sync.WaitGroup
				for i := range callers {
					wg.Go(func() { got[i], errs[i] = b.Do(context.Background(), in[i], rows(i)) })
					if c.inOrder {
						synctest.Wait()
					}
				}
				wg.Wait()
				for i := range callers {
					if errs[i] != nil {
						t.Fatalf("caller %d: %v", i, errs[i])
					}
					if !near(got[i], want[i]) {
						t.Fatalf("caller %d got %v, want its own rows' outputs %v", i, got[i], want[i])
					}
				}
				if !slices.Equal(seen, c.batches) || !slices.Equal(at, c.at) {
					t.Fatalf("batches of %v rows at %v, want %v at %v", seen, at, c.batches, c.at)
				}
			})
		})
	}
}

// TestBatcherRefusesWrongSize: input that is not whole rows of the model's
// width fails alone and never joins a batch, where it would shift the
// other callers' rows; nothing is computed or observed for it.
func TestBatcherRefusesWrongSize(t *testing.T) {
	m, err := nn.New(nn.MLP("b", 6, []int{8}, "relu", 3, "softmax"), 1)
	if err != nil {
		t.Fatal(err)
	}
	observed := 0
	b := NewBatcher(m, Options{Window: time.Millisecond, Observe: func(int) { observed++ }})
	for i, c := range []struct {
		values, rows int
	}{
		{values: 5, rows: 1},
		{values: 7, rows: 1},
		{values: 6, rows: 2},
		{values: 0, rows: 0},
		{values: 6, rows: -1},
		{values: 6 * DefaultMaxRows, rows: DefaultMaxRows + 1},
	} {
		if _, err := b.Do(context.Background(), make([]float32, c.values), c.rows); err == nil {
			t.Errorf("case %d: %d values as %d rows ran", i, c.values, c.rows)
		}
	}
	if observed != 0 {
		t.Fatalf("%d passes observed for refused input", observed)
	}
}
