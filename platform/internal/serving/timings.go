package serving

import (
	"strconv"
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
	// Built in a buffer on the stack: one allocation, the string.
	var buf [128]byte
	b := appendMS(append(buf[:0], "load;dur="...), t.Load)
	if t.Pre > 0 || t.Post > 0 {
		b = appendMS(append(b, ", plugins;dur="...), t.Pre+t.Post)
		b = appendMS(append(b, ", preprocess;dur="...), t.Pre)
		b = appendMS(append(b, ", postprocess;dur="...), t.Post)
	}
	b = appendMS(append(b, ", compute;dur="...), t.Compute)
	return string(b)
}

// appendMS appends d in milliseconds with three decimals (microseconds).
func appendMS(b []byte, d time.Duration) []byte {
	return strconv.AppendFloat(b, float64(d.Microseconds())/1000, 'f', 3, 64)
}
