package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/aiaas/aiaas/sdk/client"
)

// stringList collects a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

var cmdEmbed = clientCmd(&command{
	name: "embed", args: "ENDPOINT TEXT...",
	summary: "embed texts with an embedding endpoint (tokenizer, encoder, pooling)",
	detail: `Sends the texts to POST /openai/v1/embeddings with the endpoint as the
model and prints one vector per text: its dimension and first values on a
terminal, the whole answer with --output json.`,
	examples: []string{`aiaas embed minilm "The cat sat on the mat." "A feline rested on the rug."`,
		`aiaas embed minilm "hello" --output json | jq '.data[0].embedding | length'`},
}, false, noFlags(func(ctx context.Context, c *cli, cl *client.Client, args []string) error {
	if len(args) < 2 {
		return usagef("want ENDPOINT TEXT...")
	}
	emb, err := cl.Embed(ctx, args[0], args[1:])
	if err != nil {
		return err
	}
	return c.emit(emb, func(w io.Writer) {
		for _, d := range emb.Data {
			head := d.Embedding[:min(4, len(d.Embedding))]
			fmt.Fprintf(w, "%d\t%d dims\t%v…\t%s\n", d.Index, len(d.Embedding), head, truncateText(args[1+d.Index], 40))
		}
		fmt.Fprintf(w, "%d tokens\n", emb.Usage.PromptTokens)
	})
}))

var cmdGenerate = clientCmd(&command{
	name: "generate", args: "ENDPOINT PROMPT",
	summary: "generate text with a generation endpoint (tokenizer, decoder, detokenizer)",
	detail: `Sends PROMPT to POST /v2/models/ENDPOINT/generate (Triton's generate
extension) and prints the generated text; --stream prints it as it comes
(generate_stream, server-sent events). Decoding is greedy unless
--temperature is given; --seed makes sampling repeatable.`,
	examples: []string{`aiaas generate gpt2 "Once upon a time" --max-tokens 32`,
		`aiaas generate gpt2 "The answer is" --stream --temperature 0.8 --top-p 0.95 --seed 7`,
		`aiaas generate gpt2 "Q: why? A:" --stop "\n" --output json`},
}, false, func(fs *flag.FlagSet) clientRun {
	maxTokens := fs.Int("max-tokens", 0, "tokens to generate (default: the endpoint's, else 16)")
	tempS := fs.String("temperature", "", "sampling temperature, 0–2 (default: greedy)")
	topK := fs.Int("top-k", 0, "sample among the k most likely tokens (0: all)")
	topP := fs.Float64("top-p", 0, "sample among the most likely tokens up to this probability (0: all)")
	seedS := fs.String("seed", "", "sampling seed (default 0)")
	stream := fs.Bool("stream", false, "print the text as it is generated")
	var stop stringList
	fs.Var(&stop, "stop", "stop before this text (repeatable, up to 4)")
	return func(ctx context.Context, c *cli, cl *client.Client, args []string) error {
		if len(args) != 2 {
			return usagef("want ENDPOINT PROMPT")
		}
		req := &client.GenerateRequest{TextInput: args[1], Stop: stop}
		if *maxTokens > 0 {
			req.MaxTokens = maxTokens
		}
		if *tempS != "" {
			v, err := strconv.ParseFloat(*tempS, 64)
			if err != nil {
				return usagef("--temperature: want a number, got %q", *tempS)
			}
			req.Temperature = &v
		}
		if *topK > 0 {
			req.TopK = topK
		}
		if *topP > 0 {
			req.TopP = topP
		}
		if *seedS != "" {
			v, err := strconv.ParseInt(*seedS, 10, 64)
			if err != nil {
				return usagef("--seed: want an integer, got %q", *seedS)
			}
			req.Seed = &v
		}
		if *stream && !c.json {
			finish, err := cl.GenerateStream(ctx, args[0], req, func(s string) error {
				_, err := io.WriteString(c.stdout, s)
				return err
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(c.stdout)
			c.logf("finish: %s", finish)
			return nil
		}
		g, err := cl.Generate(ctx, args[0], req)
		if err != nil {
			return err
		}
		return c.emit(g, func(w io.Writer) { fmt.Fprintln(w, g.TextOutput) })
	}
})

func truncateText(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}
