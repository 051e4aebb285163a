//go:build linux

package kernels

import (
	"runtime"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// threadCPU is the CPU time of the calling thread: on a shared machine
// it leaves out the time the thread waited for a core, which wall-clock
// benchmarks include.
func threadCPU() time.Duration {
	var ts syscall.Timespec
	const clockThreadCPUTime = 3 // CLOCK_THREAD_CPUTIME_ID: the scheduler's exact account, unlike getrusage's ticks
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return 0
	}
	return time.Duration(ts.Nano())
}

// loopCPU runs f b.N times on one locked thread and reports the thread's
// CPU time per call as "cpu-ns/op" beside the wall-clock ns/op, and
// returns it. Only meaningful when f stays on the calling goroutine.
func loopCPU(b *testing.B, f func()) time.Duration {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := threadCPU()
	for b.Loop() {
		f()
	}
	per := (threadCPU() - start) / time.Duration(b.N)
	b.ReportMetric(float64(per.Nanoseconds()), "cpu-ns/op")
	return per
}
