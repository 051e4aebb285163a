package kernels

// Element-wise float32 primitives for the hot paths of a graph runtime
// (residual adds, batch normalisation, activations). Each runs in the
// chosen kernel's vector unit (AVX-512 with a masked tail, AVX2 or NEON
// with the tail in Go) and in plain Go elsewhere. n is len(a); dst (and
// b) must be at least that long, and dst may be a or b itself, but must
// not overlap them otherwise. They allocate nothing.

// Operation codes of the vector kernels (vecBinary, vecUnary).
const (
	opAdd = iota
	opMul
	opMax
)

const (
	opAddScalar = iota // a + s
	opMulScalar        // a · s
	opMulAdd           // a · s + t
	opReLU
	opClip      // min(max(a, s), t)
	opHardSwish // a · clamp(s·a + t, 0, 1)
	opLeakyReLU // a < 0 ? s·a : a
)

const shortOperand = "kernels: insufficient length of an operand"

func checkBinary(dst, a, b []float32) int {
	n := len(a)
	if len(dst) < n || len(b) < n {
		panic(shortOperand)
	}
	return n
}

// AddF32 sets dst[i] = a[i] + b[i] for i < len(a).
func AddF32(dst, a, b []float32) {
	n := checkBinary(dst, a, b)
	d := vecBinary(opAdd, dst, a, b, n)
	addGo(dst[d:n], a[d:n], b[d:n])
}

// MulF32 sets dst[i] = a[i] · b[i] for i < len(a).
func MulF32(dst, a, b []float32) {
	n := checkBinary(dst, a, b)
	d := vecBinary(opMul, dst, a, b, n)
	mulGo(dst[d:n], a[d:n], b[d:n])
}

// MaxF32 sets dst[i] = max(a[i], b[i]) for i < len(a); a NaN in either
// operand gives NaN (as Go's max), and max(−0, +0) may be either zero.
func MaxF32(dst, a, b []float32) {
	n := checkBinary(dst, a, b)
	d := vecBinary(opMax, dst, a, b, n)
	maxGo(dst[d:n], a[d:n], b[d:n])
}

// AddScalarF32 sets dst[i] = a[i] + s for i < len(a).
func AddScalarF32(dst, a []float32, s float32) { unary(opAddScalar, dst, a, s, 0) }

// MulScalarF32 sets dst[i] = a[i] · s for i < len(a).
func MulScalarF32(dst, a []float32, s float32) { unary(opMulScalar, dst, a, s, 0) }

// MulAddScalarF32 sets dst[i] = a[i] · s + t for i < len(a) (one fused
// multiply-add where the CPU has it): an inference batch normalisation
// with s = γ/√(σ²+ε) and t = β − μ·s.
func MulAddScalarF32(dst, a []float32, s, t float32) { unary(opMulAdd, dst, a, s, t) }

func unary(op int, dst, a []float32, s, t float32) {
	n := len(a)
	if len(dst) < n {
		panic(shortOperand)
	}
	d := vecUnary(op, dst, a, n, s, t)
	unaryGo(op, dst[d:n], a[d:n], s, t)
}

// ApplyActivation applies ep's activation to v in place (bias and residual
// aside): the same function the fused epilogues compute. It panics on an
// unknown activation.
func ApplyActivation(v []float32, ep *Epilogue) {
	var op int
	var s, t float32
	switch ep.Act {
	case Linear:
		return
	case ReLU:
		op = opReLU
	case Clip:
		op, s, t = opClip, ep.Min, ep.Max
	case HardSwish:
		op, s, t = opHardSwish, ep.Alpha, ep.Beta
	case LeakyReLU:
		op, s = opLeakyReLU, ep.Alpha
	default:
		panic(badAct)
	}
	unary(op, v, v, s, t)
}

// actGo applies act to src into dst in Go, with the semantics of the
// vector kernels: NaN stays NaN.
func actGo(dst, src []float32, act Activation, lo, hi, alpha, beta float32) {
	switch act {
	case Linear:
		copy(dst, src)
	case ReLU:
		unaryGo(opReLU, dst, src, 0, 0)
	case Clip:
		unaryGo(opClip, dst, src, lo, hi)
	case HardSwish:
		unaryGo(opHardSwish, dst, src, alpha, beta)
	case LeakyReLU:
		unaryGo(opLeakyReLU, dst, src, alpha, 0)
	default:
		panic(badAct)
	}
}

func addGo(dst, a, b []float32) {
	b, dst = b[:len(a)], dst[:len(a)]
	for i, v := range a {
		dst[i] = v + b[i]
	}
}

func mulGo(dst, a, b []float32) {
	b, dst = b[:len(a)], dst[:len(a)]
	for i, v := range a {
		dst[i] = v * b[i]
	}
}

func maxGo(dst, a, b []float32) {
	b, dst = b[:len(a)], dst[:len(a)]
	for i, v := range a {
		dst[i] = max(v, b[i])
	}
}

func unaryGo(op int, dst, a []float32, s, t float32) {
	dst = dst[:len(a)]
	switch op {
	case opAddScalar:
		for i, v := range a {
			dst[i] = v + s
		}
	case opMulScalar:
		for i, v := range a {
			dst[i] = v * s
		}
	case opMulAdd:
		for i, v := range a {
			dst[i] = v*s + t
		}
	case opReLU:
		for i, v := range a {
			if v < 0 {
				v = 0
			}
			dst[i] = v
		}
	case opClip:
		for i, v := range a {
			if v < s {
				v = s
			}
			if v > t {
				v = t
			}
			dst[i] = v
		}
	case opHardSwish:
		for i, v := range a {
			g := s*v + t
			if g < 0 {
				g = 0
			}
			if g > 1 {
				g = 1
			}
			dst[i] = v * g
		}
	case opLeakyReLU:
		for i, v := range a {
			if v < 0 {
				v *= s
			}
			dst[i] = v
		}
	}
}
