// Package generate runs decoder language models: graphs exported with a
// key/value cache (past_key_values inputs, present outputs), one token at
// a time.
//
// # Overview
//
//	lm, err := generate.New(m)                      // m: a *graph.Model from an artifact
//	res, err := lm.Generate(ctx, prompt, &generate.Options{MaxTokens: 32, Temperature: 0.8, TopP: 0.95, Seed: 1},
//		func(t generate.Token) error { fmt.Println(t.ID); return nil })
//
// New recognises the inputs and outputs exporters give such graphs
// (Hugging Face's and optimum's naming): input_ids, an optional
// attention_mask and position_ids, past_key_values.{i}.key and .value (or
// past.{i}, past_key_values.{i}) shaped [batch, heads, past, head_dim],
// the logits output [batch, sequence, vocabulary] and present.{i}.key and
// .value. Generate runs the prompt once (prefill, with an empty cache),
// then one token per step, feeding each step's present tensors back as the
// next step's past: the cache lives in buffers allocated once for the
// longest context the request may reach, so a step allocates nothing but
// what the graph runtime plans for a new length.
//
// Tokens are chosen greedily (Temperature 0) or sampled from the softmax
// at a temperature, restricted to the TopK most likely and to the
// smallest set whose probability reaches TopP, from a generator seeded by
// Seed (the same seed, prompt and options give the same tokens). A
// generation stops at MaxTokens, at an end-of-sequence id, at a stop
// sequence of ids, at the context limit, when ctx is cancelled (the client
// went away) or when emit returns an error.
//
// A Model is immutable and safe for concurrent use; each Generate call
// has its own cache.
package generate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"slices"
	"sort"
	"strconv"

	"github.com/aiaas/aiaas/nn"
	"github.com/aiaas/aiaas/nn/graph"
)

// ErrNotDecoder reports a graph without the inputs and outputs of a
// decoder with a key/value cache. It wraps graph.ErrUnsupported.
var ErrNotDecoder = fmt.Errorf("%w: not a decoder with a key/value cache", graph.ErrUnsupported)

// Model is a decoder language model.
type Model struct {
	g         *graph.Model
	idsIn     int // graph input indices; -1 when absent
	maskIn    int
	posIn     int
	past      []int // graph input index of each cache tensor, in layer order (key, value, key, …)
	present   []int // the output index that feeds each past input
	logitsOut int
	heads     []int // per cache tensor: heads and head size
	headDim   []int
	vocab     int
	numIn     int
}

var (
	pastRE    = regexp.MustCompile(`^past(?:_key_values)?[._](\d+)(?:[._](key|value))?$`)
	presentRE = regexp.MustCompile(`^present(?:_key_values)?[._](\d+)(?:[._](key|value))?$`)
)

// New recognises a decoder graph (see the package documentation).
// Errors wrap ErrNotDecoder and say what is missing.
func New(m *graph.Model) (*Model, error) {
	lm := &Model{g: m, idsIn: -1, maskIn: -1, posIn: -1, logitsOut: -1}
	ins, outs := m.Inputs(), m.Outputs()
	lm.numIn = len(ins)
	type slot struct{ layer, kv int }
	pastAt := map[slot]int{}
	for i, v := range ins {
		switch {
		case v.Name == "input_ids":
			lm.idsIn = i
		case v.Name == "attention_mask":
			lm.maskIn = i
		case v.Name == "position_ids":
			lm.posIn = i
		default:
			mm := pastRE.FindStringSubmatch(v.Name)
			if mm == nil {
				return nil, fmt.Errorf("%w: unknown input %q (a decoder takes input_ids, attention_mask, position_ids and past_key_values.N.key/value)", ErrNotDecoder, v.Name)
			}
			layer, _ := strconv.Atoi(mm[1])
			kv := 0
			if mm[2] == "value" {
				kv = 1
			}
			if v.DType != graph.Float32 || len(v.Shape) != 4 || v.Shape[1] < 1 || v.Shape[3] < 1 {
				return nil, fmt.Errorf("%w: cache input %q is %v %v, want FP32 [batch, heads, past, head_dim]", ErrNotDecoder, v.Name, v.DType, v.Shape)
			}
			pastAt[slot{layer, kv}] = i
		}
	}
	if lm.idsIn < 0 {
		return nil, fmt.Errorf("%w: no input_ids input", ErrNotDecoder)
	}
	if len(pastAt) == 0 {
		return nil, fmt.Errorf("%w: no past_key_values inputs", ErrNotDecoder)
	}
	presentAt := map[slot]int{}
	for i, v := range outs {
		if v.Name == "logits" {
			lm.logitsOut = i
			continue
		}
		if mm := presentRE.FindStringSubmatch(v.Name); mm != nil {
			layer, _ := strconv.Atoi(mm[1])
			kv := 0
			if mm[2] == "value" {
				kv = 1
			}
			presentAt[slot{layer, kv}] = i
		}
	}
	if lm.logitsOut < 0 {
		return nil, fmt.Errorf("%w: no logits output", ErrNotDecoder)
	}
	slots := make([]slot, 0, len(pastAt))
	for s := range pastAt {
		slots = append(slots, s)
	}
	sort.Slice(slots, func(i, j int) bool {
		if slots[i].layer != slots[j].layer {
			return slots[i].layer < slots[j].layer
		}
		return slots[i].kv < slots[j].kv
	})
	for _, s := range slots {
		o, ok := presentAt[s]
		if !ok {
			return nil, fmt.Errorf("%w: input %q has no present output", ErrNotDecoder, ins[pastAt[s]].Name)
		}
		in := ins[pastAt[s]]
		lm.past = append(lm.past, pastAt[s])
		lm.present = append(lm.present, o)
		lm.heads = append(lm.heads, int(in.Shape[1]))
		lm.headDim = append(lm.headDim, int(in.Shape[3]))
	}
	if len(presentAt) != len(pastAt) {
		return nil, fmt.Errorf("%w: %d past inputs but %d present outputs", ErrNotDecoder, len(pastAt), len(presentAt))
	}
	if sh := outs[lm.logitsOut].Shape; len(sh) == 3 && sh[2] > 0 {
		lm.vocab = int(sh[2])
	}
	return lm, nil
}

// Layers returns the number of cache tensors (two per layer).
func (m *Model) Layers() int { return len(m.past) / 2 }

// Options configure one generation. The zero value is greedy decoding of
// up to DefaultMaxTokens tokens.
type Options struct {
	// MaxTokens bounds the tokens generated (default DefaultMaxTokens).
	MaxTokens int
	// MaxContext bounds prompt plus generated tokens (0: no bound but the
	// model's own, which shows as an error from the graph).
	MaxContext int
	// Temperature 0 is greedy decoding; otherwise logits are divided by it
	// before the softmax.
	Temperature float64
	// TopK keeps the k most likely tokens (0: all).
	TopK int
	// TopP keeps the smallest set of most likely tokens whose probability
	// reaches p (0 or 1: all).
	TopP float64
	// Seed seeds the sampler.
	Seed uint64
	// EOS ids end the generation (the id is not emitted).
	EOS []int64
	// Stop sequences of ids end the generation once generated (they are
	// emitted; the caller trims them, as it does for text stops).
	Stop [][]int64
}

// DefaultMaxTokens is MaxTokens when not set.
const DefaultMaxTokens = 16

// Token is one generated token.
type Token struct {
	ID int64
	// Logprob is the token's log-probability under the distribution it
	// was drawn from (after temperature, before top-k/top-p truncation).
	Logprob float32
}

// Finish reasons.
const (
	FinishLength = "length" // MaxTokens or MaxContext reached
	FinishStop   = "stop"   // an EOS id or a stop sequence
)

// Result sums up a generation.
type Result struct {
	Tokens       []int64
	FinishReason string
	PromptTokens int
}

// ErrStop may be returned by emit to end the generation early and
// normally (FinishStop), e.g. when the caller found a text stop sequence.
var ErrStop = errors.New("generate: stop")

// Generate runs prompt through the model and generates tokens, calling
// emit with each. See the package documentation. Errors wrap nn.ErrShape
// for a prompt the model cannot take, ctx's error, or emit's.
func (m *Model) Generate(ctx context.Context, prompt []int64, o *Options, emit func(Token) error) (Result, error) {
	opt := Options{}
	if o != nil {
		opt = *o
	}
	if opt.MaxTokens <= 0 {
		opt.MaxTokens = DefaultMaxTokens
	}
	res := Result{PromptTokens: len(prompt)}
	if len(prompt) == 0 {
		return res, fmt.Errorf("%w: empty prompt", nn.ErrShape)
	}
	maxCtx := len(prompt) + opt.MaxTokens
	if opt.MaxContext > 0 {
		if len(prompt) >= opt.MaxContext {
			return res, fmt.Errorf("%w: the prompt has %d tokens; the context limit is %d", nn.ErrShape, len(prompt), opt.MaxContext)
		}
		maxCtx = min(maxCtx, opt.MaxContext)
	}
	st := m.newState(maxCtx)
	smp := &sampler{opt: &opt, rng: rand.New(rand.NewPCG(opt.Seed, 0x5851f42d4c957f2d))}
	tokens := prompt
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		logits, err := st.step(ctx, tokens)
		if err != nil {
			return res, err
		}
		id, lp := smp.next(logits)
		if slices.Contains(opt.EOS, id) {
			res.FinishReason = FinishStop
			return res, nil
		}
		res.Tokens = append(res.Tokens, id)
		if err := emit(Token{ID: id, Logprob: lp}); err != nil {
			if errors.Is(err, ErrStop) {
				res.FinishReason = FinishStop
				return res, nil
			}
			return res, err
		}
		if endsWithStop(res.Tokens, opt.Stop) {
			res.FinishReason = FinishStop
			return res, nil
		}
		if len(res.Tokens) >= opt.MaxTokens || len(prompt)+len(res.Tokens) >= maxCtx {
			res.FinishReason = FinishLength
			return res, nil
		}
		st.one[0] = id
		tokens = st.one[:1]
	}
}

func endsWithStop(toks []int64, stops [][]int64) bool {
	for _, s := range stops {
		if len(s) > 0 && len(toks) >= len(s) && slices.Equal(toks[len(toks)-len(s):], s) {
			return true
		}
	}
	return false
}

// state is one generation's cache and buffers.
type state struct {
	m      *Model
	length int // tokens in the cache
	ins    []*graph.Tensor
	outs   []*graph.Tensor
	cache  []*graph.Tensor // one per past input: fed back as input, filled as output
	ids    *graph.Tensor
	mask   *graph.Tensor
	pos    *graph.Tensor
	maxCtx int
	one    [1]int64
}

// newState allocates the cache for maxCtx tokens once: each step's
// present output is copied into these tensors' bytes (Run reuses an
// output's bytes when their capacity suffices), and the same tensors are
// the next step's past.
func (m *Model) newState(maxCtx int) *state {
	st := &state{m: m, maxCtx: maxCtx, ins: make([]*graph.Tensor, m.numIn), outs: make([]*graph.Tensor, len(m.g.Outputs()))}
	for i := range m.past {
		h, d := m.heads[i], m.headDim[i]
		full := graph.NewTensor(graph.Float32, 1, h, maxCtx, d)
		t := &graph.Tensor{DType: graph.Float32, Shape: []int{1, h, 0, d}}
		graph.SetBytes(t, full.Bytes()[:0])
		st.cache = append(st.cache, t)
		st.ins[m.past[i]] = t
		st.outs[m.present[i]] = t
	}
	st.ids = graph.NewTensor(graph.Int64, 1, maxCtx)
	st.ins[m.idsIn] = st.ids
	if m.maskIn >= 0 {
		st.mask = graph.NewTensor(graph.Int64, 1, maxCtx)
		for i := range st.mask.Int64s() {
			st.mask.Int64s()[i] = 1
		}
		st.ins[m.maskIn] = st.mask
	}
	if m.posIn >= 0 {
		st.pos = graph.NewTensor(graph.Int64, 1, maxCtx)
		st.ins[m.posIn] = st.pos
	}
	return st
}

// step runs tokens (the prompt, then one token at a time) and returns the
// logits of the last position.
func (st *state) step(ctx context.Context, tokens []int64) ([]float32, error) {
	m := st.m
	n := len(tokens)
	if st.length+n > st.maxCtx {
		return nil, fmt.Errorf("%w: %d tokens over the context of %d", nn.ErrShape, st.length+n, st.maxCtx)
	}
	graph.Reshape(st.ids, 1, n)
	copy(st.ids.Int64s(), tokens)
	if st.mask != nil {
		graph.Reshape(st.mask, 1, st.length+n)
	}
	if st.pos != nil {
		graph.Reshape(st.pos, 1, n)
		for i := range st.pos.Int64s() {
			st.pos.Int64s()[i] = int64(st.length + i)
		}
	}
	out, err := m.g.Run(ctx, st.ins, st.outs)
	if err != nil {
		return nil, err
	}
	st.outs = out
	for i, t := range st.cache {
		if len(t.Shape) != 4 || t.Shape[2] != st.length+n {
			return nil, fmt.Errorf("generate: present %d has shape %v after %d tokens", i, t.Shape, st.length+n)
		}
	}
	st.length += n
	lg := out[m.logitsOut]
	if lg.DType != graph.Float32 || len(lg.Shape) != 3 || lg.Shape[1] != n {
		return nil, fmt.Errorf("generate: logits of shape %v %v for %d tokens", lg.DType, lg.Shape, n)
	}
	v := lg.Shape[2]
	return lg.Float32s()[(n-1)*v : n*v], nil
}

// sampler chooses tokens; its scratch is sized once per generation.
type sampler struct {
	opt   *Options
	rng   *rand.Rand
	probs []float64
	cands []int
}

// next picks the next token from logits.
func (s *sampler) next(logits []float32) (int64, float32) {
	best := 0
	for i, v := range logits {
		if v > logits[best] {
			best = i
		}
	}
	temp := s.opt.Temperature
	if temp <= 0 {
		return int64(best), float32(logprob(logits, best, 1))
	}
	if cap(s.probs) < len(logits) {
		s.probs = make([]float64, len(logits))
		s.cands = make([]int, 0, len(logits))
	}
	probs := s.probs[:len(logits)]
	mx := float64(logits[best])
	sum := 0.0
	for i, v := range logits {
		p := math.Exp((float64(v) - mx) / temp)
		probs[i] = p
		sum += p
	}
	for i := range probs {
		probs[i] /= sum
	}
	cands := s.candidates(probs)
	total := 0.0
	for _, c := range cands {
		total += probs[c]
	}
	r := s.rng.Float64() * total
	pick := cands[len(cands)-1]
	for _, c := range cands {
		if r < probs[c] {
			pick = c
			break
		}
		r -= probs[c]
	}
	return int64(pick), float32(math.Log(probs[pick]))
}

// candidates returns the ids sampling may pick, most likely first when a
// truncation applies: the TopK most likely, then the shortest prefix
// whose probability reaches TopP. Without truncation, every id in order.
func (s *sampler) candidates(probs []float64) []int {
	k, p := s.opt.TopK, s.opt.TopP
	truncP := p > 0 && p < 1
	if (k <= 0 || k >= len(probs)) && !truncP {
		c := s.cands[:0]
		for i := range probs {
			c = append(c, i)
		}
		return c
	}
	// Only ids above a threshold are sorted: lower it until the ones
	// above it are enough for both truncations (exact: the ids below it
	// could not be in the result).
	byProb := func(c []int) {
		sort.Slice(c, func(i, j int) bool {
			if probs[c[i]] != probs[c[j]] {
				return probs[c[i]] > probs[c[j]]
			}
			return c[i] < c[j]
		})
	}
	for t := 1e-3; ; t /= 16 {
		c := s.cands[:0]
		mass := 0.0
		for i, q := range probs {
			if q >= t || t < 1e-300 {
				c = append(c, i)
				mass += q
			}
		}
		enoughK := k <= 0 || len(c) >= k
		enoughP := !truncP || mass >= p
		if !(enoughK && enoughP) && t >= 1e-300 {
			continue
		}
		byProb(c)
		if k > 0 && k < len(c) {
			c = c[:k]
		}
		if truncP {
			acc := 0.0
			for i, id := range c {
				acc += probs[id]
				if acc >= p {
					c = c[:i+1]
					break
				}
			}
		}
		return c
	}
}

// logprob is log softmax(logits/temp)[i].
func logprob(logits []float32, i int, temp float64) float64 {
	mx := float64(logits[0])
	for _, v := range logits {
		mx = max(mx, float64(v))
	}
	sum := 0.0
	for _, v := range logits {
		sum += math.Exp((float64(v) - mx) / temp)
	}
	return (float64(logits[i])-mx)/temp - math.Log(sum)
}
