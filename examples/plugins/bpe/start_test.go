package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aiaas/aiaas/examples/plugins/internal/plugintest"
)

// TestStartCost logs what a new instance costs: a tenant's first call
// compiles (from the on-disk cache after the first) and starts an
// instance, whose init loads the vocabulary.
func TestStartCost(t *testing.T) {
	ready(t)
	h := plugintest.Host(t)
	mod := plugintest.Module(plugintest.Build(t, "bpe"))
	for i := range 4 {
		t0 := time.Now()
		if _, err := h.Preprocess(context.Background(), fmt.Sprint("tenant", i), mod, "text/plain", []byte("hi")); err != nil {
			t.Fatal(err)
		}
		t.Logf("first call of tenant %d: %v", i, time.Since(t0))
	}
}
