package hardening

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aiaas/aiaas/internal/testserver"
)

// loadResult is one bounded load run.
type loadResult struct {
	requests int
	non2xx   int
	errors   int // socket errors and timeouts
	rps      float64
	p99      time.Duration
	tool     string
	statuses string // " 429×3 …" from wrk, when any
}

func (r loadResult) String() string {
	return fmt.Sprintf("%s: %d requests, %.0f req/s, p99 %v, %d non-2xx%s, %d socket errors", r.tool, r.requests, r.rps, r.p99, r.non2xx, r.statuses, r.errors)
}

// load drives conns connections at url for d, with wrk when it is
// installed (the test never installs it) and a Go generator otherwise.
func load(t *testing.T, url, key, ctype string, body []byte, conns int, d time.Duration) loadResult {
	t.Helper()
	if wrk, err := exec.LookPath("wrk"); err == nil && os.Getenv("AIAAS_LOAD_GO") != "1" {
		return loadWrk(t, wrk, url, key, ctype, body, conns, d)
	}
	return loadGo(t, url, key, ctype, body, conns, d)
}

func loadWrk(t *testing.T, wrk, url, key, ctype string, body []byte, conns int, d time.Duration) loadResult {
	t.Helper()
	dir := t.TempDir()
	bodyFile := filepath.Join(dir, "body")
	if err := os.WriteFile(bodyFile, body, 0o600); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf(`local f = io.open(%q, "rb")
wrk.method = "POST"
wrk.body = f:read("*all")
f:close()
wrk.headers["Authorization"] = "Bearer %s"
wrk.headers["Content-Type"] = %q
-- Count the statuses of non-2xx answers per thread, so that a failure
-- says which ones they were.
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) codes = {} end
function response(status, headers, body)
  if status >= 300 then codes[status] = (codes[status] or 0) + 1 end
end
function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("codes")) do io.write(string.format("status %%d: %%d\n", k, v)) end
  end
end
`, bodyFile, key, ctype)
	scriptFile := filepath.Join(dir, "post.lua")
	if err := os.WriteFile(scriptFile, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(wrk, "-t", "2", "-c", strconv.Itoa(conns), "-d", fmt.Sprintf("%ds", int(d.Seconds())),
		"--timeout", "10s", "--latency", "-s", scriptFile, url).CombinedOutput()
	if err != nil {
		t.Fatalf("wrk: %v\n%s", err, out)
	}
	s := string(out)
	r := loadResult{tool: "wrk"}
	num := func(re string) string {
		if m := regexp.MustCompile(re).FindStringSubmatch(s); m != nil {
			return m[1]
		}
		return ""
	}
	r.requests, _ = strconv.Atoi(num(`(\d+) requests in`))
	r.rps, _ = strconv.ParseFloat(num(`Requests/sec:\s+([\d.]+)`), 64)
	r.non2xx, _ = strconv.Atoi(num(`Non-2xx or 3xx responses: (\d+)`))
	for _, m := range regexp.MustCompile(`(?m)^status (\d+): (\d+)$`).FindAllStringSubmatch(s, -1) {
		r.statuses += " " + m[1] + "×" + m[2]
	}
	if m := regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`).FindStringSubmatch(s); m != nil {
		for _, v := range m[1:] {
			n, _ := strconv.Atoi(v)
			r.errors += n
		}
	}
	p99 := num(`\s99%\s+([\d.]+(?:us|ms|s))`)
	r.p99, err = time.ParseDuration(p99)
	if err != nil || r.requests == 0 {
		t.Fatalf("cannot read wrk's output (p99 %q): %s", p99, s)
	}
	return r
}

func loadGo(t *testing.T, url, key, ctype string, body []byte, conns int, d time.Duration) loadResult {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var (
		mu  sync.Mutex
		lat []time.Duration
		r   = loadResult{tool: "go"}
		wg  sync.WaitGroup
	)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", ctype)
				t0 := time.Now()
				res, err := hc.Do(req)
				dt := time.Since(t0)
				mu.Lock()
				switch {
				case err != nil:
					r.errors++
				default:
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode/100 != 2 {
						r.non2xx++
					}
				}
				r.requests++
				lat = append(lat, dt)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	r.rps = float64(r.requests) / time.Since(start).Seconds()
	r.p99 = percentile(lat, 0.99)
	return r
}

// warmRound is one round of warm-up load.
const warmRound = 5 * time.Second

// warmUp runs rounds of load until the process's RSS settles — three
// rounds in a row end within 3 % (or 2 MiB, for a small process whose
// heap goal alone moves more) of each other, or three rounds in a row set
// no new high (a ~50 MiB process swinging 50–59 MiB with its heap goal
// never met the first rule in a clean-clone run; a leak keeps setting
// highs) — and returns the highest RSS seen, the baseline of the memory
// check (the Go heap's goal moves
// RSS up and down by several MiB between collections: with 2 %, a
// 170 MiB process moving 166–171 MiB never settled in a CI run). It fails
// the test if a round fails (a non-2xx answer), or if RSS has not settled
// after 12 rounds (a minute of load): that is a leak, not warming.
//
// A fixed 3 s warm-up was not enough for an endpoint with plugins: each
// plugin instance is a Go program whose runtime spreads its heap over its
// linear memory (8.5 MiB each, measured) a few pages at a time, and the
// pools' LIFO order leaves the instances used only at peak concurrency
// cold for longest. /proc/<pid>/smaps showed the mappings under 16 MiB
// (the linear memories' opened parts) grow 44 → 58 → 62 MiB at seconds
// 5, 30 and 60 of a 60 s run while the Go heap stayed at 52–56 MiB: RSS
// after that run was 1.14–1.17× its level after 3 s, bounded by the 8
// instances' 70 MiB, flat from second ~30.
func warmUp(t *testing.T, round func() error, pid int) (rss int, rounds []int) {
	t.Helper()
	var kib []int
	for range 12 {
		if err := round(); err != nil {
			t.Errorf("warm-up round %d: %v", len(rounds)+1, err)
			return 0, rounds
		}
		rss = rssKiB(t, pid)
		kib = append(kib, rss)
		rounds = append(rounds, rss>>10)
		if n := len(kib); n >= 3 {
			lo, hi := slices.Min(kib[n-3:]), slices.Max(kib[n-3:])
			if float64(hi-lo) <= max(0.03*float64(lo), 2<<10) {
				return hi, rounds
			}
			// Or oscillating around a level rather than growing: three
			// rounds without a new high past the rounds before by more
			// than the 3 % band; the high is the baseline. (A swing of
			// 148–212 MiB whose highs crept up by 1 MiB now and then
			// never settled under a strict "no new high".)
			if n >= 6 {
				if prev := slices.Max(kib[:n-3]); float64(hi) <= float64(prev)+max(0.03*float64(prev), 2<<10) {
					return slices.Max(kib), rounds
				}
			}
		}
	}
	t.Errorf("RSS has not settled after %d warm-up rounds: %v MiB", len(rounds), rounds)
	return rss, rounds
}

// TestLoad: 64 connections on JSON infer and on an endpoint with two
// plugins, 10 s each (60 s with AIAAS_SOAK=1): no non-2xx, no socket
// error, and the server's RSS after the run within 1.1× of its level after
// the warm-up (see warmUp), and not still climbing at the end.
func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("about 90 s of load; make test runs it in its own step")
	}
	d := 10 * time.Second
	if soak() {
		d = 60 * time.Second
	}
	if v, err := strconv.Atoi(os.Getenv("AIAAS_LOAD_SECONDS")); err == nil && v > 0 {
		d = time.Duration(v) * time.Second
	}
	// The per-tenant rate quota (1000 req/s by default) is switched off:
	// this measures what the server can carry, and a 429 from the quota
	// would hide a real failure. The concurrency quota (64) stays, and 64
	// connections fit in it. Request logs go to warn so that logging one
	// line per request does not dominate the figure.
	s := testserver.Start(t, "file://"+t.TempDir(), "AIAAS_TENANT_RPS=0", "AIAAS_LOG_LEVEL=warn")
	c, key := tenantClientKey(t, s, "load")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	png := goodEndpoint(t, ctx, c)
	targets := []struct {
		name, path, ctype string
		body              []byte
	}{
		{"json-infer", "/v2/models/digits/infer", "application/json", inferBody},
		{"endpoint-invoke", "/v1/endpoints/good/invoke", "image/png", png},
	}
	// When a wrk run ends, its connections close with requests in flight;
	// the server finishes or cancels them (a 499 each), and until then
	// they hold their tenant's concurrency slots. The next run's 64
	// connections, started at once, met 64 + those and got 429s — the
	// quota working, not a failure. So each run starts on an idle server.
	drain := func() { time.Sleep(2 * time.Second) }
	pid := s.Cmd.Process.Pid
	for i, tg := range targets {
		rss0, rounds := warmUp(t, func() error {
			drain()
			if r := load(t, s.URL+tg.path, key, tg.ctype, tg.body, 64, warmRound); r.non2xx != 0 || r.errors != 0 {
				return fmt.Errorf("%v", r)
			}
			return nil
		}, pid)
		t.Logf("case %d %s: warm after %d rounds of %v: RSS %v MiB", i, tg.name, len(rounds), warmRound, rounds)
		if rss0 == 0 {
			continue // the warm-up failed, and said why
		}
		// Sample RSS each second of the run: a plateau is warming, a
		// steady climb is a leak.
		var series []int
		done := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			tk := time.NewTicker(time.Second)
			defer tk.Stop()
			for {
				select {
				case <-done:
					return
				case <-tk.C:
					if n, err := readRSS(pid); err == nil {
						series = append(series, n/1024)
					}
				}
			}
		}()
		drain()
		r := load(t, s.URL+tg.path, key, tg.ctype, tg.body, 64, d)
		close(done)
		<-sampled
		rss1 := rssKiB(t, pid)
		t.Logf("case %d %s: %v; RSS after warm-up %d KiB, after the run %d KiB (%.2f×); MiB each second: %v",
			i, tg.name, r, rss0, rss1, float64(rss1)/float64(rss0), series)
		if r.non2xx != 0 || r.errors != 0 {
			t.Errorf("case %d %s: %d non-2xx, %d errors: %v", i, tg.name, r.non2xx, r.errors, r)
		}
		const bound = 1.1
		// Plus 8 MiB of absolute slack: on a ~28 MiB process the GC's heap
		// goal alone moves RSS by more than 10 % (seen: 27.9 → 31.8 MiB,
		// flat for the whole run), which is noise, not a leak.
		const slackKiB = 8 << 10
		if float64(rss1) > bound*float64(rss0) && rss1-rss0 > slackKiB {
			t.Errorf("case %d %s: RSS grew from %d KiB to %d KiB (> %.1f×)", i, tg.name, rss0, rss1, bound)
		}
		// Long runs: a leak climbs to the end, warming flattens out. The
		// last third of the run may not exceed the peak of the first two
		// thirds by more than 10 % and the same 8 MiB (seen on JSON infer:
		// one step 39 → 43 MiB at second 46 of 60, flat after it).
		if k := len(series) / 3; k >= 10 {
			peak := func(xs []int) int {
				m := 0
				for _, x := range xs {
					m = max(m, x)
				}
				return m
			}
			early, late := peak(series[:2*k]), peak(series[2*k:])
			if float64(late) > 1.1*float64(early) && (late-early)<<10 > slackKiB {
				t.Errorf("case %d %s: RSS still climbing in the last third of the run: peak %d MiB vs %d MiB before", i, tg.name, late, early)
			}
		}
	}
}
