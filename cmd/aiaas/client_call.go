package main

// Data-plane and job client commands: invoke, infer, job, audit.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/sdk/client"
)

// maxLocalInput bounds what the CLI reads from a file or stdin into memory
// (infer's JSON; invoke from a pipe). Larger bodies are refused by the
// server anyway.
const maxLocalInput = 64 << 20

var cmdInvoke = clientCmd(&command{
	name: "invoke", args: "ENDPOINT [FILE|-]",
	summary: "send bytes (an image, a JSON request) to an endpoint; the answer goes to stdout",
	detail: `FILE is sent as is with --content-type (guessed from the file name when not
given); "-" or no FILE reads standard input. The response bytes are written to
standard output unchanged; with --output json they are wrapped as
{"content_type": …, "encoding": "json"|"base64", "body": …}.`,
	examples: []string{"aiaas invoke digits seven.png",
		"cat seven.png | aiaas invoke digits - --content-type image/png --output json",
		`echo '{"inputs":[…]}' | aiaas invoke raw --content-type application/json`},
}, false, func(fs *flag.FlagSet) clientRun {
	var ct string
	fs.StringVar(&ct, "content-type", "", "Content-Type of the body (default: from the file extension, else application/octet-stream)")
	return func(ctx context.Context, c *cli, cl *client.Client, args []string) error {
		if len(args) < 1 || len(args) > 2 {
			return usagef("want ENDPOINT [FILE|-]")
		}
		var body io.Reader
		if len(args) == 1 || args[1] == "-" {
			// A pipe has no size; read it (bounded) so the request has a
			// Content-Length and can be retried.
			b, err := io.ReadAll(io.LimitReader(os.Stdin, maxLocalInput+1))
			if err != nil {
				return err
			}
			if len(b) > maxLocalInput {
				return &exitError{code: exitInvalid, err: fmt.Errorf("standard input is over %d bytes", maxLocalInput)}
			}
			body = bytes.NewReader(b)
		} else {
			f, _, err := openUpload(c, args[1])
			if err != nil {
				return err
			}
			defer f.Close()
			body = f
			if ct == "" {
				if i := strings.LastIndex(args[1], "."); i >= 0 {
					ct = mime.TypeByExtension(args[1][i:])
				}
			}
		}
		if ct == "" {
			ct = "application/octet-stream"
		}
		resp, rct, err := cl.Invoke(ctx, args[0], ct, body)
		if err != nil {
			return err
		}
		if !c.json {
			_, err := c.stdout.Write(resp)
			return err
		}
		out := map[string]any{"content_type": rct}
		if mt, _, _ := mime.ParseMediaType(rct); (mt == "application/json" || strings.HasSuffix(mt, "+json")) && json.Valid(resp) {
			out["encoding"], out["body"] = "json", json.RawMessage(resp)
		} else {
			out["encoding"], out["body"] = "base64", base64.StdEncoding.EncodeToString(resp)
		}
		return c.emit(out, nil)
	}
})

var cmdInfer = clientCmd(&command{
	name: "infer", args: "MODEL",
	summary: "run an Open Inference Protocol inference on a model",
	detail: `--data is one tensor as a JSON array: flat ([0.1, …], sent as shape [1, N])
or nested ([[…], […]], shape from the nesting). It is sent as the model's
first input (its name and datatype come from the model's metadata unless
--input names it). --file is a whole OIP inference request
({"inputs": [{"name", "shape", "datatype", "data"}]}). --binary uses the
binary tensor extension (FP32 inputs as raw bytes).`,
	examples: []string{`aiaas infer iris --data '[5.1, 3.5, 1.4, 0.2]'`,
		`aiaas infer mnist --version prod --file request.json --output json`,
		`aiaas infer iris --data '[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3]]' --binary`},
}, false, func(fs *flag.FlagSet) clientRun {
	var data, file, version, input string
	var binary bool
	fs.StringVar(&data, "data", "", "input tensor as a JSON array")
	fs.StringVar(&file, "file", "", `OIP inference request JSON file ("-" for stdin)`)
	fs.StringVar(&version, "version", "", "version number or alias (default latest)")
	fs.StringVar(&input, "input", "", "input name for --data (default: the model's first input)")
	fs.BoolVar(&binary, "binary", false, "use the binary tensor extension")
	return func(ctx context.Context, c *cli, cl *client.Client, args []string) error {
		if err := nargs(args, 1, "MODEL"); err != nil {
			return err
		}
		if (data == "") == (file == "") {
			return usagef("give exactly one of --data and --file")
		}
		var req *client.InferRequest
		if file != "" {
			var err error
			if req, err = readInferRequest(file); err != nil {
				return err
			}
		} else {
			vals, shape, err := parseTensor(data)
			if err != nil {
				return usagef("--data: %v", err)
			}
			name, dt := input, "FP32"
			if name == "" {
				md, err := cl.ModelMetadata(ctx, args[0], version)
				if err != nil {
					return err
				}
				if len(md.Inputs) == 0 {
					return &exitError{code: exitFailure, err: fmt.Errorf("model %s declares no inputs", args[0])}
				}
				name = md.Inputs[0].Name
				if md.Inputs[0].Datatype != "" {
					dt = md.Inputs[0].Datatype
				}
			}
			if dt != "FP32" {
				return usagef("--data sends FP32; input %q is %s (use --file)", name, dt)
			}
			req = &client.InferRequest{Inputs: []client.InferInput{{Name: name, Datatype: dt, Shape: shape, Data: vals}}}
		}
		var resp *client.InferResponse
		var err error
		if binary {
			resp, err = cl.InferBinary(ctx, args[0], version, req)
		} else {
			resp, err = cl.Infer(ctx, args[0], version, req)
		}
		if err != nil {
			return err
		}
		if binary {
			// Raw bytes are not JSON: show them decoded as data.
			for i := range resp.Outputs {
				o := &resp.Outputs[i]
				if o.Raw != nil {
					if f, err := o.Float32s(); err == nil {
						o.Data, _ = json.Marshal(f)
					} else {
						o.Data, _ = json.Marshal(base64.StdEncoding.EncodeToString(o.Raw))
					}
				}
			}
		}
		return c.emit(resp, func(w io.Writer) {
			v, sha := resp.Lineage()
			if len(sha) > 12 {
				sha = sha[:12]
			}
			fmt.Fprintf(w, "model %s version %s (sha256 %s)\n", resp.ModelName, orDash(v), orDash(sha))
			for _, o := range resp.Outputs {
				fmt.Fprintf(w, "%s %s %v: %s\n", o.Name, o.Datatype, o.Shape, o.Data)
			}
		})
	}
})

var cmdJobSubmit = clientCmd(&command{
	name:    "job submit",
	summary: "submit a training job to the server (trains and publishes a model version)",
	detail: `--dataset is "mnist" or a dataset uploaded with 'aiaas dataset push'. With
--wait the command follows the job (a progress bar on a terminal, a line per
epoch otherwise) and exits 1 if it fails.

--spec FILE sends a training recipe in JSON (the body of POST
/v1/training-jobs, e.g. examples/mnist/cnn.json with its "network" of
convolutions); flags given on the command line override its values.`,
	examples: []string{"aiaas job submit --model mnist --dataset mnist --layers 128,128 --epochs 5 --wait",
		"aiaas job submit --model iris --dataset iris --layers 16 --epochs 50 --output json",
		"aiaas job submit --model mnist-cnn --dataset mnist --spec examples/mnist/cnn.json --wait"},
}, false, func(fs *flag.FlagSet) clientRun {
	var r client.TrainingRequest
	var layers, spec string
	var wait bool
	var poll time.Duration
	fs.StringVar(&r.Model, "model", "", "model to publish the result as (required)")
	fs.StringVar(&r.Dataset, "dataset", "", `"mnist" or an uploaded dataset (required)`)
	fs.StringVar(&layers, "layers", "128,128", "hidden layer widths, comma separated")
	fs.StringVar(&r.Activation, "activation", "relu", "relu, tanh, sigmoid or linear")
	fs.StringVar(&r.Optimizer, "optimizer", "adam", "adam, sgd or momentum")
	fs.Float64Var(&r.LearningRate, "lr", 0.001, "learning rate")
	fs.IntVar(&r.BatchSize, "batch-size", 32, "mini-batch size")
	fs.IntVar(&r.Epochs, "epochs", 5, "passes over the training set")
	fs.Int64Var(&r.Seed, "seed", 1, "seed (same seed, same run)")
	fs.Float64Var(&r.ValidationSplit, "validation-split", 0, "fraction of the training set used for validation")
	fs.StringVar(&spec, "spec", "", "training recipe in JSON (a \"network\" of any layers, hyperparameters); flags override it")
	fs.BoolVar(&wait, "wait", false, "follow the job until it ends")
	fs.DurationVar(&poll, "poll", time.Second, "how often --wait asks for the job's state")
	return func(ctx context.Context, c *cli, cl *client.Client, args []string) error {
		if err := nargs(args, 0, "flags only"); err != nil {
			return err
		}
		var err error
		if r.Layers, err = parseLayers(layers); err != nil {
			return usagef("--layers: %v", err)
		}
		if spec != "" {
			if r, err = withSpec(fs, spec, r); err != nil {
				return err
			}
		}
		if r.Model == "" || r.Dataset == "" {
			return usagef("--model and --dataset are required")
		}
		j, err := cl.SubmitTrainingJob(ctx, &r)
		if err != nil {
			return err
		}
		if !wait {
			return c.emit(j, func(w io.Writer) {
				fmt.Fprintf(w, "job %s %s\nfollow it with: aiaas job show %s --wait\n", j.ID, j.Status, j.ID)
			})
		}
		c.logf("job %s submitted", j.ID)
		return waitJob(ctx, c, cl, j.ID, poll)
	}
})

var cmdJobShow = clientCmd(&command{
	name: "job show", args: "ID",
	summary:  "show a training job; --wait follows it to the end",
	examples: []string{"aiaas job show j_01 --wait", "aiaas job show j_01 --output json"},
}, false, func(fs *flag.FlagSet) clientRun {
	var wait bool
	var poll time.Duration
	fs.BoolVar(&wait, "wait", false, "follow the job until it ends (exit 1 if it fails)")
	fs.DurationVar(&poll, "poll", time.Second, "how often --wait asks for the job's state")
	return func(ctx context.Context, c *cli, cl *client.Client, args []string) error {
		if err := nargs(args, 1, "ID"); err != nil {
			return err
		}
		if wait {
			return waitJob(ctx, c, cl, args[0], poll)
		}
		j, err := cl.TrainingJob(ctx, args[0])
		if err != nil {
			return err
		}
		return c.emit(j, func(w io.Writer) { jobText(w, j) })
	}
})

var cmdJobList = clientCmd(&command{
	name: "job list", summary: "list this tenant's training jobs",
	examples: []string{"aiaas job list --output json"},
}, false, noFlags(func(ctx context.Context, c *cli, cl *client.Client, args []string) error {
	if err := nargs(args, 0, "no arguments"); err != nil {
		return err
	}
	js, err := cl.TrainingJobs(ctx)
	if err != nil {
		return err
	}
	return c.emit(map[string]any{"jobs": nonNil(js)}, func(w io.Writer) {
		rows := make([][]string, len(js))
		for i, j := range js {
			res := "-"
			if j.Result != nil {
				res = fmt.Sprintf("version %d, accuracy %.4f", j.Result.Version, j.Result.TestAccuracy)
			}
			rows[i] = []string{j.ID, j.Model, j.Status, fmtTime(j.Created), res}
		}
		table(w, "ID\tMODEL\tSTATUS\tCREATED\tRESULT", rows)
	})
}))

var cmdAuditList = clientCmd(&command{
	name:    "audit list",
	summary: "read this tenant's audit log (hash-chained record of every call)",
	detail: `--since and --until take RFC 3339 times or a duration back from now (1h).
--all follows next_cursor (every chain, merged by time) until the end;
--after pages a server's single chain by sequence number instead.`,
	examples: []string{"aiaas audit list --since 1h", "aiaas audit list --since 2026-11-29T00:00:00Z --limit 100 --output json"},
}, false, func(fs *flag.FlagSet) clientRun {
	var since, until string
	var q client.AuditQuery
	var all bool
	fs.StringVar(&since, "since", "", "RFC 3339 time or duration ago (e.g. 1h)")
	fs.StringVar(&until, "until", "", "RFC 3339 time or duration ago")
	fs.Uint64Var(&q.After, "after", 0, "only records of the server's single chain with seq above this")
	fs.StringVar(&q.Cursor, "cursor", "", "only records after this cursor (next_cursor of a page)")
	fs.IntVar(&q.Limit, "limit", 0, "at most this many records per page (server default if 0)")
	fs.BoolVar(&all, "all", false, "read every page")
	return func(ctx context.Context, c *cli, cl *client.Client, args []string) error {
		if err := nargs(args, 0, "flags only"); err != nil {
			return err
		}
		var err error
		if q.Since, err = parseWhen(since, time.Now()); err != nil {
			return usagef("--since: %v", err)
		}
		if q.Until, err = parseWhen(until, time.Now()); err != nil {
			return usagef("--until: %v", err)
		}
		page, err := cl.Audit(ctx, &q)
		if err != nil {
			return err
		}
		recs := page.Records
		for all && len(page.Records) > 0 {
			if page.NextCursor == "" { // a server's single chain
				if page.NextAfter <= q.After {
					break
				}
				q.After = page.NextAfter
			} else {
				q.Cursor = page.NextCursor
			}
			if page, err = cl.Audit(ctx, &q); err != nil {
				return err
			}
			recs = append(recs, page.Records...)
		}
		return c.emit(client.AuditPage{Records: nonNil(recs), NextAfter: page.NextAfter, NextCursor: page.NextCursor}, func(w io.Writer) {
			rows := make([][]string, len(recs))
			for i, r := range recs {
				rows[i] = []string{orDash(r.Chain), strconv.FormatUint(r.Seq, 10), fmtTime(r.Time), r.Actor, r.Action, orDash(r.Object), strconv.Itoa(r.Status), strconv.FormatFloat(r.LatencyMS, 'f', 1, 64)}
			}
			table(w, "CHAIN\tSEQ\tTIME\tACTOR\tACTION\tOBJECT\tSTATUS\tMS", rows)
		})
	}
})

var cmdAuditVerify = clientCmd(&command{
	name:     "audit verify",
	summary:  "check the audit log's hash chain; exit 1 if it is broken",
	examples: []string{"aiaas audit verify", "aiaas audit verify --output json || alert"},
}, false, noFlags(func(ctx context.Context, c *cli, cl *client.Client, args []string) error {
	if err := nargs(args, 0, "no arguments"); err != nil {
		return err
	}
	v, err := cl.VerifyAudit(ctx)
	if err != nil {
		return err
	}
	if err := c.emit(v, func(w io.Writer) {
		state := "intact"
		if !v.OK {
			state = "BROKEN"
		}
		fmt.Fprintf(w, "audit log %s: %d records in %d segments, %d chain(s)\n", state, v.Records, v.Segments, len(v.Chains))
		if len(v.Chains) > 1 || !v.OK {
			rows := make([][]string, len(v.Chains))
			for i, ch := range v.Chains {
				id, ok := ch.ID, "ok"
				if id == "" {
					id = "(server)"
				}
				if !ch.OK {
					ok = "BROKEN"
				}
				rows[i] = []string{id, strconv.FormatUint(ch.Records, 10), fmtTime(ch.First), fmtTime(ch.Last), ok}
			}
			table(w, "CHAIN\tRECORDS\tFIRST\tLAST\tSTATE", rows)
		}
		for _, p := range v.Problems {
			fmt.Fprintf(w, "  %s\n", p)
		}
	}); err != nil {
		return err
	}
	if !v.OK {
		return &exitError{code: exitFailure, err: fmt.Errorf("audit chain broken: %d problem(s)", len(v.Problems))}
	}
	return nil
}))

// waitJob follows a job, drawing progress, and prints its final state.
func waitJob(ctx context.Context, c *cli, cl *client.Client, id string, poll time.Duration) error {
	var p *trainProgress
	shown := 0
	j, err := cl.WaitTrainingJob(ctx, id, poll, func(j *client.TrainingJob) {
		if c.tty && j.Progress != nil && j.Progress.Batches > 0 {
			if p == nil {
				p = newTrainProgress(c, j.Progress.Epochs)
			}
			pr := j.Progress
			p.update(nn.Progress{Epoch: pr.Epoch, Epochs: pr.Epochs, Batch: pr.Batch, Batches: pr.Batches, Loss: pr.Loss, Accuracy: pr.Accuracy})
			return
		}
		if !c.tty {
			// Plain lines from the finished epochs: polling can miss the
			// last batch of an epoch, the epoch list cannot.
			for ; shown < len(j.Epochs); shown++ {
				e := j.Epochs[shown]
				c.logf("epoch %d: loss %.4f accuracy %.4f (%.1fs)", e.Epoch, e.Loss, e.Accuracy, e.Seconds)
			}
		}
	})
	if p != nil {
		p.done()
	}
	if err != nil {
		return err
	}
	if err := c.emit(j, func(w io.Writer) { jobText(w, j) }); err != nil {
		return err
	}
	if j.Status != client.JobSucceeded {
		msg := j.Error
		if msg == "" {
			msg = j.Status
		}
		return &exitError{code: exitFailure, err: fmt.Errorf("job %s %s: %s", j.ID, j.Status, msg)}
	}
	return nil
}

func jobText(w io.Writer, j *client.TrainingJob) {
	fmt.Fprintf(w, "job %s: %s (model %s)\n", j.ID, j.Status, j.Model)
	if pr := j.Progress; pr != nil && !j.Done() {
		fmt.Fprintf(w, "epoch %d/%d batch %d/%d loss %.4f accuracy %.4f\n", pr.Epoch, pr.Epochs, pr.Batch, pr.Batches, pr.Loss, pr.Accuracy)
	}
	for _, e := range j.Epochs {
		fmt.Fprintf(w, "  epoch %d: loss %.4f accuracy %.4f (%.1fs)\n", e.Epoch, e.Loss, e.Accuracy, e.Seconds)
	}
	if r := j.Result; r != nil {
		fmt.Fprintf(w, "published version %d: test accuracy %.4f, sha256 %s\n", r.Version, r.TestAccuracy, r.SHA256)
	}
	if j.Error != "" {
		fmt.Fprintf(w, "error: %s\n", j.Error)
	}
}

// readInferRequest reads an OIP inference request from a file or stdin.
func readInferRequest(path string) (*client.InferRequest, error) {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, usagef("--file: %v", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxLocalInput+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxLocalInput {
		return nil, usagef("--file: over %d bytes", maxLocalInput)
	}
	var req client.InferRequest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		return nil, usagef("--file %s: not an inference request: %v", path, err)
	}
	if len(req.Inputs) == 0 {
		return nil, usagef("--file %s: no inputs", path)
	}
	return &req, nil
}

// parseTensor reads a flat or nested JSON array of numbers and its shape;
// a flat array of N is one row, shape [1, N].
func parseTensor(s string) ([]float32, []int64, error) {
	var v any
	dec := json.NewDecoder(strings.NewReader(s))
	if err := dec.Decode(&v); err != nil {
		return nil, nil, err
	}
	if dec.More() {
		return nil, nil, errors.New("trailing data after the array")
	}
	t := tensorWalk{leaf: -1}
	if err := t.walk(v, 0); err != nil {
		return nil, nil, err
	}
	n := int64(1)
	for _, d := range t.shape {
		n *= d
	}
	if n != int64(len(t.vals)) {
		return nil, nil, errors.New("ragged array")
	}
	shape := t.shape
	if len(shape) == 1 {
		shape = []int64{1, shape[0]}
	}
	return t.vals, shape, nil
}

// tensorWalk collects a nested array's numbers and checks it is a proper
// tensor: every row of a level the same length, every number at one depth.
type tensorWalk struct {
	shape []int64
	vals  []float32
	leaf  int // depth of the numbers; -1 until the first one
}

func (t *tensorWalk) walk(v any, depth int) error {
	if depth >= 8 {
		return errors.New("nested deeper than 8")
	}
	arr, ok := v.([]any)
	if !ok {
		return errors.New("want a JSON array of numbers")
	}
	if t.leaf >= 0 && depth > t.leaf {
		return errors.New("ragged array")
	}
	if len(t.shape) == depth {
		if len(arr) == 0 {
			return errors.New("empty array")
		}
		t.shape = append(t.shape, int64(len(arr)))
	} else if t.shape[depth] != int64(len(arr)) {
		return fmt.Errorf("ragged array: %d elements where %d were expected", len(arr), t.shape[depth])
	}
	for _, e := range arr {
		switch x := e.(type) {
		case float64:
			if t.leaf < 0 {
				t.leaf = depth
			}
			if t.leaf != depth {
				return errors.New("ragged array")
			}
			t.vals = append(t.vals, float32(x))
		case []any:
			if err := t.walk(x, depth+1); err != nil {
				return err
			}
		default:
			return fmt.Errorf("element %v is not a number", e)
		}
	}
	return nil
}

// withSpec reads a training recipe and lays the flags set on the command
// line (whose values are in flags) over it.
func withSpec(fs *flag.FlagSet, path string, flags client.TrainingRequest) (client.TrainingRequest, error) {
	var r client.TrainingRequest
	b, err := os.ReadFile(path)
	if err != nil {
		return r, usagef("--spec: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, usagef("--spec %s: %v", path, err)
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "model":
			r.Model = flags.Model
		case "dataset":
			r.Dataset = flags.Dataset
		case "layers":
			r.Layers, r.Network = flags.Layers, nil
		case "activation":
			r.Activation = flags.Activation
		case "optimizer":
			r.Optimizer = flags.Optimizer
		case "lr":
			r.LearningRate = flags.LearningRate
		case "batch-size":
			r.BatchSize = flags.BatchSize
		case "epochs":
			r.Epochs = flags.Epochs
		case "seed":
			r.Seed = flags.Seed
		case "validation-split":
			r.ValidationSplit = flags.ValidationSplit
		}
	})
	return r, nil
}

func parseLayers(s string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive width", p)
		}
		out = append(out, n)
	}
	return out, nil
}

// parseWhen reads an RFC 3339 time or a duration before now; "" is zero.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration like 1h", s)
	}
	return now.Add(-d), nil
}
