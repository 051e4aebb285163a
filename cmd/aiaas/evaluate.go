package main

// Evaluation commands: compare model versions on a labelled dataset.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/aiaas/aiaas/sdk/client"
)

var cmdEvaluate = clientCmd(&command{
	name:    "evaluate",
	summary: "compare model versions on a labelled dataset: quality, latency, memory, Lambda cost",
	detail: `Runs every --candidate (MODEL or MODEL:VERSION, where VERSION is a number or
an alias; repeat the flag) over the same --dataset ("mnist" or a dataset
uploaded with 'aiaas dataset push') as an evaluation job on the server, and
reports per candidate: accuracy, top-k accuracy, macro F1, per-class
metrics and the confusion matrix (classifiers; MSE and MAE with --task
regression), latency p50/p99 at batch 1 and at the batch size with the best
throughput, the model's memory estimate, its artifact size, and an estimated
cost per million requests on AWS Lambda. A candidate whose input does not fit
the dataset is reported as incompatible, with the reason.

The cost is the median forward-pass time at batch 1, billed in whole
milliseconds, × --memory-mb × --price-per-gb-second, plus
--price-per-million-requests; the defaults are AWS's arm64 list prices
(0.0000133334 USD per GB-second, 0.20 USD per million requests) — set your
own. HTTP, plugins and cold starts are not in it.

With --wait the command follows the job (a progress line on a terminal,
a line per candidate otherwise), prints the comparison table, and exits 1
if the evaluation fails or is canceled. The evaluation's id can then justify
an alias move: 'aiaas model alias NAME ALIAS VERSION --evaluation ID'.`,
	examples: []string{"aiaas evaluate --candidate mnist:prod --candidate mnist-cnn:3 --dataset mnist-test --wait",
		"aiaas evaluate --candidate mnist:1 --candidate mnist:2 --dataset mnist --limit 2000 --wait --output json",
		"aiaas evaluate --candidate price:3 --dataset houses --task regression --metrics quality,latency"},
}, false, func(fs *flag.FlagSet) clientRun {
	var r client.EvaluationRequest
	var cands stringList
	var metrics, batches string
	var perMillion float64
	var wait bool
	var poll time.Duration
	fs.Var(&cands, "candidate", "MODEL or MODEL:VERSION (a number or an alias) to evaluate (repeat it; required)")
	fs.StringVar(&r.Dataset, "dataset", "", `"mnist" or an uploaded dataset (required)`)
	fs.StringVar(&r.Task, "task", "", "classification (default) or regression")
	fs.StringVar(&metrics, "metrics", "", "comma-separated subset of quality,latency,memory,cost (default all)")
	fs.IntVar(&r.TopK, "top-k", 0, "k of the top-k accuracy (server default 5)")
	fs.IntVar(&r.Limit, "limit", 0, "evaluate only the first N rows (default all)")
	fs.StringVar(&batches, "batches", "", "batch sizes to time, comma separated (server default 1,8,32,128)")
	fs.IntVar(&r.MemoryMB, "memory-mb", 0, "Lambda memory for the cost estimate (server default 1024)")
	fs.Float64Var(&r.PricePerGBSecond, "price-per-gb-second", 0, "USD per GB-second (server default 0.0000133334, AWS arm64 list price)")
	fs.Float64Var(&perMillion, "price-per-million-requests", 0, "USD per million requests (server default 0.20, AWS list price)")
	fs.BoolVar(&wait, "wait", false, "follow the evaluation until it ends and print the comparison")
	fs.DurationVar(&poll, "poll", time.Second, "how often --wait asks for the evaluation's state")
	return func(ctx context.Context, c *cli, cl *client.Client, args []string) error {
		if err := nargs(args, 0, "flags only"); err != nil {
			return err
		}
		if len(cands) == 0 || r.Dataset == "" {
			return usagef("--candidate (at least one) and --dataset are required")
		}
		for _, s := range cands {
			model, version, _ := strings.Cut(s, ":")
			if model == "" || strings.HasSuffix(s, ":") {
				return usagef("--candidate %q: want MODEL or MODEL:VERSION", s)
			}
			r.Candidates = append(r.Candidates, client.EvaluationCandidate{Model: model, Version: version})
		}
		if metrics != "" {
			for _, m := range strings.Split(metrics, ",") {
				r.Metrics = append(r.Metrics, strings.TrimSpace(m))
			}
		}
		if batches != "" {
			for _, b := range strings.Split(batches, ",") {
				n, err := strconv.Atoi(strings.TrimSpace(b))
				if err != nil || n < 1 {
					return usagef("--batches: %q is not a positive batch size", b)
				}
				r.Batches = append(r.Batches, n)
			}
		}
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "price-per-million-requests" {
				r.PricePerMillionRequests = &perMillion
			}
		})
		ev, err := cl.SubmitEvaluation(ctx, &r)
		if err != nil {
			return err
		}
		if !wait {
			return c.emit(ev, func(w io.Writer) {
				fmt.Fprintf(w, "evaluation %s %s\nfollow it with: aiaas evaluation show %s --wait\n", ev.ID, ev.Status, ev.ID)
			})
		}
		c.logf("evaluation %s submitted", ev.ID)
		return waitEvaluation(ctx, c, cl, ev.ID, poll)
	}
})

var cmdEvaluationShow = clientCmd(&command{
	name: "evaluation show", args: "ID",
	summary:  "show an evaluation and its comparison table; --wait follows it to the end",
	examples: []string{"aiaas evaluation show e0123 --wait", "aiaas evaluation show e0123 --output json"},
}, false, func(fs *flag.FlagSet) clientRun {
	var wait bool
	var poll time.Duration
	fs.BoolVar(&wait, "wait", false, "follow the evaluation until it ends (exit 1 if it fails)")
	fs.DurationVar(&poll, "poll", time.Second, "how often --wait asks for the evaluation's state")
	return func(ctx context.Context, c *cli, cl *client.Client, args []string) error {
		if err := nargs(args, 1, "ID"); err != nil {
			return err
		}
		if wait {
			return waitEvaluation(ctx, c, cl, args[0], poll)
		}
		ev, err := cl.Evaluation(ctx, args[0])
		if err != nil {
			return err
		}
		return c.emit(ev, func(w io.Writer) { evaluationText(w, ev) })
	}
})

var cmdEvaluationList = clientCmd(&command{
	name: "evaluation list", summary: "list this tenant's evaluations",
	examples: []string{"aiaas evaluation list", "aiaas evaluation list --output json"},
}, false, noFlags(func(ctx context.Context, c *cli, cl *client.Client, args []string) error {
	if err := nargs(args, 0, "no arguments"); err != nil {
		return err
	}
	evs, err := cl.Evaluations(ctx)
	if err != nil {
		return err
	}
	return c.emit(map[string]any{"evaluations": nonNil(evs)}, func(w io.Writer) {
		rows := make([][]string, len(evs))
		for i, ev := range evs {
			names := make([]string, len(ev.Results))
			for j, res := range ev.Results {
				names[j] = candidateName(&res)
			}
			dataset := "-"
			if ev.Request != nil {
				dataset = ev.Request.Dataset
			}
			rows[i] = []string{ev.ID, ev.Status, dataset, fmtTime(ev.Created), strings.Join(names, " ")}
		}
		table(w, "ID\tSTATUS\tDATASET\tCREATED\tCANDIDATES", rows)
	})
}))

var cmdEvaluationCancel = clientCmd(&command{
	name: "evaluation cancel", args: "ID",
	summary:  "stop a queued or running evaluation",
	examples: []string{"aiaas evaluation cancel e0123"},
}, false, noFlags(func(ctx context.Context, c *cli, cl *client.Client, args []string) error {
	if err := nargs(args, 1, "ID"); err != nil {
		return err
	}
	ev, err := cl.CancelEvaluation(ctx, args[0])
	if err != nil {
		return err
	}
	return c.emit(ev, func(w io.Writer) { fmt.Fprintf(w, "evaluation %s: cancel requested\n", ev.ID) })
}))

// waitEvaluation follows an evaluation, showing where it is, and prints
// the comparison at the end.
func waitEvaluation(ctx context.Context, c *cli, cl *client.Client, id string, poll time.Duration) error {
	last, drawn := "", false
	ev, err := cl.WaitEvaluation(ctx, id, poll, func(ev *client.Evaluation) {
		pr := ev.Progress
		if pr == nil || ev.Done() {
			return
		}
		line := fmt.Sprintf("candidate %d/%d %s: %s", pr.Candidate, pr.Candidates, pr.Model, pr.Phase)
		if pr.Phase == "quality" && pr.RowsTotal > 0 {
			line += fmt.Sprintf(" %d/%d rows (%d%%)", pr.Rows, pr.RowsTotal, 100*pr.Rows/pr.RowsTotal)
		}
		if c.tty {
			fmt.Fprintf(c.stderr, "\r\033[K%s", line)
			drawn = true
			return
		}
		// Plain lines: one per candidate and phase, not per poll.
		if key := fmt.Sprint(pr.Candidate, pr.Phase); key != last {
			last = key
			c.logf("%s", line)
		}
	})
	if drawn {
		fmt.Fprint(c.stderr, "\r\033[K")
	}
	if err != nil {
		return err
	}
	if err := c.emit(ev, func(w io.Writer) { evaluationText(w, ev) }); err != nil {
		return err
	}
	if ev.Status != client.JobSucceeded {
		msg := ev.Error
		if msg == "" {
			msg = ev.Status
		}
		return &exitError{code: exitFailure, err: fmt.Errorf("evaluation %s %s: %s", ev.ID, ev.Status, msg)}
	}
	return nil
}

func candidateName(r *client.EvaluationResult) string {
	s := r.Model
	if r.Version != "" {
		s += ":" + r.Version
	}
	if r.Version != strconv.Itoa(r.ResolvedVersion) {
		s += fmt.Sprintf(" (v%d)", r.ResolvedVersion)
	}
	return s
}

// evaluationText prints an evaluation: a header, the comparison table and
// what did not run.
func evaluationText(w io.Writer, ev *client.Evaluation) {
	fmt.Fprintf(w, "evaluation %s: %s", ev.ID, ev.Status)
	if d := ev.Dataset; d != nil {
		fmt.Fprintf(w, " on %s (%d rows, %d features", d.Name, d.Rows, d.Features)
		if d.Classes > 0 && d.Task != "regression" {
			fmt.Fprintf(w, ", %d classes", d.Classes)
		}
		fmt.Fprint(w, ")")
	}
	fmt.Fprintln(w)
	if pr := ev.Progress; pr != nil && !ev.Done() {
		fmt.Fprintf(w, "candidate %d/%d %s: %s %d/%d rows\n", pr.Candidate, pr.Candidates, pr.Model, pr.Phase, pr.Rows, pr.RowsTotal)
	}
	regression := ev.Dataset != nil && ev.Dataset.Task == "regression"
	header := "CANDIDATE\tARCH\tACCURACY\tTOP-K\tMACRO-F1"
	if regression {
		header = "CANDIDATE\tARCH\tMSE\tMAE"
	}
	header += "\tP50 MS\tP99 MS\tBEST BATCH\tROWS/S\tMEMORY\tSIZE\tUSD/1M REQ"
	var rows [][]string
	var notes []string
	for i := range ev.Results {
		r := &ev.Results[i]
		name := candidateName(r)
		if r.Status != client.CandidateOK {
			if r.Reason != "" {
				notes = append(notes, fmt.Sprintf("%s: %s: %s", name, r.Status, r.Reason))
			} else {
				notes = append(notes, fmt.Sprintf("%s: %s", name, r.Status))
			}
			continue
		}
		row := []string{name, orDash(r.Architecture)}
		switch {
		case regression && r.Regression != nil:
			row = append(row, fmt.Sprintf("%.4g", r.Regression.MSE), fmt.Sprintf("%.4g", r.Regression.MAE))
		case regression:
			row = append(row, "-", "-")
		case r.Classification != nil:
			q := r.Classification
			row = append(row, fmt.Sprintf("%.4f", q.Accuracy), fmt.Sprintf("%.4f (k=%d)", q.TopKAccuracy, q.TopK), fmt.Sprintf("%.4f", q.MacroF1))
		default:
			row = append(row, "-", "-", "-")
		}
		if l := r.Latency; l != nil {
			row = append(row, fmt.Sprintf("%.3f", l.P50MS), fmt.Sprintf("%.3f", l.P99MS), strconv.Itoa(l.BestBatch), fmt.Sprintf("%.0f", l.BestRowsPerSecond))
		} else {
			row = append(row, "-", "-", "-", "-")
		}
		if m := r.Memory; m != nil {
			row = append(row, fmtSize(m.ModelBytes))
		} else {
			row = append(row, "-")
		}
		row = append(row, fmtSize(r.ArtifactBytes))
		if co := r.Cost; co != nil {
			row = append(row, fmt.Sprintf("%.4f", co.PerMillionRequestsUSD))
		} else {
			row = append(row, "-")
		}
		rows = append(rows, row)
	}
	if len(rows) > 0 {
		table(w, header, rows)
	}
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
	for i := range ev.Results {
		if co := ev.Results[i].Cost; co != nil {
			fmt.Fprintf(w, "cost: %d MB at %g USD per GB-second + %g USD per million requests (parameters; AWS arm64 list prices by default), forward pass only\n",
				co.MemoryMB, co.PricePerGBSecond, co.PricePerMillionRequests)
			break
		}
	}
	if ev.Error != "" {
		fmt.Fprintf(w, "error: %s\n", ev.Error)
	}
}

// fmtSize prints a byte count in KiB or MiB.
func fmtSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
