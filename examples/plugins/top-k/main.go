// Command top-k is a postprocess plugin: the model's class scores become
// JSON with the k best classes,
//
//	{"predictions":[{"label":"7","index":7,"score":0.98},…]}
//
// Input: one tensor (or the one named by the "output" parameter, else
// "output"), F32, shape [K] or [1,K]. If the scores are not already a
// probability distribution (any negative, or a sum off 1 by more than
// 1e-3) softmax is applied first.
//
// Parameters (the safetensors "__metadata__" the platform passes):
//   - "k": how many predictions, 1–100, default 3;
//   - "labels": comma-separated class names; default the index ("0".."9").
package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aiaas/aiaas/sdk/plugin"
)

func init() { plugin.HandlePostprocess(postprocess) }

func main() {}

const (
	defaultK   = 3
	maxK       = 100
	maxClasses = 1 << 20
)

func postprocess(in plugin.Input) (plugin.Response, error) {
	// The host copies the body before the next call, so it may live in
	// the instance's scratch.
	body, err := instance.topK(in.Tensors, in.Params)
	if err != nil {
		return plugin.Response{}, err
	}
	return plugin.Response{ContentType: "application/json", Body: body}, nil
}

// instance is this plugin instance's scratch memory (an instance runs one
// call at a time): reused, it keeps a call nearly free of garbage, which
// in a Go guest is most of a small call's time.
var instance scratch

// scratch holds the buffers of one answer.
type scratch struct {
	p   []float32
	idx []int32
	out []byte
}

// TopK renders the k best classes of the scores in ts as JSON.
func TopK(ts []plugin.Tensor, params map[string]string) ([]byte, error) {
	var s scratch
	return s.topK(ts, params)
}

// topK is TopK in s's buffers: the result is valid until s is used again.
func (s *scratch) topK(ts []plugin.Tensor, params map[string]string) ([]byte, error) {
	t, err := pick(ts, params["output"])
	if err != nil {
		return nil, err
	}
	if n := len(t.Shape); n == 0 || n > 2 || (n == 2 && t.Shape[0] != 1) {
		return nil, fmt.Errorf("top-k: tensor %q has shape %v; want [K] or [1,K]", t.Name, t.Shape)
	}
	if t.NumElements() > maxClasses {
		return nil, fmt.Errorf("top-k: %d classes; at most %d", t.NumElements(), maxClasses)
	}
	p, err := t.Float32s(s.p[:0])
	s.p = p
	if err != nil {
		return nil, fmt.Errorf("top-k: %v", err)
	}
	if len(p) == 0 {
		return nil, errors.New("top-k: no scores")
	}
	k := defaultK
	if s, ok := params["k"]; ok {
		if k, err = strconv.Atoi(s); err != nil || k < 1 || k > maxK {
			return nil, fmt.Errorf("top-k: parameter k=%q; want an integer in 1..%d", s, maxK)
		}
	}
	var labels []string
	if s := params["labels"]; s != "" {
		labels = strings.Split(s, ",")
	}
	if !isDistribution(p) {
		if err := plugin.Softmax(p); err != nil {
			return nil, err
		}
	}
	if n := min(k, len(p)); cap(s.idx) < n {
		s.idx = make([]int32, n)
	} else {
		s.idx = s.idx[:n]
	}
	idx, err := plugin.TopK(s.idx, p, k)
	if err != nil {
		return nil, err
	}
	out := append(s.out[:0], `{"predictions":[`...)
	for n, i := range idx {
		if n > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"label":`...)
		if int(i) < len(labels) {
			out = appendJSONString(out, strings.TrimSpace(labels[i]))
		} else {
			// The index itself: digits need no escaping.
			out = append(out, '"')
			out = strconv.AppendInt(out, int64(i), 10)
			out = append(out, '"')
		}
		out = append(out, `,"index":`...)
		out = strconv.AppendInt(out, int64(i), 10)
		out = append(out, `,"score":`...)
		s := float64(p[i])
		if math.IsNaN(s) || math.IsInf(s, 0) {
			s = 0 // JSON has no NaN
		}
		out = strconv.AppendFloat(out, s, 'g', 6, 32)
		out = append(out, '}')
	}
	s.out = append(out, "]}"...)
	return s.out, nil
}

func pick(ts []plugin.Tensor, name string) (plugin.Tensor, error) {
	if name == "" && len(ts) == 1 {
		return ts[0], nil
	}
	if name == "" {
		name = "output"
	}
	for _, t := range ts {
		if t.Name == name {
			return t, nil
		}
	}
	return plugin.Tensor{}, fmt.Errorf("top-k: no tensor named %q among %d", name, len(ts))
}

func isDistribution(p []float32) bool {
	var sum float64
	for _, v := range p {
		if v < 0 || v != v {
			return false
		}
		sum += float64(v)
	}
	return math.Abs(sum-1) <= 1e-3
}

// appendJSONString appends s as a JSON string: invalid UTF-8 becomes
// U+FFFD, quotes, backslashes and control characters are escaped (labels
// come from request parameters).
func appendJSONString(out []byte, s string) []byte {
	const hex = "0123456789abcdef"
	out = append(out, '"')
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case r == '"' || r == '\\':
			out = append(out, '\\', byte(r))
		case r < 0x20:
			out = append(out, '\\', 'u', '0', '0', hex[r>>4], hex[r&0xf])
		default:
			out = utf8.AppendRune(out, r)
		}
	}
	return append(out, '"')
}
