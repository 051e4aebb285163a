//go:build !unix

package plugins

import "github.com/tetratelabs/wazero/experimental"

// mappedAllocator has no mapping to offer here: memory stays on the Go heap.
func mappedAllocator(keepMax, keepTotal int) experimental.MemoryAllocator { return nil }
