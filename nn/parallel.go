package nn

import (
	"runtime"
	"sync"
)

// parallelMinWork is the number of values a part of a parallelRows call
// must touch at least: below it, a goroutine costs more than it saves.
const parallelMinWork = 1 << 14

// parallelRows calls fn on contiguous parts of [0, rows) — on up to
// GOMAXPROCS goroutines when work (the values the whole call touches) is
// large enough — and returns when all are done. fn must only write what
// belongs to its own rows. The matrix products parallelise themselves
// (nn/kernels); this is for the per-sample passes around them (im2col,
// pooling, activations), which would otherwise run on one core while the
// others wait.
func parallelRows(rows, work int, fn func(lo, hi int)) {
	parts := min(runtime.GOMAXPROCS(0), rows, work/parallelMinWork)
	if parts < 2 {
		fn(0, rows)
		return
	}
	var wg sync.WaitGroup
	size := (rows + parts - 1) / parts
	for lo := size; lo < rows; lo += size {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			fn(lo, hi)
		}(lo, min(lo+size, rows))
	}
	fn(0, min(size, rows))
	wg.Wait()
}
