package platform

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// turnClock is a settable clock and a yield counter for withTurn.
type turnClock struct {
	t      time.Time
	yields int
}

func (c *turnClock) now() time.Time { return c.t }
func (c *turnClock) yield()         { c.yields++ }

func TestWithTurn(t *testing.T) {
	c := &turnClock{t: time.Unix(1e9, 0)}
	var served int
	h := withTurn(c.now, c.yield, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		served++
		c.t = c.t.Add(time.Millisecond) // the handler's own work
	}))
	conn := (&Server{}).ConnContext(context.Background(), nil)
	serve := func(ctx context.Context, major int) {
		t.Helper()
		r := httptest.NewRequest("GET", "/v2", nil).WithContext(ctx)
		r.ProtoMajor = major
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	steps := []struct {
		name  string
		ctx   context.Context
		major int
		gap   time.Duration // since the previous request ended
		yield bool
	}{
		{"a server without ConnContext", context.Background(), 1, 0, false},
		{"a connection's first request", conn, 1, 0, false},
		{"straight after its answer", conn, 1, 0, true},
		{"just inside the gap", conn, 1, turnGap - time.Microsecond, true},
		{"after waiting for the client", conn, 1, turnGap, false},
		{"HTTP/2 streams run concurrently", conn, 2, 0, false},
		// The HTTP/2 request left the connection's state alone: the
		// previous HTTP/1 end is turnGap+1ms ago.
		{"after the HTTP/2 stream", conn, 1, 0, false},
	}
	for i, st := range steps {
		c.t = c.t.Add(st.gap)
		before := c.yields
		serve(st.ctx, st.major)
		if got := c.yields > before; got != st.yield {
			t.Errorf("step %d (%s): yielded %v, want %v", i, st.name, got, st.yield)
		}
	}
	if served != len(steps) {
		t.Errorf("served %d requests, want %d", served, len(steps))
	}
}

// Over real connections: the second request of a keep-alive connection
// yields, a new connection's first does not.
func TestTurnsOverConnections(t *testing.T) {
	c := &turnClock{t: time.Unix(1e9, 0)} // time stands still: every gap is 0
	h := withTurn(c.now, c.yield, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // net/http's background read starts at EOF
		io.WriteString(w, "ok")
	}))
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ConnContext = (&Server{}).ConnContext
	ts.Start()
	defer ts.Close()
	get := func(cl *http.Client) {
		t.Helper()
		resp, err := cl.Get(ts.URL)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	keep := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer keep.CloseIdleConnections()
	get(keep)
	if c.yields != 0 {
		t.Fatalf("a connection's first request yielded")
	}
	get(keep)
	get(keep)
	if c.yields != 2 {
		t.Fatalf("two requests after the first on one connection: %d yields, want 2", c.yields)
	}
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	get(fresh)
	if c.yields != 2 {
		t.Fatalf("a new connection's request yielded (%d yields)", c.yields)
	}
}
