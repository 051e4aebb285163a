package serving

import (
	"strconv"
	"strings"
	"time"
)

// Timings split one request's time into the phases the Server-Timing
// header reports, so a client can tell a cold model load from slow plugins
// from a slow forward pass without access to the server's metrics. Each
// phase accumulates: a request that runs several passes adds them up.
//
// A Timings belongs to one request and is not safe for concurrent use.
type Timings struct {
	Load    time.Duration // resolving the model version and loading it, from the cache when warm
	Pre     time.Duration // the preprocess plugin
	Compute time.Duration // forward passes, including any wait for a batch
	Post    time.Duration // the postprocess plugin
}

// Header formats t as a Server-Timing header value, durations in
// milliseconds: load, then plugins (their sum), preprocess and
// postprocess when a plugin ran, then compute.
func (t *Timings) Header() string {
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 3, 64) }
	var b strings.Builder
	b.WriteString("load;dur=" + ms(t.Load))
	if t.Pre > 0 || t.Post > 0 {
		b.WriteString(", plugins;dur=" + ms(t.Pre+t.Post))
		b.WriteString(", preprocess;dur=" + ms(t.Pre))
		b.WriteString(", postprocess;dur=" + ms(t.Post))
	}
	b.WriteString(", compute;dur=" + ms(t.Compute))
	return b.String()
}
