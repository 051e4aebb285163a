package main

// Control-plane client commands: tenants, keys, models, plugins, datasets,
// endpoints.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/aiaas/aiaas/sdk/client"
)

// clientRun runs a client command with a connected client.
type clientRun func(ctx context.Context, c *cli, cl *client.Client, args []string) error

// noFlags is the setup of a command without flags of its own.
func noFlags(run clientRun) func(*flag.FlagSet) clientRun {
	return func(*flag.FlagSet) clientRun { return run }
}

// clientCmd makes c a client command whose run gets a connected client.
func clientCmd(c *command, admin bool, setup func(fs *flag.FlagSet) clientRun) *command {
	c.setup = func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		cn := addConn(fs, admin)
		run := setup(fs)
		return func(ctx context.Context, io *cli, args []string) error {
			cl, err := cn.client(io)
			if err != nil {
				return err
			}
			return apiErr(run(ctx, io, cl, args))
		}
	}
	return c
}

func nargs(args []string, n int, synopsis string) error {
	if len(args) != n {
		return usagef("want %s, got %d argument(s)", synopsis, len(args))
	}
	return nil
}

var cmdTenantCreate = clientCmd(&command{
	name: "tenant create", args: "NAME",
	summary:  "create a tenant and print its first API key (operator only)",
	detail:   "Uses the operator's key from AIAAS_ADMIN_KEY or --admin-key. The tenant's key (scope manage) is printed once: store it.",
	examples: []string{"AIAAS_ADMIN_KEY=… aiaas tenant create acme", "aiaas tenant create acme --admin-key $ADMIN --output json"},
}, true, noFlags(func(ctx context.Context, c *cli, cl *client.Client, args []string) error {
	if err := nargs(args, 1, "NAME"); err != nil {
		return err
	}
	t, err := cl.CreateTenant(ctx, args[0])
	if err != nil {
		return err
	}
	return c.emit(t, func(w io.Writer) {
		fmt.Fprintf(w, "tenant %s (%s) created\nAPI key (shown once): %s\nexport AIAAS_KEY=%s\n", t.Name, t.ID, t.APIKey, t.APIKey)
	})
}))

var cmdTenantList = clientCmd(&command{
	name: "tenant list", summary: "list tenants (operator only)",
	examples: []string{"aiaas tenant list --output json"},
}, true, noFlags(func(ctx context.Context, c *cli, cl *client.Client, args []string) error {
	if err := nargs(args, 0, "no arguments"); err != nil {
		return err
	}
	ts, err := cl.Tenants(ctx)
	if err != nil {
		return err
	}
	return c.emit(map[string]any{"tenants": nonNil(ts)}, func(w io.Writer) {
		rows := make([][]string, len(ts))
		for i, t := range ts {
			rows[i] = []string{t.ID, t.Name, fmtTime(t.Created)}
		}
		table(w, "ID\tNAME\tCREATED", rows)
	})
}))

var cmdKeyCreate = clientCmd(&command{
	name: "key create", args: "NAME",
	summary:  "create an API key for this tenant (printed once)",
	detail:   "Scope invoke may only call models and endpoints; manage may do everything in the tenant.",
	examples: []string{"aiaas key create ci --scope invoke", "aiaas key create deploy --scope manage --output json"},
}, false, func(fs *flag.FlagSet) clientRun {
	var scope string
	fs.StringVar(&scope, "scope", client.ScopeInvoke, "invoke or manage")
	return func(ctx context.Context, c *cli, cl *client.Client, args []string) error {
		if err := nargs(args, 1, "NAME"); err != nil {
			return err
		}
		if scope != client.ScopeInvoke && scope != client.ScopeManage {
			return usagef("--scope must be invoke or manage, not %q", scope)
		}
		k, err := cl.CreateKey(ctx, args[0], scope)
		if err != nil {
			return err
		}
		return c.emit(k, func(w io.Writer) {
			fmt.Fprintf(w, "key %s (%s, scope %s) created\nAPI key (shown once): %s\n", k.Name, k.ID, k.Scope, k.APIKey)
		})
	}
})

var cmdKeyList = clientCmd(&command{
	name: "key list", summary: "list this tenant's API keys (revoked ones included)",
	examples: []string{"aiaas key list", "aiaas key list --output json"},
}, false, noFlags(func(ctx context.Context, c *cli, cl *client.Client, args []string) error {
	if err := nargs(args, 0, "no arguments"); err != nil {
		return err
	}
	ks, err := cl.Keys(ctx)
	if err != nil {
		return err
	}
	return c.emit(map[string]any{"keys": nonNil(ks)}, func(w io.Writer) {
		rows := make([][]string, len(ks))
		for i, k := range ks {
			rev := "-"
			if k.Revoked != nil {
				rev = fmtTime(*k.Revoked)
			}
			rows[i] = []string{k.ID, k.Name, k.Scope, fmtTime(k.Created), rev}
		}
		table(w, "ID\tNAME\tSCOPE\tCREATED\tREVOKED", rows)
	})
}))

var cmdKeyRevoke = clientCmd(&command{
	name: "key revoke", args: "ID",
	summary:  "revoke an API key; requests with it then fail with 401",
	examples: []string{"aiaas key revoke k_3f2a"},
}, false, noFlags(func(ctx context.Context, c *cli, cl *client.Client, args []string) error {
	if err := nargs(args, 1, "ID"); err != nil {
		return err
	}
	if err := cl.RevokeKey(ctx, args[0]); err != nil {
		return err
	}
	return c.emit(map[string]any{"id": args[0], "revoked": true}, func(w io.Writer) { fmt.Fprintf(w, "key %s revoked\n", args[0]) })
}))

var cmdModelPush = clientCmd(&command{
	name: "model push", args: "NAME FILE",
	summary: "upload a model (safetensors artifact or ONNX file) as the model's next version",
	detail: `FILE is an artifact written by 'aiaas train', or an ONNX model exported by
PyTorch, tf2onnx or paddle2onnx, which the server converts (docs/models.md);
"-" reads a regular file from standard input. Versions are immutable and
numbered 1, 2, 3…; point an alias at one with 'aiaas model alias'. A
progress bar is drawn on a terminal.

A file over 5 MiB goes as a staged upload (--staged auto): the server
answers with signed URLs, the parts go straight to the store (S3 on
Lambda, where one request carries at most 6 MiB), and a commit verifies
their size and sha256 and publishes the version (docs/api.md, "Large
uploads").`,
	examples: []string{"aiaas model push mnist mnist.safetensors", "aiaas model push resnet resnet18.onnx --output json",
		"aiaas model push llm big.safetensors --staged always"},
}, false, func(fs *flag.FlagSet) clientRun {
	staged := stagedFlag(fs)
	return func(ctx context.Context, c *cli, cl *client.Client, args []string) error {
		if err := nargs(args, 2, "NAME FILE"); err != nil {
			return err
		}
		f, size, err := openUpload(c, args[1])
		if err != nil {
			return err
		}
		defer f.Close()
		useStaged, err := staged.use(size)
		if err != nil {
			return err
		}
		progress, done := uploadProgress(c, "uploading "+args[1], size)
		var pm *client.PushedModel
		if useStaged {
			pm, err = cl.UploadModel(ctx, args[0], f, size, &client.UploadOptions{Progress: progress})
		} else {
			pm, err = cl.PushModel(ctx, args[0], f, size, progress)
		}
		done()
		if err != nil {
			return err
		}
		return c.emit(pm, func(w io.Writer) {
			fmt.Fprintf(w, "model %s version %d published (%d bytes, sha256 %s)\n", pm.Model, pm.Version, pm.Size, pm.SHA256)
		})
	}
})

var cmdModelList = clientCmd(&command{
	name: "model list", summary: "list this tenant's models, their latest version and aliases",
	examples: []string{"aiaas model list", "aiaas model list --output json"},
}, false, noFlags(func(ctx context.Context, c *cli, cl *client.Client, args []string) error {
	if err := nargs(args, 0, "no arguments"); err != nil {
		return err
	}
	ms, err := cl.Models(ctx)
	if err != nil {
		return err
	}
	return c.emit(map[string]any{"models": nonNil(ms)}, func(w io.Writer) {
		rows := make([][]string, len(ms))
		for i, m := range ms {
			rows[i] = []string{m.Name, strconv.Itoa(m.Latest), strconv.Itoa(m.Versions), aliasesText(m.Aliases)}
		}
		table(w, "NAME\tLATEST\tVERSIONS\tALIASES", rows)
	})
}))

var cmdModelShow = clientCmd(&command{
	name: "model show", args: "NAME",
	summary:  "show a model's versions (sha256, metrics, latency) and aliases",
	examples: []string{"aiaas model show mnist", "aiaas model show mnist --output json | jq '.versions[-1].metrics'"},
}, false, noFlags(func(ctx context.Context, c *cli, cl *client.Client, args []string) error {
	if err := nargs(args, 1, "NAME"); err != nil {
		return err
	}
	m, err := cl.Model(ctx, args[0])
	if err != nil {
		return err
	}
	return c.emit(m, func(w io.Writer) {
		fmt.Fprintf(w, "model %s\naliases: %s\n\n", m.Name, aliasesText(m.Aliases))
		rows := make([][]string, len(m.Versions))
		for i, v := range m.Versions {
			acc := "-"
			if a, ok := v.Metrics["test_accuracy"].(float64); ok {
				acc = strconv.FormatFloat(a, 'f', 4, 64)
			}
			lat := "-"
			if v.Latency != nil && len(v.Latency.Batches) > 0 {
				b := v.Latency.Batches[0]
				lat = fmt.Sprintf("batch %d: %.1fµs", b.Batch, float64(b.MedianNS)/1e3)
			}
			sha := v.SHA256
			if len(sha) > 12 {
				sha = sha[:12]
			}
			rows[i] = []string{strconv.Itoa(v.Version), sha, strconv.FormatInt(v.Size, 10), acc, lat, fmtTime(v.Created)}
		}
		table(w, "VERSION\tSHA256\tSIZE\tTEST_ACC\tLATENCY\tCREATED", rows)
	})
}))

var cmdModelAlias = clientCmd(&command{
	name: "model alias", args: "NAME ALIAS VERSION",
	summary: "point an alias (e.g. prod) at a version, optionally with a canary",
	detail: `With --canary V --weight W, W percent of the alias's requests go to version V.
--evaluation ID cites a succeeded evaluation that compared VERSION (see
'aiaas evaluate') as the move's justification, kept in the audit record.`,
	examples: []string{"aiaas model alias mnist prod 2",
		"aiaas model alias mnist prod 2 --canary 3 --weight 10",
		"aiaas model alias mnist-cnn prod 3 --evaluation e0123456789abcdef"},
}, false, func(fs *flag.FlagSet) clientRun {
	var canary, weight int
	var evaluation string
	fs.IntVar(&canary, "canary", 0, "canary version")
	fs.IntVar(&weight, "weight", 0, "percent of requests sent to the canary (1..100)")
	fs.StringVar(&evaluation, "evaluation", "", "id of the evaluation that justifies the move (recorded in the audit log)")
	return func(ctx context.Context, c *cli, cl *client.Client, args []string) error {
		if err := nargs(args, 3, "NAME ALIAS VERSION"); err != nil {
			return err
		}
		v, err := strconv.Atoi(args[2])
		if err != nil || v < 1 {
			return usagef("VERSION must be a version number, not %q", args[2])
		}
		if (canary == 0) != (weight == 0) || weight < 0 || weight > 100 {
			return usagef("--canary and --weight go together; --weight is 1..100")
		}
		r, err := cl.SetAlias(ctx, args[0], args[1], client.Alias{Version: v, CanaryVersion: canary, CanaryWeight: weight, Evaluation: evaluation})
		if err != nil {
			return err
		}
		return c.emit(r, func(w io.Writer) {
			fmt.Fprintf(w, "%s/%s -> version %d", r.Model, r.Alias, r.Version)
			if r.CanaryWeight > 0 {
				fmt.Fprintf(w, " (canary version %d at %d%%)", r.CanaryVersion, r.CanaryWeight)
			}
			if r.Evaluation != "" {
				fmt.Fprintf(w, ", justified by evaluation %s", r.Evaluation)
			}
			fmt.Fprintln(w)
		})
	}
})

var cmdPluginPush = clientCmd(&command{
	name: "plugin push", args: "NAME FILE.wasm",
	summary: "upload a WebAssembly plugin (pre- or postprocessing for endpoints)",
	detail:  "The server validates the module (imports, exports, ABI version) and refuses an invalid one with the reason.",
	examples: []string{"aiaas plugin push png-to-tensor png_to_tensor.wasm",
		"aiaas plugin push top-k top_k.wasm --output json"},
}, false, noFlags(func(ctx context.Context, c *cli, cl *client.Client, args []string) error {
	if err := nargs(args, 2, "NAME FILE.wasm"); err != nil {
		return err
	}
	f, size, err := openUpload(c, args[1])
	if err != nil {
		return err
	}
	defer f.Close()
	progress, done := uploadProgress(c, "uploading "+args[1], size)
	p, err := cl.PushPlugin(ctx, args[0], f, size, progress)
	done()
	if err != nil {
		return err
	}
	return c.emit(p, func(w io.Writer) {
		fmt.Fprintf(w, "plugin %s stored (%d bytes, ABI %d, exports %s)\n", p.Name, p.Size, p.ABIVersion, strings.Join(p.Exports, ", "))
	})
}))

var cmdPluginList = clientCmd(&command{
	name: "plugin list", summary: "list this tenant's plugins",
	examples: []string{"aiaas plugin list --output json"},
}, false, noFlags(func(ctx context.Context, c *cli, cl *client.Client, args []string) error {
	if err := nargs(args, 0, "no arguments"); err != nil {
		return err
	}
	ps, err := cl.Plugins(ctx)
	if err != nil {
		return err
	}
	return c.emit(map[string]any{"plugins": nonNil(ps)}, func(w io.Writer) {
		rows := make([][]string, len(ps))
		for i, p := range ps {
			rows[i] = []string{p.Name, strconv.FormatInt(p.Size, 10), strconv.Itoa(p.ABIVersion), strings.Join(p.Exports, ","), fmtTime(p.Created)}
		}
		table(w, "NAME\tSIZE\tABI\tEXPORTS\tCREATED", rows)
	})
}))

var cmdDatasetPush = clientCmd(&command{
	name: "dataset push", args: "NAME FILE",
	summary: "upload a CSV training set (features…, label; gzip allowed) for 'aiaas job submit'",
	detail: `A file over 5 MiB goes as a staged upload (--staged auto), as 'aiaas model
push' does.`,
	examples: []string{"aiaas dataset push iris iris.csv", "aiaas job submit --model iris --dataset iris --wait"},
}, false, func(fs *flag.FlagSet) clientRun {
	staged := stagedFlag(fs)
	return func(ctx context.Context, c *cli, cl *client.Client, args []string) error {
		if err := nargs(args, 2, "NAME FILE"); err != nil {
			return err
		}
		f, size, err := openUpload(c, args[1])
		if err != nil {
			return err
		}
		defer f.Close()
		useStaged, err := staged.use(size)
		if err != nil {
			return err
		}
		progress, done := uploadProgress(c, "uploading "+args[1], size)
		var d *client.Dataset
		if useStaged {
			d, err = cl.UploadDataset(ctx, args[0], f, size, &client.UploadOptions{Progress: progress})
		} else {
			d, err = cl.PutDataset(ctx, args[0], f, size, progress)
		}
		done()
		if err != nil {
			return err
		}
		return c.emit(d, func(w io.Writer) {
			fmt.Fprintf(w, "dataset %s stored (%d bytes, sha256 %s)\n", d.Name, d.Size, d.SHA256)
		})
	}
})

var cmdEndpointCreate = clientCmd(&command{
	name: "endpoint create", args: "NAME",
	summary: "bind a model version and optional plugins into an endpoint (create or update)",
	detail: `--version is a number, an alias (prod), or empty for the latest version.
Call the endpoint with 'aiaas invoke NAME FILE'.`,
	examples: []string{"aiaas endpoint create digits --model mnist --version prod --preprocess png-to-tensor --postprocess top-k",
		"aiaas endpoint create raw --model mnist --output json",
		"aiaas endpoint create minilm --model minilm --preprocess wordpiece --postprocess pool --forward-inputs attention_mask",
		"aiaas endpoint create gpt2 --model gpt2 --preprocess bpe --postprocess bpe --eos 50256 --max-context 1024"},
}, false, func(fs *flag.FlagSet) clientRun {
	var ep client.Endpoint
	fs.StringVar(&ep.Model, "model", "", "model name (required)")
	fs.StringVar(&ep.Version, "version", "", "version number or alias; empty = latest")
	fs.StringVar(&ep.Preprocess, "preprocess", "", "plugin turning the request body into the model's input")
	fs.StringVar(&ep.Postprocess, "postprocess", "", "plugin turning the model's output into the response body")
	forward := fs.String("forward-inputs", "", "preprocess tensors passed on to the postprocess plugin, comma separated")
	eos := fs.String("eos", "", "text generation: token ids that end a generation, comma separated")
	maxTokens := fs.Int("max-tokens", 0, "text generation: default max_tokens of a request")
	maxContext := fs.Int("max-context", 0, "text generation: prompt plus generated tokens at most")
	return func(ctx context.Context, c *cli, cl *client.Client, args []string) error {
		if err := nargs(args, 1, "NAME"); err != nil {
			return err
		}
		if ep.Model == "" {
			return usagef("--model is required")
		}
		if *forward != "" {
			ep.ForwardInputs = strings.Split(*forward, ",")
		}
		if *eos != "" || *maxTokens > 0 || *maxContext > 0 {
			ep.Generation = &client.GenerationConfig{MaxTokens: *maxTokens, MaxContext: *maxContext}
			for _, f := range strings.Split(*eos, ",") {
				if f = strings.TrimSpace(f); f == "" {
					continue
				}
				id, err := strconv.ParseInt(f, 10, 64)
				if err != nil {
					return usagef("--eos: want token ids like 50256, got %q", f)
				}
				ep.Generation.EOS = append(ep.Generation.EOS, id)
			}
		}
		e, created, err := cl.PutEndpoint(ctx, args[0], &ep)
		if err != nil {
			return err
		}
		return c.emit(e, func(w io.Writer) {
			verb := "updated"
			if created {
				verb = "created"
			}
			fmt.Fprintf(w, "endpoint %s %s: %s\n", e.Name, verb, endpointText(e))
		})
	}
})

var cmdEndpointList = clientCmd(&command{
	name: "endpoint list", summary: "list this tenant's endpoints",
	examples: []string{"aiaas endpoint list", "aiaas endpoint list --output json"},
}, false, noFlags(func(ctx context.Context, c *cli, cl *client.Client, args []string) error {
	if err := nargs(args, 0, "no arguments"); err != nil {
		return err
	}
	es, err := cl.Endpoints(ctx)
	if err != nil {
		return err
	}
	return c.emit(map[string]any{"endpoints": nonNil(es)}, func(w io.Writer) {
		rows := make([][]string, len(es))
		for i, e := range es {
			rows[i] = []string{e.Name, e.Model, orDash(e.Version), orDash(e.Preprocess), orDash(e.Postprocess)}
		}
		table(w, "NAME\tMODEL\tVERSION\tPREPROCESS\tPOSTPROCESS", rows)
	})
}))

var cmdEndpointDelete = clientCmd(&command{
	name: "endpoint delete", args: "NAME", summary: "delete an endpoint",
	examples: []string{"aiaas endpoint delete digits"},
}, false, noFlags(func(ctx context.Context, c *cli, cl *client.Client, args []string) error {
	if err := nargs(args, 1, "NAME"); err != nil {
		return err
	}
	if err := cl.DeleteEndpoint(ctx, args[0]); err != nil {
		return err
	}
	return c.emit(map[string]any{"name": args[0], "deleted": true}, func(w io.Writer) { fmt.Fprintf(w, "endpoint %s deleted\n", args[0]) })
}))

func endpointText(e *client.Endpoint) string {
	s := e.Model + "@" + orDash(e.Version)
	if e.Preprocess != "" {
		s = e.Preprocess + " -> " + s
	}
	if e.Postprocess != "" {
		s += " -> " + e.Postprocess
	}
	return s
}

func aliasesText(as map[string]client.Alias) string {
	if len(as) == 0 {
		return "-"
	}
	names := make([]string, 0, len(as))
	for n := range as {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		a := as[n]
		parts[i] = fmt.Sprintf("%s=%d", n, a.Version)
		if a.CanaryWeight > 0 {
			parts[i] += fmt.Sprintf("(canary %d@%d%%)", a.CanaryVersion, a.CanaryWeight)
		}
	}
	return strings.Join(parts, " ")
}

// nonNil makes an empty list print as [] rather than null in JSON.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
