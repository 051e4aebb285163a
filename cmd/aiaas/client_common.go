package main

// Shared plumbing of the client commands: connecting with AIAAS_URL and
// AIAAS_KEY, and turning the SDK's errors into the CLI's exit statuses.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/aiaas/aiaas/sdk/client"
)

const defaultURL = "http://127.0.0.1:8080"

// conn holds the --url and --key flags every client command takes.
type conn struct {
	url, key string
	// adminKey is set by commands that use the operator's key.
	admin    bool
	adminKey string
}

// addConn registers --url and --key (or --admin-key for admin commands).
func addConn(fs *flag.FlagSet, admin bool) *conn {
	cn := &conn{admin: admin}
	fs.StringVar(&cn.url, "url", "", "server URL (default $AIAAS_URL, else "+defaultURL+")")
	if admin {
		fs.StringVar(&cn.adminKey, "admin-key", "", "the operator's key (default $AIAAS_ADMIN_KEY)")
	} else {
		fs.StringVar(&cn.key, "key", "", "API key (default $AIAAS_KEY)")
	}
	return cn
}

func (cn *conn) client(c *cli) (*client.Client, error) {
	url := cn.url
	if url == "" {
		url = c.env("AIAAS_URL")
	}
	if url == "" {
		url = defaultURL
	}
	key := cn.key
	if cn.admin {
		key = cn.adminKey
		if key == "" {
			key = c.env("AIAAS_ADMIN_KEY")
		}
		if key == "" {
			return nil, usagef("no admin key: set AIAAS_ADMIN_KEY or pass --admin-key")
		}
	} else if key == "" {
		key = c.env("AIAAS_KEY")
	}
	cl, err := client.New(url, &client.Options{
		APIKey:    key,
		UserAgent: "aiaas-cli/" + client.Version,
		// A person is waiting: retry briefly, then say what is wrong.
		Retry: &client.RetryPolicy{MaxAttempts: 3, BaseDelay: 100 * time.Millisecond, MaxDelay: 5 * time.Second},
	})
	if err != nil {
		return nil, usagef("bad server URL %q (AIAAS_URL or --url): want http://HOST:PORT", url)
	}
	return cl, nil
}

func (c *cli) env(k string) string {
	if c.getenv == nil {
		return ""
	}
	return c.getenv(k)
}

// apiErr maps an SDK error to the CLI's exit statuses, with a hint of what
// to do next.
func apiErr(err error) error {
	if err == nil {
		return nil
	}
	var ue usageError
	var ee *exitError
	if errors.As(err, &ue) || errors.As(err, &ee) {
		return err
	}
	code := exitFailure
	hint := ""
	switch st := client.StatusCode(err); {
	case client.IsUnreachable(err):
		code, hint = exitUnreachable, "is the server running? start it with 'aiaas serve' or set AIAAS_URL"
	case st == 401 || st == 403:
		code, hint = exitAuth, "check AIAAS_KEY, or AIAAS_ADMIN_KEY for tenant commands"
	case st == 404:
		code = exitNotFound
	case st == 400 || st == 409 || st == 413:
		code = exitInvalid
	case st == 429 || st == 503:
		code, hint = exitRetry, "retry later"
	case errors.Is(err, client.ErrInvalidArgument):
		return usageError{err.Error()}
	}
	if hint != "" {
		err = fmt.Errorf("%w (%s)", err, hint)
	}
	return &exitError{code: code, err: err}
}

// table writes aligned columns.
func table(w io.Writer, header string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// openUpload opens FILE ("-" is stdin, which must then be a regular
// file so its size is known: uploads set Content-Length).
func openUpload(c *cli, path string) (*os.File, int64, error) {
	var f *os.File
	if path == "-" {
		f = os.Stdin
	} else {
		var err error
		if f, err = os.Open(path); err != nil {
			return nil, 0, usagef("%v", err)
		}
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, usagef("%s: not a regular file (uploads need the size up front)", path)
	}
	return f, st.Size(), nil
}

// uploadProgress returns a progress callback: a byte bar on a terminal,
// a plain line per quarter otherwise (never with --output json on stdout:
// progress goes to stderr either way).
func uploadProgress(c *cli, what string, size int64) (func(int64), func()) {
	if c.tty {
		bar := progressbar.NewOptions64(size,
			progressbar.OptionSetWriter(c.stderr),
			progressbar.OptionSetDescription(what),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(c.stderr) }),
		)
		return func(n int64) { _ = bar.Set64(n) }, func() { _ = bar.Finish() }
	}
	next := int64(1)
	return func(n int64) {
		if size <= 0 {
			return
		}
		q := int64(0)
		for next <= 4 && n*4 >= size*next {
			q = next
			next++
		}
		if q > 0 {
			c.logf("%s: %d%% (%d/%d bytes)", what, 25*q, n, size)
		}
	}, func() {}
}

// staged is the --staged flag of the upload commands.
type staged struct{ mode string }

func stagedFlag(fs *flag.FlagSet) *staged {
	s := &staged{}
	fs.StringVar(&s.mode, "staged", "auto", "send the file as a staged upload (signed part URLs, then a commit): auto (above 5 MiB, what API Gateway cannot carry in one request), always or never")
	return s
}

func (s *staged) use(size int64) (bool, error) {
	switch s.mode {
	case "auto":
		return size > client.SingleRequestLimit, nil
	case "always":
		return true, nil
	case "never":
		return false, nil
	}
	return false, usagef("--staged must be auto, always or never, not %q", s.mode)
}
