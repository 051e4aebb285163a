package graph

// maxRank bounds the rank of every tensor a plan computes.
const maxRank = 8

// broadcastShape returns the numpy broadcast of shapes, or false.
func broadcastShape(shapes ...[]int) ([]int, bool) {
	rank := 0
	for _, s := range shapes {
		rank = max(rank, len(s))
	}
	out := make([]int, rank)
	for i := range out {
		out[i] = 1
	}
	for _, s := range shapes {
		off := rank - len(s)
		for i, d := range s {
			o := &out[off+i]
			switch {
			case d == *o || d == 1:
			case *o == 1:
				*o = d
			default:
				return nil, false
			}
		}
	}
	return out, true
}

// bcastIter walks an output shape and, for each of up to three inputs
// broadcast to it, the offset of every contiguous run. Dimensions whose
// strides agree are merged first, so a same-shape operation is one run
// and a bias over channels is one run per row. It is built at plan time
// and read-only after.
type bcastIter struct {
	n      int // output elements
	rank   int // after merging; the last dimension is the run
	shape  [maxRank]int
	stride [3][maxRank]int // per input, per dimension; 0 where broadcast
	inputs int
}

// newBcastIter plans the iteration of out over ins (each broadcastable to
// out; checked by the caller with broadcastShape).
func newBcastIter(out []int, ins ...[]int) *bcastIter {
	it := &bcastIter{inputs: len(ins)}
	it.n, _ = numel(out)
	rank := len(out)
	if rank == 0 {
		it.rank = 1
		it.shape[0] = 1
		return it
	}
	// Full strides, aligned right.
	var full [3][maxRank]int
	for k, s := range ins {
		off := rank - len(s)
		st := 1
		for i := len(s) - 1; i >= 0; i-- {
			if s[i] != 1 {
				full[k][off+i] = st
			}
			st *= s[i]
		}
	}
	// Merge dimension i into the one after it when, for every input,
	// stride[i] == stride[i+1]*shape[i+1] (contiguous across the pair).
	dims := make([]int, 0, rank)
	var strides [3][]int
	for i := 0; i < rank; i++ {
		if out[i] == 1 {
			continue
		}
		if len(dims) > 0 {
			j := len(dims) - 1
			ok := true
			for k := range ins {
				if strides[k][j] != full[k][i]*out[i] {
					ok = false
				}
			}
			if ok {
				dims[j] *= out[i]
				for k := range ins {
					strides[k][j] = full[k][i]
				}
				continue
			}
		}
		dims = append(dims, out[i])
		for k := range ins {
			strides[k] = append(strides[k], full[k][i])
		}
	}
	if len(dims) == 0 {
		dims = append(dims, 1)
		for k := range ins {
			strides[k] = append(strides[k], 0)
		}
	}
	it.rank = len(dims)
	copy(it.shape[:], dims)
	for k := range ins {
		copy(it.stride[k][:], strides[k])
	}
	return it
}

// runLen is the length of each contiguous run.
func (it *bcastIter) runLen() int { return it.shape[it.rank-1] }

// runStride returns input k's stride within a run: 1 (contiguous) or 0
// (one value repeated).
func (it *bcastIter) runStride(k int) int { return it.stride[k][it.rank-1] }

// runs calls f(o, i0, i1, i2) for every run, with o the output offset
// and i0…i2 the inputs' offsets (by value: a pointer handed to an unknown
// function would move them to the heap on every call). It allocates
// nothing.
func (it *bcastIter) runs(f func(o, i0, i1, i2 int)) {
	var idx [maxRank]int
	var offs [3]int
	run := it.runLen()
	outer := it.rank - 1
	for o := 0; o < it.n; o += run {
		f(o, offs[0], offs[1], offs[2])
		// Advance the outer index like an odometer.
		for d := outer - 1; d >= 0; d-- {
			idx[d]++
			for k := 0; k < it.inputs; k++ {
				offs[k] += it.stride[k][d]
			}
			if idx[d] < it.shape[d] {
				break
			}
			for k := 0; k < it.inputs; k++ {
				offs[k] -= it.stride[k][d] * it.shape[d]
			}
			idx[d] = 0
		}
	}
}
