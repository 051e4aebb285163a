// Package textreq reads the text requests of the tokenizer plugins: a
// plain UTF-8 body, or JSON in the style of Hugging Face's inference API,
//
//	{"inputs": "one text"}  {"input": "one text"}  {"inputs": ["a", "b"]}
//	{"inputs": [...], "text_pair": [...], "parameters": {"max_length": 64}}
//
// with parameters in the JSON or in the content type
// ("text/plain; max_length=64; padding=max_length"): preprocess plugins
// receive no query parameters, only the body and its content type.
package textreq

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxBatch bounds the texts of one request.
const MaxBatch = 256

// Request is a parsed request.
type Request struct {
	Texts  []string
	Pairs  []string // nil, or one per text
	Params map[string]string
}

// Parse reads body as JSON if the content type says so, else as one text.
func Parse(contentType string, body []byte) (*Request, error) {
	r := &Request{Params: map[string]string{}}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil && contentType != "" {
		return nil, fmt.Errorf("content type %q: %v", contentType, err)
	}
	for k, v := range params {
		if k != "charset" {
			r.Params[k] = v
		}
	}
	if cs := strings.ToLower(params["charset"]); cs != "" && cs != "utf-8" && cs != "utf8" && cs != "us-ascii" {
		return nil, fmt.Errorf("charset %q: send UTF-8", cs)
	}
	if mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		if !utf8.Valid(body) {
			return nil, errors.New("the body is not UTF-8 text")
		}
		r.Texts = []string{string(body)}
		return r, nil
	}
	var in struct {
		Inputs     json.RawMessage            `json:"inputs"`
		Input      json.RawMessage            `json:"input"`
		TextPair   json.RawMessage            `json:"text_pair"`
		Parameters map[string]json.RawMessage `json:"parameters"`
	}
	d := json.NewDecoder(bytes.NewReader(body))
	if err := d.Decode(&in); err != nil {
		return nil, fmt.Errorf("JSON body: %v", err)
	}
	raw := in.Inputs
	if raw == nil {
		raw = in.Input
	}
	if raw == nil {
		return nil, errors.New(`JSON body: want {"inputs": "text"} or {"inputs": ["text", …]}`)
	}
	if r.Texts, err = strs(raw, "inputs"); err != nil {
		return nil, err
	}
	if in.TextPair != nil {
		if r.Pairs, err = strs(in.TextPair, "text_pair"); err != nil {
			return nil, err
		}
		if len(r.Pairs) != len(r.Texts) {
			return nil, fmt.Errorf("%d texts and %d text_pair", len(r.Texts), len(r.Pairs))
		}
	}
	for k, v := range in.Parameters {
		var s string
		if json.Unmarshal(v, &s) != nil {
			s = string(bytes.TrimSpace(v)) // a number or a boolean, as written
		}
		r.Params[k] = s
	}
	return r, nil
}

func strs(raw json.RawMessage, field string) ([]string, error) {
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, fmt.Errorf("JSON body: %s must be a string or an array of strings", field)
	}
	if len(many) == 0 || len(many) > MaxBatch {
		return nil, fmt.Errorf("JSON body: %s has %d texts; want 1 to %d", field, len(many), MaxBatch)
	}
	return many, nil
}

// Int returns parameter name as an integer in [lo, hi], or def if absent.
func (r *Request) Int(name string, def, lo, hi int) (int, error) {
	s, ok := r.Params[name]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("parameter %s=%q: want an integer in %d..%d", name, s, lo, hi)
	}
	return n, nil
}

// Bool returns parameter name as a boolean, or def if absent.
func (r *Request) Bool(name string, def bool) (bool, error) {
	s, ok := r.Params[name]
	if !ok {
		return def, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("parameter %s=%q: want true or false", name, s)
	}
	return b, nil
}

// Choice returns parameter name, one of choices (the first is the
// default).
func (r *Request) Choice(name string, choices ...string) (string, error) {
	s, ok := r.Params[name]
	if !ok {
		return choices[0], nil
	}
	for _, c := range choices {
		if strings.EqualFold(s, c) {
			return c, nil
		}
	}
	return "", fmt.Errorf("parameter %s=%q: want one of %s", name, s, strings.Join(choices, ", "))
}
