package hardening

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aiaas/aiaas/internal/testserver"
	"github.com/aiaas/aiaas/internal/wasmasm"
)

// B's probes run in a process of their own, as another tenant's program
// would: the test binary started again to run only TestFairnessProbes.
// Sent from the process that also runs A's load generator, B's latency
// counted A's client too: its goroutines ahead of B's in one Go
// scheduler, its collections, its copies of 265 MB upload bodies and its
// compile bombs built per request. Both processes still share the
// machine's cores with the server, as before.

// probeSpecs is each of B's probes: how many connections send it, each
// once per interval (a late answer delays the next request, never queues
// more).
var probeSpecs = map[string]struct {
	conns int
	every time.Duration
}{
	"infer":   {2, 10 * time.Millisecond},
	"invoke":  {2, 20 * time.Millisecond},
	"upload":  {1, 40 * time.Millisecond},
	"publish": {1, 100 * time.Millisecond},
	"ready":   {2, 10 * time.Millisecond},
	"audit":   {1, 100 * time.Millisecond},
	"keys":    {1, 100 * time.Millisecond},
	"metrics": {1, 100 * time.Millisecond},
}

// call makes one request with hc and returns its status (0 for a
// transport error, which err then says) and up to 4 MiB of its body.
func call(ctx context.Context, hc *http.Client, base, method, path, key, ctype string, body io.Reader, size int64) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return 0, nil, err
	}
	if size >= 0 {
		req.ContentLength = size
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	res, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	io.Copy(io.Discard, res.Body)
	return res.StatusCode, b, nil
}

// tenantB sends B's probes (in the probe process).
type tenantB struct {
	key      string
	url      atomic.Pointer[string]
	hc       *http.Client
	png      []byte
	small    []byte
	uploadNo atomic.Int64
}

func (b *tenantB) call(ctx context.Context, method, path, key, ctype string, body []byte) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	return call(ctx, b.hc, *b.url.Load(), method, path, key, ctype, r, int64(len(body)))
}

// do sends one probe of the named kind.
func (b *tenantB) do(ctx context.Context, name string) (int, []byte, error) {
	switch name {
	case "infer":
		return b.call(ctx, "POST", "/v2/models/digits/infer", b.key, "application/json", inferBody)
	case "invoke":
		return b.call(ctx, "POST", "/v1/endpoints/good/invoke", b.key, "image/png", b.png)
	case "upload":
		// A new module each time (a function of n nops), so no cache
		// can answer it without its validation.
		m := wasmasm.Echo()
		m.Funcs = append(m.Funcs, wasmasm.Func{Type: wasmasm.TyVoid, Body: bytes.Repeat([]byte{0x01}, int(b.uploadNo.Add(1)))})
		return b.call(ctx, "PUT", "/v1/plugins/b-echo", b.key, "application/wasm", m.Bytes())
	case "publish":
		return b.call(ctx, "POST", "/v1/models/b-small/versions", b.key, "application/octet-stream", b.small)
	case "ready":
		return b.call(ctx, "GET", "/v2/health/ready", "", "", nil)
	case "audit":
		return b.call(ctx, "GET", "/v1/audit?limit=20", b.key, "", nil)
	case "keys":
		return b.call(ctx, "GET", "/v1/keys", b.key, "", nil)
	case "metrics":
		return b.call(ctx, "GET", "/v1/metrics", b.key, "", nil)
	}
	return 0, nil, fmt.Errorf("no probe %q", name)
}

// probeWindow is one window's order to the probe process, and wireStats
// one probe's answers in it.
type probeWindow struct {
	URL    string        `json:"url"`
	Probes []string      `json:"probes"`
	D      time.Duration `json:"d"`
}

type wireStats struct {
	Lat   []time.Duration `json:"lat"`
	Fails int             `json:"fails"`
	First string          `json:"first,omitempty"`
}

const probeReply = "probes: "

// window sends the named probes for d and returns their answers.
func (b *tenantB) window(names []string, d time.Duration) map[string]*wireStats {
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		out = map[string]*wireStats{}
	)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for _, name := range names {
		st := &wireStats{}
		out[name] = st
		for range probeSpecs[name].conns {
			wg.Go(func() {
				tk := time.NewTicker(probeSpecs[name].every)
				defer tk.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-tk.C:
					}
					t0 := time.Now()
					// B's requests are never cut short by the window's end.
					code, body, err := b.do(context.Background(), name)
					dt := time.Since(t0)
					mu.Lock()
					st.Lat = append(st.Lat, dt)
					if err != nil || code/100 != 2 {
						st.Fails++
						if st.First == "" {
							st.First = fmt.Sprintf("%d %v %.200s", code, err, body)
						}
					}
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	return out
}

// TestFairnessProbes is the probe process (see above): it runs only when
// TestFairness starts it, reads one probeWindow per line on stdin and
// answers each with a line of its probes' stats, until stdin ends.
func TestFairnessProbes(t *testing.T) {
	key := os.Getenv("AIAAS_FAIRNESS_PROBE_KEY")
	if key == "" {
		t.Skip("B's probe process: TestFairness starts it")
	}
	png, err := os.ReadFile(filepath.Join(testserver.Root(), "examples", "plugins", "testdata", "seven.png"))
	if err != nil {
		t.Fatal(err)
	}
	b := &tenantB{key: key, png: png, small: artifact(t, 5),
		hc: &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var w probeWindow
		if err := json.Unmarshal(in.Bytes(), &w); err != nil {
			t.Fatalf("order %q: %v", in.Bytes(), err)
		}
		b.url.Store(&w.URL)
		reply, err := json.Marshal(b.window(w.Probes, w.D))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("%s%s\n", probeReply, reply)
	}
}

// prober is the probe process, seen from TestFairness.
type prober struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Scanner
	stderr bytes.Buffer
}

// startProber starts B's probe process, stopped when t ends.
func startProber(t *testing.T, keyB string) *prober {
	t.Helper()
	p := &prober{cmd: exec.Command(os.Args[0], "-test.run=^TestFairnessProbes$", "-test.count=1")}
	p.cmd.Env = append(os.Environ(), "AIAAS_FAIRNESS_PROBE_KEY="+keyB)
	p.cmd.Stderr = &p.stderr
	var err error
	if p.in, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.out = bufio.NewScanner(out)
	p.out.Buffer(nil, 64<<20)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.in.Close()
		if err := p.cmd.Wait(); err != nil {
			t.Errorf("B's probe process: %v\n%s", err, p.stderr.Bytes())
		}
	})
	return p
}

// window has the probe process send the named probes to url for d.
func (p *prober) window(url string, names []string, d time.Duration) (map[string]*stats, error) {
	order, _ := json.Marshal(probeWindow{URL: url, Probes: names, D: d})
	if _, err := fmt.Fprintf(p.in, "%s\n", order); err != nil {
		return nil, fmt.Errorf("B's probe process: %v\n%s", err, p.stderr.Bytes())
	}
	for p.out.Scan() {
		line, ok := strings.CutPrefix(p.out.Text(), probeReply)
		if !ok {
			continue // the testing package's own lines
		}
		var got map[string]*wireStats
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			return nil, fmt.Errorf("B's probe process answered %.200q: %v", line, err)
		}
		out := map[string]*stats{}
		for name, s := range got {
			out[name] = &stats{lat: s.Lat, fails: s.Fails, first: s.First}
		}
		return out, nil
	}
	return nil, fmt.Errorf("B's probe process ended: %v\n%s", p.out.Err(), p.stderr.Bytes())
}
