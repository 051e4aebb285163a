package graph

import (
	"fmt"
	"math"
	"unsafe"
)

// Tensor is a dense, row-major tensor of one DType.
//
// Its bytes are always aligned to at least 8 bytes, so they can be viewed
// as any element type. A Tensor returned by Model.Run belongs to the
// caller; one passed to Run is only read.
type Tensor struct {
	DType DType
	Shape []int
	data  []byte
}

// NewTensor returns a zeroed tensor. It panics on a negative dimension or
// an undefined dtype, as make does; callers with untrusted shapes check
// them first (see Numel).
func NewTensor(dt DType, shape ...int) *Tensor {
	n, ok := numel(shape)
	if !ok || dt.Size() == 0 {
		panic(fmt.Sprintf("graph: NewTensor(%v, %v)", dt, shape))
	}
	return &Tensor{DType: dt, Shape: append([]int(nil), shape...), data: alignedBytes(n * dt.Size())}
}

// TensorFrom wraps a copy of v as a tensor of the given shape. It panics if
// len(v) is not the shape's element count.
func TensorFrom[T Element](shape []int, v []T) *Tensor {
	dt := dtypeOf[T]()
	t := NewTensor(dt, shape...)
	if len(v) != t.Numel() {
		panic(fmt.Sprintf("graph: TensorFrom: %d values for shape %v", len(v), shape))
	}
	copy(Data[T](t), v)
	return t
}

// Element is a Go type a tensor can be viewed as.
type Element interface {
	float32 | float64 | int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64 | bool
}

func dtypeOf[T Element]() DType {
	var z T
	switch any(z).(type) {
	case float32:
		return Float32
	case float64:
		return Float64
	case int8:
		return Int8
	case int16:
		return Int16
	case int32:
		return Int32
	case int64:
		return Int64
	case uint8:
		return Uint8
	case uint16:
		return Uint16
	case uint32:
		return Uint32
	case uint64:
		return Uint64
	case bool:
		return Bool
	}
	return Undefined
}

// Data views t's elements as a []T, without copying. T must match t.DType
// in size (Float16 and BFloat16 tensors are viewed as uint16); it panics
// otherwise.
func Data[T Element](t *Tensor) []T {
	var z T
	sz := int(unsafe.Sizeof(z))
	if sz != t.DType.Size() {
		panic(fmt.Sprintf("graph: %v tensor viewed as %T", t.DType, z))
	}
	if len(t.data) == 0 {
		return nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&t.data[0])), len(t.data)/sz)
}

// view is Data without the check, for kernels that checked dtypes at
// plan time.
func view[T any](b []byte) []T {
	var z T
	sz := int(unsafe.Sizeof(z))
	if len(b) < sz {
		return nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), len(b)/sz)
}

// Float32s is Data[float32](t).
func (t *Tensor) Float32s() []float32 { return Data[float32](t) }

// Int64s is Data[int64](t).
func (t *Tensor) Int64s() []int64 { return Data[int64](t) }

// Bytes returns t's little-endian element bytes, without copying.
func (t *Tensor) Bytes() []byte { return t.data }

// Numel returns the number of elements.
func (t *Tensor) Numel() int {
	n, _ := numel(t.Shape)
	return n
}

// Clone returns a deep copy.
func (t *Tensor) Clone() *Tensor {
	c := &Tensor{DType: t.DType, Shape: append([]int(nil), t.Shape...), data: alignedBytes(len(t.data))}
	copy(c.data, t.data)
	return c
}

// TensorFromBytes wraps a copy of b (little-endian elements) as a tensor.
// It returns an error if len(b) does not match the shape.
func TensorFromBytes(dt DType, shape []int, b []byte) (*Tensor, error) {
	n, ok := numel(shape)
	if !ok || dt.Size() == 0 || n > math.MaxInt/8 || len(b) != n*dt.Size() {
		return nil, fmt.Errorf("%d bytes for a %v tensor of shape %v", len(b), dt, shape)
	}
	t := &Tensor{DType: dt, Shape: append([]int(nil), shape...), data: alignedBytes(len(b))}
	copy(t.data, b)
	return t, nil
}

// alignedBytes returns n zeroed bytes aligned to 8.
func alignedBytes(n int) []byte {
	if n == 0 {
		return []byte{}
	}
	w := make([]uint64, (n+7)/8)
	return unsafe.Slice((*byte)(unsafe.Pointer(&w[0])), n)
}

// numel multiplies dims, reporting false on a negative dim or an overflow
// past maxElements.
func numel(shape []int) (int, bool) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		if d != 0 && n > maxElements/d {
			return 0, false
		}
		n *= d
	}
	return n, true
}

// maxElements bounds any one tensor: 2³¹ elements (8 GiB of float32),
// far beyond what the limits let a model or request reach, but small
// enough that products of dims never overflow an int.
const maxElements = 1 << 31

// strides returns row-major strides of shape into dst.
func stridesOf(dst []int, shape []int) []int {
	dst = dst[:0]
	for range shape {
		dst = append(dst, 0)
	}
	s := 1
	for i := len(shape) - 1; i >= 0; i-- {
		dst[i] = s
		s *= shape[i]
	}
	return dst
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// WrapFloat32 returns a tensor whose bytes are v's, without copying: v must
// not change while the tensor is in use. It panics if len(v) does not match
// the shape.
func WrapFloat32(shape []int, v []float32) *Tensor {
	n, ok := numel(shape)
	if !ok || n != len(v) {
		panic(fmt.Sprintf("graph: WrapFloat32: %d values for shape %v", len(v), shape))
	}
	t := &Tensor{DType: Float32, Shape: append([]int(nil), shape...)}
	if n > 0 {
		t.data = unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*n)
	} else {
		t.data = []byte{}
	}
	return t
}

// Reshape gives t the shape dims, keeping its bytes: the new size must
// fit their capacity (a buffer allocated once for the largest shape and
// reused at smaller ones). It panics otherwise, as slicing would.
func Reshape(t *Tensor, dims ...int) {
	n, ok := numel(dims)
	if !ok || n*t.DType.Size() > cap(t.data) {
		panic(fmt.Sprintf("graph: Reshape %v to %v: %d bytes of capacity", t.Shape, dims, cap(t.data)))
	}
	t.Shape = append(t.Shape[:0], dims...)
	t.data = t.data[:n*t.DType.Size()]
}

// SetBytes makes b the bytes of t (no copy): b must be aligned to 8 and
// its length must be t's size, but its capacity may be larger, which lets
// Run write a larger output into it later (a key/value cache allocated
// for the longest context). It panics on a misaligned or wrongly sized b.
func SetBytes(t *Tensor, b []byte) {
	n, ok := numel(t.Shape)
	if !ok || len(b) != n*t.DType.Size() || (cap(b) > 0 && uintptr(unsafe.Pointer(unsafe.SliceData(b)))%8 != 0) {
		panic(fmt.Sprintf("graph: SetBytes: %d bytes for %v %v", len(b), t.DType, t.Shape))
	}
	t.data = b
}
