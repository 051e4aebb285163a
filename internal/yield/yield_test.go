package yield

import (
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// TestMaybeLetsWaitingGoroutineRun: on one processor, a due Maybe runs
// the goroutine waiting for it before it returns (Go alone would run it
// at the loop's 10 ms preemption at the earliest).
func TestMaybeLetsWaitingGoroutineRun(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var ran atomic.Bool
	var p Point
	p.Maybe()
	go func() { ran.Store(true) }()
	p.start = p.start.Add(-Every) // as if the loop had run Every
	p.Maybe()
	if !ran.Load() {
		t.Fatal("a due Maybe returned before the waiting goroutine ran")
	}
}

// TestNowPollsNetwork: on one busy processor, a goroutine whose socket
// became readable runs within Now. runtime.Gosched would run only
// goroutines already runnable: the scheduler looks at the network when
// it has none, or from its monitor every 10 ms.
func TestNowPollsNetwork(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	Now() // the poller started before the measured call

	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var got atomic.Bool
	parked := make(chan struct{})
	go func() {
		close(parked)
		var b [1]byte
		server.Read(b[:])
		got.Store(true)
	}()
	<-parked
	runtime.Gosched() // let it reach the read and park in the poller
	if _, err := client.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		Now()
		if got.Load() {
			return
		}
	}
	t.Fatal("three calls of Now returned before the reader of a readable socket ran")
}

// TestMaybeSchedule: the first call only starts the clock; after a due
// yield the next one is Every away.
func TestMaybeSchedule(t *testing.T) {
	var p Point
	p.Maybe()
	if p.start.IsZero() || p.next != Every || p.nextPoll != PollEvery {
		t.Fatalf("first call: start %v next %v poll %v", p.start, p.next, p.nextPoll)
	}
	p.start = p.start.Add(-2 * Every) // as if the loop had run 2×Every
	p.Maybe()
	if since := time.Since(p.start); p.next <= since || p.next > since+Every {
		t.Fatalf("after a due yield the next is %v, want within Every of %v", p.next, since)
	}
	if p.nextPoll != PollEvery {
		t.Fatalf("a yield before PollEvery polled: poll %v", p.nextPoll)
	}
	p.start = p.start.Add(-PollEvery)
	p.Maybe()
	if since := time.Since(p.start); p.nextPoll <= since || p.nextPoll > since+PollEvery {
		t.Fatalf("after a due poll the next is %v, want within PollEvery of %v", p.nextPoll, since)
	}
}

// TestMaybeAllocations: a yield that polls allocates nothing (the
// kernels' products promise zero allocations, and yield inside).
func TestMaybeAllocations(t *testing.T) {
	Now() // the poller and the free list warm
	a := testing.AllocsPerRun(100, func() {
		var p Point
		p.Maybe()
		p.start = p.start.Add(-PollEvery)
		p.Maybe() // polls
	})
	if a != 0 {
		t.Errorf("%v allocations per polling yield, want 0", a)
	}
}

func BenchmarkMaybe(b *testing.B) {
	var p Point
	for b.Loop() {
		p.Maybe()
	}
}

// BenchmarkNow: a yield with nothing else to run.
func BenchmarkNow(b *testing.B) {
	for b.Loop() {
		Now()
	}
}

func BenchmarkGosched(b *testing.B) {
	for b.Loop() {
		runtime.Gosched()
	}
}
