package kernels

import (
	"runtime"
	"time"
)

// yieldEvery is how long a kernel's loop runs before it offers its
// processor to other goroutines. Go preempts a running goroutine only
// after 10 ms, so a large product (a 700-row pass through a 4096×4096
// layer runs tens of ms per block of rows) kept each goroutine that became
// runnable meanwhile — another request's, maybe another tenant's —
// waiting that long for a processor. A yield when nobody waits costs well
// under a microsecond, one per half millisecond of work.
const yieldEvery = 500 * time.Microsecond

// yielder yields its goroutine's processor once per yieldEvery of the
// loop that calls maybe (checked between blocks of work, so a loop of
// small blocks pays one clock read each).
type yielder struct{ next time.Time }

func (y *yielder) maybe() {
	now := time.Now()
	switch {
	case y.next.IsZero():
		y.next = now.Add(yieldEvery)
	case now.After(y.next):
		runtime.Gosched()
		y.next = time.Now().Add(yieldEvery)
	}
}
