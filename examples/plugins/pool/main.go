// Command pool is a postprocess plugin for sentence embeddings: a
// transformer's token vectors become one vector per text, as
// sentence-transformers computes them (all-MiniLM-L6-v2's Pooling and
// Normalize modules): the mean of the token vectors under the attention
// mask, scaled to unit length.
//
// Input: the token vectors, F32 [batch, seq, hidden] (or [seq, hidden]):
// the tensor named by the "output" parameter, else last_hidden_state,
// else token_embeddings, else the only tensor of rank 3. The attention
// mask, [batch, seq] of any integer dtype, BOOL or F32: the tensor named
// by the "mask" parameter, else attention_mask. The platform passes a
// postprocess plugin the model's outputs only; when no mask is among them
// every position counts, which is exact for one text, or a batch padded
// to no length (see docs/plugins.md for the mask's way here).
//
// Output: application/json {"embeddings": [[…], …]}, one row per text;
// with parameter format=safetensors, the tensor "embeddings" F32
// [batch, hidden] as safetensors bytes (application/octet-stream), which
// spares the guest formatting decimals (most of its time for one text).
// Parameter normalize=false skips the unit scaling.
//
// The sums are unrolled sixteen wide: inside the sandbox every loop
// iteration pays the deadline check, so 128 × 384 additions cost about a
// tenth of a millisecond this way and ten times that one at a time.
package main

import (
	"fmt"
	"math"
	"strconv"

	"github.com/aiaas/aiaas/internal/safetensors"
	"github.com/aiaas/aiaas/sdk/plugin"
)

func init() {
	plugin.HandlePostprocess(func(in plugin.Input) (plugin.Response, error) {
		if in.Params["format"] == "safetensors" {
			emb, batch, dim, err := Embeddings(in.Tensors, in.Params)
			if err != nil {
				return plugin.Response{}, err
			}
			body := safetensors.Encode(&safetensors.File{Tensors: []plugin.Tensor{plugin.F32("embeddings", []int{batch, dim}, emb)}})
			return plugin.Response{ContentType: "application/octet-stream", Body: body}, nil
		}
		body, err := Pool(in.Tensors, in.Params)
		if err != nil {
			return plugin.Response{}, err
		}
		return plugin.Response{ContentType: "application/json", Body: body}, nil
	})
}

func main() {}

const maxSide = 1 << 16 // bound on seq and hidden

// Pool renders the pooled embeddings as JSON.
func Pool(ts []plugin.Tensor, params map[string]string) ([]byte, error) {
	emb, batch, dim, err := Embeddings(ts, params)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 16+batch*dim*12)
	out = append(out, `{"embeddings":[`...)
	for i := range batch {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, '[')
		for j, v := range emb[i*dim : (i+1)*dim] {
			if j > 0 {
				out = append(out, ',')
			}
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				v = 0 // JSON has no NaN
			}
			out = strconv.AppendFloat(out, float64(v), 'g', -1, 32)
		}
		out = append(out, ']')
	}
	return append(out, "]}"...), nil
}

// Embeddings returns the pooled vectors, batch × dim, row after row.
func Embeddings(ts []plugin.Tensor, params map[string]string) (emb []float32, batch, dim int, err error) {
	h, err := hidden(ts, params["output"])
	if err != nil {
		return nil, 0, 0, err
	}
	batch, seq := 1, 0
	switch len(h.Shape) {
	case 2:
		seq, dim = h.Shape[0], h.Shape[1]
	case 3:
		batch, seq, dim = h.Shape[0], h.Shape[1], h.Shape[2]
	default:
		return nil, 0, 0, fmt.Errorf("pool: tensor %q has shape %v; want [batch, seq, hidden]", h.Name, h.Shape)
	}
	if batch < 1 || seq < 1 || dim < 1 || seq > maxSide || dim > maxSide {
		return nil, 0, 0, fmt.Errorf("pool: tensor %q has shape %v; want sides of 1 to %d", h.Name, h.Shape, maxSide)
	}
	x, err := h.Float32s(nil)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("pool: %v", err)
	}
	mask := make([]int64, batch*seq)
	for i := range mask {
		mask[i] = 1
	}
	name := params["mask"]
	if name == "" {
		name = "attention_mask"
	}
	for _, t := range ts {
		if t.Name != name {
			continue
		}
		if t.NumElements() != batch*seq || len(t.Shape) > 2 || len(t.Shape) == 2 && t.Shape[0] != batch {
			return nil, 0, 0, fmt.Errorf("pool: mask %q has shape %v; want [%d, %d]", t.Name, t.Shape, batch, seq)
		}
		if mask, err = plugin.Int64s(t, mask[:0]); err != nil {
			return nil, 0, 0, fmt.Errorf("pool: %v", err)
		}
	}
	normalize := params["normalize"] != "false"
	emb = make([]float32, batch*dim)
	for b := range batch {
		row, m := emb[b*dim:(b+1)*dim], mask[b*seq:(b+1)*seq]
		n := 0
		for i, keep := range m {
			if keep != 0 {
				addTo(row, x[(b*seq+i)*dim:(b*seq+i+1)*dim])
				n++
			}
		}
		// As sentence-transformers: a sum over max(count, 1e-9), then
		// x / max(‖x‖, 1e-12).
		var ss float64
		for k := range row {
			row[k] /= float32(max(float64(n), 1e-9))
			ss += float64(row[k]) * float64(row[k])
		}
		if normalize {
			s := float32(1 / max(math.Sqrt(ss), 1e-12))
			for k := range row {
				row[k] *= s
			}
		}
	}
	return emb, batch, dim, nil
}

// addTo adds src to dst (same length), sixteen at a time.
func addTo(dst, src []float32) {
	src = src[:len(dst)]
	k := 0
	for ; k+16 <= len(dst); k += 16 {
		d, s := (*[16]float32)(dst[k:k+16]), (*[16]float32)(src[k:k+16])
		d[0] += s[0]
		d[1] += s[1]
		d[2] += s[2]
		d[3] += s[3]
		d[4] += s[4]
		d[5] += s[5]
		d[6] += s[6]
		d[7] += s[7]
		d[8] += s[8]
		d[9] += s[9]
		d[10] += s[10]
		d[11] += s[11]
		d[12] += s[12]
		d[13] += s[13]
		d[14] += s[14]
		d[15] += s[15]
	}
	for ; k < len(dst); k++ {
		dst[k] += src[k]
	}
}

func hidden(ts []plugin.Tensor, name string) (plugin.Tensor, error) {
	names := []string{name}
	if name == "" {
		names = []string{"last_hidden_state", "token_embeddings"}
	}
	for _, n := range names {
		for _, t := range ts {
			if t.Name == n {
				return t, nil
			}
		}
	}
	if name == "" {
		var found []plugin.Tensor
		for _, t := range ts {
			if len(t.Shape) == 3 {
				found = append(found, t)
			}
		}
		if len(found) == 1 {
			return found[0], nil
		}
	}
	return plugin.Tensor{}, fmt.Errorf("pool: no tensor named %v, nor a single one of rank 3, among %d", names, len(ts))
}
