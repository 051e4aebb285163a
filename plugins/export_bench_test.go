package plugins

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// The fixed cost of entering a Go-built guest: a call of the trivial
// aiaas_abi_v1 export.
func BenchmarkGoExportCall(b *testing.B) {
	for _, deadline := range []bool{true, false} {
		b.Run("deadline="+strconv.FormatBool(deadline), func(b *testing.B) {
			h := newHost(b, &Options{noDeadline: !deadline})
			p, _ := h.mustPool(context.Background(), "acme", mod(b, "identity"))
			inst, _ := p.get(context.Background())
			latencies(b, func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				inst.abi.Call(ctx)
				cancel()
			})
		})
	}
}
