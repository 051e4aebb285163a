package platform

import (
	"context"
	"net"
	"net/http"
	"time"
)

// Connections take turns for the processors.
//
// net/http serves a keep-alive connection on one goroutine. When a
// handler has read its body, net/http starts a goroutine to watch the
// connection; when the handler returns, it wakes that goroutine and waits
// for it. Each wake-up puts the woken goroutine in its processor's
// "run next" slot, where it inherits the rest of the current time slice,
// so the connection's goroutine is back on the processor microseconds
// after its answer was written. If the client has sent its next request
// by then (a client that pipelines its own requests, or a load generator
// on another core), the goroutine serves it at once, and the next, for
// up to Go's 10 ms time slice. Every other connection whose request
// arrived meanwhile waits in the run queue: under load a quarter of the
// requests waited 10 ms or more (BENCHMARKS.md, "Serving").
//
// So a request that follows its connection's previous answer without the
// goroutine having waited for the network (within turnGap of it) first
// gives its processor to the goroutines already waiting: one Gosched, a
// tenth of a microsecond. A request that did wait has had its turn in the
// run queue already and goes straight on.
const turnGap = 100 * time.Microsecond

// connTurn is one connection's state: when its previous request ended.
type connTurn struct{ last time.Time }

type connTurnKey struct{}

// ConnContext is for http.Server's ConnContext field: it gives each
// connection the state its requests use to take turns with other
// connections' (see turns.go). A server without it serves as before.
func (s *Server) ConnContext(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, connTurnKey{}, new(connTurn))
}

// withTurn yields the processor before a request that follows its
// connection's previous one without a wait. now and yield are the clock
// and runtime.Gosched, replaced in tests.
func withTurn(now func() time.Time, yield func(), next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// HTTP/2 serves a connection's streams concurrently: no turns.
		t, _ := r.Context().Value(connTurnKey{}).(*connTurn)
		if t == nil || r.ProtoMajor != 1 {
			next.ServeHTTP(w, r)
			return
		}
		if !t.last.IsZero() && now().Sub(t.last) < turnGap {
			yield()
		}
		defer func() { t.last = now() }()
		next.ServeHTTP(w, r)
	})
}
