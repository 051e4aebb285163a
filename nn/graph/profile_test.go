package graph

import (
	"context"
	"math/rand/v2"
	"testing"
)

func TestProfile(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	g, ts := resBlock(r, 8, false)
	m, err := Load(g, ts, nil)
	if err != nil {
		t.Fatal(err)
	}
	prof, err := m.Profile(context.Background(), []*Tensor{randTensor(r, 1, 8, 8, 8)}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(prof) != 2 {
		t.Fatalf("%d steps, want the two fused convolutions", len(prof))
	}
	for i, s := range prof {
		if s.Op != opFusedConv || s.Time <= 0 || s.FLOPs != 2*8*8*64*9 || len(s.Shape) != 4 {
			t.Errorf("step %d: %+v", i, s)
		}
	}
	if _, err := m.Profile(context.Background(), []*Tensor{randTensor(r, 1, 7, 8, 8)}, 1); err == nil {
		t.Error("a wrong shape was profiled")
	}
}
