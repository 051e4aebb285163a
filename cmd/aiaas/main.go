// Command aiaas is the CLI and the local server of the aiaas platform.
//
// Run `aiaas --help` for the commands and `aiaas COMMAND --help` for each
// one's flags and examples. Every command takes `--output json` and then
// prints exactly one JSON object on standard output, for scripts; errors go
// to standard error and the exit status tells scripts what happened (see
// exitCodes).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/term"
)

// Exit statuses scripts can rely on. They are documented in --help and in
// docs/cli.md; changing one is a breaking change.
const (
	exitOK          = 0 // success
	exitFailure     = 1 // anything else: a server error, a failed training run
	exitUsage       = 2 // bad flags or arguments: fix the command line
	exitUnreachable = 3 // the server or the store could not be reached
	exitAuth        = 4 // the key was refused (401) or lacks the scope (403)
	exitNotFound    = 5 // the model, version, plugin, endpoint or job does not exist
	exitInvalid     = 6 // the server refused the input (400, 409, 413)
	exitRetry       = 7 // over quota or temporarily unavailable (429, 503): retry later
)

const exitCodes = `Exit status:
  0  success                      4  key refused (401/403)
  1  failure                      5  not found (404)
  2  bad flags or arguments       6  input refused (400/409/413)
  3  server or store unreachable  7  over quota / unavailable (429/503): retry later`

// command is one CLI verb ("serve", "model push" …).
type command struct {
	name     string
	args     string // synopsis of positional arguments
	summary  string
	detail   string
	examples []string
	// more, if set, adds a section to --help (serve lists the environment).
	more func() string
	// flags registers the command's flags; the returned func runs it.
	setup func(fs *flag.FlagSet) func(ctx context.Context, io *cli, args []string) error
}

// cli is what every command gets: its streams and output mode.
type cli struct {
	stdout, stderr io.Writer
	json           bool // --output json
	tty            bool // stderr is a terminal: draw progress bars
	getenv         func(string) string
}

// usageError is a mistake on the command line (exit 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// exitError carries an explicit exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// commands is the CLI: every verb, grouped here by what it works on
// (--help lists them sorted). Each is a variable in the file of its kind
// (serve.go, train.go, client_*.go …); a command missing here does not
// exist.
var commands = []*command{
	cmdServe, cmdTrain, cmdModelBench, cmdModelExport,
	cmdTenantCreate, cmdTenantList,
	cmdKeyCreate, cmdKeyList, cmdKeyRevoke,
	cmdModelPush, cmdModelList, cmdModelShow, cmdModelAlias,
	cmdPluginPush, cmdPluginList,
	cmdDatasetPush,
	cmdEndpointCreate, cmdEndpointList, cmdEndpointDelete,
	cmdInvoke, cmdInfer, cmdEmbed, cmdGenerate,
	cmdJobSubmit, cmdJobShow, cmdJobList,
	cmdEvaluate, cmdEvaluationShow, cmdEvaluationList, cmdEvaluationCancel,
	cmdAuditList, cmdAuditVerify,
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run is main without the process: tests call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	c := &cli{stdout: stdout, stderr: stderr, getenv: getenv}
	if f, ok := stderr.(*os.File); ok {
		c.tty = term.IsTerminal(int(f.Fd()))
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		topUsage(stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmd, rest := find(args)
	if cmd == nil {
		fmt.Fprintf(stderr, "aiaas: unknown command %q\nRun 'aiaas --help' for the list of commands.\n", strings.Join(args[:min(2, len(args))], " "))
		return exitUsage
	}
	fs := flag.NewFlagSet("aiaas "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	output := fs.String("output", "text", "output format: text or json (one JSON object on stdout)")
	runFn := cmd.setup(fs)
	if err := fs.Parse(interleave(fs, rest)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			commandUsage(stdout, cmd, fs)
			return exitOK
		}
		fmt.Fprintf(stderr, "aiaas %s: %v\nRun 'aiaas %s --help' for usage.\n", cmd.name, err, cmd.name)
		return exitUsage
	}
	switch *output {
	case "json":
		c.json = true
	case "text":
	default:
		fmt.Fprintf(stderr, "aiaas %s: --output must be text or json, not %q\n", cmd.name, *output)
		return exitUsage
	}
	err := runFn(ctx, c, fs.Args())
	if err == nil {
		return exitOK
	}
	code := exitFailure
	var ue usageError
	var ee *exitError
	switch {
	case errors.As(err, &ue):
		code = exitUsage
		fmt.Fprintf(stderr, "aiaas %s: %v\nRun 'aiaas %s --help' for usage.\n", cmd.name, err, cmd.name)
		return code
	case errors.As(err, &ee):
		code = ee.code
	}
	if ctx.Err() != nil {
		fmt.Fprintf(stderr, "aiaas %s: interrupted\n", cmd.name)
		return exitFailure
	}
	fmt.Fprintf(stderr, "aiaas %s: %v\n", cmd.name, err)
	return code
}

// find matches the longest command name ("model push" before "model").
func find(args []string) (*command, []string) {
	var best *command
	n := 0
	for _, c := range commands {
		words := strings.Fields(c.name)
		if len(words) <= len(args) && len(words) > n {
			match := true
			for i, w := range words {
				if args[i] != w {
					match = false
					break
				}
			}
			if match {
				best, n = c, len(words)
			}
		}
	}
	return best, args[n:]
}

// interleave lets flags follow positional arguments
// ("aiaas model bench m.safetensors --batch 1,64"), which the standard
// flag package would otherwise stop at.
func interleave(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue // Parse reports it
		}
		if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			flags = append(flags, args[i+1])
			i++
		}
	}
	return append(flags, pos...)
}

func topUsage(w io.Writer) {
	fmt.Fprintln(w, `aiaas — AI models as a service: serve, train and call neural-network models.

Usage: aiaas COMMAND [flags] [args]

Commands:`)
	sorted := append([]*command(nil), commands...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	for _, c := range sorted {
		fmt.Fprintf(w, "  %-18s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, `
Client commands read AIAAS_URL (default http://127.0.0.1:8080) and AIAAS_KEY.
Every command takes --output json and --help.

%s
`, exitCodes)
}

func commandUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: aiaas %s [flags] %s\n\n%s\n", c.name, c.args, c.summary)
	if c.detail != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.detail))
	}
	fmt.Fprintln(w, "\nFlags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	if c.more != nil {
		fmt.Fprintf(w, "\n%s", c.more())
	}
	if len(c.examples) > 0 {
		fmt.Fprintln(w, "\nExamples:")
		for _, e := range c.examples {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
	fmt.Fprintf(w, "\n%s\n", exitCodes)
}

// emit prints a result: v as one JSON object with --output json, else text.
func (c *cli) emit(v any, text func(w io.Writer)) error {
	if c.json {
		enc := json.NewEncoder(c.stdout)
		enc.SetEscapeHTML(false)
		return enc.Encode(v)
	}
	text(c.stdout)
	return nil
}

// logf prints progress for people: to stderr, never mixed with JSON.
func (c *cli) logf(format string, a ...any) {
	fmt.Fprintf(c.stderr, format+"\n", a...)
}
