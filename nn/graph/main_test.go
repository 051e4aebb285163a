package graph

import (
	"os"
	"testing"
)

// TestMain runs the package's tests on poisoned arenas (poisonArenas), so
// that every kernel test also checks the kernel writes all it reads.
func TestMain(m *testing.M) {
	poisonArenas = true
	os.Exit(m.Run())
}
