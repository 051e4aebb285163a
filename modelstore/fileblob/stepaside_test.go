package fileblob

import (
	"bytes"
	"context"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
)

// TestFsyncStepsAside: a goroutine that became runnable on the writer's
// processor just before a Put runs before the Put's fsync, not after it
// (stepAside). With one processor the goroutine waits in its queue;
// without the step aside it ran first only when the runtime's monitor
// happened to take the processor back during one of Put's earlier system
// calls (from 0 to all of 20 Puts in a run, most often more than half).
// One late fsync in 20 is allowed: the step aside can still lose to the
// scheduler's look at the global queue twice in a row.
func TestFsyncStepsAside(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	b, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var queued atomic.Bool
	var seen []bool // at each file's fsync (not the folder's): had it run?
	fsync = func(f *os.File) error {
		if fi, err := f.Stat(); err == nil && !fi.IsDir() {
			seen = append(seen, queued.Load())
		}
		return f.Sync()
	}
	defer func() { fsync = (*os.File).Sync }()

	const n = 20
	body := []byte("a record")
	for i := range n {
		queued.Store(false)
		go func() { queued.Store(true) }()
		if err := b.Put(context.Background(), "k", bytes.NewReader(body), int64(len(body)), nil); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	late := 0
	for _, ran := range seen {
		if !ran {
			late++
		}
	}
	if len(seen) != n || late > 1 {
		t.Fatalf("%d of %d fsyncs ran before the goroutine queued ahead of them (%d fsyncs seen; at most 1 allowed)", late, n, len(seen))
	}
}
