package graph

import (
	"context"
	"testing"
)

func TestArenaClass(t *testing.T) {
	for _, n := range []int{0, 1, 64 << 10, 64<<10 + 1, 1 << 20, 1<<20 + 1, 3<<20 + 5, 30 << 20, 1 << 30} {
		c := arenaClass(n)
		if c < n || (n > 64<<10 && float64(c) > float64(n)*1.125+float64(64<<10)) {
			t.Errorf("arenaClass(%d) = %d", n, c)
		}
	}
	// Sizes a little apart share a class: the next decoding step's plan
	// fits the arena of the last.
	if arenaClass(30<<20) != arenaClass(29<<20+1) {
		t.Errorf("30 MiB and 29 MiB+1 in different classes: %d, %d", arenaClass(30<<20), arenaClass(29<<20+1))
	}
}

// TestArenaShared: plans of one model share its idle arenas — a run of a
// new, smaller shape takes the arena the last shape left, and the pool
// keeps at most maxIdleExecs arenas, the largest, freeing the others.
func TestArenaShared(t *testing.T) {
	g := &Graph{Opset: 13,
		Inputs:  []Value{{Name: "x", DType: Float32, Shape: []int64{-1}}},
		Outputs: []Value{{Name: "y", DType: Float32}},
		Nodes:   []Node{{Op: "Relu", Inputs: []string{"x"}, Outputs: []string{"y"}}},
	}
	m, err := Load(g, map[string]*Tensor{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	run := func(n int) {
		t.Helper()
		x := NewTensor(Float32, n)
		for i := range x.Float32s() {
			x.Float32s()[i] = float32(i%7) - 3
		}
		out, err := m.Run(context.Background(), []*Tensor{x}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range out[0].Float32s() {
			if want := max(float32(i%7)-3, 0); v != want {
				t.Fatalf("n %d: y[%d] = %g, want %g", n, i, v, want)
			}
		}
	}
	run(1 << 20)
	if len(m.arenas.idle) != 1 {
		t.Fatalf("%d idle arenas after one run", len(m.arenas.idle))
	}
	first := m.arenas.idle[0]
	for n := 1<<20 - 1000; n > 1<<19; n -= 50000 {
		run(n) // a new plan each time
		if len(m.arenas.idle) != 1 || m.arenas.idle[0] != first {
			t.Fatalf("n %d: a new arena (%d idle)", n, len(m.arenas.idle))
		}
	}
	// A larger shape needs a larger arena; both stay idle.
	run(2 << 20)
	if len(m.arenas.idle) != 2 {
		t.Fatalf("%d idle arenas, want 2", len(m.arenas.idle))
	}

	// A full pool keeps the largest.
	var pool arenaPool
	for i := range maxIdleExecs {
		pool.put(pool.get((i + 1) << 20))
	}
	small := pool.get(1 << 20) // the 1 MiB one
	if len(small.Bytes()) != 1<<20 {
		t.Fatalf("best fit for 1 MiB is %d bytes", len(small.Bytes()))
	}
	pool.put(small)
	big := pool.get(100 << 20) // none fits: a new one
	pool.put(big)
	if len(pool.idle) != maxIdleExecs {
		t.Fatalf("%d idle, want %d", len(pool.idle), maxIdleExecs)
	}
	if small.Bytes() != nil {
		t.Error("the smallest arena was not freed when a larger one took its place")
	}
	for _, b := range pool.idle {
		if len(b.Bytes()) == 1<<20 {
			t.Error("the pool kept the smallest arena")
		}
	}
	tiny := pool.get(1)
	if len(tiny.Bytes()) != 2<<20 {
		t.Fatalf("best fit for 1 byte is %d bytes, want the smallest idle (2 MiB)", len(tiny.Bytes()))
	}
}
