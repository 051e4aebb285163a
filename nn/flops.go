package nn

// TrainFLOPs returns the floating-point operations of one training epoch
// over n samples, counting only the matrix products (a multiply-add
// is 2 FLOPs): per dense or conv2d layer and sample, its forward product,
// the weight gradient (as many) and, except for the first layer, the input
// gradient (as many again). Activations, pooling, normalisation, the loss
// and the optimizer are O(values) per sample and left out. It is
// goroutine-safe.
func (m *Model) TrainFLOPs(n int) float64 {
	var per float64
	first := true
	for i := range m.layers {
		mac := m.layers[i].macs()
		if mac == 0 {
			continue
		}
		per += 4 * mac
		if !first {
			per += 2 * mac
		}
		first = false
	}
	return per * float64(n)
}

// ForwardFLOPs returns the floating-point operations of a forward pass of
// batch samples (matrix products only). It is goroutine-safe.
func (m *Model) ForwardFLOPs(batch int) float64 {
	var per float64
	for i := range m.layers {
		per += 2 * m.layers[i].macs()
	}
	return per * float64(batch)
}

// macs is the multiply-adds of one sample through a dense or conv2d layer.
func (l *layer) macs() float64 {
	switch l.kind {
	case LayerDense:
		return float64(l.in) * float64(l.out)
	case LayerConv2D:
		return float64(l.out) * float64(l.inS.c*l.g.kh*l.g.kw)
	}
	return 0
}
