package main

import (
	"testing"

	"github.com/aiaas/aiaas/examples/plugins/internal/plugintest"
)

// TestStartCost logs what a new instance costs (its init loads the
// vocabulary).
func TestStartCost(t *testing.T) {
	ready(t)
	plugintest.LogStartCost(t, "bpe")
}
