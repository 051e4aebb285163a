package nn

// TrainFLOPs returns the floating-point operations of one training epoch
// over n samples, counting only the matrix products (a multiply-add
// is 2 FLOPs): per dense layer and sample, 2·in·out for the forward
// product, 2·in·out for the weight gradient and, except for the first
// layer, 2·in·out for the input gradient. Activations, the loss and the
// optimizer are O(units) or O(params) per batch and left out. It is
// goroutine-safe.
func (m *Model) TrainFLOPs(n int) float64 {
	var per float64
	first := true
	for _, l := range m.layers {
		if !l.dense {
			continue
		}
		mac := 2 * float64(l.in) * float64(l.out)
		per += 2 * mac
		if !first {
			per += mac
		}
		first = false
	}
	return per * float64(n)
}

// ForwardFLOPs returns the floating-point operations of a forward pass of
// batch samples (matrix products only). It is goroutine-safe.
func (m *Model) ForwardFLOPs(batch int) float64 {
	var per float64
	for _, l := range m.layers {
		if l.dense {
			per += 2 * float64(l.in) * float64(l.out)
		}
	}
	return per * float64(batch)
}
