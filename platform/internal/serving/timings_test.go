package serving

import (
	"testing"
	"time"
)

// TestTimingsHeader: the plugin phases appear only when a plugin ran, and
// durations print in milliseconds to the microsecond.
func TestTimingsHeader(t *testing.T) {
	for i, c := range []struct {
		t    Timings
		want string
	}{
		{Timings{}, "load;dur=0.000, compute;dur=0.000"},
		{Timings{Load: 1500 * time.Microsecond, Compute: 2 * time.Millisecond},
			"load;dur=1.500, compute;dur=2.000"},
		{Timings{Load: time.Microsecond, Pre: 3 * time.Millisecond, Compute: 1999 * time.Nanosecond, Post: 250 * time.Microsecond},
			"load;dur=0.001, plugins;dur=3.250, preprocess;dur=3.000, postprocess;dur=0.250, compute;dur=0.001"},
		{Timings{Post: time.Second}, "load;dur=0.000, plugins;dur=1000.000, preprocess;dur=0.000, postprocess;dur=1000.000, compute;dur=0.000"},
	} {
		if got := c.t.Header(); got != c.want {
			t.Errorf("case %d: %q, want %q", i, got, c.want)
		}
	}
}
