package platform

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestStatsTableHammer: concurrent recorders and readers agree on the
// totals (run under -race), and the table stops growing at its bound.
func TestStatsTableHammer(t *testing.T) {
	var st statsTable
	l := &lineage{Model: "m", Version: 1}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				st.success("t", l, 2, time.Millisecond, time.Microsecond, time.Microsecond, time.Microsecond)
				if i%5 == 0 {
					st.fail("t", l, time.Millisecond)
				}
				_ = st.get("t", "m", 1)
				_ = st.tenant("t")
			}
		}()
	}
	wg.Wait()
	s := st.get("t", "m", 1)
	if s.ExecutionCount != 4000 || s.InferenceCount != 8000 || s.InferenceStats.Success.Count != 4000 ||
		s.InferenceStats.Fail.Count != 800 || s.InferenceStats.Success.NS != uint64(4000*time.Millisecond) {
		t.Errorf("totals: %+v", s)
	}
	if got := st.tenant("u"); len(got) != 0 {
		t.Errorf("another tenant sees %+v", got)
	}
	var big statsTable
	big.n.Store(maxStatEntries - 1)
	for v := 1; v <= 3; v++ {
		big.success("t", &lineage{Model: fmt.Sprint("m", v), Version: v}, 1, 0, 0, 0, 0)
	}
	if got := big.tenant("t"); len(got) != 1 {
		t.Errorf("past the bound: %d entries", len(got))
	}
}
