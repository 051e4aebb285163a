package kernels

import "math"

// Transcendental float32 loops for transformers: eˣ, the step of a
// softmax (exp(x − m) and its sum), the maximum, and GELU in its erf and
// tanh forms. AVX-512 runs them 16 lanes at a time (transc_amd64.s: eˣ
// by range reduction to [−ln2/2, ln2/2], a degree-7 polynomial and
// VSCALEFPS; erf by Eigen's rational approximation); elsewhere the same
// formulas run in Go. They are within a few ulp of the float64 functions
// rounded to float32, and allocate nothing. dst must be at least as long
// as x and may be x itself.

// ExpF32 sets dst[i] = e^x[i].
func ExpF32(dst, x []float32) {
	if len(dst) < len(x) {
		panic(shortOperand)
	}
	if vecExp(dst, x) {
		return
	}
	expGo(dst[:len(x)], x)
}

// ExpSubSumF32 sets x[i] = e^(x[i] − m) and returns their sum: the
// exponentials of a softmax row whose maximum is m.
func ExpSubSumF32(x []float32, m float32) float32 {
	if s, ok := vecExpSubSum(x, m); ok {
		return s
	}
	for i := range x {
		x[i] -= m
	}
	expGo(x, x)
	var s float32
	for _, v := range x {
		s += v
	}
	return s
}

// MaxOfF32 returns the largest element of x (len(x) ≥ 1); NaN elements
// may or may not be ignored.
func MaxOfF32(x []float32) float32 {
	if len(x) == 0 {
		panic(shortOperand)
	}
	if m, ok := vecMax(x); ok {
		return m
	}
	m := x[0]
	for _, v := range x[1:] {
		m = max(m, v)
	}
	return m
}

// GeluF32 sets dst[i] = 0.5·x·(1 + erf(x/√2)).
func GeluF32(dst, x []float32) {
	if len(dst) < len(x) {
		panic(shortOperand)
	}
	if vecGelu(dst, x, false) {
		return
	}
	geluErfGo(dst[:len(x)], x)
}

// GeluTanhF32 sets dst[i] = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))),
// computed as x/(1 + e^(−2u)), the same function without the
// cancellation of 1 + tanh(u) for negative u.
func GeluTanhF32(dst, x []float32) {
	if len(dst) < len(x) {
		panic(shortOperand)
	}
	if vecGelu(dst, x, true) {
		return
	}
	var buf [256]float32
	dst = dst[:len(x)]
	for len(x) > 0 {
		n := min(len(x), len(buf))
		e := buf[:n]
		for i, v := range x[:n] {
			e[i] = -2 * 0.7978845608028654 * (v + 0.044715*v*v*v)
		}
		expGo(e, e)
		for i, v := range x[:n] {
			dst[i] = v / (1 + e[i])
		}
		x, dst = x[n:], dst[n:]
	}
}

// expGo is eˣ with the vector kernel's reduction and polynomial.
func expGo(o, x []float32) {
	o = o[:len(x)]
	for i, v := range x {
		if !(v >= -87 && v <= 88) {
			o[i] = float32(math.Exp(float64(v)))
			continue
		}
		n := float32(math.RoundToEven(float64(v * 1.44269504088896341)))
		r := v - n*0.693359375
		r -= n * -2.12194440e-4
		q := ((((1.9875691500e-4*r+1.3981999507e-3)*r+8.3334519073e-3)*r+4.1665795894e-2)*r+1.6666665459e-1)*r + 5.0000001201e-1
		p := q*r*r + (r + 1)
		o[i] = p * math.Float32frombits(uint32(int32(n)+127)<<23)
	}
}

// geluErfGo is the erf GELU with the vector kernel's approximation.
func geluErfGo(o, x []float32) {
	o = o[:len(x)]
	for i, v := range x {
		z := v * 0.70710678118654752
		z = min(max(z, -4), 4)
		z2 := z * z
		p := z2*-2.72614225801306e-10 + 2.77068142495902e-08
		p = z2*p + -2.10102402082508e-06
		p = z2*p + -5.69250639462346e-05
		p = z2*p + -7.34990630326855e-04
		p = z2*p + -2.95459980854025e-03
		p = z2*p + -1.60960333262415e-02
		p *= z
		q := z2*-1.45660718464996e-05 + -2.13374055278905e-04
		q = z2*q + -1.68282697438203e-03
		q = z2*q + -7.37332916720468e-03
		q = z2*q + -1.42647390514189e-02
		o[i] = 0.5 * v * (1 + p/q)
	}
}
