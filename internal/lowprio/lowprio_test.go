package lowprio

import (
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestDoRunsAtNice: the work runs on a thread of niceness Nice, and the
// caller's thread keeps its own.
func TestDoRunsAtNice(t *testing.T) {
	if !supported {
		t.Skip("no per-thread niceness here")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before, err := threadNice()
	if err != nil {
		t.Fatal(err)
	}
	var inside int
	Do(func() { inside, err = threadNice() })
	if err != nil {
		t.Fatal(err)
	}
	if inside != Nice {
		t.Errorf("the work ran at niceness %d, want %d", inside, Nice)
	}
	if after, _ := threadNice(); after != before {
		t.Errorf("the caller's thread went from niceness %d to %d", before, after)
	}
}

// TestDoOtherGoroutinesKeepPriority: goroutines started while the work
// runs, and goroutines that run afterwards, are not on lowered threads:
// the priority stays with the workers' locked threads.
func TestDoOtherGoroutinesKeepPriority(t *testing.T) {
	if !supported {
		t.Skip("no per-thread niceness here")
	}
	Do(func() {}) // a worker exists
	var wg sync.WaitGroup
	bad := make(chan int, 64)
	check := func() {
		defer wg.Done()
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if n, err := threadNice(); err == nil && n != 0 {
			bad <- n
		}
	}
	Do(func() {
		for range 16 {
			wg.Add(1)
			go check()
		}
		wg.Wait()
	})
	for range 16 {
		wg.Add(1)
		go check()
	}
	wg.Wait()
	close(bad)
	for n := range bad {
		t.Errorf("a goroutine outside Do ran on a thread of niceness %d", n)
	}
}

// TestDoPanics: a panic in the work reaches the caller, with its value.
func TestDoPanics(t *testing.T) {
	sentinel := errors.New("boom")
	defer func() {
		v := recover()
		p, ok := v.(*Panic)
		if !ok {
			t.Fatalf("recovered %T %v, want *Panic", v, v)
		}
		if p.Value != sentinel || len(p.Stack) == 0 {
			t.Fatalf("panic value %v, stack %d bytes", p.Value, len(p.Stack))
		}
	}()
	Do(func() { panic(sentinel) })
	t.Fatal("Do returned after its work panicked")
}

// TestDoConcurrent: more concurrent calls than workers all run, each
// exactly once, and the pool stays within its bound.
func TestDoConcurrent(t *testing.T) {
	n := 3*maxWorkers() + 5
	var wg sync.WaitGroup
	ran := make([]int, n)
	release := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			Do(func() {
				<-release
				ran[i]++
			})
		}()
	}
	close(release)
	wg.Wait()
	for i, c := range ran {
		if c != 1 {
			t.Fatalf("call %d ran %d times", i, c)
		}
	}
	if s := int(started.Load()); s > maxWorkers() {
		t.Fatalf("%d workers started, bound %d", s, maxWorkers())
	}
}

func BenchmarkDo(b *testing.B) {
	for b.Loop() {
		Do(func() {})
	}
}

// TestRunLearns: the first run is in place; once a run has shown the work
// to take MinWork or more, the next one of that size goes to a lowered
// thread, and short work stays where it is.
func TestRunLearns(t *testing.T) {
	if !supported {
		t.Skip("no per-thread niceness here")
	}
	var r Rate
	where := func(units float64, d time.Duration) int {
		var n int
		Run(&r, units, func() {
			n, _ = threadNice()
			time.Sleep(d)
		})
		return n
	}
	runtime.LockOSThread() // the in-place runs' thread is this one
	defer runtime.UnlockOSThread()
	if n := where(1000, 2*MinWork); n == Nice {
		t.Fatal("the first run, of unknown length, went to a lowered thread")
	}
	if e := r.Estimate(1000); e < 2*MinWork {
		t.Fatalf("after a run of %v the estimate is %v", 2*MinWork, e)
	}
	if n := where(1000, 0); n != Nice {
		t.Errorf("work expected to take %v ran at niceness %d", r.Estimate(1000), n)
	}
	if n := where(1, 0); n == Nice {
		t.Errorf("work expected to take %v ran on a lowered thread", r.Estimate(1))
	}
}
