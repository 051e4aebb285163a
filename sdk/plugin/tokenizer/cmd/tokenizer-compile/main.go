// Command tokenizer-compile turns a tokenizer's files into the binary form
// that tokenizer.LoadBinary reads in milliseconds, for a plugin to embed
// (parsing tokenizer.json inside the sandbox takes hundreds of
// milliseconds per instance):
//
//	tokenizer-compile -o tokenizer.bin tokenizer.json
//	tokenizer-compile -o gpt2.bin encoder.json vocab.bpe
//
// It loads the files with the same package, so what it accepts is what
// tokenizer.Load and tokenizer.LoadGPT2 accept, and it checks that the
// binary form loads back. The output is written only if it changed.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"

	"github.com/aiaas/aiaas/sdk/plugin/tokenizer"
)

func main() {
	out := flag.String("o", "", "output file (required)")
	flag.Parse()
	if err := run(*out, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "tokenizer-compile:", err)
		os.Exit(1)
	}
}

func run(out string, args []string) error {
	if out == "" || len(args) < 1 || len(args) > 2 {
		return fmt.Errorf("usage: tokenizer-compile -o OUT tokenizer.json | encoder.json vocab.bpe")
	}
	var files [][]byte
	for _, a := range args {
		b, err := os.ReadFile(a)
		if err != nil {
			return err
		}
		files = append(files, b)
	}
	var tok *tokenizer.Tokenizer
	var err error
	if len(files) == 1 {
		tok, err = tokenizer.Load(files[0])
	} else {
		tok, err = tokenizer.LoadGPT2(files[0], files[1])
	}
	if err != nil {
		return err
	}
	bin, err := tok.MarshalBinary()
	if err != nil {
		return err
	}
	if _, err := tokenizer.LoadBinary(bin); err != nil {
		return fmt.Errorf("the binary form does not load back: %v", err)
	}
	if old, err := os.ReadFile(out); err == nil && bytes.Equal(old, bin) {
		return nil
	}
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, bin, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}
