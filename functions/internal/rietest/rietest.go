// Package rietest runs a Lambda function's real bootstrap binary under the
// AWS Lambda Runtime Interface Emulator (aws-lambda-rie) for end-to-end tests.
//
// # Overview
//
// The emulator implements the Lambda Runtime API for one function process and
// exposes the Invoke API over HTTP, without Docker. A test builds a function
// package with the same flags as the release build ([Build]: CGO_ENABLED=0,
// -tags lambda.norpc), starts it under the emulator on free loopback ports
// ([Start]), sends events ([Function.Invoke]) and reads the emulator's REPORT
// lines for the init and invoke durations ([Function.Reports]).
//
// The emulator is installed by scripts/rie.sh install. When it is missing,
// [Require] skips the test, unless AIAAS_REQUIRE_RIE is set (make test sets
// it), in which case it fails: CI must never silently skip the e2e tests.
//
// This package is for tests only; nothing in a function imports it.
package rietest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// ErrNotInstalled: aws-lambda-rie was not found.
var ErrNotInstalled = errors.New("rietest: aws-lambda-rie not installed (run scripts/rie.sh install)")

// Path returns the emulator binary: $AIAAS_RIE if set, else
// ${AIAAS_TOOLS:-$HOME/.cache/aiaas/tools}/bin/aws-lambda-rie, else
// aws-lambda-rie on $PATH. It is safe for concurrent use.
func Path() (string, error) {
	if p := os.Getenv("AIAAS_RIE"); p != "" {
		return p, nil
	}
	tools := os.Getenv("AIAAS_TOOLS")
	if tools == "" {
		if home, err := os.UserHomeDir(); err == nil {
			tools = filepath.Join(home, ".cache", "aiaas", "tools")
		}
	}
	if tools != "" {
		p := filepath.Join(tools, "bin", "aws-lambda-rie")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	if p, err := exec.LookPath("aws-lambda-rie"); err == nil {
		return p, nil
	}
	return "", ErrNotInstalled
}

// Require returns the emulator's path, or skips the test when it is missing
// and AIAAS_REQUIRE_RIE is unset (fails it when set).
func Require(t testing.TB) string {
	t.Helper()
	p, err := Path()
	if err != nil {
		if os.Getenv("AIAAS_REQUIRE_RIE") != "" {
			t.Fatalf("%v, and AIAAS_REQUIRE_RIE is set", err)
		}
		t.Skip(err)
	}
	return p
}

// Build compiles the main package at pkg (a path or import path, resolved
// from the test's working directory) into a temporary "bootstrap" for the
// host's architecture, with the flags of the release build. The file is
// removed when the test ends.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	return BuildAll(t, pkg)[0]
}

// BuildAll builds several function packages at once, as Build does each:
// the links, the slow part, run in parallel.
func BuildAll(t testing.TB, pkgs ...string) []string {
	t.Helper()
	outs := make([]string, len(pkgs))
	errs := make([]error, len(pkgs))
	var wg sync.WaitGroup
	for i, pkg := range pkgs {
		outs[i] = filepath.Join(t.TempDir(), "bootstrap")
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", outs[i], pkg)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
			if b, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return outs
}

// Options configure Start. nil means defaults.
type Options struct {
	// Env is added to the function's environment (KEY=VALUE). The emulator
	// forwards its whole environment to the function.
	Env []string
	// Timeout is the function timeout (AWS_LAMBDA_FUNCTION_TIMEOUT, whole
	// seconds); default 30s.
	Timeout time.Duration
	// Log, when set, receives every output line of the emulator and the
	// function (e.g. t.Log via a small adapter, or os.Stderr).
	Log io.Writer
	// RuntimeAPIAddr is where the emulator serves the Runtime API
	// (host:port); default a free loopback port. A test that sits between
	// the function and the API picks it.
	RuntimeAPIAddr string
}

// Report is one parsed "REPORT RequestId: ..." line of the emulator.
type Report struct {
	RequestID    string
	Duration     time.Duration
	InitDuration time.Duration // zero unless this invocation ran the init phase
}

// Function is a bootstrap running under the emulator. Its methods are safe
// for concurrent use, but the emulator itself serves one invocation at a
// time, like a Lambda execution environment.
type Function struct {
	addr   string
	cmd    *exec.Cmd
	client *http.Client
	waitCh chan error

	mu      sync.Mutex
	out     bytes.Buffer
	reports []Report
}

// Start runs bootstrap under the emulator on free loopback ports, waits until
// the emulator accepts connections, and registers Stop with t.Cleanup. The
// emulator starts the bootstrap itself on the first invocation (that is the
// init phase its REPORT line measures).
func Start(t testing.TB, bootstrap string, opts *Options) *Function {
	t.Helper()
	rie := Require(t)
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	// Both ports are chosen while both are held: two freeAddr calls in a
	// row can return the same port (the first is closed before the second
	// is asked for), and the emulator then panics binding its Runtime API.
	// A caller's RuntimeAPIAddr, chosen and closed earlier, is avoided too.
	ports := freeAddrs(t, 2)
	addr, apiAddr := ports[0], o.RuntimeAPIAddr
	switch {
	case apiAddr == "":
		apiAddr = ports[1]
	case addr == apiAddr:
		addr = ports[1]
	}
	cmd := exec.Command(rie, "--log-level", "error",
		"--runtime-interface-emulator-address", addr,
		"--runtime-api-address", apiAddr,
		bootstrap)
	cmd.Dir = filepath.Dir(bootstrap)
	cmd.Env = append(os.Environ(),
		"AWS_LAMBDA_FUNCTION_TIMEOUT="+strconv.Itoa(int((o.Timeout+time.Second-1)/time.Second)),
		"AWS_LAMBDA_FUNCTION_NAME="+filepath.Base(filepath.Dir(bootstrap)),
		"AWS_REGION=us-east-1",
	)
	cmd.Env = append(cmd.Env, o.Env...)
	setProcessGroup(cmd)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	f := &Function{addr: addr, cmd: cmd, client: &http.Client{}, waitCh: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", rie, err)
	}
	go f.scan(pr, o.Log)
	go func() {
		err := cmd.Wait()
		pw.Close()
		f.waitCh <- err
	}()
	t.Cleanup(f.Stop)

	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			f.Stop()
			t.Fatalf("aws-lambda-rie did not listen on %s: %v\n%s", addr, err, f.Logs())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return f
}

// FreeAddr returns a loopback address with a port free at the time of
// the call.
func FreeAddr(t testing.TB) string { return freeAddr(t) }

func freeAddr(t testing.TB) string {
	t.Helper()
	return freeAddrs(t, 1)[0]
}

// freeAddrs returns n distinct loopback addresses, free at the time of the
// call: every listener is held until all are chosen.
func freeAddrs(t testing.TB, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		addrs[i] = l.Addr().String()
	}
	return addrs
}

var reportRE = regexp.MustCompile(`REPORT RequestId: (\S+)\s+(?:Init Duration: ([0-9.]+) ms\s+)?Duration: ([0-9.]+) ms`)

func (f *Function) scan(r io.Reader, log io.Writer) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if log != nil {
			fmt.Fprintln(log, line)
		}
		f.mu.Lock()
		f.out.WriteString(line)
		f.out.WriteByte('\n')
		if m := reportRE.FindStringSubmatch(line); m != nil {
			rep := Report{RequestID: m[1], Duration: ms(m[3])}
			if m[2] != "" {
				rep.InitDuration = ms(m[2])
			}
			f.reports = append(f.reports, rep)
		}
		f.mu.Unlock()
	}
	_, _ = io.Copy(io.Discard, r)
}

func ms(s string) time.Duration {
	v, _ := strconv.ParseFloat(s, 64)
	return time.Duration(v * float64(time.Millisecond))
}

// Invoke sends event (marshalled to JSON unless it is already []byte or
// json.RawMessage) and returns the function's raw response and the
// wall-clock duration of the call as seen by the client.
func (f *Function) Invoke(ctx context.Context, event any) (json.RawMessage, time.Duration, error) {
	var body []byte
	switch e := event.(type) {
	case []byte:
		body = e
	case json.RawMessage:
		body = e
	default:
		var err error
		if body, err = json.Marshal(event); err != nil {
			return nil, 0, fmt.Errorf("rietest: marshal event: %w", err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		"http://"+f.addr+"/2015-03-31/functions/function/invocations", bytes.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	start := time.Now()
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, time.Since(start), fmt.Errorf("rietest: invoke: %w", err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	took := time.Since(start)
	if err != nil {
		return nil, took, fmt.Errorf("rietest: read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return out, took, fmt.Errorf("rietest: invoke: emulator answered %s: %s", resp.Status, out)
	}
	return out, took, nil
}

// Addr is the emulator's listen address (host:port); its Invoke API is
// http://ADDR/2015-03-31/functions/function/invocations.
func (f *Function) Addr() string { return f.addr }

// Reports returns the REPORT lines seen so far. The emulator prints a REPORT
// after it answers, so a caller may need WaitReports.
func (f *Function) Reports() []Report {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Report(nil), f.reports...)
}

// WaitReports waits until at least n REPORT lines were seen or ctx ends.
func (f *Function) WaitReports(ctx context.Context, n int) ([]Report, error) {
	for {
		if r := f.Reports(); len(r) >= n {
			return r, nil
		}
		select {
		case <-ctx.Done():
			return f.Reports(), ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// InitDuration returns the init duration the emulator reported for the
// first invocation, waiting up to 5 s for its REPORT line.
func (f *Function) InitDuration() (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reps, err := f.WaitReports(ctx, 1)
	if err != nil {
		return 0, fmt.Errorf("rietest: no REPORT line: %w", err)
	}
	if reps[0].InitDuration == 0 {
		return 0, errors.New("rietest: first REPORT has no Init Duration")
	}
	return reps[0].InitDuration, nil
}

// Logs returns everything the emulator and the function printed so far.
func (f *Function) Logs() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.out.String()
}

// Stop ends the emulator and the bootstrap it started (their process
// group), waiting up to 5 s. It is idempotent.
func (f *Function) Stop() {
	if f.cmd.Process == nil {
		return
	}
	select {
	case err := <-f.waitCh:
		f.waitCh <- err // already exited; keep the result for later calls
		return
	default:
	}
	signalGroup(f.cmd, false)
	select {
	case err := <-f.waitCh:
		f.waitCh <- err
	case <-time.After(5 * time.Second):
		signalGroup(f.cmd, true)
		f.waitCh <- <-f.waitCh
	}
}

// PeakRSS returns the peak resident memory (VmHWM) of the processes the
// emulator started — the bootstrap — in bytes, from /proc: what Lambda
// reports as "Max Memory Used". It fails where /proc is missing (not
// Linux) or before the first invocation started the bootstrap.
func (f *Function) PeakRSS() (int64, error) {
	if f.cmd.Process == nil {
		return 0, errors.New("rietest: not started")
	}
	ppid := strconv.Itoa(f.cmd.Process.Pid)
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("rietest: peak RSS needs /proc: %w", err)
	}
	var peak int64
	found := false
	for _, d := range dirs {
		stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces, so read after ')'.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		fields := bytes.Fields(stat[i+1:])
		if len(fields) < 2 || string(fields[1]) != ppid {
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc", d.Name(), "status"))
		if err != nil {
			continue
		}
		for _, line := range bytes.Split(status, []byte("\n")) {
			if rest, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
				kb, _ := strconv.ParseInt(string(bytes.TrimSuffix(bytes.TrimSpace(rest), []byte(" kB"))), 10, 64)
				peak, found = max(peak, kb<<10), true
			}
		}
	}
	if !found {
		return 0, errors.New("rietest: no bootstrap process found under the emulator")
	}
	return peak, nil
}
