package nn

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/gonum"

	"github.com/aiaas/aiaas/nn/kernels"
)

// forwardUnfused is Forward on the path nn took before weights were
// packed: bias copy, blas32.Gemm with gonum's reference implementation,
// then the activation pass.
func forwardUnfused(t testing.TB, m *Model, x []float32, batch int) []float32 {
	t.Helper()
	blas32.Use(gonum.Implementation{})
	defer blas32.Use(kernels.Implementation())
	if m.fused() {
		t.Fatal("fused path with gonum registered")
	}
	out, err := m.Forward(nil, x, batch)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestForwardFusedMatchesUnfused compares the packed, fused forward pass
// with the unfused one on gonum's reference BLAS and with the float64
// oracle, for every activation as hidden and output layer, widths around
// the micro-tiles (1, odd, nr±1, the K block ±1) and batches 1 (GEMV), odd,
// mr±1 and past a Forward chunk. Tolerance: 1e-5 absolute + 1e-5 relative
// to the float64 oracle (as TestForwardMatchesReference), and 2e-5 + 2e-5
// relative between the two float32 paths (each within the first bound).
func TestForwardFusedMatchesUnfused(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	acts := []string{ActLinear, ActReLU, ActTanh, ActSigmoid, ActSoftmax}
	type shape struct {
		in     int
		hidden []int
		out    int
	}
	shapes := []shape{
		{1, []int{1}, 1},
		{13, []int{17, 9}, 5},
		{31, []int{33}, 10},
		{193, []int{32, 31}, 7},
		{785, []int{129}, 10},
	}
	for si, sh := range shapes {
		for ai, hidden := range acts {
			out := acts[(ai+si)%len(acts)]
			spec := MLP("f", sh.in, sh.hidden, hidden, sh.out, out)
			m := testModel(t, spec, int64(si*10+ai))
			for i := range m.layers {
				for j := range m.layers[i].b {
					m.layers[i].b[j] = float32(r.NormFloat64() * 0.3)
				}
			}
			for _, batch := range []int{1, 2, 7, 8, 9, 33, fwdChunk + 3} {
				if raceEnabled && batch > 64 && sh.in > 100 {
					continue
				}
				name := fmt.Sprintf("%d-%v-%d %s/%s batch %d", sh.in, sh.hidden, sh.out, hidden, out, batch)
				x := make([]float32, batch*m.in)
				for i := range x {
					x[i] = float32(r.NormFloat64())
				}
				if !m.fused() {
					t.Fatal("nn/kernels registered but Forward not fused")
				}
				got, err := m.Forward(nil, x, batch)
				if err != nil {
					t.Fatal(err)
				}
				unf := forwardUnfused(t, m, x, batch)
				want := refForward(m, x, batch)
				for i := range want {
					g := float64(got[i])
					if d := math.Abs(g - want[i]); !(d <= 1e-5+1e-5*math.Abs(want[i])) {
						t.Fatalf("%s: out[%d] = %v, oracle %v", name, i, g, want[i])
					}
					if d := math.Abs(g - float64(unf[i])); !(d <= 2e-5+2e-5*math.Abs(want[i])) {
						t.Fatalf("%s: out[%d] = %v, unfused %v", name, i, g, unf[i])
					}
				}
			}
		}
	}
}

// TestForwardRepacksAfterTrain: Forward after Train uses the trained
// weights (the packed copy is refreshed), and Train's validation figures
// equal Evaluate's afterwards.
func TestForwardRepacksAfterTrain(t *testing.T) {
	x, y := blobs(64, 5, 3, 7)
	m := testModel(t, MLP("m", 5, []int{40}, ActReLU, 3, ActSoftmax), 1)
	before, _ := m.Forward(nil, x, 64)
	before = append([]float32(nil), before...)
	if _, err := Train(context.Background(), m, x, y, nil, 64, TrainConfig{Epochs: 2, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	if !m.packed {
		t.Fatal("Train returned with the weights unpacked")
	}
	got, _ := m.Forward(nil, x, 64)
	unf := forwardUnfused(t, m, x, 64)
	moved := false
	for i := range got {
		if math.Abs(float64(got[i]-unf[i])) > 1e-5 {
			t.Fatalf("out[%d] = %v after Train, unfused %v: stale packed weights", i, got[i], unf[i])
		}
		moved = moved || got[i] != before[i]
	}
	if !moved {
		t.Fatal("Train did not change the outputs")
	}
}
