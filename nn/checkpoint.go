package nn

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/aiaas/aiaas/internal/safetensors"
)

// Checkpoint is the state of a Train call stopped at its StopAt deadline,
// besides the weights (which are in the model): the position in the data,
// the generator behind shuffling and dropout, the optimizer's moments and
// the running sums of the epoch under way. Train with TrainConfig.Resume
// set to it, on the model as it stopped and with the same data and
// configuration, continues exactly where it stopped: the weights and the
// history come out bit-identical to one uninterrupted run (epoch times
// aside). That is how a training job outlives one Lambda invocation.
//
// MarshalBinary and UnmarshalBinary store it (a safetensors file); the
// model is stored beside it as an ordinary artifact.
type Checkpoint struct {
	Epoch   int     // the epoch under way, from 1
	Batch   int     // its batches done
	History History // the completed epochs

	samples, batch int // the training set's size and the batch size, checked on resume
	perm           []int
	rng            []byte // the PCG's state
	step           int    // optimizer steps taken
	m, v           [][]float32
	lossSum        float64
	hits, seen     int
	seconds        float64 // spent in the epoch under way
	best           float64 // early stopping
	wait           int
	bestW          [][]float32
}

// checkpointState is the JSON part of a stored Checkpoint.
type checkpointState struct {
	Epoch    int     `json:"epoch"`
	Batch    int     `json:"batch"`
	History  History `json:"history"`
	Samples  int     `json:"samples"`
	BatchLen int     `json:"batch_size"`
	RNG      []byte  `json:"rng"`
	Step     int     `json:"step"`
	LossSum  float64 `json:"loss_sum"`
	Hits     int     `json:"hits"`
	Seen     int     `json:"seen"`
	Seconds  float64 `json:"seconds"`
	Best     float64 `json:"best"`
	Wait     int     `json:"wait"`
	Moments  int     `json:"moments"` // len(m); v has as many or none
	HasV     bool    `json:"has_v"`
	BestW    int     `json:"best_weights"`
}

const metaCheckpoint = "aiaas.checkpoint"

// MarshalBinary encodes c as a safetensors file: the permutation (I32),
// the optimizer's moments and the best weights (F32), and the rest as JSON
// in its metadata.
func (c *Checkpoint) MarshalBinary() ([]byte, error) {
	st := checkpointState{Epoch: c.Epoch, Batch: c.Batch, History: c.History, Samples: c.samples, BatchLen: c.batch,
		RNG: c.rng, Step: c.step, LossSum: c.lossSum, Hits: c.hits, Seen: c.seen, Seconds: c.seconds,
		Best: c.best, Wait: c.wait, Moments: len(c.m), HasV: c.v != nil, BestW: len(c.bestW)}
	js, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("nn: checkpoint: %w", err)
	}
	f := &safetensors.File{Metadata: map[string]string{metaCheckpoint: string(js)}}
	perm := make([]byte, 4*len(c.perm))
	for i, p := range c.perm {
		binary.LittleEndian.PutUint32(perm[4*i:], uint32(p))
	}
	f.Tensors = append(f.Tensors, safetensors.Tensor{Name: "perm", DType: safetensors.DTypeI32, Shape: []int{len(c.perm)}, Data: perm})
	for i, s := range c.m {
		f.Tensors = append(f.Tensors, safetensors.F32("m."+strconv.Itoa(i), []int{len(s)}, s))
	}
	for i, s := range c.v {
		f.Tensors = append(f.Tensors, safetensors.F32("v."+strconv.Itoa(i), []int{len(s)}, s))
	}
	for i, s := range c.bestW {
		f.Tensors = append(f.Tensors, safetensors.F32("best."+strconv.Itoa(i), []int{len(s)}, s))
	}
	return safetensors.Encode(f), nil
}

// UnmarshalBinary decodes what MarshalBinary wrote. The sizes are checked
// against the model and the data when Train resumes from it.
func (c *Checkpoint) UnmarshalBinary(b []byte) error {
	f, err := safetensors.Decode(b, &safetensors.Limits{MaxTensors: 4*4*MaxLayers + 1})
	if err != nil {
		return fmt.Errorf("%w: checkpoint: %v", ErrArtifact, err)
	}
	var st checkpointState
	if err := json.Unmarshal([]byte(f.Metadata[metaCheckpoint]), &st); err != nil {
		return fmt.Errorf("%w: checkpoint state: %v", ErrArtifact, err)
	}
	*c = Checkpoint{Epoch: st.Epoch, Batch: st.Batch, History: st.History, samples: st.Samples, batch: st.BatchLen,
		rng: st.RNG, step: st.Step, lossSum: st.LossSum, hits: st.Hits, seen: st.Seen, seconds: st.Seconds, best: st.Best, wait: st.Wait}
	t, ok := f.Tensor("perm")
	if !ok || t.DType != safetensors.DTypeI32 || len(t.Data) != 4*st.Samples {
		return fmt.Errorf("%w: checkpoint: no permutation of %d samples", ErrArtifact, st.Samples)
	}
	c.perm = make([]int, st.Samples)
	for i := range c.perm {
		p := int(int32(binary.LittleEndian.Uint32(t.Data[4*i:])))
		if p < 0 || p >= st.Samples {
			return fmt.Errorf("%w: checkpoint: permutation entry %d is %d", ErrArtifact, i, p)
		}
		c.perm[i] = p
	}
	load := func(prefix string, n int) ([][]float32, error) {
		var out [][]float32
		for i := range n {
			t, ok := f.Tensor(prefix + strconv.Itoa(i))
			if !ok {
				return nil, fmt.Errorf("%w: checkpoint: missing %s%d", ErrArtifact, prefix, i)
			}
			v, err := t.Float32s(nil)
			if err != nil {
				return nil, fmt.Errorf("%w: checkpoint: %v", ErrArtifact, err)
			}
			out = append(out, v)
		}
		return out, nil
	}
	if c.m, err = load("m.", st.Moments); err != nil {
		return err
	}
	if st.HasV {
		if c.v, err = load("v.", st.Moments); err != nil {
			return err
		}
	}
	c.bestW, err = load("best.", st.BestW)
	return err
}

// checkpoint captures Train's state before batch bi of epoch (from 1).
func (m *Model) checkpoint(h *History, epoch, bi int, perm []int, src *rand.PCG, o *optimizer, lossSum float64, hits, seen int,
	seconds, best float64, wait int, bestW [][]float32, batch int) *Checkpoint {
	rs, _ := src.MarshalBinary() // never fails
	c := &Checkpoint{Epoch: epoch, Batch: bi, History: *h, samples: len(perm), batch: batch,
		perm: append([]int(nil), perm...), rng: rs, step: o.step, lossSum: lossSum, hits: hits, seen: seen,
		seconds: seconds, best: best, wait: wait}
	c.History.Epochs = append([]EpochMetrics(nil), h.Epochs...)
	for _, s := range o.m {
		c.m = append(c.m, append([]float32(nil), s...))
	}
	for _, s := range o.v {
		c.v = append(c.v, append([]float32(nil), s...))
	}
	for _, s := range bestW {
		c.bestW = append(c.bestW, append([]float32(nil), s...))
	}
	return c
}

// resume checks c against the model, the data and the optimizer, and
// restores the optimizer and the generator.
func (c *Checkpoint) resume(nTrain, batch, epochs int, src *rand.PCG, o *optimizer) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: resume: %s", ErrSpec, fmt.Sprintf(format, a...))
	}
	switch {
	case c.samples != nTrain:
		return bad("the checkpoint is of %d training samples, the data has %d", c.samples, nTrain)
	case c.batch != batch:
		return bad("the checkpoint is of batch size %d, not %d", c.batch, batch)
	case c.Epoch < 1 || c.Epoch > epochs || c.Batch < 0 || c.Batch > (nTrain+batch-1)/batch:
		return bad("epoch %d batch %d outside the run", c.Epoch, c.Batch)
	case len(c.m) != len(o.m) || (c.v == nil) != (o.v == nil):
		return bad("the optimizer state does not match the optimizer")
	}
	for i := range o.m {
		if len(c.m[i]) != len(o.m[i]) || (o.v != nil && len(c.v[i]) != len(o.v[i])) {
			return bad("optimizer state %d has the wrong size", i)
		}
	}
	if err := src.UnmarshalBinary(c.rng); err != nil {
		return bad("generator state: %v", err)
	}
	for i := range o.m {
		copy(o.m[i], c.m[i])
		if o.v != nil {
			copy(o.v[i], c.v[i])
		}
	}
	o.step = c.step
	return nil
}
