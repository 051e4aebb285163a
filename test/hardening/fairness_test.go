package hardening

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aiaas/aiaas/internal/testserver"
	"github.com/aiaas/aiaas/sdk/client"
)

// The fairness proof of issue #20: for each class of shared resource, tenant
// A abuses it while tenant B runs a steady light workload at a fixed rate,
// and B is measured. Always asserted: no B request fails (a non-2xx or a
// transport error) and the server's RSS never passes the memory budget it
// was started with. B's probes are sent from a process of their own, as
// another tenant's program would be (fairness_probes_test.go), and A's
// load from this one. B's latency is asserted too, against B's own quiet
// windows:
//
//   - windows alternate quiet, abuse, quiet (…): each abuse window is
//     compared with the worse p99 of the two quiet windows beside it, so a
//     burst of load from another process on a shared 2-core machine raises
//     the reference with it instead of failing the test;
//   - with AIAAS_FAIRNESS_STRICT=1 (when the figures in BENCHMARKS.md are
//     made: three abuse windows per class, each twice as long) the bound is
//     the issue's, abuse p99 ≤ 2 × quiet p99;
//   - otherwise it is abuse p99 ≤ max(4 × quiet p99, quiet p99 + 500 ms).
//     On a CI machine shared with other builds, one descheduling of the
//     server for tens of milliseconds moves the p99 of a few hundred
//     samples, and B's uploads, each a synced store write, saw quiet p99s
//     from 57 to 528 ms between runs: 2× of that would fail on noise. A
//     tenant's spinning guest also takes one of the two cores, which
//     slows B's CPU work (an upload beside A's start-loop modules: 373 ms
//     against a quiet 57 ms) without starving it. What the issue found was
//     B starved: 503 "plugins: busy" (caught by the failure check whatever
//     the bound), a 300-byte upload waiting 14.7 s behind A's, a forward
//     pass running 6.6 s past its deadline, compiles of 8 s to 2 minutes —
//     each at least ten times over this bound.

// fairStrict reports whether the bound is the 2×.
func fairStrict() bool { return os.Getenv("AIAAS_FAIRNESS_STRICT") == "1" }

// fairWorld is one server with two tenants.
type fairWorld struct {
	s          *testserver.Server
	store      string
	a, b       *client.Client
	keyA, keyB string
	budget     int64 // bytes the server's RSS must stay within
	// Each tenant has its own HTTP client, as two tenants' programs would.
	hc map[string]*http.Client
	// bSeq is the last of B's audit records read (serverTimes).
	bSeq uint64
	// probes sends B's probes from a process of its own.
	probes *prober

	rss rssWatch
}

// rssWatch samples the server's RSS every 20 ms; peak is the highest since
// the last reset.
type rssWatch struct {
	mu   sync.Mutex
	peak int // KiB
}

func (r *rssWatch) run(ctx context.Context, pid int) {
	tk := time.NewTicker(20 * time.Millisecond)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		if n, err := readRSS(pid); err == nil {
			r.mu.Lock()
			r.peak = max(r.peak, n)
			r.mu.Unlock()
		}
	}
}

// take returns the peak since the last take and starts a new one.
func (r *rssWatch) take() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.peak
	r.peak = 0
	return p
}

// newFairWorld starts a server with budget as its request-body budget
// (AIAAS_BODY_BUDGET_BYTES; the RSS bound), half of it as the largest
// model upload, and env, and tenants A and B,
// each with the small digits model.
func newFairWorld(t *testing.T, budget int64, env ...string) *fairWorld {
	t.Helper()
	w := &fairWorld{store: "file://" + t.TempDir(), budget: budget}
	w.start(t, env...)
	w.a, w.keyA = tenantClientKey(t, w.s, "fair-a")
	w.b, w.keyB = tenantClientKey(t, w.s, "fair-b")
	w.hc = map[string]*http.Client{}
	for _, k := range []string{w.keyA, w.keyB, ""} {
		w.hc[k] = &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		t.Cleanup(w.hc[k].CloseIdleConnections)
	}
	w.probes = startProber(t, w.keyB)
	for i, c := range []*client.Client{w.a, w.b} {
		art := artifact(t, int64(i+1))
		if _, err := c.PushModel(context.Background(), "digits", bytes.NewReader(art), int64(len(art)), nil); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// start starts the server on w's store, with env, and watches its RSS.
func (w *fairWorld) start(t *testing.T, env ...string) {
	t.Helper()
	// The largest upload is half the budget: a tenant's share (the
	// server requires the budget to be at least twice it).
	env = append([]string{fmt.Sprintf("AIAAS_BODY_BUDGET_BYTES=%d", w.budget), fmt.Sprintf("AIAAS_MAX_ARTIFACT_BYTES=%d", w.budget/2), "AIAAS_LOG_LEVEL=warn"}, env...)
	w.s = testserver.Start(t, w.store, env...)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	rssKiB(t, w.s.Cmd.Process.Pid) // skips the test without /proc
	go w.rss.run(ctx, w.s.Cmd.Process.Pid)
}

// restart stops the server and starts another on the same store with env.
func (w *fairWorld) restart(t *testing.T, env ...string) {
	t.Helper()
	w.s.Stop()
	w.start(t, env...)
	w.rss.take()
}

// call makes one request with key's client (B's for an unknown key).
func (w *fairWorld) call(ctx context.Context, method, path, key, ctype string, body io.Reader, size int64) (int, []byte, error) {
	hc := w.hc[key]
	if hc == nil {
		hc = w.hc[w.keyB]
	}
	return call(ctx, hc, w.s.URL, method, path, key, ctype, body, size)
}

// abuse is A's misbehaviour: conns goroutines each repeating one request
// until the window ends; do returns its status (0: transport error).
type abuse struct {
	conns int
	do    func(ctx context.Context, g int) int
}

// fairClass is one class of issue #20 and how it is proven.
type fairClass struct {
	name, what string
	probes     []string // B's (probeSpecs); the first is the one the latency bound is on
	abuse      abuse
	window     time.Duration // of abuse (3 s if 0); quiet windows are fairQuiet
	// latencyDefect, when set, names a known defect (BENCHMARKS.md) that
	// puts B's p99 past the bound: the miss is logged with it instead of
	// failing the test. B's failures and the RSS budget are still held.
	latencyDefect string
	// during, if set, runs once in each abuse window beside B's probes:
	// B's requests whose success is what matters, not their latency (a
	// training job submitted while A floods the queue).
	during func(ctx context.Context) error
}

// stats is B's answers to one probe in one window.
type stats struct {
	lat   []time.Duration
	fails int
	first string
	// srv is the same requests' time inside the server, from B's audit
	// records (latency_ms: from the first middleware to the answer), for
	// the probes whose requests are audited (probeActions).
	srv []time.Duration
}

func (s *stats) add(o *stats) {
	s.lat = append(s.lat, o.lat...)
	s.srv = append(s.srv, o.srv...)
	s.fails += o.fails
	if s.first == "" {
		s.first = o.first
	}
}

const fairQuiet = 2 * time.Second

// probeActions is the audit action of each of B's probes that B's audit
// log records (the readiness probe has no tenant, no record).
var probeActions = map[string]string{"infer": "infer", "invoke": "endpoint.invoke", "upload": "plugin.put", "publish": "model.publish"}

// serverTimes reads B's audit records after seq *after and returns, per
// action, the latency of those stamped within [from, to]; *after moves to
// the last record read. B's audit read first writes B's queued records.
func (w *fairWorld) serverTimes(after *uint64, from, to time.Time) (map[string][]time.Duration, error) {
	out := map[string][]time.Duration{}
	for {
		code, body, err := w.call(context.Background(), "GET", fmt.Sprintf("/v1/audit?limit=1000&after=%d", *after), w.keyB, "", nil, -1)
		if err != nil || code != 200 {
			return nil, fmt.Errorf("B's audit read: %d %v %.200s", code, err, body)
		}
		var page struct {
			Records []struct {
				Seq       uint64    `json:"seq"`
				Time      time.Time `json:"time"`
				Action    string    `json:"action"`
				LatencyMS float64   `json:"latency_ms"`
			} `json:"records"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, fmt.Errorf("B's audit page: %w", err)
		}
		for _, r := range page.Records {
			*after = r.Seq
			if !r.Time.Before(from) && !r.Time.After(to) {
				out[r.Action] = append(out[r.Action], time.Duration(r.LatencyMS*float64(time.Millisecond)))
			}
		}
		if len(page.Records) < 1000 {
			return out, nil
		}
	}
}

// window has B's probe process send probes for d while A's abuse (if
// any) runs, then stops A and waits until A's requests in flight have
// ended, so that the next window starts quiet. It returns B's stats per
// probe and A's statuses.
func (w *fairWorld) window(probes []string, d time.Duration, ab *abuse, during func(context.Context) error) (map[string]*stats, map[int]int, error) {
	var (
		stopA    atomic.Bool
		aWG, bWG sync.WaitGroup
		mu       sync.Mutex
		aStatus  = map[int]int{}
		duringEr error
	)
	if ab != nil {
		for g := range ab.conns {
			aWG.Go(func() {
				for !stopA.Load() {
					st := ab.do(context.Background(), g)
					mu.Lock()
					aStatus[st]++
					mu.Unlock()
				}
			})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if during != nil {
		bWG.Go(func() { duringEr = during(ctx) })
	}
	from := time.Now()
	out, err := w.probes.window(w.s.URL, probes, d)
	to := time.Now()
	bWG.Wait()
	stopA.Store(true)
	aWG.Wait()
	if err != nil {
		// The probe process failed: no answers, for every probe.
		out = map[string]*stats{}
		for _, p := range probes {
			out[p] = &stats{}
		}
		return out, aStatus, err
	}
	// B's time inside the server, read once A has stopped.
	if srv, err := w.serverTimes(&w.bSeq, from, to); err == nil {
		for _, p := range probes {
			if a, ok := probeActions[p]; ok {
				out[p].srv = srv[a]
			}
		}
	} else if duringEr == nil {
		duringEr = err
	}
	return out, aStatus, duringEr
}

// fairResult is one class's figures, for the log and BENCHMARKS.md.
type fairResult struct {
	class, what         string
	probe               string
	q50, q99, a50, a99  time.Duration
	sq99, sa99          time.Duration // B's time inside the server, p99 (0: not audited)
	srvWorst            float64       // the highest abuse / reference server p99 of a window
	worst               float64       // the highest abuse p99 / reference p99 of a window
	bN, bFails          int
	rssPeakMiB, budgMiB int
	aStatus             map[int]int
}

func (r fairResult) String() string {
	var st []string
	for _, k := range slices.Sorted(func(yield func(int) bool) {
		for k := range r.aStatus {
			if !yield(k) {
				return
			}
		}
	}) {
		st = append(st, fmt.Sprintf("%d×%d", k, r.aStatus[k]))
	}
	return fmt.Sprintf("%-16s | B %-7s quiet p50 %6.1f ms p99 %6.1f ms | abuse p50 %6.1f ms p99 %6.1f ms | worst ratio %.2f | in the server p99 quiet %.2f ms abuse %.2f ms, worst ratio %.2f | B failed %d of %d | RSS peak %d MiB of %d MiB | A got %s",
		r.class, r.probe, ms(r.q50), ms(r.q99), ms(r.a50), ms(r.a99), r.worst, ms(r.sq99), ms(r.sa99), r.srvWorst, r.bFails, r.bN, r.rssPeakMiB, r.budgMiB, strings.Join(st, " "))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// run proves one class: quiet, then rounds × (abuse, quiet).
func (w *fairWorld) run(t *testing.T, c fairClass) fairResult {
	t.Helper()
	if c.window == 0 {
		c.window = 3 * time.Second
	}
	rounds, quiet, long := 1, fairQuiet, c.window
	if fairStrict() {
		rounds, quiet, long = 3, 2*fairQuiet, 2*c.window
	}
	res := fairResult{class: c.name, what: c.what, probe: c.probes[0], aStatus: map[int]int{}, budgMiB: int(w.budget >> 20)}
	all := map[string]*stats{}
	quietAll, abuseAll := &stats{}, &stats{}
	tally := func(m map[string]*stats, into *stats) {
		for name, s := range m {
			if all[name] == nil {
				all[name] = &stats{}
			}
			all[name].add(s)
			if name == res.probe {
				into.add(s)
			}
		}
	}
	w.rss.take()
	prev, _, err := w.window(c.probes, quiet, nil, nil)
	if err != nil {
		t.Errorf("%s: B's quiet window: %v", c.name, err)
	}
	tally(prev, quietAll)
	for r := range rounds {
		ab, aSt, err := w.window(c.probes, long, &c.abuse, c.during)
		if err != nil {
			t.Errorf("%s round %d: B's request beside A's abuse: %v", c.name, r, err)
		}
		for k, v := range aSt {
			res.aStatus[k] += v
		}
		next, _, err := w.window(c.probes, quiet, nil, nil)
		if err != nil {
			t.Errorf("%s round %d: B's quiet window: %v", c.name, r, err)
		}
		tally(ab, abuseAll)
		tally(next, quietAll)
		// The latency bound, on this abuse window against the worse
		// quiet window beside it.
		ref := max(percentile(prev[res.probe].lat, 0.99), percentile(next[res.probe].lat, 0.99))
		got := percentile(ab[res.probe].lat, 0.99)
		ratio := float64(got) / float64(max(ref, time.Microsecond))
		res.worst = max(res.worst, ratio)
		if sref := max(percentile(prev[res.probe].srv, 0.99), percentile(next[res.probe].srv, 0.99)); sref > 0 {
			res.srvWorst = max(res.srvWorst, float64(percentile(ab[res.probe].srv, 0.99))/float64(sref))
		}
		bound := max(4*ref, ref+500*time.Millisecond)
		if fairStrict() {
			bound = 2 * ref
		}
		if len(ab[res.probe].lat) == 0 {
			t.Errorf("%s round %d: B's %s made no request under abuse", c.name, r, res.probe)
		} else if got > bound && c.latencyDefect != "" {
			t.Logf("%s round %d: B's %s p99 %v under A's abuse, past the bound %v (quiet p99 beside it %v, %.1f×): a known defect, %s", c.name, r, res.probe, got, bound, ref, ratio, c.latencyDefect)
		} else if got > bound {
			t.Errorf("%s round %d: B's %s p99 %v under A's abuse, bound %v (quiet p99 beside it %v, %.1f×)", c.name, r, res.probe, got, bound, ref, ratio)
		}
		prev = next
	}
	res.rssPeakMiB = w.rss.take() >> 10
	for name, s := range all {
		res.bN += len(s.lat)
		res.bFails += s.fails
		if s.fails > 0 {
			t.Errorf("%s: %d of B's %d %s requests failed; first: %s", c.name, s.fails, len(s.lat), name, s.first)
		}
	}
	if int64(res.rssPeakMiB)<<20 > w.budget {
		t.Errorf("%s: server RSS peaked at %d MiB, over its %d MiB budget", c.name, res.rssPeakMiB, w.budget>>20)
	}
	res.q50, res.q99 = percentile(quietAll.lat, 0.5), percentile(quietAll.lat, 0.99)
	res.a50, res.a99 = percentile(abuseAll.lat, 0.5), percentile(abuseAll.lat, 0.99)
	res.sq99, res.sa99 = percentile(quietAll.srv, 0.99), percentile(abuseAll.srv, 0.99)
	t.Logf("%v", res)
	for name, s := range all {
		if name != res.probe {
			t.Logf("%-16s |   also B %s: %d requests, %d failed, p99 %.1f ms over all windows", c.name, name, len(s.lat), s.fails, ms(percentile(s.lat, 0.99)))
		}
	}
	return res
}

// fairTable is the Markdown table of BENCHMARKS.md.
func fairTable(rs []fairResult) string {
	var b strings.Builder
	b.WriteString("| class | A's abuse | B's probe | B quiet p50 / p99 | B under abuse p50 / p99 | worst window ratio | in the server: quiet / abuse p99, worst ratio | B failures | RSS peak / budget |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		srv := "—"
		if r.sq99 > 0 {
			srv = fmt.Sprintf("%.2f / %.2f ms, %.2f×", ms(r.sq99), ms(r.sa99), r.srvWorst)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.1f / %.1f ms | %.1f / %.1f ms | %.2f× | %s | %d of %d | %d / %d MiB |\n",
			r.class, r.what, r.probe, ms(r.q50), ms(r.q99), ms(r.a50), ms(r.a99), r.worst, srv, r.bFails, r.bN, r.rssPeakMiB, r.budgMiB)
	}
	return b.String()
}
