package rietest_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aiaas/aiaas/functions/internal/rietest"
)

type tlog struct{ t *testing.T }

func (l tlog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestEchoUnderRIE(t *testing.T) {
	rietest.Require(t)
	bootstrap := rietest.Build(t, "./testdata/echo")
	fn := rietest.Start(t, bootstrap, &rietest.Options{Env: []string{"ECHO_GREETING=hello"}, Timeout: 10 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	getEv, err := os.ReadFile("../apigw/testdata/httpapi-v2-get.json")
	if err != nil {
		t.Fatal(err)
	}
	postEv, err := os.ReadFile("../apigw/testdata/httpapi-v2-post-base64.json")
	if err != nil {
		t.Fatal(err)
	}
	panicEv := strings.Replace(string(getEv), `"rawPath": "/v2/models/mnist/versions/3"`, `"rawPath": "/panic"`, 1)

	type echoed struct {
		Method, URI, RequestID, Cookie, Greeting string
		Body                                     []byte
	}
	type resp struct {
		StatusCode      int
		Headers         map[string]string
		Cookies         []string
		Body            string
		IsBase64Encoded bool
	}
	cases := []struct {
		name   string
		event  []byte
		status int
		check  func(e echoed) bool
	}{
		{"get with query and cookies", getEv, 200, func(e echoed) bool {
			return e.Method == "GET" && e.URI == "/v2/models/mnist/versions/3?verbose=1&tag=a&tag=b%20c" &&
				e.Cookie == "session=abc123; theme=dark" && e.Greeting == "hello" && e.RequestID != ""
		}},
		{"post base64 body", postEv, 200, func(e echoed) bool {
			return e.Method == "POST" && string(e.Body) == "\x89PNG\r\n\x1a\n"
		}},
		{"panic is a 500, not a crash", []byte(panicEv), 500, nil},
		{"alive after the panic", getEv, 200, func(e echoed) bool { return e.Greeting == "hello" }},
		{"not an http event", []byte(`{"hello":"world"}`), 400, nil},
	}
	for i, c := range cases {
		raw, took, err := fn.Invoke(ctx, c.event)
		if err != nil {
			t.Fatalf("case %d (%s): %v\nlogs:\n%s", i, c.name, err, fn.Logs())
		}
		var r resp
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatalf("case %d (%s): %v: %s", i, c.name, err, raw)
		}
		if r.StatusCode != c.status {
			t.Fatalf("case %d (%s): status %d, want %d: %s", i, c.name, r.StatusCode, c.status, raw)
		}
		if c.check != nil {
			var e echoed
			body := []byte(r.Body)
			if r.IsBase64Encoded {
				body, _ = base64.StdEncoding.DecodeString(r.Body)
			}
			if err := json.Unmarshal(body, &e); err != nil || !c.check(e) {
				t.Errorf("case %d (%s): unexpected echo %+v (%v)", i, c.name, e, err)
			}
			if len(r.Cookies) != 1 || r.Cookies[0] != "seen=1" {
				t.Errorf("case %d (%s): cookies %q", i, c.name, r.Cookies)
			}
		}
		t.Logf("case %d (%s): %v", i, c.name, took)
	}
	init, err := fn.InitDuration()
	if err != nil {
		t.Fatalf("%v\nlogs:\n%s", err, fn.Logs())
	}
	reps, err := fn.WaitReports(ctx, len(cases))
	if err != nil {
		t.Fatalf("%v: %d reports\n%s", err, len(reps), fn.Logs())
	}
	t.Logf("init duration %v; invoke durations: first %v, last %v", init, reps[0].Duration, reps[len(reps)-1].Duration)
	if !strings.Contains(fn.Logs(), "echo: asked to panic") {
		t.Errorf("the panic was not logged:\n%s", fn.Logs())
	}
}

func TestRequireWithoutRIE(t *testing.T) {
	t.Setenv("AIAAS_RIE", "")
	t.Setenv("AIAAS_TOOLS", t.TempDir())
	t.Setenv("PATH", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	if _, err := rietest.Path(); err != rietest.ErrNotInstalled {
		t.Fatalf("Path() error = %v, want ErrNotInstalled", err)
	}
}
